"""Type rules (the shape, dtype, weak and sharding facets of every op) and shardings in
the IR: every op's rules against what its implementation gives under `jax.eval_shape`
(the type matrix: every dtype, weak and strong operands, Python scalars),
the standard and per-op sharding rules, rule failures that name the op and the rule,
and sharded types through text, JSON and files (malformed ones: tg.IRError)."""

import functools
import json
import re
import warnings

import jax
import numpy as np
import pytest
from jax.sharding import PartitionSpec

import tracegraph as tg
from tracegraph.core import bind, trace_graph
from tracegraph.ir import OpDef, all_ops, lookup, registry
from tracegraph.ir.types import DTYPE_NAMES, TensorType
from tracegraph.ops.defop import default_float, default_int, defop

from conftest import x64_if_needed
from op_matrix import sample_cases

RULES = ("shape_rule", "dtype_rule", "weak_rule", "sharding_rule")
F32 = np.dtype(np.float32)


def spec_type(shape, sharding=None, dtype=F32, weak=False):
    return TensorType(shape, dtype, weak, sharding)


# -- every op's rules against its implementation ------------------------------------------


def test_every_op_has_every_type_rule():
    missing = [f"{n}.{r}" for n, op in sorted(all_ops().items()) for r in RULES
               if not callable(getattr(op, r))]
    assert not missing, f"ops without type rules: {missing}"


def _unsharded(types):
    """Types without their shardings: jax.eval_shape's avals carry none to compare with
    (an op that places its output, sharding_constraint, is checked in test_sharding)."""
    return tuple(t.with_(sharding=None) for t in types)


def _jax_types(op, attrs, structs):
    out = jax.eval_shape(functools.partial(op.impl, **attrs), *structs)
    return tuple(TensorType(o.shape, o.dtype, o.weak_type) for o in jax.tree_util.tree_leaves(out))


def _arg_struct(a, weak=False):
    if jax.dtypes.issubdtype(a.dtype, jax.dtypes.prng_key):  # typed keys: as they are
        return jax.ShapeDtypeStruct(a.shape, a.dtype)
    return jax.ShapeDtypeStruct(np.shape(a), jax.dtypes.canonicalize_dtype(np.asarray(a).dtype),
                                weak_type=weak)


# the first sample of each op by default, every sample with -m slow
@pytest.mark.parametrize("name,index", list(sample_cases(default_per_op=1)))
def test_type_rules_match_the_implementation(name, index):
    op = lookup(name)
    sample = op.samples()[index]
    with x64_if_needed(sample.args, sample.attrs):
        sample = op.samples()[index]  # again under x64: samples may hold traced subgraphs
        attrs = op.check_attrs(sample.attrs)
        structs = [_arg_struct(a) for a in sample.args]
        got = _unsharded(op.infer([TensorType(s.shape, s.dtype) for s in structs], attrs))
        assert got == _jax_types(op, attrs, structs), f"{name}[{sample.name}]"


def _is_key(dtype):
    return jax.dtypes.issubdtype(dtype, jax.dtypes.prng_key)


def _weakable(dtype):
    if _is_key(dtype):  # keys are never weak
        return False
    defaults = (np.int64, np.float64, np.complex128)
    return np.dtype(dtype) in {np.dtype(jax.dtypes.canonicalize_dtype(t)) for t in defaults}


def _no_subgraphs(op, sample):
    # control-flow samples hold subgraphs typed for strong operands
    return not any(a.kind in ("graph", "graphs") for a in op.attrs.values())


