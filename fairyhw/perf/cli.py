"""``fairyhw perf``: project LLaMA inference on an engine and print the table or JSON."""

from __future__ import annotations
import argparse
from ..cli import ArgumentParser, float_in, int_in
from ..hw.config import add_arguments, from_arguments
from .energy import MEMORY_PRESETS
from .hardware import HardwareConfig
from .projection import Projection, project
from .workload import MODELS, workload


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
# Command line

def build_parser():
    p = ArgumentParser(prog="fairyhw perf",
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
    from ..outputs import run_command
    return run_command(_main, argv)


def _main(argv) -> int:
    from ..outputs import dumps_json
    args = build_parser().parse_args(argv)
    pr = run(args)
    text = dumps_json(pr.to_json(), indent=1)      # refuses NaN and infinities before printing anything
    if args.json:
        print(text)
    else:
        what = (f"decode at context {args.context}, batch {args.batch}" if args.phase == "decode"
                else f"prefill of {args.prompt} tokens")
        from ..flow.gen import describe
        eng = from_arguments(args)
        print(format_table(pr, f"{args.model} W{eng.stages}, {what}: {describe(eng)} at "
                               f"{args.clock / 1e6:g} MHz, {pr.hardware['memory']}"))
    return 0
