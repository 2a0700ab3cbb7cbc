"""cocotb testbench of the AXI4-Lite register file, driven by cocotbext-axi's AxiLiteMaster (a
third-party manager) with random pauses on every channel: the register map's behaviour and the
protocol's handshake rules as another implementation reads them."""

import itertools
import random

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import RisingEdge
from cocotbext.axi import AxiLiteBus, AxiLiteMaster

from fairyhw.hw.axi import MAGIC, OKAY, REGISTERS, SLVERR

OFF = {r.name: r.offset for r in REGISTERS}


def pauses(seed, p):
    rng = random.Random(seed)
    return (rng.random() < p for _ in itertools.count())


@cocotb.test()
async def registers_under_random_pauses(dut):
    cocotb.start_soon(Clock(dut.clk, 10, unit="ns").start())
    master = AxiLiteMaster(AxiLiteBus.from_prefix(dut, "s_axil"), dut.clk, dut.rst)
    for i, ch in enumerate((master.write_if.aw_channel, master.write_if.w_channel, master.write_if.b_channel,
                            master.read_if.ar_channel, master.read_if.r_channel)):
        ch.set_pause_generator(pauses(i, 0.4))
    for name in ("status_busy", "status_done_set", "status_error_set", "status_error_code", "layer",
                 "cycles_lo", "cycles_hi", "stall_lo", "stall_hi", "results"):
        getattr(dut, name).value = 0
    dut.rst.value = 1
    for _ in range(3):
        await RisingEdge(dut.clk)
    dut.rst.value = 0
    await RisingEdge(dut.clk)

    r = await master.read(OFF["id"], 4)
    assert int.from_bytes(r.data, "little") == MAGIC and r.resp == OKAY
    rng = random.Random(7)
    model = {n: 0 for n in ("desc_addr_lo", "desc_addr_hi", "desc_count")}
    for _ in range(40):
        name = rng.choice(sorted(model))
        lo = rng.randrange(4)
        data = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 5 - lo)))  # bytes lo.. of the word
        w = await master.write(OFF[name] + lo, data)
        assert w.resp == OKAY
        word = bytearray(model[name].to_bytes(4, "little"))
        word[lo:lo + len(data)] = data
        model[name] = int.from_bytes(word, "little")
        assert int(getattr(dut, name).value) == model[name]
        r = await master.read(OFF[name], 4)
        assert int.from_bytes(r.data, "little") == model[name] and r.resp == OKAY
    w = await master.write(0xF0, b"\xff\xff\xff\xff")
    assert w.resp == SLVERR
    r = await master.read(0xF0, 4)
    assert r.resp == SLVERR and r.data == bytes(4)
    dut.cycles_lo.value = 0x12345678
    r = await master.read(OFF["cycles_lo"], 4)
    assert int.from_bytes(r.data, "little") == 0x12345678
    # done -> interrupt when enabled; write-one-to-clear
    await master.write(OFF["ctrl"], (4).to_bytes(4, "little"))
    dut.status_done_set.value = 1
    await RisingEdge(dut.clk)
    dut.status_done_set.value = 0
    await RisingEdge(dut.clk)
    assert int(dut.irq.value) == 1
    await master.write(OFF["status"], (2).to_bytes(4, "little"))
    await RisingEdge(dut.clk)
    assert int(dut.irq.value) == 0 and int(dut.status_done.value) == 0
