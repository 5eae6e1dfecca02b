"""Devices as PyTorch names them, on JAX's devices: ``tg.device("cuda:0")``,
``tg.cuda.is_available()``, ``tg.accelerator.current_accelerator()``,
``tg.set_default_device``, and the ``device=`` of the creation functions and of
``.to(device)``.

A `device` is a name (``type``, ``index``): ``"cpu"``, ``"cuda"`` (JAX's ``gpu``
platform; ``"gpu"`` is accepted too), ``"tpu"``, ``"mps"``. It stands for a JAX device:
`resolve` finds it (the platform's device of that index; without an index the default
device if it is on that platform, else the platform's first), and a name no JAX backend
has raises `DeviceError` naming the backends there are, where PyTorch raises that it
was not compiled with CUDA. So the usual preamble of a PyTorch program::

    device = "cuda" if tg.cuda.is_available() else "cpu"
    model = Net().to(device)
    x = tg.randn(8, 3, device=device)

runs on any machine, on the GPU where JAX has one.

Placing is JAX's own: a concrete array goes to its device with ``jax.device_put``, and
`set_default_device` sets ``jax_default_device``, which every computation then follows.
Inside traced code (`tg.jit`, `tg.compile`) a ``device=`` naming the device the program
runs on changes nothing; values are placed there by the compiled program (and across
devices by shardings, `tg.sharding`), so another device raises there rather than being
ignored.
"""

from __future__ import annotations

import threading

import jax

from ..errors import Error

# PyTorch's device types and the JAX platform each means (None: no JAX backend)
_PLATFORMS = {"cpu": "cpu", "cuda": "gpu", "gpu": "gpu", "tpu": "tpu", "mps": None, "xpu": None,
              "meta": None, "hip": "gpu"}
_TYPE_OF_PLATFORM = {"cpu": "cpu", "gpu": "cuda", "tpu": "tpu"}


class DeviceError(Error):
    """A device that no JAX backend here provides, or a placement the mode cannot make."""


class device:  # noqa: N801 - PyTorch's name
    """A device name, PyTorch's ``torch.device``: ``tg.device("cuda:1")``,
    ``tg.device("cuda", 1)``, ``tg.device("cpu")``, ``tg.device(0)`` (``cuda:0``).
    ``.type`` and ``.index`` as in PyTorch; ``jax_device`` is the JAX device it
    stands for (`DeviceError` where there is none)."""

    __slots__ = ("type", "index")

    def __init__(self, type, index=None):  # noqa: A002 - PyTorch's parameter name
        if isinstance(type, device):
            type, index = type.type, type.index if index is None else index
        elif isinstance(type, jax.Device):
            # PyTorch's CPU has no index: ``device(type='cpu')``, unless JAX has several
            many = type.platform != "cpu" or len(_platform_devices("cpu")) > 1
            type, index = _TYPE_OF_PLATFORM.get(type.platform, type.platform), _index_of(type) if many else None
        elif isinstance(type, int) and not isinstance(type, bool):
            type, index = "cuda", type
        elif isinstance(type, str):
            name, _, idx = type.partition(":")
            if idx:
                if index is not None:
                    raise ValueError(f"device {type!r}: an index in the string and index={index}")
                if not idx.isdigit():
                    raise ValueError(f"Invalid device string: {type!r}")
                index = int(idx)
            type = name.strip().lower()
        else:
            raise TypeError(f"device() takes a string, an int or a device, got {type!r}")
        if type not in _PLATFORMS:
            raise ValueError(
                f"Expected one of {', '.join(sorted(_PLATFORMS))} device type at start of "
                f"device string: {type}"
            )
        if index is not None and (not isinstance(index, int) or index < 0):
            raise ValueError(f"device index must be a non-negative int, got {index!r}")
        object.__setattr__(self, "type", "cuda" if type in ("gpu", "hip") else type)
        object.__setattr__(self, "index", index)

    def __setattr__(self, name, value):
        raise AttributeError("device is immutable")

    @property
    def jax_device(self) -> jax.Device:
        return resolve(self)

    def __eq__(self, other):
        try:
            other = device(other) if not isinstance(other, device) else other
        except (TypeError, ValueError):
            return NotImplemented
        return self.type == other.type and self.index == other.index

    def __hash__(self):
        return hash((self.type, self.index))

    def __str__(self):
        return self.type if self.index is None else f"{self.type}:{self.index}"

    def __repr__(self):
        return f"device(type={self.type!r})" if self.index is None else \
            f"device(type={self.type!r}, index={self.index})"


