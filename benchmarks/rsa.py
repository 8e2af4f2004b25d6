"""Random Sparse Attention (RSA): compiled kernel and reference vs dense SDPA, time and memory (CPU; or CUDA
with ``--device cuda``).

Batch 1, 12 heads, head dim 64, block 64, float32, torch using every core; sequence lengths 1024, 2048, 4096
(``--quick``: 512, 1024). Per configuration, in a fresh subprocess (so its memory figure is its own):

- peak memory of the attention: after a warm-up pass, the peak RSS (VmHWM, reset through
  /proc/self/clear_refs) of one forward + backward minus the RSS just before it (inputs, incoming gradient and
  the loaded kernel already resident; glibc's mmap threshold fixed so freed blocks are unmapped), i.e. what
  the attention allocates: outputs, gradients, saved tensors and scratch;
- time: the median of ``--repeats`` forward + backward passes after a warm-up (and of forward-only passes).

With ``--device cuda``: the same rows on the GPU (the CUDA kernel of the extension), memory = the peak of
torch.cuda.max_memory_allocated during one forward + backward minus what was allocated before it, time with
a device synchronisation after each pass, and the fp32 matmul ceiling measured with TF32 off.

Implementations: ``dense`` = torch.nn.functional.scaled_dot_product_attention (whatever CPU backend torch
picks: its flash kernel for float32, which does not materialise the n x n scores either); ``dense-math``
(memory reference) = softmax(QK^T)V written out with the n x n scores; ``rsa-kK`` = the compiled kernel with
a random layout of sparsity k; ``ref-kK`` = rsa_reference (pure PyTorch) on the same layout.

GFLOP/s counts useful FLOPs only: forward 4 * n * kv_len * d per head (QK^T and PV, kv_len = the keys a
query row attends to), backward 2x forward; next to it, the fp32 GFLOP/s of a 2048^3 torch.mm measured in the
same run. The last line is one JSON object with every figure.

Goals (issue): at n = 4096, k = 4: time <= 0.35x dense, attention memory <= 0.3x dense.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time

HEADS, HEAD_DIM, BLOCK = 12, 64, 64


def _status_kib(field: str) -> int:
    """A memory field of /proc/self/status (VmRSS, VmHWM), KiB."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def _reset_peak() -> bool:
    """Resets the peak RSS (VmHWM) to the current RSS (Linux >= 4.0); False where that is not possible."""
    try:
        with open("/proc/self/clear_refs", "w") as clear_refs:
            clear_refs.write("5")
        return True
    except OSError:
        return False


