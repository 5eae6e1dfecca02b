"""One MLP training step (784-256-256-10, batch 128, cross-entropy, Adam) in every way
tracegraph runs it, side by side with hand-written ``jax.jit`` + optax and PyTorch eager:

- ``jax.jit + optax``: the reference compiled step, hand-written; and the same function
  without ``jax.jit`` (JAX running it primitive by primitive);
- ``tg.jit``: define-then-run, the whole step one graph;
- ``tg.compile``: the step recorded define-by-run, then run compiled while its guards hold
  (a variant with a Python ``if`` on the loss shows a data-dependent branch, beside the
  same branch define-then-run: ``tg.cond`` under ``tg.jit``);
- ``tg.eager``: the functional step define-by-run, op by op;
- ``interpreter``: the ``tg.jit`` graph run node by node;
- ``imperative``: PyTorch style, ``loss.backward()`` and ``tg.optim.Adam.step()``;
- ``GradientTape`` / ``tg.function``: TensorFlow style (Variables, a tape, Keras' Adam via
  ``tg.optimizers``), eager and as one recorded graph, beside ``tg.jit`` of the functional
  step with the same Keras Adam arithmetic; and the same ``tg.function`` step on a
  ``tg.keras.Sequential`` of ``Dense`` layers;
- ``PyTorch eager``: the same program in torch (when installed).

    python benchmarks/define_by_run.py [--repeat 7] [--number 10] [--batch 128] [--floor]

Prints milliseconds per step (median of --repeat rounds of --number steps, the rows
taking turns within each round, after warm-up)
and each row's ratio to ``jax.jit + optax`` and to PyTorch eager. ``--floor`` adds what
the interpreter's nodes cost with nothing around them: each node's executable called
alone on its own operands, back to back (donated where the interpreter donates), summed
over the step's nodes.
"""

from __future__ import annotations

import argparse

import jax
import jax.numpy as jnp
import numpy as np
import optax
from _timing import (
    timed_rows,  # benchmarks/_timing.py (the script's folder is on the path)
)

import tracegraph as tg
from tracegraph.nn import functional as F

SIZES = (784, 256, 256, 10)


def make_params(rng):
    params = []
    for m, n in zip(SIZES[:-1], SIZES[1:]):
        params.append({"w": (rng.normal(size=(n, m)) / np.sqrt(m)).astype(np.float32),
                       "b": np.zeros(n, np.float32)})
    return params


