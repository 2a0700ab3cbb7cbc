"""The system top's width adapters alone (fairyhw/hw/system.py), in Amaranth's simulator: the Unpacker
gives back, in order, the items that fairyhw.hw.host.pack_items laid out (transfers of ``length``
items back to back, each from a word boundary), and the Packer writes words that
fairyhw.hw.host.unpack_items reads back, with random stalls on both sides."""

import random

import pytest
from amaranth.sim import Simulator

from fairyhw.hw.host import pack_items, unpack_items
from fairyhw.hw.system import Packer, Unpacker


def _stream(dut, inputs, set_input, out_fields, *, seed, cycles=5000, setup=None, ready_holds=False,
            p_offer=0.7, p_take=0.7, out_cycles=None):
    """Offer ``inputs`` on ``dut.i`` and take ``dut.o`` with random pauses on both sides, one cycle
    at a time; returns the output beats (tuples of ``out_fields``). ``ready_holds``: the consumer's
    ready, once high, stays high until it takes a beat. ``out_cycles``: a list given the cycle of
    each beat taken."""
    got = []

    async def tb(ctx):
        rng = random.Random(seed)
        if setup:
            setup(ctx)
        k, take = 0, False
        for cycle in range(cycles):
            offer = k < len(inputs) and rng.random() < p_offer
            ctx.set(dut.i.valid, offer)
            if k < len(inputs):
                set_input(ctx, inputs[k])
            take = (take and ready_holds) or rng.random() < p_take
            ctx.set(dut.o.ready, take)
            i_ready, o_valid = ctx.get(dut.i.ready), ctx.get(dut.o.valid)
            beat = tuple(ctx.get(f) for f in out_fields(dut))
            await ctx.tick()
            if offer and i_ready:
                k += 1
            if o_valid and take:
                got.append(beat)
                take = False
                if out_cycles is not None:
                    out_cycles.append(cycle)

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


@pytest.mark.parametrize("width, data_width", [(128, 64), (200, 64), (1024, 256), (512, 256)])
def test_registered_unpacker(width, data_width):
    """The activation unpacker (each word written a cycle after it is taken): the items in order
    with random pauses (a consumer whose ready holds until it takes), and with the words back to
    back and the consumer always ready an item every ``slot / D`` cycles (no bubble), offered
    ``UNPACK_DELAY`` cycles later than by the plain unpacker."""
    from fairyhw.hw.timing import UNPACK_DELAY
    rng = random.Random(width)
    items = [rng.randrange(1 << width) for _ in range(12)]
    wb = data_width // 8
    blob = pack_items(items, width, data_width)
    words = [int.from_bytes(blob[i:i + wb], "little") for i in range(0, len(blob), wb)]
    put = lambda dut: (lambda ctx, w: ctx.set(dut.i.payload, w))
    dut = Unpacker(width, data_width, registered=True)
    got = _stream(dut, words, put(dut), lambda d: (d.o.payload,), seed=width, ready_holds=True)
    assert [g for g, in got] == items
    at = {}
    for registered in (False, True):
        dut = Unpacker(width, data_width, registered=registered)
        at[registered] = []
        got = _stream(dut, words, put(dut), lambda d: (d.o.payload,), seed=0, cycles=200, p_offer=1,
                      p_take=1, out_cycles=at[registered])
        assert [g for g, in got] == items
    k = len(words) // len(items)
    assert [b - a for a, b in zip(at[True], at[True][1:])] == [k] * (len(items) - 1)
    assert [b - a for a, b in zip(at[False], at[True])] == [UNPACK_DELAY] * len(items)


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


@pytest.mark.parametrize("rows, cols, data_width, ports", [(1, 64, 256, 1), (2, 8, 64, 2), (3, 5, 32, 1),
                                                         (4, 16, 128, 2), (1, 4, 32, 1)])
