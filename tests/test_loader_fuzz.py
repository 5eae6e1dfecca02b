"""A fuzzer of the three IR readers: `tg.parse` (text), `Graph.from_json` (JSON) and
`tg.load` (the `.npz` file).

Seeded mutations of a few good graphs (plain ops with constants of several dtypes, real
control flow, the test ops' nested subgraphs, chains of subgraphs at the nesting limit):
byte flips, truncation, swapped and replaced tokens, huge and negative shapes, dangling
references, cycles, deep nesting, bad UTF-8, forged ``.npy`` headers and compressed bombs.
Each mutant must load (and then verify) or raise `tg.IRError` — nothing else — within
1 s, and the reader's peak Python/numpy memory (tracemalloc, on a second read) must stay
within a few MiB of the input's size: no input may make a reader allocate more than it
holds (a file's constants are stored uncompressed, so the file holds them).

The same bounds hold for the checkpoint reader on sharded checkpoints (one file, or
with the shard files other processes write): mutated shard records (index ranges,
overlapping or missing shards, files, meshes, specs, tokens, shapes far beyond the data)
and damaged, dropped or swapped files read or raise `tg.checkpoint.CheckpointError`.

About 650 mutants run by default; ``-m slow`` runs more than 13,000.
"""

import io
import json
import random
import re
import struct
import time
import tracemalloc
import zipfile

import numpy as np
import pytest

import tracegraph as tg
from tracegraph.core import bind
from tracegraph.ir.parser import text_constants

from ir_helpers import nested_graph, test_ops  # noqa: F401 - test_ops is a fixture

pytestmark = pytest.mark.usefixtures("test_ops")

TIME_LIMIT_S = 1.0
MEMORY_SLACK = 8 * 2**20  # bytes a reader may use beyond 4x its input
BOMB_BYTES = 32 * 2**20  # what a compressed bomb inflates to


# -- good graphs ------------------------------------------------------------------------------
def _plain():
    big = np.linspace(-1, 1, 70, dtype=np.float32)  # elided in the text form

    def f(x, y, n):
        h = tg.clip(x + y, -1.0, None) * np.array([1.0, 2.0, 3.0], np.float32)
        k = tg.astype(n, np.float32) + np.array(3, np.int32).astype(np.float32)
        mask = tg.where(np.array([True, False, True]), h, k)
        return {"out": mask * bind("sum", big), "n": n}

    return tg.trace(f, tg.spec((2, 3)), tg.spec((3,)), tg.spec((), "i32"))


def _control_flow():
    def f(x):
        y = tg.cond(x.sum() > 0, lambda a: a * 2.0, lambda a: a - 1.0, x)
        return tg.fori_loop(0, 3, lambda i, c: c + 1.0, y)

    return tg.trace(f, tg.spec((2,)))


def _rolled_path():
    """A tg.compile path: a Python loop rolled into a scan (guards in its body, a bool
    mask constant), then the linear-algebra ops (bool attributes, lu's three outputs)."""
    def f(a):
        x = a
        while True:
            nxt = 0.5 * (x + a / x)
            if tg.max(tg.abs(nxt - x)) < 1e-3:
                break
            x = nxt
        m = tg.reshape(x, (2, 2)) + 3.0 * tg.eye(2)
        return tg.linalg.solve(m, tg.linalg.cholesky(m @ m.T))

    c = tg.compile(f)
    c(np.array([4.0, 9.0, 16.0, 25.0], np.float32))
    (g,) = c.graphs()
    return g


def _chain(depth):
    g = tg.trace(lambda x: tg.tanh(x), tg.spec((2,)))
    for _ in range(depth):
        g = tg.trace(lambda x, inner=g: bind("test.call", x, body=inner)[0], tg.spec((2,)))
    return g


