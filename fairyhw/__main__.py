"""``fairyhw COMMAND ...`` (or ``python -m fairyhw COMMAND ...``): one entry point for every command.

``python -m fairyhw.gen`` is ``fairyhw gen`` too (the generator's long-standing name).
"""

from __future__ import annotations

import importlib
import sys

#: Command -> (module, one line of help).
COMMANDS = {
    "gen": ("fairyhw.flow.gen", "generate the engine's Verilog and manifest"),
    "quant": ("fairyhw.flow.quant", "quantize a checkpoint into codes, scales and memory images"),
    "synth": ("fairyhw.flow.synth", "synthesise an engine (Yosys, nextpnr-ecp5) and count its resources"),
    "run": ("fairyhw.cosim.cli", "decode SmolLM2-135M with every linear layer on the simulated RTL"),
    "perf": ("fairyhw.perf.cli", "project LLaMA inference on an engine: tokens/s, tokens/J"),
    "report": ("fairyhw.perf.report", "write the LLaMA-2 7B projection report"),
    "dse": ("fairyhw.explore.cli", "design-space exploration with synthesis, place and route"),
    "bench": ("fairyhw.bench.cli", "benchmark the quantizer and the CPU and GPU kernels"),
}


def usage() -> str:
    width = max(map(len, COMMANDS))
    lines = ["usage: fairyhw COMMAND [ARGS ...]  (fairyhw COMMAND --help for its options)", "",
             "commands:"]
    lines += [f"  {name:<{width}}  {text}" for name, (_, text) in COMMANDS.items()]
    return "\n".join(lines)


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(usage())
        return 0 if argv else 2
    name, rest = argv[0], argv[1:]
    if name not in COMMANDS:
        print(f"error: unknown command {name!r}; expected one of {', '.join(COMMANDS)} "
              "(see fairyhw --help)", file=sys.stderr)
        return 2
    from . import cli
    module = importlib.import_module(COMMANDS[name][0])
    sys.argv[0] = cli.invoked_as = f"fairyhw {name}"
    try:
        return module.main(rest)
    finally:
        cli.invoked_as = None


if __name__ == "__main__":
    sys.exit(main())
