"""Benchmarks that print figures: ``fairyhw bench quant | cpu | gpu``.

``quant``: the whole ``fairyhw quant smollm2 --stages 2`` in a child process, its wall time and
peak resident memory against the targets (30 s; 3x the model's fp32 size).
``cpu``: the C kernels (:mod:`fairyhw.kernels.cpu.kernel`) checked against the golden integer path, then the whole
model's linear layers (every layer its own codes) beside a plain read of the same bytes, and every LLaMA-2 7B
linear shape beside torch ``F.linear`` in bf16 and fp32; writes ``reports/bench_cpu.json``.
``gpu``: the GPU kernels checked against the golden integer path, then timed on every LLaMA-2 7B linear
shape and on the whole model's linear layers beside a plain read of the same bytes and torch bf16
``F.linear`` (needs a CUDA GPU); writes ``reports/bench_gpu.json``.
"""

from __future__ import annotations
import argparse
from ..cli import ArgumentParser, int_in
from ..hw.config import MAX_STAGES
from ..outputs import Outputs, dumps_json, run_command, show
from .cpu import bench_cpu
from .gpu import bench_gpu
from .quant import bench_quant


def main(argv=None) -> int:
    return run_command(_main, argv)


def _main(argv) -> int:
    p = ArgumentParser(prog="fairyhw bench", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True, metavar="COMMAND")
    q = sub.add_parser("quant", help="time and peak memory of converting SmolLM2-135M",
                       formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    q.add_argument("--stages", type=int_in(1, MAX_STAGES, "stages"), default=2, metavar="T", help="residual stages")
    q.add_argument("--json", action="store_true", help="also print the figures as JSON")
    cp = sub.add_parser("cpu", help="C kernels vs torch bf16/fp32 and a plain read, LLaMA-2 7B shapes",
                        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    cp.add_argument("--threads", type=int_in(0, 1024, "threads"), default=0,
                    help="threads for kernels and torch (0: every core)")
    cp.add_argument("--rotate-mb", type=int_in(1, 1 << 16, "rotate-mb"), default=256, metavar="MB",
                    help="torch weights rotated per shape, at least this many MiB")
    cp.add_argument("--out", metavar="FILE", default="reports/bench_cpu.json", help="results JSON")
    gp = sub.add_parser("gpu", help="GPU kernels vs a plain read and torch bf16, LLaMA-2 7B (needs a GPU)",
                        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    gp.add_argument("--out", metavar="FILE", default="reports/bench_gpu.json", help="results JSON")
    args = p.parse_args(argv)
    with Outputs() as out:
        if getattr(args, "out", None):
            out.file(args.out)          # checked before the bench runs
        res = {"quant": bench_quant, "cpu": bench_cpu, "gpu": bench_gpu}[args.cmd](args)
        if getattr(args, "json", False):
            print(dumps_json(res, indent=1))
        if getattr(args, "out", None):
            out.write_json(args.out, res, indent=1)
            out.commit()
            print(f"wrote {show(args.out)}")
    return 0
