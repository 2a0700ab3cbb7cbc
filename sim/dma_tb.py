"""cocotb testbenches of the AXI4 masters (fairyhw.hw.dma): the read master against cocotbext-axi's
AxiRamRead and against ReadMemory (set latency, bandwidth, outstanding bursts), the write master
against AxiRamWrite, with random pauses on the memory's channels and on the stream side."""

import itertools
import json
import os
import random

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import ReadOnly, RisingEdge
from cocotbext.axi import AxiRamRead, AxiReadBus

CFG = json.loads(os.environ["FAIRYHW_DMA"])


def pauses(seed, p):
    rng = random.Random(seed)
    return (rng.random() < p for _ in itertools.count())


async def start(dut, **inputs):
    """Start the clock and hold reset for three cycles, the command idle and ``inputs`` set."""
    cocotb.start_soon(Clock(dut.clk, 10, unit="ns").start())
    dut.rst.value = 1
    dut.cmd_valid.value = 0
    if hasattr(dut, "abort"):
        dut.abort.value = 0
    for name, value in inputs.items():
        getattr(dut, name).value = value
    for _ in range(3):
        await RisingEdge(dut.clk)
    dut.rst.value = 0


async def command(dut, addr, beats):
    """Offer the command ``(addr, beats)`` until it is taken."""
    dut.cmd_addr.value = addr
    dut.cmd_beats.value = beats
    dut.cmd_valid.value = 1
    await RisingEdge(dut.clk)
    while not dut.cmd_ready.value:
        await RisingEdge(dut.clk)
    dut.cmd_valid.value = 0


async def start_reads(dut):
    """cocotbext-axi's AXI RAM of 64 KiB on the read master's bus, filled with random bytes (returned),
    its channels pausing at random (``pause``); then :func:`start`."""
    ram = AxiRamRead(AxiReadBus.from_prefix(dut, "m_axi"), dut.clk, dut.rst, size=1 << 16)
    ram.ar_channel.set_pause_generator(pauses(1, CFG["pause"]))
    ram.r_channel.set_pause_generator(pauses(2, CFG["pause"]))
    rng = random.Random(3)
    image = bytes(rng.randrange(256) for _ in range(1 << 16))
    ram.write(0, image)
    await start(dut, data_ready=0)
    return image


def words_at(image, addr, beats):
    """The ``beats`` words of the memory image from byte ``addr``."""
    nbytes = CFG["data_width"] // 8
    return [int.from_bytes(image[addr + i * nbytes:addr + (i + 1) * nbytes], "little") for i in range(beats)]


async def read_words(dut, ready, addr, beats, stop=None):
    """Command ``(addr, beats)`` and take its words, ``data_ready`` low where ``ready`` (pause flags)
    says so: all of them, or those taken in the first ``stop`` cycles."""
    await command(dut, addr, beats)
    got, n = [], 0
    while len(got) < beats and (stop is None or n < stop):
        dut.data_ready.value = int(not next(ready))
        await RisingEdge(dut.clk)
        n += 1
        if dut.data_valid.value and dut.data_ready.value:
            got.append(int(dut.data_data.value))
    dut.data_ready.value = 0
    return got


def check_bursts(bursts, nbytes):
    """Every burst within the limit and within its 4 KB page."""
    for a, n in bursts:
        assert n <= CFG["max_burst"] and (a % 4096) + n * nbytes <= 4096, (a, n)


