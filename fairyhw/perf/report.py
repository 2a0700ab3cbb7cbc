"""``fairyhw report``: the LLaMA-2 7B decode projection report in ``reports/``.

Writes ``projection.md``, ``projection.json`` and two plots (``projection_tokens.png``,
``projection_energy.png``): memory rooflines, projected fairyhw designs, published anchors, and the
measured CPU and GPU kernel runs when ``reports/bench_cpu.json`` / ``reports/bench_gpu.json`` exist.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import sys

from .. import FairyError
from ..cli import ArgumentParser
from ..model.llama import LLAMA2_7B, weight_bytes_per_token
from ..outputs import TIMING_SUFFIX, Outputs, run_command, show
from ..hw.config import EngineConfig, default_group
from .anchors import (ANCHOR_BOARD_W, ANCHORS, FIT_SHARE, LUTRAM_SITES, U280_BRAM36, U280_FFS, U280_LUTS,
                      U280_URAM)
from . import (MEMORY_PRESETS, HardwareConfig, decode_ops, project, roofline_tokens_per_s,
                   smallest_saturating, workload)

CONTEXTS = (0, 512, 2048)

#: The files of the reports directory the report reads (written by the synth command).
SYNTH_U280 = "synth_u280.json"          # Xilinx synthesis of the U280 array, extrapolated from slices
SYNTH_ECP5 = "synth_array_ecp5*.json"   # ECP5 synthesis, place and route of arrays of the same pipeline


def _array_luts(fit: dict, rows: int, group: int, what: str = "luts") -> float | None:
    """Resources of an array of ``rows`` rows from the slice fit of :func:`fairyhw.flow.synth.extrapolate_array`
    (same columns)."""
    f = fit.get(what) if fit else None
    if f is None:
        return None
    return f["shared"] + rows * f["per_row"] + group * f["per_group_row"]


def designs(synth: dict | None, fmax_mhz: float | None):
    """The projected designs: (label, HardwareConfig, note, clock source)."""
    u280 = MEMORY_PRESETS["u280-hbm2"]
    out = [("2048 output-stationary lanes @ 300 MHz (assumed), U280 HBM2",
            HardwareConfig.of(lanes=2048, lane_style="output", clock=300e6, memory=u280),
            "the previous engine: each lane owns one output row, so at most 2048 lanes are useful on "
            "LLaMA-2 7B (its q, k, v, o and down projections have 2048 complex rows)", "assumed")]
    cols = (synth or {}).get("parameters", {}).get("cols", 128)
    fit = (synth or {}).get("fit")
    clocks = [(300e6, "assumed")]
    if fmax_mhz:
        clocks.insert(0, (fmax_mhz * 1e6, "measured: ECP5 place and route"))
    for clock, src in clocks:
        hw = smallest_saturating(clock, u280, cols=cols, max_rows=1024)
        e = hw.engine
        luts = _array_luts(fit, e.rows, e.group)
        out.append((f"{e.rows} x {e.cols} array ({e.lanes:,} MACs/cycle) @ {clock / 1e6:.1f} MHz "
                    f"({src}), U280 HBM2", HardwareConfig(e, clock=clock, memory=u280, luts=luts),
                    f"the smallest array of {cols} columns whose every linear layer is bound by the "
                    f"HBM2 weight stream at {clock / 1e6:.1f} MHz", src))
        if luts is not None and luts > FIT_SHARE * U280_LUTS:
            rows = max(r for r in range(1, e.rows) if _array_luts(fit, r, default_group(r, cols))
                       <= FIT_SHARE * U280_LUTS)
            e = EngineConfig(lanes=rows * cols, rows=rows, cols=cols)
            out.append((f"{rows} x {cols} array ({e.lanes:,} MACs/cycle) @ {clock / 1e6:.1f} MHz ({src}), "
                        f"U280 HBM2", HardwareConfig(e, clock=clock, memory=u280,
                                                     luts=_array_luts(fit, rows, e.group)),
                        f"the largest array of {cols} columns within {FIT_SHARE:.0%} of the U280's LUTs "
                        f"at {clock / 1e6:.1f} MHz: the saturating one does not fit", src))
    return out


def _read_json(path):
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except OSError as e:
        raise FairyError(f"{show(path)}: cannot read it ({e.strerror})") from None
    except ValueError as e:
        raise FairyError(f"{show(path)}: not valid JSON ({e})") from None


def kernel_results(reports_dir):
    """Whole-model rows of the bench files in ``reports_dir``: ``[(label, tokens/s)]``."""
    out = []
    for kind in ("cpu", "gpu"):
        # bench_<kind>.json and kept runs of other machines, bench_<kind>_<machine>.json
        for path in sorted(glob.glob(os.path.join(reports_dir, f"bench_{kind}*.json"))):
            data = _read_json(path)
            rows = data.get("model", []) if isinstance(data, dict) else None
            if not isinstance(rows, list):
                raise FairyError(f"{show(path)}: field 'model' must be a list of rows")
            for i, row in enumerate(rows):
                name = row.get("name") if isinstance(row, dict) else None
                tps = row.get("tokens_per_s") if isinstance(row, dict) else None
                if not isinstance(name, str):
                    raise FairyError(f"{show(path)}: field 'model[{i}].name' is missing or not text")
                if isinstance(tps, bool) or not isinstance(tps, (int, float)) or not tps > 0 \
                        or tps == float("inf"):
                    raise FairyError(f"{show(path)}: field 'model[{i}].tokens_per_s' is {tps!r}, "
                                     "expected a positive number")
                if name.startswith("plain read") or row.get("reference"):  # a bandwidth reference or
                    continue                                                 # a part of a kernel
                out.append((f"measured {kind.upper()}: {name} ({data.get('device', '?')}; "
                             f"{os.path.basename(path)})", tps))
    return out


def _optional_json(path):
    return _read_json(path) if os.path.exists(path) else None


def build(reports_dir: str) -> dict:
    synth = _optional_json(os.path.join(reports_dir, SYNTH_U280))
    # the measured clock: the lowest of the placed arrays' (placement alone moves it by 20%: the
    # conservative one)
    ecp5, fmax, placed = None, None, []
    for path in sorted(glob.glob(os.path.join(reports_dir, SYNTH_ECP5))):
        if path.endswith(TIMING_SUFFIX):      # a synthesis run's wall-clock times, beside its report
            continue
        rec = _read_json(path)
        f = (rec.get("pnr") or {}).get("fmax_mhz") if isinstance(rec, dict) else None
        if f is None:
            continue
        if not (isinstance(f, (int, float)) and f > 0):
            raise FairyError(f"{show(path)}: field 'pnr.fmax_mhz' is {f!r}, expected a positive number")
        placed.append({"file": os.path.basename(path), "rows": rec["parameters"]["rows"],
                       "cols": rec["parameters"]["cols"], "fmax_mhz": f, "design": rec.get("design"),
                       "critical_path": rec["pnr"].get("critical_path")})
        if ecp5 is None or f < fmax:
            ecp5, fmax = rec, f
    if synth is not None and not isinstance(synth.get("targets", {}).get("xilinx", {}).get("fit"), dict):
        raise FairyError(f"{show(os.path.join(reports_dir, SYNTH_U280))}: field 'targets.xilinx.fit' is "
                         "missing (write it with fairyhw synth --extrapolate)")
    fit_src = synth and {"fit": synth["targets"]["xilinx"]["fit"], "parameters": synth["parameters"]}
    result = {"contexts": list(CONTEXTS), "rooflines": {}, "designs": [], "anchors": [],
              "kernels": kernel_results(reports_dir), "ecp5": ecp5, "placed": placed,
              "u280_luts": U280_LUTS,
              "u280_bram36": U280_BRAM36, "u280_uram": U280_URAM, "u280_ffs": U280_FFS,
              "weight_bytes_per_token": weight_bytes_per_token(LLAMA2_7B, 2)}
    for name, mem in MEMORY_PRESETS.items():
        result["rooflines"][name] = [roofline_tokens_per_s(decode_ops(context=c), mem.bandwidth)
                                     for c in CONTEXTS]
    for label, hw, note, src in designs(fit_src, fmax):
        prs = [project(workload(hw, context=c), hw) for c in CONTEXTS]
        at_board = [p.tokens / (p.joules - p.energy_split["static"] + ANCHOR_BOARD_W * p.seconds)
                    for p in prs]
        e = hw.engine
        fit = fit_src and fit_src["fit"] if e.lane_style == "array" else None
        bram, lutram, ffs = (_array_luts(fit, e.rows, e.group, what) for what in ("bram", "lutram", "ffs"))
        result["designs"].append({
            "label": label, "note": note, "engine": e.to_json(), "clock": hw.clock, "clock_from": src,
            "memory": hw.memory.name, "luts": hw.luts, "bram": bram, "lutram": lutram, "ffs": ffs,
            "tokens_per_s": [p.tokens_per_s for p in prs], "tokens_per_j": [p.tokens_per_j for p in prs],
            "tokens_per_j_at_board_w": at_board, "static_w": hw.static_power,
            "roofline_fraction": [p.roofline_fraction for p in prs], "bound": [p.bound for p in prs],
            "utilization": [p.utilization for p in prs],
            "energy_split_mj": {k: v * 1e3 for k, v in prs[0].energy_split.items()},
            "time_split_ms": {r["name"]: r["seconds"] * 1e3 for r in prs[0].ops}})
    result["anchors"] = [{"label": a, "tokens_per_s": t, "tokens_per_j": j, "source": s}
                         for a, _, t, j, s in ANCHORS]
    return result


def plots(res, files):
    """Draw the two plots into ``files[name]`` (paths by file name)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    plt.rcParams["svg.hashsalt"] = "fairyhw"
    fig, ax = plt.subplots(figsize=(12, 6))
    labels, vals, colors = [], [], []
    for name in ("ddr4-2400-x64", "u280-hbm2", "h100-hbm3"):
        labels.append(f"roofline {name}")
        vals.append(res["rooflines"][name][0])
        colors.append("#bbbbbb")
    for d in res["designs"]:
        labels.append(f"fairyhw {d['label']}")
        vals.append(d["tokens_per_s"][0])
        colors.append("#1f77b4" if d["engine"]["lane_style"] == "array" else "#aec7e8")
    for a in res["anchors"]:
        labels.append(a["label"])
        vals.append(a["tokens_per_s"])
        colors.append("#2ca02c")
    for label, tps in res["kernels"]:
        labels.append(label)
        vals.append(tps)
        colors.append("#9467bd")
    y = range(len(labels))
    ax.barh(list(y), vals, color=colors)
    ax.set_yticks(list(y), labels, fontsize=7)
    ax.set_xscale("log")
    ax.set_xlabel("LLaMA-2 7B decode tokens/s, context 0 (log)")
    ax.invert_yaxis()
    for i, v in enumerate(vals):
        ax.text(v, i, f" {v:.1f}", va="center", fontsize=7)
    fig.subplots_adjust(left=0.42, right=0.95, top=0.97, bottom=0.09)
    fig.savefig(files["projection_tokens.png"], dpi=110, format="png", metadata={"Software": None})
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(8, 4))
    parts = ["weights", "kv_cache", "buffers", "macs", "vector", "static"]
    bottom = [0.0] * len(res["designs"])
    names = [d["label"] for d in res["designs"]]
    for p in parts:
        v = [d["energy_split_mj"][p] for d in res["designs"]]
        ax.bar(range(len(names)), v, bottom=bottom, label=p)
        bottom = [b + x for b, x in zip(bottom, v)]
    ax.set_xticks(range(len(names)), names, fontsize=7)
    ax.set_yscale("log")
    ax.set_ylabel("mJ per token (context 0, log)")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(files["projection_energy.png"], dpi=110, format="png", metadata={"Software": None})
    plt.close(fig)


