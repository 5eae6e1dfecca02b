"""Linear regression: recover the weights of y = X w_true + b_true + noise.

    python examples/linear_regression.py [--mode jit|interpret|eager|compile|imperative] [--compare]

A `tg.nn.Linear(8, 1)` trained with Adam on the mean squared error, from synthetic data
with a fixed seed; prints the largest error of the learned weights and bias.
"""

from __future__ import annotations

import numpy as np

import tracegraph as tg
from tracegraph.nn import functional as F

from _common import on_device, parser, train, train_batches

FEATURES = 8


def make_data(n: int, seed: int):
    """``X`` (n, 8) standard normal, ``y = X w_true + b_true + 0.1 * noise``."""
    rng = np.random.default_rng(seed)
    w_true = rng.uniform(-2, 2, FEATURES).astype(np.float32)
    b_true = np.float32(rng.uniform(-1, 1))
    x = rng.standard_normal((n, FEATURES), dtype=np.float32)
    y = x @ w_true + b_true + 0.1 * rng.standard_normal(n, dtype=np.float32)
    return x, y[:, None].astype(np.float32), w_true, b_true


def loss_fn(model, batch):
    return F.mse_loss(model(batch["x"]), batch["y"])


def main(argv=None):
    args = parser(__doc__.splitlines()[0], epochs=10, batch_size=32, lr=0.05).parse_args(argv)
    with on_device(args.device, mesh=args.mesh):
        x, y, w_true, b_true = make_data(2048, args.seed)
        model = tg.nn.Linear(FEATURES, 1, key=tg.random.key(args.seed))
        data = train_batches({"x": x, "y": y}, args)
        state, hist = train(args, model, data, loss=loss_fn, optimizer=tg.optim.adam(args.lr),
                            keras_loss="mse")
        w = np.asarray(state.model.weight)[0]
        b = float(np.asarray(state.model.bias)[0])
        err = max(float(np.abs(w - w_true).max()), abs(b - float(b_true)))
        fmt = {"float_kind": lambda v: f"{v:6.3f}"}
        print(f"true    w {np.array2string(w_true, formatter=fmt)}  b {float(b_true):6.3f}")
        print(f"learned w {np.array2string(w, formatter=fmt)}  b {b:6.3f}")
        print(f"max abs error of the weights and bias: {err:.4f} (target < 0.05)")
        return {"max_abs_error": err, "final_loss": hist.losses[-1],
                "time_per_step": hist.time_per_step, "losses": hist.losses}


if __name__ == "__main__":
    main()