@cocotb.test()
async def reads_in_order(dut):
    nbytes = CFG["data_width"] // 8
    image = await start_reads(dut)
    bursts, state = [], {"inflight": 0, "max_inflight": 0}

    async def monitor():
        while True:
            await RisingEdge(dut.clk)
            await ReadOnly()
            if dut.m_axi_arvalid.value and dut.m_axi_arready.value:
                bursts.append((int(dut.m_axi_araddr.value), int(dut.m_axi_arlen.value) + 1))
                state["inflight"] += 1
            if dut.m_axi_rvalid.value and dut.m_axi_rready.value and dut.m_axi_rlast.value:
                state["inflight"] -= 1
            state["max_inflight"] = max(state["max_inflight"], state["inflight"])
    cocotb.start_soon(monitor())

    ready = pauses(4, CFG["pause"])
    for addr, beats in CFG["commands"]:
        got = await read_words(dut, ready, addr, beats)
        assert got == words_at(image, addr, beats), (addr, beats)
        assert not dut.error.value
    check_bursts(bursts, nbytes)
    assert state["max_inflight"] <= CFG["outstanding"]
    assert sum(n for _, n in bursts) == sum(b for _, b in CFG["commands"])


@cocotb.test()
async def reads_abort(dut):
    """The read master aborted ``afters`` cycles into a command of 300 words, the memory and the
    consumer pausing at random: from the second cycle of ``abort`` on, the bus takes no more burst
    addresses than the master had already issued (the one it may be offering and those waiting in
    its address link, LINK_DEPTH), an address offered stays offered until its handshake
    (sim/axi_rules.py), ``quiet`` rises once every burst asked for has ended, and after a reset
    the next command reads exactly."""
    from fairyhw.hw.timing import LINK_DEPTH
    from axi_rules import HandshakeChecker
    nbytes = CFG["data_width"] // 8
    image = await start_reads(dut)
    errors = []
    checker = HandshakeChecker(dut, "m_axi", "ar", dut.clk, errors)
    cocotb.start_soon(checker.run())
    st = {"cycle": 0, "inflight": 0, "abort_at": None, "late": 0, "most_late": 0}

    async def monitor():
        while True:
            await RisingEdge(dut.clk)
            await ReadOnly()
            st["cycle"] += 1
            if dut.m_axi_arvalid.value and dut.m_axi_arready.value:
                st["inflight"] += 1
                if st["abort_at"] is not None and st["cycle"] > st["abort_at"] + 1:
                    st["late"] += 1                 # a burst taken by the bus while aborting
            if dut.m_axi_rvalid.value and dut.m_axi_rready.value and dut.m_axi_rlast.value:
                st["inflight"] -= 1
    cocotb.start_soon(monitor())

    ready = pauses(4, CFG["pause"])

    for k, after in enumerate(CFG["afters"]):
        addr = (k * 640 + 8 * (k % 3)) * nbytes % 32768
        got = await read_words(dut, ready, addr, 300, stop=after)
        assert got == words_at(image, addr, len(got)), (after, "words before the abort")
        dut.abort.value = 1
        await RisingEdge(dut.clk)
        await ReadOnly()
        st["abort_at"] = st["cycle"]
        for _ in range(5000):
            await RisingEdge(dut.clk)
            dut.data_ready.value = int(not next(ready))
            await ReadOnly()
            if dut.quiet.value:
                break
        assert dut.quiet.value, (after, "not quiet 5000 cycles after abort")
        assert st["inflight"] == 0, (after, st["inflight"])
        assert st["late"] <= LINK_DEPTH + 1, (after, "bursts taken while aborting", st["late"])
        st["most_late"] = max(st["most_late"], st["late"])
        await RisingEdge(dut.clk)
        dut.data_ready.value = 0
        dut.rst.value = 1                       # reset once quiet, abort dropped with it
        dut.abort.value = 0
        await RisingEdge(dut.clk)
        dut.rst.value = 0
        st["abort_at"], st["late"] = None, 0
        addr2 = (4096 - 5 * nbytes + k * 8 * nbytes) % 32768
        assert await read_words(dut, ready, addr2, 40) == words_at(image, addr2, 40), (after, "the next command")
    assert not errors, errors[:5]
    assert st["most_late"] > 0 or not CFG["pause"], "no burst was taken while aborting: the case is not exercised"
    if CFG["pause"]:
        assert checker.offers, "no address waited on ready: the rule was not exercised"


