"""Head detector scores, the induction loss and the in-context-learning losses of a checkpoint folder in Hugging Face transformers, with TransformerLens's definitions in PyTorch.

usage: hf_heads.py <checkpoint folder> <input.json> <out.json>
Run by test/interop/hf-heads.test.ts when PYTHIA_HF_PYTHON names a Python with torch and transformers.

input.json: {"heads": [[ids...], ...] (rows of any lengths), "repeated": [[ids...], ...] (rows of 2·p tokens),
             "icl": [[ids...], ...], "early": int, "late": int}
out.json:   {"scores": [layer][head][previous, duplicate, induction], "induction_loss": float,
             "early_loss": float, "late_loss": float}

The detection patterns and the "mul" score are transformer_lens/head_detector.py's, the induction loss
transformer_lens/evals.py's induction_loss after its repeated tokens are made (no BOS: default_prepend_bos is
False for GPT-NeoX), with utils.lm_cross_entropy_loss(per_token=True); attention patterns are HF's eager
output_attentions.
"""
import json
import sys

import numpy as np
import torch
import torch.nn.functional as F
from transformers import GPTNeoXForCausalLM


# transformer_lens/head_detector.py
def get_previous_token_head_detection_pattern(tokens):
    detection_pattern = torch.zeros(tokens.shape[-1], tokens.shape[-1])
    detection_pattern[1:, :-1] = torch.eye(tokens.shape[-1] - 1)
    return torch.tril(detection_pattern)


def get_duplicate_token_head_detection_pattern(tokens):
    token_pattern = tokens.repeat(tokens.shape[-1], 1).numpy()
    eq_mask = np.equal(token_pattern, token_pattern.T).astype(int)
    np.fill_diagonal(eq_mask, 0)
    detection_pattern = eq_mask.astype(int)
    return torch.tril(torch.as_tensor(detection_pattern).float())


def get_induction_head_detection_pattern(tokens):
    duplicate_pattern = get_duplicate_token_head_detection_pattern(tokens)
    shifted_tensor = torch.roll(duplicate_pattern, shifts=1, dims=1)
    zeros_column = torch.zeros(duplicate_pattern.shape[0], 1)
    result_tensor = torch.cat((zeros_column, shifted_tensor[:, 1:]), dim=1)
    return torch.tril(result_tensor)


def mul_score(attention_pattern, detection_pattern):
    score = attention_pattern * detection_pattern
    return (score.sum() / attention_pattern.sum()).item()


# transformer_lens/utilities/lm_utils.py
def lm_cross_entropy_loss(logits, tokens):
    log_probs = F.log_softmax(logits, dim=-1)
    predicted_log_probs = log_probs[..., :-1, :].gather(dim=-1, index=tokens[..., 1:, None])[..., 0]
    return -predicted_log_probs


folder, input_path, out_path = sys.argv[1:4]
model = GPTNeoXForCausalLM.from_pretrained(folder, dtype=torch.float32, attn_implementation='eager').eval()
config = model.config
with open(input_path) as f:
    given = json.load(f)

detectors = [
    get_previous_token_head_detection_pattern,
    get_duplicate_token_head_detection_pattern,
    get_induction_head_detection_pattern,
]
L, H = config.num_hidden_layers, config.num_attention_heads
# detect_head on a list: each sequence scored alone, torch.stack(...).mean(0).
per_sequence = []
with torch.no_grad():
    for row in given['heads']:
        tokens = torch.tensor([row], dtype=torch.int64)
        attentions = model(tokens, output_attentions=True).attentions
        patterns = [d(tokens.cpu()) for d in detectors]
        per_sequence.append(torch.tensor(
            [[[mul_score(attentions[l][0, h], p) for p in patterns] for h in range(H)] for l in range(L)],
            dtype=torch.float64,
        ))
    scores = torch.stack(per_sequence).mean(0)

    repeated_tokens = torch.tensor(given['repeated'], dtype=torch.int64)
    subseq_len = repeated_tokens.shape[1] // 2
    logits = model(repeated_tokens).logits
    correct_log_probs = lm_cross_entropy_loss(logits, repeated_tokens)
    induction_loss = correct_log_probs[:, subseq_len + 1:].mean().item()

    icl_tokens = torch.tensor(given['icl'], dtype=torch.int64)
    losses = lm_cross_entropy_loss(model(icl_tokens).logits, icl_tokens)
    # losses[:, k] is the loss of token k + 1.
    early_loss = losses[:, given['early'] - 1].mean().item()
    late_loss = losses[:, given['late'] - 1].mean().item()

with open(out_path, 'w') as f:
    json.dump({'scores': scores.tolist(), 'induction_loss': induction_loss, 'early_loss': early_loss,
               'late_loss': late_loss}, f)
