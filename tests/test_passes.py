"""Graph passes: dce, cse, fold, simplify and the pass manager.

Each pass is checked on hand-written graphs (structure before/after), on every op sample
(once with the sample arrays as inputs, once baked in as constants so that folding and
simplification have work), and on seeded random programs; always verified, for
idempotence (``p(p(g))`` prints as ``p(g)``), for leaving its input untouched, and for
results identical to the unoptimized graph's.
"""

import contextlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import tracegraph as tg
from tracegraph.core import bind
from tracegraph.core import trace_graph
from tracegraph.ir import TensorType, lookup
from tracegraph.ir.types import is_key
from ir_helpers import key_data
from tracegraph.transforms import (
    DEFAULT_PIPELINE, PassManager, cse, dce, fold, format_records, run_passes, simplify,
)
from tracegraph.transforms.rewrite import node_ids, subgraphs_of

from conftest import x64_if_needed
from op_matrix import op_function, sample_cases

PASSES = {"dce": dce, "cse": cse, "fold": fold, "simplify": simplify}
F32 = "f32"


# -- helpers ---------------------------------------------------------------------------------
def ops_of(g):
    return [n.op for n in g.nodes]


def snapshot(g):
    """Everything a pass must not change about its input graph."""
    nodes = []
    stack, seen = [g], set()
    while stack:
        h = stack.pop()
        if id(h) in seen:
            continue
        seen.add(id(h))
        for n in h.nodes:
            nodes.append((n, tuple(n.inputs), tuple(n.outputs), dict(n.attrs)))
            stack.extend(subgraphs_of(n))
    return str(g), nodes


def assert_untouched(g, snap):
    text, nodes = snap
    assert str(g) == text, "a pass changed its input graph"
    for n, ins, outs, attrs in nodes:
        assert tuple(n.inputs) == ins and tuple(n.outputs) == outs and n.attrs == attrs
        assert all(v.producer is n for v in n.outputs), "a pass re-pointed a value's producer"


def as_list(x):
    return list(x) if isinstance(x, (tuple, list)) else [x]


def assert_identical(got, want):
    """Bit-for-bit equal results (NaN where NaN, the sign of zero included)."""
    got, want = as_list(got), as_list(want)
    assert len(got) == len(want)
    for g, w in zip(got, want):
        assert getattr(g, "dtype", None) == getattr(w, "dtype", None) or not (
            is_key(getattr(g, "dtype", None)) or is_key(getattr(w, "dtype", None))
        ), (g.dtype, w.dtype)
        g, w = np.asarray(key_data(g)), np.asarray(key_data(w))
        assert g.dtype == w.dtype and g.shape == w.shape, (g.dtype, g.shape, w.dtype, w.shape)
        if g.dtype == jnp.bfloat16:
            g, w = g.astype(np.float32), w.astype(np.float32)
        if np.issubdtype(g.dtype, np.floating) or np.issubdtype(g.dtype, np.complexfloating):
            np.testing.assert_array_equal(np.isnan(g), np.isnan(w))
            ok = ~np.isnan(w)
            np.testing.assert_array_equal(g[ok], w[ok])
            if np.issubdtype(g.dtype, np.floating):
                np.testing.assert_array_equal(np.signbit(g[ok]), np.signbit(w[ok]))
        else:
            np.testing.assert_array_equal(g, w)


class Reference:
    """The unoptimized graph's results, computed once."""

    def __init__(self, g, args):
        self.g, self.args, self.value = g, args, None

    def get(self):
        if self.value is None:
            self.value = self.g.interpret(*self.args)
        return self.value


def check_pass(p, g, args=(), reference=None):
    """Run pass ``p`` on ``g``: verified, idempotent, input untouched, same results."""
    reference = reference or Reference(g, args)
    snap = snapshot(g)
    g2 = p(g)
    assert_untouched(g, snap)
    g2.verify()
    again = p(g2)
    assert str(again) == str(g2), f"{p.__name__} is not idempotent"
    if g2 is not g:
        assert_identical(g2.interpret(*args), reference.get())
    return g2


