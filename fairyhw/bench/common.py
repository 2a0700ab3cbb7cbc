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


#: Peak memory bandwidth (bytes/s) of the GPUs the bench knows, by a piece of the name torch reports,
#: most specific first: (piece, bytes/s, label). Vendor data sheets.
GPU_PEAKS = (
    ("H200", 4.8e12, "H200's HBM3e peak of 4.8 TB/s"),
    ("H100 PCIe", 2.0e12, "H100 PCIe's HBM2e peak of 2.0 TB/s"),
    ("H100 NVL", 3.9e12, "H100 NVL's HBM3 peak of 3.9 TB/s"),
    ("H100", 3.35e12, "H100 SXM's HBM3 peak of 3.35 TB/s"),
    ("A100-SXM4-80GB", 2.039e12, "A100 80 GB SXM's HBM2e peak of 2.04 TB/s"),
    ("A100", 1.555e12, "A100 40 GB's HBM2 peak of 1.56 TB/s"),
)


def device_peak(name: str, measure=None) -> dict:
    """The peak memory bandwidth of the GPU called ``name``: ``{"bytes_per_s", "label", "source"}``
    from :data:`GPU_PEAKS`, or, for a GPU not in the table, ``measure()`` (bytes/s of a large device
    copy) labelled as measured."""
    for piece, bps, label in GPU_PEAKS:
        if piece in name:
            return {"bytes_per_s": bps, "label": label, "source": "data sheet"}
    if measure is None:
        raise ValueError(f"{name!r} is not in the table of GPU peaks and nothing measures it")
    bps = float(measure())
    return {"bytes_per_s": bps, "label": f"{name}'s measured copy bandwidth of {bps / 1e12:.2f} TB/s "
                                         "(not in the table of peaks)", "source": "measured copy"}


def copy_bandwidth(dev, nbytes: int = 1 << 30) -> float:
    """Bytes/s of a device-to-device copy of ``nbytes`` (read and written bytes counted), the best of
    5 after a warm-up."""
    import torch
    a = torch.empty(nbytes // 4, dtype=torch.float32, device=dev)
    b = torch.empty_like(a)
    best = float("inf")
    for i in range(6):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        b.copy_(a)
        end.record()
        torch.cuda.synchronize()
        if i:
            best = min(best, start.elapsed_time(end) / 1e3)
    return 2 * nbytes / best
