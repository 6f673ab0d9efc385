"""Hugging Face baseline for `npm run bench:big`: transformers' GPTNeoXForCausalLM scores the same
requests as pythia-ts (log-likelihood of each 16-token continuation, the LM head on the last 16
positions only), in one of three ways:

  float32   the whole model in float32 memory;
  bfloat16  the whole model in bfloat16, computed in bfloat16;
  offload   bfloat16 with accelerate's disk offload: at most <max GiB> of weights in memory, the
            rest read from <offload dir> as each layer runs.

Prints one JSON line: load and scoring seconds, peak RSS, each request's log-likelihood, the torch
version and the float32 matmul peak measured in the same process.

usage: hf_big.py <checkpoint dir> <requests.json> <threads> <batch size> <float32|bfloat16|offload> [max GiB] [offload dir]
"""
import json
import resource
import sys
import time

import torch
from transformers import GPTNeoXForCausalLM

from hf_common import matmul_peak, score


def load(folder, mode, max_gib, offload_dir):
    if mode == "float32":
        return GPTNeoXForCausalLM.from_pretrained(folder, torch_dtype=torch.float32)
    if mode == "bfloat16":
        return GPTNeoXForCausalLM.from_pretrained(folder, torch_dtype=torch.bfloat16)
    return GPTNeoXForCausalLM.from_pretrained(
        folder,
        torch_dtype=torch.bfloat16,
        device_map="auto",
        max_memory={"cpu": f"{max_gib}GiB"},
        offload_folder=offload_dir,
        offload_state_dict=True,
    )


def main():
    folder, requests_path, threads, batch_size, mode = sys.argv[1:6]
    max_gib = sys.argv[6] if len(sys.argv) > 6 else None
    offload_dir = sys.argv[7] if len(sys.argv) > 7 else None
    torch.set_num_threads(int(threads))
    with open(requests_path) as f:
        requests = json.load(f)
    t0 = time.perf_counter()
    model = load(folder, mode, max_gib, offload_dir).eval()
    load_seconds = time.perf_counter() - t0
    t0 = time.perf_counter()
    results = score(model, requests, int(batch_size), keep=len(requests[0]["continuation"]))
    score_seconds = time.perf_counter() - t0
    print(json.dumps({
        "loadSeconds": load_seconds,
        "scoreSeconds": score_seconds,
        "maxRss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
        "logprobs": [r[0] for r in results],
        "torch": torch.__version__,
        "matmulGflops": matmul_peak(),
    }))


main()