@contextlib.contextmanager
def sample(name, index):
    s = lookup(name).samples()[index]
    with x64_if_needed(s.args, s.attrs):
        yield lookup(name).samples()[index]  # again under x64: subgraphs are traced when made


# -- every op sample -------------------------------------------------------------------------
# every op on its first sample by default; all samples with -m slow
@pytest.mark.parametrize("name,index", list(sample_cases(default_per_op=1)))
def test_passes_on_op_samples(name, index):
    with sample(name, index) as s:
        # 1. the sample's arrays as graph inputs: passes must keep the graph correct
        g = tg.trace(op_function(name, s.attrs), *s.args)
        ref = Reference(g, s.args)
        for p in PASSES.values():
            check_pass(p, g, s.args, ref)
        # 2. the arrays baked in as constants: folding evaluates the op (bounded), and the
        #    folded result must equal what the interpreter computes
        gc = tg.trace(lambda: bind(name, *s.args, **s.attrs))
        gc.name = name
        ref = Reference(gc, ())
        for p in PASSES.values():
            check_pass(p, gc, (), ref)
        result = PassManager(verify=True).run(gc)
        assert_identical(result.graph.interpret(), ref.get())
        op = lookup(name)
        small = all(v.type.size <= 1024 for v in gc.outputs)
        # (fold leaves nodes holding subgraphs alone; simplify inlines a constant cond)
        # (nor does it fold a node giving PRNG keys: a constant is a numpy array)
        kept = ("while_loop", "scan", "custom_vjp")
        gives_keys = any(is_key(v.type.dtype) for v in gc.outputs)
        if (not op.random and not op.attrs.get("body") and small and name not in kept
                and not gives_keys):
            # everything folds: no node is left (cond on a constant predicate is inlined),
            # except a node whose value holds a NaN/Inf: it stays, so check_nans names it
            def finite(v):
                a = np.asarray(v)
                return a.dtype.kind not in "fc" or bool(np.all(np.isfinite(a)))

            if all(finite(v) for v in jax.tree_util.tree_leaves(ref.get())):
                assert result.graph.nodes == [] or any(
                    n.op in ("full", "arange", "eye") for n in result.graph.nodes
                ), str(result.graph)
            else:
                assert any(n.op == name for n in result.graph.nodes), str(result.graph)


# -- dce -----------------------------------------------------------------------------------------
def test_dce_drops_dead_nodes_and_constants():
    def f(x):
        dead = tg.exp(x) * 3.0  # noqa: F841  (dead code, for dce)
        return tg.sin(x) + 1.0

    g = tg.trace(f, tg.spec((3,)))
    assert ops_of(g) == ["exp", "mul", "sin", "add"] and len(g.constants) == 2
    g2 = check_pass(dce, g, (np.ones(3, np.float32),))
    assert ops_of(g2) == ["sin", "add"] and len(g2.constants) == 1
    assert g2.nodes[0] is g.nodes[2]  # unchanged nodes are shared, not copied
    assert dce(g2) is g2  # nothing dead: the same graph back


def test_dce_inside_subgraphs_keeps_their_inputs():
    def f(x):
        def body(c, xi):
            unused = tg.exp(c) * xi  # noqa: F841  (dead code, for dce)
            return c + xi, c * 2.0

        return tg.scan(body, x[0], x)

    g = tg.trace(f, tg.spec((4, 3)))
    body = g.nodes[-1].attrs["body"]
    assert "exp" in ops_of(body)
    g2 = check_pass(dce, g, (np.arange(12, dtype=np.float32).reshape(4, 3),))
    body2 = g2.nodes[-1].attrs["body"]
    assert "exp" not in ops_of(body2) and len(body2.inputs) == len(body.inputs)


