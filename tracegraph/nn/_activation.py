"""Activation functions as modules (for `Sequential`); plain functions such as
``tg.relu`` work there as well."""

from __future__ import annotations

from ..frontend import fn_math
from . import functional as F
from ._module import Module


class ReLU(Module):
    """``max(x, 0)``."""

    def forward(self, x):
        return fn_math.relu(x)


class GELU(Module):
    """GELU; ``approximate=True`` (the tanh form, JAX's default) or False (erf form,
    PyTorch's default)."""

    def __init__(self, approximate: bool = True):
        self.approximate = bool(approximate)

    def forward(self, x):
        return fn_math.gelu(x, approximate=self.approximate)


class Tanh(Module):
    """``tanh(x)``."""

    def forward(self, x):
        return fn_math.tanh(x)


class Sigmoid(Module):
    """``1 / (1 + exp(-x))``."""

    def forward(self, x):
        return fn_math.sigmoid(x)


class SiLU(Module):
    """``x * sigmoid(x)``."""

    def forward(self, x):
        return F.silu(x)


class Softmax(Module):
    """Softmax along ``axis`` (default the last)."""

    def __init__(self, axis: int = -1):
        self.axis = int(axis)

    def forward(self, x):
        return F.softmax(x, axis=self.axis)


class LogSoftmax(Module):
    """Log-softmax along ``axis`` (default the last)."""

    def __init__(self, axis: int = -1):
        self.axis = int(axis)

    def forward(self, x):
        return F.log_softmax(x, axis=self.axis)
