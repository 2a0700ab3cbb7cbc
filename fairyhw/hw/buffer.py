"""The array style's activation buffer: ``C`` columns of block RAM in banks, each bank with its own
control registers so that nothing drives logic beside all of them.

At 4 x 128 the buffer's 57 block RAMs span the ECP5 chip, and any register that drove logic beside
all of them paid a 5-7 ns route (the critical path at 99.8 MHz was the element count -> the zeroing
mask by the RAMs). So the buffer is built of banks of :data:`~fairyhw.hw.config.BANK_COLS` columns
(one 36-bit DP16KD each), and every bank registers its own copy of each control signal: write
enable, write-address counter, last-beat flag and count bits (it computes its own zeroing of elements
past K), and read address. The copies come through *middle copies*, each shared by
:data:`~fairyhw.hw.config.COPY_FANOUT` banks, so that no register drives more than a few far loads.
The copies carry ``keep`` (:data:`KEEP`), or synthesis would merge them back into one register.

A bank is written only while loading and read only while running, so a read never meets a write to
its address: ``no_rw_check`` tells synthesis not to emulate read-before-write (on ECP5 that emulation
cost a flip-flop and a LUT a data bit, and a LUT between the block RAM and its read-data register).
"""

from __future__ import annotations

from amaranth.hdl import Cat, Module, Mux, Signal, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from .config import BANK_COLS, COPY_FANOUT, EngineConfig
from .timing import BUFFER_READ_DELAY

__all__ = ["KEEP", "ActBuffer", "load_layout"]

#: The attribute of a register that copies another so that each copy sits beside what it drives:
#: synthesis must not merge the copies back into one register (fairyhw's Yosys flow puts ``keep``
#: on the flip-flops of wires that carry it; other tools honour it on the register, or have a
#: setting to keep equivalent registers). Every register of a set of equal ones must carry it: Yosys
#: merges a register without it into an equal one with it (seen at 4 x 128: the sequencer's command
#: register merged into a kept copy for the buffer, which then drove both).
KEEP = {"keep": 1}