# -- cse -----------------------------------------------------------------------------------------
def test_cse_merges_repeated_expressions_and_constants():
    def f(x, y):
        a = tg.exp(x) * y
        b = y * tg.exp(x)  # commutative: the same product
        return a + b + tg.multiply(np.ones(3, np.float32), np.ones(3, np.float32))

    g = tg.trace(f, tg.spec((3,)), tg.spec((3,)))
    assert len(g.constants) == 2
    g2 = dce(check_pass(cse, g, (np.ones(3, np.float32), np.ones(3, np.float32))))
    assert ops_of(g2) == ["exp", "mul", "add", "mul", "add"]
    assert len(g2.constants) == 1  # the two equal ones-arrays are one constant


def test_cse_keeps_different_attributes_and_signed_zeros_apart():
    def f(x):
        a = tg.clip(x, 0.0, 1.0) + tg.clip(x, -0.0, 1.0)
        b = tg.sum(x, axis=0) + tg.sum(x, axis=1).sum()
        c = x + np.zeros(3, np.float32) + -np.zeros(3, np.float32)
        return a, b, c

    g = tg.trace(f, tg.spec((3, 3)))
    g2 = cse(g)
    assert ops_of(g2).count("clip") == 2 and ops_of(g2).count("sum") == 3
    assert len(g2.constants) == len(g.constants)


def test_cse_never_merges_random_ops():
    def f(k):
        return tg.random.normal(k, (3,)) + tg.random.normal(k, (3,))

    g = tg.trace(f, tg.random.key(0))
    assert ops_of(cse(g)).count("random_normal") == 2


def test_cse_compares_subgraphs_by_identity():
    t = TensorType((3,), "float32")
    body = trace_graph(lambda a: tg.sin(a) * 2.0, [t], "body")
    same = trace_graph(lambda a: tg.sin(a) * 2.0, [t], "body")  # equal, not identical

    def f(x, p):
        (a,) = bind("cond", p, x, true_branch=body, false_branch=body)
        (b,) = bind("cond", p, x, true_branch=body, false_branch=body)
        (c,) = bind("cond", p, x, true_branch=same, false_branch=body)
        return a + b + c

    g = tg.trace(f, tg.spec((3,)), tg.spec((), "bool"))
    g2 = dce(check_pass(cse, g, (np.ones(3, np.float32), np.bool_(True))))
    assert ops_of(g2).count("cond") == 2


def test_cse_inside_subgraphs():
    def f(x):
        def body(c, xi):
            return c + tg.exp(xi) * tg.exp(xi), c

        return tg.scan(body, x[0], x)

    g = tg.trace(f, tg.spec((4, 3)))
    g2 = check_pass(cse, g, (np.ones((4, 3), np.float32),))
    assert ops_of(dce(g2.nodes[-1].attrs["body"])).count("exp") == 1


# -- fold ------------------------------------------------------------------------------------------
def test_fold_evaluates_constant_subexpressions():
    def f(x):
        c = tg.exp(np.arange(3, dtype=np.float32)) * 2.0 + 1.0
        return x * c

    g = tg.trace(f, tg.spec((3,)))
    g2 = dce(check_pass(fold, g, (np.ones(3, np.float32),)))
    assert ops_of(g2) == ["mul"]
    np.testing.assert_array_equal(g2.constants[0].data, np.asarray(jnp.exp(jnp.arange(3.0)) * 2 + 1))


def test_fold_is_bounded():
    def f(x):
        big = tg.multiply(np.ones(2000, np.float32), 2.0)  # 2000 > 1024 elements: not folded
        small = tg.astype(tg.arange(3), "f32") * 3.0  # creation ops feeding a fold: folded
        threes = tg.ones(3) * 3.0  # folded to a splat: a full node, not a dense constant
        return x[0] * big, x * small + threes, tg.zeros((4, 4))

    g = tg.trace(f, tg.spec((3,)))
    g2 = dce(check_pass(fold, g, (np.ones(3, np.float32),)))
    assert ops_of(g2) == ["mul", "full", "slice", "reshape", "mul", "mul", "add", "full"]
    assert [n.attrs["value"] for n in g2.nodes if n.op == "full"] == [3.0, 0.0]
    (small,) = [c for c in g2.constants if c.type.size == 3]
    np.testing.assert_array_equal(small.data, [0.0, 3.0, 6.0])


