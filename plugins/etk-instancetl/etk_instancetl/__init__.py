"""Instance-based transfer learning: ruder_plank, rtl, mgtl."""

__version__ = "0.1.0"
