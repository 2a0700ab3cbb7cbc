"""``fairyhw bench cpu``: the C kernels checked against the golden integer path, then timed.

Steps (each a function below, run in this order by :func:`bench_cpu`):

1. :func:`check_exact`: every kernel variant against the golden integer path;
2. :func:`time_whole_model`: every layer's own codes (1.65 GB, beyond the caches) beside a plain read
   of the same bytes, in turns;
3. :func:`time_per_shape`: the kernel and torch ``F.linear`` (bf16, fp32) per LLaMA-2 7B shape, on
   rotating copies, in turns;
4. :func:`time_variants`: every variant on q_proj;
5. :func:`time_in_cache`: q_proj's codes again and again (in the L3), the kernel's compute rate.
"""

from __future__ import annotations

import os
import time

from .common import best_of, cpu_name, env_record, exact_cases, whole_model


def check_exact(cpu, variants, threads) -> None:
    """Step 1: every variant's sums ``==`` the golden integer path's on three shapes."""
    import torch
    from ..model.pack import pack_codes
    for codes, p, q, ref in exact_cases(((300, 201, 1), (64, 1000, 3), (512, 2048, 1))):
        n, m = codes.shape[1:]
        packed = pack_codes(codes)
        for v in variants:
            if not torch.equal(cpu.fairy_sums(packed, p, q, variant=v, threads=threads).long(), ref):
                raise SystemExit(f"error: CPU kernel {v} differs from the golden path for n={n} m={m}")
    print(f"exact: CPU kernels {', '.join(variants)} equal the golden path (3 shapes, == on int64)")