def markdown(res) -> str:
    c = res["contexts"]
    L = []
    L.append("# LLaMA-2 7B decode: fairyhw projections beside rooflines, anchors and measured kernels\n")
    L.append("Generated by `fairyhw report` from the cycle and energy model "
             "(`fairyhw/perf/`). W2 (2 bits per real weight, lm_head quantized), fp16 KV cache, "
             f"batch 1. Weights read per token: {res['weight_bytes_per_token'] / 1e9:.3f} GB.\n")
    L.append("![tokens/s](projection_tokens.png)\n")
    L.append("## Memory rooflines (tokens/s: every weight and KV byte at full bandwidth)\n")
    L.append("| memory | " + " | ".join(f"context {x}" for x in c) + " |")
    L.append("|---|" + "---|" * len(c))
    for name, v in res["rooflines"].items():
        L.append(f"| {name} ({MEMORY_PRESETS[name].bandwidth / 1e9:g} GB/s) | " +
                 " | ".join(f"{x:.1f}" for x in v) + " |")
    L.append("\n## Projected fairyhw designs on an Alveo U280\n")
    L.append("Every design is generated RTL; its linear layers take the cycles of the engine's own "
             "latency function (equal to the co-simulation's measured cycles, `sim/`). A clock is either "
             "measured (nextpnr-ecp5 on an LFE5U-85F, a conservative stand-in for a Xilinx place and "
             "route we cannot run here) or an assumption, as labelled. tok/J is given at the model's "
             f"own static power (10 W for the card, an assumption) and at {ANCHOR_BOARD_W:.0f} W of "
             "board power, AccLLM's.\n")
    L.append("| design | " + " | ".join(f"tok/s @{x}" for x in c) +
             f" | tok/J @0 (10 W) | tok/J @0 ({ANCHOR_BOARD_W:.0f} W) | of roofline @0 | bound @0 "
             "| Xilinx logic LUTs (of U280) | LUTRAM cells (LUT sites) | FFs (of U280) | BRAM36 / URAM (of U280) |")
    L.append("|---|" + "---|" * (len(c) + 8))
    for d in res["designs"]:
        def fill(v, total, unit=1e3, suffix=" k"):
            return "n/a" if v is None else f"{v / unit:,.0f}{suffix} ({100 * v / total:.0f}%)"
        mem = "n/a" if d["bram"] is None else \
            f"{d['bram']:,.0f} / 0 ({100 * d['bram'] / res['u280_bram36']:.0f}% / 0%)"
        lutram = "n/a" if d.get("lutram") is None else \
            f"{d['lutram']:,.0f} ({LUTRAM_SITES * d['lutram']:,.0f}, {100 * LUTRAM_SITES * d['lutram'] / res['u280_luts']:.1f}%)"
        L.append(f"| {d['label']} | " + " | ".join(f"{x:.1f}" for x in d["tokens_per_s"]) +
                 f" | {d['tokens_per_j'][0]:.2f} | {d['tokens_per_j_at_board_w'][0]:.2f} | "
                 f"{100 * d['roofline_fraction'][0]:.1f}% | {d['bound'][0]} | "
                 f"{fill(d['luts'], res['u280_luts'])} | {lutram} | {fill(d.get('ffs'), res['u280_ffs'])} | "
                 f"{mem} |")
    L.append("")
    for d in res["designs"]:
        L.append(f"- **{d['label']}**: {d['note']}.")
    L.append("\n![energy](projection_energy.png)\n")
    L.append("## Published anchors\n")
    L.append("| system | tok/s | tok/J | source |")
    L.append("|---|---|---|---|")
    for a in res["anchors"]:
        L.append(f"| {a['label']} | {a['tokens_per_s']} | {a['tokens_per_j'] or '-'} | {a['source']} |")
    L.append("\n## Measured kernels of the same math\n")
    if res["kernels"]:
        for label, tps in res["kernels"]:
            L.append(f"- {label}: {tps:.1f} linear-layer tokens/s")
    else:
        L.append("No `bench_cpu.json` or `bench_gpu.json` in this folder.")
    L += reading(res)
    return "\n".join(L) + "\n"


