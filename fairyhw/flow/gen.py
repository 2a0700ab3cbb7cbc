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

from .. import __version__
from ..cli import ArgumentParser
from ..outputs import Outputs, run_command, show
from ..hw.config import EngineConfig, add_arguments, from_arguments
from ..hw.engine import Engine

__all__ = ["generate", "manifest", "main"]



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
    """Everything a user of the Verilog needs: parameters, ports and their stream layouts, the code
    encoding, and the latency function (named, not restated)."""
    cfg = engine.config
    array = cfg.lane_style == "array"
    streams = {
        "cmd": ("in", engine.cmd_layout, "one beat starts a layer; accepted only when idle"),
        "act": ("in", engine.act.signature.members["payload"].shape,
                f"ceil(k / {cfg.cols}) beats of {cfg.cols} complex int8 inputs after cmd (element c of "
                "beat j is input j*cols + c; the last beat's elements past k are ignored)" if array else
                "k beats of the complex int8 input after cmd" if cfg.sharing == "buffer" else
                "one beat with every wgt beat (the input resent for each pass); moves with wgt"),
        "wgt": ("in", engine.wgt.signature.members["payload"].shape,
                {"output": "codes in the stream layout: row tile, stage, matrix, input column",
                 "dot": "codes in the dot stream layout: row, stage, matrix, chunk of `lanes` input "
                        "columns",
                 "array": "bit planes in the array stream layout: row tile, stage, matrix, chunk of "
                          "`cols` input columns; field r*cols + c at bits [2f+1:2f] holds (h, x) of "
                          "row r, column c"}[cfg.lane_style]),
        "res": ("out", engine.res_layout,
                f"one beat per (row tile, stage, matrix, group of {cfg.group} rows); rows past the "
                "layer's last row in a tile's last beat are padding" if array else
                "one beat per (row tile, stage, matrix, row)" if cfg.lane_style == "output" else
                "one beat per (row, stage, matrix)"),
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
    if array:
        buffer = {"depth": -(-cfg.max_in // cfg.cols), "width": 16 * cfg.cols,
                  "banks": len(cfg.banks)}
    elif cfg.sharing != "buffer":
        buffer = None
    elif cfg.lane_style == "output":
        buffer = {"depth": cfg.max_in, "width": 16}
    else:
        buffer = {"depth": -(-cfg.max_in // cfg.lanes), "width": 16 * cfg.lanes, "banks": cfg.lanes}
    return {
        "generator": "fairyhw.flow.gen", "generator_version": __version__, "name": name,
        "parameters": cfg.to_json(),
        "matrices_per_stage": list(cfg.matrices),
        "result_parts": list(cfg.parts),
        "accumulator_width": cfg.acc_width,
        "activation_buffer": buffer,
        "code_bit_order": "code k = i**k (0:+1, 1:+i, 2:-1, 3:-i); "
                          + ("each weight as its bit planes: bits [2f+1:2f] = (h, x), h the code's high "
                             "bit, x = h xor its low bit (the Gray code of k)" if array else
                             "lane l's code at wgt__payload bits [2l+1:2l]"),
        "conjugate": "matrix W (every Fairy±i pass) computes on conj(x): q negated",
        "scales": "not applied: res carries the exact integer sums; the host rescales",
        "ports": ports,
        "latency": {
            "python": "fairyhw.hw.timing.latency(fairyhw.hw.config.EngineConfig(**parameters), k, rows)",
            "meaning": "cycles from the cmd handshake to the last res handshake, both included, "
                       "with inputs always valid and res always ready",
        },
        "resources": {"multipliers": 0},
    }


def describe(cfg: EngineConfig) -> str:
    """A few words on the design: its MACs per cycle and how they are arranged."""
    if cfg.lane_style == "array":
        return (f"{cfg.lanes} MACs/cycle as a {cfg.rows} x {cfg.cols} array "
                f"({cfg.group} row{'s' if cfg.group > 1 else ''} a result beat)")
    return f"{cfg.lanes} {'dot-product' if cfg.lane_style == 'dot' else 'output-stationary'} lanes" + \
        ("" if cfg.sharing == "buffer" else ", activations streamed")


def render(name: str, config: EngineConfig | None = None, **params) -> tuple[str, str]:
    """The Verilog text and the manifest JSON text of an engine (no files written), from an
    :class:`EngineConfig` or its parameters by keyword."""
    engine = Engine(config, **params)
    text = verilog.convert(engine, name=name, emit_src=False)
    return text, json.dumps(manifest(engine, name), indent=1) + "\n"


def generate(out_dir: str, name: str, config: EngineConfig | None = None, **params) -> tuple[str, str]:
    """Write ``NAME.v`` and ``NAME.json`` into ``out_dir`` (created if missing; its parent must exist),
    both or neither; return their paths."""
    with Outputs() as out:
        out.into(out_dir)
        paths = [out.file(os.path.join(out_dir, name + ext)) for ext in (".v", ".json")]
        for path, body in zip(paths, render(name, config, **params)):
            out.write_text(path, body)
        out.commit()
    return tuple(os.path.join(out_dir, name + ext) for ext in (".v", ".json"))


def build_parser() -> ArgumentParser:
    p = ArgumentParser(
        prog="fairyhw gen",
        description="Generate the Verilog of the multiplier-free Fairy2i/Fairy±i MAC engine and its "
                    "JSON manifest.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    add_arguments(p)
    p.add_argument("--out", metavar="DIR", default="rtl",
                   help="output directory (created if missing; its parent must exist)")
    p.add_argument("--name", metavar="NAME", default="fairyhw_engine",
                   help="Verilog module name and file stem")
    p.add_argument("--json", action="store_true", help="print a summary as JSON")
    return p


def main(argv=None) -> int:
    return run_command(_main, argv)


def _main(argv) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not args.name.isidentifier():
        parser.error(f"argument --name: must be a Verilog identifier, not {args.name!r}")
    cfg = from_arguments(args)
    t0 = time.perf_counter()
    with Outputs() as out:      # every path checked before the (possibly long) generation
        out.into(args.out)
        v, j = (os.path.join(args.out, args.name + ext) for ext in (".v", ".json"))
        out.file(v)
        out.file(j)
        text, man_text = render(args.name, cfg)
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
        print(f"{args.name}: {describe(cfg)}, {cfg.mode} T={cfg.stages}, {cfg.accumulate} sums of "
              f"{cfg.acc_width} bits, K <= {cfg.max_in}, rows <= {cfg.max_out}")
        print(f"wrote {show(v)} ({len(text.encode()):,} bytes) and {show(j)} in {dt:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