@pytest.mark.parametrize("name,index", list(sample_cases(default_per_op=1, keep=_no_subgraphs)))
def test_weak_type_rules_match_the_implementation(name, index):
    """Each operand of a default dtype made weak in turn (as a Python scalar is), then all."""
    op = lookup(name)
    sample = op.samples()[index]
    with x64_if_needed(sample.args, sample.attrs):
        attrs = op.check_attrs(sample.attrs)
        structs = [_arg_struct(a) for a in sample.args]
        weakable = [k for k, s in enumerate(structs) if _weakable(s.dtype)]
        variants = [{k} for k in weakable] + ([set(weakable)] if len(weakable) > 1 else [])
        differences = []
        for weak in variants:
            args = [_arg_struct(a, k in weak) for k, a in enumerate(sample.args)]
            types = [TensorType(s.shape, s.dtype, s.weak_type) for s in args]
            got, want = _unsharded(op.infer(types, attrs)), _jax_types(op, attrs, args)
            if got != want:
                differences.append(f"weak operands {sorted(weak)}: rules {got}, jax {want}")
    assert not differences, f"{name}[{sample.name}]: " + "; ".join(differences)


# -- the rules' plumbing ---------------------------------------------------------------------


def _op(name, **rules):
    same = {"shape_rule": lambda x: x.shape, "dtype_rule": lambda x: x.dtype,
            "weak_rule": lambda x: x.weak, "sharding_rule": lambda x: x.sharding}
    return OpDef(name, impl=lambda x: x, **{**same, **rules})


def _refuse(x):
    raise tg.ShapeError("nope")


def test_a_failing_rule_is_named():
    x = spec_type((2,))
    bad = _op("test.bad", dtype_rule=lambda x: x.no_such_field)
    with pytest.raises(tg.Error, match=r"op 'test.bad': the dtype rule failed: AttributeError"):
        bad.infer([x], {})
    bad = _op("test.bad", dtype_rule=lambda x: "not a dtype")
    with pytest.raises(tg.Error, match=r"op 'test.bad': the dtype rule gave 'not a dtype', not a dtype"):
        bad.infer([x], {})
    bad = _op("test.bad", sharding_rule=lambda x: ("a", "b"))
    with pytest.raises(tg.Error, match=r"the sharding rule gave a bad sharding: .*2 entries"):
        bad.infer([x], {})
    # a ShapeError (the operand check) passes through as it is
    bad = _op("test.bad", shape_rule=_refuse)
    with pytest.raises(tg.ShapeError, match="^nope$"):
        bad.infer([x], {})


def test_multi_output_rules_must_agree_on_the_number_of_outputs():
    x = spec_type((2,))
    op = OpDef("test.two", impl=lambda x: (x, x), multi_output=True,
               shape_rule=lambda x: (x.shape, x.shape), dtype_rule=lambda x: (x.dtype,),
               weak_rule=lambda x: (False, False), sharding_rule=lambda x: (None, None))
    with pytest.raises(tg.Error, match=r"op 'test.two': the dtype rule of a multi-output op "
                                       r"must give a tuple with one entry per output \(2\)"):
        op.infer([x], {})
    op.dtype_rule = lambda x: (x.dtype, np.dtype(np.int32))
    assert op.infer([x], {}) == (x, spec_type((2,), dtype=np.int32))


def test_register_refuses_a_missing_rule(monkeypatch):
    monkeypatch.setattr(registry, "_OPS", dict(registry._OPS))
    op = OpDef("test.norule", shape_rule=lambda x: x.shape, impl=lambda x: x)
    with pytest.raises(ValueError, match="'test.norule': facet 'dtype_rule' is missing"):
        registry.register(op)
    # defop fills in the standard rules
    op = defop("test.defaults", shape=lambda x: x.shape, impl=lambda x: x)
    assert all(callable(getattr(op, r)) for r in RULES)


# -- sharding rules ----------------------------------------------------------------------------


def out_type(op, *types, **attrs):
    (t,) = lookup(op).infer(types, lookup(op).check_attrs(attrs))
    return t