def reading(res) -> list[str]:
    """What bounds each design, in figures from ``res``."""
    L = ["\n## Reading it\n"]
    old = res["designs"][0]
    arrays = res["designs"][1:]
    roof = res["rooflines"]["u280-hbm2"][0]
    L.append(f"- The output-stationary engine is compute-bound: {old['tokens_per_s'][0]:.1f} tok/s, "
             f"{100 * old['roofline_fraction'][0]:.0f}% of the {roof:.0f} tok/s HBM2 roofline, even at an "
             "assumed 300 MHz.")
    for d in arrays:
        e = d["engine"]
        lut = "" if d["luts"] is None else \
            f", {d['luts'] / 1e3:,.0f} k Xilinx LUTs ({100 * d['luts'] / res['u280_luts']:.0f}% of the U280)"
        L.append(f"- {e['rows']} x {e['cols']} = {e['lanes']:,} MACs/cycle at {d['clock'] / 1e6:.0f} MHz "
                 f"({d['clock_from']}){lut}: {d['tokens_per_s'][0]:.1f} tok/s at context 0 "
                 f"({100 * d['roofline_fraction'][0]:.1f}% of the roofline), "
                 f"{d['tokens_per_s'][-1]:.1f} at context {res['contexts'][-1]}; bound at context 0 by the "
                 f"{'HBM2 weight stream' if d['bound'][0].startswith('memory') else 'MAC array'}, at "
                 f"context {res['contexts'][-1]} by the "
                 f"{'memory' if d['bound'][-1].startswith('memory') else 'attention on the vector unit (512 fp16 ops a cycle at the array clock) and the MAC array'}; "
                 f"the weight stream costs {d['energy_split_mj']['weights']:.1f} mJ a token (3.97 pJ/bit), "
                 f"the adds {d['energy_split_mj']['macs']:.2f} mJ.")
    for p in res.get("placed", []):
        cp = p.get("critical_path") or {}
        where = (f"; its critical path spends {cp['routing_ns']:.1f} ns in routing and "
                 f"{cp['logic_ns']:.1f} ns in logic, its longest hop on net `{cp['largest_hops'][0]['net']}`"
                 if cp.get("largest_hops") else "")
        L.append(f"- Measured clock: nextpnr-ecp5 placed a {p['rows']} x {p['cols']} array at "
                 f"{p['fmax_mhz']:.1f} MHz (`{p['file']}`{', ' + p['design'] if p.get('design') else ''})"
                 f"{where}.")
    if res.get("placed"):
        lo = min(p["fmax_mhz"] for p in res["placed"])
        hi = max(p["fmax_mhz"] for p in res["placed"])
        paths = [p["critical_path"] for p in res["placed"] if p.get("critical_path")]
        routing = [c["routing_ns"] / (c["routing_ns"] + c["logic_ns"]) for c in paths
                   if c["routing_ns"] + c["logic_ns"] > 0]
        share = (f"; routing is {100 * min(routing):.0f}-{100 * max(routing):.0f}% of the critical "
                 "paths' delay" if routing else "")
        L.append(f"- The projections at a measured clock use the lowest of the placed arrays' clocks "
                 f"({lo:.1f} MHz; the highest is {hi:.1f}): the critical paths above name what sets "
                 f"each{share}. A Xilinx UltraScale+ part would be faster, but that is not measured "
                 "here.")
    L.append("- Decode re-reads all weights per token; batching is not modelled as weight reuse.")
    return L


def main(argv=None) -> int:
    return run_command(_main, argv)


def _main(argv) -> int:
    p = ArgumentParser(prog="fairyhw report", description=__doc__,
                       formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--out", metavar="DIR", default="reports", help="reports directory")
    args = p.parse_args(argv)
    if not os.path.isdir(args.out):
        raise FairyError(f"--out: {show(args.out)} is not a directory")
    names = ("projection.json", "projection.md", "projection_tokens.png", "projection_energy.png")
    with Outputs() as out:
        out.into(args.out)
        paths = [out.file(os.path.join(args.out, n)) for n in names]
        res = build(args.out)
        out.write_json(paths[0], res, indent=1)
        out.write_text(paths[1], markdown(res))
        plots(res, {n: out.path(pth) for n, pth in zip(names, paths)})
        out.commit()
    print(f"wrote {show(args.out)}/projection.md, projection.json, projection_tokens.png, "
          f"projection_energy.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
