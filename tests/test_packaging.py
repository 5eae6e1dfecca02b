"""Packaging and the user's first contact: pyproject metadata, the `tracegraph` command,
the quickstart example, and the README example (its printed output must be what the
code really prints)."""

import ast
import importlib.metadata
import os
import re
import runpy
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import tracegraph as tg
from tracegraph import cli

ROOT = Path(__file__).resolve().parents[1]
# Subprocesses import this checkout's tracegraph whether or not it is pip-installed.
_PATH = [str(ROOT), os.environ.get("PYTHONPATH", "")]
ENV = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in _PATH if p)}

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    tomllib = None


def _pyproject():
    if tomllib is None:
        pytest.skip("tomllib needs Python >= 3.11")
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def test_pyproject_metadata_matches_package():
    project = _pyproject()["project"]
    assert project["name"] == "tracegraph"
    assert project["version"] == tg.__version__
    assert project["scripts"]["tracegraph"] == "tracegraph.cli:main"
    module, _, attr = project["scripts"]["tracegraph"].partition(":")
    assert module == cli.__name__ and callable(getattr(cli, attr))
    deps = " ".join(project["dependencies"])
    for name in ("jax", "jaxlib", "numpy", "optax"):
        assert re.search(rf"\b{name}\b", deps), name
    assert "flax" not in deps  # an optional extra: tracegraph itself never imports it
    assert set(project["optional-dependencies"]) >= {"test", "examples", "bench", "flax"}
    assert project["license"] == "Apache-2.0"
    assert "Apache License" in (ROOT / "LICENSE").read_text()


def _module_level_imports(path: Path) -> set[str]:
    """Top-level names of the modules a file imports when it is imported (not those
    imported inside functions, which are optional and say so when missing)."""
    found = set()
    body = list(ast.parse(path.read_text()).body)
    while body:
        node = body.pop()
        if isinstance(node, ast.Import):
            found.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module.split(".")[0])
        elif isinstance(node, (ast.Try, ast.If)):
            body += node.body + node.orelse + getattr(node, "finalbody", [])
            body += [n for h in getattr(node, "handlers", []) for n in h.body]
    return found


def test_every_package_tracegraph_imports_is_declared():
    declared = {re.match(r"[A-Za-z0-9_.-]+", d)[0].lower().replace("-", "_")
                for d in _pyproject()["project"]["dependencies"]}
    imported = set()
    for path in (ROOT / "tracegraph").rglob("*.py"):
        imported |= _module_level_imports(path)
    third_party = {m for m in imported - set(sys.stdlib_module_names) if m != "tracegraph"}
    assert third_party <= declared, f"imported, not declared: {sorted(third_party - declared)}"


def test_a_clone_folder_named_tracegraph_does_not_shadow_the_install(tmp_path):
    """A script run from the folder above a clone named ``tracegraph`` imports the
    installed package, not the clone folder as an empty namespace package."""
    try:
        dist = importlib.metadata.distribution("tracegraph")
    except importlib.metadata.PackageNotFoundError:
        pytest.skip("the package is not installed in this interpreter's environment")
    (tmp_path / "tracegraph").symlink_to(ROOT, target_is_directory=True)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    proc = subprocess.run(
        [sys.executable, "-c", "import tracegraph; print(tracegraph.__file__, tracegraph.__version__)"],
        check=False, capture_output=True, text=True, timeout=300, cwd=tmp_path, env=env,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split()[-1] == dist.version, proc.stdout


def test_cli_version(capsys):
    assert cli.main(["version"]) == 0
    assert capsys.readouterr().out.strip() == f"tracegraph {tg.__version__}"
    assert cli.main(["version", "-v"]) == 0
    assert "jax" in capsys.readouterr().out


def test_cli_without_command_prints_help_and_fails(capsys):
    assert cli.main([]) == 2
    assert "usage: tracegraph" in capsys.readouterr().out


def test_cli_demo(capsys):
    assert cli.main(["demo", "--batch", "3"]) == 0
    out = capsys.readouterr().out
    assert "graph mlp(" in out and "matmul(" in out and "relu(" in out
    assert "MISMATCH" not in out and out.count(" ok") == 3


def test_python_dash_m_help():
    proc = subprocess.run(
        [sys.executable, "-m", "tracegraph", "--help"],
        check=False, capture_output=True, text=True, timeout=300, env=ENV,
    )
    assert proc.returncode == 0, proc.stderr
    assert "usage: tracegraph" in proc.stdout
    assert "demo" in proc.stdout and "version" in proc.stdout


def test_installed_console_script():
    script = shutil.which("tracegraph", path=os.path.dirname(sys.executable))
    if script is None:
        pytest.skip("the package is not installed in this interpreter's environment")
    proc = subprocess.run(
        [script, "version"], check=False, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == f"tracegraph {tg.__version__}"


def test_quickstart_example_runs(capsys):
    runpy.run_path(str(ROOT / "examples" / "quickstart.py"), run_name="__main__")
    out = capsys.readouterr().out
    assert "graph mlp(" in out
    assert "jit, interpreter and define-by-run agree" in out
    assert "stablehlo" in out


def _readme_examples():
    """(code, printed output) pairs of the README section 'Three ways to run one function':
    each ```python block with the ```text block that follows it."""
    text = (ROOT / "README.md").read_text()
    section = text.split("## Three ways to run one function", 1)[1].split("\n## ", 1)[0]
    pairs = re.findall(r"```python\n(.*?)```.*?```text\n(.*?)```", section, re.DOTALL)
    assert pairs, "README.md lost its example section"
    return pairs


@pytest.mark.parametrize("index", range(3))
def test_readme_example_output_is_real(tmp_path, index):
    pairs = _readme_examples()
    if index >= len(pairs):
        pytest.skip("README has fewer examples")
    code, expected = pairs[index]
    (tmp_path / "example.py").write_text(code)
    proc = subprocess.run(
        [sys.executable, "example.py"],
        check=False, capture_output=True, text=True, timeout=300, cwd=tmp_path, env=ENV,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == expected, (
        f"README.md example {index + 1} prints something else now: save its code as "
        "example.py, run it, and paste the output into the ```text block below it\n" + proc.stdout
    )