def test_standard_sharding_of_elementwise_ops():
    x = spec_type((8, 4), ("data", None))
    b = spec_type((4,))
    assert out_type("exp", x).sharding == ("data", None)
    assert out_type("add", x, b).sharding == ("data", None)  # b has another shape
    assert out_type("mul", x, spec_type((), weak=True)).sharding == ("data", None)
    assert out_type("add", x, spec_type((8, 4), ("data", None))).sharding == ("data", None)
    # operands of the output's shape that disagree (None counts): no sharding
    assert out_type("add", x, spec_type((8, 4))).sharding is None
    assert out_type("add", x, spec_type((8, 4), (None, "data"))).sharding is None
    # broadcasting to a shape no operand has
    assert out_type("add", spec_type((8, 1), ("data", None)), b).sharding is None
    assert out_type("add", spec_type((8, 4)), b).sharding is None
    # dtype and weak rules are unaffected
    t = out_type("lt", x, spec_type((), weak=True))
    assert (t.dtype, t.weak, t.sharding) == (np.dtype(bool), False, ("data", None))


def test_sharding_rules_of_shape_changing_ops():
    x = spec_type((8, 4, 2), (("data", "fsdp"), None, "model"))
    assert out_type("transpose", x, perm=(2, 0, 1)).sharding == ("model", ("data", "fsdp"), None)
    assert out_type("sum", x, axes=(1,)).sharding == (("data", "fsdp"), "model")
    assert out_type("sum", x, axes=(0, 2), keepdims=True).sharding == (None, None, None)
    assert out_type("sum", x).sharding == ()
    assert out_type("max", x, axes=(-1,)).sharding == (("data", "fsdp"), None)
    assert out_type("argmax", x, axis=0).sharding == (None, "model")
    assert out_type("expand_dims", x, axes=(0, 2)).sharding == (
        None, ("data", "fsdp"), None, None, "model")
    assert out_type("squeeze", spec_type((8, 1), ("data", None)), axes=None).sharding == ("data",)
    assert out_type("broadcast_to", spec_type((8, 1), ("data", "model")),
                    shape=(3, 8, 5)).sharding == (None, "data", None)
    # an identity reshape keeps the sharding (the standard rule), a real one drops it
    assert out_type("reshape", x, shape=(8, 4, 2)).sharding == x.sharding
    assert out_type("reshape", x, shape=(32, 2)).sharding is None
    # no plain rule: none, even where the output has an operand's shape
    sq = spec_type((4, 4), ("data", None))
    assert out_type("matmul", sq, sq).sharding is None
    assert out_type("take", sq, spec_type((4,), dtype=np.int32), axis=0).sharding is None
    # unsharded operands give unsharded results
    assert out_type("transpose", spec_type((2, 3)), perm=(1, 0)).sharding is None
    assert out_type("sum", spec_type((2, 3)), axes=(0,)).sharding is None


def test_sharded_graph_propagates_and_verifies():
    g = sharded_graph()
    assert [str(t) for t in g.out_types] == [
        'f32[4,8]{none, "data"}', 'f32[8]{"data"}', 'f32[8,4]{"data", none}', "f32[8,4]"]
    g.verify()
    x, b = np.ones((8, 4), np.float32), np.arange(4, dtype=np.float32)
    for got, want in zip(g.interpret(x, b), g(x, b)):
        np.testing.assert_array_equal(got, want)


# -- shardings in the text, JSON and file forms ---------------------------------------------


def sharded_graph():
    x = spec_type((8, 4), ("data", None))
    b = spec_type((4,), (("model", "fsdp"),))

    def f(x, b):
        z = x * 2.0 + b
        return bind("transpose", z, perm=(1, 0)), bind("sum", z, axes=(1,)), tg.exp(z), z @ tg.ones((4, 4))

    return trace_graph(f, [x, b], "sharded")