def forward(params, x, relu, matmul):
    for i, p in enumerate(params):
        x = matmul(x, p["w"].T) + p["b"]
        if i < len(params) - 1:
            x = relu(x)
    return x


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("--number", type=int, default=10)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--floor", action="store_true", help="time the interpreter's nodes one by one")
    a = ap.parse_args(argv)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(a.batch, SIZES[0])).astype(np.float32)
    y = rng.integers(0, SIZES[-1], a.batch).astype(np.int32)
    rows = []

    # hand-written JAX
    tx = optax.adam(1e-3)
    jp = jax.tree_util.tree_map(jnp.asarray, make_params(rng))
    jstate = [jp, tx.init(jp)]

    def jloss(p, x, y):
        logits = forward(p, x, jax.nn.relu, jnp.matmul)
        return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()

    @jax.jit
    def jstep(p, s, x, y):
        loss, g = jax.value_and_grad(jloss)(p, x, y)
        u, s = tx.update(g, s, p)
        return optax.apply_updates(p, u), s, loss

    def run_jax():
        jstate[0], jstate[1], loss = jstep(jstate[0], jstate[1], x, y)
        return loss

    rows.append(("jax.jit + optax", run_jax))

    # the same JAX step without jax.jit: JAX's own op-by-op execution (each primitive
    # dispatched by itself), the reference for running this step node by node on XLA
    eager_state = [jp, tx.init(jp)]
    eager_step = jstep.__wrapped__

    def run_jax_eager():
        eager_state[0], eager_state[1], loss = eager_step(eager_state[0], eager_state[1], x, y)
        return loss

    rows.append(("JAX op by op (no jit)", run_jax_eager))

    # tracegraph, functional step
    opt = tg.optim.adam(1e-3)

    def tloss(p, x, y):
        return F.cross_entropy(forward(p, x, tg.relu, tg.matmul), y)

    def step(p, s, x, y):
        loss, g = tg.value_and_grad(tloss)(p, x, y)
        u, s = opt.update(g, s, p)
        return tg.optim.apply_updates(p, u), s, loss

    def step_branch(p, s, x, y):  # a Python decision on a value: one guard in tg.compile
        loss, g = tg.value_and_grad(tloss)(p, x, y)
        if loss > 1e-6:
            u, s = opt.update(g, s, p)
            p = tg.optim.apply_updates(p, u)
        return p, s, loss

    def step_cond(p, s, x, y):  # the same decision define-then-run: tg.cond in the graph
        loss, g = tg.value_and_grad(tloss)(p, x, y)

        def update(p, s, g):
            u, s = opt.update(g, s, p)
            return tg.optim.apply_updates(p, u), s

        p, s = tg.cond(loss > 1e-6, update, lambda p, s, g: (p, s), p, s, g)
        return p, s, loss

    def stateful(fn):
        tp = jax.tree_util.tree_map(jnp.asarray, make_params(rng))
        st = [tp, opt.init(tp)]

        def run():
            st[0], st[1], loss = fn(st[0], st[1], x, y)
            return loss

        return run

    jf = tg.jit(step)
    rows.append(("tg.jit", stateful(jf)))
    rows.append(("tg.compile", stateful(tg.compile(step))))
    rows.append(("tg.compile, Python if", stateful(tg.compile(step_branch))))
    rows.append(("tg.jit, tg.cond", stateful(tg.jit(step_cond))))
    rows.append(("tg.eager", stateful(tg.eager(step))))
    rows.append(("interpreter", stateful(jf.interpret)))

    # TensorFlow style: Variables, GradientTape, Keras' Adam; eager and as tg.function,
    # beside tg.jit of the functional step with the same (Keras) Adam arithmetic
    kopt = tg.optimizers.Adam(1e-3)
    pairs = [(tg.Variable(p["w"]), tg.Variable(p["b"])) for p in make_params(rng)]
    variables = [v for pair in pairs for v in pair]

    def tf_step():
        with tg.GradientTape() as tape:
            logits = forward([{"w": w, "b": b} for w, b in pairs], x, tg.relu, tg.matmul)
            loss = F.cross_entropy(logits, y)
        kopt.apply_gradients(zip(tape.gradient(loss, variables), variables))
        return loss

    rows.append(("GradientTape (TF eager)", lambda: tf_step()._data))
    rows.append(("tg.function (TF graph)", tg.function(tf_step)))
    ktx = tg.optimizers.Adam(1e-3).transformation()

    def keras_step(p, s, x, y):
        loss, g = tg.value_and_grad(tloss)(p, x, y)
        u, s = ktx.update(g, s, p)
        return tg.optim.apply_updates(p, u), s, loss

    kp = jax.tree_util.tree_map(jnp.asarray, make_params(rng))
    kstate = [kp, ktx.init(kp)]
    kjit = tg.jit(keras_step)

    def run_keras_jit():
        kstate[0], kstate[1], loss = kjit(kstate[0], kstate[1], x, y)
        return loss

    rows.append(("tg.jit, Keras Adam", run_keras_jit))

    # the same step on a tg.keras model: Keras layers (Variables), tape, Keras Adam,
    # under tg.function
    tg.keras.utils.set_random_seed(0)
    kmodel = tg.keras.Sequential([
        tg.keras.Input(shape=(SIZES[0],)),
        *(tg.keras.layers.Dense(n, activation="relu") for n in SIZES[1:-1]),
        tg.keras.layers.Dense(SIZES[-1]),
    ])
    kmopt = tg.keras.optimizers.Adam(1e-3)
    kloss = tg.keras.losses.SparseCategoricalCrossentropy(from_logits=True)

    @tg.function
    def keras_model_step(x, y):
        with tg.GradientTape() as tape:
            loss = kloss(y, kmodel(x, training=True))
        grads = tape.gradient(loss, kmodel.trainable_variables)
        kmopt.apply_gradients(zip(grads, kmodel.trainable_variables))
        return loss

    rows.append(("tg.function, tg.keras", lambda: keras_model_step(x, y)))

    # imperative, PyTorch style
    tg.manual_seed(0)
    model = tg.nn.Sequential([tg.nn.Linear(784, 256), tg.relu, tg.nn.Linear(256, 256), tg.relu,
                              tg.nn.Linear(256, 10)])
    iopt = tg.optim.Adam(model.parameters(), lr=1e-3)
    crit = tg.nn.CrossEntropyLoss()
    xt, yt = tg.tensor(x), tg.tensor(y)

    def run_imperative():
        iopt.zero_grad()
        loss = crit(model(xt), yt)
        loss.backward()
        iopt.step()
        return model[0].weight._data

    rows.append(("imperative (.backward)", run_imperative))

    torch_row = None
    try:
        import torch

        torch.manual_seed(0)
        net = torch.nn.Sequential(torch.nn.Linear(784, 256), torch.nn.ReLU(), torch.nn.Linear(256, 256),
                                  torch.nn.ReLU(), torch.nn.Linear(256, 10))
        topt = torch.optim.Adam(net.parameters(), lr=1e-3)
        tcrit = torch.nn.CrossEntropyLoss()
        xx, yy = torch.from_numpy(x), torch.from_numpy(y.astype(np.int64))

        def run_torch():
            topt.zero_grad()
            loss = tcrit(net(xx), yy)
            loss.backward()
            topt.step()
            return jnp.zeros(())

        torch_row = "PyTorch eager"
        rows.append((torch_row, run_torch))
    except ImportError:
        pass

    times = timed_rows([fn for _, fn in rows], a.repeat, a.number)
    results = [(name, ms * 1e3) for (name, _), ms in zip(rows, times)]
    base = results[0][1]
    torch_ms = dict(results).get(torch_row)
    head = f"{'step':<26} {'ms/step':>9} {'vs jax':>8}" + (f" {'vs torch':>9}" if torch_ms else "")
    print(f"MLP {'-'.join(map(str, SIZES))}, batch {a.batch}, Adam; median of {a.repeat} x {a.number} steps")
    print(head)
    for name, ms in results:
        line = f"{name:<26} {ms:9.3f} {ms / base:8.2f}"
        if torch_ms:
            line += f" {ms / torch_ms:9.2f}"
        print(line)
    early_exit(a.repeat, a.number)
    if a.floor:  # last: its many copies leave the allocator otherwise than the rows found it
        p0 = jax.tree_util.tree_map(jnp.asarray, make_params(np.random.default_rng(0)))
        graph = jf.stage(p0, opt.init(p0), x, y).graph
        total, kernels = node_floor(graph, (p0, opt.init(p0), x, y), a.number * 10)
        print(f"\nthe interpreter's {kernels} nodes, each called alone back to back, summed: "
              f"{total * 1e3:.3f} ms ({total * 1e3 / dict(results)['interpreter']:.2f}x the interpreter's step"
              + (f", {total * 1e3 / torch_ms:.2f}x PyTorch eager)" if torch_ms else ")"))


