"""The benchmarks' steps (fairyhw/bench/): the shared layer list, and the CPU bench's five steps run
end to end on a tiny model (their plumbing and records; the figures themselves come from
``fairyhw bench cpu`` on the real shapes)."""

from __future__ import annotations

import numpy as np
import torch

from fairyhw.bench import common
from fairyhw.bench import cpu as bench
from fairyhw.kernels.cpu import kernel as cpu
from fairyhw.model.llama import LLAMA2_7B, LinearShape, linear_shapes

TINY = [LinearShape("q_proj", 64, 128, 2), LinearShape("k_proj", 64, 128, 2),
        LinearShape("v_proj", 64, 128, 2), LinearShape("o_proj", 64, 128, 2),
        LinearShape("gate_proj", 96, 128, 2), LinearShape("up_proj", 96, 128, 2),
        LinearShape("down_proj", 128, 96, 2), LinearShape("lm_head", 80, 128, 1)]


def test_whole_model_fuses_the_groups_of_each_block():
    layers = common.whole_model(linear_shapes(LLAMA2_7B), lambda s, fused: (s.name, s.in_features, fused))
    assert len(layers) == 32 * len(common.FUSED_GROUPS) + 1 == 129
    assert layers[0] == (("q_proj", "k_proj", "v_proj"), ("q_proj", 4096, 3))
    assert layers[2] == (("gate_proj", "up_proj"), ("gate_proj", 4096, 2))
    assert layers[3] == (("down_proj",), ("down_proj", 11008, 1))
    assert layers[-1] == (("lm_head",), ("lm_head", 4096, 1))


def test_best_of_calls_once_more_than_it_times():
    calls = []
    best, median = common.best_of(lambda: calls.append(1), 5)
    assert len(calls) == 6 and 0 <= best <= median


def test_cpu_bench_steps_on_a_tiny_model(capsys):
    variants = cpu.variants()
    torch.manual_seed(0)
    bench.check_exact(cpu, variants, 1)
    rng = np.random.default_rng(0)
    whole = bench.time_whole_model(cpu, variants, 1, TINY, rng)
    direct = whole["direct"]
    assert whole["code_bytes"] == sum(4 * fused * (s.out_features // 2) * (s.in_features // 8) * s.count
                                      for grp in common.FUSED_GROUPS
                                      for s, fused in [(next(x for x in TINY if x.name == grp[0]), len(grp))]) \
        + 4 * 40 * 16
    assert sorted(whole["per_shape"]) == sorted(s.name for s in TINY)
    assert all(r["seconds"] > 0 and r["batch"] in (1, 4, 8) for r in whole["records"])
    rows, records = bench.time_per_shape(cpu, variants, 1, TINY, rng, direct, whole["per_shape"], 1)
    assert [r["name"] for r in rows] == [s.name for s in TINY]
    assert {r["name"].split(" (")[0].split(",")[0] for r in records} >= {"torch bfloat16 F.linear",
                                                                         "torch float32 F.linear"}
    variant_rows, q_proj = bench.time_variants(cpu, variants, 1, TINY, rng, 1)
    assert [r["variant"] for r in variant_rows] == variants
    in_cache = bench.time_in_cache(cpu, variants, 1, q_proj, whole["records"])
    assert set(in_cache) >= {variants[0]} and all(v > 0 for v in in_cache.values())
    out = capsys.readouterr().out
    assert "equal the golden path" in out and "plain read" in out and "codes in the L3" in out


def test_gpu_peaks_by_device_name():
    """The GPU bench labels its figures with the peak of the device it runs on: the H200's 4.8 TB/s,
    the H100 SXM's 3.35 TB/s; an unknown GPU gets its measured copy bandwidth, said to be measured."""
    assert common.device_peak("NVIDIA H200")["bytes_per_s"] == 4.8e12
    assert "H200" in common.device_peak("NVIDIA H200 NVL")["label"]
    assert common.device_peak("NVIDIA H100 80GB HBM3")["bytes_per_s"] == 3.35e12
    assert common.device_peak("NVIDIA H100 PCIe")["bytes_per_s"] == 2.0e12
    other = common.device_peak("NVIDIA L4", measure=lambda: 2.5e11)
    assert other == {"bytes_per_s": 2.5e11, "source": "measured copy",
                     "label": "NVIDIA L4's measured copy bandwidth of 0.25 TB/s (not in the table of peaks)"}
