"""Model-based transfer learning (distillation): kd, pkd, distilbert, tinybert, adabert, metakd."""

__version__ = "0.1.0"
