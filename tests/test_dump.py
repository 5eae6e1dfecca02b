"""Compilation dumps: tg.jit(dump=DIR) and TRACEGRAPH_DUMP=DIR write, per function and
signature, the traced IR, the IR after each pass, JSON, DOT, StableHLO, optimized HLO
and an index; nothing is written on the cached-call path."""

import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

import tracegraph as tg
from tracegraph.jit import JitFunction
from tracegraph.transforms import DEFAULT_PIPELINE

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def expected_files(passes=DEFAULT_PIPELINE):
    names = ["00_traced.txt"]
    names += [f"{i + 1:02d}_after_{p}.txt" for i, p in enumerate(passes)]
    n = len(names)
    names += [f"{n:02d}_graph.json", f"{n + 1:02d}_graph.dot", f"{n + 2:02d}_stablehlo.mlir",
              f"{n + 3:02d}_hlo_optimized.txt", "index.txt", "report.html"]
    return names


def model(x, w):
    with tg.scope("layer"):
        h = tg.tanh(x @ w) * 1.0
    return tg.sum(h * h)


def test_dump_writes_every_stage(tmp_path):
    f = tg.jit(model, dump=tmp_path)
    x, w = np.ones((2, 3), np.float32), np.ones((3, 4), np.float32)
    f(x, w)
    d = tmp_path / "model" / "0"
    assert sorted(p.name for p in d.iterdir()) == sorted(expected_files())
    traced = (d / "00_traced.txt").read_text()
    assert "graph model(%x: f32[2,3], %w: f32[3,4])" in traced and "mul(" in traced
    final = (d / "05_after_dce.txt").read_text()
    assert final.strip() == str(f.trace(x, w))
    assert traced.count("= mul(") == 2 and final.count("= mul(") == 1  # h * 1.0 is gone
    assert "stablehlo" in (d / "08_stablehlo.mlir").read_text()
    assert "HloModule" in (d / "09_hlo_optimized.txt").read_text()
    index = (d / "index.txt").read_text()
    assert "signature: x: f32[2,3], w: f32[3,4]" in index and "traced because: first call" in index
    for name in expected_files():
        if name == "index.txt":
            continue
        assert name in index
    assert "simplify" in index and "total" in index


def test_dump_json_and_dot_are_readable(tmp_path):
    f = tg.jit(model, dump=tmp_path)
    x, w = np.ones((2, 3), np.float32), np.ones((3, 4), np.float32)
    f(x, w)
    d = tmp_path / "model" / "0"
    g = tg.Graph.from_json((d / "06_graph.json").read_text())
    assert str(g) == str(f.trace(x, w))
    dot_text = (d / "07_graph.dot").read_text()
    assert dot_text.startswith("digraph") and "layer" in dot_text
    if shutil.which("dot"):
        proc = subprocess.run(["dot", "-Tsvg"], input=dot_text.encode(), capture_output=True)
        assert proc.returncode == 0, proc.stderr.decode()
        assert b"<svg" in proc.stdout


def test_one_folder_per_signature_and_why_it_traced(tmp_path):
    f = tg.jit(lambda x: x * 2.0, dump=tmp_path)
    f(np.ones(3, np.float32))
    f(np.ones(3, np.float32))
    f(np.ones(5, np.float32))
    top = tmp_path / "lambda"
    assert sorted(p.name for p in top.iterdir()) == ["0", "1"]
    index = (top / "1" / "index.txt").read_text()
    assert "x: f32[3] -> f32[5]" in index


def test_trace_alone_writes_the_ir_and_the_call_adds_the_hlo(tmp_path):
    f = tg.jit(lambda x: x + 1.0, dump=tmp_path, passes=["dce"])
    x = np.ones(2, np.float32)
    f.trace(x)
    d = tmp_path / "lambda" / "0"
    assert sorted(p.name for p in d.iterdir()) == [
        "00_traced.txt", "01_after_dce.txt", "02_graph.json", "03_graph.dot", "index.txt",
        "report.html"]
    f(x)
    assert (d / "04_stablehlo.mlir").exists() and (d / "05_hlo_optimized.txt").exists()
    assert "05_hlo_optimized.txt" in (d / "index.txt").read_text()


def test_functions_with_one_name_get_their_own_folders(tmp_path):
    def step(x):
        return x * 2.0

    a = tg.jit(step, dump=tmp_path)
    b = tg.jit(step, dump=tmp_path)
    a(np.ones(2, np.float32))
    b(np.ones(2, np.float32))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["step", "step_2"]


