"""Best float32 GFLOP/s of a 2048 x 2048 product through numpy and PyTorch, as bench/common.ts's
matmulPeak measures onnxruntime's: python matmul_peak.py THREADS prints one JSON line
{"numpy": ..., "torch": ...}, leaving out a library that is not installed."""
import json
import os
import sys
import time

threads = sys.argv[1]
for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[var] = threads


def best_gflops(product, a, b, n, runs=7):
    best = float("inf")
    for _ in range(runs + 2):
        t0 = time.perf_counter()
        product(a, b)
        best = min(best, time.perf_counter() - t0)
    return 2 * n**3 / best / 1e9


n = 2048
peaks = {}
try:
    import numpy

    a = numpy.random.default_rng(3).random((n, n), dtype=numpy.float32) - 0.5
    peaks["numpy"] = best_gflops(numpy.matmul, a, a, n)
except ImportError:
    pass
try:
    import torch

    torch.set_num_threads(int(threads))
    t = torch.rand(n, n) - 0.5
    peaks["torch"] = best_gflops(torch.mm, t, t, n)
except ImportError:
    pass
print(json.dumps(peaks))
