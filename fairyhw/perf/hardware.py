"""The hardware blocks of the performance model: each returns a frozen :class:`Cost` per action."""

from __future__ import annotations
import math
from dataclasses import dataclass, field
from ..hw.config import EngineConfig
from ..hw.timing import latency
from .energy import Cost, ENERGY_45NM, MEMORY_PRESETS, MemoryPreset, add_energy, node_scale


# ---------------------------------------------------------------------------------------------------
# Hardware blocks

@dataclass(frozen=True)
class HardwareConfig:
    """The engine (its :class:`~fairyhw.hw.config.EngineConfig`), its clock and its memory system.

    ``luts``: the engine's Xilinx LUTs, measured or extrapolated from synthesis, when known (reported
    beside the projection, not used in it)."""

    engine: EngineConfig = field(default_factory=EngineConfig)
    clock: float = 250e6
    memory: MemoryPreset = MEMORY_PRESETS["u280-hbm2"]
    vector_ops_per_cycle: int = 512
    node_nm: float = 16.0
    static_w: float | None = None
    luts: float | None = None

    @classmethod
    def of(cls, *, clock: float = 250e6, memory: MemoryPreset = MEMORY_PRESETS["u280-hbm2"],
           vector_ops_per_cycle: int = 512, node_nm: float = 16.0, static_w: float | None = None,
           luts: float | None = None, **engine) -> "HardwareConfig":
        """Build from engine parameters given by keyword (``lanes=``, ``lane_style=`` ...)."""
        return cls(EngineConfig(**engine), clock, memory, vector_ops_per_cycle, node_nm, static_w, luts)

    @property
    def lanes(self) -> int:
        return self.engine.lanes

    @property
    def stages(self) -> int:
        return self.engine.stages

    @property
    def static_power(self) -> float:
        return self.memory.static_w if self.static_w is None else self.static_w


class MacArray:
    """The generated engine: cycles from its own latency function (:func:`fairyhw.hw.timing.latency`,
    exact against the RTL), energy from the adds each style performs."""

    def __init__(self, hw: HardwareConfig):
        self.hw, self.cfg = hw, hw.engine

    def cycles(self, k: int, rows: int) -> int:
        return latency(self.cfg, k, rows)

    def adds(self, k: int, rows: int) -> list[tuple[float, int]]:
        """``[(count, bit width)]`` of the integer adds one layer costs on this engine."""
        cfg = self.cfg
        mats = cfg.stages * len(cfg.matrices)
        acc = cfg.acc_width
        if cfg.lane_style == "output":
            # each complex MAC adds into two of its lane's accumulators
            return [(2.0 * mats * k * rows, acc)]
        if cfg.lane_style == "dot":
            # per weight word: 4 adder trees of (lanes - 1) narrow adds, and 4 accumulator adds
            n = cfg.lanes
            words = math.ceil(k / n) * rows * mats
            return [(words * 4 * (n - 1), 9 + math.ceil(math.log2(max(n, 2)))), (words * 4, acc)]
        # array: per weight word and row, four trees over C/2 pair leaves and four accumulator adds;
        # per word, shared: the pair sums (C) and the S_p, S_q trees and accumulators
        c, r = cfg.cols, cfg.rows
        n = math.ceil(k / c)
        tiles = math.ceil(rows / r)
        words = n * tiles * mats
        leaves = (c + 1) // 2
        tree_w = 9 + math.ceil(math.log2(max(leaves, 2))) // 2
        return [(words * r * 4 * max(leaves - 1, 0), tree_w), (words * r * 4, acc),
                (words * (c + 2 * max(leaves - 1, 0)), tree_w), (words * 2, acc)]

    def linear(self, k: int, rows: int, tokens: int = 1) -> Cost:
        cyc = self.cycles(k, rows) * tokens
        e = sum(cnt * add_energy(w) for cnt, w in self.adds(k, rows)) * tokens
        return Cost(cyc / self.hw.clock, e * node_scale(self.hw.node_nm))


class Sram:
    """On-chip buffer: energy per bit read or written from a Horowitz SRAM figure."""

    def __init__(self, hw: HardwareConfig, kind: str = "sram_32k_64b"):
        self.e_bit = ENERGY_45NM[kind][0] / 64 * node_scale(hw.node_nm)

    def access(self, bits: float) -> Cost:
        return Cost(0.0, bits * self.e_bit)


class Dram:
    def __init__(self, hw: HardwareConfig):
        self.m = hw.memory

    def read(self, nbytes: float) -> Cost:
        return Cost(nbytes / self.m.bandwidth, nbytes * 8 * self.m.pj_per_bit * 1e-12)


class VectorUnit:
    """fp16 unit for the non-linear operations: ``vector_ops_per_cycle`` ops per cycle."""

    def __init__(self, hw: HardwareConfig):
        self.hw = hw
        self.e_op = (ENERGY_45NM["fp16_add"][0] + ENERGY_45NM["fp16_mul"][0]) / 2 * node_scale(hw.node_nm)

    def ops(self, n: float) -> Cost:
        return Cost(n / (self.hw.vector_ops_per_cycle * self.hw.clock), n * self.e_op)
