"""The golden model: Fairy2i / Fairy±i math, float and bit-exact integer.

Everything in fairyhw (RTL, co-simulation, kernels, cycle model) is checked against these functions.
The design notes (``docs/design.md``) state the same math in prose; the names follow them.

Codes
    A weight code ``k`` in {0, 1, 2, 3} stands for ``i**k``: 0 = +1, 1 = +i, 2 = -1, 3 = -i.
    In the integer decomposition a code is the pair ``(a, b)`` with the weight ``s_re*a + i*s_im*b``:
    code 0 -> (1, 0), 1 -> (0, 1), 2 -> (-1, 0), 3 -> (0, -1).

Integer sums
    For int8 activations ``x = sr*p + i*si*q`` and one stage's codes, the hardware accumulates the four
    sums ``Σ a p, Σ a q, Σ b p, Σ b q`` per output row (the ``SUM_PARTS`` order). For the W matrix the
    input is ``conj(x)``, so ``q`` enters negated.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from .. import FairyError
from .widths import accumulator_width  # noqa: F401  (the integer contract, torch-free)

__all__ = [
    "CODE_A", "CODE_B", "SUM_PARTS", "Stage", "phase_codes", "phase_quant", "dequant_stage",
    "widely_linear", "widely_linear_inverse", "residual_quant", "dequant_stages", "phase_quant_ste",
    "ActQuant", "quantize_activations", "dequant_activations", "integer_sums", "merge_sums",
    "rescale", "accumulator_width", "SCALE_MIN",
]

SCALE_MIN = 1e-6
#: Order of the four integer sums of one (stage, matrix): Σ a p, Σ a q, Σ b p, Σ b q.
SUM_PARTS = ("ap", "aq", "bp", "bq")
#: Real-axis coefficient a of each code (code 0 = +1, 2 = -1).
CODE_A = torch.tensor([1, 0, -1, 0], dtype=torch.int8)
#: Imaginary-axis coefficient b of each code (code 1 = +i, 3 = -i).
CODE_B = torch.tensor([0, 1, 0, -1], dtype=torch.int8)


def _check_float(name: str, t: torch.Tensor) -> None:
    if not isinstance(t, torch.Tensor):
        raise FairyError(f"{name} must be a torch.Tensor, not {type(t).__name__}")
    if not t.is_floating_point():
        raise FairyError(f"{name} must be a floating-point tensor, not {t.dtype}")
    if t.numel() == 0:
        raise FairyError(f"{name} must not be empty, got shape {tuple(t.shape)}")
    if not bool(torch.isfinite(t).all()):
        bad = int((~torch.isfinite(t)).sum())
        raise FairyError(f"{name} holds {bad} NaN or Inf values")


def _check_no_overflow(name: str, source: torch.Tensor, *results) -> None:
    """A finite input whose derived tensors or sums are not finite overflowed float32 arithmetic."""
    for r in results:
        bad = not bool(torch.isfinite(r).all()) if isinstance(r, torch.Tensor) else \
            not math.isfinite(float(r))
        if bad:
            amax = float(source.detach().abs().max())
            raise FairyError(f"{name}: values up to {amax:.3g} overflow float32 arithmetic "
                             f"(its largest finite value is 3.4e+38; scale the weights down)")


def _split(w) -> tuple[torch.Tensor, torch.Tensor]:
    if isinstance(w, tuple):
        wr, wi = w
    elif isinstance(w, torch.Tensor) and w.is_complex():
        wr, wi = w.real, w.imag
    else:
        raise FairyError(
            f"complex weights must be a complex tensor or a (real, imag) pair, not "
            f"{getattr(w, 'dtype', type(w).__name__)}")
    return wr, wi


# --------------------------------------------------------------------------------------------------
# PhaseQuant
# --------------------------------------------------------------------------------------------------

def phase_codes(wr: torch.Tensor, wi: torch.Tensor) -> torch.Tensor:
    """Codes (uint8, ``i**k``) of the complex values ``wr + i*wi`` by angle sector.

    Closed form, never atan2: ``|wr| > |wi|`` gives ±1 by the sign of ``wr``; ``|wi| > |wr|`` gives ±i by
    the sign of ``wi``; ties go counter-clockwise (quadrant I -> +i, II -> -1, III -> -i, IV -> +1), and
    a zero pair follows the sign bit of ``wr`` ((0, 0) -> +1, (-0, -0) -> -1), as atan2's sectors do.
    """
    ar, ai = wr.abs(), wi.abs()
    pos_r, pos_i = wr > 0, wi > 0
    u8 = torch.uint8

    def c(v):
        return torch.tensor(v, dtype=u8)

    # Nonzero ties: I (r>0, i>0) -> 1, II (r<0, i>0) -> 2, III (r<0, i<0) -> 3, IV (r>0, i<0) -> 0.
    tie = torch.where(pos_r, torch.where(pos_i, c(1), c(0)), torch.where(pos_i, c(2), c(3)))
    tie = torch.where(ar == 0, torch.where(torch.signbit(wr), c(2), c(0)), tie)
    return torch.where(ar > ai, torch.where(pos_r, c(0), c(2)),
                       torch.where(ai > ar, torch.where(pos_i, c(1), c(3)), tie))


@dataclass(frozen=True)
class Stage:
    """One PhaseQuant stage: codes (uint8, any shape) and the axis scales.

    The quantized tensor is ``s_re*a + i*s_im*b`` with ``a = CODE_A[codes]``, ``b = CODE_B[codes]``.
    """

    codes: torch.Tensor
    s_re: float
    s_im: float


def phase_quant(w, *, scales: str = "fairy2i", name: str = "weight") -> Stage:
    """PhaseQuant of a complex tensor (complex dtype, or a ``(real, imag)`` pair of float tensors).

    Parameters
    ----------
    scales : {"fairy2i", "ifairy"}
        ``"fairy2i"`` (the official Fairy2i code): ``s_re`` is the mean ``|wr|`` over entries coded ±1
        and ``s_im`` the mean ``|wi|`` over entries coded ±i. ``"ifairy"``: the means of ``|wr|`` and
        ``|wi|`` over all entries. Both are clamped to at least ``SCALE_MIN`` (an axis with no entries
        gets ``SCALE_MIN``). Means are accumulated in float64.
    """
    wr, wi = _split(w)
    _check_float(f"{name} (real part)", wr)
    _check_float(f"{name} (imaginary part)", wi)
    if wr.shape != wi.shape:
        raise FairyError(f"{name}: real and imaginary parts differ in shape, "
                         f"{tuple(wr.shape)} and {tuple(wi.shape)}")
    codes = phase_codes(wr, wi)
    f64 = torch.float64
    if scales == "fairy2i":
        real_axis = (codes & 1) == 0
        n_re = int(real_axis.sum())
        n_im = real_axis.numel() - n_re
        s_re = float(torch.where(real_axis, wr.abs(), 0).sum(dtype=f64)) / n_re if n_re else 0.0
        s_im = float(torch.where(real_axis, 0, wi.abs()).sum(dtype=f64)) / n_im if n_im else 0.0
    elif scales == "ifairy":
        s_re = float(wr.abs().sum(dtype=f64)) / wr.numel()
        s_im = float(wi.abs().sum(dtype=f64)) / wi.numel()
    else:
        raise FairyError(f"scales must be 'fairy2i' or 'ifairy', not {scales!r}")
    return Stage(codes, max(s_re, SCALE_MIN), max(s_im, SCALE_MIN))


def dequant_stage(stage: Stage, dtype=torch.float32) -> tuple[torch.Tensor, torch.Tensor]:
    """The quantized tensor of one stage as a ``(real, imag)`` pair."""
    idx = stage.codes.long()
    return (CODE_A.to(dtype)[idx] * stage.s_re, CODE_B.to(dtype)[idx] * stage.s_im)


def residual_quant(w, stages: int, *, scales: str = "fairy2i", name: str = "weight") -> list[Stage]:
    """Recursive residual PhaseQuant: ``Q0 = PQ(M), R1 = M - Q0, Q1 = PQ(R1), ...``.

    ``stages`` is T in 1..4 (W1 = 1, W2 = 2). The residual is formed in the input's dtype, as the
    official code does.
    """
    if isinstance(stages, bool) or not isinstance(stages, int):
        raise FairyError(f"stages must be an integer from 1 to 4, not {stages!r}")
    if not 1 <= stages <= 4:
        raise FairyError(f"stages must be an integer from 1 to 4, not {stages}")
    wr, wi = _split(w)
    _check_float(f"{name} (real part)", wr)
    _check_float(f"{name} (imaginary part)", wi)
    rr, ri = wr, wi
    out = []
    for t in range(stages):
        st = phase_quant((rr, ri), scales=scales, name=f"{name} stage {t}")
        out.append(st)
        if t + 1 < stages:
            qr, qi = dequant_stage(st, rr.dtype)
            rr, ri = rr - qr, ri - qi
            _check_no_overflow(name, torch.stack([wr.abs().max(), wi.abs().max()]), rr, ri)
    return out


def dequant_stages(stages: list[Stage], dtype=torch.float32) -> tuple[torch.Tensor, torch.Tensor]:
    """Sum of the stages' quantized tensors (``M_q = Q0 + ... + Q_{T-1}``), accumulated in float64."""
    qr = qi = None
    for st in stages:
        r, i = dequant_stage(st, torch.float64)
        qr = r if qr is None else qr + r
        qi = i if qi is None else qi + i
    return qr.to(dtype), qi.to(dtype)


