"""AXI4 read master: a command ``(address, beats)`` in, the words read from memory out, in order.

Bursts are INCR, at most ``max_burst`` beats, never across a 4 KB boundary (an AXI rule). Reads are
issued ahead, up to ``outstanding`` bursts, but only while the FIFO has room for every beat already
asked for: so ``r.ready`` is always high (the memory is never held) and a slow consumer stops the
requests, not the bus. Size the FIFO for the memory's latency: at ``L`` cycles of read latency a FIFO
of about ``L`` beats keeps one beat a cycle flowing.
"""

from __future__ import annotations

from amaranth.hdl import Module, Mux, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.fifo import SyncFIFOBuffered
from amaranth.lib.wiring import In, Out

__all__ = ["axi_read_signature", "AxiReader", "INCR"]

#: AXI burst type INCR.
INCR = 1


def axi_read_signature(addr_width: int, data_width: int) -> wiring.Signature:
    """The read half of an AXI4 manager (ID 0): ``ar`` out, ``r`` in."""
    return wiring.Signature({
        "ar": Out(stream.Signature(data.StructLayout({"addr": addr_width, "len": 8, "size": 3,
                                                      "burst": 2}))),
        "r": In(stream.Signature(data.StructLayout({"data": data_width, "resp": 2, "last": 1}))),
    })


class AxiReader(wiring.Component):
    """Reads ``beats`` words of ``data_width`` bits from byte address ``addr`` (word-aligned).

    Ports: ``cmd`` (in: ``addr``, ``beats``; taken when idle), ``data`` (out: the words), ``axi``
    (:func:`axi_read_signature`), ``busy`` (a command not yet fully delivered), ``error`` (a read
    answered other than OKAY since the last command; its data are delivered all the same).
    """

    def __init__(self, *, addr_width: int = 32, data_width: int = 64, max_burst: int = 16,
                 outstanding: int = 4, fifo_depth: int = 64):
        if data_width not in (32, 64, 128, 256, 512, 1024):
            raise ValueError(f"data_width must be a power of two from 32 to 1024, not {data_width!r}")
        if not 1 <= max_burst <= 256:
            raise ValueError(f"max_burst must be from 1 to 256 beats, not {max_burst!r}")
        if not 1 <= outstanding <= 64:
            raise ValueError(f"outstanding must be from 1 to 64, not {outstanding!r}")
        if fifo_depth < max_burst:
            raise ValueError(f"fifo_depth ({fifo_depth}) must hold a burst ({max_burst} beats)")
        self.addr_width, self.data_width = addr_width, data_width
        self.max_burst, self.outstanding, self.fifo_depth = max_burst, outstanding, fifo_depth
        super().__init__({
            "cmd": In(stream.Signature(data.StructLayout({"addr": addr_width, "beats": 32}))),
            "data": Out(stream.Signature(data_width)),
            "axi": Out(axi_read_signature(addr_width, data_width)),
            "busy": Out(1),
            "error": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        nbytes = self.data_width // 8
        shift = nbytes.bit_length() - 1
        fifo = m.submodules.fifo = SyncFIFOBuffered(width=self.data_width, depth=self.fifo_depth)

        addr = Signal(self.addr_width)
        left = Signal(32)                                  # beats not yet requested
        owed = Signal(32)                                  # beats not yet delivered
        space = Signal(range(self.fifo_depth + 1), init=self.fifo_depth)   # FIFO room not yet asked for
        inflight = Signal(range(self.outstanding + 1))     # bursts requested, last beat not yet in
        # the next burst: at most max_burst, what is left, and the beats to the 4 KB boundary
        to_4k = Signal(range((4096 >> shift) + 1))
        want, n = Signal(range(self.max_burst + 1)), Signal(range(self.max_burst + 1))
        m.d.comb += [to_4k.eq((4096 - addr[:12]) >> shift),
                     want.eq(Mux(left < self.max_burst, left, self.max_burst)),
                     n.eq(Mux(to_4k < want, to_4k, want))]

        ar = self.axi.ar
        m.d.comb += [ar.valid.eq((left != 0) & (space >= n) & (inflight < self.outstanding)),
                     ar.payload.addr.eq(addr), ar.payload.len.eq(n - 1), ar.payload.size.eq(shift),
                     ar.payload.burst.eq(INCR)]
        r = self.axi.r
        m.d.comb += [r.ready.eq(1), fifo.w_en.eq(r.valid), fifo.w_data.eq(r.payload.data)]
        wiring.connect(m, wiring.flipped(self.data), fifo.r_stream)

        issued = ar.valid & ar.ready
        burst_done = r.valid & r.payload.last
        delivered = self.data.valid & self.data.ready
        m.d.sync += [space.eq(space - Mux(issued, n, 0) + delivered),
                     inflight.eq(inflight + issued - burst_done)]
        with m.If(issued):
            m.d.sync += [addr.eq(addr + (n << shift)), left.eq(left - n)]
        with m.If(delivered):
            m.d.sync += owed.eq(owed - 1)
        with m.If(r.valid & (r.payload.resp != 0)):
            m.d.sync += self.error.eq(1)

        m.d.comb += [self.cmd.ready.eq(owed == 0), self.busy.eq(owed != 0)]
        with m.If(self.cmd.valid & self.cmd.ready):
            m.d.sync += [addr.eq(self.cmd.payload.addr), left.eq(self.cmd.payload.beats),
                         owed.eq(self.cmd.payload.beats), self.error.eq(0)]
        return m
