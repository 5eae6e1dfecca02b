"""The ``tracegraph`` command.

    tracegraph --help
    tracegraph version     # tracegraph, Python, JAX and device versions
    tracegraph demo        # one MLP forward pass: jitted, interpreted, define-by-run

    tracegraph dump MODULE:FUNCTION --arg f32[128,784] ... --format text|json|dot|svg|stablehlo|hlo|tg
    tracegraph show FILE   # pretty-print a saved graph (tg.save file, JSON or text form)
    tracegraph run FILE --inputs x.npz [--interpret] [--device gpu]

Each subcommand is a function ``cmd_<name>(args) -> int`` that returns the process exit
status, registered in `build_parser`. A user's mistake (a missing ``--arg``, a file that is
not there, a device the machine lacks) is one line ``tracegraph: error: ...`` on standard
error and exit status 1, never a traceback.

NOTE: 64-bit types. JAX computes in 32 bits unless ``jax_enable_x64`` is on, and so would
an ``--arg f64[3]`` or a saved graph with ``f64`` values (silently, or failing the
verifier). The command asked for those types by name, so it turns x64 on for the command
whenever one appears (`_x64_if`), as a script would with ``jax.enable_x64``.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import importlib.util
import inspect
import linecache
import os
import platform
import re
import sys
import warnings

import jax
import jaxlib
import numpy as np

import tracegraph as tg
from tracegraph.backends.interpreter import profile_leaves
from tracegraph.backends.jax_backend import jitted as _jitted
from tracegraph.backends.program import coerce_inputs


def cmd_version(args: argparse.Namespace) -> int:
    print(f"tracegraph {tg.__version__}")
    if args.verbose:
        print(f"python     {platform.python_version()} ({sys.executable})")
        print(f"jax        {jax.__version__}")
        print(f"jaxlib     {jaxlib.__version__}")
        print(f"numpy      {np.__version__}")
        print(f"devices    {', '.join(str(d) for d in jax.devices())}")
    return 0


# The demo's function is compiled from this text under the name demo.py: the IR records
# the first line outside the tracegraph package (tracegraph.errors.user_location), and a
# function defined in this module would leave only JAX's or runpy's lines to record.
DEMO_FILE = "demo.py"
DEMO_SOURCE = """\
import tracegraph as tg


def mlp(x, w1, b1, w2, b2):
    h = tg.relu(x @ w1 + b1)
    return h @ w2 + b2