def test_sharded_types_round_trip_through_text_json_and_files(tmp_path):
    g = sharded_graph()
    text = str(g)
    assert 'graph sharded(%a0: f32[8,4]{"data", none}, %a1: f32[4]{("model", "fsdp")})' in text
    g_text = tg.parse(text)
    g_json = tg.Graph.from_json(g.to_json())
    tg.save(g, tmp_path / "g.tg")
    g_file = tg.load(tmp_path / "g.tg")
    for g2 in (g_text, g_json, g_file):
        assert str(g2) == text
        assert [v.type for v in g2.inputs] == [v.type for v in g.inputs]
        assert g2.inputs[1].type.sharding == (("model", "fsdp"),)
    doc = json.loads(g.to_json())["graph"]
    assert doc["inputs"][0]["type"]["sharding"] == ["data", None]
    assert doc["inputs"][1]["type"]["sharding"] == [["model", "fsdp"]]


def test_unsharded_types_print_and_serialize_as_before():
    g = tg.trace(lambda x: x + 1.0, tg.spec((2,)))
    assert "{" not in str(g).splitlines()[1]
    assert '"sharding"' not in g.to_json()


def test_scalar_and_weak_sharded_types():
    def ident(x):
        return bind("stop_gradient", x)

    for t, text in ((spec_type((), ()), "f32[]{}"),
                    (spec_type((3,), ("x",), weak=True), 'f32[3]~{"x"}')):
        g = trace_graph(ident, [t], "g")
        assert str(t) == text and text in str(g)
        assert tg.parse(str(g)).inputs[0].type == t
        assert tg.Graph.from_json(g.to_json()).inputs[0].type == t


def test_tensor_type_sharding():
    t = spec_type((8, 4), PartitionSpec(("data",), None))
    assert t.sharding == ("data", None)  # a one-name tuple is the name
    assert t == spec_type((8, 4), ["data", None]) and hash(t) == hash(spec_type((8, 4), ("data", None)))
    assert t != spec_type((8, 4)) and t != spec_type((8, 4), (None, None))
    assert repr(t) == "TensorType((8, 4), f32, sharding=('data', None))"
    assert t.with_(dtype=np.float16).sharding == ("data", None)
    assert t.with_(sharding=None).sharding is None
    assert t.with_(shape=(8, 4)).sharding is None  # a new shape: no sharding unless given
    assert t.with_(shape=(4, 8), sharding=(None, "data")).sharding == (None, "data")
    for bad, pattern in [
        (("data",), "1 entries for a value of rank 2"),
        (("data", "data"), "uses mesh axis 'data' twice"),
        (("data", ("model", "data")), "twice"),
        (("da ta", None), "not an identifier"),
        ((1, None), "is not None, a mesh axis name"),
        (((), None), "is not None, a mesh axis name"),
        ("data", "a sharding is a tuple"),
    ]:
        with pytest.raises(tg.IRError, match=re.escape(pattern)):
            spec_type((8, 4), bad)


BAD_TEXT_SHARDINGS = [
    ('{"data"}', "1 entries for a value of rank 2"),
    ('{"data", "data"}', "twice"),
    ('{"da-ta", none}', "not an identifier"),
    ('{("data"), none}', "one mesh axis is written"),
    ('{("a",), none}', "expected a string"),
    ("{data, none}", "expected a sharding entry"),
    ("{1, none}", "expected a sharding entry"),
    ('{"a" none}', "expected ','"),
    ('{"a", none', "expected ','"),
]


@pytest.mark.parametrize("spec,pattern", BAD_TEXT_SHARDINGS)
def test_bad_sharding_text_is_an_ir_error(spec, pattern):
    text = f"graph g(%x: f32[8,4]{spec}) -> (f32[8,4]) {{\n  return %x\n}}"
    with pytest.raises(tg.IRError, match=r"line 1: .*" + re.escape(pattern)):
        tg.parse(text)


def test_declared_sharding_must_match_the_rules():
    g = sharded_graph()
    text = str(g).replace('{"data", none} = exp', " = exp")
    with pytest.raises(tg.IRError, match=r"output 0 is declared f32\[8,4\], the op gives "
                                         r'f32\[8,4\]\{"data", none\}'):
        tg.parse(text)


