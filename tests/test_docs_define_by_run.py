"""docs/define_by_run.md shows the tape and backward graph the code records: this test
regenerates them and fails when the page drifts (TRACEGRAPH_UPDATE_DOCS=1 rewrites it)."""

import os
import pathlib
import re

import numpy as np

import tracegraph as tg

DOC = pathlib.Path(__file__).resolve().parent.parent / "docs" / "define_by_run.md"

SRC = '''import numpy as np
import tracegraph as tg

tg.manual_seed(0)
x = tg.tensor(np.linspace(-1, 1, 8, dtype=np.float32))
y = 2.0 * x + 0.5
w = tg.randn(1, requires_grad=True)
b = tg.zeros(1, requires_grad=True)

for step in range(200):
    loss = ((w * x + b - y) ** 2).mean()
    if step == 199:
        print(loss.tape())             # the forward the ops recorded
        print(loss.backward_graph())   # what backward() runs
    loss.backward()
    with tg.no_grad():
        w -= 0.1 * w.grad
        b -= 0.1 * b.grad
    w.grad.zero_()
    b.grad.zero_()
print(f"w={w.item():.3f} b={b.item():.3f}")
'''


COMPILE_SRC = '''import numpy as np
import tracegraph as tg


@tg.compile
def scale(x):
    if x.sum() > 0:  # a Python `if` on a tensor's value: a guard
        return x * 2
    return -x


for v in ([1.0, 2.0], [-1.0, -2.0], [3.0, 1.0], [-3.0, 0.5]):
    print(scale(np.array(v, np.float32)))
for path in scale.paths():
    print(path)
print(scale.explain())
print("calls run compiled:", scale.compiled_calls)
'''

LOOP_SRC = '''import numpy as np
import tracegraph as tg


@tg.compile
def newton_sqrt(a):
    x = a
    while True:
        nxt = 0.5 * (x + a / x)
        if tg.max(tg.abs(nxt - x)) < 1e-3:  # a guard in every iteration
            return nxt
        x = nxt


print(newton_sqrt(np.array([4.0, 9.0], np.float32)))
print(newton_sqrt(np.array([4.1, 9.1], np.float32)))  # the same 5 decisions: compiled
print(newton_sqrt.paths()[0])
'''


def _run(src, name):
    import contextlib
    import io

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(src, name, "exec"), {})
    return out.getvalue().rstrip()


def render():
    import contextlib
    import io

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(SRC, "linreg.py", "exec"), {})
    text = out.getvalue().rstrip()
    tape, rest = text.split("\n}\n", 1)
    bwd, final = rest.split("\n}\n", 1)
    return {
        "source": SRC.rstrip(), "tape": tape + "\n}", "backward": bwd + "\n}", "result": final,
        "compile_source": COMPILE_SRC.rstrip(), "compile_output": _run(COMPILE_SRC, "scale.py"),
        "loop_source": LOOP_SRC.rstrip(), "loop_output": _run(LOOP_SRC, "newton.py"),
    }


def _block(name, text, lang):
    return f"<!-- {name} -->\n```{lang}\n{text}\n```\n<!-- /{name} -->"


def test_define_by_run_page_shows_current_graphs():
    np.seterr(all="ignore")
    page = DOC.read_text()
    for name, text in render().items():
        lang = "python" if name.endswith("source") else "text"
        pattern = re.compile(rf"<!-- {name} -->\n```\w*\n(?:.*?\n)?```\n<!-- /{name} -->", re.S)
        assert pattern.search(page), f"docs/define_by_run.md lacks the {name} block"
        page = pattern.sub(lambda m: _block(name, text, lang), page)
    if os.environ.get("TRACEGRAPH_UPDATE_DOCS"):
        DOC.write_text(page)
    assert DOC.read_text() == page, "docs/define_by_run.md is stale: run with TRACEGRAPH_UPDATE_DOCS=1"
