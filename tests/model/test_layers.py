"""FairyLinear, FairyComplexLinear and convert()."""

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from fairyhw import FairyError
from fairyhw.model import golden as g
from fairyhw.model.layers import FairyComplexLinear, FairyLinear, convert

from tests.conftest import tiny_llama


def test_float_forward_equals_dense_reassembly():
    torch.manual_seed(0)
    lin = nn.Linear(24, 16)
    q = FairyLinear(lin.weight, lin.bias, stages=2)
    x = torch.randn(5, 24)
    a_q = q.dense_weight(torch.float64)
    ref = F.linear(x.double(), a_q, lin.bias.detach().double())
    # float32 matmul of 24 terms: tolerance 1e-5 relative to the output scale.
    assert torch.allclose(q(x).double(), ref, rtol=0, atol=1e-5 * float(ref.abs().max()))
    # A_q is the widely-linear reassembly of the quantized U and W.
    u, w = g.dequant_stages(q.u_stages, torch.float64), g.dequant_stages(q.w_stages, torch.float64)
    assert torch.equal(a_q, g.widely_linear_inverse(u, w))


def test_int8_forward_matches_float_forward_with_same_activations():
    torch.manual_seed(1)
    lin = nn.Linear(64, 32, bias=True)
    q = FairyLinear(lin.weight, lin.bias, stages=2)
    x = torch.randn(3, 64)
    act = q.quantize_input(x)
    xr, xi = g.dequant_activations(act, torch.float64)
    xq = torch.cat([xr, xi], dim=-1)
    ref = F.linear(xq, q.dense_weight(torch.float64), lin.bias.detach().double())
    # Both sides are float64 with at most 2*64 terms: 1e-12 relative to the output scale.
    assert torch.allclose(q.forward_int8(x), ref, rtol=0, atol=1e-12 * float(ref.abs().max()))
    sums = q.integer_sums(act)
    assert sums.shape == (3, 2, 2, 16, 4) and sums.dtype == torch.int64


def test_complex_linear_is_w_conj_x():
    torch.manual_seed(2)
    w = torch.complex(torch.randn(6, 10), torch.randn(6, 10))
    layer = FairyComplexLinear(w)
    x = torch.complex(torch.randn(2, 10), torch.randn(2, 10))
    qr, qi = g.dequant_stages(layer.w_stages, torch.float64)
    ref = torch.conj(x.to(torch.complex128)) @ torch.complex(qr, qi).T
    assert torch.allclose(layer(x.to(torch.complex128)), ref, rtol=0, atol=1e-12)
    act = g.quantize_activations(x)
    xq = torch.complex(*g.dequant_activations(act, torch.float64))
    ref8 = torch.conj(xq) @ torch.complex(qr, qi).T
    assert torch.allclose(layer.forward_int8(x), ref8, rtol=0, atol=1e-12 * float(ref8.abs().max()))


def test_convert_tiny_llama_replaces_every_linear():
    model = tiny_llama()
    x = torch.randint(0, 128, (1, 8))
    seen = []
    convert(model, stages=2, progress=seen.append)
    lin = [n for n, m in model.named_modules() if isinstance(m, nn.Linear)]
    fl = [n for n, m in model.named_modules() if isinstance(m, FairyLinear)]
    assert lin == [] and len(fl) == 2 * 7 + 1 and seen == fl
    out = model(x).logits
    assert out.shape == (1, 8, 128) and bool(torch.isfinite(out).all())


def test_convert_skip_and_odd_dimensions():
    model = nn.Sequential(nn.Linear(8, 6), nn.Linear(6, 5), nn.Linear(5, 4), nn.Linear(4, 4))
    convert(model, stages=1, skip=("3",))
    kinds = [type(m).__name__ for m in model]
    assert kinds == ["FairyLinear", "Linear", "Linear", "Linear"]


def test_convert_without_linear_layers():
    with pytest.raises(FairyError, match=r"^ReLU has no nn.Linear layer to convert$"):
        convert(nn.ReLU())
