"""``python -m fairyhw.gen --lanes 64``: emit the engine's Verilog and its JSON manifest.

Writes ``OUT/NAME.v`` and ``OUT/NAME.json`` (both or neither); with ``--system``, the system top (the
engine behind AXI4 masters and AXI4-Lite registers, :mod:`fairyhw.hw.system`) and its C header
``OUT/NAME.h`` too. Same options, same bytes: no absolute paths, timestamps or host names in any file.
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

from .. import FairyError, __version__
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


def system_manifest(top, name: str) -> dict:
    """The system top's manifest: its memory parameters, the register map, the descriptor, the error
    codes, the memory layout and the standard-named ports."""
    from ..hw.axi import register_map
    from ..hw.config import DESCRIPTOR, DESCRIPTOR_BYTES, ERRORS, RESULT_SUM_BITS, slot_bits
    cfg = top.config
    e = cfg.engine
    from ..hw.system import wrapper_ports
    ports = wrapper_ports(top)
    return {
        "generator": "fairyhw.flow.gen", "generator_version": __version__, "name": name,
        "kind": "system", "core_module": f"{name}_core",
        "system": {k: v for k, v in cfg.to_json().items() if k != "engine"},
        "parameters": e.to_json(),
        "accumulator_width": e.acc_width,
        "registers": register_map(),
        "descriptor": {"bytes": DESCRIPTOR_BYTES, "words": [
            {"offset": 4 * i, "name": n} for i, n in enumerate(DESCRIPTOR)]},
        "errors": {str(k): v for k, v in ERRORS.items()},
        "memory_layout": {
            "word_bits": cfg.data_width,
            "activations": {"item_bits": cfg.act_bits, "slot_bits": slot_bits(cfg.act_bits, cfg.data_width),
                            "items": "ceil(k / act_per_beat) act beats of the engine, from act"},
            "weights": {"ports": cfg.weight_ports, "slice_bits": cfg.slice_bits,
                        "slot_bits": slot_bits(cfg.slice_bits, cfg.data_width),
                        "layout": "port p at wgt + p * wgt_stride holds bits [p*slice, (p+1)*slice) of "
                                  "every weight word, pass after pass, each pass from a word boundary"},
            "results": {"item_bits": cfg.result_bits,
                        "slot_bits": slot_bits(cfg.result_bits, cfg.data_width),
                        "sum_bits": RESULT_SUM_BITS,
                        "layout": "the engine's result beats in order, each sum a sign-extended int32"},
            "host": "fairyhw.hw.host.lay_out and Layout.results",
        },
        "clock_reset": "aclk; aresetn active low, synchronous",
        "ports": ports,
        "latency": {"python": "fairyhw.hw.timing.system_cycles(SystemConfig(...), layers, "
                              "bytes_per_cycle=..., latency=..., outstanding=...)"},
        "resources": {"multipliers": 0},
    }


def render_system(name: str, config) -> tuple[str, str, str]:
    """The system top's Verilog (the core and its standard-named wrapper), manifest JSON and C
    header."""
    from ..hw.axi import c_header
    from ..hw.system import SystemTop, wrapper_verilog
    top = SystemTop(config)
    core = verilog.convert(top, name=f"{name}_core", emit_src=False)
    text = core + "\n" + wrapper_verilog(top, f"{name}_core", name)
    return (text, json.dumps(system_manifest(top, name), indent=1) + "\n",
            c_header(name.upper(), config))


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
    p.add_argument("--name", metavar="NAME", default=None,
                   help="Verilog module name and file stem (default: fairyhw_engine, or fairyhw_system "
                        "with --system)")
    p.add_argument("--json", action="store_true", help="print a summary as JSON")
    add_system_arguments(p)
    return p


SYSTEM_OPTIONS = ("data_width", "weight_ports", "addr_width", "max_burst", "outstanding", "fifo_depth")


def add_system_arguments(parser) -> None:
    """The system top's options (``--system`` and its memory parameters) on an argparse parser."""
    g = parser.add_argument_group("system top (--system)")
    g.add_argument("--system", action="store_true",
                   help="emit the system top: the engine behind AXI4 masters, AXI4-Lite registers and "
                        "a descriptor list, with a C header (NAME.h)")
    from ..cli import int_in
    from ..hw.config import DATA_WIDTHS, SystemConfig
    dflt = SystemConfig.__dataclass_fields__
    g.add_argument("--data-width", type=int, choices=DATA_WIDTHS, default=dflt["data_width"].default,
                   help="bits of a memory word on every AXI4 master")
    g.add_argument("--weight-ports", metavar="P", type=int_in(0, 64, "weight-ports"),
                   default=dflt["weight_ports"].default,
                   help="AXI4 read masters for the weights (0: the fewest that carry a weight word a cycle)")
    g.add_argument("--addr-width", metavar="A", type=int_in(12, 64, "addr-width"),
                   default=dflt["addr_width"].default, help="bits of a byte address")
    g.add_argument("--max-burst", metavar="B", type=int_in(1, 256, "max-burst"),
                   default=dflt["max_burst"].default, help="beats of an AXI4 burst at most")
    g.add_argument("--outstanding", metavar="N", type=int_in(1, 64, "outstanding"),
                   default=dflt["outstanding"].default, help="bursts a read master keeps in flight")
    g.add_argument("--fifo-depth", metavar="W", type=int_in(0, 1 << 16, "fifo-depth"),
                   default=dflt["fifo_depth"].default,
                   help="words of each read master's FIFO (0: 2 x max-burst x outstanding)")


