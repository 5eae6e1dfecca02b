"""Training-step speed, side by side in one run: an MLP gradient step compiled by tg.jit
(forward, IR-level backward and the update in one graph) against the same step written
by hand with jax.value_and_grad under jax.jit (and optax), and against PyTorch eager when
torch is installed. tg.eager and the interpreter are timed too, for the
define-then-run vs define-by-run contrast.

    python benchmarks/train_step.py [--batch 128] [--hidden 256] [--repeat 7] [--number 50]

Prints microseconds per step (median of --repeat runs of --number steps) and ratios.
"""

from __future__ import annotations

import argparse
import statistics
import time

import jax
import jax.numpy as jnp
import numpy as np

import tracegraph as tg
import tracegraph.nn.functional as F


def init_params(sizes, seed=0):
    rng = np.random.default_rng(seed)
    params = {}
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        params[f"w{i}"] = (rng.normal(size=(a, b)) / np.sqrt(a)).astype(np.float32)
        params[f"b{i}"] = np.zeros(b, np.float32)
    return params


def tg_loss(params, x, y):
    n = len(params) // 2
    h = x
    for i in range(n):
        h = h @ params[f"w{i}"] + params[f"b{i}"]
        if i < n - 1:
            h = tg.relu(h)
    return F.cross_entropy(h, y)


def jax_loss(params, x, y):
    n = len(params) // 2
    h = x
    for i in range(n):
        h = h @ params[f"w{i}"] + params[f"b{i}"]
        if i < n - 1:
            h = jax.nn.relu(h)
    logp = jax.nn.log_softmax(h)
    return -jnp.mean(jnp.take_along_axis(logp, y[:, None], axis=1))


LR = 0.05


def tg_sgd_step(params, x, y):
    loss, grads = tg.value_and_grad(tg_loss)(params, x, y)
    return loss, {k: params[k] - LR * grads[k] for k in params}


def jax_sgd_step(params, x, y):
    loss, grads = jax.value_and_grad(jax_loss)(params, x, y)
    return loss, {k: params[k] - LR * grads[k] for k in params}


def timeit(step, params, x, y, repeat, number):
    loss, params = step(params, x, y)  # warm up (compile)
    jax.block_until_ready(params)
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        for _ in range(number):
            loss, params = step(params, x, y)
        jax.block_until_ready(params)
        times.append((time.perf_counter() - t0) / number)
    return statistics.median(times) * 1e6, float(loss)


def torch_step_timer(sizes, x, y, repeat, number):
    try:
        import torch
    except ImportError:
        return None
    torch.manual_seed(0)
    layers = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(torch.nn.Linear(a, b))
        if i < len(sizes) - 2:
            layers.append(torch.nn.ReLU())
    model = torch.nn.Sequential(*layers)
    opt = torch.optim.SGD(model.parameters(), lr=LR)
    xt, yt = torch.from_numpy(np.asarray(x)), torch.from_numpy(np.asarray(y)).long()

    def step():
        opt.zero_grad(set_to_none=True)
        loss = torch.nn.functional.cross_entropy(model(xt), yt)
        loss.backward()
        opt.step()
        return loss

    step()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        for _ in range(number):
            loss = step()
        times.append((time.perf_counter() - t0) / number)
    return statistics.median(times) * 1e6, float(loss.detach())


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--hidden", type=int, default=256)
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("--number", type=int, default=50)
    ap.add_argument("--skip-slow-modes", action="store_true", help="skip eager/interpret")
    args = ap.parse_args(argv)

    sizes = [784, args.hidden, args.hidden, 10]
    rng = np.random.default_rng(1)
    x = rng.normal(size=(args.batch, 784)).astype(np.float32)
    y = rng.integers(0, 10, size=args.batch).astype(np.int32)
    params = {k: jnp.asarray(v) for k, v in init_params(sizes).items()}
    xj, yj = jnp.asarray(x), jnp.asarray(y)

    rows = []
    jax_us, jax_loss_v = timeit(jax.jit(jax_sgd_step), params, xj, yj, args.repeat, args.number)
    rows.append(("jax.jit + jax.value_and_grad", jax_us, jax_loss_v))
    tg_us, tg_loss_v = timeit(tg.jit(tg_sgd_step), params, xj, yj, args.repeat, args.number)
    rows.append(("tg.jit + tg.value_and_grad (IR backward)", tg_us, tg_loss_v))

    try:
        import optax

        jopt = optax.adam(1e-3)
        topt = tg.optim.adam(1e-3) if hasattr(tg, "optim") else None

        def jax_adam(state, x, y):
            params, opt_state = state
            loss, g = jax.value_and_grad(jax_loss)(params, x, y)
            upd, opt_state = jopt.update(g, opt_state, params)
            return loss, (optax.apply_updates(params, upd), opt_state)

        us, lv = timeit(jax.jit(jax_adam), (params, jopt.init(params)), xj, yj, args.repeat, args.number)
        rows.append(("jax.jit + optax.adam", us, lv))
        if topt is not None:

            def tg_adam(state, x, y):
                params, opt_state = state
                loss, g = tg.value_and_grad(tg_loss)(params, x, y)
                upd, opt_state = topt.update(g, opt_state, params)
                return loss, (tg.optim.apply_updates(params, upd), opt_state)

            us2, lv2 = timeit(tg.jit(tg_adam), (params, topt.init(params)), xj, yj, args.repeat, args.number)
            rows.append(("tg.jit + tg.optim.adam (optax as IR)", us2, lv2))
    except ImportError:
        pass

    torch_row = torch_step_timer(sizes, x, y, args.repeat, max(args.number // 5, 3))
    if torch_row is not None:
        rows.append(("PyTorch eager (SGD)", *torch_row))
    if not args.skip_slow_modes:
        slow_n = max(args.number // 25, 2)
        us, lv = timeit(tg.eager(tg_sgd_step), params, xj, yj, 3, slow_n)
        rows.append(("tg.eager (define-by-run, op by op)", us, lv))
        jf = tg.jit(tg_sgd_step)

        def interp(params, x, y):
            return jf.interpret(params, x, y)

        us, lv = timeit(interp, params, xj, yj, 3, slow_n)
        rows.append(("tg interpreter (same IR, node by node)", us, lv))

    print(f"MLP {sizes}, batch {args.batch}, float32, device {jax.devices()[0].platform}")
    print(f"{'step':44s} {'us/step':>10s} {'vs jax.jit':>10s}")
    for name, us, _ in rows:
        print(f"{name:44s} {us:10.1f} {us / jax_us:9.2f}x")
    print(f"tg.jit / jax.jit gradient step: {tg_us / jax_us:.3f}")


if __name__ == "__main__":
    main()
