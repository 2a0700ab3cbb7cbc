"""Helpers shared by the benchmarks: exactness cases, environment records."""

from __future__ import annotations


# Layers of one transformer block that read the same input, fused into one call or launch in the
# whole-model passes as inference engines do; the others run alone.
FUSED_GROUPS = [("q_proj", "k_proj", "v_proj"), ("o_proj",), ("gate_proj", "up_proj"), ("down_proj",)]


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