def node_floor(graph, args, number: int):
    """Seconds the interpreter's nodes take with nothing around them: each node's
    executable (the one the interpreter calls; its donating form where the interpreter
    donates) called ``number`` times back to back on the node's own operands, the
    medians summed over the nodes; and how many nodes were timed."""
    import time

    from tracegraph.backends.interpreter import Interpreter
    from tracegraph.core.execute import call_executable, executable
    from tracegraph.ir import registry

    seen = []
    graph.interpret(*args, hooks=[lambda node, ins, outs: seen.append((node, list(ins)))])
    plans = Interpreter(graph)._ops
    total, count = 0.0, 0
    for node, ins in seen:
        op = registry.lookup(node.op)
        types = [v.type for v in node.inputs]
        exe = None if op.interpret is not None else executable(op, node.attrs, types)
        if not exe:
            continue
        donate = plans[id(node)][3] if len(node.outputs) == 1 else ()
        if donate:  # each call's output takes the buffer of a fresh copy of the operand
            exe = executable(op, node.attrs, types, donate) or exe
        times = []
        for _ in range(3):
            calls = [[jnp.array(a, copy=True) if i in donate else a for i, a in enumerate(ins)]
                     for _ in range(number if donate else 1)]
            jax.block_until_ready(calls)
            start = time.perf_counter()
            for k in range(number):
                out = call_executable(exe, op, node.attrs, calls[k if donate else 0])
            jax.block_until_ready(out)
            times.append((time.perf_counter() - start) / number)
            del calls
        total += sorted(times)[1]
        count += 1
    return total, count