def test_fold_keeps_weak_types_and_skips_random():
    def f(x, k):
        s = tg.full((), 2.0) * 3.0  # a strong f32 scalar
        return x * s, x * (np.float32(2) + 1.0), tg.random.normal(tg.random.key(1), (2,))

    g = tg.trace(f, tg.spec((2,), "f16"), tg.random.key(0))
    g2 = dce(fold(g))
    g2.verify()
    assert "random_normal" in ops_of(g2) and ops_of(g2).count("mul") == 2
    assert [str(v.type) for v in g2.outputs] == [str(v.type) for v in g.outputs]


def test_fold_runs_inside_jit_tracing():
    f = tg.jit(lambda x: x + tg.sin(np.float32(1.0)) * tg.ones(3))
    x = np.zeros(3, np.float32)
    np.testing.assert_allclose(f(x), np.sin(1.0) * np.ones(3), rtol=1e-6)
    assert ops_of(f.trace(x)) == ["full", "add"]  # sin(1) * ones(3): a splat


# -- simplify --------------------------------------------------------------------------------------
def simplified(fn, *specs):
    g = tg.trace(fn, *specs)
    args = [np.asarray(np.random.default_rng(0).uniform(-2, 2, s.shape), s.dtype) for s in specs]
    return dce(check_pass(simplify, g, args))


def test_simplify_multiplicative_identities():
    g = simplified(lambda x: (x * 1.0, 1 * x, x / 1.0, x * np.ones(3, np.float32)), tg.spec((3,)))
    assert ops_of(g) == [] and all(v is g.inputs[0] for v in g.outputs)


def test_simplify_additive_identities_respect_signed_zero():
    # x + 0.0 is NOT x for floats (-0.0 + 0.0 = +0.0); x + -0.0 and x - 0.0 are
    # (np.float32(-0.0): the front end's cache of Python-scalar constants takes -0.0 for 0.0)
    g = simplified(lambda x: (x + 0.0, x - 0.0, x + np.float32(-0.0), 0 + x), tg.spec((3,)))
    assert ops_of(g) == ["add", "add"]  # x + 0.0 and 0 + x (an int 0 becomes +0.0)
    assert g.outputs[1] is g.inputs[0] and g.outputs[2] is g.inputs[0]
    x = np.array([-0.0, 1.0, np.nan], np.float32)
    out = g.interpret(x)
    assert not np.signbit(out[0][0])  # -0.0 + 0.0 = +0.0, kept
    gi = simplified(lambda i: (i + 0, i - 0, 0 + i), tg.spec((3,), "i32"))
    assert ops_of(gi) == []


def test_simplify_keeps_float_times_zero_but_folds_integer_times_zero():
    g = simplified(lambda x: x * 0.0, tg.spec((3,)))
    assert ops_of(g) == ["mul"]  # NaN * 0 = NaN, Inf * 0 = NaN, -1 * 0 = -0.0
    gi = simplified(lambda i: (i * 0, i - i), tg.spec((3,), "i32"))
    assert ops_of(gi) == ["full"] * 2 or ops_of(gi) == ["full"]
    np.testing.assert_array_equal(gi.interpret(np.arange(3, dtype=np.int32))[0], np.zeros(3, np.int32))


def test_simplify_never_changes_a_type():
    # x * 1.0 with x an int is a float: not x. i8 * 1 (weak) stays i8: it is x.
    g = simplified(lambda i, s: (i * 1.0, i + 0.0, s * np.ones((2, 3), np.float32)),
                   tg.spec((3,), "i32"), tg.spec((), "f32"))
    assert ops_of(g) == ["mul", "add", "mul"]  # broadcasting s to (2, 3) is not s
    g8 = simplified(lambda i: i * 1, tg.spec((3,), "i8"))
    assert ops_of(g8) == []


