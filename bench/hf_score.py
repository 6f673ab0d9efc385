"""Side-by-side baseline for `npm run bench:eval`: Hugging Face transformers' GPTNeoXForCausalLM on
PyTorch scores the same (context, continuation) token requests as pythia-ts, the same way: requests
sorted by length, right-padded batches, log-softmax of each continuation position, summed, plus
whether each continuation token is the argmax. Prints one JSON line with items/s and the fp32 matmul
peak (best of several 2048x2048 products) measured in the same run.

usage: hf_score.py <dir with model/ and requests.json> <threads> <batch size> <runs>
"""
import json
import os
import sys
import time

import torch
from transformers import GPTNeoXForCausalLM

from hf_common import matmul_peak, median, score


def main():
    folder, threads, batch_size, runs = sys.argv[1:5]
    torch.set_num_threads(int(threads))
    with open(os.path.join(folder, "requests.json")) as f:
        spec = json.load(f)
    model = GPTNeoXForCausalLM.from_pretrained(os.path.join(folder, "model"), torch_dtype=torch.float32).eval()
    requests = spec["requests"]
    score(model, requests[: int(batch_size)], int(batch_size))  # warm-up
    times = []
    for _ in range(int(runs)):
        t0 = time.perf_counter()
        results = score(model, requests, int(batch_size))
        times.append(time.perf_counter() - t0)
    seconds = median(times)
    print(json.dumps({
        "items_per_s": spec["items"] / seconds,
        "seconds": seconds,
        "first_logprobs": [r[0] for r in results[:8]],
        "torch": torch.__version__,
        "matmul_gflops": matmul_peak(),
    }))


main()
