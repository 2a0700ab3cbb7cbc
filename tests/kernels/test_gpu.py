"""The Triton kernel's integer sums equal the golden path bit for bit (skips without a CUDA GPU)."""

import pytest
import torch

from fairyhw.model import golden as g
from fairyhw.kernels.gpu.kernel import (activation_planes, available, available_mma, fairy_sums, fairy_sums_dot,
                                 fairy_sums_dp4a, fairy_sums_mma, launch_mma, pack_codes_i32,
                                 read_xor)

pytestmark = pytest.mark.skipif(not available(), reason="needs a CUDA GPU and Triton")
needs_mma = pytest.mark.skipif(not available() or not available_mma(),
                               reason="needs int8 mma.sync (compute capability 8.0+) and NVRTC")
KERNELS = pytest.mark.parametrize("kernel", [fairy_sums, fairy_sums_dot, fairy_sums_dp4a,
                                             pytest.param(fairy_sums_mma, marks=needs_mma)],
                                  ids=["simt", "dot", "dp4a", "mma"])


def _random_case(n, m, batch, seed):
    """Random codes (4, n, m) and int8 p, q (batch, m) with the golden sums (batch, 4, n, 4), the odd
    matrices on conj(x)."""
    gen = torch.Generator().manual_seed(seed)
    codes = torch.randint(0, 4, (4, n, m), dtype=torch.uint8, generator=gen)
    p = torch.randint(-128, 128, (batch, m), dtype=torch.int8, generator=gen)
    q = torch.randint(-128, 128, (batch, m), dtype=torch.int8, generator=gen)
    ref = torch.stack([g.integer_sums(codes[k], p, q, conj=k % 2 == 1) for k in range(4)], dim=1)
    return codes, p, q, ref


@KERNELS
@pytest.mark.parametrize("n, m, batch", [(1, 1, 1), (17, 33, 2), (300, 200, 1), (64, 1000, 4)])
def test_gpu_sums_random(kernel, n, m, batch):
    codes, p, q, ref = _random_case(n, m, batch, n * m)
    got = kernel(pack_codes_i32(codes).cuda(), p.cuda(), q.cuda()).cpu().long()
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
    from fairyhw.model.layers import FairyLinear
    gen = torch.Generator().manual_seed(3)
    layer = FairyLinear(torch.randn(576, 576, generator=gen) * 0.05, stages=2)
    act = layer.quantize_input(torch.randn(2, 576, generator=gen))
    codes = torch.stack([c for u, w in zip(layer.u_stages, layer.w_stages) for c in (u.codes, w.codes)])
    got = kernel(pack_codes_i32(codes).cuda(), act.p.cuda(), act.q.cuda()).cpu().long()
    ref = layer.integer_sums(act)                       # (B, T, 2, n, 4)
    assert torch.equal(got, ref.reshape(2, 4, 288, 4))


@KERNELS
def test_gpu_sums_smollm2_layer(kernel, smollm2_layer_cases):
    """SmolLM2 block 0's q_proj and down_proj, W2, with int8 activations from the FairyLinear path."""
    for name, codes, p, q, ref in smollm2_layer_cases:
        got = kernel(pack_codes_i32(codes).cuda(), p.cuda(), q.cuda()).cpu().long()
        assert torch.equal(got, ref), name


@needs_mma
@pytest.mark.parametrize("batch", range(1, 9))
@pytest.mark.parametrize("ksplit, unroll, blocks", [(1, 1, None), (2, 4, 3), (4, 2, 1), (8, 1, 2)])
@pytest.mark.parametrize("pre", [True, False])
def test_mma_configs(batch, ksplit, unroll, blocks, pre):
    """Every tokens x (warps per tile, chunks per load, prefetch or not) instantiation, with grids of 1
    to 10 blocks for the 10 tiles; 37 rows (a partial tile) and 1000 inputs (a partial 16-word chunk)."""
    codes, p, q, ref = _random_case(37, 1000, batch, batch)
    ci = pack_codes_i32(codes).cuda()
    act, sums = activation_planes(p.cuda(), q.cuda(), ci.shape[-1])
    got = launch_mma(ci, act, sums, ksplit=ksplit, unroll=unroll, blocks=blocks, pre=pre).cpu().long()
    assert torch.equal(got, ref)


_TOK_CONFIGS = [dict(ksplit=1, unroll=1, pre=False), dict(ksplit=2, unroll=4, blocks=3, pre=True),
                dict(ksplit=4, unroll=2, blocks=1, pre=False), dict(ksplit=2, unroll=1, blocks=2, pre=True)]


@needs_mma
@pytest.mark.parametrize("batch", [1, 2, 3, 4, 5, 8, 12, 16])
@pytest.mark.parametrize("sets", [1, 2, 4])
def test_mma_token_columns(batch, sets):
    """The token-column kernel: every accumulator-set count with 1 to 16 tokens (partial column groups
    included) on 37 rows and 1000 inputs (partial tile and chunk), cycling through four walks."""
    codes, p, q, ref = _random_case(37, 1000, batch, 100 + batch)
    ci = pack_codes_i32(codes).cuda()
    act, sums = activation_planes(p.cuda(), q.cuda(), ci.shape[-1])
    cfg = _TOK_CONFIGS[(batch + sets) % len(_TOK_CONFIGS)]
    got = launch_mma(ci, act, sums, sets=sets, **cfg).cpu().long()
    assert torch.equal(got, ref), cfg


