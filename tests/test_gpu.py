"""The Triton kernel's integer sums equal the golden path bit for bit (skips without a CUDA GPU)."""

import pytest
import torch

from fairyhw import golden as g
from fairyhw.kernels.gpu import available, fairy_sums, fairy_sums_dot, fairy_sums_dp4a, pack_codes_i32

pytestmark = pytest.mark.skipif(not available(), reason="needs a CUDA GPU and Triton")
KERNELS = pytest.mark.parametrize("kernel", [fairy_sums, fairy_sums_dot, fairy_sums_dp4a],
                                  ids=["simt", "dot", "dp4a"])


@KERNELS
@pytest.mark.parametrize("n, m, batch", [(1, 1, 1), (17, 33, 2), (300, 200, 1), (64, 1000, 4)])
def test_gpu_sums_random(kernel, n, m, batch):
    gen = torch.Generator().manual_seed(n * m)
    codes = torch.randint(0, 4, (4, n, m), dtype=torch.uint8, generator=gen)
    p = torch.randint(-128, 128, (batch, m), dtype=torch.int8, generator=gen)
    q = torch.randint(-128, 128, (batch, m), dtype=torch.int8, generator=gen)
    got = kernel(pack_codes_i32(codes).cuda(), p.cuda(), q.cuda()).cpu().long()
    ref = torch.stack([g.integer_sums(codes[k], p, q, conj=k % 2 == 1) for k in range(4)], dim=1)
    assert torch.equal(got, ref)


@KERNELS
def test_gpu_sums_extremes(kernel):
    m = 5504     # LLaMA-2 7B down_proj: the longest input
    codes = torch.full((4, 8, m), 2, dtype=torch.uint8)
    p = torch.full((1, m), -128, dtype=torch.int8)
    got = kernel(pack_codes_i32(codes).cuda(), p.cuda(), p.cuda()).cpu().long()
    ref = torch.stack([g.integer_sums(codes[k], p, p, conj=k % 2 == 1) for k in range(4)], dim=1)
    assert torch.equal(got, ref) and int(got.abs().max()) == 128 * m


@KERNELS
def test_gpu_sums_real_layer(kernel):
    """A quantized real-shaped layer with real int8 activations from the FairyLinear path."""
    from fairyhw.layers import FairyLinear
    gen = torch.Generator().manual_seed(3)
    layer = FairyLinear(torch.randn(576, 576, generator=gen) * 0.05, stages=2)
    act = layer.quantize_input(torch.randn(2, 576, generator=gen))
    codes = torch.stack([c for u, w in zip(layer.u_stages, layer.w_stages) for c in (u.codes, w.codes)])
    got = kernel(pack_codes_i32(codes).cuda(), act.p.cuda(), act.q.cuda()).cpu().long()
    ref = layer.integer_sums(act)                       # (B, T, 2, n, 4)
    assert torch.equal(got, ref.reshape(2, 4, 288, 4))