def early_exit(repeat: int, number: int):
    """A loop that exits early on a value: Newton's square root of f32[128,256] until the
    largest step is below 1e-4 (5 iterations and the exit here). `tg.compile` keeps the
    Python loop and its `break` (a guard per iteration; the recorded iterations rolled
    into one scan); define-then-run needs `tg.while_loop` (`tg.jit`) or `lax.while_loop`
    (hand-written `jax.jit`). Timed twice: calls one after the other (a jitted call
    returns before its result is ready; tg.compile's waits for its guards), and each
    call waiting for its result."""
    x = jnp.asarray(np.random.default_rng(1).uniform(0.5, 4.0, (128, 256)).astype(np.float32))

    def newton_python(x):
        y = x
        for _ in range(20):
            new = 0.5 * (y + x / y)
            if tg.max(tg.abs(new - y)) < 1e-4:  # a Python decision on a value
                break
            y = new
        return y

    def newton_tg(x):
        def go_on(c):
            i, y, step = c
            return tg.logical_and(i < 20, step >= 1e-4)

        def body(c):
            i, y, _ = c
            new = 0.5 * (y + x / y)
            return i + 1, tg.where(tg.max(tg.abs(new - y)) < 1e-4, y, new), tg.max(tg.abs(new - y))

        return tg.while_loop(go_on, body, (0, x, tg.full((), np.inf, np.float32)))[1]

    def newton_jax(x):
        def go_on(c):
            i, y, step = c
            return (i < 20) & (step >= 1e-4)

        def body(c):
            i, y, _ = c
            new = 0.5 * (y + x / y)
            step = jnp.max(jnp.abs(new - y))
            return i + 1, jnp.where(step < 1e-4, y, new), step

        return jax.lax.while_loop(go_on, body, (0, x, jnp.float32(np.inf)))[1]

    def newton_unrolled(x, checks=True):  # the 5 iterations this input takes, written out
        y, held = x, []
        for _ in range(5):
            new = 0.5 * (y + x / y)
            if checks:  # what tg.compile's path computes: each iteration's exit test
                held.append(jnp.max(jnp.abs(new - y)) < 1e-4)
            y = new
        return (y, jnp.stack(held)) if checks else y

    rows = [("jax.jit + lax.while_loop", jax.jit(newton_jax)),
            ("tg.jit + tg.while_loop", tg.jit(newton_tg)),
            ("tg.compile, Python break", tg.compile(newton_python)),
            ("tg.eager, Python break", tg.eager(newton_python)),
            ("jax.jit, 5 steps + tests", jax.jit(newton_unrolled)),
            ("jax.jit, 5 steps", jax.jit(lambda x: newton_unrolled(x, checks=False)))]
    want = np.asarray(rows[0][1](x))
    for name, fn in rows[1:-2]:
        np.testing.assert_allclose(np.asarray(fn(x)), want, rtol=1e-6, err_msg=name)
    times = timed_rows([lambda fn=fn: fn(x) for _, fn in rows], repeat, number)
    # a caller that reads each result waits for it, as tg.compile waits for its guards
    waited = timed_rows([lambda fn=fn: jax.block_until_ready(fn(x)) for _, fn in rows], repeat, number)
    print(f"\nearly exit: Newton square root of f32[128,256] to a step < 1e-4; "
          f"median of {repeat} x {number} calls")
    print(f"{'function':<26} {'us/call':>9} {'vs tg.jit':>10} {'each waited':>12} {'vs tg.jit':>10}")
    for (name, _), t, w in zip(rows, times, waited):
        print(f"{name:<26} {t * 1e6:9.1f} {t / times[1]:10.2f} {w * 1e6:12.1f} {w / waited[1]:10.2f}")

if __name__ == "__main__":
    main()
