"""Logistic regression on the Wisconsin breast cancer data set (scikit-learn's copy).

    python examples/logistic_regression.py [--mode jit|interpret|eager|compile|imperative] [--compare]

One `tg.nn.Linear(30, 1)` on the standardized features, trained with Adam on the binary
cross-entropy of its logit; prints the test accuracy (target >= 0.95).
"""

from __future__ import annotations

import tracegraph as tg
from tracegraph.nn import functional as F

from _common import eval_mode, on_device, parser, train, train_batches


def loss_fn(model, batch):
    logits = model(batch["x"])[:, 0]
    return F.binary_cross_entropy_with_logits(logits, batch["y"].astype("f32"))


def accuracy(model, batch):
    pred = (model(batch["x"])[:, 0] > 0).astype("i32")
    return {"accuracy": tg.mean((pred == batch["y"]).astype("f32"))}


def main(argv=None):
    args = parser(__doc__.splitlines()[0], epochs=30, batch_size=32, lr=0.01).parse_args(argv)
    with on_device(args.device, mesh=args.mesh):
        ds = tg.data.load_breast_cancer(seed=args.seed)
        print(ds)
        model = tg.nn.Linear(ds.x_train.shape[1], 1, key=tg.random.key(args.seed))
        state, hist = train(args, model, train_batches(ds.train, args), loss=loss_fn,
                            optimizer=tg.optim.adam(args.lr),
                            keras_loss=tg.losses.BinaryCrossentropy(from_logits=True))
        mode = eval_mode(args.mode)
        test = tg.train.evaluate(accuracy, state.model, [ds.test], mode=mode)["accuracy"]
        train_acc = tg.train.evaluate(accuracy, state.model, [ds.train], mode=mode)
        print(f"train accuracy {train_acc['accuracy']:.4f}, "
              f"test accuracy {test:.4f} (target >= 0.95)")
        return {"test_accuracy": test, "final_loss": hist.losses[-1],
                "time_per_step": hist.time_per_step, "losses": hist.losses}


if __name__ == "__main__":
    main()
