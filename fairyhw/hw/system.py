"""The system top: the engine behind AXI4 memory masters and AXI4-Lite registers.

A run is a *descriptor list* in memory (:data:`~fairyhw.hw.config.DESCRIPTOR`, 64 bytes a layer):
the host writes the list's address and length into the registers (:data:`fairyhw.hw.axi.REGISTERS`)
and pulses ``ctrl.start``; the core then, for each layer, fetches its descriptor, checks it, reads
the activations and the weight stream from memory, runs the layer on the engine and writes its
results back, with no host step between layers. ``status.done`` (or ``status.error`` with its code,
:data:`~fairyhw.hw.config.ERRORS`) and the interrupt follow.

Memory interface (:class:`~fairyhw.hw.config.SystemConfig`)
    ``m_ctrl``: an AXI4 read master for the descriptors and the activations. ``m_wgt<p>``: one read
    master per weight port; port ``p`` reads its slice of every weight word from its own region
    (``wgt + p * wgt_stride``), one pass after another, each pass from a word boundary. ``m_res``: an
    AXI4 write master for the results, written in order from ``res``, each sum sign-extended to 32
    bits. Items narrower than a memory word are packed at power-of-two slots, several a word; wider
    ones take whole words (:func:`~fairyhw.hw.config.slot_bits`). :mod:`fairyhw.hw.host` lays the
    memory out and reads it back.

Counters: cycles of the run, cycles the engine waited on memory (a stream it was ready for was empty,
or its result could not leave), result beats written.

Soft reset (``ctrl.soft_reset``) holds the engine in reset, stops issuing bursts, lets those in flight
finish (reads dropped, writes given their data), then resets the masters and returns to idle, so the
AXI protocol is never broken.
"""

from __future__ import annotations

from amaranth.hdl import (Array, Cat, ClockDomain, ClockSignal, Const, DomainRenamer, Module, Mux,
                          ResetInserter, Signal)
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from .axi import RegisterFile, axil_signature
from .buffer import KEEP
from .config import (DESCRIPTOR, DESCRIPTOR_BYTES, HALF, RESULT_SUM_BITS, SystemConfig, slot_bits,
                     validating)
from .dma import (AxiReader, AxiWriter, BlockFIFO, CreditLink, SplitLink, add_in_halves,
                  axi_read_signature, axi_write_signature)
from .engine import Engine
from .timing import CONTROL_READER_STAGED

__all__ = ["Unpacker", "Packer", "SystemTop", "REG_ADDR_WIDTH", "ERROR_CODES", "wrapper_ports",
           "wrapper_verilog"]

#: Byte-address bits of the register file's AXI4-Lite port.
REG_ADDR_WIDTH = 8
#: Error codes by name (their meanings: :data:`fairyhw.hw.config.ERRORS`).
ERROR_CODES = {"list": 1, "k": 2, "rows": 3, "align": 4, "range": 5, "read": 6, "write": 7}


class Unpacker(wiring.Component):
    """Memory words in, items of ``width`` bits out, at :func:`slot_bits` slots.

    Items narrower than a word: ``D / slot`` a word, a transfer of ``length`` items starting on a
    word (the rest of its last word skipped), transfers back to back. Wider items: ``slot / D`` words
    each (``length`` unused). Reset between layers.

    ``registered`` (wider items only): each word is written into its part of the item a cycle after
    it is taken, from a register of the word and a register a part (so no handshake drives the
    parts' enables), and an item is offered a cycle later than otherwise
    (:data:`fairyhw.hw.timing.UNPACK_DELAY`). It needs a consumer whose ``ready``, once high,
    stays high until it takes an item (the engine's act port, the run's DESC state), so that the
    next item's first word can be taken while the one before is being written, with no bubble.
    """

    def __init__(self, width: int, data_width: int, *, registered: bool = False, length_bits: int = 32):
        self.width, self.data_width, self.length_bits = width, data_width, length_bits
        self.slot = slot_bits(width, data_width)
        self.registered = registered and self.slot > data_width
        super().__init__({"i": In(stream.Signature(data_width)), "o": Out(stream.Signature(width)),
                          "length": In(length_bits)})

    def elaborate(self, platform):
        m = Module()
        D, w, slot = self.data_width, self.width, self.slot
        if slot <= D:
            per = D // slot
            idx = Signal(range(max(per, 2)))
            # the items left in the transfer, and whether this one is its last, in registers (a
            # comparison of the count in front of the handshake was on the system top's critical
            # path); `fresh`: a transfer starts, of `length` items
            left = Signal(self.length_bits)
            last = Signal()
            fresh = Signal(init=1)
            len1_v = self.length == 1
            len1 = Signal()
            m.d.sync += len1.eq(len1_v)
            left2 = Signal()                  # == (left == 2), kept as `left` steps
            # whether the item offered ends the word (the transfer's last item or the word's last
            # slot), `end_now`, a register of its own (reset-less), so that the input's ready is one
            # LUT of two registers (from the unpacker's counts through two LUTs into the word link's
            # handshake, a route each way, it was the system top's critical path at 133.2 MHz; as a
            # select by `fresh` between `len1` and a register of the later items' ends, at 140.3
            # MHz): set from next values at each item, and before a transfer's first item following
            # `length == 1` in every cycle, as `len1` does (so a cycle after `length` is set)
            end_now = Signal(reset_less=True) if per > 1 else Const(1)
            items = Array(self.i.payload[j * slot:j * slot + w] for j in range(per))
            last_item = Mux(fresh, len1, last)
            slot_next = Mux(end_now, per == 1, idx == per - 2)  # the next item is the word's last slot
            m.d.comb += [self.o.valid.eq(self.i.valid), self.o.payload.eq(items[idx]),
                         self.i.ready.eq(self.o.ready & end_now)]
            with m.If(self.o.valid & self.o.ready):
                m.d.sync += idx.eq(Mux(end_now, 0, idx + 1))
                with m.If(last_item):
                    m.d.sync += fresh.eq(1)
                with m.Elif(fresh):
                    m.d.sync += [fresh.eq(0), left.eq(self.length - 1), last.eq(self.length == 2),
                                 left2.eq(self.length == 3)]
                with m.Else():
                    m.d.sync += [left.eq(left - 1), last.eq(left2), left2.eq(left == 3)]
            if per > 1:
                with m.If(self.o.valid & self.o.ready):
                    with m.If(last_item):
                        m.d.sync += end_now.eq(len1_v)
                    with m.Elif(fresh):
                        m.d.sync += end_now.eq((self.length == 2) | slot_next)
                    with m.Else():
                        m.d.sync += end_now.eq(left2 | slot_next)
                with m.Elif(fresh):
                    m.d.sync += end_now.eq(len1_v)
            return m
        k = slot // D
        buf = Signal(slot, reset_less=True)
        if self.registered:
            return self._registered(m, k, buf)
        have, have_next = Signal(range(k + 1)), Signal(range(k + 1))
        full = Signal()                       # == (have == k), a register: the input's handshake is
        m.d.comb += [self.o.valid.eq(full), self.o.payload.eq(buf[:w]),      # one LUT of registers
                     self.i.ready.eq(~full | self.o.ready)]
        took = self.o.valid & self.o.ready
        take = self.i.valid & self.i.ready
        m.d.comb += have_next.eq(Mux(take, Mux(took, 1, have + 1), Mux(took, 0, have)))
        m.d.sync += [have.eq(have_next), full.eq(have_next == k)]
        # word j of an item into its own part of the buffer (with the whole buffer shifting on
        # every word, the handshake drove the enables of all its flip-flops, and its LUT, placed
        # among them by the engine, left the `full` -> ready -> `full` loop two 3 ns routes: the
        # system top's critical path at 122.7 MHz)
        at = Mux(full, 0, have)               # the part the word taken now goes to
        for j in range(k):
            with m.If(take & (at == j)):
                m.d.sync += buf[j * D:(j + 1) * D].eq(self.i.payload)
        return m

    def _registered(self, m, k, buf):
        D = self.data_width
        at = Signal(range(k))                     # the part the next word taken goes to
        w_data = Signal(D, reset_less=True)       # the word taken last cycle
        w_en = Signal(k)                          # ... and its part (one-hot), written this cycle
        full = Signal()                           # the item is whole in `buf`: offered
        # ... and its copy for the consumer's side (KEEP: synthesis merges equal registers), so that
        # the consumer's handshake reads a register placed by the consumer (the engine's load side),
        # not the one by the unpacker's input
        full_o = Signal(name="full_o", attrs=KEEP)
        took = full & self.o.ready
        # the item before is out of the way of a first word taken now (written next cycle, when the
        # consumer reads the item at the latest): it is gone or leaves now, or its last word is
        # being written and the consumer is ready (it stays so until it takes the item, offered next
        # cycle, so it takes it then)
        clear0 = (~full & ~w_en[k - 1]) | took | (w_en[k - 1] & self.o.ready)
        m.d.comb += [self.o.valid.eq(full_o), self.o.payload.eq(buf[:self.width]),
                     self.i.ready.eq((at != 0) | clear0)]
        take = self.i.valid & self.i.ready
        full_next = w_en[k - 1] | (full & ~took)
        m.d.sync += [w_data.eq(self.i.payload), w_en.eq(Cat(take & (at == j) for j in range(k))),
                     full.eq(full_next), full_o.eq(full_next)]
        with m.If(take):
            m.d.sync += at.eq(Mux(at == k - 1, 0, at + 1))
        for j in range(k):
            with m.If(w_en[j]):
                m.d.sync += buf[j * D:(j + 1) * D].eq(w_data)
        return m