class _PhaseQuantSTE(torch.autograd.Function):
    @staticmethod
    def forward(ctx, wr, wi, stages, scales):
        st = residual_quant((wr.detach(), wi.detach()), stages, scales=scales)
        qr, qi = dequant_stages(st, wr.dtype)
        return qr, qi

    @staticmethod
    def backward(ctx, gr, gi):
        return gr, gi, None, None


def phase_quant_ste(wr: torch.Tensor, wi: torch.Tensor, stages: int = 1, scales: str = "fairy2i"):
    """Quantize in the forward pass, pass gradients straight through (identity STE) in the backward."""
    return _PhaseQuantSTE.apply(wr, wi, stages, scales)


# --------------------------------------------------------------------------------------------------
# Widely-linear transform
# --------------------------------------------------------------------------------------------------

def widely_linear(a: torch.Tensor, *, name: str = "weight"):
    """Split a real ``(2n, 2m)`` matrix (out, in) into complex ``U`` and ``W`` of shape ``(n, m)``.

    ``A x~ = U x + W conj(x)`` with half-split pairing ``x = x~[:m] + i x~[m:]``, ``y = y~[:n] + i y~[n:]``.
    Returns ``((Ur, Ui), (Wr, Wi))`` in ``a``'s dtype.
    """
    _check_float(name, a)
    if a.dim() != 2:
        raise FairyError(f"{name} must be a 2-D matrix, not shape {tuple(a.shape)}")
    rows, cols = a.shape
    if rows % 2 or cols % 2:
        raise FairyError(f"{name} has an odd dimension, shape {tuple(a.shape)}: "
                         "the widely-linear form needs both even")
    n, m = rows // 2, cols // 2
    a11, a12, a21, a22 = a[:n, :m], a[:n, m:], a[n:, :m], a[n:, m:]
    u = ((a11 + a22) / 2, (a21 - a12) / 2)
    w = ((a11 - a22) / 2, (a12 + a21) / 2)
    _check_no_overflow(name, a, *u, *w)
    return u, w


