"""Layers with explicit forward and backward passes.

A layer's ``params`` and ``grads`` are lists of NumPy arrays of the same shapes, made once:
``backward`` writes the gradients into the same arrays at every call, and an optimizer updates
``params`` in place. (Keeping the arrays lets the fused executor reuse its plan from step to
step.) ``forward`` keeps what ``backward`` needs, so they are called in pairs.

Shapes: inputs are ``(batch, features)``. A Dense weight is ``(fan_in, fan_out)``: ``y = x W +
b``.
"""

from __future__ import annotations

import numpy as np

from ..native.aligned import aligned_empty
from .activations import Activation
from .matmul import matmul, matmul_nt, matmul_tn
from .underflow import flush_tiny


class Dense:
    def __init__(self, weight: np.ndarray, bias: np.ndarray) -> None:
        # the weight and its gradient at 64-byte boundaries, which the products read fastest
        self.W = aligned_empty(weight.shape, weight.dtype)
        self.W[...] = weight
        self.b = bias
        self.params = [self.W, self.b]
        weight_grad = aligned_empty(weight.shape, weight.dtype)
        weight_grad[...] = 0
        self.grads = [weight_grad, np.zeros_like(self.b)]
        self.needs_input_grad = True  # the first layer of a network does not

    def forward(self, x: np.ndarray) -> np.ndarray:
        y = self.product(x)
        y += self.b
        return y

    def product(self, x: np.ndarray) -> np.ndarray:
        """``x W`` without the bias, in a new array (a Block adds the bias in its
        activation's pass); keeps ``x`` for ``backward``."""
        self.x = x
        return matmul(x, self.W)

    def backward(self, dy: np.ndarray, bias_done: bool = False) -> np.ndarray | None:
        """Fills the gradients (the bias's too, unless ``bias_done``: a Block's activation
        has written it) and returns the input's gradient."""
        dW, db = self.grads
        matmul_tn(self.x, dy, dW)
        if not bias_done:
            np.sum(dy, axis=0, out=db)
        return matmul_nt(dy, self.W) if self.needs_input_grad else None


class LayerNorm:
    """Normalises each example over its features, then scales and shifts (Ba et al. 2016):
    y = (x − mean) / √(var + eps) · γ + β, the biased variance, as torch.nn.LayerNorm."""

    def __init__(self, features: int, dtype, eps: float = 1e-5) -> None:
        self.gamma = np.ones(features, dtype)
        self.beta = np.zeros(features, dtype)
        self.eps = eps
        self.params = [self.gamma, self.beta]
        self.grads = [np.zeros_like(self.gamma), np.zeros_like(self.beta)]

    def forward(self, x: np.ndarray) -> np.ndarray:
        mean = x.mean(axis=1, keepdims=True)
        centred = x - mean
        variance = np.mean(centred * centred, axis=1, keepdims=True)
        self.inv_std = 1 / np.sqrt(variance + x.dtype.type(self.eps))
        self.normed = centred * self.inv_std
        return self.normed * self.gamma + self.beta

    def backward(self, dy: np.ndarray) -> np.ndarray:
        dgamma, dbeta = self.grads
        np.sum(dy * self.normed, axis=0, out=dgamma)
        np.sum(dy, axis=0, out=dbeta)
        dn = dy * self.gamma
        # d/dx of (x − mean)·inv_std, for the whole row at once
        return self.inv_std * (
            dn - dn.mean(axis=1, keepdims=True)
            - self.normed * np.mean(dn * self.normed, axis=1, keepdims=True)
        )


class Block:
    """One hidden layer: Dense, optionally LayerNorm, then the activation; with ``residual``
    the block's input is added to its output (He et al. 2016), which needs equal widths.

    The block is the unit of the per-layer diagnostics: its Dense weight's gradient, norm and
    update, and its activation's saturated or dead fraction.
    """

    def __init__(self, dense: Dense, activation: Activation | None,
                 norm: LayerNorm | None = None, residual: bool = False) -> None:
        if residual and dense.W.shape[0] != dense.W.shape[1]:
            raise ValueError(
                f"a residual block needs as many outputs as inputs, got {dense.W.shape}")
        self.dense, self.norm, self.activation, self.residual = dense, norm, activation, residual
        self.params = dense.params + (norm.params if norm else [])
        self.grads = dense.grads + (norm.grads if norm else [])
        self.output: np.ndarray | None = None  # the activation's output, for the diagnostics

    def forward(self, x: np.ndarray) -> np.ndarray:
        if self.activation is not None and self.norm is None:
            # the bias is added within the activation's pass (one pass for sigmoid)
            y = self.activation.forward_biased(self.dense.product(x), self.dense.b)
        else:
            y = self.dense.forward(x)
            if self.norm is not None:
                y = self.norm.forward(y)
            if self.activation is not None:
                y = self.activation.forward(y)
        if self.activation is not None:
            self.output = y
        return x + y if self.residual else y

    def backward(self, dy: np.ndarray) -> np.ndarray | None:
        if self.activation is not None and self.norm is None:
            # the flush and the bias gradient within the activation's pass, as in forward
            d = self.activation.backward_to_bias(dy, self.dense.grads[1])
            dx = self.dense.backward(d, bias_done=True)
        else:
            d = dy
            if self.activation is not None:
                d = self.activation.backward(d)
            if self.norm is not None:
                d = self.norm.backward(d)
            if d is not dy:  # a fresh array: the caller's may still be needed
                flush_tiny(d)
            dx = self.dense.backward(d)
        if self.residual:
            dx = dy if dx is None else dx + dy
        return dx