def _index_of(d: jax.Device) -> int:
    """The index of a JAX device among its platform's devices here."""
    try:
        return jax.devices(d.platform).index(d)
    except (RuntimeError, ValueError):
        return d.id


def _platform_devices(platform: str) -> list:
    try:
        return jax.devices(platform)
    except RuntimeError:  # no such backend here
        return []


def _backends() -> str:
    names = []
    for p in ("cpu", "gpu", "tpu"):
        if _platform_devices(p):
            names.append(p)
    return ", ".join(names)


def resolve(spec) -> jax.Device | None:
    """The JAX device ``spec`` (a `device`, a string, an int, a JAX device) stands for;
    None for None (the default). `DeviceError` for a device no backend here has."""
    if spec is None:
        return None
    if isinstance(spec, jax.Device):
        return spec
    d = spec if isinstance(spec, device) else device(spec)
    platform = _PLATFORMS[d.type]
    devices = _platform_devices(platform) if platform else []
    if not devices:
        hint = " (tg.cuda.is_available() is False)" if d.type == "cuda" else ""
        raise DeviceError(
            f"device {str(d)!r}: JAX has no {d.type} device here{hint}; its backends: "
            f"{_backends() or 'none'}"
        )
    if d.index is None:
        default = default_jax_device()
        return default if default.platform == devices[0].platform else devices[0]
    if d.index >= len(devices):
        raise DeviceError(f"device {str(d)!r}: there are {len(devices)} {d.type} device(s) here")
    return devices[d.index]


def default_jax_device() -> jax.Device:
    """The device computations run on when nothing places them: ``jax_default_device``
    where it is set, else the default backend's first device."""
    d = jax.config.jax_default_device
    if d is None:
        return jax.devices()[0]
    if isinstance(d, str):  # a platform name
        return jax.devices(d)[0]
    return d


def device_of(array) -> device:
    """The `device` an array (or the program that makes it) is on."""
    devices = getattr(array, "devices", None)
    if callable(devices):
        try:
            ds = devices()
            if len(ds) == 1:
                return device(next(iter(ds)))
        except Exception:  # noqa: BLE001 - a tracer or a deleted array: the default device
            pass
    return device(default_jax_device())


def place(array, spec):
    """``array`` on the device ``spec`` names: itself where it is there already (or
    ``spec`` is None), else a copy moved by ``jax.device_put``."""
    target = resolve(spec)
    if target is None:
        return array
    devices = getattr(array, "devices", None)
    if callable(devices) and devices() == {target}:
        return array
    return jax.device_put(array, target)


def to_arguments(args, device=None, dtype=None) -> tuple:
    """PyTorch's ``.to(...)`` arguments as ``(device, dtype)``: each positional one a
    device (a `device`, an int, a device string), a dtype, or a tensor (its device and
    dtype); the keywords given win."""
    from ..core import Tensor
    from ..ir.types import DTYPE_NAMES

    for a in args:
        if isinstance(a, Tensor):
            dtype = a.dtype if dtype is None else dtype
            device = device_of(a._data) if device is None and a._trace.free else device
        elif isinstance(a, (device_cls, int)) and not isinstance(a, bool):
            device = a
        elif isinstance(a, str) and a not in DTYPE_NAMES:
            device = a  # "cpu", "cuda:0"; a wrong name raises as tg.device does
        elif a is not None:
            dtype = a
    return device, dtype


def check_traced(spec, what: str) -> None:
    """Inside traced code: ``spec`` must name the device the program runs on (values
    are placed by the compiled program); another raises `DeviceError`."""
    target = resolve(spec)
    if target is not None and target != default_jax_device():
        raise DeviceError(
            f"{what}: device {device(target)} inside traced code, which runs on "
            f"{device(default_jax_device())}; place the inputs before the call, or spread "
            "values over devices with shardings (tg.sharding)"
        )


_DEFAULT_LOCK = threading.Lock()


def set_default_device(spec) -> None:
    """PyTorch's ``torch.set_default_device``: computations and new arrays go to that
    device from now on (JAX's ``jax_default_device``); None restores JAX's default."""
    target = None if spec is None else resolve(spec)
    with _DEFAULT_LOCK:
        if target is not None and jax.config.jax_default_device is None and target == jax.devices()[0]:
            return  # already the default: leave JAX's config (and its fast paths) alone
        jax.config.update("jax_default_device", target)


def get_default_device() -> device:
    """The `device` new arrays go to."""
    return device(default_jax_device())


# -- tg.cuda, tg.backends, tg.accelerator: what PyTorch programs ask of the machine ----------


