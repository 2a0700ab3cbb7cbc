"""Cycle and energy model of full LLaMA inference on a fairyhw array: tokens/s and tokens/J.

``python -m fairyhw.perf --model llama2-7b --lanes 64 --clock 250e6 --memory u280-hbm2 --context 2048``

The split follows Accelergy / LLMCompass: a *workload* of operators on shape-only tensors
(:func:`decode_ops`, :func:`prefill_ops`), a *hardware* of blocks that each return a frozen
:class:`Cost` per action (:class:`MacArray`, :class:`Sram`, :class:`Dram`, :class:`VectorUnit`), and
:func:`project` that maps one onto the other. SI units without prefixes throughout (s, J, B, Hz, W).

Time of an operator is ``max(compute time, memory time)`` (weights and KV stream while the array works,
double-buffered); operators run one after another. The linear layers' compute cycles are the
generator's own latency function, :func:`fairyhw.hw.engine.engine_cycles`, which the co-simulation
measures exactly.
"""

from __future__ import annotations

import argparse
import math
import sys
from dataclasses import asdict, dataclass, field

from .cli import ArgumentParser, float_in, int_in
from .hw.config import add_arguments, from_arguments
from .hw.config import EngineConfig
from .hw.timing import latency, pass_count
from .llama import LLAMA2_7B, LlamaConfig, linear_shapes

__all__ = ["Cost", "MemoryPreset", "MEMORY_PRESETS", "ENERGY_45NM", "HardwareConfig", "Op",
           "decode_ops", "prefill_ops", "workload", "project", "smallest_saturating", "Projection", "roofline_tokens_per_s", "MODELS"]

MODELS = {"llama2-7b": LLAMA2_7B}

#: Physical ranges of the model's inputs (the command line refuses values outside them).
BOUNDS = {
    "lanes": 1 << 24,                    # complex MACs per cycle
    "clock": (1e3, 1e10),                # Hz
    "bandwidth": (1e6, 1e15),            # B/s
    "pj_per_bit": (1e-3, 1e4),           # pJ/bit
    "static_w": (0.0, 1e5),              # W
    "node_nm": (1.0, 1000.0),            # nm
    "tokens": 1 << 20,                   # context or prompt length
    "batch": 4096,
    "vector_ops": 1 << 20,               # fp16 ops per cycle
}


# ---------------------------------------------------------------------------------------------------
# Energy table: every figure names its source. 45 nm figures scale to other nodes (see node_scale).

ENERGY_45NM = {
    "int8_add": (0.03e-12, "Horowitz ISSCC'14, 45 nm"),
    "int32_add": (0.1e-12, "Horowitz ISSCC'14, 45 nm"),
    "int8_mul": (0.2e-12, "Horowitz ISSCC'14, 45 nm"),
    "int32_mul": (3.1e-12, "Horowitz ISSCC'14, 45 nm"),
    "fp16_add": (0.4e-12, "Horowitz ISSCC'14, 45 nm"),
    "fp16_mul": (1.1e-12, "Horowitz ISSCC'14, 45 nm"),
    "sram_8k_64b": (10e-12, "Horowitz ISSCC'14, 45 nm: 64-bit read, 8 KB SRAM"),
    "sram_32k_64b": (20e-12, "Horowitz ISSCC'14, 45 nm: 64-bit read, 32 KB SRAM"),
    "sram_1m_64b": (100e-12, "Horowitz ISSCC'14, 45 nm: 64-bit read, 1 MB SRAM"),
}


def node_scale(node_nm: float) -> float:
    """First-order scaling of logic and SRAM energy from 45 nm: C V^2 with capacitance proportional to
    feature size and voltage held (a conservative choice: it ignores the voltage drop of newer nodes).
    DRAM and HBM energies are per bit at the interface and are not scaled."""
    return node_nm / 45.0


def add_energy(width: int) -> float:
    """Energy of one integer add of ``width`` bits at 45 nm: linear between Horowitz's int8 and int32."""
    e8, e32 = ENERGY_45NM["int8_add"][0], ENERGY_45NM["int32_add"][0]
    return e8 + (e32 - e8) * (max(8, width) - 8) / 24


