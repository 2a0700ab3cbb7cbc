"""The golden model: tie rule, scales, transform, residual stages, activations, integer path."""

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings, strategies as st
from hypothesis.extra import numpy as hnp

from fairyhw import FairyError
from fairyhw.model import golden as g


def angle_sector(re: float, im: float) -> int:
    """Reference: the sector of math.atan2 in float64 (exact on the tie cases used here)."""
    a = math.atan2(im, re)
    if -math.pi / 4 <= a < math.pi / 4:
        return 0
    if math.pi / 4 <= a < 3 * math.pi / 4:
        return 1
    if -3 * math.pi / 4 <= a < -math.pi / 4:
        return 3
    return 2


def codes_of(pairs):
    wr = torch.tensor([p[0] for p in pairs], dtype=torch.float32)
    wi = torch.tensor([p[1] for p in pairs], dtype=torch.float32)
    return g.phase_codes(wr, wi).tolist()


def test_tie_rule_exact_ties_and_signed_zeros():
    cases = {(1.0, 1.0): 1, (-1.0, 1.0): 2, (-1.0, -1.0): 3, (1.0, -1.0): 0,
             (0.0, 0.0): 0, (-0.0, -0.0): 2, (-0.0, 0.0): 2, (0.0, -0.0): 0,
             (2.5, 0.0): 0, (-2.5, 0.0): 2, (0.0, 2.5): 1, (0.0, -2.5): 3,
             (-2.5, -0.0): 2, (2.5, -0.0): 0, (-0.0, 3.0): 1, (-0.0, -3.0): 3}
    assert codes_of(list(cases)) == list(cases.values())
    # The closed form agrees with atan2's sectors wherever atan2 is exact.
    assert [angle_sector(*p) for p in cases] == list(cases.values())


finite = st.floats(-2.0**100, 2.0**100, allow_nan=False, width=32)


@given(st.lists(st.tuples(finite, finite), min_size=1, max_size=50))
def test_codes_follow_dominant_axis(pairs):
    for (re, im), c in zip(pairs, codes_of(pairs)):
        if abs(re) > abs(im):
            assert c == (0 if re > 0 else 2)
        elif abs(im) > abs(re):
            assert c == (1 if im > 0 else 3)
        else:
            assert c == angle_sector(re, im) if (re, im) != (0.0, 0.0) else c in (0, 2)


@given(st.floats(2.0**-100, 2.0**100, width=32), st.sampled_from([(1, 1), (-1, 1), (-1, -1), (1, -1)]))
def test_exact_ties_any_magnitude(mag, quadrant):
    sr, si = quadrant
    assert codes_of([(sr * mag, si * mag)]) == [{(1, 1): 1, (-1, 1): 2, (-1, -1): 3, (1, -1): 0}[quadrant]]


def test_scales_fairy2i_and_ifairy():
    wr = torch.tensor([3.0, -1.0, 0.5, 0.0])
    wi = torch.tensor([1.0, 0.5, -2.0, 4.0])
    s = g.phase_quant((wr, wi))
    assert s.codes.tolist() == [0, 2, 3, 1]
    assert s.s_re == pytest.approx((3.0 + 1.0) / 2, rel=1e-12)
    assert s.s_im == pytest.approx((2.0 + 4.0) / 2, rel=1e-12)
    f = g.phase_quant((wr, wi), scales="ifairy")
    assert f.s_re == pytest.approx(4.5 / 4) and f.s_im == pytest.approx(7.5 / 4)


def test_scales_empty_axis_clamped():
    s = g.phase_quant((torch.tensor([1.0, -2.0]), torch.tensor([0.0, 0.5])))
    assert s.codes.tolist() == [0, 2]
    assert s.s_im == g.SCALE_MIN
    z = g.phase_quant((torch.zeros(3), torch.zeros(3)))
    assert (z.s_re, z.s_im) == (g.SCALE_MIN, g.SCALE_MIN)


def test_ste_passes_gradient_straight_through():
    wr = torch.randn(8, 6, requires_grad=True)
    wi = torch.randn(8, 6, requires_grad=True)
    qr, qi = g.phase_quant_ste(wr, wi, 2)
    (qr * 3 + qi * 5).sum().backward()
    assert torch.equal(wr.grad, torch.full_like(wr, 3.0))
    assert torch.equal(wi.grad, torch.full_like(wi, 5.0))
    er, ei = g.dequant_stages(g.residual_quant((wr.detach(), wi.detach()), 2))
    assert torch.equal(qr, er) and torch.equal(qi, ei)


