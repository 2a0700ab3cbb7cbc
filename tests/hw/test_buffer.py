"""The array's activation buffer (fairyhw/hw/buffer.py) alone: chunks written from the load stream
come back from the read port ``READ_DELAY`` cycles after their address, with the elements of the
last beat past K as zeros, and the next layer writes from chunk 0 again."""

import random

from amaranth.sim import Simulator

from fairyhw.hw.buffer import ActBuffer
from fairyhw.hw.config import EngineConfig


def _run(cfg, layers):
    """For each layer (``beats``, lists of C 16-bit words, and its ``k`` elements), load it, then read
    every chunk: the read data seen ``READ_DELAY`` cycles after each address."""
    dut = ActBuffer(cfg)
    results = [[] for _ in layers]

    async def tb(ctx):
        for (beats, k), got in zip(layers, results):
            await _layer(ctx, dut, cfg.cols, beats, k, got)

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(tb)
    sim.run()
    return [got[:len(beats)] for (beats, _), got in zip(layers, results)]


async def _layer(ctx, dut, C, beats, k, got):
    """Load one layer's beats, then read its chunks into ``got``."""
    left = k
    for i, beat in enumerate(beats):
        ctx.set(dut.load.valid, 1)
        ctx.set(dut.load.payload.data, sum(v << (16 * c) for c, v in enumerate(beat)))
        ctx.set(dut.load.payload.last, i == len(beats) - 1)
        ctx.set(dut.load.payload.low, left % (1 << len(dut.load.payload.low)))
        await ctx.tick()
        left -= C
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


def test_buffer_round_trip_with_zeros_past_k():
    rng = random.Random(3)
    for rows, cols, ks in ((1, 5, (13, 4)), (2, 4, (8, 24)), (1, 7, (1, 9)), (3, 3, (20, 2))):
        cfg = EngineConfig.array(rows, cols, max_in=24, max_out=8)
        layers, want = [], []
        for k in ks:
            n = -(-k // cols)
            beats = [[rng.randrange(1, 1 << 16) for _ in range(cols)] for _ in range(n)]   # no zeros
            layers.append((beats, k))
            want.append([[v if i * cols + c < k else 0 for c, v in enumerate(b)] for i, b in enumerate(beats)])
        assert _run(cfg, layers) == want, (rows, cols, ks)
