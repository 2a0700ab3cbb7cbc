"""fairyhw: hardware co-design simulator and FPGA generator for 2-bit complex LLMs.

The layers, from the bottom up:

- :mod:`fairyhw.golden`: the math of Fairy2i / Fairy±i (PhaseQuant, widely-linear transform, residual
  stages, int8 activations, the integer sums the hardware accumulates), float and bit-exact integer.
- :mod:`fairyhw.layers`: drop-in torch modules and :func:`~fairyhw.layers.convert`.
- :mod:`fairyhw.pack`: 2-bit code packing and ``$readmemh`` memory images.
- :mod:`fairyhw.checkpoint`: loading HF safetensors directories and GGUF files.
- :mod:`fairyhw.llama`: LLaMA-2 7B shapes as data.
- :mod:`fairyhw.hw`: the Amaranth MAC array and engine; :mod:`fairyhw.gen` emits its Verilog.
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
