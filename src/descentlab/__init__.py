"""descentlab: gradient-descent optimizers you can trust, and a lab for vanishing gradients."""

__version__ = "0.1.0"
