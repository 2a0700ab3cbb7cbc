"""Benchmarks that print figures (``fairyhw bench quant | cpu | gpu``), one module each, over the
helpers of :mod:`~fairyhw.bench.common`."""
