"""The numerical cost of each variant: output SNR on real SmolLM2 layers."""

from __future__ import annotations
import math


# ---------------------------------------------------------------------------------------------------
# accuracy of the accumulator variants on real SmolLM2 layers

def variant_snr(accumulate: str, stages: int, layers: dict) -> float:
    """Output SNR (dB) of the variant's rescaled integer results against the float quantized model
    (the same quantized weights, float activations), over ``layers`` = {name: (weight, x)}.

    split: exact integer sums with per-part activation scales, rescaled per (stage, matrix).
    merged: one swap-mux complex accumulator, which is exact only with ``s_re = s_im`` and ``sr = si``:
    weights rescale with ``(s_re + s_im) / 2`` per stage and matrix, activations share one scale."""
    import torch
    from ..model import golden as g
    from ..model.layers import FairyLinear
    sig = err = 0.0
    for w, x in layers.values():
        layer = FairyLinear(w, stages=stages)
        ref = layer(x[None].float()).double()[0]        # float quantized model, float activations
        m = layer.in_features // 2
        xr, xi = x[:m], x[m:]
        if accumulate == "split":
            y = layer.forward_int8(x[None])[0]
        else:
            s = 127.0 / max(float(xr.abs().max()), float(xi.abs().max()), 1e-5)
            p = torch.round(xr * s).clamp(-128, 127).to(torch.int8)
            q = torch.round(xi * s).clamp(-128, 127).to(torch.int8)
            re = im = 0
            for u, wst in zip(layer.u_stages, layer.w_stages):
                for st, conj in ((u, False), (wst, True)):
                    mg = g.merge_sums(g.integer_sums(st.codes, p, q, conj=conj)).double()
                    k = (st.s_re + st.s_im) / 2 / s
                    re, im = re + k * mg[..., 0], im + k * mg[..., 1]
            y = torch.cat([re, im])
        sig += float((ref ** 2).sum())
        err += float(((y - ref) ** 2).sum())
    return 10 * math.log10(sig / err) if err > 0 else float("inf")


def smollm2_block0():
    """SmolLM2 q..down of block 0 with real activations (the co-simulation's capture, block 0 only)."""
    from ..model.vectors import capture_smollm2
    return capture_smollm2(blocks=(0,))
