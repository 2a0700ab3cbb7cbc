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
import json
import math
import sys
from dataclasses import asdict, dataclass, field

from .cli import ArgumentParser, float_in, int_in
from .hw.engine import engine_cycles
from .llama import LLAMA2_7B, LlamaConfig, linear_shapes

__all__ = ["Cost", "MemoryPreset", "MEMORY_PRESETS", "ENERGY_45NM", "HardwareConfig", "Op",
           "decode_ops", "prefill_ops", "project", "Projection", "roofline_tokens_per_s", "MODELS"]

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
                                  "DDR4-2400 x64: 19.2 GB/s; 1.3-2.6 nJ per 64-bit access (DESIGN.md "
                                  "sec. 5), midpoint 1.95 nJ = 31 pJ/bit; 1 W static for a small "
                                  "FPGA board (assumed)"),
    "ddr4-dual": MemoryPreset("ddr4-dual", 51.2e9, 31.0, 2.0,
                              "DDR4-3200 dual channel: 51.2 GB/s; energy as DDR4 above; 2 W static "
                              "(assumed)"),
    "u280-hbm2": MemoryPreset("u280-hbm2", 460e9, 3.97, 10.0,
                              "Alveo U280 HBM2: 460 GB/s, 3.97 pJ/bit (DESIGN.md sec. 5); 10 W static "
                              "for the card (assumed, UltraScale+ VU37P class)"),
    "h100-hbm3": MemoryPreset("h100-hbm3", 3.35e12, 3.97, 60.0,
                              "H100 SXM HBM3: 3.35 TB/s; HBM2's 3.97 pJ/bit used as a stand-in; 60 W "
                              "static (assumed)"),
}


# ---------------------------------------------------------------------------------------------------
# Hardware blocks

@dataclass(frozen=True)
class HardwareConfig:
    """The array and its memory system.

    ``col_groups > 1`` models a column-parallel array (``lanes / col_groups`` rows, each fed by
    ``col_groups`` lanes through an adder tree): a *modelled* variant with no RTL yet, flagged in
    every output that uses it."""

    lanes: int = 64
    clock: float = 250e6
    stages: int = 2
    accumulate: str = "split"
    sharing: str = "buffer"
    memory: MemoryPreset = MEMORY_PRESETS["u280-hbm2"]
    vector_ops_per_cycle: int = 512
    node_nm: float = 16.0
    static_w: float | None = None
    col_groups: int = 1
    lut_per_lane: float | None = None
    lane_style: str = "output"

    @property
    def row_lanes(self) -> int:
        return self.lanes // self.col_groups

    @property
    def static_power(self) -> float:
        return self.memory.static_w if self.static_w is None else self.static_w


class MacArray:
    """The generated engine: cycles from its latency function, energy per lane-cycle of adds."""

    def __init__(self, hw: HardwareConfig, acc_width: int = 22):
        self.hw, self.acc_width = hw, acc_width

    def cycles(self, k: int, rows: int) -> int:
        c = self.hw.col_groups
        if c == 1:   # the generated engine: its own latency function, exact against the RTL
            return engine_cycles(k, rows, lanes=self.hw.lanes, stages=self.hw.stages, matrices=2,
                                 sharing=self.hw.sharing, lane_style=self.hw.lane_style)
        # modelled column-parallel array: K/C columns per pass, an adder tree of log2(C) stages,
        # C results drained per cycle and C activations loaded per cycle
        kc, r = math.ceil(k / c), self.hw.row_lanes
        tiles = [min(r, rows - r0) for r0 in range(0, rows, r)]
        passes = [math.ceil(t / c) for t in tiles for _ in range(2 * self.hw.stages)]
        return (2 * kc + sum(max(kc, 2 + p) for p in passes[:-1]) + passes[-1] + 3 +
                math.ceil(math.log2(c)))

    def linear(self, k: int, rows: int, tokens: int = 1) -> Cost:
        cyc = self.cycles(k, rows) * tokens
        # useful complex MACs: each does 2 accumulator adds (split: two of the four sums; merged: re, im)
        macs = 2 * self.hw.stages * k * rows * tokens
        if self.hw.lane_style == "dot":
            # per weight word: 4 adder trees of C - 1 narrow adds (9 + log2 C bits) and 4 accumulator adds
            n = self.hw.lanes
            words = math.ceil(k / n) * rows * 2 * self.hw.stages * tokens
            tree = add_energy(9 + math.ceil(math.log2(max(n, 2))))
            return Cost(cyc / self.hw.clock, words * 4 * ((n - 1) * tree + add_energy(self.acc_width)) *
                        node_scale(self.hw.node_nm))
        e = macs * 2 * add_energy(self.acc_width) * node_scale(self.hw.node_nm)
        if self.hw.col_groups > 1:   # adder tree: (C - 1) adds per row and pass
            e += (self.hw.col_groups - 1) * 4 * rows * 2 * self.hw.stages * tokens * \
                add_energy(self.acc_width) * node_scale(self.hw.node_nm)
        return Cost(cyc / self.hw.clock, e)


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