"""


def _demo_function():
    """``mlp`` from `DEMO_SOURCE`, whose code objects name ``demo.py`` and its lines
    (registered with `linecache`, so tracebacks and `inspect` show the source)."""
    lines = DEMO_SOURCE.splitlines(keepends=True)
    linecache.cache[DEMO_FILE] = (len(DEMO_SOURCE), None, lines, DEMO_FILE)
    namespace: dict = {"__name__": "demo"}
    exec(compile(DEMO_SOURCE, DEMO_FILE, "exec"), namespace)
    return namespace["mlp"]


def cmd_demo(args: argparse.Namespace) -> int:
    """One MLP forward pass run three ways on the same IR, with the graphs printed."""
    device = on_device(args.device)  # a missing device: one error line, before any output
    mlp = _demo_function()
    rng = np.random.default_rng(args.seed)
    x = rng.standard_normal((args.batch, 16), dtype=np.float32)
    w1 = rng.standard_normal((16, 32), dtype=np.float32) * 0.25
    b1 = np.zeros(32, np.float32)
    w2 = rng.standard_normal((32, 4), dtype=np.float32) * 0.25
    b2 = np.zeros(4, np.float32)
    params = (x, w1, b1, w2, b2)

    print(f"== the function ({DEMO_FILE}); each IR line names the line that created it ==")
    for i, line in enumerate(DEMO_SOURCE.splitlines(), 1):
        print(f"{i:3d}  {line}".rstrip())

    with device:
        f = tg.jit(mlp)
        y_jit = np.asarray(f(*params))
        print("\n== define-then-run: tg.jit traces once to this IR, then XLA compiles it ==")
        print(f.trace(*params))

        y_int = np.asarray(f.interpret(*params))

        run = tg.eager(mlp)
        y_eager = np.asarray(run(*params))
    print("\n== define-by-run: tg.eager ran op by op and recorded this graph ==")
    print(run.last_graph)

    expected = np.maximum(x @ w1 + b1, 0) @ w2 + b2
    ok = True
    print("\n== results ==")
    for name, y in (("tg.jit", y_jit), ("interpreter", y_int), ("tg.eager", y_eager)):
        err = float(np.max(np.abs(y - expected)))
        good = np.allclose(y, expected, rtol=1e-4, atol=1e-4)
        ok &= good
        verdict = "ok" if good else "MISMATCH"
        print(f"{name:12s} shape {y.shape}  max |diff vs numpy| = {err:.2e}  {verdict}")
    return 0 if ok else 1


# -- dump / show / run -------------------------------------------------------------------

FORMATS = ("text", "json", "dot", "svg", "png", "stablehlo", "hlo", "tg")
_ARG_SPEC = re.compile(r"\s*([A-Za-z0-9]+)\s*\[([0-9,\s]*)\]\s*\Z")


class CLIError(Exception):
    """A user error: printed as ``tracegraph: error: ...`` with exit status 1."""


DEVICE_KINDS = ("cpu", "gpu", "tpu")


def select_device(kind: str | None):
    """The first JAX device of ``kind`` ('cpu', 'gpu', 'tpu'), or None for JAX's default;
    a kind this machine lacks is a `CLIError` naming the devices there are."""
    if kind is None:
        return None
    try:
        return jax.devices(kind)[0]
    except RuntimeError:
        have = sorted({d.platform for d in jax.devices()})
        raise CLIError(
            f"--device {kind}: this machine has no {kind.upper()} that JAX can use "
            f"(devices: {', '.join(have)}); for a GPU install jax[cuda12], for a TPU jax[tpu]"
        ) from None


def on_device(kind: str | None):
    """A context in which arrays and computations go to the ``kind`` device."""
    dev = select_device(kind)
    return contextlib.nullcontext() if dev is None else jax.default_device(dev)


_WIDE = frozenset(np.dtype(d) for d in ("float64", "int64", "uint64", "complex128"))


def _x64_if(dtypes):
    """``jax.enable_x64(True)`` when any of ``dtypes`` is a 64-bit type, else nothing
    (see the module's NOTE)."""
    if any(np.dtype(d) in _WIDE for d in dtypes):
        return jax.enable_x64(True)
    return contextlib.nullcontext()


def _graph_dtypes(graph):
    """Every element type a graph (and its subgraphs) mentions."""
    for v in (*graph.inputs, *graph.outputs, *graph.constants):
        yield v.type.dtype
    for node in graph.nodes:
        for v in node.outputs:
            yield v.type.dtype
        for a in node.attrs.values():
            for sub in a if isinstance(a, tuple) else (a,):
                if isinstance(sub, tg.Graph):
                    yield from _graph_dtypes(sub)


def parse_arg_spec(text: str):
    """``f32[128,784]`` -> ``tg.spec((128, 784), "f32")``; ``f32[]`` is a scalar."""
    m = _ARG_SPEC.match(text)
    if not m or m.group(1) not in tg.ir.DTYPE_NAMES:
        raise argparse.ArgumentTypeError(
            f"bad argument spec {text!r}: expected DTYPE[DIMS] such as f32[128,784] or i32[] "
            f"(dtypes: {', '.join(tg.ir.DTYPE_NAMES)})"
        )
    dims = tuple(int(d) for d in m.group(2).replace(" ", "").split(",") if d)
    return tg.spec(dims, m.group(1))


def load_function(target: str):
    """``package.module:function`` or ``path/to/file.py:function`` (dots after the colon
    reach attributes, e.g. ``model:Net.forward``)."""
    where, sep, attr = target.rpartition(":")
    if not sep or not where or not attr:
        raise CLIError(f"expected MODULE:FUNCTION or FILE.py:FUNCTION, got {target!r}")
    if where.endswith(".py") or os.sep in where:
        path = os.path.abspath(where)
        if not os.path.isfile(path):
            raise CLIError(f"no such file: {where}")
        sys.path.insert(0, os.path.dirname(path))
        name = os.path.splitext(os.path.basename(path))[0]
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    else:
        sys.path.insert(0, os.getcwd())
        try:
            module = importlib.import_module(where)
        except ImportError as e:
            raise CLIError(f"cannot import {where!r}: {e}") from None
    obj = module
    for part in attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise CLIError(f"{where} has no attribute {attr!r}") from None
    if not callable(obj):
        raise CLIError(f"{target} is not a function")
    return obj


def load_graph(path: str):
    """A graph from a `tg.save` file, a JSON file or a text-form file."""
    if not os.path.isfile(path):
        raise CLIError(f"no such file: {path}")
    with open(path, "rb") as f:
        head = f.read(4)
    if head.startswith(b"PK"):  # a zip: the .npz file of tg.save
        return tg.load(path)
    with open(path, encoding="utf-8") as f:
        text = f.read()
    if text.lstrip().startswith("{"):
        return tg.Graph.from_json(text)
    return tg.parse(text)


def _output(args, text: str) -> None:
    if args.output:
        with open(args.output, "w", encoding="utf-8") as f:
            f.write(text if text.endswith("\n") else text + "\n")
        print(f"wrote {args.output}", file=sys.stderr)
    else:
        sys.stdout.write(text if text.endswith("\n") else text + "\n")


def _write_graph(args, graph, lowered) -> None:
    """Write ``graph`` in ``args.format``; ``lowered()`` gives the jax Lowered."""
    fmt = args.format
    if fmt == "text":
        _output(args, str(graph))
    elif fmt == "json":
        _output(args, graph.to_json(indent=1))
    elif fmt == "dot":
        _output(args, graph.to_dot())
    elif fmt in ("svg", "png"):
        path = args.output or f"{graph.name}.{fmt}"
        graph.render(path, fmt)
        print(f"wrote {path}", file=sys.stderr)
    elif fmt == "stablehlo":
        _output(args, lowered().as_text())
    elif fmt == "hlo":
        _output(args, lowered().compile().as_text())
    elif fmt == "tg":
        path = args.output or f"{graph.name}.tg"
        tg.save(graph, path)
        print(f"wrote {path}", file=sys.stderr)


def _flat_specs(graph):
    return [jax.ShapeDtypeStruct(v.type.shape, v.type.dtype) for v in graph.inputs]


def cmd_dump(args: argparse.Namespace) -> int:
    """Trace MODULE:FUNCTION on abstract arguments and write its graph in one format."""
    fn = load_function(args.function)
    passes = () if args.passes in ("none", "") else (args.passes or None)
    jf = fn if isinstance(fn, tg.JitFunction) and passes is None else tg.jit(
        getattr(fn, "fn", fn), passes=passes
    )
    specs = list(args.arg or [])
    _check_arity(args.function, getattr(fn, "fn", fn), specs)
    with _x64_if(s.dtype for s in specs):
        graph = jf.trace(*specs)
        _write_graph(args, graph, lambda: jf.lower(*specs))
    return 0


def _check_arity(target: str, fn, specs) -> None:
    """A `CLIError` when ``fn`` cannot take ``len(specs)`` positional arguments (one
    ``--arg`` each), naming its parameters."""
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):  # a builtin or C function: let the trace tell
        return
    try:
        sig.bind(*specs)
    except TypeError:
        params = [p.name for p in sig.parameters.values()
                  if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
        raise CLIError(
            f"{target} takes {len(params)} positional argument(s) ({', '.join(params)}) "
            f"and got {len(specs)}: pass one --arg DTYPE[DIMS] per argument, e.g. "
            f"--arg f32[128,784]"
        ) from None


def _load_verified(path: str):
    """A saved graph, read and verified under the x64 mode its types need. Reading verifies,
    and which types a file holds is known only once it is read: a file that fails with x64
    off and reads with it on is a graph with 64-bit types."""
    try:
        with warnings.catch_warnings():  # JAX's "float64 ... will be truncated" on that try
            warnings.filterwarnings("ignore", "Explicitly requested dtype", UserWarning)
            return load_graph(path).verify()
    except tg.IRError as first:
        if jax.config.jax_enable_x64:
            raise
        try:
            with jax.enable_x64(True):
                graph = load_graph(path).verify()
        except tg.IRError:
            raise first from None
        if not any(np.dtype(d) in _WIDE for d in _graph_dtypes(graph)):
            raise first from None
        return graph


def cmd_show(args: argparse.Namespace) -> int:
    """Print a saved graph (verified) in one format."""
    graph = _load_verified(args.file)
    with _x64_if(_graph_dtypes(graph)):
        _write_graph(args, graph, lambda: _jitted(graph).lower(*_flat_specs(graph)))
    return 0


def read_inputs(graph, path: str) -> list:
    """Arrays for the graph's inputs from an ``.npz``: by input name (``x``,
    ``params.w``), or by position (``arr_0``, ``arr_1``, ... as ``np.savez`` names them)."""
    if not os.path.isfile(path):
        raise CLIError(f"no such file: {path}")
    with np.load(path, allow_pickle=False) as npz:
        arrays = dict(npz)
    names = [v.name or f"arg{i}" for i, v in enumerate(graph.inputs)]
    leaves = []
    for i, name in enumerate(names):
        for key in (name, f"arr_{i}"):
            if key in arrays:
                leaves.append(arrays.pop(key))
                break
        else:
            raise CLIError(
                f"{path} has no array for input {i} (%{name}: {graph.inputs[i].type}); "
                f"it holds {sorted(arrays) or 'nothing else'}"
            )
    if arrays:
        raise CLIError(f"{path} holds arrays the graph does not take: {sorted(arrays)}")
    return leaves


def cmd_run(args: argparse.Namespace) -> int:
    """Run a saved graph on inputs from an .npz file, compiled or interpreted."""
    graph = _load_verified(args.file)
    leaves = read_inputs(graph, args.inputs) if args.inputs else []
    if len(leaves) != len(graph.inputs):
        raise CLIError(f"graph {graph.name} takes {len(graph.inputs)} inputs; pass them with --inputs FILE.npz")
    for i, (v, a) in enumerate(zip(graph.inputs, leaves)):
        if np.dtype(a.dtype) != v.type.dtype:  # not silently: the graph's type decides
            print(f"tracegraph: note: input {i} (%{v.name or i}) is {a.dtype} in {args.inputs}; "
                  f"the graph takes {v.type}, so it is converted", file=sys.stderr)
    with on_device(args.device), _x64_if(_graph_dtypes(graph)):
        if args.interpret or args.check_nans or args.profile:
            outs = tg.Interpreter(graph, check_nans=args.check_nans).run(*leaves)
            mode = "interpreter"
        else:
            outs = list(_jitted(graph)(*coerce_inputs(graph, leaves)))
            mode = "jit"
        outs = [np.asarray(o) for o in outs]
    print(f"graph {graph.name} ({mode}): {len(outs)} output(s)")
    with np.printoptions(precision=6, threshold=20, edgeitems=3):
        for i, (o, v) in enumerate(zip(outs, graph.outputs)):
            values = "\n".join("    " + line for line in str(o).splitlines())
            print(f"  output {i}: {v.type}\n{values}")
    if args.profile:  # the run above warmed up JAX's per-op compilation
        with on_device(args.device), _x64_if(_graph_dtypes(graph)):
            print(profile_leaves(graph, leaves, warmup=0, repeat=args.repeat).table())
    if args.output:
        np.savez(args.output, **{f"out_{i}": o for i, o in enumerate(outs)})
        print(f"wrote {args.output}", file=sys.stderr)
    return 0


def cmd_bisect(args: argparse.Namespace) -> int:
    """The first node of a saved graph where compiled and op-by-op runs (or float64 and
    the graph's dtype, or the graph and its reloaded copy) differ (`tg.debug.bisect`),
    on inputs from an .npz file."""
    graph = _load_verified(args.file)
    leaves = read_inputs(graph, args.inputs) if args.inputs else []
    if len(leaves) != len(graph.inputs):
        raise CLIError(f"graph {graph.name} takes {len(graph.inputs)} inputs; pass them with --inputs FILE.npz")
    with on_device(args.device), _x64_if(_graph_dtypes(graph)):
        leaves = coerce_inputs(graph, leaves)
        report = tg.debug.bisect_flat(graph, leaves, reference=args.reference, ulps=args.ulps,
                                      via=args.via)
    print(report)
    return 3 if report.diverged else 0


def _add_graph_commands(sub) -> None:
    p = sub.add_parser(
        "dump",
        help="trace MODULE:FUNCTION on given argument types and print its graph or HLO",
        description="Trace a function on abstract arguments (one --arg per positional array "
        "argument) and write the optimized graph as text, JSON, DOT, an SVG/PNG picture, "
        "StableHLO, XLA-optimized HLO, or a tg.save file.",
        epilog="example: tracegraph dump examples/quickstart.py:mlp --arg f32[4,8] "
        "--arg f32[8,16] --arg f32[16] --arg f32[16,3] --arg f32[3] --format text",
    )
    p.add_argument("function", help="MODULE:FUNCTION or path/to/file.py:FUNCTION")
    p.add_argument("--arg", action="append", type=parse_arg_spec, metavar="DTYPE[DIMS]",
                   help="type of the next positional argument, e.g. f32[128,784] (repeat)")
    p.add_argument("--format", choices=FORMATS, default="text", help="output format (default text)")
    p.add_argument("--passes", default=None,
                   help="comma-separated passes to run (fold,simplify,cse,dce); 'none' for the "
                   "graph as traced; default: the default pipeline")
    p.add_argument("-o", "--output", help="write to this file (svg/png/tg: default NAME.svg ...)")
    p.set_defaults(func=cmd_dump)

    p = sub.add_parser(
        "show",
        help="pretty-print a saved graph (tg.save file, JSON or text)",
        description="Read a graph saved with tg.save, as JSON or in the text form, verify "
        "it and print it in the chosen format.",
    )
    p.add_argument("file", help="a tg.save file, a JSON graph or a text-form graph")
    p.add_argument("--format", choices=FORMATS, default="text", help="output format (default text)")
    p.add_argument("-o", "--output", help="write to this file instead of standard output")
    p.set_defaults(func=cmd_show)

    p = sub.add_parser(
        "run",
        help="run a saved graph on inputs from an .npz file (compiled, or --interpret)",
        description="Run a saved graph on arrays from an .npz file: named after the graph's "
        "inputs (x, params.w, ...) or positional (arr_0, arr_1, ... as np.savez names them).",
    )
    p.add_argument("file", help="a tg.save file, a JSON graph or a text-form graph")
    p.add_argument("--inputs", help="an .npz file with one array per graph input")
    p.add_argument("--interpret", action="store_true", help="run node by node in the interpreter")
    p.add_argument("--check-nans", action="store_true",
                   help="interpret, stopping at the first NaN/Inf with its node and source line")
    p.add_argument("--profile", action="store_true", help="interpret and print per-node timing")
    p.add_argument("--repeat", type=int, default=3, help="timed runs for --profile (default 3)")
    p.add_argument("--device", choices=DEVICE_KINDS, default=None,
                   help="run on this kind of device (default: JAX's default device)")
    p.add_argument("-o", "--output", help="save the outputs to this .npz (out_0, out_1, ...)")
    p.set_defaults(func=cmd_run)

    p = sub.add_parser(
        "bisect",
        help="find the first node of a saved graph where compiled and op-by-op runs differ",
        description="Run a saved graph compiled and node by node (or in float64 and its own "
        "dtype, --reference float64) on inputs from an .npz file and print the first node whose "
        "own result differs beyond the tolerance, with its op, scope and source line (exit "
        "status 3 when one does).",
    )
    p.add_argument("file", help="a tg.save file, a JSON graph or a text-form graph")
    p.add_argument("--inputs", help="an .npz file with one array per graph input")
    p.add_argument("--reference", choices=("compiled", "float64", "reloaded"), default="compiled",
                   help="what the op-by-op run is compared with (default compiled); reloaded: "
                   "the graph saved and read back")
    p.add_argument("--via", choices=("file", "json", "text"), default="file",
                   help="how --reference reloaded writes and reads the graph (default file)")
    p.add_argument("--ulps", type=float, default=None,
                   help="tolerance in ULPs (default 64 against compiled, 4 against float64, "
                   "0 against reloaded)")
    p.add_argument("--device", choices=DEVICE_KINDS, default=None,
                   help="run on this kind of device (default: JAX's default device)")
    p.set_defaults(func=cmd_bisect)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tracegraph",
        description="tracegraph: a graph-compiling JIT on JAX with an explicit, readable IR.",
    )
    parser.add_argument("--version", action="version", version=f"tracegraph {tg.__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("version", help="print tracegraph's version (-v: also JAX, devices)")
    p.add_argument(
        "-v", "--verbose", action="store_true", help="also print Python, JAX, numpy and devices"
    )
    p.set_defaults(func=cmd_version)

    p = sub.add_parser(
        "demo", help="run one MLP forward pass jitted, interpreted and define-by-run"
    )
    p.add_argument("--batch", type=int, default=8, help="batch size (default 8)")
    p.add_argument("--seed", type=int, default=0, help="seed of the random inputs (default 0)")
    p.add_argument("--device", choices=DEVICE_KINDS, default=None,
                   help="run on this kind of device (default: JAX's default device)")
    p.set_defaults(func=cmd_demo)

    _add_graph_commands(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``tracegraph`` console script; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return args.func(args)
    except (CLIError, tg.Error, OSError) as e:
        print(f"tracegraph: error: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
