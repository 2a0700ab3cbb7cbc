"""The AXI4-Lite register file (fairyhw/hw/axi.py) in Amaranth's simulator: a manager that offers the
address and data channels in either order and stalls its ready signals, against a model of the
register map; the handshake rules (a response held until taken, no write accepted meanwhile)."""

import random

from amaranth.sim import Simulator

from fairyhw.hw.axi import MAGIC, OKAY, REGISTERS, SLVERR, RegisterFile, c_header, register_map

OFF = {r.name: r.offset for r in REGISTERS}


class Manager:
    """Drives the bus; ``rng`` spreads the channels' timing and the ready stalls."""

    def __init__(self, ctx, bus, rng):
        self.ctx, self.bus, self.rng = ctx, bus, rng

    async def _wait(self, n):
        for _ in range(n):
            await self.ctx.tick()

    async def _offer(self, chan, **payload):
        ctx = self.ctx
        for k, v in payload.items():
            ctx.set(getattr(chan.payload, k), v)
        ctx.set(chan.valid, 1)
        await ctx.tick().until(chan.ready)
        ctx.set(chan.valid, 0)

    async def write(self, addr, value, strb=0xF):
        ctx, bus = self.ctx, self.bus
        first_aw = self.rng.random() < 0.5
        await self._offer(bus.aw if first_aw else bus.w,
                          **({"addr": addr} if first_aw else {"data": value, "strb": strb}))
        await self._wait(self.rng.randrange(3))
        await self._offer(bus.w if first_aw else bus.aw,
                          **({"data": value, "strb": strb} if first_aw else {"addr": addr}))
        # the response: held, unchanged, while ready stays low
        stall = self.rng.randrange(4)
        await ctx.tick().until(bus.b.valid)
        resp = ctx.get(bus.b.payload.resp)
        for _ in range(stall):
            assert ctx.get(bus.aw.ready) == 0 and ctx.get(bus.w.ready) == 0
            await ctx.tick()
            assert ctx.get(bus.b.valid) == 1 and ctx.get(bus.b.payload.resp) == resp
        ctx.set(bus.b.ready, 1)
        await ctx.tick()
        ctx.set(bus.b.ready, 0)
        return resp

    async def read(self, addr):
        ctx, bus = self.ctx, self.bus
        await self._offer(bus.ar, addr=addr)
        await ctx.tick().until(bus.r.valid)
        data, resp = ctx.get(bus.r.payload.data), ctx.get(bus.r.payload.resp)
        for _ in range(self.rng.randrange(4)):
            await ctx.tick()
            assert ctx.get(bus.r.valid) == 1 and ctx.get(bus.r.payload.data) == data
        ctx.set(bus.r.ready, 1)
        await ctx.tick()
        ctx.set(bus.r.ready, 0)
        return data, resp


def run(body, seed=0):
    dut = RegisterFile()

    async def tb(ctx):
        await body(ctx, dut, Manager(ctx, dut.bus, random.Random(seed)))

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(tb)
    sim.run()


def test_read_write_strobes_and_errors():
    async def body(ctx, dut, mgr):
        assert await mgr.read(OFF["id"]) == (MAGIC, OKAY)
        model = {"desc_addr_lo": 0, "desc_addr_hi": 0, "desc_count": 0}
        rng = random.Random(5)
        for _ in range(30):
            name = rng.choice(sorted(model))
            value, strb = rng.getrandbits(32), rng.randrange(16)
            assert await mgr.write(OFF[name], value, strb) == OKAY
            mask = sum(0xFF << (8 * i) for i in range(4) if strb >> i & 1)
            model[name] = (model[name] & ~mask) | (value & mask)
            assert ctx.get(getattr(dut, name)) == model[name]
            assert await mgr.read(OFF[name]) == (model[name], OKAY)
        # outside the map: SLVERR, reads 0, nothing changes
        assert await mgr.write(0xFC, 0xFFFFFFFF) == SLVERR
        assert await mgr.read(0xFC) == (0, SLVERR)
        for name, v in model.items():
            assert await mgr.read(OFF[name]) == (v, OKAY)
        # read-only fields show the hardware's inputs; a write leaves them alone
        ctx.set(dut.cycles_lo, 1234)
        ctx.set(dut.status_busy, 1)
        ctx.set(dut.status_error_code, 7)
        assert await mgr.write(OFF["cycles_lo"], 99) == OKAY
        assert await mgr.read(OFF["cycles_lo"]) == (1234, OKAY)
        data, _ = await mgr.read(OFF["status"])
        assert data & 1 == 1 and data >> 8 & 0xFF == 7
    for seed in range(3):
        run(body, seed)


def test_pulses_w1c_and_interrupt():
    async def body(ctx, dut, mgr):
        # start: one cycle high after the write of 1, reads 0
        assert await mgr.write(OFF["ctrl"], 0b101) == OKAY          # start + irq_enable
        assert ctx.get(dut.ctrl_irq_enable) == 1
        data, _ = await mgr.read(OFF["ctrl"])
        assert data == 0b100
        # done: set by the hardware, raises irq, cleared by writing 1 (a 0 leaves it)
        ctx.set(dut.status_done_set, 1)
        await ctx.tick()
        ctx.set(dut.status_done_set, 0)
        await ctx.tick()
        assert ctx.get(dut.status_done) == 1 and ctx.get(dut.irq) == 1
        assert await mgr.write(OFF["status"], 0b100) == OKAY         # clears error only
        assert ctx.get(dut.status_done) == 1
        assert await mgr.write(OFF["status"], 0b010) == OKAY
        await ctx.tick()
        assert ctx.get(dut.status_done) == 0 and ctx.get(dut.irq) == 0
    run(body)


def test_start_is_a_one_cycle_pulse():
    seen = []

    async def body(ctx, dut, mgr):
        await mgr.write(OFF["ctrl"], 1)
        await mgr.write(OFF["ctrl"], 2)          # soft reset

    dut = RegisterFile()

    async def tb(ctx):
        await body(ctx, dut, Manager(ctx, dut.bus, random.Random(1)))

    async def monitor(ctx):
        async for _clk, _rst, start, reset in ctx.tick().sample(dut.ctrl_start, dut.ctrl_soft_reset):
            seen.append((start, reset))

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(tb)
    sim.add_process(monitor)
    sim.run()
    assert sum(s for s, _ in seen) == 1 and sum(r for _, r in seen) == 1


def test_header_and_manifest_come_from_the_map():
    h = c_header()
    for r in REGISTERS:
        assert f"#define FAIRYHW_{r.name.upper()} 0x{r.offset:02X}u" in h
    assert "#define FAIRYHW_STATUS_DONE_MASK 0x00000002u" in h
    assert [r["offset"] for r in register_map()] == [r.offset for r in REGISTERS]
    assert len({r.offset for r in REGISTERS}) == len(REGISTERS)


def test_docs_table_is_the_map():
    from pathlib import Path
    from fairyhw.hw.axi import register_table
    text = (Path(__file__).resolve().parents[2] / "docs" / "formats.md").read_text()
    start = text.index("<!-- register-table")
    body = text[text.index("\n", start) + 1:text.index("<!-- /register-table -->")]
    assert body == register_table()