@pytest.mark.parametrize("sharding,pattern", [
    ("data", "sharding must be a list"),
    (None, "sharding must be a list"),
    ({"0": "data"}, "sharding must be a list"),
    (["data"], "1 entries for a value of rank 2"),
    (["data", 3], "is not None, a mesh axis name"),
    ([["data"], ["data", "x"]], "twice"),
    ([[["a"]], None], "not an identifier"),
    (["", None], "not an identifier"),
])
def test_bad_sharding_json_is_an_ir_error(sharding, pattern):
    doc = json.loads(tg.trace(lambda x: -x, tg.spec((8, 4))).to_json())
    doc["graph"]["inputs"][0]["type"]["sharding"] = sharding
    with pytest.raises(tg.IRError, match=r"graph.inputs\[0\].type: .*" + re.escape(pattern)):
        tg.Graph.from_json(json.dumps(doc))


# -- the full type matrix: ops x samples x dtypes x weak/strong/Python-scalar operands ------
# NOTE: a sample's operands are grouped by their dtype (data operands share one; indices,
# keys and predicates have their own). Each group in turn takes each matrix dtype, strong,
# each operand weak, all weak, and each operand replaced by a weak int / weak float (what a
# Python scalar or a weakly typed array of that kind is). JAX (`jax.eval_shape` of the
# implementation) is the reference; a combination the shape rule rejects must fail in the
# implementation too, unless it is in DELIBERATE_REJECTIONS.

MATRIX_DTYPES = ("bool", "i8", "i32", "u8", "f16", "bf16", "f32")
X64_DTYPES = ("i64", "f64")

# op -> (the rule's refusal message, why it is deliberate though JAX would run the op):
# tracegraph is stricter than JAX here on purpose.
DELIBERATE_REJECTIONS = {
    "conv2d": ("needs floating-point operands",
               "integer/bool convolutions: no gradient, and XLA's are backend-dependent"),
    "conv_general": ("needs floating-point operands", "as conv2d"),
    "avg_pool2d": ("needs a numeric operand", "the mean of bools is not a pooling"),
    "max_pool2d": ("needs a numeric operand", "bool max pooling is a logical or; say so"),
    "max_pool2d_grad": ("needs a floating-point x", "a gradient op: JAX gives float0 for ints"),
    "dropout": ("needs a floating-point operand", "scaling ints by 1/(1-p) silently makes floats"),
    "one_hot": ("needs integer class ids", "float class ids compare by equality: a silent bug"),
    "random_seed": ("must be an integer scalar", "a seed is an integer"),
    "random_fold_in": ("needs an integer scalar to fold in", "as random_seed"),
    "select": ("needs a bool predicate", "lax.select's contract; an int selector is select_n"),
    "index_add": ("indices must be integers", "bool indices are masks in numpy, not 0/1"),
    "index_set": ("indices must be integers", "as index_add"),
    "index_mul": ("indices must be integers", "as index_add"),
    "index_min": ("indices must be integers", "as index_add"),
    "index_max": ("indices must be integers", "as index_add"),
    "cumlogsumexp": ("needs a real floating operand",
                     "lax.cumlogsumexp's shape rule takes integers, which then fail to run"),
    "random_gamma": ("needs a floating-point a",
                     "JAX's abstract rule echoes any a; its sampler runs on floats only "
                     "(jax.random.gamma converts a first)"),
}


# refusals deliberate in every op
DELIBERATE_EVERYWHERE = {
    "a random key must be one key": "keys are what tg.random.key / jax.random.PRNGKey give; "
                                   "an op may ignore its key (dropout at rate 0), a key of "
                                   "another dtype is still a bug",
}


def _deliberate(name, error):
    if not isinstance(error, tg.ShapeError):
        return False
    patterns = [DELIBERATE_REJECTIONS.get(name, ("\0",))[0], *DELIBERATE_EVERYWHERE]
    return any(p in str(error) for p in patterns)


