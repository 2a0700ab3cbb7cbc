"""Benchmarks that print figures: ``python -m fairyhw.bench quant | cpu | gpu``.

``quant``: the whole ``python -m fairyhw.quant smollm2 --stages 2`` in a child process, its wall time and
peak resident memory against the targets (30 s; 3x the model's fp32 size).
``cpu``: the C kernels (:mod:`fairyhw.kernels.cpu`) checked against the golden integer path, then the whole
model's linear layers (every layer its own codes) beside a plain read of the same bytes, and every LLaMA-2 7B
linear shape beside torch ``F.linear`` in bf16 and fp32; writes ``reports/bench_cpu.json``.
``gpu``: the GPU kernels checked against the golden integer path, then timed on every LLaMA-2 7B linear
shape and on the whole model's linear layers beside a plain read of the same bytes and torch bf16
``F.linear`` (needs a CUDA GPU); writes ``reports/bench_gpu.json``.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time

from . import FairyError
from .cli import ArgumentParser, int_in
from .outputs import Outputs, dumps_json, run_command, show


# Layers of one transformer block that read the same input, fused into one call or launch in the
# whole-model passes as inference engines do; the others run alone.
FUSED_GROUPS = [("q_proj", "k_proj", "v_proj"), ("o_proj",), ("gate_proj", "up_proj"), ("down_proj",)]


def bench_quant(args) -> dict:
    from .checkpoint import smollm2_gguf_path
    import gguf
    path = smollm2_gguf_path()
    params = sum(int(t.n_elements) for t in gguf.GGUFReader(path).tensors)
    with tempfile.TemporaryDirectory() as d:
        t0 = time.perf_counter()
        r = subprocess.run([sys.executable, "-m", "fairyhw.quant", path, "--stages", str(args.stages),
                            "--out", os.path.join(d, "q"), "--no-progress"],
                           capture_output=True, text=True)
        wall = time.perf_counter() - t0
    if r.returncode:
        raise FairyError(f"quant failed: {r.stderr.strip()}")
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024
    fp32 = 4 * params
    res = {"model": os.path.basename(path), "params": params, "stages": args.stages,
           "wall_s": round(wall, 2), "peak_rss_bytes": peak, "fp32_bytes": fp32,
           "peak_over_fp32": round(peak / fp32, 3), "cpus": os.cpu_count()}
    print(r.stdout.strip())
    print(f"convert {res['model']} W{args.stages}: {wall:.1f} s wall (target < 30 s), peak RSS "
          f"{peak / 2**20:.0f} MiB = {peak / fp32:.2f}x fp32 size {fp32 / 2**20:.0f} MiB (target < 3x)")
    return res


def _exact_cases(shapes):
    """Random layers ``(codes (4, n, m), p, q, golden sums)`` for the kernels' exactness checks."""
    import torch
    from . import golden as g
    for n, m, batch in shapes:
        codes = torch.randint(0, 4, (4, n, m), dtype=torch.uint8)
        p = torch.randint(-128, 128, (batch, m), dtype=torch.int8)
        q = torch.randint(-128, 128, (batch, m), dtype=torch.int8)
        ref = torch.stack([g.integer_sums(codes[k], p, q, conj=k % 2 == 1) for k in range(4)], dim=1)
        yield codes, p, q, ref


def _env(device_name: str) -> dict:
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


