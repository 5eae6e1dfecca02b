"""`batches`: minibatches of numpy arrays, shuffled deterministically from a key or seed.

Shuffling uses a numpy `Generator`, not JAX: drawing a permutation of 60,000 indices is a
host-side job, and keeping it off the device keeps data loading independent of the
execution mode (jit, interpreter or eager) that consumes the batches.
"""

from __future__ import annotations

import numbers

import numpy as np

from ._errors import DataError
from ._rng import numpy_generator


class Batches:
    """An iterable over minibatches; built by `batches`. Iterating again replays the
    same batches in the same order. ``len()`` is the total number of batches."""

    def __init__(self, arrays, batch_size, *, key=None, seed=None, drop_last=False, epochs=1):
        if isinstance(batch_size, bool) or not isinstance(batch_size, numbers.Integral) \
                or batch_size < 1:
            raise DataError(f"batches: batch_size must be a positive int, got {batch_size!r}")
        if epochs is not None and (isinstance(epochs, bool)
                                   or not isinstance(epochs, numbers.Integral) or epochs < 0):
            raise DataError(f"batches: epochs must be an int >= 0 or None (repeat forever), "
                            f"got {epochs!r}")
        numpy_generator(seed, key=key, what="batches")  # validate the seed or key now
        self._kind, self._names, self._arrays = _unpack(arrays)
        self.num_examples = len(self._arrays[0])
        self.batch_size = int(batch_size)
        self.drop_last = bool(drop_last)
        self.epochs = None if epochs is None else int(epochs)
        self.shuffle = key is not None or seed is not None
        self._seed, self._key = seed, key

    @property
    def batches_per_epoch(self) -> int:
        n, b = self.num_examples, self.batch_size
        return n // b if self.drop_last else -(-n // b)

    def __len__(self) -> int:
        if self.epochs is None:
            raise TypeError("batches(..., epochs=None) repeats forever and has no length")
        return self.batches_per_epoch * self.epochs

    def __iter__(self):
        rng = numpy_generator(self._seed, key=self._key, what="batches") if self.shuffle else None
        n, b, per_epoch = self.num_examples, self.batch_size, self.batches_per_epoch
        epoch = 0
        while self.epochs is None or epoch < self.epochs:
            order = rng.permutation(n) if rng is not None else None
            for i in range(per_epoch):
                sl = slice(i * b, min((i + 1) * b, n))
                idx = order[sl] if order is not None else sl
                yield self._pack([a[idx] for a in self._arrays])
            epoch += 1
            if per_epoch == 0 and self.epochs is None:
                return  # nothing to yield, ever: do not spin

    def _pack(self, parts):
        if self._kind == "dict":
            return dict(zip(self._names, parts))
        if self._kind == "tuple":
            return tuple(parts)
        if self._kind == "list":
            return parts
        return parts[0]

    def __repr__(self) -> str:
        return (f"Batches({self.num_examples} examples, batch_size={self.batch_size}, "
                f"shuffle={self.shuffle}, drop_last={self.drop_last}, epochs={self.epochs})")


def _unpack(arrays):
    if isinstance(arrays, dict):
        kind, names, items = "dict", list(arrays), list(arrays.values())
    elif isinstance(arrays, (tuple, list)):
        kind, names, items = type(arrays).__name__, None, list(arrays)
        if type(arrays) not in (tuple, list):
            kind = "tuple"
    else:
        kind, names, items = "array", None, [arrays]
    if not items:
        raise DataError("batches: no arrays given")
    out = []
    for i, a in enumerate(items):
        label = repr(names[i]) if names else str(i)
        try:
            a = np.asarray(a)  # jax arrays come to the host once, here
        except Exception as e:  # noqa: BLE001 - a traced value, a ragged list, ...
            raise DataError(f"batches: array {label} cannot be read as a numpy array ({e})") from None
        if a.ndim == 0:
            raise DataError(f"batches: array {label} is a scalar; batches split the first axis")
        out.append(a)
    lengths = {len(a) for a in out}
    if len(lengths) > 1:
        desc = ", ".join(f"{repr(names[i]) if names else i}: {len(a)}" for i, a in enumerate(out))
        raise DataError(f"batches: arrays differ in length along the first axis ({desc})")
    return kind, names, out


def batches(arrays, batch_size: int, *, key=None, seed=None, drop_last: bool = False,
            epochs: int | None = 1) -> Batches:
    """Minibatches of ``arrays`` along their first axis.

    Arguments:
        arrays: one array, a tuple/list of arrays, or a dict of arrays, all of the same
            length; each batch has the same form (a dict stays a dict).
        batch_size: examples per batch; the last batch of an epoch may be smaller.
        key, seed: shuffle with a permutation per epoch, drawn from a numpy generator
            seeded by a ``tg.random.key`` (``u32[2]``) or an int seed. Neither: in order.
        drop_last: leave out the last, smaller batch of each epoch.
        epochs: passes over the data; ``None`` repeats forever.

    Returns:
        a `Batches` iterable (re-iterable, same batches each time; ``len()`` works).

    Example::

        ds = tg.data.load_digits()
        for batch in tg.data.batches(ds.train, 128, key=tg.random.key(0), epochs=5):
            loss = train_step(batch["x"], batch["y"])
    """
    return Batches(arrays, batch_size, key=key, seed=seed, drop_last=drop_last, epochs=epochs)
