"""``python -m fairyhw.gen --lanes 64``: emit the engine's Verilog and its JSON manifest.

Writes ``OUT/NAME.v`` and ``OUT/NAME.json`` (both or neither). Same options, same bytes: no absolute
paths, timestamps or host names in either file.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

from amaranth.back import verilog
from amaranth.lib import data
from amaranth.hdl import Shape

from . import __version__
from .cli import ArgumentParser, int_in
from .outputs import Outputs, run_command, show
from .hw.engine import ACCUMULATE, LANE_STYLES, MAX_DIM, MAX_LANES, MODES, SHARING, Engine

__all__ = ["generate", "manifest", "main"]

DEFAULTS = {"lanes": 64, "max_in": 8192, "max_out": 16384, "stages": 2, "mode": "fairy2i",
            "accumulate": "split", "sharing": "buffer", "lane_style": "output"}


def _layout_fields(layout, offset=0, prefix=""):
    """Flatten a data layout to ``[{name, offset, width, signed}]``."""
    out = []
    if isinstance(layout, data.StructLayout):
        for name, f in layout:
            out += _layout_fields(f.shape, offset + f.offset, f"{prefix}{name}.")
    elif isinstance(layout, data.ArrayLayout):
        for i in range(layout.length):
            out += _layout_fields(layout.elem_shape, offset + i * Shape.cast(layout.elem_shape).width,
                                  f"{prefix}{i}.")
    else:
        s = Shape.cast(layout)
        out.append({"name": prefix.rstrip("."), "offset": offset, "width": s.width, "signed": s.signed})
    return out


def manifest(engine: Engine, name: str) -> dict:
    """Everything a user of the Verilog needs: parameters, ports, stream layouts, the latency formula."""
    streams = {
        "cmd": ("in", engine.cmd_layout, "one beat starts a layer; accepted only when idle"),
        "act": ("in", engine.act.signature.members["payload"].shape,
                "k beats of the complex int8 input after cmd" if engine.sharing == "buffer" else
                "one beat with every wgt beat (the input resent for each pass); moves with wgt"),
        "wgt": ("in", engine.wgt.signature.members["payload"].shape,
                "codes in the stream layout: row tile, stage, matrix, input column"
                if engine.lane_style == "output" else
                "codes in the dot stream layout: row, stage, matrix, chunk of `lanes` input columns"),
        "res": ("out", engine.res_layout, "one beat per (row tile, stage, matrix, row)"
                if engine.lane_style == "output" else "one beat per (row, stage, matrix)"),
    }
    ports = [{"name": "clk", "direction": "in", "width": 1, "signed": False, "protocol": "clock"},
             {"name": "rst", "direction": "in", "width": 1, "signed": False,
              "protocol": "synchronous reset, active high"}]
    for s, (direction, layout, what) in streams.items():
        width = Shape.cast(layout).width
        ports.append({"name": f"{s}__payload", "direction": direction, "width": width, "signed": False,
                      "protocol": f"valid/ready stream {s}: {what}",
                      "fields": _layout_fields(layout)})
        ports.append({"name": f"{s}__valid", "direction": direction, "width": 1, "signed": False,
                      "protocol": f"valid/ready stream {s}: payload valid"})
        ports.append({"name": f"{s}__ready", "direction": "out" if direction == "in" else "in",
                      "width": 1, "signed": False,
                      "protocol": f"valid/ready stream {s}: payload accepted when valid & ready"})
    ports.append({"name": "busy", "direction": "out", "width": 1, "signed": False,
                  "protocol": "level: high from the cmd handshake to the last result"})
    return {
        "generator": "fairyhw.gen", "generator_version": __version__, "name": name,
        "parameters": {"lanes": engine.lanes, "max_in": engine.max_in, "max_out": engine.max_out,
                       "stages": engine.stages, "mode": engine.mode, "accumulate": engine.accumulate,
                       "sharing": engine.sharing, "lane_style": engine.lane_style,
                       "lane_style_means": "output-stationary: lane l accumulates row r0 + l, one "
                       "broadcast activation per cycle" if engine.lane_style == "output" else
                       "dot product: lane l takes input column c*lanes + l of one row, an adder tree "
                       "sums the lanes, one accumulator per sum part",
                       "activation_sharing": ("on-chip buffer of max_in entries, broadcast to all lanes"
                                              if engine.lane_style == "output" else
                                              "on-chip buffer of `lanes` banks, one per lane")
                       if engine.sharing == "buffer" else
                       "no buffer: streamed beside every weight beat, broadcast to all lanes"},
        "matrices_per_stage": list(engine.matrices),
        "result_parts": list(engine.parts),
        "accumulator_width": engine.acc_width,
        "activation_buffer": None if engine.sharing != "buffer" else
        {"depth": engine.max_in, "width": 16} if engine.lane_style == "output" else
        {"depth": -(-engine.max_in // engine.lanes), "width": 16 * engine.lanes, "banks": engine.lanes},
        "code_bit_order": "lane l's code at wgt__payload bits [2l+1:2l]; code k = i**k "
                          "(0:+1, 1:+i, 2:-1, 3:-i)",
        "conjugate": "matrix W (every Fairy±i pass) computes on conj(x): q negated",
        "scales": "not applied: res carries the exact integer sums; the host rescales",
        "ports": ports,
        "latency": {
            "inputs": ["k", "rows", "lanes", "stages", "matrices", "sharing", "lane_style"],
            "formula": "F + sum(max(k, 2 + c_i) for every pass but the last) + c_last + 3, passes "
                       "in order (row tile, stage, matrix), c_i = rows in pass i's tile, F = 2*k with "
                       "sharing=buffer, k with sharing=stream"
                       if engine.lane_style == "output" else
                       "k + n + (P - 1) * max(n, 4) + 5, n = ceil(k / lanes) words a pass, "
                       "P = rows * stages * matrices passes",
            "meaning": "cycles from the cmd handshake to the last res handshake, both included, "
                       "with inputs always valid and res always ready",
            "python": "fairyhw.hw.engine.engine_cycles(k, rows, lanes=, stages=, matrices=, sharing=, "
                      "lane_style=)",
        },
        "resources": {"multipliers": 0,
                      "flip_flops_per_lane_accumulators": len(engine.parts) * engine.acc_width
                      if engine.lane_style == "output" else 0},
    }


def render(name: str, **params) -> tuple[str, str]:
    """The Verilog text and the manifest JSON text of an engine (no files written)."""
    engine = Engine(**params)
    text = verilog.convert(engine, name=name, emit_src=False)
    return text, json.dumps(manifest(engine, name), indent=1) + "\n"


def generate(out_dir: str, name: str, **params) -> tuple[str, str]:
    """Write ``NAME.v`` and ``NAME.json`` into ``out_dir`` (created if missing; its parent must exist),
    both or neither; return their paths."""
    with Outputs() as out:
        out.into(out_dir)
        paths = [out.file(os.path.join(out_dir, name + ext)) for ext in (".v", ".json")]
        for path, body in zip(paths, render(name, **params)):
            out.write_text(path, body)
        out.commit()
    return tuple(os.path.join(out_dir, name + ext) for ext in (".v", ".json"))


def build_parser() -> argparse.ArgumentParser:
    p = ArgumentParser(
        prog="python -m fairyhw.gen",
        description="Generate the Verilog of the multiplier-free Fairy2i/Fairy±i MAC engine and its "
                    "JSON manifest.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--lanes", metavar="N", type=int_in(1, MAX_LANES, "lanes"),
                   default=DEFAULTS["lanes"], help="MAC lanes (complex MACs per cycle)")
    p.add_argument("--max-in", metavar="K", type=int_in(1, MAX_DIM, "max-in"),
                   default=DEFAULTS["max_in"], help="largest complex input length (buffer depth)")
    p.add_argument("--max-out", metavar="ROWS", type=int_in(1, MAX_DIM, "max-out"),
                   default=DEFAULTS["max_out"], help="largest complex output row count")
    p.add_argument("--stages", metavar="T", type=int_in(1, 4, "stages"), default=DEFAULTS["stages"],
                   help="residual stages (1 = W1, 2 = W2)")
    p.add_argument("--mode", choices=tuple(MODES), default=DEFAULTS["mode"],
                   help="fairy2i: U x + W conj(x) per stage; ifairy: W conj(x)")
    p.add_argument("--accumulate", choices=tuple(ACCUMULATE), default=DEFAULTS["accumulate"],
                   help="split: 4 exact sums per row; merged: 2 sums of a swap-mux complex accumulator")
    p.add_argument("--sharing", choices=SHARING, default=DEFAULTS["sharing"],
                   help="buffer: activation buffer loaded once per layer; stream: no buffer, the host "
                        "streams x beside every weight beat")
    p.add_argument("--lane-style", choices=LANE_STYLES, default=DEFAULTS["lane_style"],
                   help="output: output-stationary lanes, one row each, broadcast activation; dot: "
                        "dot-product lanes, one input column each, adder tree (needs --sharing buffer)")
    p.add_argument("--out", metavar="DIR", default="rtl",
                   help="output directory (created if missing; its parent must exist)")
    p.add_argument("--name", metavar="NAME", default="fairyhw_engine",
                   help="Verilog module name and file stem")
    p.add_argument("--json", action="store_true", help="print the manifest's summary as JSON")
    return p


def main(argv=None) -> int:
    return run_command(_main, argv)


def _main(argv) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not args.name.isidentifier():
        parser.error(f"argument --name: must be a Verilog identifier, not {args.name!r}")
    params = {k: getattr(args, k) for k in DEFAULTS}
    if params["lane_style"] == "dot" and params["sharing"] != "buffer":
        parser.error("argument --lane-style: dot lanes read their activations from the buffer: "
                     "use --sharing buffer")
    t0 = time.perf_counter()
    with Outputs() as out:      # every path checked before the (possibly long) generation
        out.into(args.out)
        v, j = (os.path.join(args.out, args.name + ext) for ext in (".v", ".json"))
        out.file(v)
        out.file(j)
        text, man_text = render(args.name, **params)
        out.write_text(v, text)
        out.write_text(j, man_text)
        out.commit()
    dt = time.perf_counter() - t0
    man = json.loads(man_text)
    if args.json:
        print(json.dumps({"verilog": show(v), "manifest": show(j), "seconds": round(dt, 3),
                          "parameters": man["parameters"],
                          "accumulator_width": man["accumulator_width"]}, indent=1))
    else:
        prm = man["parameters"]
        print(f"{args.name}: {prm['lanes']} {'dot-product ' if prm['lane_style'] == 'dot' else ''}lanes, "
              f"{prm['mode']} T={prm['stages']}, "
              f"{prm['accumulate']} accumulators of {man['accumulator_width']} bits, "
              f"activation {prm['sharing']}, "
              f"K <= {prm['max_in']}, rows <= {prm['max_out']}")
        print(f"wrote {show(v)} ({len(text.encode()):,} bytes) and {show(j)} in {dt:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
