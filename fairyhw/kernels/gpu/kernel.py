"""GPU kernels of the packed widely-linear layer: exact integer sums for int8 activations.

Four kernels: the bit-plane tensor-core kernel (:func:`fairy_sums_mma`, CUDA C++ in ``gpu_mma.cu``,
compiled at run time by NVRTC; the fastest), and three Triton ones kept as measured alternatives: dp4a
on bit planes (:func:`fairy_sums_dp4a`), decode to int8 + ``tl.dot`` (:func:`fairy_sums_dot`) and a
plain SIMT one (:func:`fairy_sums`). :func:`read_xor` is the benchmark's plain-read baseline.

Weights are the golden model's codes, packed 16 to an int32 along the input axis (code ``j`` of a word
at bits ``[2j+1:2j]``, the :mod:`fairyhw.model.pack` bit order): ``codes[M, n, ceil(m/16)]`` for the ``M``
matrices of a layer in stream order (``U_0, W_0, U_1, W_1, ...``). Activations are int8 ``p, q`` of length
``m`` for a batch of tokens. The result is int32 ``(B, M, n, 4)``: ``Σap, Σaq, Σbp, Σbq`` per matrix, W
matrices on ``conj(x)``, equal to :func:`fairyhw.model.golden.integer_sums` bit for bit.
"""

from __future__ import annotations

import os

import torch

__all__ = ["PersistPlan", "pack_codes_i32", "fairy_sums", "fairy_sums_dot", "launch_dot", "activation_matrix",
           "fairy_sums_dp4a", "launch_dp4a", "activation_words", "fairy_sums_mma", "launch_mma",
           "activation_planes", "available", "available_mma", "read_xor", "launch_stream", "stream_config", "pack_codes_b1",
           "activation_bits", "mma_rates"]


def available() -> bool:
    import importlib.util
    return importlib.util.find_spec("triton") is not None and torch.cuda.is_available()


def pack_codes_i32(codes: torch.Tensor) -> torch.Tensor:
    """uint8 codes ``(..., m)`` -> int32 ``(..., mw)``, 16 codes a word, code j at bits 2j, with ``mw =
    ceil(m/16)`` rounded up to a multiple of 4 (rows start on 16 bytes, for vector loads). The padding
    codes are 0 and meet zero activations, so they add nothing."""
    m = codes.shape[-1]
    pad = (-m) % 64
    c = codes.to(torch.int64)
    if pad:
        c = torch.nn.functional.pad(c, (0, pad))
    c = c.reshape(*c.shape[:-1], -1, 16)
    shifts = 2 * torch.arange(16, device=c.device, dtype=torch.int64)
    words = (c << shifts).sum(-1)
    words = torch.where(words >= 2**31, words - 2**32, words)
    return words.to(torch.int32)


_store4 = None


def _store_sums():
    """A Triton function shared by the SIMT and dp4a kernels: the four sums of a tile of rows into
    ``out`` int32 ``(B, M, n, 4)`` at ``base = ((b * M + mat) * n + rows) * 4``."""
    global _store4
    if _store4 is None:
        import triton
        import triton.language as tl

        @triton.jit
        def store4(out_ptr, base, rmask, ap, aq, bp, bq):
            tl.store(out_ptr + base + 0, ap, mask=rmask)
            tl.store(out_ptr + base + 1, aq, mask=rmask)
            tl.store(out_ptr + base + 2, bp, mask=rmask)
            tl.store(out_ptr + base + 3, bq, mask=rmask)
        _store4 = store4
    return _store4


_kernel = None


def _build():
    import triton
    import triton.language as tl
    store4 = _store_sums()

    @triton.autotune(
        configs=[triton.Config({"BLOCK_N": bn, "BLOCK_W": bw}, num_warps=w, num_stages=s)
                 for bn, bw, w, s in [(16, 16, 4, 3), (32, 8, 4, 3)]],
        key=["n", "mw", "MATS"])
    @triton.jit
    def kernel(codes_ptr, p_ptr, q_ptr, out_ptr, n, mw, MATS: tl.constexpr, BATCH: tl.constexpr,
               BLOCK_N: tl.constexpr, BLOCK_W: tl.constexpr):
        pid = tl.program_id(0)
        rows = pid * BLOCK_N + tl.arange(0, BLOCK_N)
        rmask = rows < n
        lane16 = tl.arange(0, 16)
        shifts = 2 * lane16
        for b in tl.static_range(BATCH):
            for mat in tl.static_range(MATS):
                acc_ap = tl.zeros([BLOCK_N], dtype=tl.int32)
                acc_aq = tl.zeros([BLOCK_N], dtype=tl.int32)
                acc_bp = tl.zeros([BLOCK_N], dtype=tl.int32)
                acc_bq = tl.zeros([BLOCK_N], dtype=tl.int32)
                for w0 in range(0, mw, BLOCK_W):
                    widx = w0 + tl.arange(0, BLOCK_W)
                    wmask = widx < mw
                    words = tl.load(codes_ptr + (mat * n + rows[:, None]) * mw + widx[None, :],
                                    mask=rmask[:, None] & wmask[None, :], other=0)
                    kidx = widx[:, None] * 16 + lane16[None, :]
                    p = tl.load(p_ptr + b * mw * 16 + kidx, mask=wmask[:, None], other=0).to(tl.int32)
                    q = tl.load(q_ptr + b * mw * 16 + kidx, mask=wmask[:, None], other=0).to(tl.int32)
                    if mat % 2 == 1:
                        q = -q
                    c = (words[:, :, None] >> shifts[None, None, :]) & 3
                    sgn = 1 - (c & 2)
                    im = (c & 1) != 0
                    sp = sgn * p[None, :, :]
                    sq = sgn * q[None, :, :]
                    zero = tl.zeros_like(sp)
                    acc_ap += tl.sum(tl.sum(tl.where(im, zero, sp), axis=2), axis=1)
                    acc_aq += tl.sum(tl.sum(tl.where(im, zero, sq), axis=2), axis=1)
                    acc_bp += tl.sum(tl.sum(tl.where(im, sp, zero), axis=2), axis=1)
                    acc_bq += tl.sum(tl.sum(tl.where(im, sq, zero), axis=2), axis=1)
                store4(out_ptr, ((b * MATS + mat) * n + rows) * 4, rmask, acc_ap, acc_aq, acc_bp, acc_bq)

    return kernel


_dot_kernel = None


