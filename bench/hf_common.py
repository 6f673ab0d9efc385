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


def score(model, requests, batch_size, keep=None):
    """Each request's continuation log-likelihood (summed) and whether it is greedy. With `keep`, the
    LM head runs only on each batch's last `keep` positions (rows must then end there)."""
    rows = []
    for i, r in enumerate(requests):
        whole = r["context"] + r["continuation"]
        rows.append((i, whole[:-1], whole[1:], len(r["continuation"])))
    rows.sort(key=lambda row: (-len(row[1]), row[0]))
    out = [None] * len(requests)
    with torch.inference_mode():
        for start in range(0, len(rows), batch_size):
            chunk = rows[start : start + batch_size]
            seq = len(chunk[0][1])
            ids = torch.zeros(len(chunk), seq, dtype=torch.long)
            for b, row in enumerate(chunk):
                ids[b, : len(row[1])] = torch.tensor(row[1])
            if keep is None:
                logits, offset = model(input_ids=ids).logits, 0
            else:
                logits, offset = model(input_ids=ids, logits_to_keep=keep).logits, seq - keep
            for b, (index, inputs, targets, n) in enumerate(chunk):
                length = len(inputs)
                part = logits[b, length - n - offset : length - offset].float().log_softmax(-1)
                target = torch.tensor(targets[length - n : length])
                logprob = part.gather(-1, target[:, None])[:, 0]
                greedy = bool((part.argmax(-1) == target).all())
                out[index] = (float(logprob.sum()), greedy)
    return out
