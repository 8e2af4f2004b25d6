"""Feature-based transfer learning: fs, sp, sp_adv, drss, drss_adv."""

__version__ = "0.1.0"
