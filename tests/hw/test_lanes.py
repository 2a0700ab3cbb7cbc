"""The lanes of the output-stationary and dot-product styles (fairyhw/hw/lanes.py) alone, in
Amaranth's simulator, against the golden integer sums."""

import pytest
import torch
from amaranth.sim import Simulator

from fairyhw.hw.lanes import DotLane, Lane


def rtl_lane(accumulate, beats):
    """Drive a lane with (code, p, q, conj, last) beats; return the totals captured on 'last'."""
    lane = Lane(acc_width=12, accumulate=accumulate)
    out = []

    async def tb(ctx):
        ctx.set(lane.en, 1)
        for code, p, q, conj, last in beats:
            qc = -q if conj else q          # the engine conjugates and negates once for all lanes
            ctx.set(lane.code, code)
            ctx.set(lane.p, p)
            ctx.set(lane.np, -p)
            ctx.set(lane.q, qc)
            ctx.set(lane.nq, -qc)
            ctx.set(lane.last, last)
            if last:
                out.append([ctx.get(lane.total[i]) for i in range(len(lane.total))])
            await ctx.tick()

    sim = Simulator(lane)
    sim.add_clock(1e-8)
    sim.add_testbench(tb)
    sim.run()
    return out


def ref_lane(accumulate, beats):
    """Golden sums of the lane's beats, totalled up to each 'last'."""
    from fairyhw.model import golden as g
    out, acc = [], 0
    for code, p, q, conj, last in beats:
        s = g.integer_sums(torch.tensor([[code]], dtype=torch.uint8), torch.tensor([p], dtype=torch.int8),
                           torch.tensor([q], dtype=torch.int8), conj=bool(conj))[0]
        acc = acc + (s if accumulate == "split" else g.merge_sums(s))
        if last:
            out.append(acc.tolist())
            acc = 0
    return out


@pytest.mark.parametrize("accumulate", ["split", "merged"])
def test_lane_against_golden(accumulate):
    g = torch.Generator().manual_seed(0)
    beats = []
    for i in range(60):
        beats.append((int(torch.randint(0, 4, (1,), generator=g)), int(torch.randint(-128, 128, (1,), generator=g)),
                      int(torch.randint(-128, 128, (1,), generator=g)), i // 20 % 2, i % 7 == 6))
    beats += [(c, -128, -128, conj, True) for c in range(4) for conj in (0, 1)]
    assert rtl_lane(accumulate, beats) == ref_lane(accumulate, beats)


@pytest.mark.parametrize("accumulate", ["split", "merged"])
def test_dot_lane_terms(accumulate):
    """A dot lane's combinational terms for every code and extreme activations, against the golden sums."""
    from fairyhw.model import golden as g
    lane = DotLane(accumulate=accumulate)
    cases = [(c, p, q) for c in range(4) for p in (-128, -1, 0, 127) for q in (-128, 0, 5, 128)]
    got = []

    async def tb(ctx):
        for c, p, q in cases:
            ctx.set(lane.code, c)
            ctx.set(lane.p, p)
            ctx.set(lane.q, q)
            await ctx.delay(1e-9)
            got.append([ctx.get(lane.terms[i]) for i in range(len(lane.terms))])

    sim = Simulator(lane)
    sim.add_testbench(tb)
    sim.run()
    for (c, p, q), terms in zip(cases, got):
        s = g.integer_sums(torch.tensor([[c]], dtype=torch.uint8), torch.tensor([p], dtype=torch.float64),
                           torch.tensor([q], dtype=torch.float64))[0]
        assert terms == (s if accumulate == "split" else g.merge_sums(s)).tolist(), (c, p, q)


def test_lane_parameter_errors():
    with pytest.raises(ValueError, match=r"^Accumulator width must be an integer from 9 to 64, not 8$"):
        Lane(acc_width=8)
    with pytest.raises(ValueError, match=r"^Accumulator style must be one of split, merged, not 'x'$"):
        Lane(acc_width=9, accumulate="x")