class _Cuda:
    """``tg.cuda``: PyTorch's ``torch.cuda`` questions answered for JAX's GPUs."""

    @staticmethod
    def is_available() -> bool:
        return bool(_platform_devices("gpu"))

    @staticmethod
    def device_count() -> int:
        return len(_platform_devices("gpu"))

    @staticmethod
    def current_device() -> int:
        d = default_jax_device()
        return _index_of(d) if d.platform == "gpu" else 0

    @staticmethod
    def get_device_name(index=None) -> str:
        gpus = _platform_devices("gpu")
        if not gpus:
            raise DeviceError("tg.cuda.get_device_name: JAX has no GPU here")
        i = 0 if index is None else device(index).index or 0
        return gpus[i].device_kind

    @staticmethod
    def is_bf16_supported() -> bool:
        return bool(_platform_devices("gpu"))

    @staticmethod
    def synchronize(device=None) -> None:  # noqa: ARG004 - PyTorch's signature
        """Wait for the work dispatched so far (``jax.effects_barrier``, then every live
        array's computation)."""
        jax.effects_barrier()
        for a in jax.live_arrays():
            a.block_until_ready()

    @staticmethod
    def manual_seed(seed: int) -> None:
        from .fn_random import manual_seed

        manual_seed(seed)

    manual_seed_all = manual_seed

    @staticmethod
    def empty_cache() -> None:
        """Nothing to do: JAX frees a buffer when its last array goes."""

    @staticmethod
    def memory_allocated(device=None) -> int:
        """Bytes in use on a GPU (JAX's ``memory_stats``); 0 without one."""
        gpus = _platform_devices("gpu")
        if not gpus:
            return 0
        stats = resolve(device if device is not None else "cuda").memory_stats() or {}
        return int(stats.get("bytes_in_use", 0))


class _Flags:
    """Settable switches PyTorch programs set (``cudnn.benchmark = True``): kept, and
    read by nothing, since XLA chooses its kernels itself."""

    def __init__(self, **flags):
        self.__dict__.update(flags)

    def is_available(self) -> bool:
        return bool(_platform_devices("gpu"))


class _Mps:
    @staticmethod
    def is_available() -> bool:
        return False  # JAX has no Metal backend here

    @staticmethod
    def is_built() -> bool:
        return False


class _Matmul:
    """``tg.backends.cuda.matmul.allow_tf32``: whether float32 matmuls may run in
    TensorFloat-32 (JAX's ``jax_default_matmul_precision``)."""

    @property
    def allow_tf32(self) -> bool:
        return jax.config.jax_default_matmul_precision in (None, "tensorfloat32", "default", "bfloat16_3x")

    @allow_tf32.setter
    def allow_tf32(self, on: bool) -> None:
        jax.config.update("jax_default_matmul_precision", "tensorfloat32" if on else "highest")


class _CudaBackend:
    matmul = _Matmul()

    @staticmethod
    def is_built() -> bool:
        return bool(_platform_devices("gpu"))


class _Backends:
    """``tg.backends``: ``mps.is_available()``, ``cudnn.benchmark`` /
    ``cudnn.deterministic`` (kept, unread), ``cuda.matmul.allow_tf32``."""

    def __init__(self):
        self.mps = _Mps()
        self.cudnn = _Flags(benchmark=False, deterministic=False, enabled=True)
        self.cuda = _CudaBackend()


class _Accelerator:
    """``tg.accelerator``: PyTorch 2.6's device-neutral questions."""

    @staticmethod
    def is_available() -> bool:
        return bool(_platform_devices("gpu") or _platform_devices("tpu"))

    @staticmethod
    def current_accelerator(check_available: bool = False):  # noqa: ARG004 - PyTorch's signature
        """The accelerator's `device` (``cuda`` or ``tpu``); None on a CPU-only machine."""
        for p in ("gpu", "tpu"):
            if _platform_devices(p):
                return device(_TYPE_OF_PLATFORM[p])
        return None

    @staticmethod
    def device_count() -> int:
        return len(_platform_devices("gpu")) or len(_platform_devices("tpu"))


device_cls = device  # the class, for code whose parameter is named ``device``
cuda = _Cuda()
backends = _Backends()
accelerator = _Accelerator()

from ..errors import public_functions as _public_functions  # noqa: E402

_public_functions(globals(), exclude=("check_traced", "default_jax_device", "device_of", "place", "resolve",
                                      "to_arguments"))

__all__ = ["DeviceError", "accelerator", "backends", "check_traced", "cuda", "device", "device_of",
           "get_default_device", "place", "resolve", "set_default_device"]
