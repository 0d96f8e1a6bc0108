"""NumPy networks with explicit forward and backward passes: the lab's subjects.

Parameters and gradients are plain arrays (``MLP.params``, ``MLP.grads``) that any descentlab
optimizer updates in place::

    net = MLP(MLPSpec(inputs=64, outputs=10, depth=10, activation="sigmoid"))
    opt = optim.Adam(net.params, lr=1e-3)
    loss = net.loss_and_grad(x, y)
    opt.step(net.grads)
"""

from .activations import ACTIVATIONS, make_activation
from .init import INITS, make_init
from .layers import Block, Dense, LayerNorm
from .losses import LOSSES, mean_squared_error, softmax_cross_entropy
from .network import MLP, MLPSpec

__all__ = [
    "ACTIVATIONS", "INITS", "LOSSES", "MLP", "Block", "Dense", "LayerNorm", "MLPSpec",
    "make_activation", "make_init", "mean_squared_error", "softmax_cross_entropy",
]