def _build_dot():
    """Tensor-core variant: decode a tile of codes to int8 a (real axis) and b (imaginary axis)
    matrices in registers and multiply them with an int8 activation matrix X (K x 16: columns p_b, q_b
    per token, zero padded) by ``tl.dot`` (int8 MMA, int32 accumulate): exact, no cross-lane sums.

    The grid is (row tiles, matrices, K splits): ncu showed the first version, one program per row
    tile looping over the four matrices, kept 16 of 132 SMs busy on a 2048-row layer (SM busy 4.7%).
    Partial sums of the K splits meet through int32 atomic adds, which are exact in any order."""
    import triton
    import triton.language as tl

    @triton.autotune(
        configs=[triton.Config({"BLOCK_N": bn, "BLOCK_W": bw}, num_warps=w, num_stages=s)
                 for bn, bw, w, s in [(64, 8, 4, 3), (64, 16, 4, 3), (128, 8, 4, 3), (32, 16, 4, 3),
                                      (64, 32, 8, 3), (128, 16, 8, 3)]],
        key=["n", "mw", "MATS", "SPLIT"], reset_to_zero=["out_ptr"])
    @triton.jit
    def kernel(codes_ptr, x_ptr, out_ptr, n, mw, MATS: tl.constexpr, SPLIT: tl.constexpr,
               BLOCK_N: tl.constexpr, BLOCK_W: tl.constexpr):
        pid = tl.program_id(0)
        mat = tl.program_id(1)
        ks = tl.program_id(2)
        rows = pid * BLOCK_N + tl.arange(0, BLOCK_N)
        rmask = rows < n
        BK: tl.constexpr = BLOCK_W * 16
        shifts = 2 * tl.arange(0, 16)
        cols = tl.arange(0, 16)
        chunk = tl.cdiv(tl.cdiv(mw, SPLIT), BLOCK_W) * BLOCK_W
        lo = ks * chunk
        acc_a = tl.zeros([BLOCK_N, 16], dtype=tl.int32)
        acc_b = tl.zeros([BLOCK_N, 16], dtype=tl.int32)
        for w0 in range(lo, lo + chunk, BLOCK_W):
            widx = w0 + tl.arange(0, BLOCK_W)
            wmask = widx < mw
            words = tl.load(codes_ptr + (mat * n + rows[:, None]) * mw + widx[None, :],
                            mask=rmask[:, None] & wmask[None, :], other=0)
            c = tl.reshape((words[:, :, None] >> shifts[None, None, :]) & 3, [BLOCK_N, BK])
            s = 1 - (c & 2)
            im = c & 1
            a = (s - s * im).to(tl.int8)
            b = (s * im).to(tl.int8)
            kidx = w0 * 16 + tl.arange(0, BK)
            kmask = kidx < mw * 16
            x = tl.load(x_ptr + kidx[:, None] * 16 + cols[None, :], mask=kmask[:, None], other=0)
            acc_a = tl.dot(a, x, acc_a, out_dtype=tl.int32)
            acc_b = tl.dot(b, x, acc_b, out_dtype=tl.int32)
        base = (mat * n + rows[:, None]) * 32 + cols[None, :]
        tl.atomic_add(out_ptr + base, acc_a, mask=rmask[:, None])
        tl.atomic_add(out_ptr + base + 16, acc_b, mask=rmask[:, None])

    return kernel


