"""Each algorithm's per-element math, written once (see ``_base`` for the contract)."""

from ._base import Rule
from .adadelta import RULE as ADADELTA
from .adagrad import RULE as ADAGRAD
from .adam import RULE as ADAM
from .adamax import RULE as ADAMAX
from .lion import RULE as LION
from .nadam import RULE as NADAM
from .radam import RULE as RADAM
from .rmsprop import RULE as RMSPROP
from .sgd import RULE as SGD

ALL: tuple[Rule, ...] = (SGD, ADAGRAD, RMSPROP, ADADELTA, ADAM, ADAMAX, NADAM, RADAM, LION)

__all__ = ["ALL", "Rule", "SGD", "ADAGRAD", "RMSPROP", "ADADELTA", "ADAM", "ADAMAX", "NADAM",
           "RADAM", "LION"]