def _linear_ops(cfg: LlamaConfig, tokens: int, stages: int, lm_head: str) -> list[Op]:
    ops = []
    for s in linear_shapes(cfg):
        if s.name == "lm_head" and lm_head == "fp16":
            ops.append(Op("lm_head (fp16)", "vector", 1, tokens=tokens, weight_bytes=2 * s.params,
                          vector_ops=2 * s.params * tokens))
            continue
        # T stages x (U, W) x (out/2 x in/2) codes x 2 bits = T bits per real weight; the engine
        # re-reads the weights for every token
        wb = s.params * stages / 8 * s.count * tokens
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
               lm_head: str = "quantized", kv: str = "fp16") -> list[Op]:
    """One decoded token per sequence at context length ``context``, ``batch`` sequences."""
    kvb = {"fp16": 2, "int8": 1}[kv]
    kvdim = cfg.kv_heads * cfg.head_dim
    L = cfg.layers
    pos = context + 1                          # the new token attends to itself too
    att = Op("attention", "attention", L, tokens=batch,
             kv_bytes=2 * kvdim * kvb * L * batch * (pos - 1) + 2 * kvdim * kvb * L * batch,
             vector_ops=(2 * 2 * cfg.hidden * pos + 5 * cfg.heads * pos) * L * batch)
    return _linear_ops(cfg, batch, stages, lm_head) + [att] + _block_vector_ops(cfg, batch)


def prefill_ops(cfg: LlamaConfig = LLAMA2_7B, *, prompt: int = 128, stages: int = 2,
                lm_head: str = "quantized", kv: str = "fp16") -> list[Op]:
    """A prompt of ``prompt`` tokens (causal attention over the prompt), one sequence."""
    kvb = {"fp16": 2, "int8": 1}[kv]
    kvdim = cfg.kv_heads * cfg.head_dim
    L = cfg.layers
    pairs = prompt * (prompt + 1) / 2
    att = Op("attention", "attention", L, tokens=prompt, kv_bytes=2 * kvdim * kvb * L * prompt,
             vector_ops=(2 * 2 * cfg.hidden * pairs + 5 * cfg.heads * pairs) * L)
    return _linear_ops(cfg, prompt, stages, lm_head) + [att] + _block_vector_ops(cfg, prompt)


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
    modelled_variant: bool = False

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
            passes = math.ceil(op.rows / hw.row_lanes) * hw.stages * 2
            # weight FIFO write+read, activation buffer: K writes and one 16-bit read per pass-cycle
            e["buffers"] = (buf_w.access(2 * op.weight_bytes * 8).joules +
                            buf_a.access(16 * op.k * (1 + passes) * op.count * op.tokens).joules)
            mac_busy += 2 * hw.stages * op.k * op.rows * op.count * op.tokens / hw.lanes / hw.clock
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
        hardware={"lanes": hw.lanes, "clock": hw.clock, "stages": hw.stages, "memory": hw.memory.name,
                  "bandwidth": hw.memory.bandwidth, "pj_per_bit": hw.memory.pj_per_bit,
                  "static_w": hw.static_power, "node_nm": hw.node_nm, "col_groups": hw.col_groups,
                  "vector_ops_per_cycle": hw.vector_ops_per_cycle,
                  "lut_estimate": None if hw.lut_per_lane is None else hw.lut_per_lane * hw.lanes},
        modelled_variant=hw.col_groups > 1)