def widely_linear_inverse(u, w) -> torch.Tensor:
    """The real ``(2n, 2m)`` matrix of ``U x + W conj(x)``: inverse of :func:`widely_linear`."""
    ur, ui = _split(u)
    wr, wi = _split(w)
    top = torch.cat([wr + ur, wi - ui], dim=1)
    bottom = torch.cat([wi + ui, ur - wr], dim=1)
    return torch.cat([top, bottom], dim=0)


# --------------------------------------------------------------------------------------------------
# Activations
# --------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class ActQuant:
    """int8 activations ``x = sr*p + i*si*q`` per token. ``p, q``: int8 (..., m); ``sr, si``: (...,) float.

    ``sr`` and ``si`` are the dequantization steps, ``max|x_part| / 127``.
    """

    p: torch.Tensor
    q: torch.Tensor
    sr: torch.Tensor
    si: torch.Tensor


def quantize_activations(x, *, name: str = "activations") -> ActQuant:
    """Per-token int8 quantization of complex activations (complex tensor or (real, imag) pair).

    ``s = 127 / max(max|x_part|, 1e-5)`` over the last dimension, per part;
    ``q = clamp(round_half_even(x_part * s), -128, 127)``. Computed in float32.
    """
    xr, xi = _split(x)
    _check_float(f"{name} (real part)", xr)
    _check_float(f"{name} (imaginary part)", xi)

    def one(v):
        v = v.float()
        s = 127.0 / v.abs().amax(dim=-1, keepdim=True).clamp(min=1e-5)
        q = torch.round(v * s).clamp(-128, 127).to(torch.int8)   # torch.round is half-to-even
        return q, (1.0 / s).squeeze(-1)

    p, sr = one(xr)
    q, si = one(xi)
    return ActQuant(p, q, sr, si)