def _variants(group, sample_dtypes):
    """(name, {position: (dtype or None for the group dtype, weak)}) for one dtype group."""
    out = [("strong", {})]
    out += [(f"weak{k}", {k: (None, True)}) for k in group]
    if len(group) > 1:
        out.append(("all-weak", {k: (None, True) for k in group}))
    if len(sample_dtypes) > 1 or len(group) > 1:  # a weak int / float among other operands
        for k in group:
            out.append((f"pyint{k}", {k: ("int", True)}))
            out.append((f"pyfloat{k}", {k: ("float", True)}))
    return out


def _fails(fn):
    try:
        return False, fn()
    except Exception as e:  # noqa: BLE001 - any failure counts
        return True, e


def _matrix_cases(sample, dtypes):
    """Yield (description, operand structs) for one sample."""
    base = [_arg_struct(a) for a in sample.args]
    groups = {}
    for k, s in enumerate(base):
        if not _is_key(s.dtype):  # a typed key operand stays a key
            groups.setdefault(np.dtype(s.dtype), []).append(k)
    for group in groups.values():
        for dname in dtypes:
            dt = np.dtype(DTYPE_NAMES[dname])
            for vname, change in _variants(group, groups):
                structs = list(base)
                for k in group:
                    kdt, weak = change.get(k, (None, False))
                    kdt = {None: dt, "int": default_int(), "float": default_float()}[kdt]
                    structs[k] = jax.ShapeDtypeStruct(base[k].shape, kdt, weak_type=weak)
                yield f"{dname} {vname} (group {group})", structs


def _show(types):
    if isinstance(types, Exception):
        return f"{type(types).__name__}: {str(types).splitlines()[0][:160] if str(types) else ''}"
    return "(" + ", ".join(f"{t.dtype}{list(t.shape)}{'~' if t.weak else ''}" for t in types) + ")"


def _check_matrix(name, index, dtypes):
    """(problems, number of cases) of one sample over ``dtypes``."""
    op = lookup(name)
    problems, count = [], 0
    for wide in (False, True):
        dts = [d for d in dtypes if (d in X64_DTYPES) == wide]
        if not dts:
            continue
        with jax.enable_x64(wide):
            sample = op.samples()[index]
            attrs = op.check_attrs(sample.attrs)
            for what, structs in _matrix_cases(sample, dts):
                count += 1
                types = [TensorType(s.shape, s.dtype, s.weak_type) for s in structs]
                rule_failed, got = _fails(lambda t=types, a=attrs: _unsharded(op.infer(t, a)))
                with warnings.catch_warnings():  # jax's deprecations of odd dtypes
                    warnings.simplefilter("ignore", DeprecationWarning)
                    impl_failed, want = _fails(lambda a=attrs, s=structs: _jax_types(op, a, s))
                if rule_failed and not isinstance(got, tg.ShapeError):  # a rule crashed
                    problems.append(f"{what}: {_show(got)}")
                elif rule_failed and impl_failed:
                    continue
                elif rule_failed:
                    if _deliberate(name, got):
                        continue
                    problems.append(f"{what}: rules refuse ({_show(got)}), jax {_show(want)}")
                elif impl_failed:
                    problems.append(f"{what}: rules {_show(got)}, jax fails ({_show(want)})")
                elif got != want:
                    problems.append(f"{what}: rules {_show(got)}, jax {_show(want)}")
    return problems, count


@pytest.mark.parametrize("name,index", list(sample_cases(default_per_op=1, keep=_no_subgraphs)))
def test_type_matrix(name, index):
    """Every dtype, weak/strong and Python-scalar variant of an op's sample (the first
    sample of each op by default, every sample with -m slow)."""
    problems, _ = _check_matrix(name, index, MATRIX_DTYPES + X64_DTYPES)
    assert not problems, f"{name}[{index}]:\n  " + "\n  ".join(problems[:20]) + (
        f"\n  ... {len(problems)} in all" if len(problems) > 20 else "")
