"""The projection: a workload mapped onto the hardware, operator by operator."""

from __future__ import annotations
from dataclasses import asdict, dataclass, field
from ..hw.config import EngineConfig
from ..hw.timing import pass_count
from ..model.llama import LLAMA2_7B, linear_shapes
from .energy import MemoryPreset
from .hardware import Dram, HardwareConfig, MacArray, Sram, VectorUnit
from .workload import Op, workload


# ---------------------------------------------------------------------------------------------------
# Projection

@dataclass
class OpResult:
    name: str
    seconds: float
    compute_s: float
    memory_s: float
    bound: str
    energy: dict


@dataclass
class Projection:
    tokens: int
    seconds: float
    joules: float
    tokens_per_s: float
    tokens_per_j: float
    bound: str
    roofline_tokens_per_s: float
    roofline_fraction: float
    utilization: float
    energy_split: dict
    ops: list = field(default_factory=list)
    hardware: dict = field(default_factory=dict)

    def to_json(self) -> dict:
        d = asdict(self)
        return d


def roofline_tokens_per_s(ops: list[Op], bandwidth: float, tokens: int = 1) -> float:
    """Memory roofline: tokens/s if every byte (weights, KV, embedding) moved at full bandwidth."""
    total = sum(o.weight_bytes + o.kv_bytes for o in ops)
    return tokens / (total / bandwidth)


def project(ops: list[Op], hw: HardwareConfig, *, tokens: int = 1) -> Projection:
    """Map a workload onto the hardware: time and energy per operator, totals, bound, roofline."""
    arr, dram, vec = MacArray(hw), Dram(hw), VectorUnit(hw)
    buf_w, buf_a = Sram(hw, "sram_32k_64b"), Sram(hw, "sram_8k_64b")
    rows, total_s = [], 0.0
    split = {"weights": 0.0, "kv_cache": 0.0, "buffers": 0.0, "macs": 0.0, "vector": 0.0, "static": 0.0}
    mac_busy = 0.0
    for op in ops:
        e = {k: 0.0 for k in split}
        mem = dram.read(op.weight_bytes + op.kv_bytes)
        e["weights"] = dram.read(op.weight_bytes).joules
        e["kv_cache"] = dram.read(op.kv_bytes).joules
        if op.kind == "linear":
            c = arr.linear(op.k, op.rows, op.tokens)
            compute = c.seconds * op.count
            e["macs"] = c.joules * op.count
            passes = pass_count(hw.engine, op.rows)
            # weight FIFO write+read, activation buffer: K writes and one 16-bit read per pass-cycle
            e["buffers"] = (buf_w.access(2 * op.weight_bytes * 8).joules +
                            buf_a.access(16 * op.k * (1 + passes) * op.count * op.tokens).joules)
            mac_busy += hw.stages * len(hw.engine.matrices) * op.k * op.rows * op.count * op.tokens \
                / hw.lanes / hw.clock
        else:
            v = vec.ops(op.vector_ops)
            compute = v.seconds
            e["vector"] = v.joules
            e["buffers"] = buf_a.access(op.kv_bytes * 8).joules
        secs = max(compute, mem.seconds)
        total_s += secs
        for k in split:
            split[k] += e[k]
        rows.append(OpResult(op.name, secs, compute, mem.seconds,
                             "memory" if mem.seconds >= compute else "compute", e))
    split["static"] = hw.static_power * total_s
    joules = sum(split.values())
    mem_s = sum(r.seconds for r in rows if r.bound == "memory")
    roof = roofline_tokens_per_s(ops, hw.memory.bandwidth, tokens)
    tps = tokens / total_s
    return Projection(
        tokens=tokens, seconds=total_s, joules=joules, tokens_per_s=tps, tokens_per_j=tokens / joules,
        bound=f"memory ({hw.memory.name})" if mem_s >= total_s / 2 else "compute (MAC array)",
        roofline_tokens_per_s=roof, roofline_fraction=tps / roof, utilization=mac_busy / total_s,
        energy_split=split, ops=[asdict(r) for r in rows],
        hardware={"engine": hw.engine.to_json(), "lanes": hw.lanes, "clock": hw.clock,
                  "stages": hw.stages, "memory": hw.memory.name,
                  "bandwidth": hw.memory.bandwidth, "pj_per_bit": hw.memory.pj_per_bit,
                  "static_w": hw.static_power, "node_nm": hw.node_nm,
                  "vector_ops_per_cycle": hw.vector_ops_per_cycle, "luts": hw.luts})


def smallest_saturating(clock: float, memory: MemoryPreset, *, cols: int = 128, max_rows: int = 512,
                        **engine) -> HardwareConfig | None:
    """The array of ``cols`` columns with the fewest rows whose every linear layer of a LLaMA-2 7B
    decode step is memory-bound at ``clock`` (compute time at most the weight stream's), or None."""
    for rows in range(1, max_rows + 1):
        hw = HardwareConfig(EngineConfig(lanes=rows * cols, lane_style="array", rows=rows, cols=cols,
                                         **engine), clock=clock, memory=memory)
        pr = project(workload(hw), hw)
        if all(r["compute_s"] <= r["memory_s"] for r in pr.ops if r["name"] in _LINEAR_NAMES):
            return hw
    return None


_LINEAR_NAMES = {s.name for s in linear_shapes(LLAMA2_7B)}