def _seeds():
    """(graph, weight): the chain at the nesting limit is slow to read under tracemalloc."""
    return [(_plain(), 3), (_control_flow(), 3), (nested_graph(), 3), (_rolled_path(), 2), (_chain(64), 1)]


def _file_bytes(g, tmp_path) -> bytes:
    path = tmp_path / "seed.tg"
    tg.save(g, path)
    return path.read_bytes()


# -- mutations --------------------------------------------------------------------------------
_TOKEN = re.compile(r'%[\w.]+|"(?:[^"\\]|\\.)*"|-?\d+(?:\.\d*)?(?:[eE][-+]?\d+)?|\w+|\s+|.', re.DOTALL)
_POOL = [
    "-1", "0", "99999999999999999999999", "4294967296", "281474976710657", "1e999", "-0.0",
    "nan", "inf", '("f4", -1)', "(1,)", "()", "%0", "%zz", "%x", "%c0", "f32", "bf16", "i64",
    "bool", "graph", "graphs 3", "{", "}", "[", "]", "(", ")", ",", "=", "~", "<9 elements>",
    '"\\ud800"', '"a\\u0000b"', "none", "true", "const", "return", "args", "\u00e9", "\x00",
]
_JSON_VALUES = [
    None, True, 0, -1, 2**70, 1.5, "", "x", "0", "c0", "f32", "add", "inf", [], {}, [1],
    {"int": 1}, {"kind": "leaf"}, "AAAA", [-1], [2**62, 2**62], [2**48 + 1], [-(2**63)],
    {"dtype": "f32"}, {"tuple": [{"str": "f4"}, {"int": -1}]}, {"str": "f4"},
    {"graph": {}}, {"kind": "custom", "type": "os.system", "children": []},
]


def _mutate_text(text: str, rng: random.Random) -> str:
    r = rng.random()
    if r < 0.15:  # byte flips, decoded leniently (lone surrogates, odd characters)
        b = bytearray(text.encode("utf-8"))
        for _ in range(rng.randint(1, 4)):
            b[rng.randrange(len(b))] = rng.randrange(256)
        return b.decode("utf-8", "surrogateescape")
    if r < 0.25:
        return text[: rng.randrange(len(text))]
    lines = text.split("\n")
    if r < 0.40:  # cycles and order: a line moved, duplicated or dropped
        i, j = rng.randrange(len(lines)), rng.randrange(len(lines))
        line = lines[i]
        if rng.random() < 0.5:
            del lines[i]
        lines.insert(j, line)
        return "\n".join(lines)
    if r < 0.50:  # deep nesting: of literals and tuples, or of blocks
        i = rng.randrange(len(lines))
        n = rng.choice([65, 200, 5000])
        lines[i] = lines[i].replace("(", "(" * n, 1).replace("[", "[" * n, 1)
        return "\n".join(lines)
    tokens = _TOKEN.findall(text)
    for _ in range(rng.randint(1, 3)):
        i = rng.randrange(len(tokens))
        if rng.random() < 0.4:  # swapped tokens
            j = rng.randrange(len(tokens))
            tokens[i], tokens[j] = tokens[j], tokens[i]
        elif tokens[i].startswith("%") and rng.random() < 0.5:  # a dangling or later value
            tokens[i] = rng.choice(["%zz", "%99", "%" + "a" * 2000, rng.choice(tokens)])
        else:
            tokens[i] = rng.choice(_POOL)
    return "".join(tokens)


def _paths(obj, path=()):
    yield path
    items = obj.items() if isinstance(obj, dict) else enumerate(obj) if isinstance(obj, list) else ()
    for k, v in items:
        yield from _paths(v, (*path, k))