def bench_gpu(args) -> dict:
    """Exactness check, then per-shape and whole-model timings of the GPU kernels, a plain read of the
    same code bytes and torch bf16, all as CUDA graphs."""
    import torch
    from .kernels.gpu import (activation_matrix, activation_planes, activation_words, available,
                              available_mma, fairy_sums, fairy_sums_dot, fairy_sums_dp4a, fairy_sums_mma,
                              launch_dot, launch_dp4a, launch_mma, pack_codes_i32, read_xor)
    from .llama import LLAMA2_7B, linear_shapes
    if not available():
        raise FairyError("the GPU bench needs a CUDA GPU with Triton; this machine has none")
    dev = torch.device("cuda")
    name = torch.cuda.get_device_name(0)
    torch.manual_seed(0)
    mma = available_mma()
    pdl = mma and torch.cuda.get_device_capability()[0] >= 9
    if not mma:
        print("note: no NVRTC or no int8 mma.sync here: the bit-plane tensor-core kernel and the plain "
              "read are skipped")
    # 1. exactness against the golden integer path
    kernels = (fairy_sums, fairy_sums_dot, fairy_sums_dp4a) + ((fairy_sums_mma,) if mma else ())
    for codes, p, q, ref in _exact_cases(((300, 200, 1), (64, 1000, 3), (2048, 2048, 1))):
        n, m = codes.shape[1:]
        for fn in kernels:
            got = fn(pack_codes_i32(codes).to(dev), p.to(dev), q.to(dev)).cpu().long()
            if not torch.equal(got, ref):
                raise SystemExit(f"error: GPU sums ({fn.__name__}) differ from the golden path "
                                 f"for n={n} m={m}")
    if mma:                                   # the tensor-core kernel's two layouts up to 16 tokens
        for codes, p, q, ref in _exact_cases(((1000, 2048, 16), (600, 5504, 8))):
            ci = pack_codes_i32(codes).to(dev)
            act, asum = activation_planes(p.to(dev), q.to(dev), ci.shape[-1])
            for sets in ((0, 1, 2, 4) if p.shape[0] <= 8 else (1, 2, 4)):
                if not torch.equal(launch_mma(ci, act, asum, sets=sets).cpu().long(), ref):
                    raise SystemExit(f"error: GPU sums (tensor-core kernel, sets={sets}) differ from the "
                                     f"golden path for n={codes.shape[1]} m={codes.shape[2]}")
    print(f"exact: the {len(kernels)} GPU kernels' integer sums equal the golden path "
          f"({'5 shapes, 1 to 16 tokens' if mma else '3 shapes'}, == on int64)")

    def timed(fn, iters):
        fn()
        torch.cuda.synchronize()
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        times = []
        for _ in range(iters):
            start.record()
            fn()
            end.record()
            torch.cuda.synchronize()
            times.append(start.elapsed_time(end) / 1e3)
        times.sort()
        return times[len(times) // 2]

    def capture(run):
        """A CUDA graph of ``run``'s launches (warmed up, and autotuned, outside the capture)."""
        run()
        torch.cuda.synchronize()
        g = torch.cuda.CUDAGraph()
        with torch.cuda.graph(g):
            run()
        return g

    def graph_time(run, iters=10):
        """Median time of one replay of a CUDA graph of ``run``'s launches."""
        return timed(capture(run).replay, iters)

    # 2. per shape: a CUDA graph of launches over rotating weight copies (>= 400 MB, so no L2 reuse)
    shapes = linear_shapes(LLAMA2_7B)
    rows = []
    for s in shapes:
        n, m = s.out_features // 2, s.in_features // 2
        mw = m // 16
        code_bytes = 4 * n * mw * 4
        copies = max(8, -(-400_000_000 // code_bytes))
        ws = [torch.randint(-2**31, 2**31 - 1, (4, n, mw), dtype=torch.int32, device=dev) for _ in range(copies)]
        p = torch.randint(-128, 128, (1, m), dtype=torch.int8, device=dev)
        out4 = torch.empty(1, 4, n, 4, dtype=torch.int32, device=dev)
        row = {"name": s.name, "shape": [s.out_features, s.in_features], "count": s.count,
               "code_bytes": code_bytes, "launches_per_graph": copies}
        times = {}
        if mma:
            act, asum = activation_planes(p, p, mw)
            rbuf = torch.empty(8 * 8 * 1024, dtype=torch.int32, device=dev)
            times["mma"] = graph_time(lambda: [launch_mma(w, act, asum, out4, pdl=pdl) for w in ws]) / copies
            times["read"] = graph_time(lambda: [read_xor(w, rbuf, pdl=pdl) for w in ws]) / copies
        pw, qw, sums = activation_words(p, p, mw)
        times["dp4a"] = graph_time(lambda: [launch_dp4a(w, pw, qw, sums, out4) for w in ws]) / copies
        x = activation_matrix(p, p, mw)
        outd = torch.empty(4, n, 32, dtype=torch.int32, device=dev)
        times["dot"] = graph_time(lambda: [launch_dot(w, x, outd) for w in ws]) / copies
        del ws
        bcopies = max(4, -(-800_000_000 // (2 * s.params)))
        wb = [torch.randn(s.out_features, s.in_features, dtype=torch.bfloat16, device=dev)
              for _ in range(bcopies)]
        xb = torch.randn(1, s.in_features, dtype=torch.bfloat16, device=dev)
        times["bf16"] = graph_time(lambda: [torch.nn.functional.linear(xb, w) for w in wb]) / bcopies
        del wb
        torch.cuda.empty_cache()
        for k, t in times.items():
            by = 2 * s.params if k == "bf16" else code_bytes
            row[f"{k}_s"] = t
            row[f"{k}_gbps"] = by / t / 1e9
        rows.append(row)
        print(f"{s.name:<10} {s.out_features}x{s.in_features}: "
              + "  ".join(f"{k} {t * 1e6:6.1f} us ({row[f'{k}_gbps']:5.0f} GB/s)" for k, t in times.items()))

    # 3. whole model: every layer's own weights (1.65 GB of codes; 13.2 GB of bf16), so no L2 reuse.
    # Layers that read the same input share one launch, as inference engines fuse them: q, k and v
    # (12 code matrices), gate and up (8); o, down and lm_head alone. One CUDA graph of 129 launches.
    model = []
    by_name = {s.name: s for s in shapes}
    for _ in range(by_name["q_proj"].count):
        for grp in FUSED_GROUPS:
            s = by_name[grp[0]]
            n, m = s.out_features // 2, s.in_features // 2
            model.append((torch.randint(-2**31, 2**31 - 1, (4 * len(grp), n, m // 16), dtype=torch.int32,
                                        device=dev), m))
    s = by_name["lm_head"]
    model.append((torch.randint(-2**31, 2**31 - 1, (4, s.out_features // 2, s.in_features // 32),
                                dtype=torch.int32, device=dev), s.in_features // 2))
    total_bytes = sum(w.numel() * 4 for w, _ in model)
    res_model = []

    def record(label, batch, t, extra=None):
        res_model.append({"name": label, "batch": batch, "seconds": t, "tokens_per_s": batch / t,
                          "weight_gbps": total_bytes / t / 1e9, **(extra or {})})
        print(f"whole model, {label}: {t * 1e3:.3f} ms/step = {batch / t:.1f} tokens/s, "
              f"{total_bytes / t / 1e9:.0f} GB/s of codes ({total_bytes / 1e9:.3f} GB)")

    rbuf = torch.empty(8 * 16 * 132 * 8, dtype=torch.int32, device=dev)
    for batch in ((1, 2, 4, 8, 16) if mma else (1, 4, 8)):
        acts = {m: torch.randint(-128, 128, (batch, m), dtype=torch.int8, device=dev)
                for m in {m for _, m in model}}
        outs = {}

        def out_for(w):
            key = (batch, w.shape[0], w.shape[1])
            if key not in outs:
                outs[key] = torch.empty(batch, w.shape[0], w.shape[1], 4, dtype=torch.int32, device=dev)
            return outs[key]
        runs = []
        if mma:
            planes = {m: activation_planes(a, a, m // 16) for m, a in acts.items()}
            mma_label = f"fairy W2 int8, bit-plane tensor-core kernel{' + PDL' if pdl else ''}, batch {batch}"

            def mma_run():
                return [launch_mma(w, *planes[m], out_for(w), pdl=pdl) for w, m in model]
            if batch == 1:
                # The headline pair, the plain read and the kernel at batch 1, take turns for 5 rounds
                # (each the median of 20 graph replays): the best round of each is recorded with every
                # round, as the GPU's clocks and the host drift between runs.
                graphs = {"read": capture(lambda: [read_xor(w, rbuf, pdl=pdl) for w, _ in model]),
                          "mma": capture(mma_run)}
                rounds = {k: [] for k in graphs}
                for _ in range(5):
                    for k, g in graphs.items():
                        rounds[k].append(timed(g.replay, 20))
                graphs.clear()
                for k, label in (("read", "plain read of the same code buffers (same 129 launches)"),
                                 ("mma", mma_label)):
                    record(label, 1, min(rounds[k]), {"rounds_tokens_per_s": [1 / x for x in rounds[k]]})
                print(f"  (5 rounds taking turns: plain read {1 / max(rounds['read']):.0f}-"
                      f"{1 / min(rounds['read']):.0f}, kernel {1 / max(rounds['mma']):.0f}-"
                      f"{1 / min(rounds['mma']):.0f} steps/s)")
            else:
                runs.append((mma_label, mma_run))
            if batch in (4, 8):               # the batch-1 layout (one token's slots in the columns)
                runs.append((f"fairy W2 int8, bit-plane tensor-core kernel, slots in the columns"
                             f"{' + PDL' if pdl else ''}, batch {batch}",
                             lambda: [launch_mma(w, *planes[m], out_for(w), pdl=pdl, sets=0)
                                      for w, m in model]))
            if pdl and batch == 1:
                runs.append((f"fairy W2 int8, bit-plane tensor-core kernel without PDL, batch {batch}",
                             lambda: [launch_mma(w, *planes[m], out_for(w)) for w, m in model]))
        words = {m: activation_words(a, a, m // 16) for m, a in acts.items()}
        if batch in (1, 4, 8):
            runs.append((f"fairy W2 int8, dp4a SIMT kernel, batch {batch}",
                         lambda: [launch_dp4a(w, *words[m], out_for(w)) for w, m in model]))
        douts = {}

        def dout_for(w):
            key = (w.shape[0], w.shape[1])
            if key not in douts:
                douts[key] = torch.empty(w.shape[0], w.shape[1], 32, dtype=torch.int32, device=dev)
            return douts[key]
        if batch == 1:                        # 6-16x slower than the others: timed at batch 1 only
            xs8 = {m: activation_matrix(a, a, m // 16) for m, a in acts.items()}
            runs.append((f"fairy W2 int8, decode + tensor-core kernel, batch {batch}",
                         lambda: [launch_dot(w, xs8[m], dout_for(w)) for w, m in model]))
        for label, run in runs:
            t = graph_time(run, 20)
            record(label, batch, t)
        outs.clear()
        douts.clear()
    model.clear()
    torch.cuda.empty_cache()
    bf = []                                   # the same launches: q|k|v and gate|up fused
    for _ in range(by_name["q_proj"].count):
        for grp in FUSED_GROUPS:
            s = by_name[grp[0]]
            bf.append(torch.randn(s.out_features * len(grp), s.in_features, dtype=torch.bfloat16,
                                  device=dev))
    s = by_name["lm_head"]
    bf.append(torch.randn(s.out_features, s.in_features, dtype=torch.bfloat16, device=dev))
    xs = {w.shape[1]: torch.randn(1, w.shape[1], dtype=torch.bfloat16, device=dev) for w in bf}
    bf_bytes = sum(w.numel() * 2 for w in bf)
    t = graph_time(lambda: [torch.nn.functional.linear(xs[w.shape[1]], w) for w in bf], 5)
    res_model.append({"name": "torch bf16 F.linear, batch 1", "batch": 1, "seconds": t, "tokens_per_s": 1 / t,
                      "weight_gbps": bf_bytes / t / 1e9})
    print(f"whole model, torch bf16 batch 1: {t * 1e3:.2f} ms = {1 / t:.1f} tokens/s, "
          f"{bf_bytes / t / 1e9:.0f} GB/s")
    best = max((r for r in res_model if r["batch"] == 1 and r["name"].startswith("fairy")),
               key=lambda r: r["tokens_per_s"])
    read = next((r for r in res_model if r["name"].startswith("plain read")), None)
    print(f"best fairy batch 1: {best['tokens_per_s']:.0f} tokens/s (target >= 1200), "
          f"{100 * best['weight_gbps'] * 1e9 / 3.35e12:.0f}% of the H100's 3.35 TB/s"
          + (f", {100 * best['tokens_per_s'] / read['tokens_per_s']:.0f}% of the plain read's "
             f"{read['tokens_per_s']:.0f} steps/s" if read else ""))
    result = {**_env(name), "exact": True, "pdl": pdl, "shapes": rows, "model": res_model,
              "notes": "every timing is the median replay of a CUDA graph (20 replays), divided by its "
                       "launches for the "
                       "per-shape rows (rotating weight copies of >= 400 MB of codes, 800 MB of bf16); the "
                       "whole model uses every layer's own weights (32 layers x 7 + lm_head), q/k/v in one "
                       "launch and gate/up in one launch (they read the same input), 129 launches; kernels "
                       "alone (activation packing and the W sums' layout are the consumer's); the bit-plane "
                       "kernel and the plain read use programmatic dependent launch on Hopper (each launch's "
                       "first code loads overlap the previous launch's end; activations are read after it "
                       "completes). The whole model's plain read and bit-plane kernel at batch 1 take turns "
                       "for 5 rounds: the best round of each is recorded, every round in "
                       "rounds_tokens_per_s"}
    return result


def _cpu_name() -> str:
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


def bench_cpu(args) -> dict:
    """Exactness check, then the C kernels on the whole model and per shape, beside torch and a plain read."""
    import numpy as np
    import torch
    from .kernels import cpu
    from .llama import LLAMA2_7B, linear_shapes
    from .pack import pack_codes

    threads = args.threads or cpu.threads()
    torch.set_num_threads(threads)
    variants = cpu.variants()
    torch.manual_seed(0)
    # 1. exactness against the golden integer path, every variant
    for codes, p, q, ref in _exact_cases(((300, 201, 1), (64, 1000, 3), (512, 2048, 1))):
        n, m = codes.shape[1:]
        packed = pack_codes(codes)
        for v in variants:
            if not torch.equal(cpu.fairy_sums(packed, p, q, variant=v, threads=threads).long(), ref):
                raise SystemExit(f"error: CPU kernel {v} differs from the golden path for n={n} m={m}")
    print(f"exact: CPU kernels {', '.join(variants)} equal the golden path (3 shapes, == on int64)")

    def best(fn, reps):
        fn()
        ts = []
        for _ in range(reps):
            t0 = time.perf_counter()
            fn()
            ts.append(time.perf_counter() - t0)
        return min(ts), sorted(ts)[len(ts) // 2]

    shapes = linear_shapes(LLAMA2_7B)
    rng = np.random.default_rng(0)
    # 2. the whole model: every layer's own codes (U0, W0, U1, W1 packed), 1.65 GB, far beyond the caches.
    # Layers that read the same input share one call, as inference engines fuse them (and as the GPU bench
    # does): q, k and v (12 code matrices), gate and up (8); o, down and lm_head alone: 129 calls.
    model = []
    by_name = {s.name: s for s in shapes}
    for _ in range(by_name["q_proj"].count):
        for grp in FUSED_GROUPS:
            s = by_name[grp[0]]
            n, m = s.out_features // 2, s.in_features // 2
            model.append((grp, rng.integers(0, 256, (4 * len(grp), n, -(-m // 4)), dtype=np.uint8), m))
    s = by_name["lm_head"]
    model.append((("lm_head",), rng.integers(0, 256, (4, s.out_features // 2, s.in_features // 8),
                                             dtype=np.uint8), s.in_features // 2))
    total = sum(w.nbytes for _, w, _ in model)
    flat = [w.reshape(-1) for _, w, _ in model]
    laid, t_layout = {}, None
    if "lut512" in variants:                  # the T-MAC-style kernel's own code order, made once
        t0 = time.perf_counter()
        laid = {id(w): cpu.lut_layout(w, threads) for _, w, _ in model}
        t_layout = time.perf_counter() - t0
        print(f"lut512 layout of the {total / 1e9:.3f} GB of codes: {t_layout:.2f} s, once")

    def read_all():
        for w in flat:
            cpu.read_bytes(w, threads)

    # The plain read and every kernel pass take turns, best of 5 each: this machine's speed drifts by a
    # quarter over minutes (shared host), and taking turns keeps the ratios to the same conditions.
    direct = [v for v in ("avx512", "avx2") if v in variants]
    cases = [(v, b) for v in direct for b in ((1, 4, 8) if v == direct[0] else (1,))]  # fastest at 1, 4, 8
    if laid:
        cases[1:1] = [("lut512", 1), ("lut512", 4), ("lut512", 8)]
    acts = {b: {m: torch.randint(-128, 128, (b, m), dtype=torch.int8) for m in {m for *_, m in model}}
            for b in {b for _, b in cases}}
    # one output buffer per call shape and batch, reused as engines reuse theirs
    outs = {(b, w.shape): torch.empty((b, *w.shape[:2], 4), dtype=torch.int32)
            for b in {b for _, b in cases} for _, w, _ in model}
    t_reads, t_runs, shape_times = [], {c: [] for c in cases}, {c: [] for c in cases}
    read_all()
    for _ in range(5):
        t0 = time.perf_counter()
        read_all()
        t_reads.append(time.perf_counter() - t0)
        for variant, batch in cases:
            times = {}
            t0 = time.perf_counter()
            for grp, w, m in model:
                t1 = time.perf_counter()
                cpu.fairy_sums(laid[id(w)] if variant == "lut512" else w, acts[batch][m], acts[batch][m],
                               variant=variant, threads=threads, out=outs[(batch, w.shape)])
                dt = time.perf_counter() - t1
                for name in grp:      # a fused call's time is shared evenly by its layers (same shape)
                    times[name] = times.get(name, 0.0) + dt / len(grp)
            t_runs[(variant, batch)].append(time.perf_counter() - t0)
            shape_times[(variant, batch)].append(times)
    t_read = min(t_reads)
    read_gbps = total / t_read / 1e9
    print(f"plain read of the {total / 1e9:.3f} GB of codes (per layer, {threads} threads): "
          f"{t_read * 1e3:.1f} ms = {read_gbps:.1f} GB/s (best of 5; worst {max(t_reads) * 1e3:.1f} ms)")
    res_model, per_shape_fairy = [], {}
    for variant, batch in cases:
        ts = t_runs[(variant, batch)]
        i = ts.index(min(ts))
        t, t_med = ts[i], sorted(ts)[len(ts) // 2]
        if batch == 1 and variant == direct[0]:
            per_shape_fairy = shape_times[(variant, batch)][i]            # that best pass's per-shape sums
        label = "lut512 kernel: T-MAC-style tables, codes re-laid once" if variant == "lut512" else \
            f"{variant} kernel"
        res_model.append({"name": f"fairy W2 int8 ({label}), batch {batch}", "kernel": variant,
                          "batch": batch, "seconds": t,
                          "median_seconds": t_med, "tokens_per_s": batch / t,
                          "weight_gbps": total / t / 1e9, "of_plain_read": total / t / 1e9 / read_gbps})
        print(f"whole model, fairy W2 {variant} batch {batch}: {t * 1e3:.1f} ms = {batch / t:.2f} "
              f"tokens/s, {total / t / 1e9:.1f} GB/s of codes = {100 * total / t / 1e9 / read_gbps:.0f}% "
              f"of the plain read (median pass {t_med * 1e3:.1f} ms)")
    model.clear()
    flat.clear()
    laid.clear()

    # 3. per shape: the kernel and torch F.linear in bf16 and fp32, each on rotating copies that together
    # exceed 8x the L3, in turns (best of 3 rounds) so that the ratios see the same machine speed
    rows = []
    rotate_bytes = args.rotate_mb * 2**20
    per_shape_sum = {"fairy": 0.0, **({"fairy_lut512": 0.0} if "lut512" in variants else {}),
                     "bfloat16": 0.0, "float32": 0.0}
    for s in shapes:
        n, m = s.out_features // 2, s.in_features // 2
        row = {"name": s.name, "shape": [s.out_features, s.in_features], "count": s.count,
               "fairy_model_pass_s": per_shape_fairy.get(s.name, float("nan")) / s.count}
        code_bytes = 4 * n * -(-m // 4)
        cands = {}
        copies = max(2, -(-rotate_bytes // code_bytes))
        wf = [rng.integers(0, 256, (4, n, -(-m // 4)), dtype=np.uint8) for _ in range(copies)]
        xf = torch.randint(-128, 128, (1, m), dtype=torch.int8)
        of = torch.empty((1, 4, n, 4), dtype=torch.int32)
        cands["fairy"] = (code_bytes, copies, lambda i, wf=wf, xf=xf, of=of: cpu.fairy_sums(
            wf[i % len(wf)], xf, xf, variant=direct[0], threads=threads, out=of))
        if "lut512" in variants:
            wl = [cpu.lut_layout(w, threads) for w in wf]
            cands["fairy_lut512"] = (code_bytes, copies, lambda i, wl=wl, xf=xf, of=of: cpu.fairy_sums(
                wl[i % len(wl)], xf, xf, threads=threads, out=of))
        for dt in (torch.bfloat16, torch.float32):
            size = s.params * dt.itemsize
            c = max(2, -(-rotate_bytes // size))
            ws = [torch.randn(s.out_features, s.in_features, dtype=dt) for _ in range(c)]
            x = torch.randn(1, s.in_features, dtype=dt)
            cands[str(dt).split(".")[1]] = (size, c, lambda i, ws=ws, x=x: torch.nn.functional.linear(
                x, ws[i % len(ws)]))
        best_t = {k: float("inf") for k in cands}
        for _ in range(3):
            for k, (_, c, fn) in cands.items():
                fn(0)
                for i in range(c):
                    t0 = time.perf_counter()
                    fn(i)
                    best_t[k] = min(best_t[k], time.perf_counter() - t0)
        for k, (by, _, _) in cands.items():
            row[f"{k}_s"] = best_t[k]
            row[f"{k}_gbps"] = by / best_t[k] / 1e9
            per_shape_sum[k] += s.count * best_t[k]
        cands.clear()
        rows.append(row)
        lut = (f"   lut512 {row['fairy_lut512_s'] * 1e3:7.3f} ms ({row['fairy_lut512_gbps']:5.1f} GB/s)"
               if "fairy_lut512_s" in row else "")
        print(f"{s.name:<10} {s.out_features}x{s.in_features}: fairy W2 {row['fairy_s'] * 1e3:7.3f} ms "
              f"({row['fairy_gbps']:5.1f} GB/s of codes){lut}   torch bf16 {row['bfloat16_s'] * 1e3:7.2f} ms "
              f"({row['bfloat16_gbps']:5.1f} GB/s)   fp32 {row['float32_s'] * 1e3:7.2f} ms "
              f"({row['float32_gbps']:5.1f} GB/s)")
    for key, t in per_shape_sum.items():
        by = sum(s.count * s.params for s in shapes) * {"bfloat16": 2, "float32": 4}.get(key, 0.25)
        label = {"fairy": f"fairy W2 int8 ({direct[0]} kernel)",
                 "fairy_lut512": "fairy W2 int8 (lut512 kernel)"}.get(key, f"torch {key} F.linear")
        res_model.append({"name": f"{label}, batch 1 (per-shape sum)", "seconds": t,
                          "tokens_per_s": 1 / t, "weight_gbps": by / t / 1e9})
        print(f"per-shape sum, {label} batch 1: {t * 1e3:.0f} ms = {1 / t:.2f} tokens/s "
              f"({by / t / 1e9:.1f} GB/s)")

    # 4. the variants side by side on one shape (the table lookup and scalar ones are slow)
    s = next(x for x in shapes if x.name == "q_proj")
    n, m = s.out_features // 2, s.in_features // 2
    copies = max(2, -(-rotate_bytes // (4 * n * (m // 4))))
    ws = [rng.integers(0, 256, (4, n, m // 4), dtype=np.uint8) for _ in range(copies)]
    p = torch.randint(-128, 128, (1, m), dtype=torch.int8)
    o = torch.empty((1, 4, n, 4), dtype=torch.int32)
    variant_rows = []
    wl = [cpu.lut_layout(w, threads) for w in ws] if "lut512" in variants else []
    for v in variants:
        state = {"i": 0}

        def run_v():
            i = state["i"] % copies
            cpu.fairy_sums(wl[i] if v == "lut512" else ws[i], p, p, variant=v, threads=threads, out=o)
            state["i"] += 1
        t, _ = best(run_v, copies if v in ("scalar", "lut") else 2 * copies)
        variant_rows.append({"variant": v, "shape": "q_proj", "seconds": t,
                             "weight_gbps": ws[0].nbytes / t / 1e9})
        print(f"q_proj, {v:<7} kernel: {t * 1e3:8.3f} ms ({ws[0].nbytes / t / 1e9:5.2f} GB/s of codes)")
    # 5. what bounds the kernel: the same q_proj codes again and again (4.2 MB, in the L3) measure its compute
    # rate with no DRAM traffic; if that is close to the whole-model rate, the kernel is compute-bound
    w0 = ws[0]
    in_cache = {}
    for v, codes in ((variants[0], w0), *((("lut512", wl[0]),) if wl else ())):
        t_cache, _ = best(lambda c=codes, v=v: cpu.fairy_sums(c, p, p, variant=v, threads=threads, out=o), 20)
        in_cache[v] = w0.nbytes / t_cache / 1e9
        mod = next(r for r in res_model if r["kernel"] == v and r["batch"] == 1)
        print(f"q_proj, {v} kernel, codes in the L3 (no DRAM traffic): {in_cache[v]:.1f} GB/s of codes: "
              f"the whole model's {mod['weight_gbps']:.1f} GB/s is "
              f"{100 * mod['weight_gbps'] / in_cache[v]:.0f}% of the kernel's own compute rate")
    cache_gbps = in_cache[variants[0]]
    del ws, wl

    ps = [r for r in res_model if r["name"].startswith("fairy") and "per-shape" in r["name"]]
    ps_fairy = max(ps, key=lambda r: r["tokens_per_s"])
    bf16 = next(r for r in res_model if r["name"].startswith("torch bfloat16"))
    whole = [r for r in res_model if "of_plain_read" in r and r["batch"] == 1]
    print(f"fairy W2 batch 1 vs torch bf16 (per-shape sums, same rounds): "
          f"{ps_fairy['tokens_per_s'] / bf16['tokens_per_s']:.1f}x (target >= 5x); whole model "
          + ", ".join(f"{r['kernel']} {100 * r['of_plain_read']:.0f}%" for r in whole)
          + " of the plain read (target >= 60%)")
    import subprocess as sp
    cc = os.environ.get("CC", "cc")
    try:
        cc_ver = sp.run([cc, "--version"], capture_output=True, text=True).stdout.splitlines()[0]
    except (OSError, IndexError):
        cc_ver = cc
    result = {**_env(_cpu_name()), "threads": threads, "compiler": cc_ver, "variants": variants,
              "exact": True, "plain_read_gbps": read_gbps,
              "plain_read_turns_gbps": [total / t / 1e9 for t in t_reads], "code_bytes": total, "shapes": rows,
              "variants_q_proj": variant_rows, "model": res_model,
              "in_cache_gbps": cache_gbps, "in_cache_gbps_by_kernel": in_cache, "lut512_layout_seconds": t_layout,
              "speedup_over_bf16": ps_fairy["tokens_per_s"] / bf16["tokens_per_s"],
              "notes": "fairy kernel timings run the whole model with every layer's own random codes "
                       "(1.65 GB, beyond the caches), best of 5 passes taking turns with the plain read, "
                       "the Python call path included; q, k, v share one call and gate, up another (same "
                       "input, as inference engines fuse them): 129 calls a pass. Per-shape fairy figures "
                       "are the best pass's per-shape sums divided by the count (fairy_model_pass_s; a "
                       "fused call's time is split evenly among its layers). The per-shape rows time the kernel "
                       "and torch in turns (3 rounds), each rotating copies of its weights totalling at "
                       f"least {args.rotate_mb} MiB (8x the L3 here), and sum count x best time; the "
                       "speedup over bf16 compares those per-shape sums (the faster fairy kernel's). The "
                       "lut512 kernel reads codes re-laid once by lut_layout (lut512_layout_seconds for the "
                       "whole model, not in its timings), as T-MAC lays out its weights offline."}
    return result


def main(argv=None) -> int:
    return run_command(_main, argv)


def _main(argv) -> int:
    p = ArgumentParser(prog="python -m fairyhw.bench", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True, metavar="COMMAND")
    q = sub.add_parser("quant", help="time and peak memory of converting SmolLM2-135M",
                       formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    q.add_argument("--stages", type=int_in(1, 4, "stages"), default=2, metavar="T", help="residual stages")
    q.add_argument("--json", action="store_true", help="also print the figures as JSON")
    cp = sub.add_parser("cpu", help="C kernels vs torch bf16/fp32 and a plain read, LLaMA-2 7B shapes",
                        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    cp.add_argument("--threads", type=int_in(0, 1024, "threads"), default=0,
                    help="threads for kernels and torch (0: every core)")
    cp.add_argument("--rotate-mb", type=int_in(1, 1 << 16, "rotate-mb"), default=256, metavar="MB",
                    help="torch weights rotated per shape, at least this many MiB")
    cp.add_argument("--out", metavar="FILE", default="reports/bench_cpu.json", help="results JSON")
    gp = sub.add_parser("gpu", help="GPU kernels vs a plain read and torch bf16, LLaMA-2 7B (needs a GPU)",
                        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    gp.add_argument("--out", metavar="FILE", default="reports/bench_gpu.json", help="results JSON")
    args = p.parse_args(argv)
    with Outputs() as out:
        if getattr(args, "out", None):
            out.file(args.out)          # checked before the bench runs
        res = {"quant": bench_quant, "cpu": bench_cpu, "gpu": bench_gpu}[args.cmd](args)
        if getattr(args, "json", False):
            print(dumps_json(res, indent=1))
        if getattr(args, "out", None):
            out.write_json(args.out, res, indent=1)
            out.commit()
            print(f"wrote {show(args.out)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