def _trim() -> None:
    """Returns freed heap memory to the OS, so the next allocations show in the RSS."""
    import ctypes
    import gc

    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def _median_time(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def worker(impl: str, n: int, repeats: int, seed: int, device: str = "cpu") -> dict:
    """One configuration, in this (fresh) process."""
    import resource

    import torch
    import torch.nn.functional as F

    torch.set_num_threads(os.cpu_count() or 1)
    from etk_kernels.layout import random_layout
    from etk_kernels.rsa import RSAFunction, cuda_kernel_available, load_extension, rsa_reference

    cuda = device == "cuda"
    if cuda:
        torch.backends.cuda.matmul.allow_tf32 = False

    nb = n // BLOCK
    scale = HEAD_DIM ** -0.5
    kind, _, kfac = impl.partition("-k")
    layout = None
    if kind in ("rsa", "ref"):
        layout = random_layout(nb, HEADS, int(kfac), torch.Generator().manual_seed(seed))
        kv_blocks = (layout >= 0).sum().item()  # selected key blocks over all (head, query block) rows
        fwd_flops = 4.0 * BLOCK * (kv_blocks * BLOCK) * HEAD_DIM
    else:
        fwd_flops = 4.0 * n * n * HEAD_DIM * HEADS
    if kind == "rsa" and (load_extension() is None or (cuda and not cuda_kernel_available())):
        return {"impl": impl, "n": n, "error": "compiled kernel unavailable"}

    gen = torch.Generator().manual_seed(seed)
    q, k, v = (torch.randn(1, HEADS, n, HEAD_DIM, generator=gen).to(device).requires_grad_() for _ in range(3))
    grad_out = torch.randn(1, HEADS, n, HEAD_DIM, generator=gen).to(device)
    if layout is not None:
        layout = layout.to(device)
    sync = torch.cuda.synchronize if cuda else (lambda: None)

    if kind == "dense":
        def attend():
            return F.scaled_dot_product_attention(q, k, v)
    elif kind == "dense-math":
        def attend():
            return torch.softmax(q @ k.transpose(-1, -2) * scale, dim=-1) @ v
    elif kind == "rsa":
        def attend():
            return RSAFunction.apply(q, k, v, layout, None, BLOCK, scale)
    else:
        def attend():
            return rsa_reference(q, k, v, layout, BLOCK, scale=scale)

    def step():
        attend().backward(grad_out)
        q.grad = k.grad = v.grad = None
        sync()

    def forward_only():
        with torch.no_grad():
            attend()
        sync()

    step()  # warm-up: one-time initialisations (thread pool, kernel caches) stay out of the memory figure
    _trim()
    if cuda:
        torch.cuda.reset_peak_memory_stats()
        allocated_before = torch.cuda.memory_allocated()
        step()
        mem_mib = (torch.cuda.max_memory_allocated() - allocated_before) / 2 ** 20
    elif _reset_peak():
        rss_before = _status_kib("VmRSS")
        step()
        mem_mib = (_status_kib("VmHWM") - rss_before) / 1024
    else:  # no clear_refs: the rise of the lifetime peak (a lower bound)
        rss_before = _status_kib("VmRSS")
        peak_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        step()
        mem_mib = max(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - max(rss_before, peak_before), 0) / 1024
    t_total = _median_time(step, repeats)
    forward_only()
    t_fwd = _median_time(forward_only, repeats)
    return {"impl": impl, "n": n, "time_s": t_total, "fwd_time_s": t_fwd, "mem_mib": mem_mib,
            "gflops": 3.0 * fwd_flops / t_total / 1e9, "fwd_gflops": fwd_flops / t_fwd / 1e9,
            "kv_len": fwd_flops / (4.0 * n * HEAD_DIM * HEADS)}


def matmul_gflops(device: str = "cpu") -> float:
    import torch

    torch.set_num_threads(os.cpu_count() or 1)
    size = 2048 if device == "cpu" else 8192
    a, b = torch.randn(size, size, device=device), torch.randn(size, size, device=device)
    if device == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = False

        def product():
            a @ b
            torch.cuda.synchronize()
    else:
        def product():
            a @ b
    for _ in range(2):
        product()
    return 2.0 * size ** 3 / _median_time(product, 7) / 1e9


def run_config(impl: str, n: int, repeats: int, seed: int, device: str = "cpu") -> dict:
    command = [sys.executable, __file__, "--worker", impl, "--n", str(n), "--repeats", str(repeats),
               "--seed", str(seed), "--device", device]
    # A fixed mmap threshold: glibc then maps every large block afresh (and unmaps it when freed) instead of
    # raising the threshold and recycling freed heap, so the RSS follows what the attention really holds.
    env = dict(os.environ, MALLOC_MMAP_THRESHOLD_="65536")
    done = subprocess.run(command, capture_output=True, text=True, timeout=1800, env=env)
    if done.returncode != 0:
        return {"impl": impl, "n": n, "error": done.stderr.strip().splitlines()[-1:] or ["failed"]}
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="sequence lengths 512 and 1024 only")
    parser.add_argument("--lengths", type=int, nargs="*", help="sequence lengths (multiples of 64)")
    parser.add_argument("--repeats", type=int, default=5, help="timed repeats per configuration (median)")
    parser.add_argument("--no-reference", action="store_true", help="skip rsa_reference")
    parser.add_argument("--no-math", action="store_true", help="skip the materialised dense-math row")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu", help="where the attention runs")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--n", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(args.worker, args.n, args.repeats, args.seed, args.device)))
        return

    import torch
    from etk_kernels.rsa import kernel_status

    status = kernel_status()  # builds the JIT extension once, outside the timed subprocesses
    lengths = args.lengths or ([512, 1024] if args.quick else [1024, 2048, 4096])
    impls = ["dense"] + ([] if args.no_math else ["dense-math"]) + ["rsa-k2", "rsa-k4"]
    if not args.no_reference:
        impls += ["ref-k2", "ref-k4"]
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda: torch sees no CUDA device here")
    mm = matmul_gflops(args.device)
    where = (torch.cuda.get_device_name() if args.device == "cuda"
             else f"{os.cpu_count()} threads, {platform.processor() or ''}")
    print(f"RSA benchmark: batch 1, {HEADS} heads, head dim {HEAD_DIM}, block {BLOCK}, float32, {args.device} "
          f"({where}), torch {torch.__version__}, kernel {status}")
    print(f"fp32 matmul ({'2048' if args.device == 'cpu' else '8192'}^3 torch.mm): {mm:.1f} GFLOP/s")
    header = (f"{'n':>5} {'impl':>10} {'kv_len':>6} {'fwd+bwd ms':>11} {'x dense':>8} {'fwd ms':>8} "
              f"{'x dense':>8} {'mem MiB':>8} {'x dense':>8} {'GFLOP/s':>8} {'% mm':>5}")
    print(header)
    print("-" * len(header))
    results = []
    for n in lengths:
        dense = None
        for impl in impls:
            row = run_config(impl, n, args.repeats, args.seed, args.device)
            results.append(row)
            if "error" in row:
                print(f"{n:>5} {impl:>10}  error: {row['error']}")
                continue
            if impl == "dense":
                dense = row
            if dense:
                row["time_ratio"] = row["time_s"] / dense["time_s"]
                row["fwd_time_ratio"] = row["fwd_time_s"] / dense["fwd_time_s"]
                row["mem_ratio"] = row["mem_mib"] / dense["mem_mib"] if dense["mem_mib"] > 0 else None
            row["pct_of_mm"] = 100.0 * row["gflops"] / mm
            mem_ratio = f"{row['mem_ratio']:.2f}" if row.get("mem_ratio") is not None else "-"
            print(f"{n:>5} {impl:>10} {row['kv_len']:>6.0f} {row['time_s'] * 1e3:>11.1f} "
                  f"{row.get('time_ratio', float('nan')):>8.3f} {row['fwd_time_s'] * 1e3:>8.1f} "
                  f"{row.get('fwd_time_ratio', float('nan')):>8.3f} {row['mem_mib']:>8.1f} {mem_ratio:>8} "
                  f"{row['gflops']:>8.1f} {row['pct_of_mm']:>5.0f}", flush=True)

    goal = next((r for r in results if r["n"] == 4096 and r["impl"] == "rsa-k4" and "error" not in r), None)
    math_row = next((r for r in results if r["n"] == 4096 and r["impl"] == "dense-math" and "error" not in r), None)
    goals = {}
    if goal:
        goals = {"n": 4096, "k": 4, "time_ratio": goal.get("time_ratio"), "time_goal": 0.35,
                 "time_ok": goal.get("time_ratio") is not None and goal["time_ratio"] <= 0.35,
                 "mem_ratio": goal.get("mem_ratio"), "mem_goal": 0.3,
                 "mem_ok": goal.get("mem_ratio") is not None and goal["mem_ratio"] <= 0.3}
        if math_row and math_row["mem_mib"] > 0:
            goals["mem_ratio_vs_dense_math"] = goal["mem_mib"] / math_row["mem_mib"]
        print(f"goal n=4096 k=4: time {goals['time_ratio']:.3f}x dense (goal <= 0.35: "
              f"{'met' if goals['time_ok'] else 'NOT met'}); memory "
              f"{goals['mem_ratio'] if goals['mem_ratio'] is None else round(goals['mem_ratio'], 3)}x dense "
              f"(goal <= 0.3: {'met' if goals['mem_ok'] else 'NOT met'})"
              + (f"; {goals['mem_ratio_vs_dense_math']:.3f}x dense-math" if "mem_ratio_vs_dense_math" in goals
                 else ""))
    print(json.dumps({"benchmark": "rsa", "batch": 1, "heads": HEADS, "head_dim": HEAD_DIM, "block": BLOCK,
                      "dtype": "float32", "device": args.device, "threads": os.cpu_count(), "torch": torch.__version__,
                      "kernel": status, "matmul_gflops": mm, "repeats": args.repeats, "results": results,
                      "goals": goals}))


if __name__ == "__main__":
    main()