def _mutate_doc(doc, rng: random.Random):
    """Edits of the JSON objects: replaced, deleted or grafted fields (grafting a later
    part over an earlier one makes cycles and duplicates), ids made dangling, shapes made
    huge or negative, graphs nested past the limit."""
    doc = json.loads(json.dumps(doc))
    paths = list(_paths(doc))[1:]
    for _ in range(rng.randint(1, 3)):
        path = rng.choice(paths)
        parent = doc
        try:
            for k in path[:-1]:
                parent = parent[k]
            r = rng.random()
            if r < 0.5:
                parent[path[-1]] = rng.choice(_JSON_VALUES)
            elif r < 0.65:
                del parent[path[-1]]
            elif r < 0.85:
                src = doc
                for k in rng.choice(paths):
                    src = src[k]
                parent[path[-1]] = json.loads(json.dumps(src))
            else:  # nest this part deeply
                inner = parent[path[-1]]
                for _ in range(rng.choice([30, 70, 400])):
                    inner = rng.choice([[inner], {"tuple": [inner]}, {"graph": inner}])
                parent[path[-1]] = inner
        except (KeyError, IndexError, TypeError):
            continue  # an earlier edit removed this path
    return doc


def _mutate_json(text: str, rng: random.Random) -> bytes:
    r = rng.random()
    if r < 0.6:
        while True:
            try:
                return json.dumps(_mutate_doc(json.loads(text), rng)).encode("utf-8")
            except RecursionError:  # nested past what Python's json can write: another edit
                continue
    b = bytearray(text.encode("utf-8"))
    if r < 0.8:
        for _ in range(rng.randint(1, 4)):  # bad UTF-8 among them
            b[rng.randrange(len(b))] = rng.randrange(256)
        return bytes(b)
    if r < 0.9:
        return bytes(b[: rng.randrange(len(b))])
    tokens = _TOKEN.findall(text)
    i, j = rng.randrange(len(tokens)), rng.randrange(len(tokens))
    tokens[i], tokens[j] = tokens[j], tokens[i]
    return "".join(tokens).encode("utf-8")


def _npy_header(shape, descr: str) -> bytes:
    d = f"{{'descr': '{descr}', 'fortran_order': False, 'shape': {tuple(shape)!r}, }}"
    pad = 64 - (10 + len(d) + 1) % 64
    d = d + " " * pad + "\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(d)) + d.encode("latin1")


def _zip(members, deflate=()) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as z:
        for name, data in members.items():
            kind = zipfile.ZIP_DEFLATED if name in deflate else zipfile.ZIP_STORED
            z.writestr(zipfile.ZipInfo(name), data, compress_type=kind)
    return out.getvalue()


def _patch_directory_size(data: bytes, name: str, size: int, compressed=None) -> bytes:
    """The zip's central directory claims ``size`` uncompressed (and ``compressed``
    compressed) bytes for entry ``name``."""
    at = data.find(b"PK\x01\x02")
    while at >= 0:
        name_len = struct.unpack_from("<H", data, at + 28)[0]
        if data[at + 46: at + 46 + name_len] == name.encode():
            if compressed is not None:
                data = data[: at + 20] + struct.pack("<I", compressed) + data[at + 24:]
            return data[: at + 24] + struct.pack("<I", size) + data[at + 28:]
        at = data.find(b"PK\x01\x02", at + 4)
    return data


def _npy_split(entry: bytes):
    """(header, data) of a ``.npy`` entry (its header ends with a newline)."""
    cut = entry.find(b"\n") + 1
    return entry[:cut], entry[cut:]


