"""The CUDA kernels (compiled with NVRTC); see :mod:`~fairyhw.kernels.gpu.kernel`."""
