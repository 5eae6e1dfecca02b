"""The seed articles' PyTorch programs (tests/seed_programs/torch_00N_*.py, verbatim but
for their import lines) run on tracegraph with the data their TensorFlow twins get, and
learn; docs/seeds.md shows both programs of each article, what they print, and the IR of
their training steps, as the snippets in tests/seed_harness.py make them (a block that
drifts fails here; ``TRACEGRAPH_UPDATE_DOCS=1`` rewrites it, one process at a time:
``TRACEGRAPH_UPDATE_DOCS=1 pytest tests/test_seed_twins.py -m "slow or not slow" -n 0``).

Articles 000 and 001 run in the default set (about 9 s on the shared 2-core machine);
002-004 train for longer (an LSTM unrolled on the tape, MNIST, two CNNs) and are marked
slow.
"""

from __future__ import annotations

import inspect
import os
import pathlib
import re

import pytest
import seed_harness
from seed_harness import PROGRAMS, run_snippet, shown

DOC = pathlib.Path(__file__).resolve().parent.parent / "docs" / "seeds.md"
PROGRAM_FILES = {a: (next(PROGRAMS.glob(f"tf_{a}_*.py")).name,
                     next(PROGRAMS.glob(f"torch_{a}_*.py")).name)
                 for a in ("000", "001", "002", "003", "004")}
# the only lines of a PyTorch twin that differ from its article
TORCH_IMPORTS = re.compile(
    r"^import tracegraph( as torch|\.nn as nn|\.optim as optim)  # .*`import torch")


def program_text(name: str) -> str:
    """A seed program from its first import on (its docstring left out)."""
    src = (PROGRAMS / name).read_text(encoding="utf-8")
    return src[src.index("\nimport ") + 1:].rstrip()


def rendered(article: str, ns: dict, out: str) -> dict:
    tf_name, torch_name = PROGRAM_FILES[article]
    loss = ns["torch_loss"]
    return {
        f"tf_{article}": (program_text(tf_name), "python"),
        f"torch_{article}": (program_text(torch_name), "python"),
        f"run_{article}": (seed_harness.SNIPPETS[article].rstrip(), "python"),
        f"out_{article}": (out, "text"),
        f"tf_ir_{article}": (shown(ns["tf_graph"]), "text"),
        f"torch_tape_{article}": (shown(loss.tape()), "text"),
        f"torch_backward_{article}": (shown(loss.backward_graph()), "text"),
    }


def check_page(blocks: dict) -> None:
    """Every block of ``blocks`` in docs/seeds.md is what the code gave."""
    before = DOC.read_text(encoding="utf-8")
    page = before
    for name, (text, lang) in blocks.items():
        pattern = re.compile(rf"<!-- {name} -->\n```\w*\n(?:.*?\n)?```\n<!-- /{name} -->", re.DOTALL)
        assert pattern.search(page), f"docs/seeds.md lacks the {name} block"
        fresh = f"<!-- {name} -->\n```{lang}\n{text}\n```\n<!-- /{name} -->"
        page = pattern.sub(lambda m, fresh=fresh: fresh, page)
    if page != before and os.environ.get("TRACEGRAPH_UPDATE_DOCS"):
        DOC.write_text(page, encoding="utf-8")
        before = page
    stale = [n for n in blocks if _block(before, n) != _block(page, n)]
    assert not stale, f"docs/seeds.md is stale in {stale}: run with TRACEGRAPH_UPDATE_DOCS=1"


def _block(page: str, name: str) -> str:
    m = re.search(rf"<!-- {name} -->\n(.*?)<!-- /{name} -->", page, re.DOTALL)
    return m.group(1) if m else ""


def test_the_twins_differ_from_their_articles_only_in_imports():
    for _, torch_name in PROGRAM_FILES.values():
        src = (PROGRAMS / torch_name).read_text(encoding="utf-8")
        imports = [line for line in src.splitlines() if line.startswith("import ")]
        assert imports and all(TORCH_IMPORTS.match(line) for line in imports), (torch_name, imports)
        assert "tracegraph" not in src[src.index("\nimport "):].split("\n\n", 1)[1], torch_name


def test_the_page_shows_the_harness():
    source = "\n\n\n".join(inspect.getsource(f).rstrip() for f in
                           (seed_harness.run, seed_harness.keras_step_graph, seed_harness.shown))
    check_page({"harness": (source, "python")})


# -- 000: leaf tensors, backward(), manual SGD under no_grad --------------------------------


def test_000_both_programs_reach_the_line():
    ns, out = run_snippet("000")
    for who in ("tf_ns", "torch_ns"):
        w, b = float(ns[who]["w"].numpy()[0]), float(ns[who]["b"].numpy()[0])
        assert abs(w - 3.0) < 0.02 and abs(b - 2.0) < 0.02, (who, w, b)
    check_page(rendered("000", ns, out))


# -- 001: nn.Module, MSELoss, optim.SGD ------------------------------------------------------


def test_001_both_programs_train():
    ns, out = run_snippet("001")
    losses = ns["tf_ns"]["model"].history.history["loss"]
    assert len(losses) == 100 and losses[-1] < losses[0]
    assert ns["untrained"].item() > 1.0 and ns["torch_ns"]["loss"].item() < 1e-4
    check_page(rendered("001", ns, out))


# -- 002: the LSTM class (PyTorch's call: (seq, batch, feature), (h0, c0)) ------------------


@pytest.mark.slow  # about 25 s: the LSTM's backward is unrolled over the text
def test_002_mnist_and_the_lstm_learn():
    ns, out = run_snippet("002")
    accuracy = ns["tf_ns"]["model"].evaluate(ns["tf_ns"]["x_test"], ns["tf_ns"]["y_test"],
                                             verbose=0)[1]
    assert accuracy > 0.75, accuracy
    assert ns["losses"][-1] < ns["losses"][0] / 10, ns["losses"]
    assert ns["out"] == ns["text"], ns["out"]
    check_page(rendered("002", ns, out))


# -- 003: regression; both programs end in a line that only looks like an accuracy ---------


@pytest.mark.slow  # about 10 s (compiling both programs' steps)
def test_003_both_regressions_train():
    ns, out = run_snippet("003")
    history = ns["tf_ns"]["model"].history.history["loss"]
    assert len(history) == 10 and history[-1] < history[0]
    assert "TypeError: cannot unpack non-iterable float" in out
    assert ns["torch_ns"]["loss"].item() < ns["before"].item()
    check_page(rendered("003", ns, out))


# -- 004: the CNN (F supplied; three input channels, channels first) ------------------------


@pytest.mark.slow  # about 35 s: two CNNs, 3 and 5 epochs
def test_004_both_cnns_learn():
    ns, out = run_snippet("004")
    assert ns["tf_accuracy"] > 0.85 and ns["accuracy"].item() > 0.5, out
    check_page(rendered("004", ns, out))
