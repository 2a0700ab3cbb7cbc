"""The array style's sequencer: takes a layer's command, loads its activations into the
:class:`~fairyhw.hw.buffer.ActBuffer`, then accepts a weight word a cycle and tags each with its
pass's facts, until the final pass drains.

Every decision is a register or one LUT of registers, and the state is one-hot: on ECP5 the decoded
FSM state and the comparisons of its counters, fanned out to the load and pass logic, were the
critical path at 106.7 MHz. The figures in the comments are the measured critical paths each
register removed (nextpnr-ecp5, LFE5U-85F; ``docs/history.md`` has the sequence).
"""

from __future__ import annotations

from amaranth.hdl import Cat, Const, Module, Mux, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from .buffer import KEEP, load_layout
from .config import EngineConfig
from .streams import act_layout, cmd_layout

__all__ = ["ArraySequencer", "slot_layout"]


def _le_const(x, c: int):
    """``x <= c`` for a constant ``c`` as gates, bit by bit (a comparison cell becomes an ECP5 carry
    chain, which the placer set 4.5-6.1 ns from the zero flag it fed at 4 x 128; gates become a LUT
    or two that can sit beside it)."""
    n = len(x)
    if c >= (1 << n) - 1:
        return Const(1)
    le = Const(1)                       # the bits below i compare as equal: x <= c holds
    for i in range(n):                  # from the lowest bit up: le_i = x[i] < c[i] | (x[i] == c[i] & le)
        if (c >> i) & 1:
            le = ~x[i] | le
        else:
            le = ~x[i] & le
    return le


def slot_layout(rows: int) -> data.StructLayout:
    """The facts travelling beside a weight word down the array's pipeline: whether the slot holds a
    word, the first and last chunk of its pass, ``conj`` (a W pass), the layer's final pass, and the
    rows of its tile. ``conj``, ``final`` and ``count`` hold on a pass's last word, the one whose sums
    are captured (the pass counters step the cycle after it, so the next pass's first word may still
    carry the previous pass's)."""
    return data.StructLayout({"valid": 1, "first": 1, "last": 1, "conj": 1, "final": 1,
                              "count": range(rows + 1)})


