"""The system top's width adapters alone (fairyhw/hw/system.py), in Amaranth's simulator: the Unpacker
gives back, in order, the items that fairyhw.hw.host.pack_items laid out (transfers of ``length``
items back to back, each from a word boundary), and the Packer writes words that
fairyhw.hw.host.unpack_items reads back, with random stalls on both sides."""

import random

import pytest
from amaranth.sim import Simulator

from fairyhw.hw.host import pack_items, unpack_items
from fairyhw.hw.system import Packer, Unpacker


def _stream(dut, inputs, set_input, out_fields, *, seed, cycles=5000, setup=None):
    """Offer ``inputs`` on ``dut.i`` and take ``dut.o`` with random pauses on both sides, one cycle
    at a time; returns the output beats (tuples of ``out_fields``)."""
    got = []

    async def tb(ctx):
        rng = random.Random(seed)
        if setup:
            setup(ctx)
        k = 0
        for _ in range(cycles):
            offer = k < len(inputs) and rng.random() < 0.7
            ctx.set(dut.i.valid, offer)
            if k < len(inputs):
                set_input(ctx, inputs[k])
            take = rng.random() < 0.7
            ctx.set(dut.o.ready, take)
            i_ready, o_valid = ctx.get(dut.i.ready), ctx.get(dut.o.valid)
            beat = tuple(ctx.get(f) for f in out_fields(dut))
            await ctx.tick()
            if offer and i_ready:
                k += 1
            if o_valid and take:
                got.append(beat)

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(tb)
    sim.run()
    return got


@pytest.mark.parametrize("width, data_width, length", [
    (16, 64, 5), (16, 64, 4), (128, 64, 3), (200, 64, 2), (64, 64, 7), (24, 64, 3), (512, 256, 1)])
def test_unpacker_round_trip(width, data_width, length):
    rng = random.Random(width * 7 + length)
    transfers = [[rng.randrange(1 << width) for _ in range(length)] for _ in range(3)]
    wb = data_width // 8
    words = []
    for t in transfers:
        blob = pack_items(t, width, data_width)
        words += [int.from_bytes(blob[i:i + wb], "little") for i in range(0, len(blob), wb)]
    dut = Unpacker(width, data_width)
    got = _stream(dut, words, lambda ctx, w: ctx.set(dut.i.payload, w), lambda d: (d.o.payload,),
                  seed=length, setup=lambda ctx: ctx.set(dut.length, length))
    assert [g for g, in got] == [x for t in transfers for x in t]


@pytest.mark.parametrize("width, data_width", [(128, 64), (128, 256), (96, 64), (32, 64), (64, 64)])
def test_packer_round_trip(width, data_width):
    rng = random.Random(width + data_width)
    layers = [[rng.randrange(1 << width) for _ in range(n)] for n in (5, 1, 8)]
    items = [(it, j == len(layer) - 1) for layer in layers for j, it in enumerate(layer)]
    dut = Packer(width, data_width)

    def put(ctx, item):
        ctx.set(dut.i.payload.data, item[0])
        ctx.set(dut.i.payload.last, item[1])
    got = _stream(dut, items, put, lambda d: (d.o.payload.data, d.o.payload.last), seed=width)
    wb = data_width // 8
    blobs, cur = [], b""
    for word, last in got:
        cur += word.to_bytes(wb, "little")
        if last:
            blobs.append(cur)
            cur = b""
    assert len(blobs) == len(layers)
    for layer, blob in zip(layers, blobs):
        assert blob == pack_items(layer, width, data_width)
        assert unpack_items(blob, len(layer), width, data_width) == layer
