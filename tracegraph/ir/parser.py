"""Parser of the IR text form: reads back exactly what `printer` writes (grammar in
docs/ir.md), so that ``str(tg.parse(str(g))) == str(g)``.

A hand-written recursive-descent parser over one line at a time (the text form is
line-oriented: one definition per line, a subgraph block per control-flow node). No
``eval``: literals are read by the tokenizer, strings by ``json.loads``.

Everything is checked while reading, and every error is a `tg.IRError` that names the
line: unknown ops, wrong arities, bad attributes (through `OpDef.check_attrs`), undefined
or redefined values, types that disagree with the op's type rules; the verifier runs on
the finished graph.

The module also holds the checks shared with the JSON loader (`make_type`, `build_node`,
the size limits), so that both readers of untrusted IR validate the same way.

Example::

    g = tg.trace(lambda x: tg.exp(x) * 2.0, tg.spec((3,)))
    assert str(tg.parse(str(g))) == str(g)
"""

from __future__ import annotations

import json
import math
import re

import numpy as np

from ..errors import IRError
from . import printer, registry, verifier
from .tree import CUSTOM, DICT, LIST, NONE, TUPLE, TreeSpec, default_in_tree
from .types import (
    DTYPE_NAMES, TensorType, checked_num_elements, dtype_from_name, is_bool, is_complex, is_int,
    is_key,
)

# -- limits shared by every reader of untrusted IR ----------------------------------------
MAX_TEXT_CHARS = 2**31  # refuse larger texts
MAX_RANK = 64
MAX_LITERAL_DEPTH = 64  # nested lists, tuples and pytree expressions
MAX_GRAPH_DEPTH = verifier.MAX_NESTING  # subgraphs inside subgraphs
MAX_NAME_CHARS = 1024
MAX_SUBGRAPHS = 1024  # graphs in one `graphs` attribute
INT_ATTR_MIN, INT_ATTR_MAX = -(2**63), 2**64 - 1  # int attributes fit 64 bits


def check_text_size(text, what: str = "text"):
    if len(text) > MAX_TEXT_CHARS:
        raise IRError(f"{what} of {len(text)} characters exceeds the limit of {MAX_TEXT_CHARS}")


def make_type(shape, dtype: str, weak: bool = False, sharding=None) -> TensorType:
    """A `TensorType` from untrusted parts; raises IRError for anything malformed.
    ``sharding`` is None or a list/tuple of entries: None, an axis name, or a list/tuple
    of axis names (`check_sharding` validates the rest)."""
    dt = dtype_from_name(dtype)  # IRError for an unknown name
    if not isinstance(shape, (list, tuple)):
        raise IRError(f"shape must be a list of ints, got {shape!r:.60}")
    if len(shape) > MAX_RANK:
        raise IRError(f"rank {len(shape)} exceeds the limit of {MAX_RANK}")
    checked_num_elements(shape)  # ints only, non-negative, no overflow
    if not isinstance(weak, bool):
        raise IRError(f"weak flag must be a bool, got {weak!r:.40}")
    if sharding is not None and not isinstance(sharding, (list, tuple)):
        raise IRError(f"sharding must be a list of per-dimension entries, got {sharding!r:.60}")
    return TensorType(shape, dt, weak, sharding)


# Constants are numpy arrays; a key is not one (its bits mean nothing without its
# implementation), so a key in a graph is a random_wrap of a u32 constant.
KEY_CONSTANT = "a constant cannot have a key type: write random_wrap of its u32 data"


def describe_array(arr) -> str:
    """``f32[2,3]`` for an array of a dtype the IR knows, ``object[2]`` otherwise."""
    try:
        return str(TensorType(arr.shape, arr.dtype))
    except IRError:
        return f"{arr.dtype}{list(arr.shape)}"


def check_int_attr(v: int) -> int:
    if not INT_ATTR_MIN <= v <= INT_ATTR_MAX:
        raise IRError(f"integer attribute {v} does not fit in 64 bits")
    return v