matrices = hnp.arrays(np.float32, st.tuples(st.integers(1, 6).map(lambda v: 2 * v),
                                            st.integers(1, 6).map(lambda v: 2 * v)),
                      elements=st.floats(-100, 100, width=32))


@given(matrices)
def test_widely_linear_round_trip(a):
    a = torch.from_numpy(a)
    u, w = g.widely_linear(a)
    back = g.widely_linear_inverse(u, w)
    # (x+y)/2 + (x-y)/2 in float32: at most one rounding of each half, so 2 ulp of max|a|.
    assert torch.allclose(back, a, rtol=0, atol=float(a.abs().max()) * 2.4e-7 + 1e-30)


def test_widely_linear_is_exact_equivalence():
    torch.manual_seed(0)
    a = torch.randn(6, 10, dtype=torch.float64)
    x = torch.randn(3, 10, dtype=torch.float64)
    (ur, ui), (wr, wi) = g.widely_linear(a)
    xc = torch.complex(x[:, :5], x[:, 5:])
    y = xc @ torch.complex(ur, ui).T + torch.conj(xc) @ torch.complex(wr, wi).T
    ref = x @ a.T
    assert torch.allclose(torch.cat([y.real, y.imag], -1), ref, rtol=0, atol=1e-12)


@settings(deadline=None, max_examples=30)
@given(st.integers(0, 10_000))
def test_residual_error_non_increasing(seed):
    gen = torch.Generator().manual_seed(seed)
    wr, wi = torch.randn(16, 24, generator=gen), torch.randn(16, 24, generator=gen)
    errs = []
    for t in range(1, 5):
        qr, qi = g.dequant_stages(g.residual_quant((wr, wi), t), torch.float64)
        errs.append(float(((wr.double() - qr) ** 2 + (wi.double() - qi) ** 2).sum()))
    assert all(b <= a * (1 + 1e-9) for a, b in zip(errs, errs[1:])), errs


def test_residual_stages_have_own_scales():
    torch.manual_seed(1)
    st2 = g.residual_quant(torch.randn(32, 32, dtype=torch.complex64), 2)
    assert len(st2) == 2 and st2[1].s_re < st2[0].s_re and st2[1].s_im < st2[0].s_im


def test_activation_quantizer_half_even_and_clamp():
    # absmax 127 makes the scale exactly 1, so values land on .5 exactly: half to even.
    xr = torch.tensor([[127.0, 0.5, 1.5, -2.5, -0.5, 3.4]])
    xi = torch.tensor([[0.0, 0.0, 0.0, 0.0, 0.0, 0.0]])
    a = g.quantize_activations((xr, xi))
    assert a.p.tolist() == [[127, 0, 2, -2, 0, 3]]
    assert a.q.tolist() == [[0, 0, 0, 0, 0, 0]] and a.si.item() == pytest.approx(1e-5 / 127)
    assert a.sr.item() == 1.0 and a.p.dtype == torch.int8


def test_activation_quantizer_per_token_and_part():
    x = torch.complex(torch.tensor([[1.0, -2.0], [10.0, 5.0]]), torch.tensor([[4.0, 0.0], [0.0, 1.0]]))
    a = g.quantize_activations(x)
    assert a.p.tolist() == [[64, -127], [127, 64]]     # 63.5 -> 64 (half even), 63.5 -> 64
    assert a.q.tolist() == [[127, 0], [0, 127]]
    assert torch.allclose(a.sr, torch.tensor([2 / 127, 10 / 127]))


def test_accumulator_width_formula():
    assert [g.accumulator_width(k) for k in (1, 2, 3, 4, 5, 2048, 4096, 5504)] == \
        [9, 10, 11, 11, 12, 20, 21, 22]
    for bad in (0, -1, 2.0, True):
        with pytest.raises(FairyError, match="input length must be a positive integer"):
            g.accumulator_width(bad)