def time_whole_model(cpu, variants, threads, shapes, rng) -> dict:
    """Step 2: the whole model, every layer's own codes (U0, W0, U1, W1 packed), 1.65 GB, far beyond
    the caches. Layers that read the same input share one call, as inference engines fuse them (and
    as the GPU bench does): q, k and v (12 code matrices), gate and up (8); o, down and lm_head
    alone: 129 calls. The plain read and every kernel pass take turns, best of 5 each: this machine's
    speed drifts by a quarter over minutes (shared host), and taking turns keeps the ratios to the
    same conditions."""
    import torch
    model = whole_model(shapes, lambda s, fused: (
        rng.integers(0, 256, (4 * fused, s.out_features // 2, -(-(s.in_features // 2) // 4)),
                     dtype="uint8"), s.in_features // 2))
    model = [(grp, w, m) for grp, (w, m) in model]
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
    records, per_shape = [], {}
    for variant, batch in cases:
        ts = t_runs[(variant, batch)]
        i = ts.index(min(ts))
        t, t_med = ts[i], sorted(ts)[len(ts) // 2]
        if batch == 1 and variant == direct[0]:
            per_shape = shape_times[(variant, batch)][i]            # that best pass's per-shape sums
        label = "lut512 kernel: T-MAC-style tables, codes re-laid once" if variant == "lut512" else \
            f"{variant} kernel"
        records.append({"name": f"fairy W2 int8 ({label}), batch {batch}", "kernel": variant,
                        "batch": batch, "seconds": t,
                        "median_seconds": t_med, "tokens_per_s": batch / t,
                        "weight_gbps": total / t / 1e9, "of_plain_read": total / t / 1e9 / read_gbps})
        print(f"whole model, fairy W2 {variant} batch {batch}: {t * 1e3:.1f} ms = {batch / t:.2f} "
              f"tokens/s, {total / t / 1e9:.1f} GB/s of codes = {100 * total / t / 1e9 / read_gbps:.0f}% "
              f"of the plain read (median pass {t_med * 1e3:.1f} ms)")
    return {"records": records, "per_shape": per_shape, "direct": direct, "code_bytes": total,
            "plain_read_gbps": read_gbps, "plain_read_turns_gbps": [total / t / 1e9 for t in t_reads],
            "lut512_layout_seconds": t_layout}


def time_per_shape(cpu, variants, threads, shapes, rng, direct, per_shape_fairy, rotate_mb):
    """Step 3: per shape, the kernel and torch ``F.linear`` in bf16 and fp32, each on rotating copies
    that together exceed ``rotate_mb`` MiB, in turns (best of 3 rounds) so that the ratios see the
    same machine speed. Returns the rows and the per-shape sums (count x best time) as records."""
    import torch
    rows, records = [], []
    rotate_bytes = rotate_mb * 2**20
    per_shape_sum = {"fairy": 0.0, **({"fairy_lut512": 0.0} if "lut512" in variants else {}),
                     "bfloat16": 0.0, "float32": 0.0}
    for s in shapes:
        n, m = s.out_features // 2, s.in_features // 2
        row = {"name": s.name, "shape": [s.out_features, s.in_features], "count": s.count,
               "fairy_model_pass_s": per_shape_fairy.get(s.name, float("nan")) / s.count}
        code_bytes = 4 * n * -(-m // 4)
        cands = {}
        copies = max(2, -(-rotate_bytes // code_bytes))
        wf = [rng.integers(0, 256, (4, n, -(-m // 4)), dtype="uint8") for _ in range(copies)]
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
        records.append({"name": f"{label}, batch 1 (per-shape sum)", "seconds": t,
                        "tokens_per_s": 1 / t, "weight_gbps": by / t / 1e9})
        print(f"per-shape sum, {label} batch 1: {t * 1e3:.0f} ms = {1 / t:.2f} tokens/s "
              f"({by / t / 1e9:.1f} GB/s)")
    return rows, records


def time_variants(cpu, variants, threads, shapes, rng, rotate_mb):
    """Step 4: the variants side by side on q_proj's shape (the table lookup and scalar ones are
    slow). Returns the rows and the codes, activation and output buffer (for step 5)."""
    import torch
    s = next(x for x in shapes if x.name == "q_proj")
    n, m = s.out_features // 2, s.in_features // 2
    copies = max(2, -(-rotate_mb * 2**20 // (4 * n * (m // 4))))
    ws = [rng.integers(0, 256, (4, n, m // 4), dtype="uint8") for _ in range(copies)]
    p = torch.randint(-128, 128, (1, m), dtype=torch.int8)
    o = torch.empty((1, 4, n, 4), dtype=torch.int32)
    rows = []
    wl = [cpu.lut_layout(w, threads) for w in ws] if "lut512" in variants else []
    for v in variants:
        state = {"i": 0}

        def run_v():
            i = state["i"] % copies
            cpu.fairy_sums(wl[i] if v == "lut512" else ws[i], p, p, variant=v, threads=threads, out=o)
            state["i"] += 1
        t, _ = best_of(run_v, copies if v in ("scalar", "lut") else 2 * copies)
        rows.append({"variant": v, "shape": "q_proj", "seconds": t, "weight_gbps": ws[0].nbytes / t / 1e9})
        print(f"q_proj, {v:<7} kernel: {t * 1e3:8.3f} ms ({ws[0].nbytes / t / 1e9:5.2f} GB/s of codes)")
    return rows, (ws[0], wl[0] if wl else None, p, o)


def time_in_cache(cpu, variants, threads, q_proj, model_records) -> dict:
    """Step 5: what bounds the kernel: the same q_proj codes again and again (4.2 MB, in the L3)
    measure its compute rate with no DRAM traffic; if that is close to the whole-model rate, the
    kernel is compute-bound. Returns GB/s of codes by kernel."""
    w0, wl0, p, o = q_proj
    in_cache = {}
    for v, codes in ((variants[0], w0), *((("lut512", wl0),) if wl0 is not None else ())):
        t_cache, _ = best_of(lambda c=codes, v=v: cpu.fairy_sums(c, p, p, variant=v, threads=threads,
                                                                 out=o), 20)
        in_cache[v] = w0.nbytes / t_cache / 1e9
        mod = next(r for r in model_records if r["kernel"] == v and r["batch"] == 1)
        print(f"q_proj, {v} kernel, codes in the L3 (no DRAM traffic): {in_cache[v]:.1f} GB/s of codes: "
              f"the whole model's {mod['weight_gbps']:.1f} GB/s is "
              f"{100 * mod['weight_gbps'] / in_cache[v]:.0f}% of the kernel's own compute rate")
    return in_cache


def bench_cpu(args) -> dict:
    """The five steps, then the summary against the targets and the results record."""
    import numpy as np
    import torch
    from ..kernels.cpu import kernel as cpu
    from ..model.llama import LLAMA2_7B, linear_shapes

    threads = args.threads or cpu.threads()
    torch.set_num_threads(threads)
    variants = cpu.variants()
    torch.manual_seed(0)
    check_exact(cpu, variants, threads)
    shapes = linear_shapes(LLAMA2_7B)
    rng = np.random.default_rng(0)
    whole = time_whole_model(cpu, variants, threads, shapes, rng)
    direct = whole["direct"]
    rows, shape_records = time_per_shape(cpu, variants, threads, shapes, rng, direct, whole["per_shape"],
                                         args.rotate_mb)
    res_model = whole["records"] + shape_records
    variant_rows, q_proj = time_variants(cpu, variants, threads, shapes, rng, args.rotate_mb)
    in_cache = time_in_cache(cpu, variants, threads, q_proj, whole["records"])
    del q_proj

    ps = [r for r in res_model if r["name"].startswith("fairy") and "per-shape" in r["name"]]
    ps_fairy = max(ps, key=lambda r: r["tokens_per_s"])
    bf16 = next(r for r in res_model if r["name"].startswith("torch bfloat16"))
    model_b1 = [r for r in res_model if "of_plain_read" in r and r["batch"] == 1]
    print(f"fairy W2 batch 1 vs torch bf16 (per-shape sums, same rounds): "
          f"{ps_fairy['tokens_per_s'] / bf16['tokens_per_s']:.1f}x (target >= 5x); whole model "
          + ", ".join(f"{r['kernel']} {100 * r['of_plain_read']:.0f}%" for r in model_b1)
          + " of the plain read (target >= 60%)")
    import subprocess as sp
    cc = os.environ.get("CC", "cc")
    try:
        cc_ver = sp.run([cc, "--version"], capture_output=True, text=True).stdout.splitlines()[0]
    except (OSError, IndexError):
        cc_ver = cc
    return {**env_record(cpu_name()), "threads": threads, "compiler": cc_ver, "variants": variants,
            "exact": True, "plain_read_gbps": whole["plain_read_gbps"],
            "plain_read_turns_gbps": whole["plain_read_turns_gbps"], "code_bytes": whole["code_bytes"],
            "shapes": rows, "variants_q_proj": variant_rows, "model": res_model,
            "in_cache_gbps": in_cache[variants[0]], "in_cache_gbps_by_kernel": in_cache,
            "lut512_layout_seconds": whole["lut512_layout_seconds"],
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
