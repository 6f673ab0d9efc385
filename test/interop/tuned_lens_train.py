"""Trains a tuned lens with tuned-lens's own recipe in PyTorch and writes its translators.

usage: tuned_lens_train.py <checkpoint folder> <tokens.json> <steps> <out.safetensors> [<clip norm, default 1>]
Run by test/interop/hf-tuned-lens.test.ts when PYTHIA_HF_PYTHON names a Python with torch and transformers.

As AlignmentResearch/tuned-lens (tuned_lens/nn/lenses.py, scripts/train_loop.py, scripts/ingredients.py)
does it, in float32 and with every row of tokens.json in each step (one batch; tuned-lens's
per-row batches with gradient accumulation give the same mean): zero-initialised
torch.nn.Linear(d, d) translators added to hidden_states[i] (i < L), the model's final LayerNorm and
unembedding, loss = Σ_i mean over positions of KL(final ‖ lens), clip_grad_norm_(1.0),
SGD(lr = 1 × (1 − 0.9), momentum 0.9, nesterov, weight_decay 1e-3), get_linear_schedule_with_warmup(0, steps).
"""
import json
import sys

import torch
from safetensors.torch import save_file
from transformers import GPTNeoXForCausalLM, get_linear_schedule_with_warmup

folder, tokens_path, steps, out_path = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
clip = float(sys.argv[5]) if len(sys.argv) > 5 else 1.0
torch.manual_seed(0)
model = GPTNeoXForCausalLM.from_pretrained(folder, dtype=torch.float32).eval()
model.requires_grad_(False)
with open(tokens_path) as f:
    ids = torch.tensor(json.load(f), dtype=torch.int64)
d = model.config.hidden_size
translators = torch.nn.ModuleList([torch.nn.Linear(d, d) for _ in range(model.config.num_hidden_layers)])
for t in translators:
    t.weight.data.zero_()
    t.bias.data.zero_()
momentum = 0.9
opt = torch.optim.SGD(translators.parameters(), lr=1.0 * (1 - momentum), momentum=momentum, nesterov=True, weight_decay=1e-3)
scheduler = get_linear_schedule_with_warmup(opt, 0, steps)
with torch.no_grad():
    output = model(input_ids=ids, output_hidden_states=True)
labels = output.logits.float().log_softmax(dim=-1)
hidden = output.hidden_states[:-1]
final_norm, unembed = model.gpt_neox.final_layer_norm, model.get_output_embeddings()
for _ in range(steps):
    for i, h in enumerate(hidden):
        logits = unembed(final_norm(h + translators[i](h)))
        loss = torch.sum(labels.exp() * (labels - logits.log_softmax(-1)), dim=-1).mean()
        loss.backward()
    torch.nn.utils.clip_grad_norm_(translators.parameters(), clip)
    opt.step()
    opt.zero_grad(set_to_none=False)
    scheduler.step()
save_file({k: v.detach().contiguous() for k, v in translators.state_dict().items()}, out_path)