class IRClasses:
    """The classes a reader builds IR from. graph.py defines them and passes them in,
    since graph.py imports the readers (no import cycle)."""

    __slots__ = ("Graph", "Node", "Value")

    def __init__(self, graph_cls, node_cls, value_cls):
        self.Graph, self.Node, self.Value = graph_cls, node_cls, value_cls


def build_node(ir: IRClasses, op_name, inputs, attrs: dict, out_types, location=None, scope=""):
    """A Node from untrusted parts, checked against the op's record: the op exists, the
    arity fits, the attributes are valid (defaults filled in), and ``out_types`` are what
    the op's type rules give. The attributes keep the order given, defaults last."""
    op = registry.lookup(op_name)
    op.check_arity(len(inputs))
    for key, value in attrs.items():
        # a reader gives dtypes as np.dtype (the text's names, JSON's {"dtype": ...});
        # anything else would go to np.dtype(), which reads strings and tuples such as
        # ("f4", -1) its own way and raises what it likes
        kind = op.attrs[key].kind if key in op.attrs else None
        is_dtype = isinstance(value, np.dtype) or (value is None and kind == "opt_dtype")
        if kind in ("dtype", "opt_dtype") and not is_dtype:
            raise IRError(f"op {op_name!r}, attribute {key!r}: expected a dtype name, "
                          f"got {value!r:.60}")
    try:
        checked = op.check_attrs(attrs)
    except IRError:
        raise
    except Exception as e:  # noqa: BLE001 - an attribute check failing on foreign input
        raise IRError(f"op {op_name!r}: bad attributes ({type(e).__name__}: {e})") from None
    ordered = {k: checked[k] for k in attrs}
    ordered.update((k, v) for k, v in checked.items() if k not in ordered)
    try:
        expected = op.infer([v.type for v in inputs], checked)
    except Exception as e:  # noqa: BLE001 - any failure of a rule on foreign input
        raise IRError(f"op {op_name!r}: the shape rule rejects the inputs: {e}") from None
    if len(expected) != len(out_types):
        raise IRError(f"op {op_name!r} gives {len(expected)} outputs, {len(out_types)} declared")
    for j, (got, want) in enumerate(zip(out_types, expected)):
        if got != want:
            raise IRError(f"op {op_name!r}: output {j} is declared {got}, the op gives {want}")
    if location is not None and not isinstance(location, str):
        raise IRError(f"location must be a string, got {location!r:.40}")
    if not isinstance(scope, str):
        raise IRError(f"scope must be a string, got {scope!r:.40}")
    outs = [ir.Value(t) for t in out_types]
    return ir.Node(op_name, inputs, ordered, outs, location, scope)


def text_constants(graph, _prefix: str = "") -> dict:
    """The constants that ``str(graph)`` elides (``<N elements>``), keyed as `parse`
    expects them: ``"c3"`` for the graph's own, ``"5/body/c0"`` for constant ``%c0`` of
    subgraph attribute ``body`` of the node defining ``%5`` (``"5/branches/1/c0"`` for
    the second graph of a ``graphs`` attribute; ``"node7/..."`` if a node has no output).

    Example::

        tg.parse(str(g), constants=text_constants(g))
    """
    out = {}
    for i, v in enumerate(graph.constants):
        arr = np.asarray(v.data)
        if arr.size > printer.INLINE_CONSTANT_LIMIT:
            out[f"{_prefix}c{i}"] = arr
    name = printer.Namer(graph)
    for index, node in enumerate(graph.nodes):
        head = name(node.outputs[0])[1:] if node.outputs else f"node{index}"
        for key, val in node.attrs.items():
            if printer._is_graph(val):
                out.update(text_constants(val, f"{_prefix}{head}/{key}/"))
            elif isinstance(val, tuple) and val and all(printer._is_graph(g) for g in val):
                for i, g in enumerate(val):
                    out.update(text_constants(g, f"{_prefix}{head}/{key}/{i}/"))
    return out


