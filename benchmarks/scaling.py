"""Step time of the examples' Transformer language model on meshes of 1, 2, 4 and 8
devices (data parallel, and data x tensor parallel), each run in its own process as a
user runs it: ``examples/transformer.py --mesh ...``.

    python benchmarks/scaling.py [--steps 40] [--batch-size 32] [--meshes data=1,data=2,...]

On a machine without as many accelerators, the devices are simulated host devices
(``XLA_FLAGS=--xla_force_host_platform_device_count=N``, set here for each run): they
share the host's cores, so the times say what the partitioning costs, not what real
devices gain. Prints ms per step (the median the example reports, after its first step)
and the loss after the last step, which must agree across meshes.
"""

from __future__ import annotations

import argparse
import os
import pathlib
import re
import subprocess
import sys

import numpy as np

EXAMPLE = pathlib.Path(__file__).resolve().parent.parent / "examples" / "transformer.py"
_RESULT = re.compile(r"([\d.]+) ms per step .*loss ([\d.]+) -> ([\d.]+)")


def run(mesh: str, steps: int, batch_size: int) -> tuple[float, float]:
    """(ms per step, final loss) of one run of the example on ``mesh``."""
    devices = int(np.prod([int(part.split("=")[1]) for part in mesh.split(",")]))
    env = dict(os.environ)
    flags = [f for f in env.get("XLA_FLAGS", "").split() if "device_count" not in f]
    if "JAX_PLATFORMS" not in env or env["JAX_PLATFORMS"] == "cpu":
        flags.append(f"--xla_force_host_platform_device_count={devices}")
    env["XLA_FLAGS"] = " ".join(flags)
    cmd = [sys.executable, str(EXAMPLE), "--mesh", mesh, "--steps", str(steps), "--batch-size",
           str(batch_size), "--no-progress"]
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=1800)
    m = _RESULT.search(out.stdout)
    if out.returncode != 0 or m is None:
        raise SystemExit(f"{' '.join(cmd)} failed ({out.returncode}):\n{out.stdout[-2000:]}\n{out.stderr[-2000:]}")
    return float(m.group(1)), float(m.group(3))


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--steps", type=int, default=40)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--meshes", default="data=1,data=2,data=4,data=8,data=4;model=2",
                   help="comma-separated meshes; ';' joins the axes of one (data=4;model=2)")
    a = p.parse_args(argv)
    rows = []
    for spec in a.meshes.split(","):
        mesh = spec.replace(";", ",")
        ms, loss = run(mesh, a.steps, a.batch_size)
        rows.append((mesh, ms, loss))
        print(f"{mesh:<16} {ms:9.2f} ms/step  loss {loss:.4f}", flush=True)
    base = rows[0][1]
    print(f"\n{'mesh':<16} {'ms/step':>9} {'vs first':>9} {'final loss':>11}")
    for mesh, ms, loss in rows:
        print(f"{mesh:<16} {ms:9.2f} {ms / base:8.2f}x {loss:11.4f}")


if __name__ == "__main__":
    main()
