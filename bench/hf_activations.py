"""Side-by-side baseline for `npm run bench:activations`: Hugging Face transformers' GPTNeoXForCausalLM
(eager attention) on PyTorch, one forward pass with output_hidden_states and output_attentions, as a
TransformerLens-style cache is filled from transformers. Prints one JSON line with the median seconds
and the fp32 matmul peak (best of several 2048x2048 products) measured in the same run.

usage: hf_activations.py <dir with model/ and tokens.json> <threads> <runs>
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
    folder, threads, runs = sys.argv[1:4]
    torch.set_num_threads(int(threads))
    with open(os.path.join(folder, "tokens.json")) as f:
        ids = torch.tensor(json.load(f), dtype=torch.long)
    model = GPTNeoXForCausalLM.from_pretrained(
        os.path.join(folder, "model"), dtype=torch.float32, attn_implementation="eager"
    ).eval()

    def run():
        with torch.inference_mode():
            return model(input_ids=ids, output_hidden_states=True, output_attentions=True)

    run()  # warm-up
    times = []
    for _ in range(int(runs)):
        t0 = time.perf_counter()
        out = run()
        times.append(time.perf_counter() - t0)
    print(json.dumps({
        "seconds": median(times),
        "hidden_states": len(out.hidden_states),
        "attentions": len(out.attentions),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "matmul_gflops": matmul_peak(),
    }))


main()
