"""Shared by the Hugging Face baseline scripts of bench/."""
import time

import torch


def matmul_peak(runs=7, n=2048):
    """Best float32 GFLOP/s of an n x n product, as bench/common.ts's matmulPeak measures ours."""
    a = torch.randn(n, n)
    b = torch.randn(n, n)
    best = float("inf")
    for _ in range(runs + 2):
        t0 = time.perf_counter()
        torch.mm(a, b)
        best = min(best, time.perf_counter() - t0)
    return 2 * n**3 / best / 1e9


def median(values):
    return sorted(values)[len(values) // 2]
