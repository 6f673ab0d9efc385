"""Runs a checkpoint folder in Hugging Face transformers and writes its activations under TransformerLens's names.

usage: hf_activations.py <checkpoint folder> <tokens.json> <out.safetensors>
Run by test/interop/hf-activations.test.ts when PYTHIA_HF_PYTHON names a Python with torch and transformers.

  blocks.{i}.hook_resid_pre    hidden_states[i] (output_hidden_states; HF's last entry is after the final LayerNorm)
  blocks.{i}.attn.hook_pattern attentions[i] (output_attentions, eager attention)
  blocks.{i}.hook_attn_out     forward hook on layers[i].attention (its first output: dense, bias included)
  blocks.{i}.hook_mlp_out      forward hook on layers[i].mlp
  blocks.{i}.mlp.hook_post     forward hook on layers[i].mlp.act
  blocks.{i}.hook_resid_post   forward hook on layers[i]
  blocks.{i}.attn.hook_z       forward pre-hook on layers[i].attention.dense (its input), as [batch, pos, head, d_head]
"""
import json
import sys

import torch
from safetensors.torch import save_file
from transformers import GPTNeoXForCausalLM

folder, tokens_path, out_path = sys.argv[1:4]
model = GPTNeoXForCausalLM.from_pretrained(folder, dtype=torch.float32, attn_implementation='eager').eval()
config = model.config
heads = config.num_attention_heads
head_dim = config.hidden_size // heads
with open(tokens_path) as f:
    ids = torch.tensor(json.load(f), dtype=torch.int64)

captured = {}


def first(output):
    return output[0] if isinstance(output, tuple) else output


def keep(name):
    def hook(module, args, output):
        captured[name] = first(output).detach().clone()
    return hook


def keep_input(name):
    def hook(module, args):
        x = args[0].detach().clone()
        captured[name] = x.reshape(*x.shape[:-1], heads, head_dim)
    return hook


for i, layer in enumerate(model.gpt_neox.layers):
    layer.attention.register_forward_hook(keep(f'blocks.{i}.hook_attn_out'))
    layer.mlp.register_forward_hook(keep(f'blocks.{i}.hook_mlp_out'))
    layer.mlp.act.register_forward_hook(keep(f'blocks.{i}.mlp.hook_post'))
    layer.register_forward_hook(keep(f'blocks.{i}.hook_resid_post'))
    layer.attention.dense.register_forward_pre_hook(keep_input(f'blocks.{i}.attn.hook_z'))

with torch.no_grad():
    out = model(ids, output_hidden_states=True, output_attentions=True)
for i in range(config.num_hidden_layers):
    captured[f'blocks.{i}.hook_resid_pre'] = out.hidden_states[i]
    captured[f'blocks.{i}.attn.hook_pattern'] = out.attentions[i]
save_file({k: v.contiguous() for k, v in captured.items()}, out_path)