def _with_deflated(members: dict, name: str, prefix: bytes, zeros: int) -> bytes:
    """The archive of ``members`` with entry ``name`` replaced by ``prefix`` and ``zeros``
    zero bytes, deflated (written in pieces: the test never holds the inflated bytes)."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as z:
        for k, v in members.items():
            if k != name:
                z.writestr(k, v)
        info = zipfile.ZipInfo(name)
        info.compress_type = zipfile.ZIP_DEFLATED
        piece = bytes(2**20)
        with z.open(info, "w") as f:
            f.write(prefix)
            for _ in range(zeros // len(piece)):
                f.write(piece)
    return out.getvalue()


def _bombs(data: bytes) -> list:
    """Compressed bombs made from a seed file: an entry inflating to `BOMB_BYTES`, with
    an honest or a lying zip directory, a header that matches the graph or claims the
    whole payload; for a constant and for the JSON document."""
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        members = {i.filename: z.read(i) for i in z.infolist()}
    const = max(k for k in members if k.startswith("const_"))
    header, _ = _npy_split(members[const])
    honest = _with_deflated(members, const, header, BOMB_BYTES)
    claims_all = _with_deflated(members, const, _npy_header((BOMB_BYTES // 4,), "<f4"), BOMB_BYTES)
    _, text = _npy_split(members["__graph__.json.npy"])
    spaces = _npy_header((len(text) + BOMB_BYTES,), "|u1") + text + b" " * BOMB_BYTES
    json_bomb = _zip({**members, "__graph__.json.npy": spaces}, deflate={"__graph__.json.npy"})
    return [
        honest,
        # the directory lies: it claims the declared size, the stream holds far more
        _patch_directory_size(honest, const, len(members[const])),
        claims_all,
        json_bomb,
        _patch_directory_size(json_bomb, "__graph__.json.npy", len(members["__graph__.json.npy"])),
    ]


def _mutate_file(data: bytes, rng: random.Random, doc_entry: str = "__graph__.json.npy") -> bytes:
    r = rng.random()
    if r < 0.3:
        b = bytearray(data)
        for _ in range(rng.randint(1, 5)):
            b[rng.randrange(len(b))] = rng.randrange(256)
        return bytes(b)
    if r < 0.45:
        return data[: rng.randrange(len(data))]
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        members = {i.filename: z.read(i) for i in z.infolist()}
    names = sorted(members)
    name = rng.choice(names)
    r = rng.random()
    if r < 0.35:  # forged .npy header: huge, negative, wrong dtype, object, Fortran order
        shape = rng.choice([(2**40,), (-1,), (2**31, 2**31), (3,), (), (1, 2, 3)])
        descr = rng.choice(["<f4", "|u1", "<f8", ">f4", "|O", "<u2", "|b1"])
        members[name] = _npy_header(shape, descr) + _npy_split(members[name])[1]
    elif r < 0.55:  # the document mutated as JSON
        if doc_entry not in members:
            return data
        _, doc = _npy_split(members[doc_entry])
        text = _mutate_json(doc.decode("utf-8", "replace"), rng)
        members[doc_entry] = _npy_header((len(text),), "|u1") + text
    elif r < 0.7:  # missing, extra or duplicated entries
        if rng.random() < 0.5:
            del members[name]
        else:
            members[name.replace(".npy", "") + rng.choice(["", "x.npy", ".npy"])] = members[name]
    elif r < 0.85:  # trailing data inside an entry
        members[name] += bytes(rng.randrange(1, 5000))
    elif r < 0.93:  # deflated entries, the directory claiming other sizes
        out = _zip(members, deflate=set(names))
        return _patch_directory_size(out, name, rng.choice([0, 1, 2**31, len(members[name]) + 1]))
    else:  # a stored entry the directory claims is huge, both sizes agreeing
        size = rng.choice([2**31, 2**32 - 1, len(members[name]) + 64])
        return _patch_directory_size(_zip(members), name, size, compressed=size)
    return _zip(members, deflate={n for n in members if rng.random() < 0.3})


# -- the harness ------------------------------------------------------------------------------
class _Case:
    def __init__(self, g, tmp_path):
        self.graph = g
        self.text = str(g)
        self.constants = text_constants(g)
        self.json = g.to_json()
        self.file = _file_bytes(g, tmp_path)


def _check(read, size: int):
    """``read()`` loads (then the graph verifies) or raises tg.IRError, within the time
    bound, and, read again under tracemalloc (which slows Python down several times),
    within the memory bound; returns the graph or None."""
    t0 = time.thread_time()  # CPU time of this thread: other processes' load does not count
    g = _read_or_none(read)
    elapsed = time.thread_time() - t0
    assert elapsed < TIME_LIMIT_S, f"took {elapsed:.2f} s"
    tracemalloc.start()
    try:
        _read_or_none(read)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 4 * size + MEMORY_SLACK, f"peak {peak} bytes for an input of {size}"
    if g is not None:
        g.verify()
    return g


def _read_or_none(read):
    try:
        return read()
    except tg.IRError:
        return None


def _fuzz(n: int, seed: int, tmp_path):
    rng = random.Random(seed)
    seeds = _seeds()
    cases = [_Case(g, tmp_path) for g, _ in seeds]
    weights = [w for _, w in seeds]
    path = tmp_path / "mutant.tg"
    for i in range(n):
        (case,) = rng.choices(cases, weights)
        fmt = i % 3
        if fmt == 0:
            text = _mutate_text(case.text, rng)
            _check(lambda text=text, c=case.constants: tg.parse(text, constants=c), len(text))
        elif fmt == 1:
            raw = _mutate_json(case.json, rng)
            _check(lambda raw=raw: tg.Graph.from_json(raw), len(raw))
        else:
            data = _mutate_file(case.file, rng)
            path.write_bytes(data)
            _check(lambda: tg.load(path), len(data))


def test_fuzz_readers(tmp_path):
    _fuzz(510, seed=0, tmp_path=tmp_path)


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(1, 6))
def test_fuzz_readers_long(seed, tmp_path):
    _fuzz(2100, seed=seed, tmp_path=tmp_path)


def test_compressed_bombs_are_refused_before_inflating(tmp_path):
    path = tmp_path / "bomb.tg"
    for g in (_plain(), nested_graph()):
        for data in _bombs(_file_bytes(g, tmp_path)):
            assert len(data) < BOMB_BYTES // 100  # small files ...
            path.write_bytes(data)
            assert _check(lambda: tg.load(path), len(data)) is None  # ... refused in a few MiB


def test_seeds_load_in_every_format(tmp_path):
    for g, _ in _seeds():
        case = _Case(g, tmp_path)
        (tmp_path / "g.tg").write_bytes(case.file)
        for back in (tg.parse(case.text, constants=case.constants),
                     tg.Graph.from_json(case.json), tg.load(tmp_path / "g.tg")):
            assert str(back) == case.text
    too_deep = _chain(65)
    with pytest.raises(tg.IRError, match="nested more than 64 deep"):
        tg.parse(str(too_deep))
    with pytest.raises(tg.IRError, match="nested more than 64 deep"):
        tg.Graph.from_json(too_deep.to_json())


# -- sharded checkpoints ----------------------------------------------------------------------
# The checkpoint reader (`tg.checkpoint.info` / `load`, to the host and placed on a mesh) on
# seeded mutations of sharded checkpoints, in one file and with the shard files that
# other processes write: the new fields (index ranges made out of bounds, reversed,
# overlapping or missing shards, shards listed twice, other files, meshes and specs,
# tokens and process lists, global shapes far beyond the data) and the files themselves
# (as above, and shard files dropped, truncated or swapped). Each mutant must read or raise
# `CheckpointError` naming the checkpoint, within the same time and memory bounds.
import jax
from jax.sharding import AxisType

from sharded_checkpoints import forge, side_path
from tracegraph.checkpoint import CheckpointError

_CK_ARRAYS = {"w": np.arange(48, dtype=np.float32).reshape(8, 6), "v": np.arange(10, dtype=np.int32),
              "h": np.linspace(0, 1, 5)}
_CK_SPLITS = {"w": (4, 2), "v": (5,)}
_CK_POOL = [-1, 0, 1, 2, 3, 5, 7, 8, 9, 2**31, 2**40, 2**62, True, None, "0", 1.5, [], [0, 1]]


def _ck_seed(tmp_path, processes: int) -> dict:
    """{file name: bytes} of a forged sharded checkpoint (and its shard files)."""
    folder = tmp_path / f"seed{processes}"
    folder.mkdir(exist_ok=True)
    forge(folder / "c.ckpt", _CK_ARRAYS, _CK_SPLITS, processes=processes)
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def _ck_doc(data: bytes) -> dict:
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        return json.loads(_npy_split(z.read("__checkpoint__.json.npy"))[1])


def _ck_with_doc(data: bytes, doc) -> bytes:
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        members = {i.filename: z.read(i) for i in z.infolist()}
    text = json.dumps(doc).encode()
    members["__checkpoint__.json.npy"] = _npy_header((len(text),), "|u1") + text
    return _zip(members)


def _mutate_shard_fields(doc: dict, rng: random.Random) -> dict:
    """One to three edits of the fields that describe shards."""
    doc = json.loads(json.dumps(doc))
    for _ in range(rng.randint(1, 3)):
        leaf = rng.choice([x for x in doc["leaves"] if x.get("sharding")] or doc["leaves"])
        rec = leaf.get("sharding") or {}
        shards = rec.get("shards") if isinstance(rec.get("shards"), list) else []
        s = rng.choice(shards) if shards else {}
        r = rng.random()
        try:
            if r < 0.3 and s.get("index"):  # an index bound replaced, or a range reversed
                rng_ = rng.choice(s["index"])
                if rng.random() < 0.3:
                    rng_.reverse()
                else:
                    rng_[rng.randrange(2)] = rng.choice(_CK_POOL)
            elif r < 0.4:  # a shard twice (overlap) or dropped (gap)
                if rng.random() < 0.5:
                    shards.append(json.loads(json.dumps(s)))
                elif shards:
                    shards.pop(rng.randrange(len(shards)))
            elif r < 0.5:  # another file
                s["file"] = rng.choice([0, 1, 2, 3, -1, 99, None, "1"])
            elif r < 0.6:  # the global shape far beyond the data, the shards following it
                n = rng.choice([2**31, 2**40, 2**62])
                old, leaf["shape"][0] = leaf["shape"][0], n
                for sh in shards:  # the last shards along dimension 0 now end at n
                    if sh["index"][0][1] == old:
                        sh["index"][0][1] = n
            elif r < 0.7:  # the mesh or the spec
                key = rng.choice(["mesh", "spec"])
                rec[key] = rng.choice([None, [], {"axes": ["m0"], "shape": [2**40]}, ["m9"],
                                       ["m0", "m0"], {"axes": ["m0", "m1"], "shape": [1, 1]},
                                       [["m0", "m1"]], 3])
            elif r < 0.8:  # the shard files' token or processes
                doc["shard_files"] = rng.choice([
                    None, {"token": "../../x", "processes": [1]},
                    {"token": "0123456789abcdef", "processes": rng.choice([[1], [1, 2], [2, 1], [], [0], [5]])},
                    {"token": "fedcba9876543210", "processes": [1, 2]}])
            elif r < 0.9:  # the record removed, or the version changed
                if rng.random() < 0.5:
                    leaf["sharding"] = rng.choice([None, {}, []])
                else:
                    doc["version"] = rng.choice([1, 3])
            else:  # a whole record moved to another leaf (other shapes and dtypes)
                other = rng.choice(doc["leaves"])
                other["sharding"], leaf["sharding"] = leaf.get("sharding"), other.get("sharding")
        except (TypeError, AttributeError, IndexError, KeyError):
            continue  # an earlier edit changed this part's type
    return doc


def _ck_mutant(files: dict, rng: random.Random) -> dict:
    files = dict(files)
    manifest = "c.ckpt"
    sides = [n for n in files if n != manifest]
    r = rng.random()
    if r < 0.45:
        files[manifest] = _ck_with_doc(files[manifest], _mutate_shard_fields(_ck_doc(files[manifest]), rng))
    elif r < 0.8:  # the bytes of the checkpoint file or of a shard file
        name = rng.choice([manifest] + sides)
        doc_entry = "__checkpoint__.json.npy" if name == manifest else "__shards__.json.npy"
        files[name] = _mutate_file(files[name], rng, doc_entry)
    elif sides:  # a shard file dropped, truncated, or another process's in its place
        name = rng.choice(sides)
        k = rng.random()
        if k < 0.4:
            del files[name]
        elif k < 0.7:
            files[name] = files[name][: rng.randrange(len(files[name]))]
        else:
            files[name] = files[rng.choice(sides)] if len(sides) > 1 else files[manifest]
    else:
        files[manifest] = files[manifest][: rng.randrange(len(files[manifest]))]
    return files


_CK_MESH = jax.make_mesh((1, 1), ("m0", "m1"), axis_types=(AxisType.Auto,) * 2)


def _ck_read(path):
    """info, load to the host, load placed on a mesh: results (shapes checked against
    info), or None where the reader raised CheckpointError."""
    try:
        inf = tg.checkpoint.info(path)
    except CheckpointError as e:
        assert str(path) in str(e), str(e)
        return None
    want = {name: (shape, dtype) for name, shape, dtype in inf.leaves}
    for kwargs in ({}, {"shardings": _CK_MESH}):
        try:
            out = tg.checkpoint.load(path, **kwargs)
        except CheckpointError as e:
            assert str(path) in str(e), str(e)
            continue
        for name, leaf in out.items():
            assert (tuple(np.shape(leaf)), np.dtype(leaf.dtype).name) == want[name], (name, leaf)
    return inf


def _ck_check(path, size: int):
    t0 = time.thread_time()
    _ck_read(path)
    elapsed = time.thread_time() - t0
    assert elapsed < TIME_LIMIT_S, f"took {elapsed:.2f} s"
    tracemalloc.start()
    try:
        _ck_read(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 4 * size + MEMORY_SLACK, f"peak {peak} bytes for files of {size}"


def _fuzz_checkpoints(n: int, seed: int, tmp_path):
    rng = random.Random(seed)
    seeds = [_ck_seed(tmp_path, 1), _ck_seed(tmp_path, 3)]
    assert len(seeds[1]) == 3  # the checkpoint and the shard files of processes 1 and 2
    folder = tmp_path / "mutant"
    for i in range(n):
        files = _ck_mutant(rng.choice(seeds), rng)
        if folder.exists():
            for p in folder.iterdir():
                p.unlink()
        folder.mkdir(exist_ok=True)
        for name, data in files.items():
            (folder / name).write_bytes(data)
        try:
            _ck_check(folder / "c.ckpt", sum(len(d) for d in files.values()))
        except AssertionError as e:
            raise AssertionError(f"mutant {i} (seed {seed}): {e}") from e


def test_fuzz_sharded_checkpoints(tmp_path):
    _fuzz_checkpoints(150, seed=0, tmp_path=tmp_path)


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(1, 4))
def test_fuzz_sharded_checkpoints_long(seed, tmp_path):
    _fuzz_checkpoints(1000, seed=seed, tmp_path=tmp_path)


def test_sharded_checkpoint_seeds_read(tmp_path):
    for processes in (1, 3):
        folder = tmp_path / f"s{processes}"
        folder.mkdir()
        forge(folder / "c.ckpt", _CK_ARRAYS, _CK_SPLITS, processes=processes)
        assert processes == 1 or (folder / side_path("c.ckpt", "0123456789abcdef", 2)).exists()
        out = tg.checkpoint.load(folder / "c.ckpt", shardings=_CK_MESH)
        for name, arr in _CK_ARRAYS.items():
            np.testing.assert_array_equal(np.asarray(out[name]), arr)