def test_simplify_involutions_and_idempotent_unaries():
    g = simplified(lambda x: (-(-x), tg.abs(tg.abs(x)), tg.relu(tg.relu(x)), -(-(-x))), tg.spec((3,)))
    assert ops_of(g) == ["abs", "relu", "neg"]
    assert g.outputs[0] is g.inputs[0]
    gb = simplified(lambda b: tg.logical_not(tg.logical_not(b)), tg.spec((3,), "bool"))
    assert ops_of(gb) == []


def test_simplify_transposes_compose():
    def f(x):
        return (
            tg.transpose(tg.transpose(x, (1, 2, 0)), (2, 0, 1)),  # identity
            tg.transpose(tg.transpose(x, (1, 0, 2)), (0, 2, 1)),  # one transpose
            tg.transpose(x, (0, 1, 2)),
        )

    g = simplified(f, tg.spec((2, 3, 4)))
    assert ops_of(g) == ["transpose"] and g.nodes[0].attrs["perm"] == (1, 2, 0)
    assert g.outputs[0] is g.inputs[0] and g.outputs[2] is g.inputs[0]


def test_simplify_reshape_chains():
    def f(x):
        a = tg.reshape(tg.reshape(x, (6,)), (3, 2))
        b = tg.reshape(tg.reshape(x, (3, 2)), (2, 3))
        c = tg.squeeze(tg.expand_dims(x, 0), 0)
        return a, b, c, tg.broadcast_to(x, (2, 3)), tg.astype(x, "f32")

    g = simplified(f, tg.spec((2, 3)))
    assert ops_of(g) == ["reshape"] and g.nodes[0].inputs[0] is g.inputs[0]
    assert all(v is g.inputs[0] for v in g.outputs[1:])


def test_simplify_astype_round_trips_only_when_exact():
    def f(x16, x32, i):
        return (
            tg.astype(tg.astype(x16, "f32"), "f16"),  # exact: x16
            tg.astype(tg.astype(x32, "bf16"), "f32"),  # rounds: kept
            tg.astype(tg.astype(i, "f32"), "i32"),  # i32 needs 31 bits > 24: kept
            tg.astype(tg.astype(i, "i64" if jax.config.jax_enable_x64 else "i32"), "i32"),
        )

    g = simplified(f, tg.spec((3,), "f16"), tg.spec((3,)), tg.spec((3,), "i32"))
    assert g.outputs[0] is g.inputs[0] and g.outputs[3] is g.inputs[2]
    assert ops_of(g) == ["astype"] * 4


def test_simplify_where_with_constant_predicate_and_cond_inlining():
    def f(x, y):
        a = tg.where(True, x, y)
        b = tg.where(np.zeros(3, bool), x, y)
        c = tg.where(x > 0, y, y)
        d = tg.cond(True, lambda u: tg.sin(u) * 1.0, lambda u: tg.cos(u), x)
        return a, b, c, d

    g = simplified(f, tg.spec((3,)), tg.spec((3,)))
    assert ops_of(g) == ["sin"]
    assert g.outputs[0] is g.inputs[0] and g.outputs[1] is g.inputs[1]


def test_simplify_inside_subgraphs():
    def f(x):
        return tg.while_loop(lambda c: c[0] < 3, lambda c: (c[0] + 1, -(-c[1]) * 1.0), (0, x))

    g = tg.trace(f, tg.spec((3,)))
    g2 = check_pass(simplify, g, (np.ones(3, np.float32),))
    body = dce(g2.nodes[-1].attrs["body_graph"])
    assert ops_of(body) == ["add"]


def test_rewrites_keep_location_and_scope():
    def f(x):
        with tg.scope("block"):
            return tg.transpose(tg.transpose(x, (1, 2, 0)), (1, 0, 2))

    g = tg.trace(f, tg.spec((2, 3, 4)))
    g2 = dce(simplify(g))
    (node,) = g2.nodes
    assert node.scope == "block" and node.location == g.nodes[1].location


