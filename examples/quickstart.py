"""Quickstart: one MLP forward pass, run three ways on the same tracegraph IR.

    python examples/quickstart.py

1. define-then-run: `tg.jit` traces the function once to a Graph, lowers the Graph
   through `jax.jit` to XLA and runs the compiled code;
2. the same Graph executed node by node by the eager interpreter (`.interpret`);
3. define-by-run: `tg.eager` runs each op at once on concrete values, PyTorch-style,
   and records the graph it builds as it goes (`.last_graph`).

All three must agree with each other and with a plain numpy computation.
"""

import numpy as np

import tracegraph as tg


def mlp(x, w1, b1, w2, b2):
    h = tg.relu(x @ w1 + b1)
    logits = h @ w2 + b2
    return tg.nn.functional.log_softmax(logits, axis=-1)


def numpy_mlp(x, w1, b1, w2, b2):
    logits = np.maximum(x @ w1 + b1, 0) @ w2 + b2
    shifted = logits - logits.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


def main():
    rng = np.random.default_rng(0)
    batch, n_in, n_hidden, n_out = 4, 8, 16, 3
    x = rng.standard_normal((batch, n_in), dtype=np.float32)
    w1 = rng.standard_normal((n_in, n_hidden), dtype=np.float32) / np.sqrt(n_in)
    b1 = np.full(n_hidden, 0.1, np.float32)
    w2 = rng.standard_normal((n_hidden, n_out), dtype=np.float32) / np.sqrt(n_hidden)
    b2 = np.zeros(n_out, np.float32)
    args = (x, w1, b1, w2, b2)

    # 1. define-then-run
    f = tg.jit(mlp)
    y_jit = f(*args)
    print(f"tg.jit(mlp)(...) -> {type(y_jit).__name__} {y_jit.dtype}{list(y_jit.shape)}")
    print("\n--- the IR tg.jit traced (and lowered to XLA) ---")
    print(f.trace(*args))

    # 2. the same graph, interpreted node by node
    y_int = f.interpret(*args)

    # 3. define-by-run
    run = tg.eager(mlp)
    y_eager = run(*args)
    print("\n--- the graph tg.eager recorded while running op by op ---")
    print(run.last_graph)

    expected = numpy_mlp(*args)
    print("\n--- agreement ---")
    for name, y in (("tg.jit", y_jit), ("interpreter", y_int), ("tg.eager", y_eager)):
        np.testing.assert_allclose(np.asarray(y), expected, rtol=1e-5, atol=1e-5)
        print(f"{name:12s} max |y - numpy| = {np.max(np.abs(np.asarray(y) - expected)):.1e}")
    np.testing.assert_allclose(np.asarray(y_int), np.asarray(y_jit), rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(np.asarray(y_eager), np.asarray(y_jit), rtol=1e-6, atol=1e-6)
    print("jit, interpreter and define-by-run agree")

    print("\n--- StableHLO handed to XLA (first lines of f.lower(...).as_text()) ---")
    text = f.lower(*args).as_text()
    lines = text.splitlines()
    print("\n".join(lines[:12]))
    print(f"... ({len(lines)} lines)")


if __name__ == "__main__":
    main()
