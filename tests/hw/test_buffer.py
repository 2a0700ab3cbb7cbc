"""The array's activation buffer (fairyhw/hw/buffer.py) alone: chunks written from the load stream
come back from the read port ``READ_DELAY`` cycles after their address, with the elements of the
last beat past K as zeros."""

import random

from amaranth.sim import Simulator

from fairyhw.hw.buffer import ActBuffer
from fairyhw.hw.config import EngineConfig


def _run(cfg, beats, k):
    """Load ``beats`` (lists of C 16-bit words) for a layer of ``k`` elements, then read every chunk:
    the read data seen ``READ_DELAY`` cycles after each address."""
    dut = ActBuffer(cfg)
    C = cfg.cols
    got = []

    async def tb(ctx):
        ctx.set(dut.clear, 1)
        await ctx.tick()
        ctx.set(dut.clear, 0)
        for i, beat in enumerate(beats):
            ctx.set(dut.load.valid, 1)
            ctx.set(dut.load.payload.data, sum(v << (16 * c) for c, v in enumerate(beat)))
            ctx.set(dut.load.payload.zero, sum(1 << c for c in range(C) if i * C + c >= k))
            await ctx.tick()
        ctx.set(dut.load.valid, 0)
        await ctx.tick().repeat(ActBuffer.WRITE_DELAY)
        # one address a cycle; the data of address i appears READ_DELAY cycles later
        for t in range(len(beats) + ActBuffer.READ_DELAY):
            if t < len(beats):
                ctx.set(dut.raddr, t)
            await ctx.tick()
            if t + 1 >= ActBuffer.READ_DELAY:
                word = ctx.get(dut.rdata)
                got.append([(word >> (16 * c)) & 0xFFFF for c in range(C)])

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(tb)
    sim.run()
    return got[:len(beats)]


def test_buffer_round_trip_with_zeros_past_k():
    rng = random.Random(3)
    for rows, cols, k in ((1, 5, 13), (2, 4, 8), (1, 7, 1), (3, 3, 20)):
        cfg = EngineConfig.array(rows, cols, max_in=24, max_out=8)
        n = -(-k // cols)
        beats = [[rng.randrange(1, 1 << 16) for _ in range(cols)] for _ in range(n)]   # no zeros
        want = [[v if i * cols + c < k else 0 for c, v in enumerate(b)] for i, b in enumerate(beats)]
        assert _run(cfg, beats, k) == want, (rows, cols, k)
