"""The logit lens computed from Hugging Face transformers' own tensors, with the definitions of issue #24.

usage: hf_lens.py <checkpoint folder> <tokens.json>
Prints a JSON list, one object per layer: {layer, kl, ce, entropy, top1}.
Run by test/interop/hf-lens.test.ts when PYTHIA_HF_PYTHON names a Python with torch and transformers.

  layer l < L   hidden_states[l] (the residual entering block l)
  layer L       the last block's output, before the final LayerNorm (a forward hook: HF's last
                hidden_states entry is after it)
  lens          log_softmax(unembed(final_layer_norm(residual))), unembed = get_output_embeddings()
  final         log_softmax(logits), the model's own output
Per layer, averaged over every position that has a next token: KL(final || lens), the
cross-entropy against the next token, the lens's entropy, and how often the lens's top token is
the final one. Log-probabilities in float64 from the float32 model.
"""
import json
import sys

import torch
from transformers import GPTNeoXForCausalLM

folder, tokens_path = sys.argv[1:3]
model = GPTNeoXForCausalLM.from_pretrained(folder, dtype=torch.float32).eval()
with open(tokens_path) as f:
    ids = torch.tensor(json.load(f), dtype=torch.int64)

captured = {}
model.gpt_neox.layers[-1].register_forward_hook(
    lambda module, args, output: captured.__setitem__('last', output[0] if isinstance(output, tuple) else output)
)
with torch.no_grad():
    out = model(ids, output_hidden_states=True)
    L = model.config.num_hidden_layers
    residuals = list(out.hidden_states[:L]) + [captured['last']]
    final = out.logits[:, :-1].double().log_softmax(-1)
    p_final = final.exp()
    labels = ids[:, 1:]
    layers = []
    for layer, h in enumerate(residuals):
        lens = model.get_output_embeddings()(model.gpt_neox.final_layer_norm(h))[:, :-1].double().log_softmax(-1)
        layers.append({
            'layer': layer,
            'kl': (p_final * (final - lens)).sum(-1).mean().item(),
            'ce': -lens.gather(-1, labels.unsqueeze(-1)).mean().item(),
            'entropy': -(lens.exp() * lens).sum(-1).mean().item(),
            'top1': (lens.argmax(-1) == final.argmax(-1)).double().mean().item(),
        })
print(json.dumps(layers))
