"""CPU kernels of the packed widely-linear layer (C, AVX-512 VNNI / AVX2 / scalar / table lookup).

The kernels read the golden model's packed codes exactly as :func:`fairyhw.model.pack.pack_codes` writes them,
``uint8 (M, n, ceil(m/4))`` for the ``M`` code matrices of a layer (Fairy2i stream order ``U_0, W_0, U_1,
W_1, ...``), and int8 activations ``p, q`` of shape ``(B, m)``. The result is int32 ``(B, M, n, 4)``:
``Σap, Σaq, Σbp, Σbq`` per row, the matrices flagged ``conj`` on ``conj(x)``, equal to
:func:`fairyhw.model.golden.integer_sums` bit for bit.

Variants: ``avx512`` (VNNI ``vpdpbusd`` on bit planes masked out of the codes), ``avx2`` (``vpmaddubsw``), ``scalar``
(portable C, the reference), ``lut`` (per-token tables of the 256 pre-added sums of each group of four
inputs in memory, indexed by a whole code byte) and ``lut512`` (T-MAC / FairyFuse style: per-token
16-entry tables of pre-added activations in registers, looked up by ``vpermb``, no products; AVX-512
VBMI). ``auto`` picks the fastest direct one. ``lut512`` reads the codes in its own order, re-laid once by
:func:`lut_layout` (as T-MAC lays out its weights offline: the same bytes, permuted, each code byte's h
and x bits gathered into nibbles); given golden packed codes it re-lays them on every call.

Build: ``kernels/cpu.c`` is compiled on first use with the C compiler (``$CC``, else ``cc``) into
``$FAIRYHW_CACHE`` (default ``~/.cache/fairyhw``), under a name holding the hash of the source, compiler
and flags, so an edit or another compiler builds a new library and a stale one is never loaded. The build
writes a temporary file and renames it, so concurrent first uses are safe. ``python -m fairyhw.kernels.cpu.kernel``
builds it ahead of time and prints the path and the CPU's variants.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import subprocess
import sys
import tempfile

import numpy as np
import torch

from ... import FairyError, cache_dir

__all__ = ["VARIANTS", "LutCodes", "library_path", "load", "lut_layout", "variants", "fairy_sums",
           "read_bytes", "threads"]

VARIANTS = {"scalar": 0, "avx2": 1, "avx512": 2, "lut": 3, "lut512": 4}
_SRC = os.path.join(os.path.dirname(__file__), "cpu.c")
_FLAGS = ["-O3", "-std=gnu11", "-fPIC", "-shared", "-fvisibility=hidden", "-fopenmp"]
_lib = None


def _compiler() -> tuple[str, str]:
    cc = os.environ.get("CC", "cc")
    try:
        r = subprocess.run([cc, "--version"], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise FairyError(f"the CPU kernel needs a C compiler: '{cc}' cannot run ({e}); "
                         f"install gcc or set CC") from None
    if r.returncode:
        raise FairyError(f"the CPU kernel needs a C compiler: '{cc} --version' failed")
    return cc, r.stdout.splitlines()[0] if r.stdout else cc


def library_path() -> str:
    """Where the compiled kernel library for this source, compiler and flags lives (built or not)."""
    cc, ident = _compiler()
    with open(_SRC, "rb") as f:
        src = f.read()
    h = hashlib.sha256(src + ident.encode() + " ".join(_FLAGS).encode()).hexdigest()[:16]
    return os.path.join(cache_dir(), f"fairyhw-cpu-{h}.so")


def _build(path: str) -> None:
    cc, _ = _compiler()
    d = os.path.dirname(path)
    try:
        os.makedirs(d, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".build-", suffix=".so", dir=d)
        os.close(fd)
    except OSError as e:
        raise FairyError(f"cannot write the CPU kernel build to {d} ({e.strerror}); "
                         f"set FAIRYHW_CACHE to a writable folder") from None
    try:
        r = subprocess.run([cc, *_FLAGS, _SRC, "-o", tmp], capture_output=True, text=True)
        if r.returncode:
            msg = (r.stderr.strip().splitlines() or ["(no message)"])[-1]
            raise FairyError(f"building the CPU kernel with {cc} failed: {msg}")
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def load():
    """The kernel library (ctypes), compiled first if this source has not been built here yet."""
    global _lib
    if _lib is not None:
        return _lib
    path = library_path()
    if not os.path.exists(path):
        _build(path)
    lib = ctypes.CDLL(path)
    i64, i32, vp = ctypes.c_int64, ctypes.c_int, ctypes.c_void_p
    lib.fairy_sums_cpu.argtypes = [vp, i32, i64, i64, vp, vp, i32, vp, vp, i32, i32]
    lib.fairy_sums_cpu.restype = i32
    lib.fairy_sums_lut512.argtypes = [vp, i32, i64, i64, vp, vp, i32, vp, vp, i32]
    lib.fairy_sums_lut512.restype = i32
    lib.fairy_lut_layout.argtypes = [vp, i64, i64, vp, i32]
    lib.fairy_lut_layout.restype = None
    lib.fairy_read.argtypes = [vp, i64, i32]
    lib.fairy_read.restype = ctypes.c_uint64
    lib.fairy_cpu_features.restype = i32
    lib.fairy_cpu_threads.restype = i32
    _lib = lib
    return lib


_variants = None


def variants() -> list[str]:
    """The variants this CPU runs: the direct ones fastest first (``auto`` takes the first), then
    ``lut512`` (its own code order) and the portable ``scalar`` and ``lut``."""
    return list(_have())


def _have() -> tuple[str, ...]:
    """:func:`variants`, cached as a tuple (each :func:`fairy_sums` call checks its variant against it)."""
    global _variants
    if _variants is None:
        f = load().fairy_cpu_features()
        simd = (("avx512", 2), ("avx2", 1), ("lut512", 4))
        _variants = tuple(v for v, bit in simd if f & bit) + ("scalar", "lut")
    return _variants


def threads() -> int:
    """OpenMP threads the kernels use by default (``OMP_NUM_THREADS``, else every core)."""
    return load().fairy_cpu_threads()


_TORCH = {np.uint8: torch.uint8, np.int8: torch.int8}
_default_conj: dict[int, tuple[np.ndarray, int]] = {}    # matrices -> (flags, their address)


def _arr(x, dtype, name):
    """x as a C-contiguous CPU array of ``dtype``: a torch tensor stays one (its pointer is cheap to take)."""
    if isinstance(x, torch.Tensor):
        if x.dtype != _TORCH[dtype]:
            raise FairyError(f"{name} must be {np.dtype(dtype).name}, not {str(x.dtype).split('.')[-1]}")
        if x.requires_grad:
            x = x.detach()
        if not x.is_cpu:
            x = x.cpu()
        return x.contiguous()
    x = np.asarray(x)
    if x.dtype != dtype:
        raise FairyError(f"{name} must be {np.dtype(dtype).name}, not {x.dtype}")
    return np.ascontiguousarray(x)


def _ptr(x) -> int:
    return x.data_ptr() if isinstance(x, torch.Tensor) else x.ctypes.data


#: Most OpenMP threads a kernel call may ask for.
MAX_THREADS = 1024


def _check_threads(threads) -> int:
    if isinstance(threads, bool) or not isinstance(threads, (int, np.integer)):
        raise FairyError(f"threads must be an integer from 0 (every core) to {MAX_THREADS}, "
                         f"not {threads!r}")
    if not 0 <= threads <= MAX_THREADS:
        raise FairyError(f"threads must be an integer from 0 (every core) to {MAX_THREADS}, not {threads}")
    return int(threads)


def _lut_shape(mats: int, n: int, row_bytes: int) -> tuple:
    return (-(-(mats * n) // 16), -(-row_bytes // 16), 4, 16, 4)


class LutCodes:
    """Packed codes ``(M, n, row_bytes)`` re-laid for the ``lut512`` kernel (:func:`lut_layout`): ``data``
    is uint8 ``(ceil(M*n/16), ceil(row_bytes/16), 4, 16, 4)``: blocks of 16 rows (all matrices' rows
    stacked), 16-byte column chunks, then 4 vectors of 16 rows x 4 code bytes, each byte's h bits in its
    low nibble and x bits in its high nibble (zero past the last row and the row's end).

    The shape and the data are checked on construction (the kernel trusts them)."""

    __slots__ = ("data", "shape")

    def __init__(self, data: torch.Tensor, shape: tuple[int, int, int]):
        if not (isinstance(shape, tuple) and len(shape) == 3 and
                all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in shape)):
            raise FairyError(f"LutCodes shape must be three positive integers (M, n, row_bytes), "
                             f"not {shape!r}")
        want = _lut_shape(*shape)
        if not (isinstance(data, torch.Tensor) and data.dtype == torch.uint8 and data.is_cpu and
                data.is_contiguous() and tuple(data.shape) == want):
            got = (f"{str(data.dtype).split('.')[-1]} {tuple(data.shape)}" if isinstance(data, torch.Tensor)
                   else type(data).__name__)
            raise FairyError(f"LutCodes data for shape {shape} must be a contiguous uint8 CPU tensor "
                             f"{want}, not {got}")
        self.data, self.shape = data, shape


def lut_layout(packed, threads: int = 0) -> LutCodes:
    """Re-lay golden packed codes ``(M, n, ceil(m/4))`` for the ``lut512`` kernel, once (a permutation of
    the same bits: 2 a code, rows padded to 16 and row bytes to a multiple of 16)."""
    lib = load()
    threads = _check_threads(threads)
    packed = _arr(packed, np.uint8, "packed codes")
    if packed.ndim != 3 or 0 in packed.shape:
        raise FairyError(f"packed codes must be (M, n, ceil(m/4)), not {tuple(packed.shape)}")
    mats, n, rb = packed.shape
    rows = mats * n
    data = torch.empty(_lut_shape(mats, n, rb), dtype=torch.uint8)
    lib.fairy_lut_layout(_ptr(packed), rows, rb, data.data_ptr(), int(threads))
    return LutCodes(data, (mats, n, rb))


def fairy_sums(packed, p, q, *, conj=None, variant: str = "auto", threads: int = 0,
               out: torch.Tensor | None = None) -> torch.Tensor:
    """Integer sums ``(B, M, n, 4)`` int32 of packed codes ``(M, n, ceil(m/4))`` with int8 ``p, q (B, m)``.

    ``packed`` may be :class:`LutCodes` (from :func:`lut_layout`), which the ``lut512`` kernel reads (the
    one ``auto`` picks for them). ``conj``: one flag per matrix (default: the odd ones, the W matrices of
    the Fairy2i order). ``threads``: 0 for the default (see :func:`threads`). ``out``: a contiguous int32
    CPU tensor ``(B, M, n, 4)`` to write the sums into and return, as engines reuse their buffers (a fresh
    one of 0.4-1 MiB costs 0.5-5 us more a call here: under 1% of a whole-model pass).
    """
    lib = load()
    threads = _check_threads(threads)
    laid = packed if isinstance(packed, LutCodes) else None
    if laid is not None:
        if variant not in ("auto", "lut512"):
            raise FairyError(f"codes re-laid by lut_layout are read by the lut512 kernel only, not {variant!r}")
        variant = "lut512"
        mats, n, row_bytes = laid.shape
    else:
        packed = _arr(packed, np.uint8, "packed codes")
        if packed.ndim != 3:
            raise FairyError(f"packed codes must be (M, n, ceil(m/4)); got {tuple(packed.shape)}")
        mats, n, row_bytes = packed.shape
    p = _arr(p, np.int8, "p")
    q = _arr(q, np.int8, "q")
    if p.ndim == 1:
        p, q = p[None], q[None]
    if p.ndim != 2 or p.shape != q.shape:
        raise FairyError(f"p and q must be (B, m) alike; got {tuple(p.shape)}, {tuple(q.shape)}")
    tokens, m = p.shape
    if m < 1 or row_bytes != -(-m // 4):
        raise FairyError(f"packed rows of {row_bytes} bytes do not hold {m} codes (expected {-(-m // 4)})")
    if conj is None:
        if mats not in _default_conj:
            flags = np.array([k % 2 == 1 for k in range(mats)], np.int32)
            _default_conj[mats] = (flags, flags.ctypes.data)
        flags, flags_ptr = _default_conj[mats]
    else:
        if isinstance(conj, (bool, int, str, bytes)) or not hasattr(conj, "__len__"):
            raise FairyError(f"conj must be a sequence of one flag per matrix ({mats}), not {conj!r}")
        if len(conj) != mats:
            raise FairyError(f"conj needs one flag per matrix ({mats}), got {len(conj)}")
        flags = np.asarray(conj)
        if flags.dtype.kind not in "bi" or (flags.dtype.kind == "i" and not np.isin(flags, (0, 1)).all()):
            raise FairyError(f"conj flags must be booleans or 0/1, not {list(conj)!r}")
        flags = np.ascontiguousarray(flags, dtype=np.int32)
        flags_ptr = flags.ctypes.data
    have = _have()
    if variant == "auto":
        variant = have[0]
    elif variant not in VARIANTS:
        raise FairyError(f"unknown CPU kernel variant {variant!r}; expected one of auto, "
                         + ", ".join(VARIANTS))
    if variant not in have:
        raise FairyError(f"this CPU cannot run the {variant} kernel (it has {', '.join(have)})")
    if m > (1 << 23):
        raise FairyError(f"input length {m} is beyond the kernel's int32 sums (at most 2**23)")
    if out is None:
        out = torch.empty((tokens, mats, n, 4), dtype=torch.int32)
    elif not (isinstance(out, torch.Tensor) and out.dtype == torch.int32 and out.is_cpu
              and out.shape == (tokens, mats, n, 4) and out.is_contiguous()):
        got = (f"{str(out.dtype).split('.')[-1]} {tuple(out.shape)} on {out.device.type}"
               f"{'' if out.is_contiguous() else ', not contiguous'}" if isinstance(out, torch.Tensor)
               else type(out).__name__)
        raise FairyError(f"out must be a contiguous int32 CPU tensor {(tokens, mats, n, 4)}, not {got}")
    if variant == "lut512":
        if laid is None:
            laid = lut_layout(packed, threads)
        rc = lib.fairy_sums_lut512(laid.data.data_ptr(), mats, n, m, _ptr(p), _ptr(q), tokens, flags_ptr,
                                   out.data_ptr(), threads)
    else:
        rc = lib.fairy_sums_cpu(_ptr(packed), mats, n, m, _ptr(p), _ptr(q), tokens, flags_ptr,
                                out.data_ptr(), VARIANTS[variant], int(threads))
    if rc:
        raise FairyError("the CPU kernel ran out of memory for its activation buffers")
    return out


def read_bytes(buf: np.ndarray, threads: int = 0) -> int:
    """Read every byte of ``buf`` once with all threads (a plain read, for the bandwidth baseline);
    returns the XOR of all its bytes."""
    threads = _check_threads(threads)
    buf = np.ascontiguousarray(buf).view(np.uint8).reshape(-1)
    return int(load().fairy_read(buf.ctypes.data, buf.size, threads))


def main(argv=None) -> int:
    try:
        lib_path = library_path()
        built = os.path.exists(lib_path)
        load()
        print(f"{'found' if built else 'built'} {lib_path}")
        print(f"variants on this CPU: {', '.join(variants())}; threads: {threads()}")
    except FairyError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