# -- random programs ---------------------------------------------------------------------------
SPECIAL = np.array([-0.0, 0.0, np.inf, -np.inf, np.nan, 1e-3], np.float32)
CONSTANTS = [0.0, -0.0, 1.0, 1, 0, 2.0, np.float32(1), np.ones(3, np.float32),
             np.zeros(3, np.float32), -np.zeros(3, np.float32), np.full((2, 3), 0.5, np.float32)]


def random_program(seed):
    """A seeded random function of (x: f32[2,3], y: f32[3]) from elementwise, reduction,
    shape and control-flow ops, with the constants the passes look for."""
    rng = np.random.default_rng(seed)

    def pick(pool):
        return pool[int(rng.integers(len(pool)))]

    def program(x, y):
        pool = [x, y]
        for _ in range(int(rng.integers(6, 16))):
            a = pick(pool)
            kind = int(rng.integers(10))
            if kind == 0:
                v = pick([tg.negative, tg.exp, tg.abs, tg.relu, tg.floor, tg.sin, tg.tanh])(a)
            elif kind == 1:
                c = CONSTANTS[int(rng.integers(len(CONSTANTS)))]
                op = pick([tg.add, tg.subtract, tg.multiply, tg.divide, tg.maximum, tg.minimum])
                v = op(a, c) if rng.random() < 0.5 else op(c, a)
            elif kind == 2:
                b = pick(pool)
                v = pick([tg.add, tg.subtract, tg.multiply, tg.maximum])(a, b)
            elif kind == 3:  # the same expression twice (for CSE)
                v = tg.exp(a) + tg.exp(a)
            elif kind == 4:
                b = tg.broadcast_to(a, (2, 3))
                v = tg.transpose(tg.transpose(b, (1, 0)), (1, 0)) * -(-b)
            elif kind == 5:
                b = tg.broadcast_to(a, (2, 3))
                v = tg.reshape(tg.reshape(b, (6,)), (3, 2)).T
            elif kind == 6:
                b = tg.broadcast_to(a, (2, 3))
                v = tg.sum(b, axis=0) if rng.random() < 0.5 else tg.max(b, axis=1, keepdims=True)
            elif kind == 7:
                v = tg.where(a > 0, a, pick([a, 0.0, pick(pool)]))
            elif kind == 8:
                v = tg.astype(tg.astype(a, pick(["f16", "f32", "bf16", "i32"])), "f32")
            else:
                v = tg.cond(bool(rng.random() < 0.5), lambda u: u * 1.0 + 2.0, lambda u: -u, a)
            if v.shape in ((2, 3), (3,), (), (2, 1)):
                pool.append(v)
        return pool[2:] or [x]

    return program


def program_inputs(seed):
    rng = np.random.default_rng(seed + 1000)
    x = rng.uniform(-2, 2, (2, 3)).astype(np.float32)
    x.reshape(-1)[: len(SPECIAL)] = SPECIAL
    y = rng.uniform(-2, 2, (3,)).astype(np.float32)
    y[int(seed) % 3] = -0.0
    return x, y


@pytest.mark.parametrize("seed", range(40))
def test_passes_on_random_programs(seed):
    x, y = program_inputs(seed)
    g = tg.trace(random_program(seed), x, y)
    ref = Reference(g, (x, y))
    for p in PASSES.values():
        check_pass(p, g, (x, y), ref)
    result = PassManager(verify=True).run(g)
    for p in PASSES.values():
        check_pass(p, result.graph, (x, y), ref)
    want = ref.get()
    assert_identical(result.graph.interpret(x, y), want)
    for got, w in zip(result.graph(x, y), want):  # and compiled
        np.testing.assert_allclose(np.asarray(got), np.asarray(w), rtol=1e-6, atol=1e-6)


