"""A multi-layer perceptron on handwritten digits (scikit-learn's 8x8 digits, or MNIST).

    python examples/mlp.py [--mode jit|interpret|eager|compile|imperative] [--compare] [--print-ir]
    python examples/mlp.py --data-dir ~/data/mnist      # MNIST/Fashion-MNIST IDX files

Linear -> ReLU -> Linear -> ReLU -> Linear, trained with Adam on the cross-entropy; prints
the test accuracy (target >= 0.95), the model's IR summary, and with ``--print-ir`` the
whole train step as IR: the forward pass, the backward pass (`tg.value_and_grad`, scoped
``grad/...``) and the Adam update (captured from optax through `tg.from_jax`).
"""

from __future__ import annotations

import tracegraph as tg
from tracegraph.nn import functional as F

from _common import KERAS_CROSS_ENTROPY, accuracy_fn, eval_mode, on_device, parser, train, train_batches


def make_model(n_in: int, hidden: int, n_out: int, *, key):
    k1, k2, k3 = tg.random.split(key, 3)
    return tg.nn.Sequential([
        tg.nn.Linear(n_in, hidden, key=k1), tg.nn.ReLU(),
        tg.nn.Linear(hidden, hidden, key=k2), tg.nn.ReLU(),
        tg.nn.Linear(hidden, n_out, key=k3),
    ])


def loss_fn(model, batch):
    return F.cross_entropy(model(batch["x"]), batch["y"])


def main(argv=None):
    p = parser(__doc__.splitlines()[0], epochs=30, batch_size=64, lr=1e-3)
    p.add_argument("--data-dir", default=None,
                   help="a folder with MNIST/Fashion-MNIST IDX files (default: the digits)")
    p.add_argument("--hidden", type=int, default=128, help="width of the hidden layers")
    p.add_argument("--print-ir", action="store_true",
                   help="print the train step's IR: forward, backward and Adam update")
    args = p.parse_args(argv)
    with on_device(args.device, mesh=args.mesh):
        if args.data_dir:
            ds = tg.data.load_mnist(args.data_dir)
        else:
            ds = tg.data.load_digits(seed=args.seed, standardize=True)
        print(ds)
        n_in = ds.x_train.shape[1]
        model = make_model(n_in, args.hidden, ds.num_classes, key=tg.random.key(args.seed))
        optimizer = tg.optim.adam(args.lr)
        data = train_batches(ds.train, args)
        if args.print_ir:
            step = tg.train.make_step(loss_fn, optimizer)
            state0 = tg.train.TrainState(model, optimizer.init(model), 0)
            batch = next(iter(data))
            print("the train step (forward, backward, Adam update) as tracegraph IR:")
            print(tg.jit(step).trace(state0, batch))
        state, hist = train(args, model, data, loss=loss_fn, optimizer=optimizer,
                            keras_loss=KERAS_CROSS_ENTROPY)
        test = tg.train.evaluate(accuracy_fn, state.model,
                                 tg.data.batches(ds.test, 1024), mode=eval_mode(args.mode))["accuracy"]
        print("IR summary of the model (nodes per module scope, parameters):")
        print(tg.nn.summary(state.model, tg.spec((args.batch_size, n_in))))
        print(f"test accuracy {test:.4f} (target >= 0.95)")
        return {"test_accuracy": test, "final_loss": hist.losses[-1],
                "time_per_step": hist.time_per_step, "losses": hist.losses}


if __name__ == "__main__":
    main()
