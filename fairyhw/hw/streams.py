"""The engine's streams: their payload layouts, and the host's beats packed and unpacked with them.

The layouts are Amaranth data layouts, the one definition that the RTL's ports (:class:`Engine`'s
signature), the manifest, the Amaranth-simulator harness and the cocotb testbench all use: beats are
built with the layout's ``const()`` and read with its ``from_bits()``, never by hand-slicing bits.

- ``cmd``: ``k`` (the input length) then ``rows``, one beat a layer;
- ``act``: ``p`` then ``q`` (int8), one element a beat, or the array's ``cols`` elements a beat;
- ``wgt``: ``2 * lanes`` bits of weight codes in the lane style's stream layout
  (:mod:`fairyhw.model.pack`);
- ``res``: the ``parts`` signed sums of one row (the array's ``group`` rows), then ``last``.
"""

from __future__ import annotations

import functools

from amaranth.hdl import signed, unsigned
from amaranth.lib import data

from .config import EngineConfig

__all__ = ["ACT_LAYOUT", "cmd_layout", "act_layout", "wgt_shape", "sums_layout", "res_layout",
           "cmd_beat", "act_beats", "unpack_result"]

#: One activation element: the real and imaginary int8 parts.
ACT_LAYOUT = data.StructLayout({"p": signed(8), "q": signed(8)})


@functools.lru_cache(maxsize=None)
def cmd_layout(cfg: EngineConfig) -> data.StructLayout:
    """A command beat: ``k`` (1..max_in) and ``rows`` (1..max_out)."""
    return data.StructLayout({"k": unsigned(cfg.max_in.bit_length()),
                              "rows": unsigned(cfg.max_out.bit_length())})


@functools.lru_cache(maxsize=None)
def act_layout(cfg: EngineConfig):
    """An ``act`` beat: one element, or the array's ``cols`` elements (element ``c`` in field ``c``)."""
    return data.ArrayLayout(ACT_LAYOUT, cfg.cols) if cfg.lane_style == "array" else ACT_LAYOUT


def wgt_shape(cfg: EngineConfig):
    """A ``wgt`` beat: two code bits a lane (a MAC of the array)."""
    return unsigned(2 * cfg.lanes)


@functools.lru_cache(maxsize=None)
def sums_layout(cfg: EngineConfig) -> data.ArrayLayout:
    """One row's sums: ``parts`` signed ``acc_width``-bit values."""
    return data.ArrayLayout(signed(cfg.acc_width), len(cfg.parts))


@functools.lru_cache(maxsize=None)
def res_layout(cfg: EngineConfig) -> data.StructLayout:
    """A result beat: one row's sums (``group`` rows for the array style), then ``last``."""
    sums = sums_layout(cfg)
    if cfg.lane_style == "array":
        sums = data.ArrayLayout(sums, cfg.group)
    return data.StructLayout({"sums": sums, "last": 1})


def cmd_beat(cfg: EngineConfig, k: int, rows: int) -> int:
    """The ``cmd`` payload of a layer of ``rows`` rows and input length ``k``."""
    return cmd_layout(cfg).const({"k": k, "rows": rows}).as_bits()


def act_beats(cfg: EngineConfig, p, q, passes: int = 1, pad: int = 0) -> list[int]:
    """``act`` payloads of the int8 vectors ``p, q``, repeated for ``passes`` passes
    (``sharing="stream"`` engines take the vector once per pass). The array's last beat is padded
    with elements whose bits are ``pad`` (16 bits; the engine ignores padding)."""
    elems = [{"p": int(a), "q": int(b)} for a, b in zip(p.tolist(), q.tolist())]
    if cfg.lane_style != "array":
        one = [ACT_LAYOUT.const(e).as_bits() for e in elems]
    else:
        filler = ACT_LAYOUT.from_bits(pad & 0xFFFF)
        elems += [{"p": filler.p, "q": filler.q}] * (-len(elems) % cfg.cols)
        layout = act_layout(cfg)
        one = [layout.const(elems[i:i + cfg.cols]).as_bits() for i in range(0, len(elems), cfg.cols)]
    return one * passes


def unpack_result(cfg: EngineConfig, payload: int) -> tuple[list[list[int]], int]:
    """A ``res`` payload as ``([the sums of each of its rows], last)`` (``group`` rows for the array
    style, padding rows of a tile's last beat included)."""
    beat = res_layout(cfg).from_bits(payload)
    parts = range(len(cfg.parts))
    if cfg.lane_style == "array":
        return [[beat.sums[g][i] for i in parts] for g in range(cfg.group)], beat.last
    return [[beat.sums[i] for i in parts]], beat.last
