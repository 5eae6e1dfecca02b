"""Every documented snippet marked to run is run, and its shown output is what it prints.

In a page under docs/, a Python block preceded by an HTML comment ``<!-- run: NAME -->``
runs (the page's run blocks share one namespace, in order, so a later snippet uses what an
earlier one made), compiled with the file name NAME, so node locations and error messages
read ``NAME:line``. When the next fenced block is a ``text`` block (after at most a
paragraph of prose, such as "prints:", and no heading), it must be the
snippet's output: what it printed, or with ``<!-- run: NAME raises -->`` the error it
raised (``module.Class: message``). ``TRACEGRAPH_UPDATE_DOCS=1`` rewrites the outputs.
"""

import contextlib
import io
import os
import pathlib
import re

import numpy as np
import pytest

DOCS = pathlib.Path(__file__).resolve().parent.parent / "docs"

# <!-- run: NAME [raises] -->, the python block, then optionally the text block
SNIPPET = re.compile(
    r"<!-- run: (?P<name>[\w.-]+)(?P<raises> raises)? -->\n"
    r"```python\n(?P<src>.*?)```\n"
    r"(?:\n*(?:(?!```|<!--|#)[^\n]+\n\n?)*(?P<out_open>```text\n)(?P<out>.*?)```\n)?",
    re.S,
)
PAGES = sorted(p for p in DOCS.glob("*.md") if "<!-- run: " in p.read_text())


def run_snippets(page: str) -> str:
    """``page`` with each run block's output block rewritten from what the code does."""
    namespace = {"__name__": "__doc_snippet__"}
    pieces, last = [], 0
    for m in SNIPPET.finditer(page):
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            try:
                exec(compile(m["src"], m["name"], "exec"), namespace)
                error = None
            except Exception as e:  # noqa: BLE001 - the documented error is the output
                if not m["raises"]:
                    raise AssertionError(f"snippet {m['name']} raised {type(e).__name__}: {e}") from e
                error = f"{type(e).__module__}.{type(e).__qualname__}: {e}"
        if m["raises"] and error is None:
            raise AssertionError(f"snippet {m['name']} is documented to raise, and did not")
        text = (error if error is not None else out.getvalue()).rstrip("\n")
        pieces.append(page[last:m.start()])
        block = page[m.start():m.end()]
        if m["out_open"] is not None:
            start, end = m.start("out") - m.start(), m.end("out") - m.start()
            block = block[:start] + (text + "\n" if text else "") + block[end:]
        elif text:
            raise AssertionError(f"snippet {m['name']} prints output the page does not show:\n{text}")
        pieces.append(block)
        last = m.end()
    pieces.append(page[last:])
    return "".join(pieces)


@pytest.mark.parametrize("path", PAGES, ids=[p.name for p in PAGES])
def test_documented_snippets_print_what_the_page_shows(path, tmp_path, monkeypatch):
    np.seterr(all="ignore")
    monkeypatch.chdir(tmp_path)
    page = path.read_text()
    assert SNIPPET.search(page), f"{path.name}: no runnable snippet"
    try:
        new = run_snippets(page)
    except AssertionError as e:
        if isinstance(e.__cause__, ModuleNotFoundError):  # an optional extra (Flax ...)
            pytest.skip(f"docs/{path.name} needs {e.__cause__.name}")
        raise
    if os.environ.get("TRACEGRAPH_UPDATE_DOCS"):
        path.write_text(new)
    assert path.read_text() == new, f"docs/{path.name} is stale: run with TRACEGRAPH_UPDATE_DOCS=1"


def test_the_runner_rewrites_outputs_and_reports_errors():
    page = ("intro\n<!-- run: a.py -->\n```python\nx = 2\nprint(x * 21)\n```\n\n```text\nold\n```\n"
            "<!-- run: b.py -->\n```python\nprint(x + 1)\n```\nprints:\n```text\n3\n```\n"
            "<!-- run: c.py raises -->\n```python\n1 / 0\n```\n```text\n```\nend\n")
    assert run_snippets(page) == page.replace("old", "42").replace(
        "```python\n1 / 0\n```\n```text\n```", "```python\n1 / 0\n```\n```text\nbuiltins.ZeroDivisionError: division by zero\n```")
    with pytest.raises(AssertionError, match="prints output the page does not show"):
        run_snippets("<!-- run: d.py -->\n```python\nprint(1)\n```\n")
    with pytest.raises(AssertionError, match="snippet e.py raised ZeroDivisionError"):
        run_snippets("<!-- run: e.py -->\n```python\n1 / 0\n```\n")
