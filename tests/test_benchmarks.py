"""The benchmark scripts (benchmarks/*.py) still run: each once with the smallest
settings, in its own process, printing its table (timings are not checked: the scripts
are run by hand for numbers, see docs/benchmarks.md). Slow set only."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import has_module

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"

# script -> (smallest arguments, text its table prints, modules it needs)
RUNS = {
    "define_by_run.py": (["--repeat", "1", "--number", "1", "--floor"], "called alone", ()),
    "dispatch.py": (["--repeat", "1", "--number", "5"], "tg/jax", ()),
    "interpreter.py": (["--repeat", "1", "--number", "1", "--nodes", "20"], "us/node", ()),
    "train_step.py": (["--repeat", "1", "--number", "1"], "us/step", ()),
    "tracing.py": (["--sizes", "100", "--repeat", "1"], "us/node", ()),
    "seeds.py": (["--repeat", "1", "--number", "1"], "one training step", ()),
    "from_jax_step.py": (["--repeat", "1", "--number", "1", "--models", "linen-transformer-lm"],
                         "tg/jax", ("flax",)),
    "scaling.py": (["--steps", "2", "--meshes", "data=1,data=2"], "ms/step", ()),
}


def test_every_script_is_listed():
    assert sorted(RUNS) == sorted(p.name for p in BENCHMARKS.glob("*.py") if not p.name.startswith("_"))


@pytest.mark.slow
@pytest.mark.parametrize("script", sorted(RUNS))
def test_benchmark_script_runs(script):
    args, expected, needs = RUNS[script]
    for module in needs:
        if not has_module(module):
            pytest.skip(f"{script} needs {module}")
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(BENCHMARKS.parent), env.get("PYTHONPATH", "")])
    done = subprocess.run([sys.executable, script, *args], cwd=BENCHMARKS, env=env,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-4000:]
    assert expected in done.stdout, done.stdout[-2000:]
