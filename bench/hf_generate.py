"""Side-by-side baseline for `npm run bench:generate`: Hugging Face transformers'
GPTNeoXForCausalLM.generate (greedy, its KV cache, no stopping at EOS) on the same checkpoint and
prompts as pythia-ts. For each batch of prompts: one warm-up, then the median of several timed runs.
Prints one JSON line with the seconds and generated tokens of each batch, and the fp32 matmul peak
measured in the same run.

usage: hf_generate.py <dir with model/ and prompts.json> <threads> <new tokens> <runs>
"""
import json
import os
import sys
import time

import torch
import transformers
from transformers import GPTNeoXForCausalLM

from hf_common import matmul_peak, median


def main():
    folder, threads, new_tokens, runs = sys.argv[1:5]
    new_tokens, runs = int(new_tokens), int(runs)
    torch.set_num_threads(int(threads))
    with open(os.path.join(folder, "prompts.json")) as f:
        batches = json.load(f)
    model = GPTNeoXForCausalLM.from_pretrained(os.path.join(folder, "model"), dtype=torch.float32).eval()
    model.generation_config.eos_token_id = None
    results = []
    for prompts in batches:
        ids = torch.tensor(prompts)

        def once():
            with torch.inference_mode():
                return model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=new_tokens,
                                      do_sample=False, use_cache=True, pad_token_id=1)

        once()
        times = []
        for _ in range(runs):
            t0 = time.perf_counter()
            out = once()
            times.append(time.perf_counter() - t0)
        assert out.shape == (len(prompts), len(prompts[0]) + new_tokens), out.shape
        results.append({"batch": len(prompts), "seconds": median(times), "tokens": out[:, ids.shape[1]:].tolist()})
    print(json.dumps({
        "results": results,
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "matmul_gflops": matmul_peak(),
    }))


main()