@pytest.mark.parametrize("k", [1, 2, 7, 64, 2048, 5504])
@pytest.mark.parametrize("code", [0, 1, 2, 3])
def test_integer_sums_at_extremes_fit_the_width(k, code):
    codes = torch.full((2, k), code, dtype=torch.uint8)
    p = torch.full((k,), -128, dtype=torch.int8)
    w = g.accumulator_width(k)
    lo, hi = -(1 << (w - 1)), (1 << (w - 1)) - 1
    for conj in (False, True):
        s = g.integer_sums(codes, p, p, conj=conj)
        assert int(s.abs().max()) == 128 * k
        assert lo <= int(s.min()) and int(s.max()) <= hi
        assert lo <= int(g.merge_sums(s).min()) and int(g.merge_sums(s).max()) <= hi


def test_integer_sums_by_hand():
    codes = torch.tensor([[0, 1, 2, 3]], dtype=torch.uint8)
    p = torch.tensor([1, 2, 3, 4], dtype=torch.int8)
    q = torch.tensor([10, 20, 30, 40], dtype=torch.int8)
    assert g.integer_sums(codes, p, q).tolist() == [[1 - 3, 10 - 30, 2 - 4, 20 - 40]]
    assert g.integer_sums(codes, p, q, conj=True).tolist() == [[1 - 3, -10 + 30, 2 - 4, -20 + 40]]
    assert g.merge_sums(g.integer_sums(codes, p, q)).tolist() == [[-2 - (-20), -20 + (-2)]]


@settings(deadline=None, max_examples=40)
@given(st.integers(1, 9), st.integers(1, 40), st.integers(1, 3), st.integers(0, 2**31))
def test_integer_path_equals_float_path(n, m, batch, seed):
    """Rescaled integer sums equal the complex float product with the same int8 activations.

    Tolerance: both sides are float64 sums of at most 2*m terms of magnitude <= max|w|*max|x|, so
    relative 1e-12 of that bound covers their rounding differences."""
    gen = torch.Generator().manual_seed(seed)
    w = torch.complex(torch.randn(n, m, generator=gen), torch.randn(n, m, generator=gen))
    x = torch.complex(torch.randn(batch, m, generator=gen), torch.randn(batch, m, generator=gen))
    stages = g.residual_quant(w, 2)
    act = g.quantize_activations(x)
    xq = torch.complex(*g.dequant_activations(act, torch.float64))
    for conj in (False, True):
        re = im = 0
        ref = 0
        for s in stages:
            r, i = g.rescale(g.integer_sums(s.codes, act.p, act.q, conj=conj), s, act.sr, act.si)
            re, im = re + r, im + i
            qr, qi = g.dequant_stage(s, torch.float64)
            ref = ref + (torch.conj(xq) if conj else xq) @ torch.complex(qr, qi).T
        bound = 2 * m * float(xq.abs().max()) * sum(max(s.s_re, s.s_im) for s in stages)
        assert torch.allclose(torch.complex(re, im), ref, rtol=0, atol=1e-12 * bound)


@pytest.mark.parametrize("bad, msg", [
    ((torch.tensor([1.0, float("nan")]), torch.zeros(2)), r"weight \(real part\) holds 1 NaN or Inf values"),
    ((torch.zeros(2), torch.tensor([float("inf"), 0.0])), r"weight \(imaginary part\) holds 1 NaN or Inf values"),
    ((torch.tensor([1, 2]), torch.tensor([1, 2])), r"weight \(real part\) must be a floating-point tensor, not torch.int64"),
    ((torch.zeros(0), torch.zeros(0)), r"weight \(real part\) must not be empty, got shape \(0,\)"),
    ((torch.zeros(2), torch.zeros(3)), r"weight: real and imaginary parts differ in shape, \(2,\) and \(3,\)"),
])
def test_phase_quant_bad_input(bad, msg):
    with pytest.raises(FairyError, match=f"^{msg}$"):
        g.phase_quant(bad)


def test_bad_parameters():
    with pytest.raises(FairyError, match=r"^scales must be 'fairy2i' or 'ifairy', not 'x'$"):
        g.phase_quant((torch.ones(2), torch.ones(2)), scales="x")
    with pytest.raises(FairyError, match=r"^stages must be an integer from 1 to 4, not 5$"):
        g.residual_quant((torch.ones(2), torch.ones(2)), 5)
    with pytest.raises(FairyError, match=r"^w has an odd dimension, shape \(3, 4\): "
                                         r"the widely-linear form needs both even$"):
        g.widely_linear(torch.ones(3, 4), name="w")
    with pytest.raises(FairyError, match=r"^complex weights must be a complex tensor or a "
                                         r"\(real, imag\) pair, not torch.float32$"):
        g.phase_quant(torch.ones(3))
