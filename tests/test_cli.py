"""The `tracegraph` command in-process (`tracegraph.cli.main`): what a user sees from
`demo`, and the one-line ``tracegraph: error: ...`` (never a traceback) for a missing
``--arg`` or device; 64-bit types stay 64-bit. The end-to-end subprocess runs are in
test_cli_passes.py."""

import re

import jax
import numpy as np
import pytest

from tracegraph import cli

F64_MODULE = '''\
def affine(x, y):
    return x * 2 + y
'''


@pytest.fixture
def affine(tmp_path):
    path = tmp_path / "f64mod.py"
    path.write_text(F64_MODULE)
    return f"{path}:affine"


def _one_error_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("tracegraph: error: "), err
    assert "Traceback" not in err
    return lines[0]


def test_demo_locations_are_the_demo_lines(capsys):
    assert cli.main(["demo", "--batch", "2"]) == 0
    out = capsys.readouterr().out
    assert "def mlp(x, w1, b1, w2, b2):" in out  # the source the locations refer to
    locations = re.findall(r"= \w+\(.*#\s*(\S+)", out)
    assert len(locations) == 10, out  # 5 nodes, jitted and recorded define-by-run
    assert set(locations) == {f"{cli.DEMO_FILE}:5", f"{cli.DEMO_FILE}:6"}, out
    assert out.count(" ok") == 3


@pytest.mark.parametrize("given", [[], ["--arg", "f32[3]"]])
def test_dump_with_missing_args_is_one_error_line(capsys, affine, given):
    assert cli.main(["dump", affine, *given]) == 1
    captured = capsys.readouterr()
    line = _one_error_line(captured.err)
    assert "takes 2 positional argument(s) (x, y)" in line and "--arg" in line
    assert captured.out == ""


def test_dump_keeps_float64(capsys, affine):
    assert cli.main(["dump", affine, "--arg", "f64[3]", "--arg", "f64[]"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("graph affine(%x: f64[3], %y: f64[]) -> (f64[3])"), out
    assert "f32" not in out
    assert not jax.config.jax_enable_x64  # turned on for the command only
    assert cli.main(["dump", affine, "--arg", "f64[3]", "--arg", "f64[]", "--format", "stablehlo"]) == 0
    assert "tensor<3xf64>" in capsys.readouterr().out


def test_saved_float64_graph_shows_and_runs_in_float64(capsys, tmp_path, affine):
    saved, inputs, outputs = tmp_path / "affine.tg", tmp_path / "in.npz", tmp_path / "out.npz"
    assert cli.main(["dump", affine, "--arg", "f64[2]", "--arg", "f64[]", "--format", "tg",
                     "-o", str(saved)]) == 0
    x = np.array([1 + 1e-12, -3.0])  # 1e-12 is lost in float32
    np.savez(inputs, x=x, y=np.float64(0.5))
    assert cli.main(["show", str(saved)]) == 0
    assert "%x: f64[2]" in capsys.readouterr().out
    for mode in ([], ["--interpret"]):
        assert cli.main(["run", str(saved), "--inputs", str(inputs), "-o", str(outputs), *mode]) == 0
        captured = capsys.readouterr()
        assert "output 0: f64[2]" in captured.out and "note:" not in captured.err
        with np.load(outputs) as got:
            assert got["out_0"].dtype == np.float64
            np.testing.assert_array_equal(got["out_0"], x * 2 + 0.5)
    assert not jax.config.jax_enable_x64


def test_run_says_when_it_converts_an_input(capsys, tmp_path, affine):
    saved, inputs = tmp_path / "affine.tg", tmp_path / "in.npz"
    assert cli.main(["dump", affine, "--arg", "f32[2]", "--arg", "f32[]", "--format", "tg",
                     "-o", str(saved)]) == 0
    np.savez(inputs, x=np.array([1.0, 2.0]), y=np.float32(1))  # x: numpy's float64
    assert cli.main(["run", str(saved), "--inputs", str(inputs)]) == 0
    err = capsys.readouterr().err
    assert "note: input 0 (%x) is float64" in err and "f32[2]" in err
    assert "input 1" not in err


def _missing_kind():
    for kind in ("gpu", "tpu"):
        try:
            jax.devices(kind)
        except RuntimeError:
            return kind
    pytest.skip("this machine has both a GPU and a TPU")


@pytest.mark.parametrize("command", ["demo", "run"])
def test_missing_device_is_one_error_line(capsys, tmp_path, affine, command):
    kind = _missing_kind()
    if command == "run":
        saved, inputs = tmp_path / "affine.tg", tmp_path / "in.npz"
        assert cli.main(["dump", affine, "--arg", "f32[2]", "--arg", "f32[]", "--format", "tg",
                         "-o", str(saved)]) == 0
        np.savez(inputs, x=np.ones(2, np.float32), y=np.float32(1))
        capsys.readouterr()
        argv = ["run", str(saved), "--inputs", str(inputs), "--device", kind]
    else:
        argv = ["demo", "--device", kind]
    assert cli.main(argv) == 1
    captured = capsys.readouterr()
    line = _one_error_line(captured.err)
    assert f"--device {kind}: this machine has no {kind.upper()}" in line
    assert captured.out == ""


def test_device_cpu_runs_the_demo(capsys):
    assert cli.main(["demo", "--batch", "2", "--device", "cpu"]) == 0
    assert capsys.readouterr().out.count(" ok") == 3
