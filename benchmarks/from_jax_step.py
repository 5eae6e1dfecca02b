"""A whole JAX train step converted by tg.from_jax, compiled by tg.jit, against the same
step under jax.jit, side by side in one run, on models of the model zoo
(tests/test_model_zoo.py): a Flax linen Transformer language model, a linen ResNet with
train-mode BatchNorm, an Equinox ViT; each step is value_and_grad (dropout on) and the
optax chain of the zoo's tests (global-norm clipping, AdamW with a warmup-cosine schedule).

    python benchmarks/from_jax_step.py [--repeat 15] [--number 50] [--hlo DIR]

Prints microseconds per step (median of --repeat rounds of --number steps, the two rows
taking turns within each round), the ratio tg/jax, and the instruction count of each
optimized HLO module; --hlo DIR writes both StableHLO and optimized HLO texts there.
"""

from __future__ import annotations

import argparse
import os
import re
import sys

import jax
from _timing import timed_rows  # benchmarks/_timing.py (the script's folder is on the path)

import tracegraph as tg

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests"))
from test_from_jax_random import _optimizer, _train_step  # noqa: E402
from test_model_zoo import ZOO, _stateful_train_step  # noqa: E402

MODELS = ["linen-transformer-lm", "linen-resnet", "equinox-vit"]


def step_and_args(name):
    value_and_grad, params, batch, state = ZOO[name]()
    tx = _optimizer()
    key = jax.random.key(42)
    if state is None:
        return _train_step(value_and_grad, tx), (params, tx.init(params), batch, key)
    return _stateful_train_step(value_and_grad, tx), (params, state, tx.init(params), batch, key)


def hlo_instructions(compiled_text):
    """Instructions in an optimized HLO module (lines of the form ``%x = ...``)."""
    return len(re.findall(r"^\s*(?:ROOT )?%\S+ = ", compiled_text, flags=re.MULTILINE))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeat", type=int, default=15)
    ap.add_argument("--number", type=int, default=50)
    ap.add_argument("--models", nargs="*", default=MODELS, choices=sorted(ZOO))
    ap.add_argument("--hlo", help="write each model's StableHLO and optimized HLO here")
    args = ap.parse_args(argv)

    print(f"device {jax.devices()[0].platform}, jax {jax.__version__}; "
          f"median of {args.repeat} rounds x {args.number} steps")
    print(f"{'model':24s} {'tg.jit us':>10s} {'jax.jit us':>10s} {'tg/jax':>7s} "
          f"{'tg HLO':>7s} {'jax HLO':>7s}")
    for name in args.models:
        step, step_args = step_and_args(name)
        ours, theirs = tg.jit(tg.from_jax(step)), jax.jit(step)
        lowered = {"tg": ours.lower(*step_args), "jax": theirs.lower(*step_args)}
        compiled = {k: v.compile().as_text() for k, v in lowered.items()}
        if args.hlo:
            os.makedirs(args.hlo, exist_ok=True)
            for k in lowered:
                with open(os.path.join(args.hlo, f"{name}.{k}.stablehlo.mlir"), "w") as f:
                    f.write(lowered[k].as_text())
                with open(os.path.join(args.hlo, f"{name}.{k}.optimized.hlo"), "w") as f:
                    f.write(compiled[k])
        t_tg, t_jax = timed_rows([lambda: ours(*step_args), lambda: theirs(*step_args)],
                                 args.repeat, args.number)
        print(f"{name:24s} {t_tg * 1e6:10.1f} {t_jax * 1e6:10.1f} {t_tg / t_jax:7.3f} "
              f"{hlo_instructions(compiled['tg']):7d} {hlo_instructions(compiled['jax']):7d}")


if __name__ == "__main__":
    main()
