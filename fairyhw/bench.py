"""Benchmarks that print figures: ``python -m fairyhw.bench quant`` (more subcommands as they land).

``quant``: the whole ``python -m fairyhw.quant smollm2 --stages 2`` in a child process, its wall time and
peak resident memory against the targets (30 s; 3x the model's fp32 size).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time


def bench_quant(args) -> dict:
    from .checkpoint import smollm2_gguf_path
    import gguf
    path = smollm2_gguf_path()
    params = sum(int(t.n_elements) for t in gguf.GGUFReader(path).tensors)
    with tempfile.TemporaryDirectory() as d:
        t0 = time.perf_counter()
        r = subprocess.run([sys.executable, "-m", "fairyhw.quant", path, "--stages", str(args.stages),
                            "--out", os.path.join(d, "q"), "--no-progress"],
                           capture_output=True, text=True)
        wall = time.perf_counter() - t0
    if r.returncode:
        raise SystemExit(f"error: quant failed: {r.stderr.strip()}")
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024
    fp32 = 4 * params
    res = {"model": os.path.basename(path), "params": params, "stages": args.stages,
           "wall_s": round(wall, 2), "peak_rss_bytes": peak, "fp32_bytes": fp32,
           "peak_over_fp32": round(peak / fp32, 3), "cpus": os.cpu_count()}
    print(r.stdout.strip())
    print(f"convert {res['model']} W{args.stages}: {wall:.1f} s wall (target < 30 s), peak RSS "
          f"{peak / 2**20:.0f} MiB = {peak / fp32:.2f}x fp32 size {fp32 / 2**20:.0f} MiB (target < 3x)")
    return res


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m fairyhw.bench", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True, metavar="COMMAND")
    q = sub.add_parser("quant", help="time and peak memory of converting SmolLM2-135M",
                       formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    q.add_argument("--stages", type=int, choices=range(1, 5), default=2, metavar="T")
    q.add_argument("--json", action="store_true", help="also print the figures as JSON")
    args = p.parse_args(argv)
    res = {"quant": bench_quant}[args.cmd](args)
    if getattr(args, "json", False):
        print(json.dumps(res, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