def test_numpy_layout_equals_the_bit_by_bit_one(rows, cols, data_width, ports):
    """weight_images of the stream as a uint8 array (numpy) == of the stream as ints (pack_items);
    decode_region == Layout.results (the engine's result payloads decoded one by one)."""
    import numpy as np
    import torch
    from fairyhw.hw.config import EngineConfig, SystemConfig
    from fairyhw.hw.host import decode_region, lay_out, weight_images
    from fairyhw.model.pack import stream_words_for
    e = EngineConfig.array(rows, cols, max_in=256, max_out=256)
    cfg = SystemConfig(engine=e, data_width=data_width, weight_ports=ports)
    n, k = 13, 37
    g = torch.Generator().manual_seed(rows * cols)
    codes = torch.randint(0, 4, (2, 2, n, k), dtype=torch.uint8, generator=g)
    arr = stream_words_for([[c for c in per] for per in codes], e)
    ints = [int.from_bytes(w.tobytes(), "little") for w in arr]
    assert weight_images(cfg, arr, k) == weight_images(cfg, ints, k)
    lay = lay_out(cfg, [(codes, torch.zeros(k, dtype=torch.int8), torch.zeros(k, dtype=torch.int8))])
    rng = np.random.default_rng(0)
    half = 1 << (e.acc_width - 1)
    blob = rng.integers(-half, half, lay.places[0].res_bytes // 4).astype("<i4").tobytes()
    assert torch.equal(decode_region(cfg, blob, n), lay.results(0, blob))


def test_whole_model_plan_matches_its_images():
    """The memory plan of fairyhw run (from shapes alone) places each layer's weights, descriptors
    and results where ModelLayout (from the quantized layers) writes them, without overlap."""
    import torch
    from fairyhw.cosim.decode import ModelLayout
    from fairyhw.hw.config import EngineConfig, SystemConfig
    from fairyhw.hw.host import PAGE
    from fairyhw.model.layers import FairyLinear
    e = EngineConfig.array(2, 8, max_in=64, max_out=20)
    cfg = SystemConfig(engine=e, data_width=64, weight_ports=2)
    g = torch.Generator().manual_seed(0)
    layers = [(f"l{i}", FairyLinear(torch.randn(2 * r, 2 * k, generator=g)))
              for i, (r, k) in enumerate([(5, 13), (45, 8), (3, 64)])]
    lay = ModelLayout(cfg, layers)
    assert [len(lay.places[n].pieces) for n, _ in layers] == [1, 3, 1]     # 45 rows: 20 + 20 + 5
    spans = sorted((a, a + len(b)) for a, b in lay.images.items())
    for (a0, a1), (b0, _) in zip(spans, spans[1:]):
        assert a1 <= b0
    for name, _ in layers:
        pl = lay.places[name]
        assert pl.act % PAGE == 0
        for r0, r1, wgt, stride, res, nbytes in pl.pieces:
            assert wgt in lay.images and res % PAGE == 0 and res + nbytes <= lay.end
            assert all(len(lay.images[wgt + p * stride]) <= stride for p in range(cfg.weight_ports))


def _check_queue(make, latency, seed):
    """A 40-bit stream queue from ``make()``: every word back in order under random stalls, and with
    both sides always willing a word every cycle, each offered ``latency`` cycles after it went in."""
    rng = random.Random(seed)
    words = [rng.randrange(1 << 40) for _ in range(300)]
    dut = make()
    got = _stream(dut, words, lambda ctx, w: ctx.set(dut.i.payload, w), lambda d: (d.o.payload,), seed=seed)
    assert [g for g, in got] == words
    dut = make()
    seen = []

    async def tb(ctx):
        ctx.set(dut.o.ready, 1)
        for c in range(50 + latency + 10):
            ctx.set(dut.i.valid, c < 50)
            ctx.set(dut.i.payload, c)
            assert ctx.get(dut.i.ready) == 1                # never full while the consumer takes
            if ctx.get(dut.o.valid):
                seen.append((c, ctx.get(dut.o.payload)))
            await ctx.tick()
    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(tb)
    sim.run()
    assert seen == [(c + latency, c) for c in range(50)]


def _taken_while_held(dut, cycles: int) -> list:
    """The words (0, 1, ...) a queue takes in ``cycles`` cycles, offered one every cycle while its
    output is held."""
    taken = []

    async def tb(ctx):
        ctx.set(dut.o.ready, 0)
        ctx.set(dut.i.valid, 1)
        for c in range(cycles):
            ctx.set(dut.i.payload, c)
            if ctx.get(dut.i.ready):
                taken.append(c)
            await ctx.tick()
    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(tb)
    sim.run()
    return taken


@pytest.mark.parametrize("depth", [2, 3, 5])
def test_credit_link_keeps_order_and_full_rate(depth):
    """The credit link: order under random stalls, full rate, LINK_LATENCY cycles a word (the constant
    the system's cycle model uses)."""
    from fairyhw.hw.dma import CreditLink
    from fairyhw.hw.timing import LINK_LATENCY
    _check_queue(lambda: CreditLink(40, depth), LINK_LATENCY, depth)


def test_credit_link_refuses_one_place():
    from fairyhw.hw.dma import CreditLink
    with pytest.raises(ValueError, match="two places"):
        CreditLink(8, 1)


@pytest.mark.parametrize("depth", [4, 5, 9])
def test_split_link_keeps_order_and_full_rate(depth):
    """The split link: order under random stalls, full rate from SPLIT_LINK_DEPTH places, and
    SPLIT_LINK_LATENCY cycles a word (the constants the system's cycle model and the link use)."""
    from fairyhw.hw.dma import SplitLink
    from fairyhw.hw.timing import SPLIT_LINK_LATENCY
    _check_queue(lambda: SplitLink(40, depth), SPLIT_LINK_LATENCY, depth)


def test_split_link_holds_its_depth_and_refuses_fewer_places():
    """With the output held, the split link takes exactly ``depth`` words; fewer places than full rate
    needs are refused."""
    from fairyhw.hw.dma import SplitLink
    from fairyhw.hw.timing import SPLIT_LINK_DEPTH
    assert _taken_while_held(SplitLink(8, 6), 20) == list(range(6))
    with pytest.raises(ValueError, match=f"{SPLIT_LINK_DEPTH} places"):
        SplitLink(8, SPLIT_LINK_DEPTH - 1)


@pytest.mark.parametrize("depth", [3, 5, 16])
def test_block_fifo_keeps_order_full_rate_and_latency(depth):
    """The block FIFO: order under random stalls, full rate, and BLOCK_FIFO_LATENCY cycles a word (the
    constant the system's cycle model uses)."""
    from fairyhw.hw.dma import BlockFIFO
    from fairyhw.hw.timing import BLOCK_FIFO_LATENCY
    _check_queue(lambda: BlockFIFO(40, depth), BLOCK_FIFO_LATENCY, depth)


def test_block_fifo_fills_to_depth():
    """With the output held, the block FIFO takes ``depth`` words (its block RAM) and its queue's, then none."""
    from fairyhw.hw.dma import BlockFIFO
    taken = _taken_while_held(BlockFIFO(8, 6), 30)
    # the block RAM's 6 places, plus the queue's 4 once the words move on to it
    assert taken == list(range(6 + BlockFIFO.QUEUE))


@pytest.mark.parametrize("registered", [False, True])
def test_add_in_halves_matches_the_sum(registered):
    """`add_in_halves`: 66-bit sums moved on in two halves (the high one a cycle later, carries
    across the halves included) equal Python's sums, with the addend changing between additions and a
    later assignment (a new value) taking precedence."""
    from amaranth.hdl import Module, Signal
    from fairyhw.hw.dma import add_in_halves
    m = Module()
    acc, addend, when, load, value = Signal(66), Signal(40), Signal(), Signal(), Signal(66)
    add_in_halves(m, acc, addend, when, name="acc", registered=registered)
    with m.If(load):
        m.d.sync += acc.eq(value)

    async def tb(ctx):
        rng = random.Random(7)
        expect, gap = 0, 3
        for _ in range(400):
            ctx.set(when, 0)
            ctx.set(load, 0)
            if gap >= 3 and rng.random() < 0.5:      # `when` two cycles apart at least, the addend
                ctx.set(when, 1)                      # set a cycle before (for `registered`)
                expect = (expect + ctx.get(addend)) % (1 << 66)
                gap = 0
            elif gap >= 3 and rng.random() < 0.05:
                v = rng.choice([(1 << 32) - 1 - rng.randrange(1 << 20), rng.randrange(1 << 66)])
                ctx.set(load, 1)
                ctx.set(value, v)
                expect, gap = v, 0
            else:
                gap += 1
                if gap == 1:                          # a new addend, long before the next sum
                    ctx.set(addend, rng.choice([rng.randrange(1 << 40), (1 << 32) - rng.randrange(64)]))
            await ctx.tick()
            if gap >= 2:
                assert ctx.get(acc) == expect
    sim = Simulator(m)
    sim.add_clock(1e-6)
    sim.add_testbench(tb)
    sim.run()


@pytest.mark.parametrize("kwargs, match", [
    ({"data_width": 48}, "data_width must be"), ({"max_burst": 0}, "max_burst must be"),
    ({"outstanding": 65}, "outstanding must be"), ({"beats_width": 33}, "beats_width must be"),
    ({"staged": 1}, "staged must be"), ({"fifo_depth": 8, "max_burst": 16}, "must hold a burst")])
def test_axi_masters_refuse_bad_parameters(kwargs, match):
    """The AXI masters check their parameters once, at construction, with one clear error each."""
    from fairyhw.hw.dma import AxiReader, AxiWriter
    with pytest.raises(ValueError, match=match):
        AxiReader(**kwargs)
    if "fifo_depth" not in kwargs:
        with pytest.raises(ValueError, match=match):
            AxiWriter(**kwargs)