def _depth(cfg: EngineConfig) -> int:
    return -(-cfg.max_in // cfg.cols)


def load_layout(cfg: EngineConfig) -> data.StructLayout:
    """A beat of the buffer's ``load`` stream: the ``C`` activations (16 bits each, ``p`` low), whether
    it is the layer's last beat, and the low bits of the elements left to load before it (elements
    ``low`` and up of a last beat lie past K and are written as zeros)."""
    low = min(cfg.cols.bit_length(), cfg.max_in.bit_length())      # the element count's width at most
    return data.StructLayout({"data": 16 * cfg.cols, "last": 1, "low": unsigned(low)})


class ActBuffer(wiring.Component):
    """``ceil(max_in / C)`` chunks of ``C`` activations.

    Ports
    -----
    load : stream (in, always ready)
        One beat a chunk, in order from chunk 0, in the cycle the sequencer takes it
        (:func:`load_layout`); a bank writes it :attr:`WRITE_DELAY` cycles later.
    clear : in
        A new layer: the write addresses return to chunk 0 (a pulse before its first beat).
    raddr : in
        The chunk to read; :attr:`rdata` holds it :attr:`READ_DELAY` cycles later.
    rdata : out
        ``C`` activations of 16 bits, from a register.
    """

    #: Cycles from a beat on ``load`` to its write: the beat registered, a middle copy, the bank's.
    WRITE_DELAY = 3
    #: Cycles from ``raddr`` to ``rdata``: a middle copy, the bank's read address, the block RAM's
    #: read, the read-data register (without which a block RAM's clock-to-out and its routing were
    #: the critical path: 89.9 MHz on ECP5).
    READ_DELAY = BUFFER_READ_DELAY

    def __init__(self, config: EngineConfig):
        self._cfg = config
        depth = _depth(config)
        super().__init__({
            "load": In(stream.Signature(load_layout(config), always_ready=True)),
            "clear": In(1),
            "raddr": In(range(max(depth, 2))),
            "rdata": Out(16 * config.cols),
        })

    def elaborate(self, platform):
        m = Module()
        cfg = self._cfg
        depth = _depth(cfg)
        mids = {}

        def copy(b, src, what):
            """The middle copy of ``src`` (a register a cycle after it) that bank ``b`` registers,
            shared by COPY_FANOUT banks (at 4 x 128 a sequencer spread toward the 64 banks paid two
            3.4 ns routes for its own decisions: 117.7 MHz)."""
            key = (what, b // COPY_FANOUT)
            if key not in mids:
                mid = Signal.like(src, name=f"{what}_mid{b // COPY_FANOUT}", reset_less=True, attrs=KEEP)
                m.d.sync += mid.eq(src)
                mids[key] = mid
            return mids[key]

        # the beat registered, and its data a cycle more (beside the banks' enable copies)
        valid = Signal()
        data1, data2 = Signal(16 * cfg.cols, reset_less=True), Signal(16 * cfg.cols, reset_less=True)
        m.d.sync += [valid.eq(self.load.valid), data1.eq(self.load.payload.data), data2.eq(data1)]
        reads = []
        for b, cb in enumerate(cfg.banks):
            c0 = b * BANK_COLS
            mem = m.submodules[f"act_mem{b}"] = Memory(shape=unsigned(16 * cb), depth=depth, init=[],
                                                      attrs={"no_rw_check": 1})
            wr, rd = mem.write_port(), mem.read_port()
            # read: the chunk through a middle copy to the bank's own address register
            raddr = Signal.like(self.raddr, name=f"raddr{b}", reset_less=True, attrs=KEEP)
            m.d.sync += raddr.eq(copy(b, self.raddr, "chunk"))
            m.d.comb += rd.addr.eq(raddr)
            reads.append(rd.data)
            # write: the bank's copies of the beat's facts; elements past K (the count's low bits,
            # compared on the last beat only: the whole count's comparison was the Xilinx netlist's
            # longest path, 17 CARRY4s) into a register of zero flags that gate the write data (the
            # comparison feeding the data registers' resets directly was the ECP5 critical path at
            # 106.3 MHz)
            b_last = Signal(name=f"zlast{b}", reset_less=True, attrs=KEEP)
            b_low = Signal.like(self.load.payload.low, name=f"zlow{b}", reset_less=True, attrs=KEEP)
            b_clear = Signal(name=f"wclear{b}", reset_less=True, attrs=KEEP)
            b_en = Signal(name=f"wen{b}", reset_less=True, attrs=KEEP)
            b_addr = Signal.like(self.raddr, name=f"waddr{b}", reset_less=True, attrs=KEEP)
            b_data = Signal(16 * cb, name=f"wdata{b}", reset_less=True)
            b_zero = Signal(cb, name=f"wzero{b}", reset_less=True)
            m.d.sync += [b_last.eq(copy(b, self.load.payload.last, "last")),
                         b_low.eq(copy(b, self.load.payload.low, "low")),
                         b_clear.eq(copy(b, self.clear, "clear")), b_en.eq(copy(b, valid, "wen")),
                         b_data.eq(data2[16 * c0:16 * (c0 + cb)])]
            for j in range(cb):
                c = c0 + j
                m.d.sync += b_zero[j].eq(b_last & (b_low <= c) if c else 0)
                m.d.comb += wr.data[16 * j:16 * j + 16].eq(Mux(b_zero[j], 0, b_data[16 * j:16 * j + 16]))
            m.d.sync += b_addr.eq(Mux(b_clear, 0, b_addr + b_en))
            m.d.comb += [wr.addr.eq(b_addr), wr.en.eq(b_en)]
        rdq = Signal(16 * cfg.cols, reset_less=True)
        m.d.sync += rdq.eq(Cat(*reads))
        m.d.comb += self.rdata.eq(rdq)
        return m
