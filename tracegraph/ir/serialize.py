"""JSON form of the IR (schema by example in docs/ir.md).

    {"format": "tracegraph-ir", "version": 1, "graph": {
       "name": "f",
       "inputs": [{"id": "x", "type": {"shape": [3], "dtype": "f32", "weak": false}}],
       "constants": [{"id": "c0", "type": {...}, "base64": "AAAAQA=="}],
       "nodes": [{"op": "mul", "inputs": ["x", "c0"], "attrs": {},
                  "outputs": [{"id": "0", "type": {...}}], "location": "f.py:3", "scope": ""}],
       "outputs": ["0"], "in_tree": {...}, "out_tree": {...}}}

Values are referred to by ``id`` (the name the text form prints, without ``%``). A type
with a sharding has one more field, its partition spec: ``"sharding": ["data", null,
["a", "b"]]`` (left out when there is none).
Attributes are typed: ``{"int": 3}``, ``{"float": 0.5}`` (``"inf"``, ``"-inf"``,
``"nan"`` as strings), ``{"bool": true}``, ``{"str": "..."}``, ``{"dtype": "f32"}``,
``{"tuple": [...]}``, ``{"none": null}``, ``{"graph": {...}}``. Constants are the base64
of their little-endian bytes, or ``{"array": name}`` for arrays stored beside the JSON
(the `tg.save` file).

NOTE: loading is a trust boundary. It uses ``json.loads`` only (no pickle, no eval),
bounds the document's size and nesting, and validates everything — format and version,
ops, arities, attributes, value references (dangling, used before defined, defined
twice), shapes, dtypes, constant sizes — raising `tg.IRError` with a JSON path such as
``graph.nodes[3].attrs.axis``. The verifier runs on the result.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import sys

import numpy as np

from ..errors import IRError
from . import printer, verifier
from .parser import (
    MAX_GRAPH_DEPTH, MAX_LITERAL_DEPTH, MAX_NAME_CHARS, IRClasses, build_node, check_int_attr,
    KEY_CONSTANT, describe_array, make_type,
)
from .tree import TreeSpec, default_in_tree, default_out_tree
from .types import DTYPE_NAMES, TensorType, dtype_name, is_key

FORMAT = "tracegraph-ir"
VERSION = 1
MAX_JSON_BYTES = 2**31  # refuse larger documents
MAX_NODES = 2**24  # nodes in one document, subgraphs included
MAX_TUPLE = 1024  # items in one attribute tuple (as the registry allows)

_BF16 = DTYPE_NAMES.get("bf16")


# -- writing ----------------------------------------------------------------------------------
def to_json(graph, indent: int | None = None) -> str:
    """The JSON text of ``graph`` (constants inline, as base64)."""
    return dumps(document(graph), indent)


def dumps(doc: dict, indent: int | None = None) -> str:
    return json.dumps(doc, indent=indent, allow_nan=False)


def document(graph, store_array=None) -> dict:
    """The JSON document as Python objects. With ``store_array(array) -> name`` constants
    are stored by that callable and referred to as ``{"array": name}``."""
    return {"format": FORMAT, "version": VERSION, "graph": _graph_obj(graph, store_array)}


def type_obj(t: TensorType) -> dict:
    obj = {"shape": list(t.shape), "dtype": dtype_name(t.dtype), "weak": t.weak}
    if t.sharding is not None:  # left out when none, so older documents read the same
        obj["sharding"] = [e if e is None or isinstance(e, str) else list(e) for e in t.sharding]
    return obj


def _graph_obj(g, store) -> dict:
    namer = printer.Namer(g)

    def ref(v):
        name = namer.names.get(id(v))
        if name is None:
            raise IRError(f"graph {g.name}: a node uses {v!r}, which the graph does not define")
        return name

    constants = []
    for v in g.constants:
        entry = {"id": ref(v), "type": type_obj(v.type)}
        arr = np.asarray(v.data)
        if store is None:
            entry["base64"] = base64.b64encode(_to_le_bytes(arr)).decode("ascii")
        else:
            entry["array"] = store(arr)
        constants.append(entry)
    nodes = [
        {
            "op": n.op,
            "inputs": [ref(v) for v in n.inputs],
            "attrs": {k: _attr_obj(a, store) for k, a in n.attrs.items()},
            "outputs": [{"id": ref(v), "type": type_obj(v.type)} for v in n.outputs],
            "location": n.location or None,
            "scope": n.scope or "",
        }
        for n in g.nodes
    ]
    return {
        "name": g.name,
        "inputs": [{"id": ref(v), "type": type_obj(v.type)} for v in g.inputs],
        "constants": constants,
        "nodes": nodes,
        "outputs": [ref(v) for v in g.outputs],
        "in_tree": g.in_tree.to_obj(),
        "out_tree": g.out_tree.to_obj(),
    }


def _attr_obj(v, store) -> dict:
    if v is None:
        return {"none": None}
    if isinstance(v, (bool, np.bool_)):
        return {"bool": bool(v)}
    if isinstance(v, (int, np.integer)):
        return {"int": int(v)}
    if isinstance(v, (float, np.floating)):
        x = float(v)
        return {"float": x if math.isfinite(x) else printer.format_float(x)}
    if isinstance(v, str):
        return {"str": v}
    if isinstance(v, np.dtype):
        return {"dtype": dtype_name(v)}
    if isinstance(v, (tuple, list)):
        return {"tuple": [_attr_obj(x, store) for x in v]}
    if printer._is_graph(v):
        return {"graph": _graph_obj(v, store)}
    raise IRError(f"cannot serialize attribute value {v!r:.60}")


def _to_le_bytes(arr: np.ndarray) -> bytes:
    arr = np.ascontiguousarray(arr)
    if sys.byteorder == "big" and arr.dtype.itemsize > 1:
        arr = arr.byteswap()
    return arr.tobytes()


def _from_le_bytes(raw: bytes, t: TensorType) -> np.ndarray:
    arr = np.frombuffer(raw, dtype=t.dtype)
    if sys.byteorder == "big" and t.dtype.itemsize > 1:
        arr = arr.byteswap()
    return arr.reshape(t.shape)


# -- reading ----------------------------------------------------------------------------------
def from_json(text, ir: IRClasses, arrays=None):
    """Load a graph from JSON text; ``arrays`` maps the names of ``{"array": name}``
    constants to arrays."""

    def fetch(name, t):
        if arrays is None or name not in arrays:
            raise IRError(f"constant array {name!r} is missing (pass it in arrays=)")
        return arrays[name]

    return load_document(text, ir, fetch)


def load_document(text, ir: IRClasses, fetch):
    """Parse and validate a JSON document; ``fetch(name, type)`` returns the array of an
    ``{"array": name}`` constant."""
    if isinstance(text, (bytes, bytearray, memoryview)):
        if len(text) > MAX_JSON_BYTES:
            raise IRError(f"JSON document of {len(text)} bytes exceeds {MAX_JSON_BYTES}")
        try:
            text = bytes(text).decode("utf-8")
        except UnicodeDecodeError as e:
            raise IRError(f"JSON document is not UTF-8: {e}") from None
    if not isinstance(text, str):
        raise IRError(f"expected JSON text, got {type(text).__name__}")
    if len(text) > MAX_JSON_BYTES:
        raise IRError(f"JSON document of {len(text)} characters exceeds {MAX_JSON_BYTES}")
    doc = _loads(text)
    _fields(doc, "document", ("format", "version", "graph"))
    if doc["format"] != FORMAT:
        raise IRError(f"not a tracegraph IR document (format {doc['format']!r:.40})")
    if type(doc["version"]) is not int or doc["version"] != VERSION:
        raise IRError(f"unsupported IR version {doc['version']!r:.20} (this reader knows {VERSION})")
    try:
        return _Loader(ir, fetch).graph(doc["graph"], 0, "graph")
    except RecursionError:  # the depth limits keep far from it; a deep caller's stack may not
        raise IRError("JSON document nested too deeply to read") from None


def _loads(text: str):
    try:
        return json.loads(text, object_pairs_hook=_unique_keys, parse_constant=_no_constant)
    except IRError:
        raise
    except RecursionError:
        raise IRError("JSON document nested too deeply") from None
    except ValueError as e:  # JSONDecodeError, and over-long integer literals
        raise IRError(f"not valid JSON: {e}") from None


def _unique_keys(pairs):
    out = {}
    for k, v in pairs:
        if k in out:
            raise IRError(f"duplicate key {k!r:.60} in a JSON object")
        out[k] = v
    return out


def _no_constant(name):
    raise IRError(f"{name} is not JSON; non-finite floats are written as strings (\"inf\")")


def _fields(obj, path, required, optional=()):
    if not isinstance(obj, dict):
        raise IRError(f"{path}: expected an object, got {_kind(obj)}")
    for key in required:
        if key not in obj:
            raise IRError(f"{path}: missing field {key!r}")
    for key in obj:
        if key not in required and key not in optional:
            raise IRError(f"{path}: unknown field {key!r:.60}")


def _kind(x) -> str:
    return {dict: "an object", list: "a list", str: "a string", bool: "a bool",
            int: "an int", float: "a float", type(None): "null"}.get(type(x), type(x).__name__)


def _list(obj, path) -> list:
    if not isinstance(obj, list):
        raise IRError(f"{path}: expected a list, got {_kind(obj)}")
    return obj


def _string(obj, path, limit=MAX_NAME_CHARS) -> str:
    if not isinstance(obj, str):
        raise IRError(f"{path}: expected a string, got {_kind(obj)}")
    if len(obj) > limit:
        raise IRError(f"{path}: string longer than {limit} characters")
    return obj


class _Env:
    """The values of one graph by id, while it is read."""

    def __init__(self, inputs, constants, nodes):
        self.values: dict = {}
        # Every id the graph defines, to tell a reference to a later value (a cycle, or
        # nodes out of order) from one to a value that does not exist at all.
        entries = [e for e in inputs + constants if isinstance(e, dict)]
        for n in nodes:
            if isinstance(n, dict) and isinstance(n.get("outputs"), list):
                entries += [o for o in n["outputs"] if isinstance(o, dict)]
        self.later = {e.get("id") for e in entries if isinstance(e.get("id"), str)}

    def define(self, vid: str, path: str, v):
        if vid in self.values:
            raise IRError(f"{path}: value {vid!r:.60} is defined twice (not SSA)")
        self.values[vid] = v
        return v

    def ref(self, x, path: str):
        if not isinstance(x, str):
            raise IRError(f"{path}: a value reference is a string id, got {_kind(x)}")
        v = self.values.get(x)
        if v is None:
            if x in self.later:
                raise IRError(f"{path}: value {x!r:.60} is used before it is defined "
                              "(a cycle, or nodes out of topological order)")
            raise IRError(f"{path}: value {x!r:.60} is not defined (dangling reference)")
        return v


class _Loader:
    def __init__(self, ir: IRClasses, fetch):
        self.ir = ir
        self.fetch = fetch
        self.num_nodes = 0

    def graph(self, obj, depth: int, path: str):
        if depth > MAX_GRAPH_DEPTH:
            raise IRError(f"{path}: graphs nested more than {MAX_GRAPH_DEPTH} deep")
        _fields(obj, path, ("name", "inputs", "constants", "nodes", "outputs"),
                ("in_tree", "out_tree"))
        name = _string(obj["name"], f"{path}.name")
        ins = _list(obj["inputs"], f"{path}.inputs")
        consts = _list(obj["constants"], f"{path}.constants")
        nodes_obj = _list(obj["nodes"], f"{path}.nodes")
        self.num_nodes += len(nodes_obj)
        if self.num_nodes > MAX_NODES:
            raise IRError(f"{path}: more than {MAX_NODES} nodes")
        env = _Env(ins, consts, nodes_obj)
        inputs = []
        for i, e in enumerate(ins):
            p = f"{path}.inputs[{i}]"
            _fields(e, p, ("id", "type"))
            vid = _string(e["id"], f"{p}.id")
            t = self.type(e["type"], f"{p}.type")
            inputs.append(env.define(vid, p, self.ir.Value(t, name=vid)))
        constants = []
        for i, e in enumerate(consts):
            p = f"{path}.constants[{i}]"
            _fields(e, p, ("id", "type"), ("base64", "array"))
            if ("base64" in e) == ("array" in e):
                raise IRError(f"{p}: a constant has exactly one of 'base64' and 'array'")
            vid = _string(e["id"], f"{p}.id")
            t = self.type(e["type"], f"{p}.type")
            constants.append(env.define(vid, p, self.ir.Value(t, data=self.constant(e, t, p))))
        nodes = [self.node(n, f"{path}.nodes[{i}]", env, depth) for i, n in enumerate(nodes_obj)]
        outs = _list(obj["outputs"], f"{path}.outputs")
        outputs = [env.ref(x, f"{path}.outputs[{j}]") for j, x in enumerate(outs)]
        in_tree = self.tree(obj, "in_tree", path, default_in_tree(len(inputs)))
        out_tree = self.tree(obj, "out_tree", path, default_out_tree(len(outputs)))
        graph = self.ir.Graph(name, inputs, constants, nodes, outputs, in_tree, out_tree)
        try:
            verifier.verify(graph, depth, nested=False)  # subgraphs: verified as read
        except IRError as e:
            raise IRError(f"{path}: {e}") from None
        return graph

    def node(self, n, p: str, env: _Env, depth: int):
        _fields(n, p, ("op", "inputs", "outputs"), ("attrs", "location", "scope"))
        op = _string(n["op"], f"{p}.op")
        ins = _list(n["inputs"], f"{p}.inputs")
        args = [env.ref(x, f"{p}.inputs[{j}]") for j, x in enumerate(ins)]
        attrs_obj = n.get("attrs", {})
        if not isinstance(attrs_obj, dict):
            raise IRError(f"{p}.attrs: expected an object, got {_kind(attrs_obj)}")
        attrs = {k: self.attr(a, depth, 0, f"{p}.attrs.{k}") for k, a in attrs_obj.items()}
        ids, types = [], []
        for j, o in enumerate(_list(n["outputs"], f"{p}.outputs")):
            _fields(o, f"{p}.outputs[{j}]", ("id", "type"))
            ids.append(_string(o["id"], f"{p}.outputs[{j}].id"))
            types.append(self.type(o["type"], f"{p}.outputs[{j}].type"))
        location = n.get("location")
        if location is not None:
            location = _string(location, f"{p}.location", 4096)
        scope = _string(n.get("scope", ""), f"{p}.scope", 4096)
        try:
            node = build_node(self.ir, op, args, attrs, types, location, scope)
        except IRError as e:
            raise IRError(f"{p}: {e}") from None
        for j, (vid, v) in enumerate(zip(ids, node.outputs)):
            env.define(vid, f"{p}.outputs[{j}]", v)
        return node

    def type(self, obj, path) -> TensorType:
        _fields(obj, path, ("shape", "dtype", "weak"), ("sharding",))
        if "sharding" in obj and not isinstance(obj["sharding"], list):  # null too: leave it out
            raise IRError(f"{path}: sharding must be a list of entries, got {_kind(obj['sharding'])}")
        try:
            return make_type(obj["shape"], obj["dtype"], obj["weak"], obj.get("sharding"))
        except IRError as e:
            raise IRError(f"{path}: {e}") from None

    def tree(self, obj, key, path, default) -> TreeSpec:
        if key not in obj:
            return default
        try:
            spec = TreeSpec.from_obj(obj[key])
            _check_unique_keys(spec)
        except IRError as e:
            raise IRError(f"{path}.{key}: {e}") from None
        return spec

    def constant(self, entry, t: TensorType, path) -> np.ndarray:
        if is_key(t.dtype):
            raise IRError(f"{path}: {KEY_CONSTANT}")
        nbytes = t.size * t.dtype.itemsize  # t.size is bounded by make_type: no overflow
        if "base64" in entry:
            text = _string(entry["base64"], f"{path}.base64", MAX_JSON_BYTES)
            if len(text) != 4 * ((nbytes + 2) // 3):
                raise IRError(f"{path}: {len(text)} base64 characters cannot hold the "
                              f"{nbytes} bytes of a {t} constant")
            try:
                raw = base64.b64decode(text, validate=True)
            except (binascii.Error, ValueError) as e:
                raise IRError(f"{path}: bad base64 data: {e}") from None
            if len(raw) != nbytes:
                raise IRError(f"{path}: {len(raw)} bytes of data for a {t} constant "
                              f"({nbytes} expected)")
            arr = _from_le_bytes(raw, t)
        else:
            name = _string(entry["array"], f"{path}.array")
            try:
                arr = self.fetch(name, t)
            except IRError as e:
                raise IRError(f"{path}: {e}") from None
            arr = check_array(arr, t, f"{path}: array {name!r}")
        if t.dtype.kind == "b" and arr.size and arr.view(np.uint8).max() > 1:
            raise IRError(f"{path}: bool constant holds bytes other than 0 and 1")
        return arr

    def attr(self, obj, graph_depth: int, depth: int, path):
        if depth > MAX_LITERAL_DEPTH:
            raise IRError(f"{path}: attribute nested more than {MAX_LITERAL_DEPTH} deep")
        if not isinstance(obj, dict) or len(obj) != 1:
            raise IRError(f"{path}: an attribute is an object with one key naming its kind "
                          "(int, float, bool, str, dtype, tuple, none, graph)")
        ((tag, v),) = obj.items()
        if tag == "int" and type(v) is int:
            try:
                return check_int_attr(v)
            except IRError as e:
                raise IRError(f"{path}: {e}") from None
        if tag == "float":
            if type(v) in (int, float):
                return float(v)
            if v in ("inf", "-inf", "nan"):
                return float(v)
        if tag == "bool" and type(v) is bool:
            return v
        if tag == "str" and isinstance(v, str):
            return v
        if tag == "dtype" and isinstance(v, str):
            if v not in DTYPE_NAMES:
                raise IRError(f"{path}: unknown dtype {v!r:.40}")
            return DTYPE_NAMES[v]
        if tag == "none" and v is None:
            return None
        if tag == "tuple" and isinstance(v, list):
            if len(v) > MAX_TUPLE:
                raise IRError(f"{path}: attribute tuple longer than {MAX_TUPLE} items")
            return tuple(
                self.attr(x, graph_depth, depth + 1, f"{path}[{i}]") for i, x in enumerate(v)
            )
        if tag == "graph":
            return self.graph(v, graph_depth + 1, f"{path}.graph")
        raise IRError(f"{path}: bad attribute {{{tag!r:.40}: {_kind(v)}}}")


def _check_unique_keys(spec: TreeSpec):
    if spec.keys is not None and len(set(spec.keys)) != len(spec.keys):
        raise IRError(f"dict structure with repeated keys {list(spec.keys)!r:.80}")
    for child in spec.children:
        _check_unique_keys(child)


def check_array(arr, t: TensorType, what: str) -> np.ndarray:
    """An array supplied for a constant, checked against its declared type. bfloat16
    constants may come as their uint16 bit pattern (as `tg.save` stores them)."""
    if not isinstance(arr, np.ndarray):
        try:
            arr = np.asarray(arr)
        except Exception as e:  # noqa: BLE001 - foreign objects
            raise IRError(f"{what} is not an array: {e}") from None
    if t.dtype == _BF16 and arr.dtype == np.uint16:
        arr = arr.view(_BF16)
    if arr.dtype != t.dtype or arr.shape != t.shape:
        raise IRError(f"{what} is {describe_array(arr)}, the graph declares {t}")
    return arr