# -- tokens ---------------------------------------------------------------------------------
_STRING_PATTERN = r'"(?:[^"\\\x00-\x1f]|\\(?:["\\/bfnrt]|u[0-9a-fA-F]{4}))*"'  # a JSON string
_TOKEN = re.compile(
    r"""
     (?P<ws>\s+)
    |(?P<comment>\#.*)
    |(?P<pct>%[\w.]+)
    |(?P<num>(?:-?(?:\d+\.\d*(?:[eE][-+]?\d+)?|\d+[eE][-+]?\d+|\d+)|-inf|-nan)(?![\w.]))
    |(?P<ident>[^\W\d][\w.]*)
    |(?P<str>""" + _STRING_PATTERN + r""")
    |(?P<arrow>->)
    |(?P<punct>[()\[\]{},:=~<>])
    """,
    re.VERBOSE,
)
_STRING = re.compile(_STRING_PATTERN)
_INT = re.compile(r"-?\d+\Z")
_MAX_DIGITS = 40


class _Line:
    """The tokens of one line, and a cursor over them."""

    def __init__(self, lineno: int, text: str):
        self.lineno = lineno
        self.text = text
        self.tokens: list[tuple[str, str]] = []
        self.comment: str | None = None
        pos = 0
        while pos < len(text):
            m = _TOKEN.match(text, pos)
            if m is None:
                raise self.error(f"unexpected character {text[pos]!r}")
            kind = m.lastgroup
            if kind == "comment":
                self.comment = m.group()[1:]
                break
            if kind != "ws":
                self.tokens.append((kind, m.group()))
            pos = m.end()
        self.i = 0

    def error(self, msg: str) -> IRError:
        shown = self.text.strip()
        shown = shown if len(shown) <= 120 else shown[:117] + "..."
        return IRError(f"line {self.lineno}: {msg}\n    {shown}")

    @property
    def blank(self) -> bool:
        return not self.tokens

    def peek(self, k: int = 0):
        j = self.i + k
        return self.tokens[j] if j < len(self.tokens) else ("end", "")

    def next(self):
        tok = self.peek()
        if tok[0] == "end":
            raise self.error("unexpected end of line")
        self.i += 1
        return tok

    def at(self, kind: str, text: str | None = None, k: int = 0) -> bool:
        t = self.peek(k)
        return t[0] == kind and (text is None or t[1] == text)

    def accept(self, kind: str, text: str | None = None) -> bool:
        if self.at(kind, text):
            self.i += 1
            return True
        return False

    def expect(self, kind: str, text: str | None = None) -> str:
        tok = self.peek()
        if tok[0] != kind or (text is not None and tok[1] != text):
            want = repr(text) if text is not None else _KIND_NAMES[kind]
            got = repr(tok[1]) if tok[0] != "end" else "end of line"
            raise self.error(f"expected {want}, got {got}")
        self.i += 1
        return tok[1]

    def expect_end(self):
        if self.peek()[0] != "end":
            raise self.error(f"unexpected {self.peek()[1]!r} at the end of the line")


_KIND_NAMES = {
    "pct": "a %value", "num": "a number", "ident": "a name", "str": "a string",
    "punct": "punctuation", "arrow": "'->'",
}


# -- the parser -----------------------------------------------------------------------------
class _Elided:
    def __init__(self, count: int):
        self.count = count


