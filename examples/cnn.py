"""A small convolutional network on handwritten digits (scikit-learn's 8x8 digits).

    python examples/cnn.py --compare      # the README's main demo
    python examples/cnn.py --mesh data=8  # data parallel over 8 devices (simulated on CPU)

Conv2d(1, 32, 3) -> ReLU -> MaxPool2d(2) -> Conv2d(32, 64, 3) -> ReLU -> MaxPool2d(2) ->
Flatten -> Linear(256, 128) -> ReLU -> Linear(128, 10), on standardized 1x8x8 images,
trained with Adam (cosine-decayed learning rate) on the label-smoothed cross-entropy.
Prints the mode comparison (with ``--compare``), a progress bar, the time per step, the
model's IR summary and the test accuracy (target >= 0.97).
"""

from __future__ import annotations

import tracegraph as tg
from tracegraph.nn import functional as F

from _common import accuracy_fn, eval_mode, on_device, parser, train, train_batches


def make_model(n_classes: int = 10, *, key):
    k1, k2, k3, k4 = tg.random.split(key, 4)
    return tg.nn.Sequential([
        tg.nn.Conv2d(1, 32, 3, padding=1, key=k1), tg.nn.ReLU(), tg.nn.MaxPool2d(2),   # 32x4x4
        tg.nn.Conv2d(32, 64, 3, padding=1, key=k2), tg.nn.ReLU(), tg.nn.MaxPool2d(2),  # 64x2x2
        tg.nn.Flatten(),
        tg.nn.Linear(64 * 2 * 2, 128, key=k3), tg.nn.ReLU(),
        tg.nn.Linear(128, n_classes, key=k4),
    ])


def loss_fn(model, batch):
    return F.cross_entropy(model(batch["x"]), batch["y"], label_smoothing=0.1)


def keras_loss(y_true, y_pred):
    """The same loss for ``--mode keras``, as Keras users pass a function to compile:
    per-example values of ``(labels, logits)`` (Keras' sparse cross-entropy has no label
    smoothing)."""
    return F.cross_entropy(y_pred, y_true, label_smoothing=0.1, reduction="none")


def main(argv=None):
    args = parser(__doc__.splitlines()[0], epochs=15, batch_size=32, lr=2e-3).parse_args(argv)
    with on_device(args.device, mesh=args.mesh):
        ds = tg.data.load_digits(seed=args.seed, image=True, standardize=True)
        print(ds)
        model = make_model(ds.num_classes, key=tg.random.key(args.seed))
        data = train_batches(ds.train, args)
        total = args.steps or len(data)
        optimizer = tg.optim.adam(tg.optim.cosine_decay_schedule(args.lr, total))
        state, hist = train(args, model, data, loss=loss_fn, optimizer=optimizer,
                            keras_loss=keras_loss)
        test = tg.train.evaluate(accuracy_fn, state.model,
                                 tg.data.batches(ds.test, 1024), mode=eval_mode(args.mode))["accuracy"]
        print("IR summary of the model (nodes per module scope, parameters):")
        print(tg.nn.summary(state.model, tg.spec((args.batch_size, 1, 8, 8))))
        print(f"test accuracy {test:.4f} (target >= 0.97)")
        return {"test_accuracy": test, "final_loss": hist.losses[-1],
                "time_per_step": hist.time_per_step, "losses": hist.losses}


if __name__ == "__main__":
    main()
