"""Kernels of the packed widely-linear layer on real processors (GPU: :mod:`fairyhw.kernels.gpu`)."""