class _Parser:
    def __init__(self, text: str, ir: IRClasses, constants):
        self.lines = text.split("\n")
        self.pos = 0
        self.ir = ir
        self.constants = dict(constants or {})
        self.last = None

    # -- lines ------------------------------------------------------------------------
    def next_line(self) -> _Line:
        while self.pos < len(self.lines):
            line = _Line(self.pos + 1, self.lines[self.pos])
            self.pos += 1
            if not line.blank:
                self.last = line
                return line
        n = len(self.lines)
        raise IRError(f"line {n}: unexpected end of text (a graph is not closed with '}}')")

    def finish(self):
        while self.pos < len(self.lines):
            line = _Line(self.pos + 1, self.lines[self.pos])
            self.pos += 1
            if not line.blank:
                raise line.error("text after the end of the graph")

    # -- graphs -----------------------------------------------------------------------
    def graph(self, depth: int, prefix: str):
        if depth > MAX_GRAPH_DEPTH:
            raise self.last.error(f"graphs nested more than {MAX_GRAPH_DEPTH} deep")
        head = self.next_line()
        name, inputs, declared_out = self.header(head)
        env = {v.name: v for v in inputs}

        in_tree = None
        constants, nodes = [], []
        line = self.next_line()
        if line.at("ident", "args"):
            line.next()
            leaves: list = []
            in_tree = self.tree(line, env, leaves, 0)
            line.expect_end()
            if [id(v) for v in leaves] != [id(v) for v in inputs]:
                raise line.error("the args structure must list every graph input once, in order")
            line = self.next_line()
        while True:
            if line.at("ident", "return"):
                line.next()
                outputs: list = []
                out_tree = self.tree(line, env, outputs, 0)
                line.expect_end()
                break
            if line.at("punct", "}"):
                raise line.error("graph has no return statement")
            if self.is_constant(line):
                constants.append(self.constant(line, env, prefix))
            else:
                nodes.append(self.node(line, env, depth, prefix, len(nodes)))
            line = self.next_line()
        close = self.next_line()
        close.expect("punct", "}")
        close.expect_end()

        types = [v.type for v in outputs]
        if types != declared_out:
            raise head.error(
                "the header declares results (" + ", ".join(map(str, declared_out)) + ") but "
                "the graph returns (" + ", ".join(map(str, types)) + ")"
            )
        graph = self.ir.Graph(
            name, inputs, constants, nodes, outputs,
            in_tree if in_tree is not None else default_in_tree(len(inputs)), out_tree,
        )
        try:
            verifier.verify(graph, depth, nested=False)  # subgraphs: verified as read
        except IRError as e:
            raise head.error(str(e)) from None
        return graph

    def header(self, head: _Line):
        """``graph NAME(%x: T, ...) -> (T, ...) {``: the name, input Values, result types."""
        head.expect("ident", "graph")
        name = head.expect("ident")
        env: dict = {}
        inputs = []
        head.expect("punct", "(")
        if not head.accept("punct", ")"):
            while True:
                vname = self.define_name(head, env)
                head.expect("punct", ":")
                env[vname] = self.ir.Value(self.type(head), name=vname)
                inputs.append(env[vname])
                if head.accept("punct", ")"):
                    break
                head.expect("punct", ",")
        head.expect("arrow")
        head.expect("punct", "(")
        declared_out = []
        if not head.accept("punct", ")"):
            while True:
                declared_out.append(self.type(head))
                if head.accept("punct", ")"):
                    break
                head.expect("punct", ",")
        head.expect("punct", "{")
        head.expect_end()
        return name, inputs, declared_out

    def define_name(self, line: _Line, env) -> str:
        tok = line.expect("pct")[1:]
        if len(tok) > MAX_NAME_CHARS:
            raise line.error(f"value name longer than {MAX_NAME_CHARS} characters")
        if tok in env:
            raise line.error(f"value %{tok} is defined twice")
        return tok

    def use(self, line: _Line, env):
        name = line.expect("pct")[1:]
        v = env.get(name)
        if v is None:
            raise line.error(f"value %{name} is not defined (before this line)")
        return v

    def type(self, line: _Line) -> TensorType:
        dtype = line.expect("ident")
        if dtype == "key" and line.accept("punct", "<"):  # a key type: key<threefry2x32>
            dtype = f"key<{line.expect('ident')}>"
            line.expect("punct", ">")
        try:
            dtype_from_name(dtype)
        except IRError as e:
            raise line.error(str(e)) from None
        line.expect("punct", "[")
        dims = []
        if not line.accept("punct", "]"):
            while True:
                d = line.expect("num")
                if not re.fullmatch(r"\d+", d) or len(d) > _MAX_DIGITS:
                    raise line.error(f"dimension {d} is not a non-negative integer")
                dims.append(int(d))
                if len(dims) > MAX_RANK:
                    raise line.error(f"rank exceeds the limit of {MAX_RANK}")
                if line.accept("punct", "]"):
                    break
                line.expect("punct", ",")
        weak = line.accept("punct", "~")
        sharding = self.sharding(line) if line.accept("punct", "{") else None
        try:
            return make_type(dims, dtype, weak, sharding)
        except IRError as e:
            raise line.error(str(e)) from None

    def sharding(self, line: _Line) -> tuple:
        """After a type's ``{``: ``"axis" | none | ("a", "b", ...)`` entries, then ``}``."""
        entries = []
        if line.accept("punct", "}"):
            return ()
        while True:
            if len(entries) > MAX_RANK:
                raise line.error(f"sharding has more entries than the rank limit {MAX_RANK}")
            if line.accept("ident", "none"):
                entries.append(None)
            elif line.accept("punct", "("):
                names = [self.axis_name(line)]
                while line.accept("punct", ","):
                    names.append(self.axis_name(line))
                line.expect("punct", ")")
                if len(names) < 2:
                    raise line.error('a sharding entry of one mesh axis is written "axis", not ("axis")')
                entries.append(tuple(names))
            elif line.at("str"):
                entries.append(self.axis_name(line))
            else:
                tok = line.peek()
                got = repr(tok[1]) if tok[0] != "end" else "end of line"
                raise line.error(f'expected a sharding entry ("axis", none or ("a", "b")), got {got}')
            if line.accept("punct", "}"):
                return tuple(entries)
            line.expect("punct", ",")

    @staticmethod
    def axis_name(line: _Line) -> str:
        return json.loads(line.expect("str"))

    # -- constants ----------------------------------------------------------------------
    @staticmethod
    def is_constant(line: _Line) -> bool:
        # `%c: T = const LITERAL` (an op that happens to be called `const` takes `(`)
        j = 0
        while line.peek(j)[0] not in ("end",) and not line.at("punct", "=", j):
            j += 1
        return line.at("ident", "const", j + 1) and not line.at("punct", "(", j + 2)

    def constant(self, line: _Line, env, prefix: str):
        name = self.define_name(line, env)
        line.expect("punct", ":")
        t = self.type(line)
        if is_key(t.dtype):
            raise line.error(KEY_CONSTANT)
        line.expect("punct", "=")
        line.expect("ident", "const")
        lit = self.literal(line, 0)
        line.expect_end()
        if isinstance(lit, _Elided):
            data = self.elided(line, prefix + name, t, lit.count)
        else:
            data = _literal_array(line, lit, t)
        v = self.ir.Value(t, data=data)
        env[name] = v
        return v

    def elided(self, line: _Line, key: str, t: TensorType, count: int):
        if count != t.size:
            raise line.error(f"constant %{key} is typed {t} but elides {count} elements")
        if key not in self.constants:
            raise line.error(
                f"constant %{key} is elided in the text; pass its array as "
                f"constants={{{key!r}: array}} (see tracegraph.ir.parser.text_constants)"
            )
        try:
            data = np.asarray(self.constants[key])
        except Exception as e:  # noqa: BLE001 - foreign objects
            raise line.error(f"constant {key!r} is not an array: {e}") from None
        if data.shape != t.shape or data.dtype != t.dtype:
            raise line.error(
                f"array given for constant {key!r} is {describe_array(data)}, "
                f"the text declares {t}"
            )
        return data

    def literal(self, line: _Line, depth: int):
        """A constant literal: a nested list of scalars, or ``<N elements>``."""
        if depth > MAX_LITERAL_DEPTH:
            raise line.error(f"literal nested more than {MAX_LITERAL_DEPTH} deep")
        if line.accept("punct", "<"):
            n = line.expect("num")
            if not re.fullmatch(r"\d+", n) or len(n) > _MAX_DIGITS:
                raise line.error(f"bad element count {n}")
            line.expect("ident", "elements")
            line.expect("punct", ">")
            return _Elided(int(n))
        if line.accept("punct", "["):
            items = []
            if not line.accept("punct", "]"):
                while True:
                    item = self.literal(line, depth + 1)
                    if isinstance(item, _Elided):
                        raise line.error("'<N elements>' stands for a whole constant only")
                    items.append(item)
                    if line.accept("punct", "]"):
                        break
                    line.expect("punct", ",")
            return items
        if line.at("ident", "complex"):
            line.next()
            line.expect("punct", "(")
            re_ = self.real(line)
            line.expect("punct", ",")
            im = self.real(line)
            line.expect("punct", ")")
            return ("complex", complex(re_, im))
        if line.at("ident", "true") or line.at("ident", "false"):
            return ("bool", line.next()[1] == "true")
        return self.number(line)

    def number(self, line: _Line):
        kind, text = line.next()
        if kind == "ident" and text in ("inf", "nan"):
            return ("float", float(text))
        if kind != "num":
            raise line.error(f"expected a number, got {text!r}")
        if _INT.match(text):
            if len(text) > _MAX_DIGITS:
                raise line.error(f"integer literal of {len(text)} digits is too long")
            return ("int", int(text))
        val = float(text)
        if math.isinf(val) and "inf" not in text:
            raise line.error(f"float literal {text} is out of range")
        return ("float", val)

    def real(self, line: _Line) -> float:
        return float(self.number(line)[1])

    # -- nodes --------------------------------------------------------------------------
    def node(self, line: _Line, env, depth: int, prefix: str, index: int):
        names, types = [], []
        if not line.at("punct", "="):
            while True:
                names.append(self.define_name(line, env))
                if names[-1] in names[:-1]:
                    raise line.error(f"value %{names[-1]} is defined twice")
                line.expect("punct", ":")
                types.append(self.type(line))
                if not line.accept("punct", ","):
                    break
        line.expect("punct", "=")
        op = line.expect("ident")
        line.expect("punct", "(")
        inputs, attrs = [], {}
        if not line.accept("punct", ")"):
            while True:
                if line.at("pct"):
                    if attrs:
                        raise line.error("value operands must come before attributes")
                    inputs.append(self.use(line, env))
                else:
                    key = line.expect("ident")
                    line.expect("punct", "=")
                    if key in attrs:
                        raise line.error(f"attribute {key!r} is given twice")
                    attrs[key] = self.attr(line, 0)
                if line.accept("punct", ")"):
                    break
                line.expect("punct", ",")
        block = line.accept("punct", "{")
        line.expect_end()
        location, scope = self.comment(line)
        if block:
            head = names[0] if names else f"node{index}"
            self.subgraphs(attrs, depth, f"{prefix}{head}/")
        try:
            node = build_node(self.ir, op, inputs, attrs, types, location, scope)
        except IRError as e:
            raise line.error(str(e)) from None
        for name, v in zip(names, node.outputs):
            env[name] = v
        return node

    def subgraphs(self, attrs: dict, depth: int, prefix: str):
        while True:
            line = self.next_line()
            if line.accept("punct", "}"):
                line.expect_end()
                return
            key = line.expect("ident")
            line.expect("punct", "=")
            if key in attrs:
                raise line.error(f"attribute {key!r} is given twice")
            if line.accept("ident", "graph"):
                line.expect_end()
                attrs[key] = self.graph(depth + 1, f"{prefix}{key}/")
                continue
            line.expect("ident", "graphs")
            n = line.expect("num")
            if not re.fullmatch(r"\d+", n) or int(n) > MAX_SUBGRAPHS:
                raise line.error(f"bad subgraph count {n} (at most {MAX_SUBGRAPHS})")
            line.expect_end()
            attrs[key] = tuple(
                self.graph(depth + 1, f"{prefix}{key}/{i}/") for i in range(int(n))
            )

    def attr(self, line: _Line, depth: int):
        if depth > MAX_LITERAL_DEPTH:
            raise line.error(f"attribute nested more than {MAX_LITERAL_DEPTH} deep")
        kind, text = line.peek()
        if kind == "punct" and text == "(":
            line.next()
            items = []
            if line.accept("punct", ")"):
                return ()
            while True:
                items.append(self.attr(line, depth + 1))
                if line.accept("punct", ")"):
                    if len(items) == 1:
                        raise line.error("a one-element tuple is written '(x,)'")
                    return tuple(items)
                line.expect("punct", ",")
                if line.accept("punct", ")"):
                    return tuple(items)
        if kind == "str":
            line.next()
            return json.loads(text)
        if kind == "ident":
            line.next()
            if text in _WORDS:
                return _WORDS[text]
            if text in DTYPE_NAMES:
                return DTYPE_NAMES[text]
            raise line.error(f"unknown attribute value {text!r}")
        if kind == "num":
            _, val = self.number(line)
            if isinstance(val, int):
                try:
                    check_int_attr(val)
                except IRError as e:
                    raise line.error(str(e)) from None
            return val
        raise line.error(f"expected an attribute value, got {text or 'end of line'!r}")

    def comment(self, line: _Line):
        """``# LOCATION  SCOPE`` after a node: ``?`` for no location; either part is a JSON
        string when it has spaces or quotes."""
        if line.comment is None:
            return None, ""
        text = line.comment.strip()
        if not text:
            return None, ""
        location, rest = _comment_part(line, text)
        if location == "?" and not text.startswith('"'):
            location = None
        rest = rest.lstrip()
        if not rest:
            return location, ""
        scope, rest = _comment_part(line, rest)
        if rest.strip():
            raise line.error(f"unexpected text {rest.strip()!r} after the scope")
        return location, scope

    # -- pytree expressions -------------------------------------------------------------
    def tree(self, line: _Line, env, leaves: list, depth: int) -> TreeSpec:
        if depth > MAX_LITERAL_DEPTH:
            raise line.error(f"structure nested more than {MAX_LITERAL_DEPTH} deep")
        kind, text = line.peek()
        if kind == "pct":
            leaves.append(self.use(line, env))
            return TreeSpec.leaf()
        if kind == "ident" and text == "none" and not line.at("punct", "(", 1):
            line.next()
            return TreeSpec(NONE)
        if kind == "ident":
            line.next()
            if not text.isidentifier():
                raise line.error(f"bad custom node name {text!r}")
            line.expect("punct", "(")
            kids = self.tree_items(line, env, leaves, depth, ")")
            return TreeSpec(CUSTOM, kids, type_name=text)
        if kind == "punct" and text == "(":
            line.next()
            if line.accept("punct", ")"):
                return TreeSpec(TUPLE, [])
            kids = []
            while True:
                kids.append(self.tree(line, env, leaves, depth + 1))
                if line.accept("punct", ")"):
                    if len(kids) == 1:
                        raise line.error("a one-element tuple is written '(x,)'")
                    return TreeSpec(TUPLE, kids)
                line.expect("punct", ",")
                if line.accept("punct", ")"):
                    return TreeSpec(TUPLE, kids)
        if kind == "punct" and text == "[":
            line.next()
            return TreeSpec(LIST, self.tree_items(line, env, leaves, depth, "]"))
        if kind == "punct" and text == "{":
            line.next()
            keys, kids = [], []
            if not line.accept("punct", "}"):
                while True:
                    k_kind, k_text = line.next()
                    if k_kind == "str":
                        key = json.loads(k_text)
                    elif k_kind == "num" and _INT.match(k_text) and len(k_text) <= _MAX_DIGITS:
                        key = int(k_text)
                    else:
                        raise line.error(f"dict key must be a string or an int, got {k_text!r}")
                    if key in keys:
                        raise line.error(f"dict key {k_text} appears twice")
                    keys.append(key)
                    line.expect("punct", ":")
                    kids.append(self.tree(line, env, leaves, depth + 1))
                    if line.accept("punct", "}"):
                        break
                    line.expect("punct", ",")
            return TreeSpec(DICT, kids, keys=keys)
        raise line.error(f"expected a value structure, got {text or 'end of line'!r}")

    def tree_items(self, line, env, leaves, depth, close):
        kids = []
        if line.accept("punct", close):
            return kids
        while True:
            kids.append(self.tree(line, env, leaves, depth + 1))
            if line.accept("punct", close):
                return kids
            line.expect("punct", ",")


