"""Cycle counts of the generated engine, in pure Python (no HDL import).

The latency functions here are the contract between the RTL, the co-simulation (which measures them
exactly, stall-free) and the performance model.
"""

from __future__ import annotations

__all__ = ["BUFFER_READ_DELAY", "read_cycles", "engine_cycles", "array_cycles", "array_depth", "tree_levels", "tree_depth", "tile_rows",
           "output_stages", "latency", "pass_count", "result_beats"]


def tile_rows(rows: int, tile: int) -> list[int]:
    """The rows of each row tile of ``tile`` rows a layer of ``rows`` rows is cut into."""
    return [min(tile, rows - r0) for r0 in range(0, rows, tile)]


def tree_levels(cols: int) -> int:
    """Adder levels of an array row's trees: over the ``ceil(cols / 2)`` pair leaves."""
    return max(0, ((cols + 1) // 2 - 1).bit_length())


def tree_depth(cols: int, tree_regs: int) -> int:
    """Registers of an array row's trees: one every ``tree_regs`` adder levels and at the root (the
    leaves feed the first level unregistered; a lone leaf is registered)."""
    return max(1, -(-tree_levels(cols) // tree_regs))


def engine_cycles(k: int, rows: int, *, lanes: int, stages: int, matrices: int,
                  sharing: str = "buffer", lane_style: str = "output") -> int:
    """Cycles from the command's handshake to the last result's handshake, both included, with every
    input valid and the result stream always ready.

    ``2K`` cycles fill the buffer and stream the first pass (``K`` with ``sharing="stream"``, which has
    no buffer to fill); pass ``i`` then ends ``max(K, 2 + c_i)`` cycles after pass ``i - 1``
    (``c_i`` = rows of its tile: a pass cannot end before the previous pass's ``c_i`` results have
    drained), and the last pass's ``c`` results follow it through the two pipeline stages.

    ``lane_style="dot"``: ``K`` cycles fill the buffer; each of the ``P = rows * stages * matrices``
    passes takes ``n = ceil(K / lanes)`` weight words, and a pass ends ``max(n, 4)`` cycles after the one
    before (one result is in flight at a time through the three pipeline stages and the output
    register); the last result leaves 5 cycles after the last word.
    """
    if lane_style == "dot":
        n = -(-k // lanes)
        passes = rows * stages * matrices
        return k + n + (passes - 1) * max(n, 4) + 5
    per_pass = [c for c in tile_rows(rows, lanes) for _ in range(stages * matrices)]
    first = 2 * k if sharing == "buffer" else k
    return first + sum(max(k, 2 + c) for c in per_pass[:-1]) + per_pass[-1] + 3


def latency(cfg, k: int, rows: int) -> int:
    """Cycles of one layer on the engine ``cfg`` (an :class:`~fairyhw.hw.config.EngineConfig`),
    command to last result, with no stalls: :func:`array_cycles` for the array style, else
    :func:`engine_cycles` of its parameters."""
    if cfg.lane_style == "array":
        return array_cycles(k, rows, cfg)
    return engine_cycles(k, rows, lanes=cfg.lanes, stages=cfg.stages, matrices=len(cfg.matrices),
                         sharing=cfg.sharing, lane_style=cfg.lane_style)


def pass_count(cfg, rows: int) -> int:
    """Passes of a layer with ``rows`` rows: one per (row tile, stage, matrix)."""
    return -(-rows // cfg.row_tile) * cfg.stages * len(cfg.matrices)


#: Cycles from the array's read address (the sequencer's chunk) to the activation buffer's read data:
#: a middle copy, the bank's own address register, the block RAM's read, the read-data register and
#: a fabric register after it (:class:`fairyhw.hw.buffer.ActBuffer`).
BUFFER_READ_DELAY = 5


def array_depth(cfg) -> int:
    """Pipeline registers of the array style from an accepted weight word to its accumulation: the
    word's slot, then :data:`BUFFER_READ_DELAY` - 1 more while the buffer reads its chunk, the shared
    pair values and plane bits, then the row trees (one register per ``tree_regs`` adder levels,
    :func:`tree_depth`)."""
    return BUFFER_READ_DELAY + 1 + tree_depth(cfg.cols, cfg.tree_regs)


def output_stages(accumulate: str) -> int:
    """Cycles of the array's result pipeline, from the drain slot to the ``res`` stream: two registers
    for split sums (``H + X`` and ``X - H``, then the parts), three for merged ones (then ``re``,
    ``im``), and the output FIFO."""
    return 3 if accumulate == "split" else 4


def array_cycles(k: int, rows: int, cfg) -> int:
    """Cycles of one layer on the array style, command handshake to last result handshake, both
    included, no stalls.

    Cycle 0 takes the command, the counters start from it at cycle 1, ``n = ceil(k / cols)`` act
    beats fill the buffer from cycle 2 (the last one is registered when taken and written by the
    buffer's banks three cycles after it is taken; the first weight word is taken the cycle it is
    written, and its chunk is read two cycles later), and each pass (row tile, stage, matrix) takes ``n`` weight words, one a cycle. The last word
    of pass ``i``, accepted
    at cycle ``L_i``, reaches the root ``D`` (:func:`array_depth`) cycles later and its sums are
    captured in tile slot A; they move to slot B once B is empty, at ``m_i``, and drain one beat a
    cycle, the ``b_i = ceil(c_i / group)`` beats ending at ``e_i``; each beat then crosses the
    :func:`output_stages` registers. A pass's last word waits for a credit (two tiles at most between
    its acceptance and the end of their drain), and for the cycle in which the sequencer counts the
    pass before it (one-word passes only)::

        L_0 = 2n + 3,   L_i = max(L_{i-1} + max(n, 2), e_{i-2} + 1)
        m_i = max(L_i + D + 1, e_{i-1} + 1),   e_i = m_i + b_i

    and the last result is taken at ``e_last + output_stages``. The array never stalls while
    ``b_i + 1 <= n`` and ``D + b_i + 2 <= 2n``.
    """
    n = -(-k // cfg.cols)
    d = array_depth(cfg)
    beats = [-(-c // cfg.group) for c in tile_rows(rows, cfg.rows)
             for _ in range(cfg.stages * len(cfg.matrices))]
    e = [-(10 ** 9), -(10 ** 9)]         # drain ends of the two passes before (none yet)
    last = None
    for b in beats:
        last = 2 * n + 3 if last is None else max(last + max(n, 2), e[-2] + 1)
        move = max(last + d + 1, e[-1] + 1)
        e.append(move + b)
    return e[-1] + output_stages(cfg.accumulate) + 1


def result_beats(cfg, rows: int) -> int:
    """Result beats of a layer with ``rows`` rows: one per (row tile, stage, matrix, group of
    ``res_per_beat`` rows)."""
    per = cfg.res_per_beat
    return sum(-(-c // per) for c in tile_rows(rows, cfg.row_tile)) * cfg.stages * len(cfg.matrices)


def read_cycles(beats: int, *, width: int, bytes_per_cycle: float, latency: int, outstanding: int,
                max_burst: int) -> float:
    """Cycles for the AXI read master (:class:`fairyhw.hw.dma.AxiReader`) to deliver ``beats`` words
    of ``width`` bytes, command to last word, from a memory of ``bytes_per_cycle`` bandwidth,
    ``latency`` cycles from a burst's address to its first word, and at most ``outstanding`` bursts in
    flight (the smaller of the master's and the memory's limits); the consumer never stalls, the
    address is aligned so that bursts are ``max_burst`` beats.

    The larger of two bounds, plus 3 cycles (the command registered, the address issued, the word
    through the FIFO): the bandwidth, ``beats / w + latency`` with ``w`` the words a cycle (at most 1);
    and the round trips: burst ``k`` takes slot ``k % outstanding``, and a slot's next burst goes out
    one period ``P = latency + max_burst / w + 1`` after its previous one (the slot frees when the
    burst's last word arrives, and the next address goes out the cycle after); within a round the
    slots follow ``max_burst / w`` cycles apart (the words come in order), and the last burst's last
    word arrives ``latency`` plus its own length after its address. Checked against co-simulation with a memory model of those three knobs
    (``sim/test_dma.py``)."""
    w = min(1.0, bytes_per_cycle / width)
    bursts = -(-beats // max_burst)
    period = latency + max_burst / w + 1
    last = beats - (bursts - 1) * max_burst
    trips = ((bursts - 1) // outstanding * period + (bursts - 1) % outstanding * max_burst / w
             + latency + last / w)
    return max(beats / w + latency, trips) + 3