class Packer(wiring.Component):
    """Items of ``width`` bits in (with ``last`` on a layer's final one), memory words out at
    :func:`slot_bits` slots (``last`` on the layer's final word; a partial word's empty slots are 0).

    The words leave through a :class:`~fairyhw.hw.dma.CreditLink`, whose ``i.ready`` (a register) is
    the packer's input ready, so the input's handshake is one LUT of two registers and no consumer's
    ready reaches the slots' enables (the packer's own `full` -> ready -> slot enables -> `full` loop,
    its LUTs pulled toward the slots' word register, was the system top's critical path at 123.5 MHz).
    Items narrower than a word: every slot is a register, and the word that an item completes goes
    into the link the cycle after the item (:data:`~fairyhw.hw.timing.PACK_DELAY`), from the word
    register, while the link has two places free when the item is taken (``room2``). Wider items:
    shifted out a word a cycle into the link (the first a cycle after the item).
    """

    def __init__(self, width: int, data_width: int):
        self.width, self.data_width = width, data_width
        self.slot = slot_bits(width, data_width)
        lay = lambda n: data.StructLayout({"data": n, "last": 1})
        self._word = lay(data_width)
        super().__init__({"i": In(stream.Signature(lay(width))), "o": Out(stream.Signature(lay(data_width)))})

    def elaborate(self, platform):
        m = Module()
        D, w, slot = self.data_width, self.width, self.slot
        out = m.submodules.out = CreditLink(self._word)
        wiring.connect(m, out.o, wiring.flipped(self.o))
        if slot <= D:
            per = D // slot
            # the word goes into the link from registers (the word, `push`, `push_last`) a cycle
            # after its last item: from the input, the item's `last` (read from the engine's credit
            # link's RAM) through the word's end into the link's count was the system top's
            # critical path at 137.8 MHz, and the item's data into the link's RAM on its failing paths
            took_in = self.i.valid & out.room2
            m.d.comb += self.i.ready.eq(out.room2)
            word = Signal(D, reset_less=True)
            push, push_last = Signal(), Signal()
            idx = Signal(range(max(per, 2)))
            # `at_end` == (idx == per - 1), a register (the comparison in front of the word's hand-over
            # was on the system top's critical path at 113.0 MHz)
            at_end = Signal(init=int(per == 1))
            ends = at_end | self.i.payload.last
            with m.If(took_in):
                with m.If(ends):
                    m.d.sync += [idx.eq(0), at_end.eq(per == 1)]
                with m.Else():
                    m.d.sync += [idx.eq(idx + 1), at_end.eq(idx == per - 2)]
            # slot `idx` takes the input every cycle, taken or not: the cycle its item is taken is
            # the last before `idx` moves on, so the slot ends with the item (with the handshake as
            # the slots' enable, it was the system top's most failing endpoints after the descriptor)
            with m.Switch(idx):
                for j in range(per):
                    with m.Case(j):
                        if j == 0:      # a new word: its other slots cleared
                            m.d.sync += word.eq(self.i.payload.data)
                        else:
                            m.d.sync += word[j * slot:j * slot + w].eq(self.i.payload.data)
            # the word handed over the cycle after its last item, from the word register (0 above
            # the item's slot: cleared as slot 0 was written; the next word's first item, taken in
            # that cycle, is written into it at the cycle's end)
            m.d.sync += [push.eq(took_in & ends), push_last.eq(self.i.payload.last)]
            m.d.comb += [out.i.valid.eq(push), out.i.payload.data.eq(word), out.i.payload.last.eq(push_last)]
            return m
        k = slot // D
        buf = Signal(slot, reset_less=True)
        have = Signal(range(k + 1))
        last = Signal()
        took_in = self.i.valid & self.i.ready
        took_out = out.i.valid & out.i.ready
        m.d.comb += [out.i.valid.eq(have != 0), out.i.payload.data.eq(buf[:D]),
                     out.i.payload.last.eq(last & (have == 1)),
                     self.i.ready.eq((have == 0) | ((have == 1) & out.i.ready))]
        with m.If(took_in):
            m.d.sync += [buf.eq(self.i.payload.data), have.eq(k), last.eq(self.i.payload.last)]
        with m.Elif(took_out):
            m.d.sync += [buf.eq(buf[D:]), have.eq(have - 1)]
        return m


