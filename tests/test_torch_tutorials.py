"""The programs of PyTorch's tutorial "Learning PyTorch with Examples"
(tests/torch_tutorials/*.py: each with ``import tracegraph as torch`` for ``import
torch``, nothing else changed) run on tracegraph beside the same text on PyTorch, from
the same initial values (``randn`` draws from one seeded numpy stream on both, and
Python's ``random`` is seeded alike), and print the same losses and results to float32
tolerance (without PyTorch installed, as in CI, each still runs and must learn): manual gradients on tensors, ``requires_grad`` and ``.backward()``, a custom
``autograd.Function``, an ``nn.Module`` with ``nn.Parameter`` and ``optim.SGD``, and a
forward with a Python loop of random length (SGD with momentum).

The default run trains each for fewer steps than the tutorial (its loop bound is
rewritten in the text run); ``-m slow`` runs them as written.
"""

from __future__ import annotations

import contextlib
import io
import math
import pathlib
import random
import re

import numpy as np
import pytest

import tracegraph

try:
    import torch
except ImportError:  # CI's environment: the programs still run and learn here
    torch = None

HERE = pathlib.Path(__file__).parent / "torch_tutorials"
IMPORT = "import tracegraph as torch  # the one changed line: was `import torch`"
# program, the tutorial's loop bound, the default run's
PROGRAMS = [("polynomial_tensor.py", 2000, 400), ("polynomial_autograd.py", 2000, 400),
            ("polynomial_custom_function.py", 2000, 400), ("polynomial_module.py", 2000, 400),
            ("dynamic_net.py", 30000, 2000)]
NUMBER = re.compile(r"-?\d+(?:\.\d+)?(?:e[-+]?\d+)?")


def _randn(lib):
    rng = np.random.default_rng(0)

    def randn(*shape, dtype=None, requires_grad=False, device=None, **_):
        if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
            shape = tuple(shape[0])
        values = rng.standard_normal(shape).astype(np.float32)
        return lib.tensor(values, dtype=dtype, requires_grad=requires_grad)

    return randn


def _run(name: str, steps: int, lib, monkeypatch) -> list[str]:
    text = (HERE / name).read_text(encoding="utf-8")
    assert IMPORT in text
    bound = next(n for p, n, _ in PROGRAMS if p == name)
    if steps != bound:
        text = text.replace(f"range({bound})", f"range({steps})")
        assert f"range({steps})" in text
    if lib is torch:
        text = text.replace(IMPORT, "import torch")
    monkeypatch.setattr(lib, "randn", _randn(lib))
    random.seed(0)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(text, name, "exec"), {"__name__": "__main__"})  # noqa: S102
    return out.getvalue().splitlines()


def _numbers(lines) -> list[float]:
    return [float(v) for line in lines for v in NUMBER.findall(line.replace("x^", "x "))
            if v not in ("2", "3", "4", "5")]


def _check(name, steps, monkeypatch):
    ours = _run(name, steps, tracegraph, monkeypatch)
    assert ours[-1].startswith("Result: y = "), ours
    losses = [float(line.split()[1]) for line in ours[:-1]]
    assert losses and all(math.isfinite(v) for v in losses), ours
    if len(losses) > 1:
        assert losses[-1] < losses[0], f"{name} does not learn: {losses}"
    if torch is None:
        return
    theirs = _run(name, steps, torch, monkeypatch)
    assert len(ours) == len(theirs)
    got, want = _numbers(ours), _numbers(theirs)
    assert len(got) == len(want)
    np.testing.assert_allclose(got, want, rtol=2e-3, atol=2e-5, err_msg=f"{name}: {ours[-1]} / {theirs[-1]}")


@pytest.mark.parametrize("name,bound,steps", PROGRAMS, ids=[p[0][:-3] for p in PROGRAMS])
def test_tutorial_program_matches_pytorch(name, bound, steps, monkeypatch):
    _check(name, steps, monkeypatch)


@pytest.mark.slow
@pytest.mark.parametrize("name,bound,steps", PROGRAMS, ids=[p[0][:-3] for p in PROGRAMS])
def test_tutorial_program_as_written_matches_pytorch(name, bound, steps, monkeypatch):
    _check(name, bound, monkeypatch)
