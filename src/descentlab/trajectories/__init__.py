"""The optimizers' paths on 2-D test functions (``descentlab trajectories``)."""

from .functions import FUNCTIONS, TestFunction
from .paths import LEARNING_RATES, OPTIMIZERS, Path, descend, descend_all
from .plot import gif, png

__all__ = ["FUNCTIONS", "LEARNING_RATES", "OPTIMIZERS", "Path", "TestFunction", "descend",
           "descend_all", "gif", "png"]