_WORDS = {"true": True, "false": False, "none": None, "inf": float("inf"), "nan": float("nan")}


def _comment_part(line: _Line, text: str):
    if text.startswith('"'):
        m = _STRING.match(text)
        if m is None:
            raise line.error("unterminated string in the comment")
        return json.loads(m.group()), text[m.end():]
    m = re.match(r"\S+", text)
    return m.group(), text[m.end():]


def _nest(line: _Line, lit, depth: int = 0):
    """(nesting shape, flat scalars) of a literal; refuses ragged lists."""
    if not isinstance(lit, list):
        return (), [lit]
    if not lit:
        return (0,), []
    parts = [_nest(line, x, depth + 1) for x in lit]
    shape = parts[0][0]
    if any(p[0] != shape for p in parts):
        raise line.error("ragged constant literal (rows of different lengths)")
    return (len(lit),) + shape, [s for p in parts for s in p[1]]


def _literal_array(line: _Line, lit, t: TensorType) -> np.ndarray:
    shape, flat = _nest(line, lit)
    expect = []
    for d in t.shape:  # a list literal shows the dims up to the first empty one
        expect.append(d)
        if d == 0:
            break
    if shape != tuple(expect):
        raise line.error(f"constant literal of shape {list(shape)} does not match its type {t}")
    dt = t.dtype
    kinds = {k for k, _ in flat}
    vals = [v for _, v in flat]
    if is_bool(dt):
        if kinds - {"bool"}:
            raise line.error(f"a {t} constant takes true/false")
        return np.array(vals, dtype=dt).reshape(t.shape)
    if "bool" in kinds:
        raise line.error(f"true/false in a {t} constant")
    if is_int(dt):
        if kinds - {"int"}:
            raise line.error(f"a {t} constant takes integers")
        info = np.iinfo(dt)
        for v in vals:
            if not info.min <= v <= info.max:
                raise line.error(f"{v} is out of range for {t}")
        return np.array(vals, dtype=dt).reshape(t.shape)
    if is_complex(dt):
        src = np.array([complex(v) for v in vals], dtype=np.complex128)
    else:
        if "complex" in kinds:
            raise line.error(f"complex value in a {t} constant")
        src = np.array([float(v) for v in vals], dtype=np.float64)
    with np.errstate(over="ignore", invalid="ignore"):
        arr = src.astype(dt)
    back = arr.astype(src.dtype)
    if np.any(np.isinf(back) & np.isfinite(src)):
        raise line.error(f"value out of range for {t}")
    return arr.reshape(t.shape)


def parse_graph(text, ir: IRClasses, constants=None):
    """Parse the text form of a graph. ``constants`` supplies the arrays of constants the
    text elides (``<N elements>``), keyed as `text_constants` gives them."""
    if not isinstance(text, str):
        raise IRError(f"expected the text of a graph (str), got {type(text).__name__}")
    check_text_size(text)
    p = _Parser(text, ir, constants)
    try:
        graph = p.graph(0, "")
        p.finish()
    except RecursionError:  # the depth limits keep far from it; a deep caller's stack may not
        raise IRError("text nested too deeply to read") from None
    return graph
