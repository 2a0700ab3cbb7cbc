"""The host side of the system top (:mod:`fairyhw.hw.system`): memory laid out for a run of layers,
results read back, and a driver that programs the registers.

A layer is ``(codes, p, q)``: codes ``(stages, matrices, rows, K)`` uint8 (code k = i**k) and int8
activations of length ``K``, as the engine's co-simulation takes them; or a :class:`QuantLayer` (the
weight stream of a ``fairyhw quant`` output directory, :func:`load_quant`) with its activations,
``(QuantLayer, p, q)``. :func:`lay_out` places, from
``base`` upward, the descriptor list, then each layer's activations, its weight regions (one per
weight port, ``wgt_stride`` apart) and its result region, every region 4 KB aligned, and returns the
memory image and where things are. :meth:`Layout.results` decodes a layer's result region into the
engine's sums (``(stages, matrices, rows, parts)`` int64, as :func:`fairyhw.hw.driver.ref_results`).

:class:`Driver` runs a layout through the registers of :data:`fairyhw.hw.axi.REGISTERS` over any bus
object with ``async write_dword(addr, value)`` and ``async read_dword(addr)`` (cocotbext-axi's
``AxiLiteMaster`` in co-simulation; on a board, a wrapper of the register window's MMIO).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

import numpy as np
import torch

from .axi import REGISTERS
from .config import DESCRIPTOR, DESCRIPTOR_BYTES, ERRORS, RESULT_SUM_BITS, SystemConfig, slot_bits
from ..model.pack import stream_words_for
from .driver import decode_results
from .streams import act_beats, res_layout

__all__ = ["Layout", "lay_out", "pack_items", "pack_rows", "unpack_items", "descriptor", "Driver",
           "OFFSETS", "QuantLayer", "load_quant", "weight_images", "decode_region"]

#: Register offsets by name.
OFFSETS = {r.name: r.offset for r in REGISTERS}
PAGE = 4096


def _align(n: int, a: int = PAGE) -> int:
    return -(-n // a) * a


def pack_items(items, width: int, data_width: int) -> bytes:
    """Items (ints of ``width`` bits) at their :func:`slot_bits` slots from a word boundary, padded to
    whole words."""
    slot = slot_bits(width, data_width)
    total = -(-len(items) * slot // data_width) * data_width
    mask = (1 << width) - 1
    value = 0
    for i, it in enumerate(items):
        value |= (int(it) & mask) << (i * slot)
    return value.to_bytes(total // 8, "little")


def pack_rows(items: np.ndarray, width: int, data_width: int) -> bytes:
    """:func:`pack_items` of items given as the rows of a uint8 array ``(n, width / 8)`` (each row an
    item's bytes, little-endian): the same bytes, at numpy speed. ``width`` a multiple of 8."""
    assert width % 8 == 0 and items.shape[1] == width // 8, (width, items.shape)
    slot = slot_bits(width, data_width)
    if slot > width:
        items = np.pad(items, ((0, 0), (0, (slot - width) // 8)))
    per = max(1, data_width // slot)
    n = items.shape[0]
    if n % per:
        items = np.pad(items, ((0, per - n % per), (0, 0)))
    return np.ascontiguousarray(items).tobytes()


def unpack_items(blob: bytes, count: int, width: int, data_width: int) -> list[int]:
    """The first ``count`` items of ``width`` bits of a region written by :func:`pack_items`."""
    slot = slot_bits(width, data_width)
    value = int.from_bytes(blob, "little")
    mask = (1 << width) - 1
    return [(value >> (i * slot)) & mask for i in range(count)]


def descriptor(k: int, rows: int, act: int, wgt: int, wgt_stride: int, res: int, flags: int = 0) -> bytes:
    """A layer descriptor's 64 bytes (:data:`fairyhw.hw.config.DESCRIPTOR`)."""
    v = {"k": k, "rows": rows, "act_lo": act & 0xFFFFFFFF, "act_hi": act >> 32,
         "wgt_lo": wgt & 0xFFFFFFFF, "wgt_hi": wgt >> 32, "wgt_stride": wgt_stride,
         "res_lo": res & 0xFFFFFFFF, "res_hi": res >> 32, "flags": flags}
    words = [v.get(name, 0) for name in DESCRIPTOR]
    assert len(words) * 4 == DESCRIPTOR_BYTES
    return struct.pack("<16I", *words)


@dataclass(frozen=True)
class QuantLayer:
    """A layer of a ``fairyhw quant`` output directory: its weight stream (ints of ``2*lanes`` bits,
    the engine's stream layout), complex shape and scales."""
    name: str
    words: tuple
    k: int
    rows: int
    scales: dict


def load_quant(path: str, cfg: SystemConfig) -> list:
    """The quantized layers of a ``fairyhw quant`` output directory, in its order, as
    :class:`QuantLayer`; its images must be laid out for ``cfg``'s engine (the directory's
    ``summary.json`` records the engine)."""
    import json
    import os
    from .. import FairyError
    from ..model.pack import read_memh
    from .config import EngineConfig
    try:
        with open(os.path.join(path, "summary.json")) as f:
            summary = json.load(f)
    except (OSError, ValueError) as e:
        raise FairyError(f"{path}: not a fairyhw quant output directory ({e})") from None
    engine = EngineConfig.from_json(summary.get("engine"))
    if engine != cfg.engine:
        raise FairyError(f"{path}: its images are laid out for {engine}, not for {cfg.engine}: "
                         "quantize again with the system's engine options")
    out = []
    for entry in summary["layers"]:
        if not entry.get("quantized"):
            continue
        packed = read_memh(os.path.join(path, entry["memh"]), engine.lanes)
        words = tuple(int.from_bytes(w.tobytes(), "little") for w in packed)
        rows, k = entry["complex_shape"]
        out.append(QuantLayer(entry["name"], words, k, rows, entry["scales"]))
    return out


@dataclass
class LayerPlace:
    k: int
    rows: int
    act: int
    wgt: int
    wgt_stride: int
    res: int
    res_bytes: int


@dataclass
class Layout:
    """A run laid out in memory: ``chunks`` ``{address: bytes}`` to write, the descriptor list's
    address and count, each layer's place, and the end of the used memory."""
    config: SystemConfig
    desc_addr: int
    places: list = field(default_factory=list)
    chunks: dict = field(default_factory=dict)
    end: int = 0

    @property
    def count(self) -> int:
        return len(self.places)

    def result_beats(self, i: int, blob: bytes) -> list[int]:
        """Layer ``i``'s result region (``blob``) as the engine's ``res`` payloads."""
        from .timing import result_beats
        return self.decode_beats(blob, result_beats(self.config.engine, self.places[i].rows))

    def decode_beats(self, blob: bytes, n: int) -> list[int]:
        """The first ``n`` result items of a result region as the engine's ``res`` payloads."""
        cfg, e = self.config, self.config.engine
        items = unpack_items(blob, n, cfg.result_bits, cfg.data_width)
        per, parts = e.res_per_beat, len(e.parts)
        layout = res_layout(e)
        out = []
        for j, it in enumerate(items):
            sums = []
            for s in range(per * parts):
                v = (it >> (RESULT_SUM_BITS * s)) & ((1 << RESULT_SUM_BITS) - 1)
                sums.append(v - (1 << RESULT_SUM_BITS) if v >> (RESULT_SUM_BITS - 1) else v)
            grouped = [sums[g * parts:(g + 1) * parts] for g in range(per)]
            beat = {"sums": grouped if e.lane_style == "array" else grouped[0], "last": int(j == n - 1)}
            out.append(int(layout.const(beat).as_bits()))
        return out

    def results(self, i: int, blob: bytes) -> torch.Tensor:
        """Layer ``i``'s sums, int64 ``(stages, matrices, rows, parts)``."""
        return decode_results(self.config.engine, self.result_beats(i, blob), self.places[i].rows)


def weight_images(cfg: SystemConfig, words, k: int) -> list[bytes]:
    """Each weight port's image of a layer's weight stream (``words``: ints of ``2 * lanes`` bits, or
    a uint8 array ``(words, bytes)`` as :func:`fairyhw.model.pack.stream_words_for` gives): port
    ``p`` holds bits ``[p*s, (p+1)*s)`` of every word (``s`` = ``cfg.slice_bits``), pass after pass,
    each pass from a memory word."""
    n = cfg.pass_words(k)
    s, D = cfg.slice_bits, cfg.data_width
    if len(words) % n:
        raise ValueError(f"{len(words)} weight words are not whole passes of {n}")
    if isinstance(words, np.ndarray) and s % 8 == 0:
        out = []
        for pt in range(cfg.weight_ports):
            sl = words[:, pt * s // 8:(pt + 1) * s // 8]
            if sl.shape[1] < s // 8:                      # a word narrower than the slices
                sl = np.pad(sl, ((0, 0), (0, s // 8 - sl.shape[1])))
            out.append(b"".join(pack_rows(sl[j:j + n], s, D) for j in range(0, len(sl), n)))
        return out
    if isinstance(words, np.ndarray):
        words = [int.from_bytes(w.tobytes(), "little") for w in words]
    out = []
    for pt in range(cfg.weight_ports):
        sl = [(w >> (pt * s)) & ((1 << s) - 1) for w in words]
        out.append(b"".join(pack_items(sl[j:j + n], s, D) for j in range(0, len(sl), n)))
    return out


def decode_region(cfg: SystemConfig, blob: bytes, rows: int) -> torch.Tensor:
    """A layer's result region (``blob``) as its sums, int64 ``(stages, matrices, rows, parts)``
    (:meth:`Layout.results`, at numpy speed where each result item fills its slot)."""
    from .timing import result_beats, tile_rows
    e = cfg.engine
    per, parts, T, M = e.res_per_beat, len(e.parts), e.stages, len(e.matrices)
    n = result_beats(e, rows)
    if slot_bits(cfg.result_bits, cfg.data_width) != cfg.result_bits or e.lane_style != "array":
        return decode_results(e, Layout(cfg, 0).decode_beats(blob, n), rows)
    v = np.frombuffer(blob[:n * cfg.result_bits // 8], dtype="<i4").astype(np.int64).reshape(n, per, parts)
    tile = e.row_tile
    counts = tile_rows(rows, tile)
    full = rows // tile
    out = np.zeros((T, M, rows, parts), np.int64)
    bpt = -(-tile // per)
    used = full * T * M * bpt
    if full:
        a = v[:used].reshape(full, T, M, bpt * per, parts)[:, :, :, :tile]
        out[:, :, :full * tile] = a.transpose(1, 2, 0, 3, 4).reshape(T, M, full * tile, parts)
    if len(counts) > full:
        last = counts[-1]
        bl = -(-last // per)
        a = v[used:used + T * M * bl].reshape(T, M, bl * per, parts)[:, :, :last]
        out[:, :, full * tile:] = a
    return torch.from_numpy(out)


def lay_out(cfg: SystemConfig, layers, base: int = 0) -> Layout:
    """Lay out ``layers`` (``(codes, p, q)`` each) for one run from address ``base`` (4 KB aligned)."""
    if base % PAGE:
        raise ValueError(f"base must be a multiple of {PAGE}, not {base}")
    e, D = cfg.engine, cfg.data_width
    lay = Layout(cfg, desc_addr=base)
    at = _align(base + DESCRIPTOR_BYTES * len(layers))
    descs = []
    for src, p, q in layers:
        if isinstance(src, QuantLayer):
            words, k, rows = list(src.words), src.k, src.rows
        else:
            stages, mats, rows, k = src.shape
            if stages != e.stages or mats != len(e.matrices):
                raise ValueError(f"codes of {stages} stages x {mats} matrices do not fit the engine's "
                                 f"{e.stages} x {len(e.matrices)}")
            words = stream_words_for([[c for c in per] for per in src], e)
        if len(p) != k:
            raise ValueError(f"activations of length {len(p)} for a layer of k = {k}")
        act = at
        blob = pack_items(act_beats(e, p, q), cfg.act_bits, D)
        lay.chunks[act] = blob
        at = _align(at + len(blob))
        ports = weight_images(cfg, words, k)
        stride = _align(max(len(b) for b in ports))
        wgt = at
        for pt, b in enumerate(ports):
            lay.chunks[wgt + pt * stride] = b
        at = wgt + stride * cfg.weight_ports
        res = at
        res_bytes = cfg.result_memory_words(rows) * cfg.word_bytes
        at = _align(at + res_bytes)
        lay.places.append(LayerPlace(k, rows, act, wgt, stride, res, res_bytes))
        descs.append(descriptor(k, rows, act, wgt, stride, res))
    lay.chunks[base] = b"".join(descs)
    lay.end = at
    return lay


class Driver:
    """Runs a :class:`Layout` on the system top through its registers (see the module)."""

    def __init__(self, bus):
        self.bus = bus

    async def read(self, name: str) -> int:
        return await self.bus.read_dword(OFFSETS[name])

    async def write(self, name: str, value: int) -> None:
        await self.bus.write_dword(OFFSETS[name], value)

    async def start(self, desc_addr: int, count: int, irq: bool = True) -> None:
        """Program the descriptor list and pulse start (with the interrupt enabled or not)."""
        await self.write("status", 0b110)                    # clear done and error
        await self.write("desc_addr_lo", desc_addr & 0xFFFFFFFF)
        await self.write("desc_addr_hi", desc_addr >> 32)
        await self.write("desc_count", count)
        await self.write("ctrl", 0b001 | (0b100 if irq else 0))

    async def status(self) -> dict:
        """The status register's fields and the counters."""
        st = await self.read("status")
        lo = lambda n: self.read(n)
        out = {"busy": st & 1, "done": st >> 1 & 1, "error": st >> 2 & 1, "error_code": st >> 8 & 0xFF}
        out["error_text"] = ERRORS.get(out["error_code"], "unknown")
        out["layer"] = await lo("layer")
        out["cycles"] = await lo("cycles_lo") | await lo("cycles_hi") << 32
        out["stall"] = await lo("stall_lo") | await lo("stall_hi") << 32
        out["results"] = await lo("results")
        return out

    async def soft_reset(self) -> None:
        await self.write("ctrl", 0b010)
