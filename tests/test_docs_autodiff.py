"""docs/autodiff.md shows IR printed by the code: this test regenerates it and fails when
the page drifts (TRACEGRAPH_UPDATE_DOCS=1 rewrites the page's IR blocks)."""

import os
import pathlib
import re

import tracegraph as tg

DOC = pathlib.Path(__file__).resolve().parent.parent / "docs" / "autodiff.md"

SRC = '''import tracegraph as tg
import tracegraph.nn.functional as F


def mlp(params, x):
    with tg.scope("fc1"):
        h = tg.tanh(x @ params["w1"] + params["b1"])
    with tg.scope("fc2"):
        return h @ params["w2"] + params["b2"]


def loss(params, x, labels):
    return F.cross_entropy(mlp(params, x), labels)
'''


def render():
    ns = {}
    exec(compile(SRC, "mlp.py", "exec"), ns)
    params = {"w1": tg.spec((4, 8)), "b1": tg.spec((8,)), "w2": tg.spec((8, 3)), "b2": tg.spec((3,))}
    args = (params, tg.spec((2, 4)), tg.spec((2,), "i32"))
    return {
        "source": SRC.rstrip(),
        "forward": str(tg.trace(ns["loss"], *args)),
        "backward": str(tg.trace(tg.grad(ns["loss"]), *args)),
    }


def _block(name, text, lang):
    return f"<!-- {name} -->\n```{lang}\n{text}\n```\n<!-- /{name} -->"


def test_autodiff_page_shows_current_ir():
    page = DOC.read_text()
    blocks = render()
    for name, text in blocks.items():
        lang = "python" if name == "source" else "text"
        pattern = re.compile(rf"<!-- {name} -->\n```\w*\n(?:.*?\n)?```\n<!-- /{name} -->", re.S)
        assert pattern.search(page), f"docs/autodiff.md lacks the {name} block"
        page = pattern.sub(lambda m: _block(name, text, lang), page)
    if os.environ.get("TRACEGRAPH_UPDATE_DOCS"):
        DOC.write_text(page)
    assert DOC.read_text() == page, "docs/autodiff.md is stale: run with TRACEGRAPH_UPDATE_DOCS=1"
