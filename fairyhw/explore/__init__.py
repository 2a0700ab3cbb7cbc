"""Design-space exploration (``fairyhw dse``): sweep points generated, synthesised, placed and
projected, with each variant's numerical cost, written as a report with Pareto plots.

- :mod:`~fairyhw.explore.sweep`: the sweep's JSON configuration and its points;
- :mod:`~fairyhw.explore.runner`: running points (process pool or Dask), cached per point;
- :mod:`~fairyhw.explore.accuracy`: output SNR of each variant on real SmolLM2 layers;
- :mod:`~fairyhw.explore.report`: projections, Pareto fronts, tables and plots;
- :mod:`~fairyhw.explore.cli`: the command line.
"""
