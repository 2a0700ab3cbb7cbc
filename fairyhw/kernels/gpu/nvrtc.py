"""Run-time CUDA C++ kernels: compiled by NVRTC, loaded and launched through the CUDA driver, by ctypes.

No CUDA toolkit, compiler or build step is needed: NVRTC is the library that CUDA builds of torch already
install (``nvidia-cuda-nvrtc`` wheels), and the driver is ``libcuda.so.1``. A kernel is compiled once per
source, template instantiation, GPU architecture and NVRTC version; the CUBIN goes to ``$FAIRYHW_CACHE``
(default ``~/.cache/fairyhw``) under a name holding the hash of all four, written to a temporary file and
renamed, so an edit compiles afresh and concurrent first uses are safe. Launches go to torch's current
stream, so they are captured by CUDA graphs like any torch kernel.

``FAIRYHW_NVRTC`` names the NVRTC library when it is not found on its own.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import glob
import hashlib
import os
import sys
import tempfile

from ... import FairyError
from ... import cache_dir

__all__ = ["nvrtc_path", "Kernel", "kernel"]

_nvrtc = None
_cuda = None


def nvrtc_path() -> str | None:
    """The NVRTC library to use: ``$FAIRYHW_NVRTC``, the ``nvidia-*`` wheels on ``sys.path`` (the one of
    torch's CUDA major version first), then the system's."""
    env = os.environ.get("FAIRYHW_NVRTC")
    if env:
        return env
    found = []
    for base in sys.path:
        for pat in ("nvidia/cuda_nvrtc/lib/libnvrtc.so*", "nvidia/cu*/lib/libnvrtc.so*"):
            found += [f for f in glob.glob(os.path.join(base, pat)) if "builtins" not in f and ".alt." not in f]
    try:
        import torch
        major = (torch.version.cuda or "").split(".")[0]
    except ImportError:
        major = ""
    found.sort(key=lambda f: (not f.endswith(f".so.{major}"), f))
    if found:
        return found[0]
    for root in (os.environ.get("CUDA_HOME"), os.environ.get("CUDA_PATH"), "/usr/local/cuda"):
        if root:
            hits = sorted(glob.glob(os.path.join(root, "lib64", "libnvrtc.so*")))
            if hits:
                return hits[0]
    return ctypes.util.find_library("nvrtc")


def _load_nvrtc():
    global _nvrtc
    if _nvrtc is None:
        path = nvrtc_path()
        if not path:
            raise FairyError("the CUDA kernel needs NVRTC (libnvrtc), which CUDA builds of torch install; "
                             "none was found: set FAIRYHW_NVRTC to its path")
        try:
            lib = ctypes.CDLL(path)
        except OSError as e:
            raise FairyError(f"cannot load NVRTC from {path}: {e}") from None
        lib.nvrtcGetErrorString.restype = ctypes.c_char_p
        _nvrtc = lib
    return _nvrtc


def _load_cuda():
    global _cuda
    if _cuda is None:
        try:
            lib = ctypes.CDLL("libcuda.so.1")
        except OSError as e:
            raise FairyError(f"cannot load the CUDA driver (libcuda.so.1): {e}") from None
        lib.cuLaunchKernel.argtypes = [ctypes.c_void_p] + [ctypes.c_uint] * 6 + [
            ctypes.c_uint, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p]
        _cuda = lib
    return _cuda


def _check_nvrtc(rc, what):
    if rc:
        msg = _load_nvrtc().nvrtcGetErrorString(rc).decode()
        raise FairyError(f"NVRTC {what} failed: {msg}")


def _check_cuda(rc, what):
    if rc:
        s = ctypes.c_char_p()
        _load_cuda().cuGetErrorString(rc, ctypes.byref(s))
        raise FairyError(f"CUDA {what} failed: {s.value.decode() if s.value else rc}")


def nvrtc_version() -> tuple[int, int]:
    lib = _load_nvrtc()
    major, minor = ctypes.c_int(), ctypes.c_int()
    _check_nvrtc(lib.nvrtcVersion(ctypes.byref(major), ctypes.byref(minor)), "version")
    return major.value, minor.value


def compile_cubin(src: str, name_expr: str, arch: str, options=()) -> tuple[bytes, str]:
    """Compile ``src`` for ``arch`` (``"sm_90"``) and return the CUBIN and the lowered name of
    ``name_expr`` (a ``__global__`` function or template instantiation)."""
    lib = _load_nvrtc()
    prog = ctypes.c_void_p()
    _check_nvrtc(lib.nvrtcCreateProgram(ctypes.byref(prog), src.encode(), b"fairyhw.cu", 0, None, None),
                 "create")
    try:
        _check_nvrtc(lib.nvrtcAddNameExpression(prog, name_expr.encode()), "name expression")
        opts = [f"--gpu-architecture={arch}", "-std=c++17", "-default-device", *options]
        arr = (ctypes.c_char_p * len(opts))(*[o.encode() for o in opts])
        rc = lib.nvrtcCompileProgram(prog, len(opts), arr)
        if rc:
            size = ctypes.c_size_t()
            lib.nvrtcGetProgramLogSize(prog, ctypes.byref(size))
            log = ctypes.create_string_buffer(size.value)
            lib.nvrtcGetProgramLog(prog, log)
            raise FairyError(f"NVRTC could not compile {name_expr} for {arch}:\n{log.value.decode().strip()}")
        size = ctypes.c_size_t()
        _check_nvrtc(lib.nvrtcGetCUBINSize(prog, ctypes.byref(size)), "CUBIN size")
        cubin = ctypes.create_string_buffer(size.value)
        _check_nvrtc(lib.nvrtcGetCUBIN(prog, cubin), "CUBIN")
        lowered = ctypes.c_char_p()
        _check_nvrtc(lib.nvrtcGetLoweredName(prog, name_expr.encode(), ctypes.byref(lowered)), "lowered name")
        return cubin.raw, lowered.value.decode()
    finally:
        lib.nvrtcDestroyProgram(ctypes.byref(prog))


def _cached_cubin(src: str, name_expr: str, arch: str) -> tuple[bytes, str]:
    ver = nvrtc_version()
    h = hashlib.sha256(f"{src}\0{name_expr}\0{arch}\0{ver}".encode()).hexdigest()[:16]
    d = cache_dir()
    path = os.path.join(d, f"fairyhw-cuda-{h}.cubin")
    if os.path.exists(path) and os.path.exists(path + ".name"):
        with open(path, "rb") as f, open(path + ".name") as fn:
            return f.read(), fn.read().strip()
    cubin, lowered = compile_cubin(src, name_expr, arch)
    try:
        os.makedirs(d, exist_ok=True)
        for data, dest in ((lowered.encode(), path + ".name"), (cubin, path)):
            fd, tmp = tempfile.mkstemp(prefix=".build-", dir=d)
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            os.replace(tmp, dest)
    except OSError:
        pass                                 # an unwritable cache only costs a compile next time
    return cubin, lowered


class Kernel:
    """One compiled ``__global__`` function on one device; call :meth:`launch`."""

    def __init__(self, src: str, name_expr: str, device_index: int, arch_suffix: str = ""):
        import torch
        cap = torch.cuda.get_device_capability(device_index)
        self.arch = f"sm_{cap[0]}{cap[1]}{arch_suffix}"
        cubin, lowered = _cached_cubin(src, name_expr, self.arch)
        cuda = _load_cuda()
        with torch.cuda.device(device_index):
            torch.cuda.current_stream()       # make torch's (primary) context current on this thread
            torch.empty(1, device=f"cuda:{device_index}")
            self._module = ctypes.c_void_p()
            _check_cuda(cuda.cuModuleLoadData(ctypes.byref(self._module), cubin), "module load")
            self._func = ctypes.c_void_p()
            _check_cuda(cuda.cuModuleGetFunction(ctypes.byref(self._func), self._module, lowered.encode()),
                        "get function")
        self.name = name_expr

    def allow_shared(self, nbytes: int) -> None:
        """Let launches ask for ``nbytes`` of dynamic shared memory (above the default 48 KiB), once."""
        if nbytes > getattr(self, "_shared", 48 * 1024):
            _check_cuda(_load_cuda().cuFuncSetAttribute(self._func, _MAX_DYNAMIC_SHARED, ctypes.c_int(nbytes)),
                        f"shared memory of {self.name}")
            self._shared = nbytes

    def launch(self, grid, block, args, stream, shared: int = 0, pdl: bool = False,
               cooperative: bool = False) -> None:
        """``args``: ctypes values (``c_void_p`` for pointers, ``c_int`` for ints, ``c_uint64`` for 64-bit
        integers), in order. ``pdl``: programmatic dependent launch (compute capability 9.0+): the kernel
        may start while the previous one on the stream finishes, and must itself wait
        (``griddepcontrol.wait``) before reading what that one writes. ``cooperative``: every block
        resident at once, or the launch fails (for kernels whose blocks wait on each other)."""
        params = (ctypes.c_void_p * len(args))(*[ctypes.cast(ctypes.pointer(a), ctypes.c_void_p) for a in args])
        g = tuple(grid) + (1,) * (3 - len(grid))
        b = tuple(block) + (1,) * (3 - len(block))
        cuda = _load_cuda()
        ids = [i for i, on in ((_PROGRAMMATIC_STREAM_SERIALIZATION, pdl), (_COOPERATIVE, cooperative)) if on]
        if not ids:
            _check_cuda(cuda.cuLaunchKernel(self._func, *g, *b, shared, ctypes.c_void_p(stream), params, None),
                        f"launch of {self.name}")
            return
        attrs = (_LaunchAttr * len(ids))(*[_LaunchAttr(id=i, value=1) for i in ids])
        cfg = _LaunchConfig((ctypes.c_uint * 3)(*g), (ctypes.c_uint * 3)(*b), shared, ctypes.c_void_p(stream),
                            attrs, len(ids))
        _check_cuda(cuda.cuLaunchKernelEx(ctypes.byref(cfg), self._func, params, None),
                    f"launch ({'PDL' if pdl else 'cooperative'}) of {self.name}")


class _LaunchAttr(ctypes.Structure):           # CUlaunchAttribute: id, padding, a 64-byte value union
    _fields_ = [("id", ctypes.c_int), ("pad", ctypes.c_int), ("value", ctypes.c_int), ("rest", ctypes.c_char * 60)]


class _LaunchConfig(ctypes.Structure):         # CUlaunchConfig
    _fields_ = [("grid", ctypes.c_uint * 3), ("block", ctypes.c_uint * 3), ("shared", ctypes.c_uint),
                ("stream", ctypes.c_void_p), ("attrs", ctypes.POINTER(_LaunchAttr)), ("num_attrs", ctypes.c_uint)]


_COOPERATIVE = 2                               # CU_LAUNCH_ATTRIBUTE_COOPERATIVE
_PROGRAMMATIC_STREAM_SERIALIZATION = 6         # CU_LAUNCH_ATTRIBUTE_PROGRAMMATIC_STREAM_SERIALIZATION
_MAX_DYNAMIC_SHARED = 8                        # CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES


_kernels: dict = {}


def kernel(src_path: str, name_expr: str, device_index: int, arch_suffix: str = "",
           prelude: str = "") -> Kernel:
    """The compiled kernel ``name_expr`` of the source file ``src_path`` on a device, built once.
    ``arch_suffix``: ``"a"`` builds for the architecture-specific target (``sm_90a``: wgmma).
    ``prelude``: text put before the file's (the launcher's constants as ``#define`` lines)."""
    key = (src_path, name_expr, device_index, arch_suffix, prelude)
    k = _kernels.get(key)
    if k is None:
        k = _kernels[key] = Kernel(source(src_path, prelude), name_expr, device_index, arch_suffix)
    return k


def source(src_path: str, prelude: str = "") -> str:
    """The text that :func:`kernel` compiles: ``prelude``, then the file ``src_path``."""
    with open(src_path) as f:
        return prelude + f.read()