class SystemTop(wiring.Component):
    """The engine of ``config.engine`` with its DMA, registers and descriptor sequencer (see the
    module).

    Ports: ``s_axil`` (AXI4-Lite subordinate, :data:`REG_ADDR_WIDTH` address bits), ``m_ctrl`` (AXI4
    read), ``m_wgt0`` ... (AXI4 read, one per weight port), ``m_res`` (AXI4 write), ``irq``.
    """

    def __init__(self, config: SystemConfig):
        with validating(self):
            if not isinstance(config, SystemConfig):
                raise TypeError(f"SystemTop takes a SystemConfig, not {config!r}")
        self.config = config
        A, D = config.addr_width, config.data_width
        members = {"s_axil": In(axil_signature(REG_ADDR_WIDTH)),
                   "m_ctrl": Out(axi_read_signature(A, D))}
        for p in range(config.weight_ports):
            members[f"m_wgt{p}"] = Out(axi_read_signature(A, D))
        members["m_res"] = Out(axi_write_signature(A, D))
        members["irq"] = Out(1)
        super().__init__(members)

    def elaborate(self, platform):
        m = Module()
        cfg = self.config
        ecfg = cfg.engine
        A, D, P = cfg.addr_width, cfg.data_width, cfg.weight_ports
        wb = cfg.word_bytes
        wshift = wb.bit_length() - 1
        burst = dict(addr_width=A, data_width=D, max_burst=cfg.max_burst, outstanding=cfg.outstanding)
        # the counts of a layer, as wide as the largest (of 32 bits, their comparisons and sums were
        # on the DMA's critical paths)
        CW = max(ecfg.max_in.bit_length(), cfg.command_beats_bits) + 1

        regs = m.submodules.regs = RegisterFile(REG_ADDR_WIDTH)
        wiring.connect(m, wiring.flipped(self.s_axil), regs.bus)
        m.d.comb += self.irq.eq(regs.irq)

        # the masters, reset at the end of a soft reset (m_rst); the datapath, reset between layers
        # the resets of the masters (end of a soft reset) and of the datapath (a layer's start), each
        # a register a cycle after the state that asks for it (from the state machine's next-state
        # logic they were the system top's critical path at 73.3 MHz)
        # (KEEP on those with copies below, so that none merges into a copy)
        m_rst, clear = Signal(attrs=KEEP), Signal()
        # (`eng_rst` is 1 while the system is reset: the engine's only reset, see `eng` below)
        eng_rst = Signal(init=1)
        m_rst_next, clear_next = Signal(), Signal()
        m.d.sync += [m_rst.eq(m_rst_next), clear.eq(clear_next)]
        # `aborting` == the run's state is ABORT, a register of its own (the state's decoding in front of
        # the read masters' data handshake was the system top's critical path at 96.4 MHz)
        aborting = Signal()
        # the engine's reset, a register a cycle behind `aborting | m_rst` (so the engine is held in
        # reset while the masters reset, and from a cycle into an abort; as an OR of the two in front
        # of the engine's thousands of flip-flops it was on the DMA's critical paths)
        m.d.sync += eng_rst.eq(aborting | m_rst)
        # the datapath's resets, registers too: `dp_rst` == clear | m_rst, `res_rst` == eng_rst | clear
        # (as ORs of the two registers, in front of the resets of the unpackers, links and FIFOs
        # across the chip, they were on the system top's failing paths)
        dp_rst, res_rst = Signal(attrs=KEEP), Signal()
        m.d.sync += [dp_rst.eq(clear_next | m_rst_next), res_rst.eq(aborting | m_rst | clear_next)]

        central = {"m_rst": m_rst, "dp_rst": dp_rst}

        def rst_copy(kind, name):
            """A register copy of the reset ``kind`` ("m_rst" or "dp_rst") for one block (KEEP:
            synthesis merges equal registers), placed by that block, a cycle behind the central
            register (one register for all of them, fanned out to every master, link, unpacker and
            FIFO across the chip, was on the system top's failing paths; so were copies made from
            the state machine's next-state logic, a route across the chip after its LUTs)."""
            r = Signal(name=f"{kind}_{name}", attrs=KEEP)
            m.d.sync += r.eq(central[kind])
            return r
        # every master quiet, a register; only while aborting, as of the cycle before (a master issues
        # nothing while aborting, so the flag is never early; the masters' `quiet` in front of the state
        # machine's next state was on the system top's critical path)
        all_quiet = Signal()
        # each command's length as wide as the longest (the read masters' counts and comparisons
        # of 32 bits were their critical paths alone); a result burst's at most `max_burst`
        beats = cfg.command_beats_bits
        # the control reader's command through a register of its own (timing.CONTROL_READER_STAGED,
        # which the cycle model reads too): `c_pend`, set by the state machine's transitions from a
        # dozen conditions, then reaches that register alone (as the enable of the reader's ~250
        # command flip-flops it was placed by them, and its logic from the state machine paid two
        # routes across: the system top's critical path at 156.4 MHz)
        ctrl = AxiReader(**burst, fifo_depth=cfg.fifo_depth, beats_width=beats,
                         staged=CONTROL_READER_STAGED)
        wgts = [AxiReader(**burst, fifo_depth=cfg.fifo_depth, beats_width=beats) for _ in range(P)]
        res_w = AxiWriter(**burst, beats_width=cfg.max_burst.bit_length())
        m.submodules.rd_ctrl = ResetInserter(rst_copy("m_rst", "rd_ctrl"))(ctrl)
        for p, rd in enumerate(wgts):
            m.submodules[f"rd_wgt{p}"] = ResetInserter(rst_copy("m_rst", f"rd_wgt{p}"))(rd)
        m.submodules.wr_res = ResetInserter(rst_copy("m_rst", "wr_res"))(res_w)
        # each read master's `abort`, a register copy of `aborting` of its own a cycle behind (KEEP),
        # placed by the master (one register for all of them, beside the state machine, was a 4.5 ns
        # route into a weight master's FIFO: the system top's critical path at 140.3 MHz). The
        # masters' `quiet` counts from the cycle after their copies rose (`abort_seen`, one more copy,
        # by the state machine): a command a master took in ABORT's first cycle, before its copy
        # rose, then shows in its `quiet`
        abort_seen = Signal()
        m.d.sync += abort_seen.eq(aborting)
        for name, rd in [("rd_ctrl", ctrl), *((f"rd_wgt{p}", rd) for p, rd in enumerate(wgts))]:
            c = Signal(name=f"abort_{name}", attrs=KEEP)
            m.d.sync += c.eq(aborting)
            m.d.comb += rd.abort.eq(c)
        m.d.sync += all_quiet.eq(aborting & abort_seen & Cat(*(r.quiet for r in [ctrl, *wgts, res_w])).all())
        wiring.connect(m, ctrl.axi, wiring.flipped(self.m_ctrl))
        for p, rd in enumerate(wgts):
            wiring.connect(m, rd.axi, wiring.flipped(getattr(self, f"m_wgt{p}")))
        wiring.connect(m, res_w.axi, wiring.flipped(self.m_res))

        engine = Engine(ecfg)
        # the engine in a domain of its own: the same clock, and `eng_rst` (a register, 1 from the
        # system's reset until a cycle after it) its only reset. (Inserted into the sync domain, the
        # engine's reset was `rst | eng_rst`, one LUT fanned out to its control registers across
        # the chip, in front of their own reset logic: on the system top's failing paths.)
        eng = m.domains.eng = ClockDomain("eng", local=True)
        m.d.comb += [eng.clk.eq(ClockSignal("sync")), eng.rst.eq(eng_rst)]
        m.submodules.engine = DomainRenamer("eng")(engine)
        # the descriptor's words written into its item from registers (`registered`: no handshake
        # drives the item's enables; a cycle later), and the item is the descriptor's fields
        # themselves while the layer runs (copied into registers in DESC, the copy's enables behind
        # the unpacker's valid were the most failing endpoints of the system top's placement)
        desc_un = Unpacker(8 * DESCRIPTOR_BYTES, D, registered=True)
        act_un = Unpacker(cfg.act_bits, D, registered=True, length_bits=CW)
        wgt_un = [Unpacker(cfg.slice_bits, D, length_bits=CW) for _ in range(P)]
        packer = Packer(cfg.result_bits, D)
        res_fifo = BlockFIFO(D, max(2 * cfg.max_burst, 4))
        for name, sub in (("desc_un", desc_un), ("act_un", act_un), ("packer", packer),
                          ("res_fifo", res_fifo)):
            m.submodules[name] = ResetInserter(rst_copy("dp_rst", name))(sub)
        for p, u in enumerate(wgt_un):
            m.submodules[f"wgt_un{p}"] = ResetInserter(rst_copy("dp_rst", f"wgt_un{p}"))(u)

        # -- the run's registers ----------------------------------------------------------------
        desc_ptr = Signal(A + 1)
        # == desc_ptr + DESCRIPTOR_BYTES, in two halves over two cycles (the pointer is set in START
        # and NEXT only, many cycles before the NEXT that uses it; a 65-bit carry chain in NEXT was on
        # the DMA's failing paths)
        desc_next, desc_nlo = Signal(A + 1), Signal(33)
        m.d.sync += [desc_nlo.eq(desc_ptr[:32] + DESCRIPTOR_BYTES),
                     desc_next.eq(Cat(desc_nlo[:32], desc_ptr[32:] + desc_nlo[32]))]
        layers_left, layer = Signal(32), Signal(32)   # layers of the list not yet finished, the one running
        # the descriptor's fields: the registered unpacker's item (it holds until the next
        # descriptor's first word, in the next layer's DESC), or a copy taken in DESC where a word
        # holds the whole descriptor (the plain unpacker offers the word itself)
        if desc_un.registered:
            d = {name: desc_un.o.payload[32 * i:32 * i + 32] for i, name in enumerate(DESCRIPTOR)}
        else:
            d = {name: Signal(32, name=f"d_{name}") for name in DESCRIPTOR}
        act_addr, wgt_base, res_addr = Signal(64), Signal(64), Signal(64)
        stride = d["wgt_stride"]
        code = Signal(8)
        ctrl_to_act = Signal()                 # the control reader's words go to the activations
        n_pass = Signal(CW)                    # weight words a pass
        n_act = Signal(CW)                     # activation beats
        pass_mw, act_mw = Signal(CW), Signal(CW)   # memory words of a pass (per port), of the activations
        pass_mw_m1 = Signal(CW)                # == pass_mw - 1 (a pass has a word at least)
        n_pass_m1, k_m1 = Signal(CW), Signal(CW)   # == n_pass - 1, d_k - 1
        cycles, stall = Signal(64), Signal(64)
        results = Signal(32)

        # the engine's streams
        m.d.comb += [act_un.length.eq(n_act)]
        for u in wgt_un:
            m.d.comb += u.length.eq(n_pass)
        # each weight master's words from its FIFO's output queue (registers and a small distributed
        # RAM: its block RAM stays out of the consumers' handshake logic) through a credit link into
        # its unpacker (a cycle, timing.LINK_LATENCY), whose items go through a split link to the
        # engine (two cycles, timing.SPLIT_LINK_LATENCY): its valid a register of the engine's side,
        # its items a read of its distributed RAM, straight into the engine's code registers (with a
        # credit link there, whose count both handshakes share, the engine sequencer's `chunk_last`
        # went through the link's valid logic and back, 7.1-7.4 ns, the critical path of two of four
        # placements; through a ready slice, whose valid and words
        # passed straight from the master's queue, the engine's weight handshake and its code
        # registers were on the system top's failing paths; with one link, before the unpacker, the
        # unpacker's item select lay between the link's RAM and the code registers, and after it,
        # the unpacker's ready ran into the master's queue: 115.1 MHz). The control reader's words
        # go straight to two credit links, whose readies are registers (through a slice, the
        # slice's select between its spare register and the queue's read lay in front of the
        # links' distributed-RAM writes: 256 of the DMA's failing endpoints)
        words = [CreditLink(D) for _ in range(P)]
        links = [SplitLink(cfg.slice_bits, ready_copy=True) for _ in range(P)]
        for i, (rd, word, u, link) in enumerate(zip(wgts, words, wgt_un, links)):
            m.submodules[f"wlink{i + 1}"] = ResetInserter(rst_copy("m_rst", f"wlink{i + 1}"))(word)
            m.submodules[f"link{i + 1}"] = ResetInserter(rst_copy("dp_rst", f"link{i + 1}"))(link)
            wiring.connect(m, rd.data, word.i)
            wiring.connect(m, word.o, u.i)
            # (the unpacker's state from the link's ready copy: through the link's LUT of the
            # handshake, the word link's valid paid a 3.3 ns route to the unpacker's `ends`, the
            # system top's critical path at 140.9 MHz)
            m.d.comb += [link.i.valid.eq(u.o.valid), link.i.payload.eq(u.o.payload),
                         u.o.ready.eq(link.ready_copy)]
        # the descriptor's words then through a credit link (a cycle: the descriptor unpacker, by the
        # run's registers, lies far from the activation unpacker and the control reader; a ready
        # slice's valid there into its handshake was the system top's critical path at 118.9 MHz)
        c_data = ctrl.data
        desc_q = CreditLink(D)
        m.submodules.desc_q = ResetInserter(rst_copy("m_rst", "desc_q"))(desc_q)
        wiring.connect(m, desc_q.o, desc_un.i)
        # and the activations' words through one too (the slice's valid through the select into the
        # activation unpacker's enables, by the engine's buffer, was the system top's critical path
        # at 127.8 MHz): the select's two readies are the links' registers
        act_q = CreditLink(D)
        m.submodules.act_q = ResetInserter(rst_copy("dp_rst", "act_q"))(act_q)
        wiring.connect(m, act_q.o, act_un.i)
        m.d.comb += [desc_q.i.payload.eq(c_data.payload), act_q.i.payload.eq(c_data.payload),
                     desc_q.i.valid.eq(c_data.valid & ~ctrl_to_act),
                     act_q.i.valid.eq(c_data.valid & ctrl_to_act),
                     c_data.ready.eq(Mux(ctrl_to_act, act_q.i.ready, desc_q.i.ready))]
        m.d.comb += [engine.act.payload.eq(act_un.o.payload), engine.act.valid.eq(act_un.o.valid),
                     act_un.o.ready.eq(engine.act.ready)]
        all_valid = Cat(*(link.o.valid for link in links)).all()
        m.d.comb += [engine.wgt.payload.eq(Cat(*(link.o.payload for link in links))[:2 * ecfg.lanes]),
                     engine.wgt.valid.eq(all_valid)]
        for link in links:
            m.d.comb += link.o.ready.eq(engine.wgt.ready & all_valid)
        # results: through a credit link (a cycle; the engine's result valid into the packer's word
        # enables, and the packer's ready into the engine's result FIFO, were the system top's
        # critical paths at 123.6 and 129.4 MHz), each sum sign-extended to 32 bits, packed into
        # words, into the FIFO
        res_q = CreditLink(engine.res.signature.members["payload"].shape)
        m.submodules.res_q = ResetInserter(res_rst)(res_q)
        wiring.connect(m, engine.res, res_q.i)
        res_out = res_q.o
        sums = res_out.payload.sums
        flat = [sums[g][i] for g in range(ecfg.res_per_beat) for i in range(len(ecfg.parts))] \
            if ecfg.lane_style == "array" else [sums[i] for i in range(len(ecfg.parts))]
        m.d.comb += [packer.i.payload.data.eq(Cat(*(_sext(s, RESULT_SUM_BITS) for s in flat))),
                     packer.i.payload.last.eq(res_out.payload.last),
                     packer.i.valid.eq(res_out.valid), res_out.ready.eq(packer.i.ready),
                     res_fifo.i.payload.eq(packer.o.payload.data), res_fifo.i.valid.eq(packer.o.valid),
                     packer.o.ready.eq(res_fifo.i.ready)]
        # the writer's W data straight from the block FIFO's output queue (the port's `wready` reaches
        # the queue's read pointer, not the FIFO's level and block RAM: a `SyncFIFOBuffered` here,
        # its level -> read-ready -> level, was the system top's critical path at 96.7 MHz)
        wiring.connect(m, res_fifo.o, res_w.data)

        # -- the result writer's bursts: the words on their way to the FIFO or in it -------------
        # the burst's length, its end and whether to send it come from registers, a cycle after the
        # words they count (`fresh` low for the cycle after a burst, while they catch up)
        avail = Signal(range(res_fifo.depth + BlockFIFO.QUEUE + 4))   # words not yet given a burst
        flushed = Signal()                             # the layer's last word is counted
        avail_zero = Signal(init=1)                    # == (avail == 0) (below)
        # a word is counted as the packer's output link hands it to the FIFO, through a register (so
        # a burst may be asked for before its last word is through the FIFO, never for words that
        # will not come). Not counted: a word handed over in a cycle that resets the datapath, or one
        # still in the packer when it resets (lost with it: a word counted but lost after an abort
        # once made the next run's writer wait for it for ever).
        handed, handed_last = Signal(), Signal()
        live = ~rst_copy("dp_rst", "live")             # the datapath is not being reset
        took_pk = packer.o.valid & packer.o.ready & live
        m.d.sync += [handed.eq(took_pk), handed_last.eq(took_pk & packer.o.payload.last)]
        pushed = handed & live
        want = Signal(range(cfg.max_burst + 1))
        res_fresh, res_go, res_over = Signal(), Signal(), Signal()
        run_on = Signal()                              # == the run state is RUN, a register
        want_v = Mux(avail < cfg.max_burst, avail, cfg.max_burst)
        # the burst past the top: more words than `res_room`, the words from its address to the top
        # (set with the address, less each burst), so min(avail, max_burst) > room from two
        # comparisons of registers side by side (the burst's last byte from `want_v`, an adder after
        # the select, was the system top's critical path at 114.5 MHz)
        # `res_room` saturates at `room_cap`, the most words a layer writes: a layer with that much
        # room or more never reaches the top (its words still to be given a burst, `avail`, never
        # exceed what is left of the cap), and below the cap it is exact; so its comparison with
        # `avail` is a short one (over the address's width it was the DMA's critical path at
        # 139.1 MHz). The room to the top is found in CHECK and capped in SIZE.
        room_cap = cfg.result_memory_words(ecfg.max_out)
        res_room = Signal(range(room_cap + 1))
        # (the room as a whole is 2**(A - wshift) less the address's word; where the address's
        # bits above the cap's width are not all ones, it is over the cap. So the room is found
        # as wide as the cap: a subtractor and a comparison over the address's width were carry
        # chains of 60 and 44 bits)
        room_bits = min(room_cap.bit_length(), A - wshift)
        room_full = Signal(room_bits + 1)              # == the room, where room_hi_ones
        room_hi_ones = Signal()
        room_big = Signal()                            # the room >= room_cap, found in DIV
        want_m1 = Signal(range(cfg.max_burst + 1))    # == want - 1 (where a burst is sent, want != 0)
        m.d.sync += [want.eq(want_v), want_m1.eq(want_v - 1),
                     res_go.eq((avail >= cfg.max_burst) | (flushed & ~avail_zero)),
                     res_over.eq((avail > res_room) & (res_room < cfg.max_burst)),
                     res_fresh.eq(1)]
        m.d.comb += [res_w.cmd.payload.addr.eq(res_addr), res_w.cmd.payload.beats.eq(want),
                     res_w.cmd.valid.eq(res_fresh & res_go & ~res_over & run_on)]   # only while a layer runs
        res_cmd = res_w.cmd.valid & res_w.cmd.ready
        # the burst's handshake selects between sums made beforehand, and the address moves on in
        # two halves, the high one a cycle later (while `res_fresh` is low): the handshake through a
        # 64-bit carry chain, and in front of the count's, were on the DMA's critical paths
        m.d.sync += avail.eq(Mux(res_cmd, Mux(pushed, avail - want_m1, avail - want),
                                 Mux(pushed, avail + 1, avail)))
        # `avail_zero` == (avail == 0), a register kept from itself (synthesis drew `avail == 0`
        # from the burst length's carry chain: the system top's worst path, twice). A burst
        # takes every word (`avail` == `want`) only where none was pushed the cycle before it and
        # `avail` then was at most a burst: the cycle before a burst has none (`res_fresh`), so
        # `want` is min(avail, max_burst) of that cycle and `avail` grew only by its push (or was
        # cleared in FETCH, before any burst of the layer), so `all_in` is that register
        # (`avail == want` itself, a comparison after the burst length's select, was the system
        # top's critical path at 138.2 MHz)
        all_in = Signal()
        m.d.sync += [all_in.eq(~pushed & (avail <= cfg.max_burst)),
                     avail_zero.eq(~pushed & Mux(res_cmd, all_in, avail_zero))]
        add_in_halves(m, res_addr, want << wshift, res_cmd, name="res_addr")
        with m.If(res_cmd):
            m.d.sync += [res_room.eq(res_room - want), res_fresh.eq(0)]
        with m.If(handed_last & live):
            m.d.sync += flushed.eq(1)

        # -- the weight passes: a command to every port per pass ---------------------------------
        w_addr = [Signal(A + 1, name=f"w_addr{p}") for p in range(P)]
        w_end = [Signal(A + 2, name=f"w_end{p}") for p in range(P)]      # == w_addr + pass_bytes
        w_lastb = [Signal(A + 2, name=f"w_lastb{p}") for p in range(P)]  # == w_end - 1
        w_pend = Signal(P)
        rows_left = Signal(range(ecfg.max_out + 1))
        sm = Signal(range(max(ecfg.stages * len(ecfg.matrices), 2)))
        passes_done = Signal()
        can_pass = Signal()                         # see the passes' logic below
        sm_last, rows_last = Signal(), Signal()     # == (sm is the last), (rows_left <= row_tile)
        # == rows_left - row_tile, (rows_left <= 2 * row_tile): made every cycle beforehand (rows_left
        # changes once in a pass of the last stage and matrix, passes PASS_SPACING cycles apart;
        # set in PORTS with it), so the pass's handshake only selects (the subtractor behind it was
        # the system top's worst path)
        rows_dec = Signal(range(ecfg.max_out + 1))
        rows_last2 = Signal()
        m.d.sync += [rows_dec.eq(rows_left - ecfg.row_tile), rows_last2.eq(rows_left <= 2 * ecfg.row_tile)]
        pass_bytes = Signal(32 + wshift)
        m.d.comb += pass_bytes.eq(pass_mw << wshift)
        # a port's end and last byte move on by a pass in two halves (a 66-bit adder from the pass's
        # byte count was the system top's critical path at 103.5 MHz), from `w_moved`, the port's
        # command handshake a cycle later (the handshake, from the read master, as the enable of
        # the addresses' 200 flip-flops was on the failing paths), the low halves' sums made
        # beforehand too; the next pass waits for `w_moved` (timing.PASS_SPACING), and the high
        # halves are whole when it can be due
        H = HALF
        w_moved = Signal(P)
        for p, rd in enumerate(wgts):
            m.d.comb += [rd.cmd.valid.eq(w_pend[p]), rd.cmd.payload.addr.eq(w_addr[p]),
                         rd.cmd.payload.beats.eq(pass_mw)]
            issued = rd.cmd.valid & rd.cmd.ready
            m.d.sync += w_moved[p].eq(issued)
            for acc in (w_end[p], w_lastb[p]):
                add_in_halves(m, acc, pass_bytes, w_moved[p], name=acc.name, registered=True)
            with m.If(issued):
                m.d.sync += w_pend[p].eq(0)
            with m.If(w_moved[p]):
                m.d.sync += w_addr[p].eq(w_end[p])
        # a pass past the top: its last byte at or above 2**A (a bit, not a comparison of the end)
        w_over = Cat(*(w_lastb[p][A:] != 0 for p in range(P))).any()

        # -- the sequencer of a run ---------------------------------------------------------------
        eng_cmd_pend = Signal()
        # the control reader's command (a descriptor, then a layer's activations) from registers, set
        # on the way into the state that issues it (the states' decoding in front of the reader's
        # 64-bit address register was on the system top's critical path); none past the top
        c_pend, c_addr, c_beats = Signal(), Signal(A), Signal(CW)
        desc_words = max(1, DESCRIPTOR_BYTES // wb)
        m.d.comb += [ctrl.cmd.valid.eq(c_pend & ~desc_ptr[A]), ctrl.cmd.payload.addr.eq(c_addr),
                     ctrl.cmd.payload.beats.eq(c_beats)]
        with m.If(ctrl.cmd.valid & ctrl.cmd.ready):
            m.d.sync += c_pend.eq(0)

        def fetch(addr):
            """On to FETCH, for the descriptor at ``addr``."""
            m.d.sync += [c_pend.eq(1), c_addr.eq(addr), c_beats.eq(desc_words)]
            m.next = "FETCH"

        m.d.comb += [engine.cmd.valid.eq(eng_cmd_pend), engine.cmd.payload.k.eq(d["k"]),
                     engine.cmd.payload.rows.eq(d["rows"])]
        with m.If(engine.cmd.valid & engine.cmd.ready):
            m.d.sync += eng_cmd_pend.eq(0)
        res_last_seen = Signal()
        with m.If(engine.res.valid & engine.res.ready & engine.res.payload.last):
            m.d.sync += res_last_seen.eq(1)
        # the result count moves on a cycle after the beat, from a register (the engine's result
        # handshake as the enable of the count's adder was on the system top's failing paths); a
        # run's last beat is counted long before its end
        res_took = Signal()
        m.d.sync += res_took.eq(engine.res.valid & engine.res.ready)
        with m.If(res_took):
            m.d.sync += results.eq(results + 1)

        # the divider: n = ceil(k / div) (restoring, a bit a cycle)
        div = {"array": ecfg.cols, "dot": ecfg.lanes, "output": 1}[ecfg.lane_style]
        kw = ecfg.max_in.bit_length()
        quo, rem = Signal(kw), Signal(kw + 1)
        kbits = Signal(kw)
        step = Signal(range(kw + 1))
        div_end = Signal()                     # == (step == kw), a register kept as `step` counts

        def words_m1(items_m1, width):
            """The memory words of ``items_m1 + 1`` items of ``width`` bits, less one, with no adder
            (slots and words are powers of two; the words themselves are this plus one)."""
            slot = slot_bits(width, D)
            if slot <= D:
                return items_m1 >> ((D // slot).bit_length() - 1)
            k = slot // D
            return Cat(Const(k - 1, k.bit_length() - 1), items_m1)

        # the run's end into the status register a cycle after its decision, from registers (the
        # decision's logic in front of the status flags was on the system top's critical path);
        # `busy` holds until then, so that the host never sees neither busy nor an outcome
        error_set, done_set = Signal(), Signal()
        m.d.comb += [regs.status_error_set.eq(error_set), regs.status_done_set.eq(done_set),
                     regs.status_error_code.eq(code), regs.layer.eq(layer),
                     regs.cycles_lo.eq(cycles[:32]), regs.cycles_hi.eq(cycles[32:]),
                     regs.stall_lo.eq(stall[:32]), regs.stall_hi.eq(stall[32:]),
                     regs.results.eq(results)]

        m.d.sync += [error_set.eq(0), done_set.eq(0)]

        def fail(name):
            """Stop the run on error ``name``: back to IDLE (RUN's abort, called after, overrides)."""
            m.d.sync += [code.eq(ERROR_CODES[name]), error_set.eq(1)]
            m.next = "IDLE"

        desc_base = Cat(regs.desc_addr_lo, regs.desc_addr_hi)
        misaligned = lambda a: a[:wshift] != 0 if wshift else Const(0)
        beyond = lambda a: a[A:64] != 0 if A < 64 else Const(0)
        port = Signal(range(max(P, 2)))
        port_hi = Signal()                     # the second of a port's two cycles in PORTS
        ports_bad, ports_end = Signal(), Signal()  # in that cycle: a range error, the last port
        running_addr = Signal(A + 1)
        act_over = Signal()                    # the activations run past 2**A (set in SIZE)
        # the activations' words less one (in SIZE), and their bytes less one; the last byte is past
        # 2**A where the sum of the low bits (as wide as those bytes) carries into address bits that
        # are all ones, a register (`act_addr` is set in CHECK, two cycles or more before SIZE):
        # a 65-bit carry chain here was the system top's critical path in one placement (163.9 MHz)
        by_pass = cfg.engine.act_per_beat == div
        act_mw_m1 = words_m1(n_pass_m1 if by_pass else k_m1, cfg.act_bits)
        act_span = Cat(Const(-1, wshift), act_mw_m1)
        low = len(act_span)
        # (the span fits below the address: its counts are CW bits, at most 22 as MAX_DIM is 2**20,
        # of words of at most 64 bytes, so 28 bits; an address is HALF = 32 bits at least)
        assert low < A
        act_hi_ones = Signal()
        m.d.sync += act_hi_ones.eq(act_addr[low:A].all())
        # the descriptor's faults found in CHECK, by error name, in their order of priority
        bad = {name: Signal(name=f"bad_{name}") for name in ("k", "rows", "align", "range")}
        layer_done = Signal()                  # a register: the layer's end seen a cycle before
        read_err, write_err = Signal(), Signal()   # the masters' error flags, registered
        m.d.sync += [read_err.eq(Cat(*(r.error for r in [ctrl, *wgts])).any()), write_err.eq(res_w.error)]
        # the cycles the engine waited on memory: a cycle's flag registered, then counted (the last
        # RUN cycle's the cycle after)
        stalled, in_run = Signal(), Signal()
        # the 64-bit counters count in two halves, the high half a cycle behind the low half's carry
        # (a 64-bit carry chain a cycle was on the DMA's critical paths); `*_cy` cleared in START
        cycles_cy, stall_cy = Signal(), Signal()
        stall_lo = Signal(33)
        m.d.comb += stall_lo.eq(stall[:32] + stalled)
        m.d.sync += [stall[:32].eq(stall_lo[:32]), stall_cy.eq(stall_lo[32]), stall[32:].eq(stall[32:] + stall_cy),
                     stalled.eq(in_run & ((engine.wgt.ready & ~engine.wgt.valid) |
                                          (engine.act.ready & ~engine.act.valid) |
                                          (res_out.valid & ~res_out.ready)))]
        last_layer = Signal()                  # == (layers_left == 1), a register
        m.d.sync += last_layer.eq(layers_left == 1)
        # the list's registers checked as they are written, before the start pulse that follows
        # (in two steps, the count's nibbles first: the 38 bits' OR in one, a chain of five LUTs from
        # the register file, was the system top's critical path at 155.8 MHz. A register holds its
        # new value from the cycle of its write's response; the start pulse, a later write, reaches
        # IDLE four cycles after that response at the earliest and START a cycle later, so the two
        # steps have settled)
        list_bad, list_far = Signal(), Signal()
        nib_zero = Signal(8)
        base_off, far_any = Signal(), Signal()
        m.d.sync += [nib_zero.eq(Cat(regs.desc_count[i:i + 4] == 0 for i in range(0, 32, 4))),
                     base_off.eq(desc_base[:6] != 0), far_any.eq(beyond(desc_base)),
                     list_bad.eq(nib_zero.all() | base_off), list_far.eq(far_any)]
        m.d.sync += layer_done.eq(res_last_seen & flushed & avail_zero & ~eng_cmd_pend & passes_done &
                                  res_w.quiet & res_fifo.empty)

        # a transfer of the run past the top of memory: the next pass (not issued) or the next
        # result burst (not sent), as a register (the comparisons in front of the state machine's
        # next state were on the system top's critical path); a layer cannot end with either due
        faulted = Signal()
        # the weight passes, from registers rather than the state machine's decoding (its logic in
        # front of `passes_done` was the system top's critical path at 92.9 MHz): `run_on` is the RUN
        # state; `can_pass` says that every port has taken the last pass's command and moved its
        # addresses on, and passes are left, as of the cycle before, with no pass issued then
        n_sm = ecfg.stages * len(ecfg.matrices)
        pass_due = run_on & can_pass
        pass_go = pass_due & ~w_over
        m.d.sync += faulted.eq((pass_due & w_over) | (res_fresh & res_go & res_over & run_on))
        m.d.sync += can_pass.eq((w_pend == 0) & (w_moved == 0) & ~passes_done & ~pass_go)
        # the pass's counts move on a cycle after it (`passed`), before the next can be due: with
        # `pass_go` in front of them, its three registers crossed a chip-wide route and two LUTs to
        # `rows_left`, the system top's worst path at 149.7 MHz
        passed = Signal()
        m.d.sync += passed.eq(pass_go)
        with m.If(pass_go):
            m.d.sync += w_pend.eq((1 << P) - 1)
        with m.If(passed):
            m.d.sync += [sm.eq(Mux(sm_last, 0, sm + 1)),
                         sm_last.eq(Mux(sm_last, n_sm == 1, sm + 1 == n_sm - 1))]
            with m.If(sm_last):
                m.d.sync += [rows_left.eq(Mux(rows_last, 0, rows_dec)), rows_last.eq(rows_last2)]
                with m.If(rows_last):
                    m.d.sync += passes_done.eq(1)

        def to_abort():
            """Leave for ABORT: the passes stop and `aborting` follows the state."""
            m.d.sync += aborting.eq(1)
            m.next = "ABORT"

        def abortable():
            """A soft reset while running: the last word on the next state, so it wins."""
            with m.If(regs.ctrl_soft_reset):
                to_abort()

        # a port's addresses set in PORTS, in its second cycle: from `port_load`, a register set in
        # the first (with the state's decoding, `port_hi` and `port == p` in front of their ~200
        # flip-flops, they were on the system top's failing paths). Here, after the passes' sums,
        # so that it takes precedence; it may fire in the cycle after PORTS was left for an abort
        # (a later layer sets the addresses again).
        port_load = Signal(P)
        m.d.sync += port_load.eq(0)
        # (PORTS's sums: from `running_addr`, each port's start, pass end and last byte)
        addends = (pass_bytes, Cat(Const(-1, wshift), pass_mw_m1), stride)
        lows = [Signal(H + 1, name=f"ports_lo{i}") for i in range(3)]
        # the high halves' two outcomes too, chosen in the second cycle by the low halves'
        # carries (a 33-bit carry chain behind the carry was on the DMA's failing paths)
        his = [[Signal(A + 2 - H, name=f"ports_hi{i}_{c}") for c in (0, 1)] for i in range(3)]
        highs = [Mux(lo[H], h[1], h[0]) for lo, h in zip(lows, his)]
        for p in range(P):
            with m.If(port_load[p]):
                m.d.sync += [w_addr[p].eq(running_addr), w_end[p].eq(Cat(lows[0][:H], highs[0])),
                             w_lastb[p].eq(Cat(lows[1][:H], highs[1]))]
        # the descriptor's checks into registers every cycle (the descriptor holds from DESC on),
        # decided in SIZE while the divider runs, two cycles later at least (made in CHECK alone,
        # with the state's decoding in front of them, `bad_k` was on the system top's failing paths)
        d_act, d_wgt, d_res = (Cat(d[f"{x}_lo"], d[f"{x}_hi"]) for x in ("act", "wgt", "res"))
        # (k and rows from register copies of their own: synthesis shared the checks' gates with the
        # engine's decoding of the same bits, there through its command, and `bad_k` paid the route
        # back from the sequencer: the system top's critical path at 145.1 / 143.2 MHz)
        k_c, rows_c = Signal(32, reset_less=True), Signal(32, reset_less=True)
        m.d.sync += [k_c.eq(d["k"]), rows_c.eq(d["rows"])]
        # the row counts' start, for PORTS's last cycle, from `rows_c` (from the descriptor's bits
        # through the comparisons and the state's decoding, `rows_last` was 5 LUTs deep)
        rows_le1, rows_le2 = Signal(), Signal()
        rows_dec_c = Signal.like(rows_dec)
        m.d.sync += [rows_le1.eq(rows_c <= ecfg.row_tile), rows_le2.eq(rows_c <= 2 * ecfg.row_tile),
                     rows_dec_c.eq(rows_c - ecfg.row_tile)]
        m.d.sync += [bad["k"].eq((k_c == 0) | (k_c > ecfg.max_in)),
                     bad["rows"].eq((rows_c == 0) | (rows_c > ecfg.max_out)),
                     bad["align"].eq(misaligned(d_act) | misaligned(d_wgt) | misaligned(d_res) |
                                     (misaligned(stride) if P > 1 else 0)),
                     bad["range"].eq(beyond(d_act) | beyond(d_wgt) | beyond(d_res))]
        with m.FSM(name="run") as fsm:
            # the start pulse only moves IDLE on to START, which sets the run up from registers (the
            # pulse in front of the counters' resets and of the first fetch's command crossed four
            # LUTs from the register file: the system top's ECP5 critical path at 97.7 MHz)
            with m.State("IDLE"):
                with m.If(regs.ctrl_start):
                    m.next = "START"
            with m.State("START"):
                m.d.sync += [desc_ptr.eq(desc_base[:A]), layers_left.eq(regs.desc_count), layer.eq(0),
                             cycles.eq(1), stall.eq(0), stalled.eq(0), results.eq(0), code.eq(0),
                             cycles_cy.eq(0), stall_cy.eq(0)]
                with m.If(list_bad):
                    fail("list")
                with m.Elif(list_far):
                    fail("range")
                with m.Else():
                    fetch(desc_base[:A])
                abortable()
            with m.State("FETCH"):
                # the result side's counts start from zero with the datapath's reset (`clear`): a
                # layer's words are all written before the next FETCH, and after a soft reset the
                # packer may still hand words to the FIFO until the masters' and the datapath's reset
                # drops them (zeroed at ABORT's end, `avail` then kept a count of such a word, and
                # the next run asked the write master for a word that never came: a hang)
                m.d.comb += clear_next.eq(1)
                m.d.sync += [ctrl_to_act.eq(0), res_last_seen.eq(0), flushed.eq(0), avail.eq(0),
                             avail_zero.eq(1)]
                with m.If(desc_ptr[A:] != 0):
                    fail("range")
                    m.d.sync += c_pend.eq(0)
                with m.Elif(ctrl.cmd.ready):
                    m.next = "DESC"
                abortable()
            with m.State("DESC"):
                m.d.comb += desc_un.o.ready.eq(1)
                with m.If(desc_un.o.valid):
                    if not desc_un.registered:
                        m.d.sync += [d[name].eq(desc_un.o.payload[32 * i:32 * i + 32])
                                     for i, name in enumerate(DESCRIPTOR)]
                    m.next = "CHECK"
                abortable()
            with m.State("CHECK"):
                m.d.sync += [act_addr.eq(d_act), wgt_base.eq(d_wgt), res_addr.eq(d_res),
                             room_full.eq((1 << room_bits) - d_res[wshift:wshift + room_bits]),
                             room_hi_ones.eq(d_res[wshift + room_bits:A].all()),
                             kbits.eq(d["k"]), k_m1.eq(d["k"] - 1), quo.eq(0), rem.eq(0), step.eq(0),
                             div_end.eq(0)]
                m.next = "DIV"
                abortable()
            with m.State("DIV"):
                r2 = Cat(kbits[-1], rem[:kw])
                ge = r2 >= div
                m.d.sync += [kbits.eq(kbits << 1), rem.eq(Mux(ge, r2 - div, r2)),
                             quo.eq(Cat(ge, quo[:-1])), step.eq(step + 1), div_end.eq(step == kw - 1),
                             room_big.eq(~room_hi_ones | (room_full >= room_cap))]
                # (the divider's end from a register: `step == kw` in front of the state machine's
                # next state was the system top's worst path in one placement, 143.4 MHz)
                with m.If(div_end):
                    # (the sums beside the remainder's test, which selects: in series they were on
                    # the DMA's failing paths)
                    rem_nz = rem != 0
                    m.d.sync += [n_pass.eq(Mux(rem_nz, quo + 1, quo)), n_pass_m1.eq(Mux(rem_nz, quo, quo - 1)),
                                 step.eq(0)]
                    m.next = "SIZE"
                abortable()
            with m.State("SIZE"):
                n_act_v = n_pass if by_pass else d["k"]
                pass_mw_m1_v = words_m1(n_pass_m1, cfg.slice_bits)
                # the last bytes from the counts less one, registered before (no subtractor after the
                # count's adder in front of the address's)
                act_lastb = Signal(low + 1)
                m.d.comb += act_lastb.eq(act_addr[:low] + act_span)
                m.d.sync += [res_room.eq(Mux(room_big, room_cap, room_full)),
                             n_act.eq(n_act_v), pass_mw.eq(pass_mw_m1_v + 1),
                             pass_mw_m1.eq(pass_mw_m1_v),
                             act_mw.eq(act_mw_m1 + 1), act_over.eq(act_lastb[low] & act_hi_ones),
                             running_addr.eq(wgt_base[:A]), port.eq(0), port_hi.eq(0),
                             ports_bad.eq(0), ports_end.eq(0)]
                # the descriptor's checks, in their order of priority
                for i, name in enumerate(bad):
                    with (m.If if i == 0 else m.Elif)(bad[name]):
                        fail(name)
                with m.Else():
                    m.next = "PORTS"
                abortable()
            with m.State("PORTS"):
                # each port's first address, its end and last byte, two cycles each: the low 32 bits
                # of the sums (and their carries) into registers, then the high bits (a 65-bit carry
                # chain from `running_addr` was the system top's critical path at 133.9 MHz). The last
                # byte from `pass_mw - 1` registered (`+ pass_bytes - 1`, two 65-bit carry chains in
                # series, was the critical path at 98.8 MHz)
                with m.If(~port_hi):
                    m.d.sync += [lo.eq(running_addr[:H] + x[:H]) for lo, x in zip(lows, addends)]
                    m.d.sync += [h[c].eq(running_addr[H:] + x[H:] + c) for h, x in zip(his, addends) for c in (0, 1)]
                    m.d.sync += [port_load[p].eq(port == p) for p in range(P)]
                m.d.sync += port_hi.eq(~port_hi)
                with m.If(port_hi):
                    m.d.sync += [running_addr.eq(Cat(lows[2][:H], highs[2])), port.eq(port + 1)]
                # the way out decided in the first cycle, into registers (the decision from `port`
                # and the range bits, fanned out to the run's registers, was the critical path at
                # 121.7 MHz)
                m.d.sync += [ports_bad.eq(~port_hi & (act_over | (running_addr[A:] != 0))),
                             ports_end.eq(~port_hi & (port == P - 1))]
                with m.If(ports_bad):
                    fail("range")
                with m.Elif(ports_end):
                    m.d.comb += clear_next.eq(1)
                    m.d.sync += [eng_cmd_pend.eq(1), c_pend.eq(1), c_addr.eq(act_addr[:A]), c_beats.eq(act_mw),
                                 ctrl_to_act.eq(1),
                                 rows_left.eq(d["rows"]), rows_last.eq(rows_le1), rows_dec.eq(rows_dec_c),
                                 rows_last2.eq(rows_le2), sm.eq(0), sm_last.eq(n_sm == 1),
                                 passes_done.eq(0), w_pend.eq(0), can_pass.eq(1)]
                    m.next = "RUN"
                abortable()
            with m.State("RUN"):
                # the next pass or result burst past the top (neither issued), a cycle later
                with m.If(faulted):
                    fail("range")
                    to_abort()
                with m.Elif(layer_done):
                    m.next = "NEXT"
                m.d.comb += in_run.eq(1)
                abortable()
            with m.State("NEXT"):
                # the layer's end (its decisions here, not in front of the run's wide registers). The
                # next descriptor's pointer, count and read command move on whatever is decided (they
                # are not used after an error or the last layer, and START sets them again): with
                # the decision in front of their enables, the error flags crossed four LUTs to them
                # (the system top's ECP5 critical path at 119.4 MHz)
                next_ptr = desc_next
                m.d.sync += [layers_left.eq(layers_left - 1), desc_ptr.eq(next_ptr), c_addr.eq(next_ptr[:A]),
                             c_beats.eq(desc_words)]
                with m.If(read_err):
                    fail("read")
                with m.Elif(write_err):
                    fail("write")
                with m.Else():
                    m.d.sync += layer.eq(layer + 1)
                    with m.If(last_layer):
                        m.d.sync += done_set.eq(1)
                        m.next = "IDLE"
                    with m.Else():
                        m.d.sync += c_pend.eq(1)
                        m.next = "FETCH"
                abortable()
            with m.State("ABORT"):
                m.d.sync += [eng_cmd_pend.eq(0), c_pend.eq(0), w_pend.eq(0)]
                with m.If(all_quiet):
                    m.d.comb += m_rst_next.eq(1)
                    m.d.sync += aborting.eq(0)
                    m.next = "IDLE"
        # one flip-flop a state: Yosys's FSM recoding, which its heuristics leave off here (with the
        # binary state's decoding in front of every transition condition, the next-state logic was on
        # the system top's critical path)
        fsm.state.attrs["fsm_encoding"] = "one-hot"
        # `run_on` follows RUN from a few registers, outside the states' statements: RUN is entered
        # from PORTS's last cycle without a fault or a soft reset, and left on a fault, the layer's
        # end or a soft reset (set and cleared within the states, its enable gathered every state's
        # conditions, 5 LUTs deep: on the system top's critical path at 138.2 MHz)
        soft = regs.ctrl_soft_reset
        m.d.sync += run_on.eq(Mux(run_on, ~(faulted | layer_done | soft),
                                  fsm.ongoing("PORTS") & ports_end & ~ports_bad & ~soft))
        m.d.comb += regs.status_busy.eq(~fsm.ongoing("IDLE") | error_set | done_set)
        cycles_lo = Signal(33)
        m.d.comb += cycles_lo.eq(cycles[:32] + 1)
        with m.If(cycles_cy):                  # (never in START, which sets the count)
            m.d.sync += cycles[32:].eq(cycles[32:] + 1)
        with m.If(~fsm.ongoing("IDLE") & ~fsm.ongoing("START")):
            m.d.sync += [cycles[:32].eq(cycles_lo[:32]), cycles_cy.eq(cycles_lo[32])]
        with m.Else():
            m.d.sync += cycles_cy.eq(0)
        return m


def _sext(value, bits: int):
    """``value`` (signed) sign-extended to ``bits`` bits."""
    v = value.as_signed()
    return Cat(v, v[-1].replicate(bits - len(v)))


#: The standard AXI name prefix of each bus of :class:`SystemTop` (``m_wgt<p>`` -> ``m_axi_wgt<p>``).
def _bus_prefix(name: str) -> str:
    return "s_axil" if name == "s_axil" else "m_axi_" + name[2:]


#: Constant outputs of an AXI4 manager that the masters leave at their defaults (ID 0, normal
#: non-cacheable bufferable, unprivileged secure data, no QoS, no lock).
_MANAGER_DEFAULTS = {"id": (1, 0), "lock": (1, 0), "cache": (4, 0b0011), "prot": (3, 0), "qos": (4, 0)}


def _wrapper_pins(component: SystemTop):
    """The wrapper's inputs and outputs (``(name, width)``), its connections to the core's ports and
    its constant outputs."""
    from amaranth.hdl import Shape
    ins, outs, conns, consts = [], [], [], []
    buses = [n for n in component.signature.members if n != "irq"]
    for path, member, value in component.signature.flatten(component):
        bus, *rest = path
        inner_port = "__".join(path)
        is_in = member.flow == In
        if bus == "irq":
            outs.append(("irq", 1))
            conns.append((inner_port, "irq"))
            continue
        prefix = _bus_prefix(bus)
        chan, what = rest
        if what in ("valid", "ready"):
            std = f"{prefix}_{chan}{what}"
            (ins if is_in else outs).append((std, 1))
            conns.append((inner_port, std))
            continue
        layout = data.Layout.cast(value.shape())
        parts = []
        for fname, field in layout:
            std = f"{prefix}_{chan}{fname}"
            width = Shape.cast(field.shape).width
            (ins if is_in else outs).append((std, width))
            parts.append(std)
        conns.append((inner_port, "{" + ", ".join(reversed(parts)) + "}"))
    for bus in buses:
        if bus == "s_axil":
            continue
        prefix = _bus_prefix(bus)
        chans = ("ar",) if bus != "m_res" else ("aw",)
        for chan in chans:
            for sig, (width, val) in _MANAGER_DEFAULTS.items():
                consts.append((f"{prefix}_{chan}{sig}", width, val))
        resp_id = f"{prefix}_{'r' if bus != 'm_res' else 'b'}id"
        ins.append((resp_id, 1))
    outs += [(n, w) for n, w, _ in consts]
    return ins, outs, conns, consts, buses


def wrapper_ports(component: SystemTop) -> list:
    """The wrapper's ports as ``{name, direction, width}`` (clock and reset first)."""
    ins, outs, _, _, _ = _wrapper_pins(component)
    return ([{"name": "aclk", "direction": "in", "width": 1}, {"name": "aresetn", "direction": "in", "width": 1}]
            + [{"name": n, "direction": "in", "width": w} for n, w in ins]
            + [{"name": n, "direction": "out", "width": w} for n, w in outs])


def wrapper_verilog(component: SystemTop, inner: str, name: str) -> str:
    """A Verilog module ``name`` around ``inner`` (the Amaranth netlist of ``component``) with the
    standard AXI port names that Vivado's IP packager and block designs infer interfaces from
    (``s_axil_awaddr``, ``m_axi_wgt0_araddr``, ...), ``aclk`` and an active-low ``aresetn``."""
    ins, outs, conns, consts, buses = _wrapper_pins(component)
    busif = ":".join(_bus_prefix(b) for b in buses)
    lines = [f"// {name}: the fairyhw system top with standard AXI port names (generated by fairyhw).",
             f"(* X_INTERFACE_PARAMETER = \"ASSOCIATED_BUSIF {busif}, ASSOCIATED_RESET aresetn\" *)",
             f"module {name} (",
             "  input aclk,",
             "  (* X_INTERFACE_PARAMETER = \"POLARITY ACTIVE_LOW\" *) input aresetn,"]
    decl = [f"  input {_range(w)}{n}" for n, w in ins] + [f"  output {_range(w)}{n}" for n, w in outs]
    lines.append(",\n".join(decl))
    lines.append(");")
    for n, w, v in consts:
        lines.append(f"  assign {n} = {w}'d{v};")
    lines.append(f"  {inner} core (")
    pins = ["    .clk(aclk)", "    .rst(~aresetn)"] + [f"    .{p}({e})" for p, e in conns]
    lines.append(",\n".join(pins))
    lines.append("  );")
    lines.append("endmodule")
    return "\n".join(lines) + "\n"


def _range(width: int) -> str:
    return f"[{width - 1}:0] " if width > 1 else ""
