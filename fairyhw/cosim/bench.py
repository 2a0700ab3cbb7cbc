"""The cocotb side of a whole-model run (loaded by the simulator, not imported by the package).

The bench (:func:`fairyhw.cosim.memory.bench_verilog`) has the system top and its memory inside;
this module drives its clock and reset, reads and writes the memory's words through VPI, and drives
the AXI4-Lite registers with :class:`AxiLite`, which waits on the clock only while a transfer is in
flight. A layer's run waits on the interrupt's rising edge, so no Python runs on the clock edges of
the data plane. :func:`fairyhw.cosim.decode.run` runs in a :func:`cocotb.bridge` thread and reaches
the hardware through :func:`cocotb.resume`.

Job: ``FAIRYHW_RUN_JOB`` (a JSON file, see :func:`fairyhw.cosim.decode.run`); result:
``FAIRYHW_RUN_OUT`` (JSON), or on an error the error's text under ``"error"``.
"""

import json
import os
import traceback

import cocotb
from cocotb.task import bridge, resume
from cocotb.triggers import ClockCycles, ReadOnly, RisingEdge

from fairyhw import FairyError
from fairyhw.hw.host import Driver


class AxiLite:
    """An AXI4-Lite manager on the bench's ``s_axil_*`` ports with the ``read_dword``/``write_dword``
    of :class:`~fairyhw.hw.host.Driver`'s bus."""

    def __init__(self, dut):
        self.dut, self.clk = dut, dut.aclk
        for name in ("awvalid", "wvalid", "bready", "arvalid", "rready"):
            getattr(dut, f"s_axil_{name}").value = 0
        dut.s_axil_awprot.value = 0
        dut.s_axil_arprot.value = 0
        dut.s_axil_wstrb.value = 0xF

    async def _high(self, signal):
        """Return in the read-only phase of the first cycle, this one included, where ``signal`` is
        high (its handshake happens at the next rising edge)."""
        await ReadOnly()
        while not signal.value:
            await RisingEdge(self.clk)
            await ReadOnly()

    async def write_dword(self, addr, value):
        d = self.dut
        await RisingEdge(self.clk)
        d.s_axil_awaddr.value, d.s_axil_wdata.value = addr, value
        d.s_axil_awvalid.value = d.s_axil_wvalid.value = 1
        d.s_axil_bready.value = 1
        aw = w = False
        while not (aw and w):
            await ReadOnly()
            aw = aw or bool(d.s_axil_awready.value)
            w = w or bool(d.s_axil_wready.value)
            await RisingEdge(self.clk)
            if aw:
                d.s_axil_awvalid.value = 0
            if w:
                d.s_axil_wvalid.value = 0
        await self._high(d.s_axil_bvalid)
        await RisingEdge(self.clk)
        d.s_axil_bready.value = 0

    async def read_dword(self, addr):
        d = self.dut
        await RisingEdge(self.clk)
        d.s_axil_araddr.value = addr
        d.s_axil_arvalid.value = 1
        d.s_axil_rready.value = 1
        await self._high(d.s_axil_arready)
        await RisingEdge(self.clk)
        d.s_axil_arvalid.value = 0
        await self._high(d.s_axil_rvalid)
        value = int(d.s_axil_rdata.value)
        await RisingEdge(self.clk)
        d.s_axil_rready.value = 0
        return value


class Hardware:
    """The memory's words and the registers, as coroutines (called from the job's thread through
    :func:`cocotb.resume`)."""

    def __init__(self, dut, word_bytes):
        self.dut, self.w = dut, word_bytes
        self.mem = dut.memory.mem
        self.drv = Driver(AxiLite(dut))

    async def write(self, addr, blob):
        w = self.w
        if addr % w:
            raise FairyError(f"write at {addr:#x}: not on a {w}-byte word")
        blob = bytes(blob) + bytes(-len(blob) % w)
        base = addr // w
        mem = self.mem
        for i in range(len(blob) // w):
            mem[base + i].value = int.from_bytes(blob[i * w:(i + 1) * w], "little")

    async def read(self, addr, nbytes):
        w = self.w
        base, n = addr // w, -(-nbytes // w)
        mem = self.mem
        out = b"".join(int(mem[base + i].value).to_bytes(w, "little") for i in range(n))
        return out[:nbytes]

    async def run(self, desc_addr, count):
        dut = self.dut
        await self.drv.start(desc_addr, count, irq=True)
        await ReadOnly()
        if not dut.irq.value:
            await RisingEdge(dut.irq)
        st = await self.drv.status()
        await self.drv.write("status", 0b110)          # done and error cleared: the interrupt falls
        return st


@cocotb.test()
async def decode(dut):
    from fairyhw.cosim.decode import run
    with open(os.environ["FAIRYHW_RUN_JOB"]) as f:
        job = json.load(f)
    dut.aresetn.value = 0
    hw = Hardware(dut, job["config"]["data_width"] // 8)
    await ClockCycles(dut.aclk, 5)
    dut.aresetn.value = 1
    await ClockCycles(dut.aclk, 2)
    assert await hw.drv.read("id") == 0x46485731

    class Blocking:
        write = staticmethod(resume(hw.write))
        read = staticmethod(resume(hw.read))
        run = staticmethod(resume(hw.run))

    def job_thread():
        try:
            return run(job, Blocking, log=lambda s: print(s, flush=True))
        except FairyError as e:
            return {"error": str(e)}
        except Exception:                                   # a bug: its traceback for the report
            return {"error": traceback.format_exc()}

    result = await bridge(job_thread)()
    with open(os.environ["FAIRYHW_RUN_OUT"], "w") as f:
        json.dump(result, f)