def dequant_activations(act: ActQuant, dtype=torch.float32) -> tuple[torch.Tensor, torch.Tensor]:
    """``(sr*p, si*q)`` in ``dtype``."""
    return (act.p.to(dtype) * act.sr.to(dtype).unsqueeze(-1),
            act.q.to(dtype) * act.si.to(dtype).unsqueeze(-1))


# --------------------------------------------------------------------------------------------------
# Integer path
# --------------------------------------------------------------------------------------------------

def integer_sums(codes: torch.Tensor, p: torch.Tensor, q: torch.Tensor, *, conj: bool = False
                 ) -> torch.Tensor:
    """The four integer sums of one stage's codes ``(n, m)`` with int8 activations ``p, q`` ``(..., m)``.

    Returns int64 ``(..., n, 4)`` in ``SUM_PARTS`` order. ``conj=True`` computes on ``conj(x)`` (the W
    matrix): ``q`` enters negated. The matmul runs in float64, exact since ``|sum| <= 128*m < 2**53``.
    """
    if codes.dim() != 2 or p.shape[-1] != codes.shape[1] or p.shape != q.shape:
        raise FairyError(f"codes {tuple(codes.shape)} and activations {tuple(p.shape)}, "
                         f"{tuple(q.shape)} do not match")
    idx = codes.long()
    a = CODE_A.double()[idx]
    b = CODE_B.double()[idx]
    pd, qd = p.double(), q.double()
    if conj:
        qd = -qd
    parts = [pd @ a.T, qd @ a.T, pd @ b.T, qd @ b.T]
    return torch.stack(parts, dim=-1).round().to(torch.int64)


def merge_sums(sums: torch.Tensor) -> torch.Tensor:
    """Split sums ``(..., 4)`` to the merged (swap-mux) complex accumulator ``(..., 2)``:
    ``re = Σap - Σbq``, ``im = Σaq + Σbp``. Exact as integers; equal to the split result only when
    ``s_re = s_im`` and ``sr = si``."""
    return torch.stack([sums[..., 0] - sums[..., 3], sums[..., 1] + sums[..., 2]], dim=-1)


def rescale(sums: torch.Tensor, stage: Stage, sr: torch.Tensor, si: torch.Tensor
            ) -> tuple[torch.Tensor, torch.Tensor]:
    """Float output ``(re, im)`` of one stage's integer sums ``(..., n, 4)`` (computed on x or conj(x)).

    ``re = s_re*sr*Σap - s_im*si*Σbq``, ``im = s_re*si*Σaq + s_im*sr*Σbp``, in float64.
    """
    s = sums.double()
    sr = sr.double().unsqueeze(-1)
    si = si.double().unsqueeze(-1)
    re = stage.s_re * sr * s[..., 0] - stage.s_im * si * s[..., 3]
    im = stage.s_re * si * s[..., 1] + stage.s_im * sr * s[..., 2]
    return re, im