@needs_mma
@pytest.mark.parametrize("batch", [1, 4, 16])
def test_mma_extreme_sums(batch):
    """The largest sums a layer of 11008 inputs can give (every code -1 or -i, every activation -128):
    slot 3's accumulators carry 2^7 and stay within int32, every set count exact."""
    m = 11008
    codes = torch.full((4, 24, m), 2, dtype=torch.uint8)
    codes[:, 12:] = 3
    p = torch.full((batch, m), -128, dtype=torch.int8)
    ref = torch.stack([g.integer_sums(codes[k], p, p, conj=k % 2 == 1) for k in range(4)], dim=1)
    ci = pack_codes_i32(codes).cuda()
    act, sums = activation_planes(p.cuda(), p.cuda(), ci.shape[-1])
    for sets in ((0, 1, 2, 4) if batch <= 8 else (1, 2, 4)):
        assert torch.equal(launch_mma(ci, act, sums, sets=sets).cpu().long(), ref), sets


@needs_mma
@pytest.mark.parametrize("batch", [1, 2, 4, 8, 16])
@pytest.mark.parametrize("n, m", [(1000, 2048), (2100, 2048), (8200, 2048), (600, 5504)])
def test_mma_default_configs(batch, n, m):
    """Every branch of mma_config (by rows, row length and tokens) as fairy_sums_mma picks it, on
    whole tiles and chunks (the kernels without bounds checks)."""
    codes, p, q, ref = _random_case(n, m, batch, n + batch)
    got = fairy_sums_mma(pack_codes_i32(codes).cuda(), p.cuda(), q.cuda()).cpu().long()
    assert torch.equal(got, ref)


@needs_mma
def test_mma_pdl_chain():
    """Programmatic dependent launches back to back, each reading what the one before wrote: the
    activations are read only after the previous launch completes, so every result is exact."""
    gen = torch.Generator().manual_seed(5)
    n, m = 600, 2048
    codes = torch.randint(0, 4, (4, n, m), dtype=torch.uint8, generator=gen)
    ci = pack_codes_i32(codes).cuda()
    p = torch.randint(-128, 128, (1, m), dtype=torch.int8, generator=gen).cuda()
    act, sums = activation_planes(p, p, ci.shape[-1])
    big = torch.randint(0, 2**31 - 1, (4, 8192, 128), dtype=torch.int32).cuda()   # a slow launch first
    junk = torch.zeros(1, 2, 4, 128, dtype=torch.int32).cuda()
    outs = []
    for _ in range(3):
        launch_mma(big, junk, sums, pdl=True)
        act2 = act.clone()            # a plain torch kernel between: written just before the next read
        outs.append(launch_mma(ci, act2, sums, pdl=True))
    torch.cuda.synchronize()
    ref = torch.stack([g.integer_sums(codes[k], p.cpu(), p.cpu(), conj=k % 2 == 1) for k in range(4)], dim=1)
    assert all(torch.equal(o.cpu().long(), ref) for o in outs)


@needs_mma
def test_mma_rejects_bad_input():
    ci = pack_codes_i32(torch.zeros(4, 8, 64, dtype=torch.uint8)).cuda()
    act, sums = activation_planes(torch.zeros(17, 64, dtype=torch.int8).cuda(),
                                  torch.zeros(17, 64, dtype=torch.int8).cuda(), ci.shape[-1])
    with pytest.raises(ValueError, match="1 to 16 tokens"):
        launch_mma(ci, act, sums)
    with pytest.raises(ValueError, match="at most 8 tokens"):
        launch_mma(ci, act[:9], sums[:9], sets=0)
    with pytest.raises(ValueError, match="sets must be"):
        launch_mma(ci, act[:2], sums[:2], sets=3)
    with pytest.raises(ValueError, match="activations must be int32"):
        launch_mma(ci, act[:1, :, :, :4], sums[:1])


@needs_mma
def test_read_baseline_reads_every_byte():
    """The plain-read baseline's per-warp XORs combine to the XOR of the whole buffer."""
    buf = torch.randint(-2**31, 2**31 - 1, (1_000_003 * 4,), dtype=torch.int32).cuda()
    out = read_xor(buf).cpu().numpy()
    import numpy as np
    want = np.bitwise_xor.reduce(buf.cpu().numpy().view(np.uint32))
    assert np.bitwise_xor.reduce(out.view(np.uint32)) == want


needs_stream = pytest.mark.skipif(not available() or not available_mma()
                                  or torch.cuda.get_device_capability()[0] < 9,
                                  reason="needs bulk copies (compute capability 9.0+) and NVRTC")


@needs_stream
@pytest.mark.parametrize("b1", [False, True], ids=["slots", "bits"])
@pytest.mark.parametrize("n, m, warps, depth", [(1, 1, None, None), (300, 200, None, None),
                                                (600, 5504, None, None), (1000, 2048, 6, 2),
                                                (7, 48, 2, 3)])
