"""Cycle and energy model of full LLaMA inference on a fairyhw array: tokens/s and tokens/J.

``fairyhw perf --model llama2-7b --lanes 64 --clock 250e6 --memory u280-hbm2 --context 2048``

The split follows Accelergy / LLMCompass: a *workload* of operators on shape-only tensors
(:func:`decode_ops`, :func:`prefill_ops`), a *hardware* of blocks that each return a frozen
:class:`Cost` per action (:class:`MacArray`, :class:`Sram`, :class:`Dram`, :class:`VectorUnit`), and
:func:`project` that maps one onto the other. SI units without prefixes throughout (s, J, B, Hz, W).

Time of an operator is ``max(compute time, memory time)`` (weights and KV stream while the array works,
double-buffered); operators run one after another. The linear layers' compute cycles are the
generator's own latency function, :func:`fairyhw.hw.timing.latency`, which the co-simulation
measures exactly.
"""

from .energy import ENERGY_45NM, MEMORY_PRESETS, Cost, MemoryPreset
from .hardware import HardwareConfig, MacArray
from .projection import Projection, project, roofline_tokens_per_s, smallest_saturating
from .workload import MODELS, Op, decode_ops, prefill_ops, workload

__all__ = ["Cost", "MemoryPreset", "MEMORY_PRESETS", "ENERGY_45NM", "HardwareConfig", "MacArray", "Op",
           "decode_ops", "prefill_ops", "workload", "project", "smallest_saturating", "Projection",
           "roofline_tokens_per_s", "MODELS"]
