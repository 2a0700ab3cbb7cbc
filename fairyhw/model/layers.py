"""Drop-in torch modules for quantized layers and :func:`convert` for whole models."""

from __future__ import annotations

import fnmatch

import torch
import torch.nn as nn
import torch.nn.functional as F

from .. import FairyError
from . import golden as g

__all__ = ["FairyLinear", "FairyComplexLinear", "convert", "quantize_linear_weight"]


def quantize_linear_weight(a: torch.Tensor, stages: int, *, scales: str = "fairy2i",
                           name: str = "weight"):
    """Widely-linear transform of a real ``(2n, 2m)`` weight, then T residual stages of U and W.

    Returns ``(u_stages, w_stages)``, two lists of :class:`~fairyhw.model.golden.Stage` with ``(n, m)`` codes.
    """
    u, w = g.widely_linear(a.detach().float(), name=name)
    return (g.residual_quant(u, stages, scales=scales, name=f"{name} U"),
            g.residual_quant(w, stages, scales=scales, name=f"{name} W"))


def _stages_buffers(module: nn.Module, prefix: str, stages: list[g.Stage]) -> None:
    module.register_buffer(f"{prefix}_codes", torch.stack([s.codes for s in stages]))
    module.register_buffer(f"{prefix}_scales", torch.tensor([[s.s_re, s.s_im] for s in stages],
                                                            dtype=torch.float64))


def _stages_of(codes: torch.Tensor, scales: torch.Tensor) -> list[g.Stage]:
    return [g.Stage(codes[t], float(scales[t, 0]), float(scales[t, 1])) for t in range(len(codes))]


class FairyLinear(nn.Module):
    """A Fairy2i quantized linear layer, ``y~ = A_q x~ + bias`` with ``A_q`` from T stages of U and W.

    ``forward`` is the float path: ``F.linear(x, A_q)`` with the reassembled dense matrix (cached).
    :meth:`forward_int8` is the hardware path: int8 activations, the integer sums, then the rescale.
    """

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor | None = None, *, stages: int = 2,
                 scales: str = "fairy2i", name: str = "weight"):
        super().__init__()
        if not isinstance(weight, torch.Tensor):
            raise FairyError(f"{name} must be a real torch.Tensor (out, in), not {type(weight).__name__}")
        if weight.is_complex():
            raise FairyError(f"{name} is complex ({weight.dtype}): FairyLinear takes a real (out, in) "
                             "matrix; use FairyComplexLinear for a complex one")
        if weight.dim() != 2:
            raise FairyError(f"{name} must be a 2-D matrix (out, in), not shape {tuple(weight.shape)}")
        if bias is not None:
            if not isinstance(bias, torch.Tensor) or not bias.is_floating_point():
                raise FairyError(f"bias must be a real floating-point torch.Tensor, not "
                                 f"{getattr(bias, 'dtype', type(bias).__name__)}")
            if tuple(bias.shape) != (weight.shape[0],):
                raise FairyError(f"bias must have shape ({weight.shape[0]},) to match {name}, not "
                                 f"{tuple(bias.shape)}")
        u_st, w_st = quantize_linear_weight(weight, stages, scales=scales, name=name)
        self.out_features, self.in_features = weight.shape
        self.stages = stages
        _stages_buffers(self, "u", u_st)
        _stages_buffers(self, "w", w_st)
        self.bias = None if bias is None else nn.Parameter(bias.detach().clone(), requires_grad=False)
        self.register_buffer("weight_q", self.dense_weight(weight.dtype), persistent=False)

    @property
    def u_stages(self) -> list[g.Stage]:
        return _stages_of(self.u_codes, self.u_scales)

    @property
    def w_stages(self) -> list[g.Stage]:
        return _stages_of(self.w_codes, self.w_scales)

    def dense_weight(self, dtype=torch.float32) -> torch.Tensor:
        """The real ``(2n, 2m)`` matrix ``A_q`` that the quantized layer applies."""
        return g.widely_linear_inverse(g.dequant_stages(self.u_stages, torch.float64),
                                       g.dequant_stages(self.w_stages, torch.float64)).to(dtype)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.weight_q.to(x.dtype),
                        None if self.bias is None else self.bias.to(x.dtype))

    def _check_input(self, x) -> None:
        if not isinstance(x, torch.Tensor) or not x.is_floating_point():
            raise FairyError(f"input must be a real floating-point torch.Tensor, not "
                             f"{getattr(x, 'dtype', type(x).__name__)}")
        if x.dim() == 0 or x.shape[-1] != self.in_features:
            raise FairyError(f"input must have shape (..., {self.in_features}), not {tuple(x.shape)}")

    def quantize_input(self, x: torch.Tensor) -> g.ActQuant:
        """Half-split pairing of a real input ``(..., 2m)`` and its per-token int8 quantization."""
        self._check_input(x)
        m = self.in_features // 2
        return g.quantize_activations((x[..., :m], x[..., m:]))

    def integer_sums(self, act: g.ActQuant) -> torch.Tensor:
        """int64 ``(..., T, 2, n, 4)``: per stage, U then W (on conj x), the four sums per row."""
        per_t = []
        for u, w in zip(self.u_stages, self.w_stages):
            per_t.append(torch.stack([g.integer_sums(u.codes, act.p, act.q),
                                      g.integer_sums(w.codes, act.p, act.q, conj=True)], dim=-3))
        return torch.stack(per_t, dim=-4)

    def rescale(self, sums: torch.Tensor, act: g.ActQuant) -> torch.Tensor:
        """Real output ``(..., 2n)`` (float64, before bias) of :meth:`integer_sums`."""
        re = im = 0
        for t, (u, w) in enumerate(zip(self.u_stages, self.w_stages)):
            for mi, st in enumerate((u, w)):
                r, i = g.rescale(sums[..., t, mi, :, :], st, act.sr, act.si)
                re, im = re + r, im + i
        return torch.cat([re, im], dim=-1)

    def forward_int8(self, x: torch.Tensor) -> torch.Tensor:
        """The hardware path: int8 activations, exact integer sums, rescale, bias. Float64 output."""
        self._check_input(x)
        if x.numel() == 0:        # an empty batch gives an empty result, as forward does
            return x.new_zeros((*x.shape[:-1], self.out_features), dtype=torch.float64)
        act = self.quantize_input(x)
        y = self.rescale(self.integer_sums(act), act)
        return y if self.bias is None else y + self.bias.double()

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, stages={self.stages}"


