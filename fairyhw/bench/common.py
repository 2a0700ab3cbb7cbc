"""Helpers shared by the benchmarks: exactness cases, the whole model's layer list, timing,
environment records."""

from __future__ import annotations

import time


# Layers of one transformer block that read the same input, fused into one call or launch in the
# whole-model passes as inference engines do; the others run alone.
FUSED_GROUPS = [("q_proj", "k_proj", "v_proj"), ("o_proj",), ("gate_proj", "up_proj"), ("down_proj",)]


def whole_model(shapes, make):
    """Every linear layer of a model in order, the layers of each of :data:`FUSED_GROUPS` in one:
    ``[(names, make(shape, fused))]`` for each block and the ``lm_head``, where ``shape`` is the
    group's :class:`~fairyhw.model.llama.LinearShape` and ``fused`` its layer count (the fused call
    stacks ``fused`` layers' matrices)."""
    by_name = {s.name: s for s in shapes}
    layers = []
    for _ in range(by_name["q_proj"].count):
        for grp in FUSED_GROUPS:
            layers.append((grp, make(by_name[grp[0]], len(grp))))
    layers.append((("lm_head",), make(by_name["lm_head"], 1)))
    return layers


def best_of(fn, reps: int) -> tuple[float, float]:
    """``fn`` once to warm up, then ``reps`` timed calls: (best, median) seconds."""
    fn()
    ts = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
    return min(ts), sorted(ts)[len(ts) // 2]


def exact_cases(shapes):
    """Random layers ``(codes (4, n, m), p, q, golden sums)`` for the kernels' exactness checks."""
    import torch
    from ..model import golden as g
    for n, m, batch in shapes:
        codes = torch.randint(0, 4, (4, n, m), dtype=torch.uint8)
        p = torch.randint(-128, 128, (batch, m), dtype=torch.int8)
        q = torch.randint(-128, 128, (batch, m), dtype=torch.int8)
        ref = torch.stack([g.integer_sums(codes[k], p, q, conj=k % 2 == 1) for k in range(4)], dim=1)
        yield codes, p, q, ref


def env_record(device_name: str) -> dict:
    import datetime
    import platform
    import torch
    info = {"device": device_name, "torch": torch.__version__, "python": platform.python_version(),
            "date": datetime.date.today().isoformat()}
    try:
        import triton
        info["triton"] = triton.__version__
    except ImportError:
        pass
    return info


def cpu_name() -> str:
    """The CPU's model name with its family and model numbers (several kinds print just "AMD EPYC")."""
    name, fam, model = "", "", ""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                key, _, val = line.partition(":")
                key, val = key.strip(), val.strip()
                if key == "model name" and not name:
                    name = val
                elif key == "cpu family" and not fam:
                    fam = val
                elif key == "model" and not model:
                    model = val
    except OSError:
        pass
    if not name:
        import platform
        return platform.processor() or platform.machine()
    return f"{name} (family {fam}, model {model})" if fam else name