def test_environment_variable(tmp_path, monkeypatch):
    monkeypatch.setenv("TRACEGRAPH_DUMP", str(tmp_path))
    f = tg.jit(lambda x: -x)
    f(np.ones(2, np.float32))
    assert (tmp_path / "lambda" / "0" / "00_traced.txt").exists()
    off = tg.jit(lambda y: -y, dump=False)
    off(np.ones(2, np.float32))
    assert not [p for p in tmp_path.iterdir() if p.name.startswith("lambda_")]


def test_dumping_stays_off_the_cached_call_path(tmp_path, monkeypatch):
    monkeypatch.delenv("TRACEGRAPH_DUMP", raising=False)
    plain = tg.jit(lambda x: x * 2.0)
    assert type(plain) is JitFunction  # the plain class: __call__ calls jax.jit directly
    dumped = tg.jit(lambda x: x * 2.0, dump=tmp_path)
    assert type(dumped) is not JitFunction and isinstance(dumped, JitFunction)
    x = np.ones(3, np.float32)
    dumped(x)
    calls = []
    monkeypatch.setattr(dumped._dumper, "write_compiled", lambda *a: calls.append(a))
    monkeypatch.setattr(dumped._dumper, "write_ir", lambda *a: calls.append(a))
    for _ in range(3):
        dumped(x)
    assert calls == [] and dumped.trace_count == 1


@pytest.mark.slow
def test_example_leaves_a_trail(tmp_path):
    """TRACEGRAPH_DUMP=DIR python examples/quickstart.py: traced IR through optimized HLO."""
    env = dict(os.environ, TRACEGRAPH_DUMP=str(tmp_path), PYTHONPATH=ROOT)
    proc = subprocess.run([sys.executable, os.path.join(ROOT, "examples", "quickstart.py")],
                          env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    d = tmp_path / "mlp" / "0"
    assert sorted(p.name for p in d.iterdir()) == sorted(expected_files())


def test_hlo_names_each_ir_node_its_scope_and_user_line():
    """The optimized HLO's op_name metadata (what profiles show) and the StableHLO
    locations lead back to the IR node (its printed result and op), its module scope and
    the user's line."""
    def f(x, w):
        with tg.scope("enc"), tg.scope("0"):
            h = tg.relu(x @ w)  # the line the HLO names
        return (h * 2.0).sum()

    line = f.__code__.co_firstlineno + 2
    x, w = np.ones((2, 3), np.float32), np.ones((3, 4), np.float32)
    lowered = tg.jit(f).lower(x, w)
    hlo = lowered.compile().as_text()
    here = f"test_dump.py:{line}"
    assert f'op_name="jit(f)/enc/0/%0 = matmul at {here}/dot_general"' in hlo
    assert f"enc/0/%1 = relu at {here}" in hlo
    assert f"jit(f)/enc/0/%0 = matmul at {here}" in lowered.as_text(debug_info=True)


def _report(tmp_path):
    def f(x, w):
        with tg.scope("enc"), tg.scope("0"):
            h = tg.relu(x @ w) * 1.0  # the pass pipeline drops the * 1.0
        return (h + 0.0).sum()

    x, w = np.ones((2, 3), np.float32), np.ones((3, 4), np.float32)
    tg.jit(f, dump=tmp_path)(x, w)
    return tmp_path / "f" / "0" / "report.html"


def test_html_report_links_passes_nodes_and_hlo(tmp_path):
    path = _report(tmp_path)
    page = path.read_text()
    assert "report.html" in (path.parent / "index.txt").read_text()
    for section in ("id='traced'", "id='optimized'", "id='stablehlo'", "id='hlo'"):
        assert section in page
    assert "Pass simplify" in page and 'class="del"' in page  # the mul by 1.0, removed
    assert '<summary>enc</summary>' in page  # the module scope, foldable
    assert 'id="opt-0"' in page and 'href="#opt-0"' in page  # %0 defined and used
    assert "&#8594; %0 matmul at test_dump.py:" in page  # an HLO op linked to its node


def test_html_report_renders_in_a_headless_browser(tmp_path):
    browser = next((shutil.which(b) for b in ("chromium", "chromium-browser", "google-chrome")
                    if shutil.which(b)), None)
    if browser is None:
        pytest.skip("no Chromium (the OS package chromium) on this machine")
    path = _report(tmp_path)
    done = subprocess.run(
        [browser, "--headless", "--no-sandbox", "--disable-gpu", "--dump-dom", path.as_uri()],
        capture_output=True, text=True, timeout=120,
    )
    dom = done.stdout
    assert done.returncode == 0, done.stderr[-2000:]
    assert "<h2 id=\"optimized\">Optimized IR</h2>" in dom and "<details open=\"\">" in dom
    assert 'href="#opt-0"' in dom
