"""``fairyhw bench quant``: the whole quantizer in a child process, its time and peak memory."""

from __future__ import annotations
import os
import resource
import subprocess
import sys
import tempfile
import time
from .. import FairyError


def bench_quant(args) -> dict:
    from ..model.checkpoint import smollm2_gguf_path
    import gguf
    path = smollm2_gguf_path()
    params = sum(int(t.n_elements) for t in gguf.GGUFReader(path).tensors)
    with tempfile.TemporaryDirectory() as d:
        t0 = time.perf_counter()
        r = subprocess.run([sys.executable, "-m", "fairyhw.flow.quant", path, "--stages", str(args.stages),
                            "--out", os.path.join(d, "q"), "--no-progress"],
                           capture_output=True, text=True)
        wall = time.perf_counter() - t0
    if r.returncode:
        raise FairyError(f"quant failed: {r.stderr.strip()}")
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024
    fp32 = 4 * params
    res = {"model": os.path.basename(path), "params": params, "stages": args.stages,
           "wall_s": round(wall, 2), "peak_rss_bytes": peak, "fp32_bytes": fp32,
           "peak_over_fp32": round(peak / fp32, 3), "cpus": os.cpu_count()}
    print(r.stdout.strip())
    print(f"convert {res['model']} W{args.stages}: {wall:.1f} s wall (target < 30 s), peak RSS "
          f"{peak / 2**20:.0f} MiB = {peak / fp32:.2f}x fp32 size {fp32 / 2**20:.0f} MiB (target < 3x)")
    return res
