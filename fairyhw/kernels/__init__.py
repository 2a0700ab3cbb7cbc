"""Kernels of the packed widely-linear layer on real processors: :mod:`fairyhw.kernels.cpu.kernel` (C,
built on first use) and :mod:`fairyhw.kernels.gpu.kernel` (CUDA through NVRTC)."""
