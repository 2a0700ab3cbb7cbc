"""The array style's sequencer: takes a layer's command, loads its activations into the
:class:`~fairyhw.hw.buffer.ActBuffer`, then accepts a weight word a cycle and tags each with its
pass's facts, until the final pass drains.

Every decision is a register or one LUT of registers, and the state is one-hot: on ECP5 the decoded
FSM state and the comparisons of its counters, fanned out to the load and pass logic, were the
critical path at 106.7 MHz. The figures in the comments are the measured critical paths each
register removed (nextpnr-ecp5, LFE5U-85F; ``docs/history.md`` has the sequence).
"""

from __future__ import annotations

from amaranth.hdl import Module, Mux, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from .buffer import load_layout
from .config import EngineConfig
from .streams import act_layout, cmd_layout

__all__ = ["ArraySequencer", "slot_layout"]


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
        last_beat = Signal()                              # the act beat now offered is the layer's last
        chunk_last = Signal()                             # == (chunk == c_last)
        c_last_m1 = Signal.like(c_last)
        r_gt = Signal()                                   # == (r_left > R): not the last row tile
        last_mat = (mat == nmat - 1) if nmat > 1 else 1
        last_stg = (stg == cfg.stages - 1) if cfg.stages > 1 else 1
        final_pass = last_mat & last_stg & ~r_gt
        count = Mux(r_gt, R, r_left)
        conj = (mat == nmat - 1) if nmat == 2 else 1
        pass_end = Signal()                               # a pass's last word was taken last cycle
        ready = running & (~chunk_last | ((credits != 0) & ~pass_end))
        take_cmd = self.cmd.valid & idle
        take_act = self.act.valid & loading
        take = self.wgt_valid & ready
        m.d.comb += [self.cmd.ready.eq(idle), self.act.ready.eq(loading), self.wgt_ready.eq(ready),
                     self.busy.eq(~idle)]
        s1 = self.slot
        m.d.sync += [s1.valid.eq(take), s1.last.eq(take & chunk_last), s1.first.eq(chunk == 0),
                     s1.conj.eq(conj), s1.final.eq(final_pass), s1.count.eq(count)]
        m.d.sync += credits.eq(credits - (take & chunk_last) + self.freed)

        # the command: its payload is captured every idle cycle and the counters start from those
        # registers a cycle after the handshake, which itself reaches three registers (its fan-out to
        # the ~50 registers a command loaded was the ECP5 critical path: 127.6 MHz at 1 x 128, 102.4
        # at 4 x 128). chunk, mat and stg are zero between layers (each layer ends on its last pass).
        k_r = Signal.like(self.cmd.payload.k, reset_less=True)
        rows_r = Signal.like(self.cmd.payload.rows, reset_less=True)
        cmd_go = Signal()
        with m.If(idle):
            m.d.sync += [k_r.eq(self.cmd.payload.k), rows_r.eq(self.cmd.payload.rows)]
        m.d.sync += cmd_go.eq(take_cmd)
        m.d.comb += self.clear.eq(cmd_go)
        with m.If(take_cmd):
            m.d.sync += idle.eq(0)
        with m.If(cmd_go):
            m.d.sync += [loading.eq(1), left.eq(k_r), last_beat.eq(k_r <= C), ld_addr.eq(0)]

        # LOAD: each beat goes to the buffer with its facts (the last beat, the element count's low
        # bits), and the buffer writes it three cycles later, never waiting on the handshake (whose
        # fan-out to the block RAMs' write enables and the zeroing logic was the ECP5 critical path
        # at 125.4 MHz). The sequencer counts the chunks written from its own register of the taken
        # beat, and learns that the buffer is full a cycle before the banks' last write, which the
        # first word's read follows by two cycles (read directly, the buffer's registers put two
        # chip-wide routes on the ECP5 critical path: 73.8 MHz at 4 x 128). RUN starts in the cycle
        # of the last beat's write.
        m.d.comb += [self.load.valid.eq(take_act), self.load.payload.data.eq(self.act.payload),
                     self.load.payload.last.eq(last_beat),
                     self.load.payload.low.eq(left[:len(self.load.payload.low)])]
        a_valid, a_last = Signal(), Signal(reset_less=True)
        m.d.sync += [a_valid.eq(take_act), a_last.eq(last_beat)]
        with m.If(take_act):
            m.d.sync += [left.eq(left - C), last_beat.eq(left <= 2 * C)]
            with m.If(last_beat):
                m.d.sync += loading.eq(0)
        with m.If(a_valid):
            m.d.sync += ld_addr.eq(ld_addr + 1)
        load_done = Signal()
        m.d.sync += load_done.eq(a_valid & a_last)
        with m.If(load_done):
            m.d.sync += [running.eq(1), c_last.eq(ld_addr - 1), c_last_m1.eq(ld_addr - 2),
                         chunk_last.eq(ld_addr == 1), r_left.eq(rows_r), r_gt.eq(rows_r > R)]

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
                m.d.sync += mat.eq(0)
                with m.If(last_stg):
                    m.d.sync += [stg.eq(0), r_left.eq(r_left - R), r_gt.eq(r_left > 2 * R)]
                with m.Else():
                    m.d.sync += stg.eq(stg + 1)
            with m.Else():
                m.d.sync += mat.eq(mat + 1)
        # `empty` a register (the pipeline's valids and the buffer's state gathered into the state
        # registers were the ECP5 critical path at 130.8 MHz): the engine idles a cycle later
        empty = Signal()
        m.d.sync += empty.eq(self.drained & ~take)
        with m.If(draining & empty):
            m.d.sync += [draining.eq(0), idle.eq(1)]
        return m