def lut_per_lane_measured(path: str = None) -> float | None:
    """Xilinx LUTs per lane from the committed 64-lane synthesis report, if present."""
    import os
    path = path or os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                "reports", "synth_l64.json")
    try:
        with open(path) as f:
            return json.load(f)["targets"]["xilinx"]["per_lane"]["lut_equiv"]
    except (OSError, KeyError, ValueError):
        return None


# ---------------------------------------------------------------------------------------------------
# Command line

def build_parser():
    p = ArgumentParser(prog="python -m fairyhw.perf",
                                description="Project LLaMA inference on a fairyhw array: tokens/s, "
                                            "tokens/J, time and energy by operation.",
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--model", choices=tuple(MODELS), default="llama2-7b")
    p.add_argument("--lanes", metavar="N", type=int_in(1, BOUNDS["lanes"], "lanes"), default=64,
                   help="complex MACs per cycle")
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
    p.add_argument("--stages", metavar="T", type=int_in(1, 4, "stages"), default=2,
                   help="residual stages")
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
    p.add_argument("--col-groups", metavar="C", type=int_in(1, 1024, "col-groups"), default=1,
                   help="model a column-parallel array of LANES/C rows x C (no RTL yet)")
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
    hw = HardwareConfig(lanes=args.lanes, clock=args.clock, stages=args.stages, memory=mem,
                        vector_ops_per_cycle=args.vector_ops, node_nm=args.node_nm,
                        static_w=args.static_w, col_groups=args.col_groups,
                        lut_per_lane=lut_per_lane_measured())
    if args.phase == "decode":
        ops = decode_ops(cfg, context=args.context, batch=args.batch, stages=args.stages,
                         lm_head=args.lm_head, kv=args.kv)
        return project(ops, hw, tokens=args.batch)
    ops = prefill_ops(cfg, prompt=args.prompt, stages=args.stages, lm_head=args.lm_head, kv=args.kv)
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
    if pr.hardware.get("lut_estimate"):
        lines.append(f"LUT estimate: {pr.hardware['lut_estimate']:,.0f} (Xilinx, from the measured "
                     f"64-lane synthesis)")
    if pr.modelled_variant:
        lines.append("note: col-groups > 1 is a modelled column-parallel array with no RTL yet")
    return "\n".join(lines)


def main(argv=None) -> int:
    from .outputs import run_command
    return run_command(_main, argv)


def _main(argv) -> int:
    from . import FairyError
    from .outputs import check_finite
    args = build_parser().parse_args(argv)
    if args.lanes % args.col_groups:
        raise FairyError(f"--lanes ({args.lanes}) must be a multiple of --col-groups ({args.col_groups})")
    pr = run(args)
    check_finite(pr.to_json(), "projection")
    if args.json:
        print(json.dumps(pr.to_json(), indent=1, allow_nan=False))
    else:
        what = (f"decode at context {args.context}, batch {args.batch}" if args.phase == "decode"
                else f"prefill of {args.prompt} tokens")
        print(format_table(pr, f"{args.model} W{args.stages}, {what}: {args.lanes} lanes at "
                               f"{args.clock / 1e6:g} MHz, {pr.hardware['memory']}"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