@dataclass(frozen=True)
class Cost:
    """Seconds and joules of one action."""

    seconds: float = 0.0
    joules: float = 0.0


@dataclass(frozen=True)
class MemoryPreset:
    name: str
    bandwidth: float          # B/s
    pj_per_bit: float         # J/bit * 1e12
    static_w: float           # board static power assumed with this memory system, W
    source: str


MEMORY_PRESETS = {
    "ddr4-2400-x64": MemoryPreset("ddr4-2400-x64", 19.2e9, 31.0, 1.0,
                                  "DDR4-2400 x64: 19.2 GB/s; 1.3-2.6 nJ per 64-bit access "
                                  "(Horowitz ISSCC'14), midpoint 1.95 nJ = 31 pJ/bit; 1 W static for a small "
                                  "FPGA board (assumed)"),
    "ddr4-dual": MemoryPreset("ddr4-dual", 51.2e9, 31.0, 2.0,
                              "DDR4-3200 dual channel: 51.2 GB/s; energy as DDR4 above; 2 W static "
                              "(assumed)"),
    "u280-hbm2": MemoryPreset("u280-hbm2", 460e9, 3.97, 10.0,
                              "Alveo U280 HBM2: 460 GB/s, 3.97 pJ/bit (a published HBM2 access energy); 10 W static "
                              "for the card (assumed, UltraScale+ VU37P class)"),
    "h100-hbm3": MemoryPreset("h100-hbm3", 3.35e12, 3.97, 60.0,
                              "H100 SXM HBM3: 3.35 TB/s; HBM2's 3.97 pJ/bit used as a stand-in; 60 W "
                              "static (assumed)"),
}


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


# ---------------------------------------------------------------------------------------------------
# Workload

@dataclass(frozen=True)
class Op:
    """One operator of a token's (or a prompt's) work, on shapes only."""

    name: str
    kind: str                      # "linear", "attention", "vector", "embedding"
    count: int = 1                 # times per forward (per layer ops: layers)
    k: int = 0                     # linear: complex input length
    rows: int = 0                  # linear: complex output rows
    tokens: int = 1                # activation vectors through this op
    weight_bytes: float = 0.0      # per forward, all counts included
    kv_bytes: float = 0.0
    vector_ops: float = 0.0
    act_bytes: float = 0.0


def _linear_ops(cfg: LlamaConfig, tokens: int, stages: int, lm_head: str, matrices: int = 2) -> list[Op]:
    ops = []
    for s in linear_shapes(cfg):
        if s.name == "lm_head" and lm_head == "fp16":
            ops.append(Op("lm_head (fp16)", "vector", 1, tokens=tokens, weight_bytes=2 * s.params,
                          vector_ops=2 * s.params * tokens))
            continue
        # T stages x (U, W) x (out/2 x in/2) codes x 2 bits = T bits per real weight (half that with
        # W only, Fairy±i); the engine re-reads the weights for every token
        wb = s.params * stages * matrices / 16 * s.count * tokens
        ops.append(Op(s.name, "linear", s.count, k=s.in_features // 2, rows=s.out_features // 2,
                      tokens=tokens, weight_bytes=wb, act_bytes=(s.in_features + s.out_features) *
                      s.count * tokens))
    return ops


def _block_vector_ops(cfg: LlamaConfig, tokens: int) -> list[Op]:
    h, i, L = cfg.hidden, cfg.intermediate, cfg.layers
    kv = cfg.kv_heads * cfg.head_dim
    return [
        Op("rmsnorm", "vector", 2 * L + 1, tokens=tokens, vector_ops=4 * h * (2 * L + 1) * tokens),
        Op("rope", "vector", L, tokens=tokens, vector_ops=3 * (h + kv) * L * tokens),
        Op("silu*up", "vector", L, tokens=tokens, vector_ops=(10 + 1) * i * L * tokens),
        Op("residual", "vector", 2 * L, tokens=tokens, vector_ops=2 * h * L * tokens),
        Op("embedding", "embedding", 1, tokens=tokens, weight_bytes=2 * h * tokens),
    ]