def test_stream_kernel_exact(b1, n, m, warps, depth):
    """The streaming kernels (codes into shared memory by bulk copies) equal the golden path, on both
    layouts, with PDL; their copies-only and MMAs-only variants run."""
    from fairyhw.kernels.gpu.kernel import activation_bits, launch_stream, pack_codes_b1
    codes, p, q, ref = _random_case(n, m, 1, n + m)
    ci = pack_codes_i32(codes).cuda()
    if b1:
        ci, (act, sums) = pack_codes_b1(ci), activation_bits(p.cuda(), q.cuda(), ci.shape[-1])
    else:
        act, sums = activation_planes(p.cuda(), q.cuda(), ci.shape[-1])
    got = launch_stream(ci, act, sums, warps=warps, depth=depth, b1=b1, pdl=True)
    assert torch.equal(got.cpu().long(), ref)
    for kw in ({"read": True}, {"compute_only": True}):
        launch_stream(ci, act, sums, warps=warps, depth=depth, b1=b1, **kw)
    if b1 and ci.shape[-1] <= 128:          # the tile in registers before the refill
        got = launch_stream(ci, act, sums, warps=8, b1=True, pdl=True, pre=8)
        assert torch.equal(got.cpu().long(), ref)
    torch.cuda.synchronize()


@needs_stream
def test_persistent_kernel_exact():
    """The persistent kernel (every layer of a step in one launch) equals the golden path on each layer
    of a step of mixed shapes (rows of 1 to 22 chunks, several tiles a stage and one), run twice (the
    layer counters start again), with the producer's L2 prefetch at its default, off and past the
    step's last job from the start; every breakdown variant runs (and ends); bad plans are refused."""
    from fairyhw.kernels.gpu.kernel import (PERSIST_MAX_STAGES, PERSIST_MODES, PersistPlan, activation_bits,
                                            pack_codes_b1)
    cases = [_random_case(n, m, 1, 7 * n + m) for n, m in ((1, 1), (300, 200), (600, 5504), (7, 48),
                                                           (1000, 2048), (2100, 700))]
    layers = []
    for codes, p, q, _ in cases:
        ci = pack_codes_i32(codes).cuda()
        cs = pack_codes_b1(ci)
        layers.append((cs, *activation_bits(p.cuda(), q.cuda(), ci.shape[-1]),
                       torch.empty(1, *cs.shape[:2], 4, dtype=torch.int32, device="cuda")))
    plans = [PersistPlan(layers, prefetch=0), PersistPlan(layers, prefetch=PERSIST_MAX_STAGES),
             PersistPlan(layers)]
    for plan in plans:
        for _ in range(2):
            for layer in layers:
                layer[3].fill_(-1)
            plan.run()
            for (_, _, _, ref), layer in zip(cases, layers):
                assert torch.equal(layer[3].cpu().long(), ref)
    for mode in PERSIST_MODES:
        plan.run(mode)
    torch.cuda.synchronize()
    with pytest.raises(ValueError, match="mode must be"):
        plan.run("fast")
    with pytest.raises(ValueError, match="at least one layer"):
        PersistPlan([])
    with pytest.raises(ValueError, match="out must be"):
        PersistPlan([layers[0][:3] + (layers[0][3][..., :2],)])
    with pytest.raises(ValueError, match="prefetch must be"):
        PersistPlan(layers, prefetch=-1)


@needs_stream
def test_persistent_kernel_many_layers():
    """A step of 70 small layers (each of the block's four slots of per-layer counts used again and
    again) equals the golden path on every layer."""
    from fairyhw.kernels.gpu.kernel import PersistPlan, activation_bits, pack_codes_b1
    cases = [_random_case(n, m, 1, 1000 + i) for i, (n, m) in enumerate([(40, 96), (300, 256), (9, 520)] * 23
                                                                        + [(64, 64)])]
    layers = []
    for codes, p, q, _ in cases:
        ci = pack_codes_i32(codes).cuda()
        cs = pack_codes_b1(ci)
        layers.append((cs, *activation_bits(p.cuda(), q.cuda(), ci.shape[-1]),
                       torch.full((1, *cs.shape[:2], 4), -1, dtype=torch.int32, device="cuda")))
    PersistPlan(layers).run()
    for (_, _, _, ref), layer in zip(cases, layers):
        assert torch.equal(layer[3].cpu().long(), ref)


@needs_stream
def test_mma_rates_measured():
    """The instruction-rate probe (bench step 1b) checks the wgmma form's fragment layout against an
    int64 product on the host (it raises if they differ) and gives a positive cycle count for every
    form, each a throughput no slower than its own latency."""
    from fairyhw.kernels.gpu.kernel import RATE_FORMS, mma_rates
    rows = mma_rates(iters=200)
    assert [r["instruction"] for r in rows] == [f[0] for f in RATE_FORMS]
    for r in rows:
        assert 0 < r["throughput_cycles"] <= r["latency_cycles"]