class FairyComplexLinear(nn.Module):
    """The Fairy±i native complex layer ``y = W conj(x)``, one PhaseQuant stage (or T residual stages).

    ``weight`` is complex ``(n, m)`` (or a (real, imag) pair). Inputs and outputs are complex.
    """

    def __init__(self, weight, *, stages: int = 1, scales: str = "ifairy", name: str = "weight"):
        super().__init__()
        st = g.residual_quant(weight, stages, scales=scales, name=name)
        _stages_buffers(self, "w", st)
        self.out_features, self.in_features = st[0].codes.shape
        self.stages = stages

    @property
    def w_stages(self) -> list[g.Stage]:
        return _stages_of(self.w_codes, self.w_scales)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        qr, qi = g.dequant_stages(self.w_stages, torch.float64)
        w = torch.complex(qr, qi).to(x.dtype if x.is_complex() else torch.complex64)
        return torch.conj(x) @ w.T

    def integer_sums(self, act: g.ActQuant) -> torch.Tensor:
        """int64 ``(..., T, n, 4)`` on conj(x)."""
        return torch.stack([g.integer_sums(s.codes, act.p, act.q, conj=True)
                            for s in self.w_stages], dim=-3)

    def forward_int8(self, x: torch.Tensor) -> torch.Tensor:
        act = g.quantize_activations(x)
        sums = self.integer_sums(act)
        re = im = 0
        for t, st in enumerate(self.w_stages):
            r, i = g.rescale(sums[..., t, :, :], st, act.sr, act.si)
            re, im = re + r, im + i
        return torch.complex(re, im)


def convert(model: nn.Module, stages: int = 2, skip=(), *, scales: str = "fairy2i",
            progress=None) -> nn.Module:
    """Replace every ``nn.Linear`` of ``model`` (in place) by a :class:`FairyLinear` with T stages.

    Layers with an odd dimension stay real ``nn.Linear``, as do layers whose qualified name matches a
    pattern of ``skip`` (fnmatch, e.g. ``"lm_head"`` or ``"*.mlp.*"``). Returns ``model``.
    ``progress`` is an optional callable taking each converted name.
    """
    if isinstance(skip, str):
        skip = (skip,)
    targets = []
    for name, mod in model.named_modules():
        if not isinstance(mod, nn.Linear):
            continue
        if any(fnmatch.fnmatchcase(name, pat) for pat in skip):
            continue
        if mod.in_features % 2 or mod.out_features % 2:
            continue
        targets.append(name)
    for name in targets:
        parent_name, _, child = name.rpartition(".")
        parent = model.get_submodule(parent_name) if parent_name else model
        lin = getattr(parent, child)
        new = FairyLinear(lin.weight, lin.bias, stages=stages, scales=scales, name=name)
        setattr(parent, child, new.to(lin.weight.device))
        if progress is not None:
            progress(name)
    if not targets and not any(isinstance(m, nn.Linear) for m in model.modules()):
        raise FairyError(f"{type(model).__name__} has no nn.Linear layer to convert")
    return model