def decode_ops(cfg: LlamaConfig = LLAMA2_7B, *, context: int = 0, batch: int = 1, stages: int = 2,
               lm_head: str = "quantized", kv: str = "fp16", matrices: int = 2) -> list[Op]:
    """One decoded token per sequence at context length ``context``, ``batch`` sequences; ``matrices``
    per stage (2: Fairy2i's U and W, 1: W only)."""
    kvb = {"fp16": 2, "int8": 1}[kv]
    kvdim = cfg.kv_heads * cfg.head_dim
    L = cfg.layers
    pos = context + 1                          # the new token attends to itself too
    att = Op("attention", "attention", L, tokens=batch,
             kv_bytes=2 * kvdim * kvb * L * batch * (pos - 1) + 2 * kvdim * kvb * L * batch,
             vector_ops=(2 * 2 * cfg.hidden * pos + 5 * cfg.heads * pos) * L * batch)
    return _linear_ops(cfg, batch, stages, lm_head, matrices) + [att] + _block_vector_ops(cfg, batch)


def prefill_ops(cfg: LlamaConfig = LLAMA2_7B, *, prompt: int = 128, stages: int = 2,
                lm_head: str = "quantized", kv: str = "fp16", matrices: int = 2) -> list[Op]:
    """A prompt of ``prompt`` tokens (causal attention over the prompt), one sequence."""
    kvb = {"fp16": 2, "int8": 1}[kv]
    kvdim = cfg.kv_heads * cfg.head_dim
    L = cfg.layers
    pairs = prompt * (prompt + 1) / 2
    att = Op("attention", "attention", L, tokens=prompt, kv_bytes=2 * kvdim * kvb * L * prompt,
             vector_ops=(2 * 2 * cfg.hidden * pairs + 5 * cfg.heads * pairs) * L)
    return _linear_ops(cfg, prompt, stages, lm_head, matrices) + [att] + _block_vector_ops(cfg, prompt)


def workload(hw: HardwareConfig, phase: str = "decode", model: LlamaConfig = LLAMA2_7B, **kw) -> list[Op]:
    """The operators of ``phase`` for the engine of ``hw``: its stages and matrices per stage."""
    fn = decode_ops if phase == "decode" else prefill_ops
    return fn(model, stages=hw.engine.stages, matrices=len(hw.engine.matrices), **kw)


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


# ---------------------------------------------------------------------------------------------------
# Command line

