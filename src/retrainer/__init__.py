"""retrainer: orchestrated retraining for production ML models."""

__version__ = "0.1.0"