def system_from_arguments(parser, args, cfg):
    """The :class:`~fairyhw.hw.config.SystemConfig` of parsed arguments around engine ``cfg``, or
    ``None`` without ``--system`` (a system option given without it is a usage error)."""
    if not args.system:
        defaults = vars(parser.parse_args([]))
        given = [k for k in SYSTEM_OPTIONS if getattr(args, k) != defaults[k]]
        if given:
            parser.error(f"argument --{given[0].replace('_', '-')}: is an option of the system top: "
                         "add --system")
        return None
    from ..hw.config import SystemConfig
    try:
        return SystemConfig(engine=cfg, **{k: getattr(args, k) for k in SYSTEM_OPTIONS})
    except (TypeError, ValueError) as e:
        raise FairyError(str(e)) from None



def main(argv=None) -> int:
    return run_command(_main, argv)


def _main(argv) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.name is None:
        args.name = "fairyhw_system" if args.system else "fairyhw_engine"
    if not args.name.isidentifier():
        parser.error(f"argument --name: must be a Verilog identifier, not {args.name!r}")
    cfg = from_arguments(args)
    system = system_from_arguments(parser, args, cfg)
    t0 = time.perf_counter()
    with Outputs() as out:      # every path checked before the (possibly long) generation
        out.into(args.out)
        exts = (".v", ".json", ".h") if system else (".v", ".json")
        paths = [os.path.join(args.out, args.name + ext) for ext in exts]
        for path in paths:
            out.file(path)
        bodies = render_system(args.name, system) if system else render(args.name, cfg)
        for path, body in zip(paths, bodies):
            out.write_text(path, body)
        out.commit()
    v, j = paths[:2]
    text, man_text = bodies[:2]
    dt = time.perf_counter() - t0
    man = json.loads(man_text)
    if args.json:
        print(json.dumps({"verilog": show(v), "manifest": show(j), "seconds": round(dt, 3),
                          "parameters": man["parameters"],
                          "accumulator_width": man["accumulator_width"]}, indent=1))
    else:
        print(f"{args.name}: {describe(cfg)}, {cfg.mode} T={cfg.stages}, {cfg.accumulate} sums of "
              f"{cfg.acc_width} bits, K <= {cfg.max_in}, rows <= {cfg.max_out}")
        if system:
            print(f"system top: {system.weight_ports} weight port{'s' if system.weight_ports > 1 else ''} "
                  f"and a control port of {system.data_width} bits, {system.addr_width}-bit addresses, "
                  f"bursts of {system.max_burst}, {system.outstanding} in flight")
            print(f"wrote {show(v)} ({len(text.encode()):,} bytes), {show(j)} and {show(paths[2])} "
                  f"in {dt:.1f} s")
        else:
            print(f"wrote {show(v)} ({len(text.encode()):,} bytes) and {show(j)} in {dt:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
