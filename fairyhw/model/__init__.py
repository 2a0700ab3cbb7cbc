"""The model side: the math of Fairy2i / Fairy±i and everything that feeds the hardware.

- :mod:`~fairyhw.model.golden`: PhaseQuant, the widely-linear transform, residual stages, int8
  activations and the integer sums the hardware accumulates, float and bit-exact integer.
- :mod:`~fairyhw.model.widths`: the integer contract's widths, torch-free (for the generator).
- :mod:`~fairyhw.model.layers`: drop-in torch modules and :func:`~fairyhw.model.layers.convert`.
- :mod:`~fairyhw.model.pack`: 2-bit code packing and ``$readmemh`` memory images.
- :mod:`~fairyhw.model.checkpoint`: HF safetensors directories and GGUF files.
- :mod:`~fairyhw.model.llama`: LLaMA-2 7B shapes as data.
- :mod:`~fairyhw.model.vectors`: real SmolLM2 layers and activations, the co-simulation's test vectors.
"""
