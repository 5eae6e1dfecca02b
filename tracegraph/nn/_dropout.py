"""`Dropout`, with an explicit key and a train/eval switch."""

from __future__ import annotations

from . import functional as F
from ._module import Module


class Dropout(Module):
    """Zero each element with probability ``rate`` and scale the rest by
    ``1 / (1 - rate)``; the identity when not training.

    Training is decided per call: ``train=`` if given, else the module's ``training``
    flag (True when built; ``model.eval()`` returns a copy with every flag off). In
    training the call needs a PRNG key: ``drop(x, key=k)``.

    Example::

        drop = tg.nn.Dropout(0.1)
        y = drop(x, key=k)                  # training
        y = drop(x, train=False)            # or drop.eval()(x): identity
    """

    def __init__(self, rate: float = 0.5, *, training: bool = True):
        if not 0.0 <= rate < 1.0:
            raise ValueError(f"Dropout rate must be in [0, 1), got {rate}")
        self.rate = float(rate)
        self.training = bool(training)

    def forward(self, x, *, key=None, train=None):
        train = self.training if train is None else bool(train)
        return F.dropout(x, key, rate=self.rate, train=train)
