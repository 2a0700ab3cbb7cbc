"""The C kernels (``cpu.c``, built on first use): :mod:`~fairyhw.kernels.cpu.kernel`."""