class ArraySequencer(wiring.Component):
    """The control of one layer on the array.

    Ports
    -----
    cmd, act : streams (in)
        The engine's command and activation streams (see :class:`~fairyhw.hw.engine.Engine`).
    load : stream (out, always ready)
        Each activation beat, in the cycle it is taken, to the buffer; ``clear`` before a layer's first.
    chunk : out
        The chunk of the buffer the next word needs (the buffer's read address).
    wgt_valid : in; wgt_ready : out
        The weight stream's handshake (its payload goes to the datapath directly).
    slot : out
        The facts of the word taken in the cycle before (:func:`slot_layout`); ``slot.valid`` is low
        when none was.
    freed : in
        A tile slot of the result buffer was freed (a credit back).
    drained : in
        The pipeline and the result buffer hold nothing.
    busy : out
        From the command to the layer's last result.
    """

    def __init__(self, config: EngineConfig):
        self._cfg = config
        depth = -(-config.max_in // config.cols)
        super().__init__({
            "cmd": In(stream.Signature(cmd_layout(config))),
            "act": In(stream.Signature(act_layout(config))),
            "load": Out(stream.Signature(load_layout(config), always_ready=True)),
            "clear": Out(1),
            "chunk": Out(range(max(depth, 2))),
            "wgt_valid": In(1),
            "wgt_ready": Out(1),
            "slot": Out(slot_layout(config.rows)),
            "freed": In(1),
            "drained": In(1),
            "busy": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        cfg = self._cfg
        R, C = cfg.rows, cfg.cols
        nmat = len(cfg.matrices)
        depth = -(-cfg.max_in // C)

        left = Signal(range(cfg.max_in + 1))              # elements still to load
        ld_addr = Signal(range(max(depth, 2)))
        c_last = Signal(range(max(depth, 2)))             # the last chunk's address
        chunk = Signal(range(max(depth, 2)))
        r_left = Signal(range(cfg.max_out + 1))
        mat = Signal(range(max(nmat, 2)))
        stg = Signal(range(max(cfg.stages, 2)))
        credits = Signal(range(3), init=2)                # free tile slots of the result buffer
        m.d.comb += self.chunk.eq(chunk)

        # A pass's last word takes a credit (a tile slot), which comes back when the tile's last
        # result beat leaves the buffer
        idle, loading, running, draining = Signal(init=1), Signal(), Signal(), Signal()
        last_beat = Signal(attrs=KEEP)                    # the act beat now offered is the layer's last
        chunk_last = Signal()                             # == (chunk == c_last)
        c_last_m1 = Signal.like(c_last)
        r_gt = Signal()                                   # == (r_left > R): not the last row tile
        # the pass's matrix and stage are the last: registers, kept as mat and stg step (the comparisons
        # of mat and stg, fanned out to the pass counters, were a 4.1 ns route at 4 x 128)
        last_mat = Signal(init=nmat == 1)
        last_stg = Signal(init=cfg.stages == 1)
        final_pass = last_mat & last_stg & ~r_gt
        count = Mux(r_gt, R, r_left)
        conj = last_mat if nmat == 2 else 1
        pass_end = Signal()                               # a pass's last word was taken last cycle
        # == (credits != 0) & ~pass_end, a register, so that the weight handshake reads only registers
        # of its own: read through `credits` it joined the sequencer's chunk counter (placed by the
        # buffer's read address) and its credits (placed by the result buffer), and the loop
        # chunk_last -> ready -> take -> chunk_last paid two 3 ns routes at 4 x 128 (120.5 MHz)
        credit_ok = Signal(init=1)
        ready = running & (~chunk_last | credit_ok)
        take_cmd = self.cmd.valid & idle
        take_act = self.act.valid & loading
        take = self.wgt_valid & ready
        # the act port's ready: a register copy of `loading` (both KEEP, or synthesis merges them), so
        # that the producer's handshake logic reads a register placed by it (with `loading` itself,
        # the activation unpacker's word enables in the system top were two 3 ns routes from the
        # sequencer: its ECP5 critical path at 109.1 MHz)
        act_rdy = Signal(name="act_rdy", attrs=KEEP)
        loading.attrs.update(KEEP)
        m.d.comb += [self.cmd.ready.eq(idle), self.act.ready.eq(act_rdy), self.wgt_ready.eq(ready),
                     self.busy.eq(~idle)]
        s1 = self.slot
        m.d.sync += [s1.valid.eq(take), s1.last.eq(take & chunk_last), s1.first.eq(chunk == 0),
                     s1.conj.eq(conj), s1.final.eq(final_pass), s1.count.eq(count)]
        m.d.sync += [credits.eq(credits - (take & chunk_last) + self.freed),
                     credit_ok.eq(~(take & chunk_last) & ((credits != 0) | self.freed))]

        # the command: its payload is captured every idle cycle and the counters start from those
        # registers a cycle after the handshake, which itself reaches three registers (its fan-out to
        # the ~50 registers a command loaded was the ECP5 critical path: 127.6 MHz at 1 x 128, 102.4
        # at 4 x 128). chunk, mat and stg are zero between layers (each layer ends on its last pass).
        k_r = Signal.like(self.cmd.payload.k, reset_less=True)
        rows_r = Signal.like(self.cmd.payload.rows, reset_less=True)
        cmd_go = Signal(attrs=KEEP)
        # with the command, the comparisons its counters start from (a comparison of k_r on the way
        # into last_beat was a 4.4 ns path at 4 x 128): one beat, at most two beats, more than a tile
        k_le1, k_le2, rows_gt = Signal(reset_less=True), Signal(reset_less=True), Signal(reset_less=True)
        with m.If(idle):
            m.d.sync += [k_r.eq(self.cmd.payload.k), rows_r.eq(self.cmd.payload.rows),
                         k_le1.eq(self.cmd.payload.k <= C), k_le2.eq(self.cmd.payload.k <= 2 * C),
                         rows_gt.eq(self.cmd.payload.rows > R)]
        # with C a power of two, the last beat's count is j, K's low bits (0: a full beat), so its
        # zero flags (1 <= j <= c) are the same for every layer's last beat: decided in halves,
        # j's high part against c's (below, equal; each with j != 0) and its low part (at most),
        # so that a beat's flag is one LUT of those and `last_z` (below), all registers (from the
        # beat's count, below for any C, it took 4 LUT levels: the engine's ECP5 critical path at
        # 188.6 MHz, 7.3 ns in the system top; a register of the 64 flags decided from the command
        # was 5 levels). They are decoded from k_r every cycle, with no enable: valid the cycle
        # after cmd_go, the first cycle a beat can be taken (decoded from the payload while idle,
        # the command's source and `idle` were each the start of a 3-4 ns path into them)
        pow2 = C & (C - 1) == 0
        if pow2:
            j = k_r[:C.bit_length() - 1]
            lb = len(j) // 2
            jl, jh = j[:lb], j[lb:]
            nh = 1 << len(jh)
            j_lt = Signal(nh, reset_less=True)            # j != 0 and j's high part < x
            j_eq = Signal(nh, reset_less=True)            # j != 0 and j's high part == x
            j_le = Signal(1 << lb, reset_less=True)       # j's low part <= y
            # (j != 0) through `jl_any`, a wire kept (KEEP), so that each flag is a LUT of it and
            # j's high part: synthesis, free to share, made a chain of 5 LUTs of the 64 flags' gates
            jl_any = Signal(name="jl_any", attrs=KEEP)
            m.d.comb += jl_any.eq(jl != 0)
            nz = jl_any | (jh != 0)
            m.d.sync += [j_lt.eq(Cat(nz & (jh < x) for x in range(nh))),
                         j_eq.eq(Cat(nz & (jh == x) for x in range(nh))),
                         j_le.eq(Cat(_le_const(jl, y) for y in range(1 << lb)))]
        # the buffer's clear: a register of its own beside cmd_go, so that its far loads (the banks'
        # middle copies) do not pull cmd_go away from the sequencer's own registers (both carry KEEP:
        # synthesis merges a register without it into an equal one with it)
        clear = Signal(name="buf_clear", attrs=KEEP)
        m.d.sync += [cmd_go.eq(take_cmd), clear.eq(take_cmd)]
        m.d.comb += self.clear.eq(clear)
        with m.If(take_cmd):
            m.d.sync += idle.eq(0)
        # the zero flags of the beat now offered (element c lies past K: left <= c; only a beat of
        # at most C elements has any), so that the buffer's banks take them by register copies:
        # for C a power of two from registers of the command (above), else registers decided a
        # beat ahead from the next beat's count (`nlow`, the low bits of left - C)
        le2 = Signal()                                    # == (left <= 2C), kept as left steps
        zero = Signal(C) if pow2 else Signal(C, reset_less=True)
        if not pow2:
            bits = min(C.bit_length(), len(k_r))          # holds any count of at most C
            nlow = Signal(bits, reset_less=True)

            def flags(ok, low):                           # the zero flags of a beat with `low` left
                return Cat(ok & _le_const(low, c) for c in range(C))
        else:
            # a copy of `last_beat` for the flags' C loads, placed by the buffer's entry
            last_z = Signal(name="last_z", attrs=KEEP)

        # the load side's counters change with the command (cmd_go, while `loading` is 0) and with
        # each beat taken (take_act, while it is 1): their next values are chosen by `loading`, a
        # register, and the handshake reaches them only as their enable (with the handshake selecting
        # between the two, synthesis put it in front of the zero flags' gates: the act port's valid,
        # far away in the system top, then crossed five LUTs, its ECP5 critical path at 108.9 MHz)
        with m.If(cmd_go):
            m.d.sync += [loading.eq(1), act_rdy.eq(1), ld_addr.eq(0)]
        # (`ld_sel`, a register copy of `loading` placed by these counters: `loading` itself, pulled
        # toward its other loads, was a 3.3 ns route from them in the system top)
        ld_sel = Signal(name="ld_sel", attrs=KEEP)
        with m.If(cmd_go):
            m.d.sync += ld_sel.eq(1)
        with m.If(take_act & last_beat):
            m.d.sync += ld_sel.eq(0)
        with m.If(cmd_go | take_act):
            last_next = Mux(ld_sel, le2, k_le1)
            m.d.sync += [last_beat.eq(last_next)] + ([last_z.eq(last_next)] if pow2 else [])
            with m.If(ld_sel):
                m.d.sync += [left.eq(left - C), le2.eq(left <= 3 * C)]
                if not pow2:
                    m.d.sync += [nlow.eq(nlow - C), zero.eq(flags(le2, nlow))]
            with m.Else():
                m.d.sync += [left.eq(k_r), le2.eq(k_le2)]
                if not pow2:
                    m.d.sync += [nlow.eq(k_r[:bits] - C), zero.eq(flags(k_le1, k_r[:bits]))]
        if pow2:      # the beat offered is the layer's last, and c lies past j: one LUT of registers
            m.d.comb += zero.eq(Cat(last_z & (j_lt[c >> lb] | (j_eq[c >> lb] & j_le[c & ((1 << lb) - 1)]))
                                    for c in range(C)))

        # LOAD: each beat goes to the buffer with its zero flags, and the buffer writes it three
        # cycles later, never waiting on the handshake (whose fan-out to the block RAMs' write
        # enables and the zeroing logic was the ECP5 critical path at 125.4 MHz). The sequencer
        # counts the chunks written from its own register of the taken beat, and learns that the
        # buffer is full a cycle before the banks' last write (read directly, the buffer's registers
        # put two chip-wide routes on the ECP5 critical path: 73.8 MHz at 4 x 128). RUN starts in
        # the cycle of the last beat's write; the first word's chunk reaches the block RAMs three
        # cycles later.
        m.d.comb += [self.load.valid.eq(take_act), self.load.payload.data.eq(self.act.payload),
                     self.load.payload.zero.eq(zero)]
        # a_valid equals a register of the buffer (its entry's `valid`): KEEP holds them apart, or
        # synthesis merges them and the sequencer's own use pays a far route (buffer.valid ->
        # ld_addr: 5.8 ns at 4 x 128)
        a_valid = Signal(attrs=KEEP)
        m.d.sync += a_valid.eq(take_act)
        with m.If(take_act & last_beat):
            m.d.sync += [loading.eq(0), act_rdy.eq(0)]
        # the run's first chunk facts kept as the chunks are counted (ld_addr - 1, ld_addr - 2,
        # ld_addr == 1), and `load_done` a register copy of the last beat's notice: RUN's registers
        # start from copies of registers, and load_done sits among them (its notice and the count
        # by the load side, their next-state logic on its way to RUN's registers, were a 4.9 ns
        # route at 4 x 128)
        cl, clm1, one = Signal.like(c_last), Signal.like(c_last), Signal()
        with m.If(cmd_go):
            m.d.sync += [cl.eq(-1), clm1.eq(-2), one.eq(0)]
        with m.If(a_valid):
            m.d.sync += [ld_addr.eq(ld_addr + 1), cl.eq(ld_addr), clm1.eq(cl), one.eq(ld_addr == 0)]
        ld_notice = Signal(attrs=KEEP)
        load_done = Signal(attrs=KEEP)
        m.d.sync += [ld_notice.eq(take_act & last_beat), load_done.eq(ld_notice)]
        with m.If(load_done):
            m.d.sync += [running.eq(1), c_last.eq(cl), c_last_m1.eq(clm1), chunk_last.eq(one),
                         r_left.eq(rows_r), r_gt.eq(rows_gt)]

        # RUN: a weight word a cycle. A pass's last word sets `pass_end`, and the cycle after, the
        # next matrix, else the next stage, else the next row tile is counted from that register (the
        # handshake's fan-out to these counters was the ECP5 critical path at 122.5 MHz); a last word
        # waits that cycle (only a one-word pass can meet it). After the final pass, DRAIN until the
        # pipeline and the buffer are empty.
        with m.If(take):
            m.d.sync += [chunk.eq(Mux(chunk_last, 0, chunk + 1)),
                         chunk_last.eq(Mux(chunk_last, c_last == 0, chunk == c_last_m1))]
            with m.If(chunk_last & final_pass):
                m.d.sync += [running.eq(0), draining.eq(1)]
        m.d.sync += pass_end.eq(take & chunk_last)
        with m.If(pass_end):
            with m.If(last_mat):
                m.d.sync += [mat.eq(0), last_mat.eq(nmat == 1)]
                with m.If(last_stg):
                    m.d.sync += [stg.eq(0), last_stg.eq(cfg.stages == 1), r_left.eq(r_left - R),
                                 r_gt.eq(r_left > 2 * R)]
                with m.Else():
                    m.d.sync += [stg.eq(stg + 1), last_stg.eq(stg == max(cfg.stages - 2, 0))]
            with m.Else():
                m.d.sync += [mat.eq(mat + 1), last_mat.eq(mat == max(nmat - 2, 0))]
        # `empty` a register (the pipeline's valids and the buffer's state gathered into the state
        # registers were the ECP5 critical path at 130.8 MHz): the engine idles a cycle later. The
        # final word's take is seen through `pass_end` (DRAIN's first cycle), not in `empty`'s
        # logic, which sits by the pipeline's end (the handshake's route to it was a 3.4 ns route
        # in the system top)
        empty = Signal()
        m.d.sync += empty.eq(self.drained)
        with m.If(draining & empty & ~pass_end):
            m.d.sync += [draining.eq(0), idle.eq(1)]
        return m