def split_for(n: int, mw: int, mats: int, sms: int = 132) -> int:
    """K splits that give about four programs per SM for a layer of ``n`` rows (BLOCK_N = 64)."""
    tiles = -(-n // 64) * mats
    return max(1, min(-(-4 * sms // tiles), max(1, mw // 32)))


def activation_matrix(p: torch.Tensor, q: torch.Tensor, mw: int) -> torch.Tensor:
    """int8 ``(16*mw, 16)``: column ``2b`` = p of token b, ``2b+1`` = q, zero padded."""
    batch, m = p.shape
    x = torch.zeros(16 * mw, 16, dtype=torch.int8, device=p.device)
    x[:m, 0:2 * batch:2] = p.T
    x[:m, 1:2 * batch:2] = q.T
    return x


def fairy_sums_dot(codes_i32: torch.Tensor, p: torch.Tensor, q: torch.Tensor, *, x=None,
                   out: torch.Tensor | None = None) -> torch.Tensor:
    """Tensor-core variant of :func:`fairy_sums` for up to 8 tokens. The W matrices' ``conj(x)`` is
    applied by negating their q sums afterwards (``Σ a (-q) = -Σ a q``, exact in int32)."""
    mats, n, mw = codes_i32.shape
    if p.dim() == 1:
        p, q = p[None], q[None]
    batch, m = p.shape
    if batch > 8:
        raise ValueError(f"the tensor-core variant takes at most 8 tokens, not {batch}")
    if x is None:
        x = activation_matrix(p, q, mw)
    out = launch_dot(codes_i32, x, out)
    return dot_result(out, batch)


def launch_dot(codes_i32: torch.Tensor, x: torch.Tensor, out: torch.Tensor | None = None) -> torch.Tensor:
    """The tensor-core kernel alone: int32 ``(M, n, 32)`` (zeroed here; K splits add into it)."""
    global _dot_kernel
    if _dot_kernel is None:
        _dot_kernel = _build_dot()
    import triton
    mats, n, mw = codes_i32.shape
    if out is None:
        out = torch.zeros(mats, n, 32, dtype=torch.int32, device=codes_i32.device)
    else:
        out.zero_()
    split = split_for(n, mw, mats)
    grid = lambda meta: (triton.cdiv(n, meta["BLOCK_N"]), mats, split)   # noqa: E731
    _dot_kernel[grid](codes_i32, x, out, n, mw, MATS=mats, SPLIT=split)
    return out


def dot_result(out: torch.Tensor, batch: int) -> torch.Tensor:
    """The dot kernel's ``(M, n, 32)`` output as ``(B, M, n, 4)`` sums, W's q sums negated."""
    mats, n, _ = out.shape
    a = out[:, :, 0:2 * batch].reshape(mats, n, batch, 2)
    b = out[:, :, 16:16 + 2 * batch].reshape(mats, n, batch, 2)
    s = torch.stack([a[..., 0], a[..., 1], b[..., 0], b[..., 1]], dim=-1).permute(2, 0, 1, 3).clone()
    s[:, 1::2, :, 1] *= -1
    s[:, 1::2, :, 3] *= -1
    return s


def fairy_sums(codes_i32: torch.Tensor, p: torch.Tensor, q: torch.Tensor, *, conj_odd: bool = True,
               out: torch.Tensor | None = None) -> torch.Tensor:
    """Integer sums on the GPU. ``codes_i32``: int32 ``(M, n, mw)`` (from :func:`pack_codes_i32`);
    ``p, q``: int8 ``(B, m)`` or ``(m,)`` with ``m <= 16*mw``. Odd matrices (W) use ``conj(x)``.
    Returns int32 ``(B, M, n, 4)``."""
    global _kernel
    if _kernel is None:
        _kernel = _build()
    if not conj_odd:
        raise ValueError("only the stream order U, W, U, W, ... is supported")
    mats, n, mw = codes_i32.shape
    if p.dim() == 1:
        p, q = p[None], q[None]
    batch, m = p.shape
    if m > 16 * mw:
        raise ValueError(f"activations of length {m} do not fit codes of {16 * mw} columns")
    pp = torch.zeros(batch, 16 * mw, dtype=torch.int8, device=p.device)
    qq = torch.zeros_like(pp)
    pp[:, :m] = p
    qq[:, :m] = q
    if out is None:
        out = torch.empty(batch, mats, n, 4, dtype=torch.int32, device=codes_i32.device)
    import triton
    grid = lambda meta: (triton.cdiv(n, meta["BLOCK_N"]),)   # noqa: E731
    _kernel[grid](codes_i32, pp, qq, out, n, mw, MATS=mats, BATCH=batch)
    return out


_dp4a_kernel = None


def _build_dp4a():
    """SIMT variant built on ``dp4a`` (four int8 products and a sum in one instruction).

    Bit-plane weights instead of decoded ones: with ``h`` the high bit of a code and ``x = h ^ l``,
    ``a = 1 - h - x`` and ``b = x - h``, so ``Σap = Σp - H_p - X_p`` and ``Σbp = X_p - H_p`` where
    ``H_p = Σ h p`` and ``X_p = Σ x p`` have 0/1 weights. One shift and one mask of a code word give the
    0/1 bytes of four codes (``h`` of codes ``4i + j``, i = 0..3, in byte i), already packed for
    ``dp4a``; the activations are packed to match once per token (:func:`activation_words`). Per 16
    codes: 2 + 4 x (2 + 2) integer ops and 16 ``dp4a``."""
    import triton
    import triton.language as tl
    store4 = _store_sums()

    @triton.jit
    def dp4a(a, b, c):
        return tl.inline_asm_elementwise("dp4a.s32.s32 $0, $1, $2, $3;", "=r,r,r,r", [a, b, c],
                                         dtype=tl.int32, is_pure=True, pack=1)

    @triton.jit
    def plane(wu, wx, pj, qj, hp, hq, xp, xq, J: tl.constexpr):
        """Codes 4i + J of every word: 0/1 bytes of h and x, four dp4a into the accumulators."""
        h = ((wu >> (2 * J + 1)) & 0x01010101).to(tl.int32, bitcast=True)
        x = ((wx >> (2 * J)) & 0x01010101).to(tl.int32, bitcast=True)
        pj = tl.broadcast_to(pj[None, :], hp.shape)
        qj = tl.broadcast_to(qj[None, :], hp.shape)
        return dp4a(h, pj, hp), dp4a(h, qj, hq), dp4a(x, pj, xp), dp4a(x, qj, xq)

    @triton.autotune(
        configs=[triton.Config({"BLOCK_N": bn, "BLOCK_W": bw}, num_warps=w, num_stages=s)
                 for bn, bw, w, s in [(16, 64, 4, 3), (32, 32, 4, 3), (32, 64, 8, 3), (64, 32, 8, 3),
                                      (16, 128, 8, 3), (8, 128, 4, 3), (64, 64, 8, 2), (8, 64, 2, 3),
                                      (4, 128, 2, 3), (8, 32, 2, 4), (16, 32, 4, 4)]],
        key=["n", "mw", "MATS", "BATCH"])
    @triton.jit
    def kernel(codes_ptr, pw_ptr, qw_ptr, sums_ptr, out_ptr, n, mw, MATS: tl.constexpr,
               BATCH: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_W: tl.constexpr):
        pid = tl.program_id(0)
        mat = tl.program_id(1)
        rows = pid * BLOCK_N + tl.arange(0, BLOCK_N)
        rmask = rows < n
        for b in tl.static_range(BATCH):
            hp = tl.zeros([BLOCK_N, BLOCK_W], dtype=tl.int32)
            hq = tl.zeros([BLOCK_N, BLOCK_W], dtype=tl.int32)
            xp = tl.zeros([BLOCK_N, BLOCK_W], dtype=tl.int32)
            xq = tl.zeros([BLOCK_N, BLOCK_W], dtype=tl.int32)
            for w0 in range(0, mw, BLOCK_W):
                widx = w0 + tl.arange(0, BLOCK_W)
                wmask = widx < mw
                words = tl.load(codes_ptr + (mat * n + rows[:, None]) * mw + widx[None, :],
                                mask=rmask[:, None] & wmask[None, :], other=0)
                wu = words.to(tl.uint32, bitcast=True)
                wx = wu ^ (wu >> 1)
                # a word's four packed activation slots in one 16-byte load, split into j = 0..3
                aoff = (b * mw + widx[:, None]) * 4 + tl.arange(0, 4)[None, :]
                pa, pb = tl.split(tl.reshape(tl.load(pw_ptr + aoff, mask=wmask[:, None], other=0),
                                             [BLOCK_W, 2, 2]))
                qa, qb = tl.split(tl.reshape(tl.load(qw_ptr + aoff, mask=wmask[:, None], other=0),
                                             [BLOCK_W, 2, 2]))
                p0, p2 = tl.split(pa)
                p1, p3 = tl.split(pb)
                q0, q2 = tl.split(qa)
                q1, q3 = tl.split(qb)
                hp, hq, xp, xq = plane(wu, wx, p0, q0, hp, hq, xp, xq, 0)
                hp, hq, xp, xq = plane(wu, wx, p1, q1, hp, hq, xp, xq, 1)
                hp, hq, xp, xq = plane(wu, wx, p2, q2, hp, hq, xp, xq, 2)
                hp, hq, xp, xq = plane(wu, wx, p3, q3, hp, hq, xp, xq, 3)
            sp = tl.load(sums_ptr + 2 * b)
            sq = tl.load(sums_ptr + 2 * b + 1)
            Hp = tl.sum(hp, axis=1)
            Hq = tl.sum(hq, axis=1)
            Xp = tl.sum(xp, axis=1)
            Xq = tl.sum(xq, axis=1)
            ap = sp - Hp - Xp
            aq = sq - Hq - Xq
            bp = Xp - Hp
            bq = Xq - Hq
            if mat % 2 == 1:          # W: conj(x), q negated
                aq = -aq
                bq = -bq
            store4(out_ptr, ((b * MATS + mat) * n + rows) * 4, rmask, ap, aq, bp, bq)

    return kernel


def activation_words(p: torch.Tensor, q: torch.Tensor, mw: int):
    """Activations packed for the dp4a kernel: int32 ``(B, mw, 4)`` for p and q, word ``w`` slot ``j``
    holding bytes ``x[16w + 4i + j]`` (i = 0..3), and int32 ``(B, 2)`` of ``(Σp, Σq)`` per token."""
    batch, m = p.shape

    def pack(x):
        xx = torch.zeros(batch, 16 * mw, dtype=torch.int8, device=x.device)
        xx[:, :m] = x
        return xx.view(batch, mw, 4, 4).transpose(2, 3).contiguous().view(torch.int32)

    sums = torch.stack([p.to(torch.int32).sum(-1), q.to(torch.int32).sum(-1)], dim=-1).to(torch.int32)
    return pack(p), pack(q), sums.contiguous()


def launch_dp4a(codes_i32: torch.Tensor, pw: torch.Tensor, qw: torch.Tensor, sums: torch.Tensor,
                out: torch.Tensor | None = None) -> torch.Tensor:
    """The dp4a kernel alone on packed activations: int32 ``(B, M, n, 4)``."""
    global _dp4a_kernel
    if _dp4a_kernel is None:
        _dp4a_kernel = _build_dp4a()
    import triton
    mats, n, mw = codes_i32.shape
    batch = pw.shape[0]
    if out is None:
        out = torch.empty(batch, mats, n, 4, dtype=torch.int32, device=codes_i32.device)
    grid = lambda meta: (triton.cdiv(n, meta["BLOCK_N"]), mats)   # noqa: E731
    _dp4a_kernel[grid](codes_i32, pw, qw, sums, out, n, mw, MATS=mats, BATCH=batch)
    return out


def fairy_sums_dp4a(codes_i32: torch.Tensor, p: torch.Tensor, q: torch.Tensor,
                    out: torch.Tensor | None = None) -> torch.Tensor:
    """dp4a variant of :func:`fairy_sums` (stream order U, W, ...: odd matrices on ``conj(x)``)."""
    mats, n, mw = codes_i32.shape
    if p.dim() == 1:
        p, q = p[None], q[None]
    if p.shape[1] > 16 * mw:
        raise ValueError(f"activations of length {p.shape[1]} do not fit codes of {16 * mw} columns")
    pw, qw, sums = activation_words(p, q, mw)
    return launch_dp4a(codes_i32, pw, qw, sums, out)


# ---------------------------------------------------------------------------------------------------
# Tensor-core kernel on bit planes (CUDA C++, compiled at run time by NVRTC): see gpu_mma.cu.

_MMA_SRC = os.path.join(os.path.dirname(__file__), "gpu_mma.cu")
MMA_MAX_TOKENS = 16
MMA_MAX_TOKENS_SLOTS = 8         # the slot-column kernel's limit (its registers grow with every token)
MMA_MAX_INPUTS = 1 << 17         # slot 3's sums carry 2^7: |2^7 * 2^7 * m| < 2^31

def available_mma() -> bool:
    """A CUDA GPU with int8 ``mma.sync`` (compute capability 8.0 or newer) and an NVRTC library."""
    if not torch.cuda.is_available() or torch.cuda.get_device_capability()[0] < 8:
        return False
    from .nvrtc import nvrtc_path
    return nvrtc_path() is not None


def activation_planes(p: torch.Tensor, q: torch.Tensor, mw: int):
    """Activations packed for the tensor-core bit-plane kernel: int32 ``(B, 2, 4, mwp)`` (token, p or q,
    slot J, word w) holding the bytes ``x[16w + 4i + J]``, i = 0..3, with ``mwp = 16 * ceil(mw/16)``
    (zero padded), and int32 ``(B, 2)`` of ``(Σp, Σq)`` per token."""
    batch, m = p.shape
    mwp = 16 * -(-mw // 16)
    x = torch.zeros(batch, 2, 16 * mwp, dtype=torch.int8, device=p.device)
    x[:, 0, :m] = p
    x[:, 1, :m] = q
    planes = x.view(batch, 2, mwp, 4, 4).permute(0, 1, 4, 2, 3).contiguous().view(torch.int32)
    sums = torch.stack([p.to(torch.int32).sum(-1), q.to(torch.int32).sum(-1)], dim=-1).to(torch.int32)
    return planes.view(batch, 2, 4, mwp), sums.contiguous()


def mma_config(rows: int, mw: int, batch: int, slots: bool = False) -> tuple[int, int, int, bool, bool, int, int]:
    """(KSPLIT warps sharing a 16-row tile, UNROLL chunks per item, blocks per SM, per-slot accumulators,
    next-item prefetch, minimum resident blocks for the register budget (0 leaves it to the compiler),
    SETS: 0 for the slot-column kernel, 1, 2 or 4 accumulator sets for the token-column one) for a
    launch: the best of sweeps on an H100 over the fused LLaMA-2 7B launches (each a chain of
    launches of one shape in a CUDA graph, rotating >= 400 MB of copies). ``slots``: the slot-column
    kernel's own best for two tokens and more (measured beside the token-column kernel).

    One token, slot-column kernel. Where a row is at most 8 chunks of 16 words (m <= 2048, every
    launch but down_proj), one item per warp covers a tile, and the loads of one big item beat a
    prefetch of the next: 2 warps x 4 chunks (128 code bytes a thread in flight; 2 x 2 with registers
    for >= 8 blocks a SM on the q|k|v launch's 24k rows, >= 6 blocks on 32k rows and more); for longer
    rows 8 warps x 1 chunk with >= 4 blocks; none prefetches (its registers cost more warps than it
    hides).

    Two tokens and more, token-column kernel (sweeps of 2, 3, 4, 6, 8, 12 and 16 tokens): the
    accumulators grow with the column groups, so the chunks a warp holds shrink with the tokens; by
    rows, the o_proj launch (8k rows) takes more warps a tile than q|k|v (24k), gate|up and lm_head
    (44k, 64k) fewer; down_proj's long rows 4 warps a tile. Four accumulator sets (no shifts) win where
    registers are spare (up to 4 tokens on long rows), one set (three shifts a register) from 5 tokens
    on most launches. None prefetches."""
    chunks = -(-mw // 16)
    short = chunks <= 8
    if batch == 1:
        if not short:
            return 8, 1, 16, True, False, 4, 0
        if rows <= 8192:
            return 2, 4, 16, True, False, 0, 0
        return (2, 2, 16, True, False, 8, 0) if rows <= 32768 else (2, 4, 16, True, False, 6, 0)
    if slots:
        if batch == 2:
            return (2, 4, 16, True, False, 0, 0) if short else (8, 1, 16, True, False, 0, 0)
        if batch <= 4:
            return (2, 2, 16, False, False, 0, 0) if short else (8, 1, 16, False, False, 0, 0)
        return (2, 1, 16, False, False, 0, 0) if short else (2, 1, 16, False, True, 0, 0)
    if not short:
        ks, un, sets = (4, 2, 4) if batch <= 4 else (4, 1, 4) if batch <= 8 else (4, 1, 1)
    elif batch <= 4:
        ks, un, sets = (2, 4, 1) if rows <= 8192 else (2, 2, 1) if rows <= 32768 else (4, 2, 2)
    elif batch <= 8:
        ks, un, sets = (4, 2, 1) if rows <= 8192 else (2, 1, 1) if rows <= 32768 else (4, 1, 1)
    else:
        ks, un, sets = (4, 1, 1) if rows <= 32768 else (2, 1, 1)
    return ks, un, 16, False, False, 0, sets


_devices: dict = {}


def _device(t: torch.Tensor) -> tuple[int, int, tuple[int, int]]:
    """(index, SM count, compute capability) of a CUDA tensor's device, looked up once."""
    index = t.device.index if t.device.index is not None else torch.cuda.current_device()
    if index not in _devices:
        _devices[index] = (torch.cuda.get_device_properties(index).multi_processor_count,
                           torch.cuda.get_device_capability(index))
    return (index, *_devices[index])


def launch_mma(codes_i32: torch.Tensor, act: torch.Tensor, sums: torch.Tensor,
               out: torch.Tensor | None = None, *, ksplit: int | None = None,
               unroll: int | None = None, blocks_per_sm: int | None = None,
               blocks: int | None = None, sep: bool | None = None, pdl: bool = False,
               pre: bool | None = None, minb: int | None = None, sets: int | None = None) -> torch.Tensor:
    """The tensor-core bit-plane kernel alone on packed activations (:func:`activation_planes`):
    int32 ``(B, M, n, 4)``. The grid holds ``blocks`` blocks (default ``blocks_per_sm`` per SM), each
    walking 16-row tiles; ``ksplit`` warps share a tile and ``unroll`` chunks of 16 words go in one load
    step, ``sep`` gives each slot its own accumulators, ``pre`` loads a warp's next item while it
    computes the current one, ``minb`` asks the compiler for registers to fit that many blocks on an SM,
    ``sets`` picks the kernel: 0 puts one token's four slots x (p, q) in the MMA's eight columns (the
    batch-1 kernel; up to 8 tokens, each its own MMAs), 1, 2 or 4 put four tokens x (p, q) there and
    keep the slots in that many accumulator sets (up to 16 tokens, a quarter of the MMAs for four)
    (defaults: :func:`mma_config`; with ``ksplit`` or ``unroll`` given, ``minb`` defaults to 0, the
    compiler's choice, and ``pre`` to True). ``pdl``:
    programmatic dependent launch (Hopper and newer), so that this launch's first code loads overlap the
    end of the previous kernel on the stream; it reads the activations only once that kernel has
    completed."""
    import ctypes
    mats, n, mw = codes_i32.shape
    batch = act.shape[0]
    if codes_i32.dtype != torch.int32 or not codes_i32.is_contiguous() or mw % 4:
        raise ValueError("codes must be contiguous int32 (M, n, mw) with mw a multiple of 4 "
                         "(pack_codes_i32 pads them so)")
    if not 1 <= batch <= MMA_MAX_TOKENS:
        raise ValueError(f"the tensor-core kernel takes 1 to {MMA_MAX_TOKENS} tokens, not {batch}")
    mwp = act.shape[-1]
    if act.dtype != torch.int32 or tuple(act.shape) != (batch, 2, 4, 16 * -(-mw // 16)):
        raise ValueError(f"activations must be int32 {(batch, 2, 4, 16 * -(-mw // 16))} "
                         f"(activation_planes), not {tuple(act.shape)} {act.dtype}")
    rows = mats * n
    dev = codes_i32.device
    if out is None:
        out = torch.empty(batch, mats, n, 4, dtype=torch.int32, device=dev)
    if 16 * mw > MMA_MAX_INPUTS:
        raise ValueError(f"rows of {16 * mw} inputs are beyond the tensor-core kernel's int32 sums "
                         f"(at most {MMA_MAX_INPUTS})")
    ks, un, bps, sp, pr, mb, st = mma_config(rows, mw, batch, slots=sets == 0)
    if ksplit or unroll:
        pr, mb = True, 0
    ks, un, bps = ksplit or ks, unroll or un, blocks_per_sm or bps
    sep = sp if sep is None else sep
    pre = pr if pre is None else pre
    minb = mb if minb is None else minb
    sets = st if sets is None else sets
    if sets not in (0, 1, 2, 4):
        raise ValueError(f"sets must be 0 (slots in the columns) or 1, 2, 4 (tokens in the columns), not {sets}")
    if batch > MMA_MAX_TOKENS_SLOTS and not sets:
        raise ValueError(f"slots in the columns (sets=0) take at most {MMA_MAX_TOKENS_SLOTS} tokens, not {batch}")
    if 2 * ks * batch * 16 * 16 > 48 * 1024:
        raise ValueError(f"{ks} warps a tile x {batch} tokens need more than 48 KiB of shared memory")
    index, sms, cap = _device(codes_i32)
    # whole tiles, no padding words and whole items: no bounds checks in the kernel
    full = rows % 16 == 0 and mw % 16 == 0 and (mw // 16) % (ks * un) == 0
    if sets:
        flags = ",".join("true" if f else "false" for f in (full, pre))
        k = _mma_kernel(f"fairy_mma_tok<{batch},{ks},{un},{sets},{flags},{minb}>", index)
    else:
        flags = ",".join("true" if f else "false" for f in (sep, full, pre))
        k = _mma_kernel(f"fairy_mma<{batch},{ks},{un},{flags},{minb}>", index)
    vp, ci = ctypes.c_void_p, ctypes.c_int
    grid = min(-(-rows // 16), blocks or bps * sms)
    k.launch((grid,), (32 * ks,),
             [vp(codes_i32.data_ptr()), vp(act.data_ptr()), vp(sums.data_ptr()), vp(out.data_ptr()),
              ci(rows), ci(n), ci(mw), ci(mwp)],
             torch.cuda.current_stream(dev).cuda_stream,
             pdl=pdl and cap[0] >= 9)
    return out


STREAM_SHARED = 100 * 1024      # a streaming block's shared memory: two blocks (two launches) fit an SM
STREAM_MAX_WARPS = 12


def stream_config(mw: int, warps: int | None = None, depth: int | None = None) -> tuple[int, int, int] | None:
    """(warps, stages a warp, dynamic shared bytes) of the streaming kernel for rows of ``mw`` words, or
    None where one stage a warp does not fit :data:`STREAM_SHARED` (rows longer than about 6k inputs).
    Each stage is one 16-row tile (64 mw bytes); the token's planes (32 mwp bytes) sit after the stages.
    Default: one stage a warp and as many warps as fit (at most :data:`STREAM_MAX_WARPS`): on an H200,
    12 x 1 beat 6 x 2 and 4 x 3 on rows of 128 words, 4 x 1 beat 2 x 2 on rows of 352."""
    mwp = 16 * -(-mw // 16)
    room = STREAM_SHARED - 32 * mwp
    tile = 64 * mw
    d = depth or 1
    w = warps or min(STREAM_MAX_WARPS, room // (d * tile))
    if w < 1 or d < 1 or w * d * tile > room:
        return None
    return w, d, w * d * tile + 32 * mwp


def launch_stream(codes_i32: torch.Tensor, act: torch.Tensor, sums: torch.Tensor,
                  out: torch.Tensor | None = None, *, warps: int | None = None, depth: int | None = None,
                  pdl: bool = False, read: bool = False, blocks: int | None = None,
                  b1: bool = False, compute_only: bool = False, pre: int = 0) -> torch.Tensor:
    """The one-token tensor-core kernel with its codes streamed into shared memory by bulk copies
    (``fairy_mma_stream``; compute capability 9.0+): one block an SM, each warp ``depth`` tile stages
    ahead (:func:`stream_config`), the first copies issued before the PDL wait. Same inputs and result as
    :func:`launch_mma` at batch 1. ``read``: the same copies and waits without the MMAs (the benchmark's
    breakdown; ``out`` then holds one XOR word a tile). ``pre`` (bit planes, rows of at most ``pre``
    chunks of 256 codes): each tile's codes go into registers and the stage is refilled before the
    MMAs."""
    import ctypes
    mats, n, mw = codes_i32.shape
    if codes_i32.dtype != torch.int32 or not codes_i32.is_contiguous() or mw % 4:
        raise ValueError("codes must be contiguous int32 (M, n, mw) with mw a multiple of 4 "
                         "(pack_codes_i32 pads them so)")
    mwp = 16 * -(-mw // 16)
    want = (1, 2, mwp // 16, 64) if b1 else (1, 2, 4, mwp)
    if b1 and mw % 16:
        raise ValueError("bit-plane codes (pack_codes_b1) have rows of a multiple of 16 words")
    if act.dtype != torch.int32 or tuple(act.shape) != want:
        raise ValueError(f"activations must be int32 {want} ({'activation_bits' if b1 else 'activation_planes'}"
                         f" of one token), not {tuple(act.shape)} {act.dtype}")
    if 16 * mw > MMA_MAX_INPUTS:
        raise ValueError(f"rows of {16 * mw} inputs are beyond the tensor-core kernel's int32 sums "
                         f"(at most {MMA_MAX_INPUTS})")
    cfg = stream_config(mw, warps, depth)
    if cfg is None:
        raise ValueError(f"rows of {mw} words do not fit the streaming kernel's {STREAM_SHARED} bytes of "
                         f"shared memory a block")
    w, d, shared = cfg
    if pre and (not b1 or not 1 <= mw // 16 <= pre or pre > 8):
        raise ValueError(f"pre={pre} takes the bit-plane layout and rows of 1 to pre <= 8 chunks, not {mw // 16}")
    index, sms, cap = _device(codes_i32)
    if cap[0] < 9:
        raise ValueError("the streaming kernel needs bulk copies (compute capability 9.0 or newer)")
    rows, nmul = mats * n, checked_row_matrix_multiplier(mats, n, "streaming kernel")
    if out is None:
        out = torch.empty(1, mats, n, 4, dtype=torch.int32, device=codes_i32.device)
    k = _mma_kernel(f"fairy_mma_stream<{w},{d},{2 if compute_only else int(read)},{'true' if b1 else 'false'},{pre}>",
                    index)
    k.allow_shared(shared)
    vp, ci = ctypes.c_void_p, ctypes.c_int
    k.launch((min(-(-rows // 16), blocks or sms),), (32 * w,),
             [vp(codes_i32.data_ptr()), vp(act.data_ptr()), vp(sums.data_ptr()), vp(out.data_ptr()),
              ci(rows), ctypes.c_uint64(nmul), ci(mw), ci(mwp)],
             torch.cuda.current_stream(codes_i32.device).cuda_stream, shared=shared, pdl=pdl)
    return out


_RATES_SRC = os.path.join(os.path.dirname(__file__), "rates.cu")
RATE_FORMS = (                  # (name, form in rates.cu, warps an instruction, MACs an instruction)
    ("mma.sync m16n8k32 u8.s8 (slot layout)", 0, 1, 16 * 8 * 32),
    ("mma.sync m16n8k256 b1 and.popc (bit planes)", 1, 1, 16 * 8 * 256),
    ("wgmma m64n8k32 u8.s8, A in registers", 2, 4, 64 * 8 * 32),
)


def mma_rates(iters: int = 2000, chains: int = 8) -> list:
    """Cycles of an SM per tensor-core instruction, measured on this GPU (compute capability 9.0+ for
    the wgmma form) with ``kernels/gpu/rates.cu``: four blocks of 8 warps an SM, each warp (or
    warpgroup) keeping ``chains`` independent accumulators busy (throughput; the wgmma form waits for
    its group every ``chains`` instructions, as a kernel that builds A in registers must), then one warp
    (or warpgroup) alone with one accumulator (latency). Cycles come from ``clock64`` in the kernel, so
    no clock is assumed. The wgmma form is first checked ``==`` an int64 product on the host. Returns
    one dict a form."""
    import ctypes
    from .nvrtc import kernel
    index = torch.cuda.current_device()
    dev = torch.device("cuda", index)
    sms = torch.cuda.get_device_properties(index).multi_processor_count
    hopper = torch.cuda.get_device_capability(index)[0] == 9
    bps = 4                               # blocks an SM, all resident at once
    out = torch.empty(bps * sms * 256, dtype=torch.int32, device=dev)
    cycles = torch.zeros(bps * sms, dtype=torch.int64, device=dev)
    stream = torch.cuda.current_stream(index).cuda_stream
    vp, ci = ctypes.c_void_p, ctypes.c_int
    rows = []
    for name, form, warps, macs in RATE_FORMS:
        if form == 2:
            if not hopper:
                continue                  # wgmma: sm_90a only
            a = torch.randint(0, 256, (64, 32), dtype=torch.uint8, device=dev)
            bt = torch.randint(-128, 128, (8, 32), dtype=torch.int8, device=dev)
            d = torch.zeros(64, 8, dtype=torch.int32, device=dev)
            kernel(_RATES_SRC, "wg_check", index, "a").launch(
                (1,), (128,), [vp(a.data_ptr()), vp(bt.data_ptr()), vp(d.data_ptr())], stream)
            if not torch.equal(d.cpu().long(), a.cpu().long() @ bt.cpu().long().T):
                raise RuntimeError("wgmma m64n8k32 product differs from the host's")
        row = {"instruction": name, "macs": macs}
        for label, grid, block, ch in (("throughput", bps * sms, 256, chains), ("latency", 1, 32 * warps, 1)):
            k = kernel(_RATES_SRC, f"mma_rate<{form},{ch}>", index, "a" if form == 2 else "")
            args = [ci(iters), vp(out.data_ptr()), vp(cycles.data_ptr())]
            k.launch((grid,), (block,), [ci(10)] + args[1:], stream)
            k.launch((grid,), (block,), args, stream)
            torch.cuda.synchronize()
            c = cycles[:grid].double().mean().item()
            per_sm = (grid // sms or 1) * iters * ch * block // (32 * warps)   # instructions an SM issued
            row[f"{label}_cycles"] = c / per_sm if label == "throughput" else c / iters
        row["macs_per_sm_cycle"] = macs / row["throughput_cycles"]
        rows.append(row)
    return rows


PERSIST_SHARED = 225 * 1024     # the persistent kernel's ring of stages: a Hopper SM gives a block 227 KiB
PERSIST_WARPS = 6               # its consumer warps (a producer warp and a watcher warp beside them; 8
                                # leave too few registers for a layer's activations: spills)
PERSIST_AHEAD = 1               # its producer's copies in flight at most (a block's activation loads at a
                                # layer's release queue behind them; H200 figures in docs/kernels.md)
PERSIST_PREFETCH = 2            # its producer's L2 prefetch, in jobs ahead of its copies (0: none; H100
                                # figures in docs/kernels.md)
PERSIST_MAX_STAGES = 32         # the ring's stages at most (the kernel's mbarrier pairs)
PERSIST_MAX_TILES = 4           # 16-row tiles a job at most (the kernel keeps their sums in registers)
PERSIST_MAX_CHUNKS = 32         # a layer's chunks of 256 inputs at most (a warp holds them in registers)
PERSIST_MODES = {"full": 0, "read": 1, "compute": 2, "no_chain": 3, "chain": 4, "mma_only": 5,
                 # parts of mma_only and compute (docs/kernels.md, "Where the persistent kernel's
                 # compute time goes"): without the activation loads, the MMAs, both, the sums'
                 # stores or the block's counts
                 "mma_no_act": 6, "mma_no_mma": 7, "mma_walk": 8, "mma_no_store": 9,
                 "compute_no_act": 10, "compute_walk": 11, "mma_no_count": 12,
                 # all of it with each layer's count added without its release fence (a diagnosis
                 # of the fence's cost: not a valid kernel, the results are not published with it)
                 "no_fence": 13}


#: The shift of :func:`row_matrix_multiplier`'s product (``gpu_mma.cu``'s ``store_tile`` shifts by it),
#: and the rows x rows a matrix below which the multiplier is exact.
ROW_MATRIX_SHIFT = 40
ROW_MATRIX_BOUND = 1 << ROW_MATRIX_SHIFT
# the launcher's constants that gpu_mma.cu uses, put before its text when it is compiled
_MMA_PRELUDE = f"#define FAIRY_ROW_MATRIX_SHIFT {ROW_MATRIX_SHIFT}\n"


def mma_source() -> str:
    """The text that NVRTC compiles for the kernels of gpu_mma.cu: the launcher's constants, then the file."""
    from .nvrtc import source
    return source(_MMA_SRC, _MMA_PRELUDE)


def _mma_kernel(name_expr: str, index: int):
    """A kernel of gpu_mma.cu (:func:`mma_source`) on device ``index``, built once."""
    from .nvrtc import kernel
    return kernel(_MMA_SRC, name_expr, index, prelude=_MMA_PRELUDE)


def row_matrix_multiplier(n: int) -> int:
    """``nmul`` such that ``(r * nmul) >> ROW_MATRIX_SHIFT == r // n`` for every row ``r`` with
    ``r * n < ROW_MATRIX_BOUND`` and ``r * nmul < 2**64`` (the binary kernels' epilogue, ``store_tile``,
    finds a row's matrix so, in a 64-bit product, not by a division): ``nmul = 2**40 / n + e`` with
    ``0 < e <= 1``, so ``r * nmul / 2**40 = r / n + r * e / 2**40``, and ``r * e / 2**40 < 1 / n`` cannot
    carry the fraction of ``r / n`` (at most ``(n - 1) / n``) past an integer."""
    return ROW_MATRIX_BOUND // n + 1


def checked_row_matrix_multiplier(mats: int, n: int, what: str) -> int:
    """:func:`row_matrix_multiplier` of ``mats`` matrices of ``n`` rows, or a ``ValueError`` where their
    rows are beyond its exact range (``what`` names the kernel)."""
    nmul = row_matrix_multiplier(n)
    if mats * n * n >= ROW_MATRIX_BOUND or mats * n * nmul >= 2 ** 64:
        raise ValueError(f"{mats} matrices of {n} rows are beyond the {what}'s row arithmetic "
                         f"(rows x rows a matrix < 2**{ROW_MATRIX_SHIFT}, a 64-bit product)")
    return nmul


class PersistPlan:
    """Every layer of one token's step in one launch of the persistent kernel (``fairy_mma_persist``,
    compute capability 9.0+, bit-plane layout): one block an SM for the whole step, a producer warp
    streaming each block's share of every layer's codes into a ring of shared-memory stages by bulk
    copies, never waiting on a layer's inputs, and consumer warps that wait, before a layer, until
    every tile of the layer before is done (the step's dependency chain: a global counter a layer, read
    by one watcher warp a block, which tells the consumers in shared memory).

    ``layers``: ``(codes, act, sums, out)`` per layer, in step order: codes of :func:`pack_codes_b1`
    ``(M, n, mwp)``, ``act, sums`` of :func:`activation_bits` (one token), ``out`` int32 ``(1, M, n, 4)``
    (the sums of :func:`launch_stream`). The plan keeps them, and a descriptor of each on the device;
    :meth:`run` launches the step (and is captured by CUDA graphs like any launch). The stage is the
    longest layer's tile (16 rows); layers of shorter rows put up to :data:`PERSIST_MAX_TILES` tiles in
    a stage (``tiles_per_job`` at most), except where a block's share of the layer is at most ``warps``
    tiles: then one tile a job, so that the share is spread over the consumer warps. ``ahead``: the
    producer's copies in flight at most (a stage is refilled only once the copy ``ahead`` jobs back has
    landed; the ring's stages for no limit).
    ``prefetch``: before each copy the producer asks the codes of the job this many jobs later into L2
    (0: no prefetch)."""

    def __init__(self, layers, *, warps: int = PERSIST_WARPS, shared: int = PERSIST_SHARED,
                 tiles_per_job: int = PERSIST_MAX_TILES, ahead: int = PERSIST_AHEAD,
                 prefetch: int = PERSIST_PREFETCH):
        if not layers:
            raise ValueError("a persistent plan needs at least one layer")
        dev = layers[0][0].device
        self.index, self.sms, cap = _device(layers[0][0])
        if cap[0] < 9:
            raise ValueError("the persistent kernel needs bulk copies (compute capability 9.0 or newer)")
        if not 1 <= warps <= 30:
            raise ValueError(f"warps must be 1 to 30, not {warps}")
        if not 1 <= ahead <= PERSIST_MAX_STAGES:
            raise ValueError(f"ahead must be 1 to {PERSIST_MAX_STAGES}, not {ahead}")
        if not isinstance(prefetch, int) or not 0 <= prefetch <= PERSIST_MAX_STAGES:
            raise ValueError(f"prefetch must be 0 to {PERSIST_MAX_STAGES} jobs, not {prefetch!r}")
        if not 1 <= tiles_per_job <= PERSIST_MAX_TILES:
            raise ValueError(f"tiles_per_job must be 1 to {PERSIST_MAX_TILES}, not {tiles_per_job}")
        geometry = []                               # per layer: words a row, 16-row tiles, row multiplier
        for i, (codes, act, sums, out) in enumerate(layers):
            mats, n, mwp = codes.shape
            if codes.dtype != torch.int32 or not codes.is_contiguous() or mwp % 16:
                raise ValueError(f"layer {i}: codes must be contiguous int32 (M, n, mwp) of pack_codes_b1")
            if 16 * mwp > MMA_MAX_INPUTS:
                raise ValueError(f"layer {i}: rows of {16 * mwp} inputs are beyond the kernel's int32 sums")
            try:
                nmul = checked_row_matrix_multiplier(mats, n, "persistent kernel")
            except ValueError as e:
                raise ValueError(f"layer {i}: {e}") from None
            tiles = -(-mats * n // 16)
            if tiles * self.sms >= 2 ** 32:
                raise ValueError(f"layer {i}: {mats * n} rows are beyond the persistent kernel's 32-bit share "
                                 f"arithmetic on {self.sms} SMs")
            if mwp // 16 > PERSIST_MAX_CHUNKS:
                raise ValueError(f"layer {i}: rows of {mwp // 16} chunks of 256 inputs are beyond the "
                                 f"persistent kernel's {PERSIST_MAX_CHUNKS}")
            if act.dtype != torch.int32 or tuple(act.shape) != (1, 2, mwp // 16, 64) or not act.is_contiguous():
                raise ValueError(f"layer {i}: activations must be int32 (1, 2, {mwp // 16}, 64) of activation_bits")
            if sums.dtype != torch.int32 or sums.numel() != 2:
                raise ValueError(f"layer {i}: sums must be the int32 (1, 2) of activation_bits")
            if out.dtype != torch.int32 or tuple(out.shape) != (1, mats, n, 4) or not out.is_contiguous():
                raise ValueError(f"layer {i}: out must be contiguous int32 (1, {mats}, {n}, 4)")
            geometry.append((mwp, tiles, nmul))
        longest = max(mwp for mwp, _, _ in geometry)
        stage = 64 * longest                        # bytes of the longest layer's 16-row tile
        self.stages = min(PERSIST_MAX_STAGES, shared // stage)
        if self.stages < 2:
            raise ValueError(f"rows of {longest} words leave fewer than two stages in {shared} bytes")
        self.stage4, self.shared, self.warps = stage // 16, self.stages * stage, warps
        self.ahead, self.prefetch = min(ahead, self.stages), prefetch
        self.chunks = 2 * -(-longest // 32)         # chunks held in registers (even: two MMA sets)
        desc = []
        for (codes, act, sums, out), (mwp, tiles, nmul) in zip(layers, geometry):
            mats, n, _ = codes.shape
            tpj = max(1, min(tiles_per_job, stage // (64 * mwp)))
            if -(-tiles // self.sms) <= warps:      # a block's share fits its warps a tile each
                tpj = 1
            desc.append([codes.data_ptr(), act.data_ptr(), sums.data_ptr(), out.data_ptr(),
                         mats * n | n << 32, mwp | tpj << 32, nmul])
        self.layers = list(layers)                  # the descriptors point into these
        self.desc = torch.tensor(desc, dtype=torch.int64, device=dev)
        self.done = torch.zeros(len(layers), dtype=torch.int32, device=dev)

    def run(self, mode: str = "full", cooperative: bool = True) -> None:
        """Launch the step. ``mode``: ``full``; ``read`` (the copies, waits and chain without the MMAs:
        each tile's first result row gets an XOR of the tile's first words); ``compute`` (no copies:
        MMAs on whatever the stages hold); ``no_chain`` (no layer waits for the one before); ``chain`` (the
        layer chain alone: no copies, no MMAs); ``mma_only`` (the MMAs alone: no copies, no chain);
        ``no_fence`` (all of it, each layer's count added without the release fence that publishes
        its results with it: what that fence costs); and parts of ``mma_only`` and ``compute`` (the
        rest of :data:`PERSIST_MODES`, see ``gpu_mma.cu``). All but ``full`` are the benchmark's
        breakdown, not kernels; their results are not sums (``no_fence``'s are, once the launch
        ends, but a layer may start before the one before is visible). ``cooperative``: launched as a
        cooperative kernel (all blocks resident or an error); else a plain launch, whose blocks (one an
        SM, each over half an SM's shared memory) are all resident only while nothing else runs."""
        import ctypes
        if mode not in PERSIST_MODES:
            raise ValueError(f"mode must be one of {', '.join(PERSIST_MODES)}, not {mode!r}")
        k = _mma_kernel(f"fairy_mma_persist<{self.warps},{PERSIST_MODES[mode]},{PERSIST_MAX_STAGES},"
                        f"{PERSIST_MAX_TILES},{self.chunks}>", self.index)
        k.allow_shared(self.shared)
        self.done.zero_()
        vp, ci = ctypes.c_void_p, ctypes.c_int
        k.launch((self.sms,), (32 * (self.warps + 2),),
                 [vp(self.desc.data_ptr()), ci(len(self.layers)), vp(self.done.data_ptr()), ci(self.stages),
                  ci(self.stage4), ci(self.ahead), ci(self.prefetch)],
                 torch.cuda.current_stream(self.index).cuda_stream, shared=self.shared, cooperative=cooperative)


def _words(bits: torch.Tensor) -> torch.Tensor:
    """0/1 values (..., 32 k) as int32 words, bit j = value k = j."""
    v = (bits.to(torch.int64) << torch.arange(32, device=bits.device)).sum(-1)
    return (v - ((v >> 31) << 32)).to(torch.int32)


def pack_codes_b1(codes_i32: torch.Tensor, rows_at_once: int = 4096) -> torch.Tensor:
    """Codes of :func:`pack_codes_i32` ``(M, n, mw)`` in the bit-plane layout of the binary-MMA kernel:
    ``(M, n, 16 C)`` int32 with ``C = ceil(mw / 16)`` chunks of 256 codes a row (zero codes pad the
    last); per chunk four 16-byte vectors, vector t holding ``(h_t, h_{t+4}, x_t, x_{t+4})`` where word
    ``h_i`` has the high bits of codes ``32i .. 32i+31`` (bit j: code 32i + j) and ``x_i`` their
    ``h xor l``; the rows (all M matrices' in turn) then re-laid chunk by chunk within each tile of 16
    (:func:`_tile_chunks`). The same two bits a code as the input: laid out once, when the weights are
    loaded."""
    mats, n, mw = codes_i32.shape
    c = -(-mw // 16)
    src = torch.nn.functional.pad(codes_i32, (0, 16 * c - mw)).reshape(mats * n, 16 * c)
    out = torch.empty(mats * n, 16 * c, dtype=torch.int32, device=codes_i32.device)
    shifts = torch.arange(0, 32, 2, device=codes_i32.device, dtype=torch.int32)
    for r0 in range(0, mats * n, rows_at_once):
        w = src[r0:r0 + rows_at_once]
        code = ((w.unsqueeze(-1) >> shifts) & 3).view(w.shape[0], c, 8, 32)    # code 16 wi + j of a chunk
        h = code >> 1
        hw, xw = _words(h), _words(h ^ (code & 1))                             # (rows, C, 8)
        out[r0:r0 + rows_at_once] = torch.stack([hw[..., :4], hw[..., 4:], xw[..., :4], xw[..., 4:]],
                                                dim=-1).reshape(w.shape[0], 16 * c)
    return _tile_chunks(out, c).view(mats, n, 16 * c)


def _tile_chunks(rows: torch.Tensor, c: int) -> torch.Tensor:
    """Rows ``(R, 16 c)`` (c chunks of four 16-byte vectors a row, vector t = ``(h_t, h_{t+4}, x_t,
    x_{t+4})``) re-laid within each tile of 16 rows chunk by chunk. A whole tile's chunk is two runs of
    32 vectors, one a lane ``(g, t)`` of a warp: first ``(h_t, h_t', h_{t+4}, h_{t+4}')`` of rows g and
    g + 8 (') -- the A fragment of a binary ``m16n8k256`` MMA as one 16-byte load, in the registers
    the instruction reads -- then the same of ``x``. So a warp's loads of a chunk are 1,024
    consecutive bytes and need no register moves. A short last tile (``R % 16`` rows) keeps its rows'
    vectors chunk by chunk: tile, chunk, row, vector."""
    r = rows.shape[0]
    full = r - r % 16
    out = torch.empty_like(rows)
    # (tile, half: row g or g + 8, g, chunk, t, h or x, word t or t + 4) -> (tile, chunk, h or x, g, t,
    # word, half)
    out[:full] = (rows[:full].view(full // 16, 2, 8, c, 4, 2, 2).permute(0, 3, 5, 2, 4, 6, 1)
                  .reshape(full, 16 * c))
    if full < r:
        out[full:] = rows[full:].view(r - full, c, 16).transpose(0, 1).reshape(r - full, 16 * c)
    return out


def activation_bits(p: torch.Tensor, q: torch.Tensor, mw: int):
    """One token's activations for the binary-MMA kernels: int32 ``(1, 2, C, 64)`` (p or q, chunk of 256
    inputs, then the chunk's B fragments as a warp's lanes hold them: lane ``4g + t``'s two words are
    words t and t + 4 of bit plane g of the int8 values as two's complement, so that a warp loads a
    chunk as 256 consecutive bytes), zero past the inputs, and int32 ``(1, 2)`` of ``(Σp, Σq)``."""
    batch, m = p.shape
    c = -(-mw // 16)
    x = torch.zeros(batch, 2, 256 * c, dtype=torch.int32, device=p.device)
    x[:, 0, :m] = p.to(torch.int32) & 255
    x[:, 1, :m] = q.to(torch.int32) & 255
    planes = (x.unsqueeze(2) >> torch.arange(8, device=p.device, dtype=torch.int32).view(1, 1, 8, 1)) & 1
    words = _words(planes.view(batch, 2, 8, c, 8, 32))                          # (B, 2, 8, C, 8)
    words = words[..., [0, 4, 1, 5, 2, 6, 3, 7]].permute(0, 1, 3, 2, 4).reshape(batch, 2, c, 64).contiguous()
    sums = torch.stack([p.to(torch.int32).sum(-1), q.to(torch.int32).sum(-1)], dim=-1).to(torch.int32)
    return words, sums.contiguous()


def fairy_sums_mma(codes_i32: torch.Tensor, p: torch.Tensor, q: torch.Tensor,
                   out: torch.Tensor | None = None) -> torch.Tensor:
    """Tensor-core bit-plane variant of :func:`fairy_sums` for 1 to 16 tokens (stream order U, W, ...:
    odd matrices on ``conj(x)``)."""
    mats, n, mw = codes_i32.shape
    if p.dim() == 1:
        p, q = p[None], q[None]
    if p.shape[1] > 16 * mw:
        raise ValueError(f"activations of length {p.shape[1]} do not fit codes of {16 * mw} columns")
    if mw % 4:
        codes_i32 = torch.nn.functional.pad(codes_i32, (0, (-mw) % 4))
        mw = codes_i32.shape[-1]
    act, sums = activation_planes(p, q, mw)
    return launch_mma(codes_i32.contiguous(), act, sums, out)


def read_xor(buf: torch.Tensor, out: torch.Tensor | None = None, *, blocks_per_sm: int = 8,
             unroll: int = 4, pdl: bool = False) -> torch.Tensor:
    """Plain read of a CUDA buffer (bytes a multiple of 16), the benchmark's bandwidth baseline: every
    16 bytes loaded once, XORed into one word per warp of ``out`` (int32, at least 8 words a block).
    Returns ``out``."""
    import ctypes
    nbytes = buf.numel() * buf.element_size()
    if not buf.is_contiguous() or nbytes % 16:
        raise ValueError("the read baseline needs a contiguous buffer of a multiple of 16 bytes")
    index, sms, cap = _device(buf)
    n16 = nbytes // 16
    grid = max(1, min(-(-n16 // (256 * unroll)), blocks_per_sm * sms))
    if out is None:
        out = torch.empty(8 * grid, dtype=torch.int32, device=buf.device)
    elif out.numel() < 8 * grid or out.dtype != torch.int32:
        raise ValueError(f"out must be int32 with at least {8 * grid} words")
    k = _mma_kernel(f"read_xor<{unroll}>", index)
    k.launch((grid,), (256,), [ctypes.c_void_p(buf.data_ptr()), ctypes.c_longlong(n16),
                               ctypes.c_void_p(out.data_ptr())],
             torch.cuda.current_stream(index).cuda_stream, pdl=pdl and cap[0] >= 9)
    return out
