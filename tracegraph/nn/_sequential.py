"""`Sequential`: layers (modules or plain functions) applied one after another."""

from __future__ import annotations

import functools
import inspect

from ..core import scope
from ..frontend.fn_random import split
from ._module import Module


@functools.cache
def _accepts(cls) -> tuple[bool, bool]:
    """Whether a module class's call takes ``key=`` and ``train=`` keywords (its own
    ``__call__`` if it wrote one, else ``forward``)."""
    fn = cls.forward
    for base in cls.__mro__:
        if base is Module:
            break
        call = base.__dict__.get("__call__")
        if call is not None:
            fn = getattr(call, "__wrapped__", call)
            break
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False, False
    var_kw = any(p.kind is p.VAR_KEYWORD for p in params.values())
    return var_kw or "key" in params, var_kw or "train" in params


class Sequential(Module):
    """Apply ``layers`` in order: ``x = layer(x)``: ``Sequential([a, b])``, or PyTorch's
    ``Sequential(a, b)`` and ``Sequential(OrderedDict(...))``. Elements are modules or plain
    functions of one argument (``tg.relu``, ``lambda x: x * 2``); functions are static
    data, not parameters.

    The elements are named ``0``, ``1``, ... (their scopes in the IR, and their parameter
    paths: ``model.0.weight``); a function element's nodes get its index as scope too.
    ``key`` (split once per element) and ``train`` are passed to the modules whose call
    takes them (Dropout, MultiHeadAttention, nested Sequentials).

    Example::

        mlp = tg.nn.Sequential([tg.nn.Linear(784, 128, key=k1), tg.relu,
                                tg.nn.Dropout(0.1), tg.nn.Linear(128, 10, key=k2)])
        logits = mlp(x, key=k3)             # mlp.eval()(x) for inference
    """

    _tg_index_fields = frozenset({"layers"})

    def __init__(self, *layers):
        # Sequential([a, b]) as here and in Keras; Sequential(a, b) and
        # Sequential(OrderedDict(...)) as in PyTorch
        if len(layers) == 1 and isinstance(layers[0], dict):
            layers = tuple(layers[0].values())
        elif len(layers) == 1 and isinstance(layers[0], (list, tuple)):
            layers = tuple(layers[0])
        self.layers = tuple(layers)
        for i, layer in enumerate(self.layers):
            if not callable(layer):
                raise TypeError(f"Sequential element {i} is a {type(layer).__name__}, not callable")

    def forward(self, x, *, key=None, train=None):
        keys = split(key, len(self.layers)) if key is not None and self.layers else None
        for i, layer in enumerate(self.layers):
            if isinstance(layer, Module):
                takes_key, takes_train = _accepts(type(layer))
                kwargs = {}
                if takes_key and keys is not None:
                    kwargs["key"] = keys[i]
                if takes_train and train is not None:
                    kwargs["train"] = train
                x = layer(x, **kwargs)
            else:
                with scope(str(i)):
                    x = layer(x)
        return x

    def __getitem__(self, i):
        if isinstance(i, slice):
            return Sequential(self.layers[i])
        return self.layers[i]

    def __len__(self):
        return len(self.layers)

    def __iter__(self):
        return iter(self.layers)
