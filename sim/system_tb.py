"""cocotb testbench of the system top (fairyhw.hw.system) behind its standard-named wrapper: one
shared memory behind every AXI4 port, the host driver (fairyhw.hw.host.Driver) on the AXI4-Lite
registers through cocotbext-axi's AxiLiteMaster.

The job (``FAIRYHW_SYSTEM``, JSON) names a pickle of runs, each a memory image (address -> bytes),
its descriptor list, the result regions to read back, and what to do (run, or soft-reset after some
cycles); the memory model per read port (cocotbext-axi's AxiRamRead and AxiRamWrite with random pauses,
or ReadMemory with set bandwidth, latency and outstanding bursts and WriteMemory, which never waits).
The testbench writes, per run, the status registers, the counters and the result regions into
``FAIRYHW_OUT`` (a pickle); the test compares them with the golden model."""

import itertools
import json
import os
import pickle
import random

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, RisingEdge
from cocotbext.axi import AxiLiteBus, AxiLiteMaster, AxiRamRead, AxiRamWrite, AxiReadBus, AxiWriteBus
from cocotbext.axi.memory import Memory

from axi_memory import ReadMemory, WriteMemory
from axi_rules import HandshakeChecker
from fairyhw.hw.host import Driver

JOB = json.loads(os.environ["FAIRYHW_SYSTEM"])


def pauses(seed, p, run=1):
    """Pause flags, one a cycle: each draw (a pause with probability ``p``) holds for ``run`` cycles."""
    rng = random.Random(seed)
    return (flag for _ in itertools.count() for flag in [rng.random() < p] * run)


async def wait_idle(dut, drv, limit):
    """Poll status until not busy; fail after ``limit`` cycles (a hang)."""
    for _ in range(0, limit, 64):
        await ClockCycles(dut.aclk, 64)
        st = await drv.status()
        if not st["busy"]:
            return st
    raise AssertionError(f"still busy after {limit} cycles")


async def trace(dut, ports, events):
    """Record ``(cycle, event)`` of every AXI handshake that starts or ends a transfer."""
    from cocotb.triggers import ReadOnly
    cycle = 0
    while True:
        await RisingEdge(dut.aclk)
        await ReadOnly()
        cycle += 1
        for port in ports:
            p = f"m_axi_{port}"
            if getattr(dut, f"{p}_arvalid").value and getattr(dut, f"{p}_arready").value:
                events.append((cycle, f"{port}.ar", int(getattr(dut, f"{p}_arlen").value) + 1))
            if getattr(dut, f"{p}_rvalid").value and getattr(dut, f"{p}_rready").value and \
                    getattr(dut, f"{p}_rlast").value:
                events.append((cycle, f"{port}.rlast", 0))
        if dut.m_axi_res_awvalid.value and dut.m_axi_res_awready.value:
            events.append((cycle, "res.aw", int(dut.m_axi_res_awlen.value) + 1))
        if dut.m_axi_res_wvalid.value and dut.m_axi_res_wready.value and dut.m_axi_res_wlast.value:
            events.append((cycle, "res.wlast", 0))
        if dut.m_axi_res_bvalid.value and dut.m_axi_res_bready.value:
            events.append((cycle, "res.b", 0))
        if dut.irq.value:
            events.append((cycle, "irq", 0))


@cocotb.test()
async def runs(dut):
    with open(JOB["runs"], "rb") as f:
        runs = pickle.load(f)
    cocotb.start_soon(Clock(dut.aclk, 10, unit="ns").start())
    dut.aresetn.value = 0
    mem = Memory(JOB["mem_size"])
    model = JOB["memory"]
    ports = ["ctrl"] + [f"wgt{p}" for p in range(JOB["weight_ports"])]
    pause_run = model.get("run", 1)             # cycles each pause draw holds
    for i, port in enumerate(ports):
        prefix = f"m_axi_{port}"
        if model["kind"] == "ram":
            ram = AxiRamRead(AxiReadBus.from_prefix(dut, prefix), dut.aclk, dut.aresetn,
                             reset_active_level=False, mem=mem.mem)
            ram.ar_channel.set_pause_generator(pauses(10 + i, model["pause"], pause_run))
            ram.r_channel.set_pause_generator(pauses(20 + i, model["pause"], pause_run))
        else:
            rm = ReadMemory(dut, prefix, dut.aclk, size=0, mem=mem.mem,
                            bytes_per_cycle=model["bytes_per_cycle"], latency=model["latency"],
                            outstanding=model["outstanding"])
            cocotb.start_soon(rm.run())
    if model["kind"] == "ram":
        wr = AxiRamWrite(AxiWriteBus.from_prefix(dut, "m_axi_res"), dut.aclk, dut.aresetn,
                         reset_active_level=False, mem=mem.mem)
        for ch, seed in ((wr.aw_channel, 1), (wr.w_channel, 2), (wr.b_channel, 3)):
            ch.set_pause_generator(pauses(seed, model["pause"], pause_run))
    else:
        cocotb.start_soon(WriteMemory(dut, "m_axi_res", dut.aclk, mem=mem.mem).run())
    # the handshake rule on every channel the core drives; a breach fails the run at its end
    breaches = []
    checkers = [HandshakeChecker(dut, f"m_axi_{port}", "ar", dut.aclk, breaches) for port in ports]
    checkers += [HandshakeChecker(dut, "m_axi_res", ch, dut.aclk, breaches) for ch in ("aw", "w")]
    for c in checkers:
        cocotb.start_soon(c.run())
    regs = AxiLiteMaster(AxiLiteBus.from_prefix(dut, "s_axil"), dut.aclk, dut.aresetn,
                         reset_active_level=False)
    await ClockCycles(dut.aclk, 5)
    dut.aresetn.value = 1
    await ClockCycles(dut.aclk, 2)
    drv = Driver(regs)                           # AxiLiteMaster has read_dword/write_dword
    events = []
    if JOB.get("trace"):
        cocotb.start_soon(trace(dut, ports, events))
    assert await drv.read("id") == 0x46485731
    out = []
    for run in runs:
        for addr, blob in run["chunks"].items():
            mem.write(addr, blob)
        for addr, n in run["results"]:
            mem.write(addr, b"\xa5" * n)                 # not zero: a missing write shows
        await drv.start(run["desc_addr"], run["count"])
        if run.get("soft_reset_after") is not None:
            await ClockCycles(dut.aclk, run["soft_reset_after"])
            await drv.soft_reset()
            st = await wait_idle(dut, drv, JOB["limit"])
            out.append({"status": st, "irq": int(dut.irq.value), "results": []})
            continue
        st = await wait_idle(dut, drv, JOB["limit"])
        irq = int(dut.irq.value)
        blobs = [mem.read(addr, n) for addr, n in run["results"]]
        out.append({"status": st, "irq": irq, "results": blobs, "events": list(events)})
        events.clear()
        await drv.write("status", 0b110)                 # done and error cleared: irq falls
        await ClockCycles(dut.aclk, 2)
        assert not dut.irq.value
    assert not breaches, f"AXI handshake rule broken: {breaches[:5]}"
    out.append({"held": {c.name: c.offers for c in checkers}})
    with open(os.environ["FAIRYHW_OUT"], "wb") as f:
        pickle.dump(out, f)
