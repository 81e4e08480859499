"""advtui: robust and non-robust features of neural networks, as one reproducible pipeline."""

__version__ = "0.1.0"
