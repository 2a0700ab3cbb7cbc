"""The array's sequencer (fairyhw/hw/sequencer.py) alone, against a model of its passes: the load
stream's beats and facts, then one slot per weight word with its pass's facts, in pass order (row
tile, stage, matrix), with credits returned by a stand-in result buffer."""

import pytest
from amaranth.sim import Simulator

from fairyhw.hw.config import EngineConfig
from fairyhw.hw.sequencer import ArraySequencer


def model(cfg, k, rows):
    """(load beats as their zero flags: bit c set where element c of the beat lies past K), (slots as
    (first, last, conj, final, count)) of one layer; conj, final and count only on a pass's last word
    (None elsewhere: they are read there only)."""
    C, R = cfg.cols, cfg.rows
    n = -(-k // C)
    beats = [sum(1 << c for c in range(C) if i * C + c >= k) for i in range(n)]
    nmat = len(cfg.matrices)
    passes = [(r0, s, mt) for r0 in range(0, rows, R) for s in range(cfg.stages) for mt in range(nmat)]
    slots = []
    for i, (r0, s, mt) in enumerate(passes):
        for w in range(n):
            facts = (mt == nmat - 1 if nmat == 2 else True, i == len(passes) - 1, min(R, rows - r0))
            slots.append((w == 0, w == n - 1, *(facts if w == n - 1 else (None,) * 3)))
    return beats, slots


@pytest.mark.parametrize("rows, cols, mode, stages, k, n_rows", [
    (2, 3, "fairy2i", 2, 7, 3), (1, 4, "ifairy", 1, 4, 2), (3, 2, "fairy2i", 1, 1, 7)])
def test_sequencer_against_model(rows, cols, mode, stages, k, n_rows):
    cfg = EngineConfig.array(rows, cols, mode=mode, stages=stages, max_in=16, max_out=16)
    dut = ArraySequencer(cfg)
    beats, slots = [], []
    state = {"busy_seen": False}

    async def tb(ctx):
        ctx.set(dut.drained, 1)
        ctx.set(dut.cmd.payload.k, k)
        ctx.set(dut.cmd.payload.rows, n_rows)
        ctx.set(dut.cmd.valid, 1)
        await ctx.tick().until(dut.cmd.ready)
        await ctx.tick()
        ctx.set(dut.cmd.valid, 0)
        ctx.set(dut.act.valid, 1)
        ctx.set(dut.wgt_valid, 1)
        pending = []                       # cycles until each taken credit comes back
        for _ in range(400):
            if ctx.get(dut.load.valid):
                beats.append(ctx.get(dut.load.payload.zero))
            s = dut.slot
            if ctx.get(s.valid):
                last = bool(ctx.get(s.last))
                facts = (bool(ctx.get(s.conj)), bool(ctx.get(s.final)), ctx.get(s.count))
                slots.append((bool(ctx.get(s.first)), last, *(facts if last else (None,) * 3)))
                if ctx.get(s.last):
                    pending.append(5)      # the stand-in result buffer frees the tile 5 cycles later
            ctx.set(dut.freed, bool(pending) and pending[0] == 0)
            if pending and pending[0] == 0:
                pending.pop(0)
            pending = [max(0, c - 1) for c in pending]
            state["busy_seen"] |= bool(ctx.get(dut.busy))
            await ctx.tick()
            if not ctx.get(dut.busy) and slots:
                break
        assert not ctx.get(dut.busy)

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(tb)
    sim.run()
    want_beats, want_slots = model(cfg, k, n_rows)
    assert beats == want_beats
    assert slots == want_slots
    assert state["busy_seen"]
