"""Loads a checkpoint folder with Hugging Face transformers and writes its logits for token rows.

usage: hf_load.py <checkpoint folder> <tokens.json> <out.safetensors>
Run by test/interop/hf-load.test.ts when PYTHIA_HF_PYTHON names a Python with torch and transformers.
"""
import json
import sys

import torch
from safetensors.torch import save_file
from transformers import GPTNeoXForCausalLM

folder, tokens_path, out_path = sys.argv[1:4]
model = GPTNeoXForCausalLM.from_pretrained(folder, dtype=torch.float32).eval()
with open(tokens_path) as f:
    ids = torch.tensor(json.load(f), dtype=torch.int64)
with torch.no_grad():
    logits = model(ids).logits
save_file({'logits': logits.contiguous()}, out_path)