def build_parser():
    p = ArgumentParser(prog="python -m fairyhw.perf",
                                description="Project LLaMA inference on a fairyhw array: tokens/s, "
                                            "tokens/J, time and energy by operation.",
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--model", choices=tuple(MODELS), default="llama2-7b", help="model shapes")
    add_arguments(p)
    p.add_argument("--clock", metavar="HZ", type=float_in(*BOUNDS["clock"], "clock", "Hz"),
                   default=250e6, help="array clock")
    p.add_argument("--memory", choices=tuple(MEMORY_PRESETS), default="u280-hbm2",
                   help="memory system preset")
    p.add_argument("--bandwidth", metavar="B_PER_S", type=float_in(*BOUNDS["bandwidth"], "bandwidth",
                                                                   "B/s"),
                   help="override the preset's bandwidth")
    p.add_argument("--pj-per-bit", metavar="PJ", type=float_in(*BOUNDS["pj_per_bit"], "pj-per-bit",
                                                               "pJ/bit"),
                   help="override the preset's energy")
    p.add_argument("--static-w", metavar="W", type=float_in(*BOUNDS["static_w"], "static-w", "W"),
                   help="override the preset's static power")
    p.add_argument("--phase", choices=("decode", "prefill"), default="decode", help="workload")
    p.add_argument("--context", metavar="L", type=int_in(0, BOUNDS["tokens"], "context"), default=0,
                   help="decode context length")
    p.add_argument("--prompt", metavar="P", type=int_in(1, BOUNDS["tokens"], "prompt"), default=128,
                   help="prefill prompt length")
    p.add_argument("--batch", metavar="B", type=int_in(1, BOUNDS["batch"], "batch"), default=1,
                   help="sequences decoded together")
    p.add_argument("--lm-head", choices=("quantized", "fp16"), default="quantized",
                   help="lm_head on the array or fp16 on the vector unit")
    p.add_argument("--kv", choices=("fp16", "int8"), default="fp16", help="KV cache element")
    p.add_argument("--vector-ops", metavar="N", type=int_in(1, BOUNDS["vector_ops"], "vector-ops"),
                   default=512, help="vector unit fp16 ops per cycle (attention, norms, activations)")
    p.add_argument("--node-nm", metavar="NM", type=float_in(*BOUNDS["node_nm"], "node-nm", "nm"),
                   default=16.0, help="technology node for logic/SRAM energy scaling from 45 nm")
    p.add_argument("--json", action="store_true", help="print the projection as JSON")
    return p


def run(args) -> Projection:
    from dataclasses import replace
    cfg = MODELS[args.model]
    mem = MEMORY_PRESETS[args.memory]
    if args.bandwidth:
        mem = replace(mem, name=f"{mem.name}@{args.bandwidth:.3g}B/s", bandwidth=args.bandwidth)
    if args.pj_per_bit:
        mem = replace(mem, pj_per_bit=args.pj_per_bit)
    hw = HardwareConfig(from_arguments(args), clock=args.clock, memory=mem,
                        vector_ops_per_cycle=args.vector_ops, node_nm=args.node_nm,
                        static_w=args.static_w)
    if args.phase == "decode":
        ops = workload(hw, "decode", cfg, context=args.context, batch=args.batch, lm_head=args.lm_head,
                       kv=args.kv)
        return project(ops, hw, tokens=args.batch)
    ops = workload(hw, "prefill", cfg, prompt=args.prompt, lm_head=args.lm_head, kv=args.kv)
    return project(ops, hw, tokens=args.prompt)


def format_table(pr: Projection, title: str) -> str:
    lines = [title, ""]
    lines.append(f"{'operation':<16}{'ms':>10}{'compute ms':>12}{'memory ms':>11}  {'bound':<8}"
                 f"{'mJ':>10}")
    for r in pr.ops:
        lines.append(f"{r['name']:<16}{r['seconds'] * 1e3:>10.3f}{r['compute_s'] * 1e3:>12.3f}"
                     f"{r['memory_s'] * 1e3:>11.3f}  {r['bound']:<8}{sum(r['energy'].values()) * 1e3:>10.3f}")
    lines.append("")
    lines.append(f"tokens/s {pr.tokens_per_s:.2f}   tokens/J {pr.tokens_per_j:.3f}   "
                 f"s/token {pr.seconds / pr.tokens:.4g}   J/token {pr.joules / pr.tokens:.4g}")
    lines.append(f"bound: {pr.bound}; memory roofline {pr.roofline_tokens_per_s:.1f} tokens/s "
                 f"(reached {100 * pr.roofline_fraction:.1f}%); MAC array utilisation "
                 f"{100 * pr.utilization:.1f}%")
    lines.append("energy per token (mJ): " + ", ".join(
        f"{k} {v / pr.tokens * 1e3:.2f}" for k, v in pr.energy_split.items()))
    return "\n".join(lines)


def main(argv=None) -> int:
    from .outputs import run_command
    return run_command(_main, argv)


def _main(argv) -> int:
    from .outputs import dumps_json
    args = build_parser().parse_args(argv)
    pr = run(args)
    text = dumps_json(pr.to_json(), indent=1)      # refuses NaN and infinities before printing anything
    if args.json:
        print(text)
    else:
        what = (f"decode at context {args.context}, batch {args.batch}" if args.phase == "decode"
                else f"prefill of {args.prompt} tokens")
        from .gen import describe
        eng = from_arguments(args)
        print(format_table(pr, f"{args.model} W{eng.stages}, {what}: {describe(eng)} at "
                               f"{args.clock / 1e6:g} MHz, {pr.hardware['memory']}"))
    return 0


if __name__ == "__main__":
    sys.exit(main())


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
