"""The `tracegraph dump / show / run` commands, end to end in a subprocess
(``python -m tracegraph``), on the quickstart example model."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import tracegraph as tg

ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p)}
ENV.pop("TRACEGRAPH_DUMP", None)
MLP = f"{ROOT / 'examples' / 'quickstart.py'}:mlp"
MLP_ARGS = ["--arg", "f32[4,8]", "--arg", "f32[8,16]", "--arg", "f32[16]", "--arg", "f32[16,3]",
            "--arg", "f32[3]"]


def tracegraph(*argv, cwd=None, check=True):
    proc = subprocess.run([sys.executable, "-m", "tracegraph", *map(str, argv)], env=ENV,
                          cwd=cwd or ROOT, capture_output=True, text=True, timeout=600)
    if check:
        assert proc.returncode == 0, proc.stderr
    return proc


def mlp_inputs(path):
    rng = np.random.default_rng(0)
    arrays = {"x": rng.standard_normal((4, 8)), "w1": rng.standard_normal((8, 16)),
              "b1": rng.standard_normal(16), "w2": rng.standard_normal((16, 3)),
              "b2": rng.standard_normal(3)}
    arrays = {k: v.astype(np.float32) for k, v in arrays.items()}
    np.savez(path, **arrays)
    return arrays


@pytest.mark.parametrize("command", ["dump", "show", "run"])
def test_help(command):
    out = tracegraph(command, "--help").stdout
    assert f"usage: tracegraph {command}" in out
    assert ("--inputs" if command == "run" else "--format") in out


# five subprocesses (about 15 s): -m slow; tests/test_cli.py dumps in-process, test_help
# runs `python -m tracegraph` by default
@pytest.mark.slow
def test_dump_text_json_dot_and_hlo(tmp_path):
    text = tracegraph("dump", MLP, *MLP_ARGS).stdout
    assert text.startswith("graph mlp(%x: f32[4,8], %w1: f32[8,16]") and "log_softmax(" in text
    assert "quickstart.py:20" in text
    g = tg.Graph.from_json(tracegraph("dump", MLP, *MLP_ARGS, "--format", "json").stdout)
    assert str(g) == text.rstrip("\n")
    dot = tracegraph("dump", MLP, *MLP_ARGS, "--format", "dot").stdout
    assert dot.startswith("digraph \"mlp\"")
    assert "stablehlo.dot_general" in tracegraph("dump", MLP, *MLP_ARGS, "--format", "stablehlo").stdout
    tracegraph("dump", "examples.quickstart:mlp", *MLP_ARGS, "--format", "hlo", "-o", tmp_path / "m.hlo")
    assert "HloModule" in (tmp_path / "m.hlo").read_text()


@pytest.mark.slow  # a subprocess per case; test_dump_text_json_dot_and_hlo covers dumping
def test_dump_passes_option(tmp_path):
    src = tmp_path / "model.py"
    src.write_text("import tracegraph as tg\n\ndef f(x):\n    return -(-x) * 1.0 + tg.exp(x)\n")
    raw = tracegraph("dump", f"{src}:f", "--arg", "f32[3]", "--passes", "none").stdout
    assert raw.count("neg(") == 2 and "mul(" in raw
    opt = tracegraph("dump", "model:f", "--arg", "f32[3]", cwd=tmp_path).stdout
    assert "neg(" not in opt and "mul(" not in opt and "exp(" in opt
    only = tracegraph("dump", f"{src}:f", "--arg", "f32[3]", "--passes", "simplify").stdout
    assert "neg(" in only  # simplify alone leaves the dead nodes to dce
    bad = tracegraph("dump", f"{src}:f", "--arg", "f32[3]", "--passes", "nope", check=False)
    assert bad.returncode == 1 and "unknown pass 'nope'" in bad.stderr


@pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz dot is not installed")
def test_dump_svg(tmp_path):
    tracegraph("dump", MLP, *MLP_ARGS, "--format", "svg", "-o", tmp_path / "mlp.svg")
    assert "<svg" in (tmp_path / "mlp.svg").read_text()


# about 20 s of subprocesses: -m slow; tests/test_cli.py runs dump/show/run in-process
@pytest.mark.slow
def test_save_show_and_run(tmp_path):
    tracegraph("dump", MLP, *MLP_ARGS, "--format", "tg", "-o", tmp_path / "mlp.tg")
    shown = tracegraph("show", tmp_path / "mlp.tg").stdout
    assert shown.startswith("graph mlp(") and "relu(" in shown
    tracegraph("dump", MLP, *MLP_ARGS, "--format", "json", "-o", tmp_path / "mlp.json")
    assert tracegraph("show", tmp_path / "mlp.json").stdout == shown
    (tmp_path / "mlp.txt").write_text(shown)
    assert tracegraph("show", tmp_path / "mlp.txt").stdout == shown

    arrays = mlp_inputs(tmp_path / "in.npz")
    h = np.maximum(arrays["x"] @ arrays["w1"] + arrays["b1"], 0) @ arrays["w2"] + arrays["b2"]
    want = h - np.log(np.exp(h).sum(-1, keepdims=True))
    for extra in ([], ["--interpret"]):
        out = tracegraph("run", tmp_path / "mlp.tg", "--inputs", tmp_path / "in.npz", *extra,
                         "-o", tmp_path / "out.npz").stdout
        assert ("interpreter" if extra else "jit") in out and "output 0: f32[4,3]" in out
        with np.load(tmp_path / "out.npz") as got:
            np.testing.assert_allclose(got["out_0"], want, rtol=1e-5, atol=1e-5)


@pytest.mark.slow  # subprocesses; test_save_show_and_run covers `tracegraph run`
def test_run_positional_inputs_profile_and_errors(tmp_path):
    g = tg.trace(lambda x, y: tg.log(x) * y, tg.spec((3,)), tg.spec((3,)))
    tg.save(g, tmp_path / "g.tg")
    np.savez(tmp_path / "pos.npz", np.array([1.0, 2.0, 4.0], np.float32), np.ones(3, np.float32))
    out = tracegraph("run", tmp_path / "g.tg", "--inputs", tmp_path / "pos.npz", "--profile").stdout
    assert "by op:" in out and "log" in out
    np.savez(tmp_path / "nan.npz", x=np.array([1.0, -2.0, 4.0], np.float32), y=np.ones(3, np.float32))
    bad = tracegraph("run", tmp_path / "g.tg", "--inputs", tmp_path / "nan.npz", "--check-nans", check=False)
    assert bad.returncode == 1 and "NaN produced by node 0 (log)" in bad.stderr
    np.savez(tmp_path / "missing.npz", x=np.ones(3, np.float32))
    bad = tracegraph("run", tmp_path / "g.tg", "--inputs", tmp_path / "missing.npz", check=False)
    assert bad.returncode == 1 and "no array for input 1 (%y: f32[3])" in bad.stderr
    bad = tracegraph("show", tmp_path / "nothing.tg", check=False)
    assert bad.returncode == 1 and "no such file" in bad.stderr


def test_bad_arg_spec_is_a_usage_error():
    proc = tracegraph("dump", MLP, "--arg", "float[3", check=False)
    assert proc.returncode == 2 and "bad argument spec 'float[3'" in proc.stderr
