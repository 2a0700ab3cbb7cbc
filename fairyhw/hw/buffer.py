"""The array style's activation buffer: ``C`` columns of block RAM in banks, each bank with its own
control registers so that nothing drives logic beside all of them.

At 4 x 128 the buffer's 57 block RAMs span the ECP5 chip, and any register that drove logic beside
all of them paid a 5-7 ns route (the critical path at 99.8 MHz was the element count -> the zeroing
mask by the RAMs). So the buffer is built of banks of :data:`~fairyhw.hw.config.BANK_COLS` columns
(one 36-bit DP16KD each), and every bank registers its own copy of each control signal: write
enable, write-address counter, the zero flags of its columns (elements past K, decided by the
sequencer), and read address. Every control input is registered once at the buffer's entry, and the
copies come from there through *middle copies*, each shared by
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
    """A beat of the buffer's ``load`` stream: the ``C`` activations (16 bits each, ``p`` low), and a
    flag a column, set where the element lies past K (written as zero)."""
    return data.StructLayout({"data": 16 * cfg.cols, "zero": cfg.cols})


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

    #: Cycles from a beat on ``load`` to its write: the beat's facts registered at the entry, a
    #: middle copy, the bank's copy (the data waits beside them).
    WRITE_DELAY = 3
    #: Cycles from ``raddr`` to ``rdata``: the address registered at the entry, a middle copy, the
    #: bank's read address, the block RAM's read, its output register (without which a block RAM's
    #: clock-to-out and its routing were the critical path: 89.9 MHz on ECP5), a fabric register
    #: (the block RAM's output register -> the shared pair values was a 5.0 ns route at 4 x 128).
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

        # every control input registered once at the entry, so that each register of the sequencer
        # drives one load here and the middle copies fan out from the buffer's own registers (the
        # sequencer's `clear` and count, reaching the middle copies over the chip directly, were
        # 5-6 ns routes at 4 x 128); the data twice, beside the enable copies
        e_valid = Signal(attrs=KEEP)        # equal to the sequencer's a_valid: kept apart
        e_zero = Signal(cfg.cols, name="e_zero", reset_less=True, attrs=KEEP)
        e_clear = Signal(name="e_clear", reset_less=True, attrs=KEEP)
        e_raddr = Signal.like(self.raddr, name="e_raddr", reset_less=True, attrs=KEEP)
        width = 16 * cfg.cols
        data1, data2 = (Signal(width, name=f"data{i}", reset_less=True) for i in (1, 2))
        m.d.sync += [e_valid.eq(self.load.valid), e_zero.eq(self.load.payload.zero),
                     e_clear.eq(self.clear), e_raddr.eq(self.raddr),
                     data1.eq(self.load.payload.data), data2.eq(data1)]
        reads = []
        for b, cb in enumerate(cfg.banks):
            c0 = b * BANK_COLS
            mem = m.submodules[f"act_mem{b}"] = Memory(shape=unsigned(16 * cb), depth=depth, init=[],
                                                      attrs={"no_rw_check": 1})
            wr, rd = mem.write_port(), mem.read_port()
            # read: the chunk through a middle copy to the bank's own address register
            raddr = Signal.like(self.raddr, name=f"raddr{b}", reset_less=True, attrs=KEEP)
            m.d.sync += raddr.eq(copy(b, e_raddr, "chunk"))
            m.d.comb += rd.addr.eq(raddr)
            reads.append(rd.data)
            # write: the bank's copies of the beat's facts, its zero flags among them (the flags
            # come decided from the sequencer, where they are registers a beat ahead: each bank
            # comparing the element count itself put a comparison and its routes between the
            # count's copy and the flags, the ECP5 critical path at 120.2 MHz, 4 x 128); the flags
            # gate the write data (a comparison feeding the data registers' resets directly was the
            # ECP5 critical path at 106.3 MHz)
            g0 = (b // COPY_FANOUT) * COPY_FANOUT * BANK_COLS           # the middle copy's first column
            g1 = min(cfg.cols, g0 + COPY_FANOUT * BANK_COLS)
            b_clear = Signal(name=f"wclear{b}", reset_less=True, attrs=KEEP)
            b_en = Signal(name=f"wen{b}", reset_less=True, attrs=KEEP)
            b_addr = Signal.like(self.raddr, name=f"waddr{b}", reset_less=True, attrs=KEEP)
            b_data = Signal(16 * cb, name=f"wdata{b}", reset_less=True)
            b_zero = Signal(cb, name=f"wzero{b}", reset_less=True, attrs=KEEP)
            m.d.sync += [b_zero.eq(copy(b, e_zero[g0:g1], "zero")[c0 - g0:c0 - g0 + cb]),
                         b_clear.eq(copy(b, e_clear, "clear")), b_en.eq(copy(b, e_valid, "wen")),
                         b_data.eq(data2[16 * c0:16 * (c0 + cb)])]
            for j in range(cb):
                m.d.comb += wr.data[16 * j:16 * j + 16].eq(Mux(b_zero[j], 0, b_data[16 * j:16 * j + 16]))
            m.d.sync += b_addr.eq(Mux(b_clear, 0, b_addr + b_en))
            m.d.comb += [wr.addr.eq(b_addr), wr.en.eq(b_en)]
        rdq = Signal(16 * cfg.cols, reset_less=True)
        rdq2 = Signal(16 * cfg.cols, reset_less=True)
        m.d.sync += [rdq.eq(Cat(*reads)), rdq2.eq(rdq)]
        m.d.comb += self.rdata.eq(rdq2)
        return m
