"""fairyhw: hardware co-design simulator and FPGA generator for 2-bit complex LLMs.

The packages follow the pipeline, each importing only those before it:

- :mod:`fairyhw.model`: the math (float and bit-exact integer), torch layers, packing, checkpoints,
  LLaMA shapes, SmolLM2 test vectors.
- :mod:`fairyhw.hw`: the engine's configuration and timing (pure Python), the Amaranth engine and its
  array, the host driver and the Amaranth-simulator harness.
- :mod:`fairyhw.flow`: quantized checkpoints into memory images, Verilog generation, synthesis, place
  and route.
- :mod:`fairyhw.perf`: the cycle and energy model of LLaMA inference, and the projection report.
- :mod:`fairyhw.explore`: design-space exploration.
- :mod:`fairyhw.kernels`, :mod:`fairyhw.bench`: CPU and GPU kernels of the same math, their benchmarks.

:mod:`fairyhw.cli` and :mod:`fairyhw.outputs` (argument types, safe output files) serve them all.
"""

__version__ = "0.1.0"


class FairyError(ValueError):
    """A user mistake (bad parameter, bad tensor, bad file): the message is one line for the user."""


def cache_dir(*parts: str) -> str:
    """The one cache root of fairyhw, ``$FAIRYHW_CACHE`` (default ``$XDG_CACHE_HOME/fairyhw``, else
    ``~/.cache/fairyhw``), joined with ``parts``: built CPU kernels, design-space points, syntheses."""
    import os
    d = os.environ.get("FAIRYHW_CACHE")
    if not d:
        d = os.path.join(os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "fairyhw")
    return os.path.join(d, *parts)