@cocotb.test()
async def writes_land(dut):
    """The write master: each command's words, offered with random pauses, land in memory; bursts
    within 4 KB and the limit, each burst's beats ending on ``last``, responses outstanding within
    the limit."""
    from cocotbext.axi import AxiRamWrite, AxiWriteBus
    nbytes = CFG["data_width"] // 8
    ram = AxiRamWrite(AxiWriteBus.from_prefix(dut, "m_axi"), dut.clk, dut.rst, size=1 << 16)
    for i, ch in enumerate((ram.aw_channel, ram.w_channel, ram.b_channel)):
        ch.set_pause_generator(pauses(10 + i, CFG["pause"]))
    await start(dut, data_valid=0)
    # `lasts`: the beat counts at which `wlast` went out, compared in order with the bursts' ends
    # (AXI lets a burst's data go before its address, so the two are paired by order, not by time)
    bursts, lasts, state = [], [], {"pending": 0, "max_pending": 0, "beats": 0}

    async def monitor():
        while True:
            await RisingEdge(dut.clk)
            await ReadOnly()
            if dut.m_axi_awvalid.value and dut.m_axi_awready.value:
                bursts.append((int(dut.m_axi_awaddr.value), int(dut.m_axi_awlen.value) + 1))
                state["pending"] += 1
            if dut.m_axi_wvalid.value and dut.m_axi_wready.value:
                state["beats"] += 1
                if dut.m_axi_wlast.value:
                    lasts.append(state["beats"])
            if dut.m_axi_bvalid.value and dut.m_axi_bready.value:
                state["pending"] -= 1
            state["max_pending"] = max(state["max_pending"], state["pending"])
    cocotb.start_soon(monitor())

    rng = random.Random(5)
    valid = pauses(6, CFG["pause"])
    expect = bytearray(1 << 16)
    for addr, beats in CFG["commands"]:
        words = [rng.getrandbits(CFG["data_width"]) for _ in range(beats)]
        await command(dut, addr, beats)
        i = 0
        while i < beats:
            on = not next(valid)
            dut.data_valid.value = int(on)
            dut.data_data.value = words[i]
            await RisingEdge(dut.clk)
            if on and dut.data_ready.value:
                i += 1
        dut.data_valid.value = 0
        await RisingEdge(dut.clk)
        while dut.busy.value:
            await RisingEdge(dut.clk)
        for j, wd in enumerate(words):
            expect[addr + j * nbytes:addr + (j + 1) * nbytes] = wd.to_bytes(nbytes, "little")
        assert ram.read(0, 1 << 16) == bytes(expect), (addr, beats)
        assert not dut.error.value
    check_bursts(bursts, nbytes)
    # `last` exactly on each burst's final beat
    assert lasts == list(itertools.accumulate(n for _, n in bursts)), (lasts, bursts)
    assert state["max_pending"] <= CFG["outstanding"]


@cocotb.test()
async def read_rate(dut):
    """The read master against ReadMemory (set bandwidth, latency, outstanding bursts): the cycles
    from the command to the last word, consumer always ready, written to FAIRYHW_OUT."""
    from axi_memory import ReadMemory
    mem = ReadMemory(dut, "m_axi", dut.clk, size=1 << 20, bytes_per_cycle=CFG["bytes_per_cycle"],
                     latency=CFG["latency"], outstanding=CFG["mem_outstanding"])
    await start(dut, data_ready=1)
    cocotb.start_soon(mem.run())
    results = []
    for addr, beats in CFG["commands"]:
        await command(dut, addr, beats)
        t0, got = mem.cycle, 0
        while got < beats:
            await RisingEdge(dut.clk)
            if dut.data_valid.value and dut.data_ready.value:
                got += 1
        results.append({"beats": beats, "cycles": mem.cycle - t0})
    with open(os.environ["FAIRYHW_OUT"], "w") as f:
        json.dump(results, f)