# -- pass manager and tg.jit -------------------------------------------------------------------
def test_pass_manager_records_provenance_and_verifies():
    g = tg.trace(lambda x: tg.exp(x) + tg.exp(x) * 1.0, tg.spec((3,)))
    result = PassManager(verify=True, keep_stages=True).run(g)
    assert [r.name for r in result.records] == list(DEFAULT_PIPELINE)
    assert [name for name, _ in result.stages] == ["input", *DEFAULT_PIPELINE]
    assert result.records[0].nodes_before == 4 and result.records[-1].nodes_after == 2
    assert all(r.seconds >= 0 for r in result.records)
    assert any(r.changed for r in result.records)
    table = result.report()
    assert "simplify" in table and "total" in table and "4 -> " in table


def test_pass_manager_names_a_pass_that_breaks_the_graph():
    def broken(g):
        return tg.Graph(g.name, g.inputs, [], g.nodes[1:], g.outputs, g.in_tree, g.out_tree)

    g = tg.trace(lambda x: tg.exp(x) * 2.0, tg.spec((3,)))
    with pytest.raises(tg.IRError, match="after pass broken"):
        PassManager([broken], verify=True).run(g)
    with pytest.raises(tg.Error, match="unknown pass 'nope'"):
        PassManager(["nope"])


def test_pass_manager_verifies_from_the_environment(monkeypatch):
    monkeypatch.setenv("TRACEGRAPH_VERIFY_PASSES", "1")
    assert PassManager().verify
    monkeypatch.setenv("TRACEGRAPH_VERIFY_PASSES", "0")
    assert not PassManager().verify


def test_pass_manager_dumps_each_stage(tmp_path):
    g = tg.trace(lambda x: -(-x) + 0.0, tg.spec((3,)))
    PassManager(["simplify", "dce"], dump_dir=tmp_path).run(g)
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["00_input.txt", "01_after_simplify.txt", "02_after_dce.txt"]
    assert "neg" in (tmp_path / "00_input.txt").read_text()
    assert "neg" not in (tmp_path / "02_after_dce.txt").read_text()


def test_jit_runs_the_default_pipeline():
    f = tg.jit(lambda x: tg.exp(x) * 1.0 + tg.exp(x))
    x = np.ones(3, np.float32)
    np.testing.assert_allclose(f(x), 2 * np.exp(x), rtol=1e-6)
    assert ops_of(f.trace(x)) == ["exp", "add"]
    assert ops_of(f.trace(x, optimized=False)) == ["exp", "mul", "exp", "add"]
    assert [r.name for r in f.pass_records(x)] == list(DEFAULT_PIPELINE)
    assert "cse" in format_records(f.pass_records(x))
    np.testing.assert_allclose(f.interpret(x, optimized=False), f.interpret(x), rtol=1e-6)


def test_jit_passes_option():
    fn = lambda x: tg.exp(x) * 1.0 + tg.exp(x)  # noqa: E731
    x = np.ones(3, np.float32)
    none = tg.jit(fn, passes=())
    assert ops_of(none.trace(x)) == ["exp", "mul", "exp", "add"] and none.pass_records(x) == []
    assert none.trace(x) is none.trace(x, optimized=False)
    only_cse = tg.jit(fn, passes=["cse", dce])
    assert ops_of(only_cse.trace(x)) == ["exp", "mul", "add"]
    np.testing.assert_allclose(only_cse(x), none(x), rtol=1e-6)
    with pytest.raises(tg.Error, match="unknown pass"):
        tg.jit(fn, passes=["fast-math"])


def test_run_passes_and_graph_identity():
    g = tg.trace(lambda x: tg.sin(x), tg.spec((3,)))
    assert run_passes(g) is g  # nothing to do: the graph itself comes back
    before = node_ids(g)
    g2 = run_passes(tg.trace(lambda x: tg.sin(x) * 1.0, tg.spec((3,))), ["simplify", "dce"], verify=True)
    assert ops_of(g2) == ["sin"] and before
