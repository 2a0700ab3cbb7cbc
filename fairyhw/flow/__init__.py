"""The flow from configuration to silicon figures.

- :mod:`~fairyhw.flow.quant`: ``fairyhw quant``, a checkpoint into the engine's codes, scales and
  memory images.
- :mod:`~fairyhw.flow.gen`: ``fairyhw gen``, the engine's Verilog and its manifest.
- :mod:`~fairyhw.flow.synth`: ``fairyhw synth``, Yosys synthesis (ECP5, Xilinx 7-series), nextpnr-ecp5
  place and route, slice extrapolation.
"""
