"""The flow from configuration to silicon figures.

- :mod:`~fairyhw.flow.gen`: ``fairyhw gen``, the engine's Verilog and its manifest.
- :mod:`~fairyhw.flow.synth`: ``fairyhw synth``, Yosys synthesis (ECP5, Xilinx 7-series), nextpnr-ecp5
  place and route, slice extrapolation.
"""
