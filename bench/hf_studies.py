"""Side-by-side baseline for `npm run bench:studies`: the six interpretability studies computed in
PyTorch from Hugging Face transformers' GPTNeoXForCausalLM (eager attention, output_hidden_states and
output_attentions), loaded from the checkpoint folder the bench wrote, by the definitions of
docs/analyses.md. Prints one JSON line: each study's seconds, its numbers (which the bench compares
with ours), the weights' sha256 and the fp32 matmul peak measured in the same run.

usage: hf_studies.py <dir with model/, previous/, held.bin, translator.f32, repeated.json, settings.json>
"""
import hashlib
import json
import os
import re
import struct
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F
import transformers
from transformers import GPTNeoXForCausalLM

from hf_common import matmul_peak


def load(folder):
    return GPTNeoXForCausalLM.from_pretrained(folder, dtype=torch.float32, attn_implementation="eager").eval()


def lens_logp(model, resid):
    """log_softmax(unembed(final_layer_norm(resid)))."""
    return F.log_softmax(model.get_output_embeddings()(model.gpt_neox.final_layer_norm(resid)), dim=-1)


def lens_metrics(model, ids, translate=None):
    """Per layer 0…L: mean KL(final ‖ lens), cross-entropy, entropy and top-1 agreement over rows `ids`."""
    L = model.config.num_hidden_layers
    sums = torch.zeros(4, L + 1, dtype=torch.float64)
    count = 0
    for row in ids:
        x = row[None, :-1]
        out = model(input_ids=x, output_hidden_states=True)
        final = F.log_softmax(out.logits[0], dim=-1)
        p_final = final.exp()
        final_top = final.argmax(-1)
        targets = row[1:]
        for layer in range(L + 1):
            if layer == L:
                q = final
            else:
                h = out.hidden_states[layer][0]  # blocks.ℓ.hook_resid_pre; the last entry is after the final LayerNorm
                q = lens_logp(model, translate(layer, h) if translate else h)
            sums[0, layer] += (p_final * (final - q)).sum().double()
            sums[1, layer] -= q.gather(1, targets[:, None]).sum().double()
            sums[2, layer] -= (q.exp() * q).sum().double()
            sums[3, layer] += (q.argmax(-1) == final_top).sum().double()
        count += x.shape[1]
    means = (sums / count).tolist()
    return dict(zip(["kl", "ce", "entropy", "top1"], means))


def train_lens(model, row, train):
    """tuned-lens's recipe on one row (every step reads it): SGD, Nesterov momentum, weight decay, linear decay, clipping."""
    L, H = model.config.num_hidden_layers, model.config.hidden_size
    weights = [torch.zeros(H, H, requires_grad=True) for _ in range(L)]
    biases = [torch.zeros(H, requires_grad=True) for _ in range(L)]
    params = weights + biases
    buffers = [torch.zeros_like(p) for p in params]
    losses = []
    model.requires_grad_(False)  # only the translators train
    x = row[None, : min(len(row), model.config.max_position_embeddings)]
    for step in range(train["steps"]):
        with torch.no_grad():
            out = model(input_ids=x, output_hidden_states=True)
            target = F.log_softmax(out.logits[0], dim=-1)
            p_target = target.exp()
        n = x.shape[1]
        total = 0.0
        for layer in range(L):
            h = out.hidden_states[layer][0]
            logp = lens_logp(model, h + F.linear(h, weights[layer], biases[layer]))
            loss = (p_target * (target - logp)).sum() / n
            loss.backward()
            total += loss.item()
        with torch.no_grad():
            norm = torch.sqrt(sum((p.grad.double() ** 2).sum() for p in params)).item()
            clip = min(1.0, train["clipNorm"] / (norm + 1e-6))
            lr = train["lr"] * (1 - train["momentum"]) * (train["steps"] - step) / train["steps"]
            for p, buf in zip(params, buffers):
                d = clip * p.grad + train["weightDecay"] * p
                if step == 0:
                    buf.copy_(d)
                else:
                    buf.mul_(train["momentum"]).add_(d)
                p.sub_(lr * (d + train["momentum"] * buf))
                p.grad = None
        losses.append(total / L)
    return losses


def detection_patterns(tokens):
    """TransformerLens's previous-token, duplicate-token and induction detection patterns, [T, T]."""
    T = len(tokens)
    i = torch.arange(T)[:, None]
    j = torch.arange(T)[None, :]
    previous = (j == i - 1).float()
    same = tokens[None, :] == tokens[:, None]
    duplicate = (same & (j < i)).float()
    shifted = torch.zeros(T, T, dtype=torch.bool)
    shifted[:, 1:] = same[:, :-1]  # token j−1 equals token i
    induction = (shifted & (j <= i)).float()
    return [previous, duplicate, induction]


def head_scores(model, rows):
    L, heads = model.config.num_hidden_layers, model.config.num_attention_heads
    sums = torch.zeros(3, L, heads, dtype=torch.float64)
    for row in rows:
        out = model(input_ids=row[None], output_attentions=True)
        detections = detection_patterns(row)
        for layer, pattern in enumerate(out.attentions):
            p = pattern[0]
            for k, d in enumerate(detections):
                sums[k, layer] += ((p * d).sum((-1, -2)) / p.sum((-1, -2))).double()
    return (sums / len(rows)).reshape(3, -1).tolist()


def token_losses_of(model, row):
    """−log p(token t | tokens before it) for t = 1…len−1."""
    logits = model(input_ids=row[None, :-1]).logits[0]
    return F.cross_entropy(logits, row[1:], reduction="none")


def our_name(name):
    """The checkpoint's name of a parameter: transformers 5 calls embed_out lm_head."""
    return "embed_out." + name[len("lm_head."):] if name.startswith("lm_head.") else name


def group_of(name):
    """weight-stats.ts's parameterGroup."""
    for prefix, group in [("gpt_neox.embed_in.", "embed_in"), ("gpt_neox.final_layer_norm.", "final_layer_norm"), ("embed_out.", "embed_out")]:
        if name.startswith(prefix):
            return group
    i, part = re.match(r"^gpt_neox\.layers\.(\d+)\.([a-z_]+)\.", name).groups()
    return f"layers.{i}.{part}" if part in ("attention", "mlp") else f"layers.{i}.layer_norms"


def weight_stats(model, previous):
    """Per group (in weight-stats.ts's order, then all): norm, relative change and cosine, float64 sums."""
    L = model.config.num_hidden_layers
    groups = ["embed_in", *[f"layers.{i}.{p}" for i in range(L) for p in ("attention", "mlp", "layer_norms")], "final_layer_norm", "embed_out", "all"]
    sums = {g: torch.zeros(4, dtype=torch.float64) for g in groups}
    prev = dict(previous.named_parameters())
    for name, w in model.named_parameters():
        a, b = w.double(), prev[name].double()
        s = torch.stack([(a * a).sum(), (b * b).sum(), (a * b).sum(), ((a - b) ** 2).sum()])
        sums[group_of(our_name(name))] += s
        sums["all"] += s
    norm, rel, cos = [], [], []
    for g in groups:
        squares, prev_squares, dot, diff = sums[g].tolist()
        norm.append(squares**0.5)
        rel.append(diff**0.5 / prev_squares**0.5)
        cos.append(dot / (squares**0.5 * prev_squares**0.5))
    return norm, rel, cos


def weights_sha256(model):
    """weight-stats.ts's weightsSha256: per parameter by name, name, NUL, uint64 LE count, float32 LE values."""
    h = hashlib.sha256()
    named = sorted((our_name(n), w) for n, w in model.named_parameters())  # ASCII names: code-unit order
    for name, w in named:
        values = w.detach().contiguous().numpy().astype("<f4")
        h.update(name.encode() + b"\0" + struct.pack("<Q", values.size))
        h.update(values.tobytes())
    return h.hexdigest()


def main():
    folder = sys.argv[1]
    with open(os.path.join(folder, "settings.json")) as f:
        settings = json.load(f)
    torch.set_num_threads(settings["threads"])
    rows, length = settings["rows"], settings["length"]
    model = load(os.path.join(folder, "model"))
    previous = load(os.path.join(folder, "previous"))
    L, H = model.config.num_hidden_layers, model.config.hidden_size
    tokens = np.fromfile(os.path.join(folder, "held.bin"), dtype="<u2")[: rows * length]
    ids = torch.from_numpy(tokens.astype(np.int64)).reshape(rows, length)
    lens = torch.from_numpy(np.fromfile(os.path.join(folder, "translator.f32"), dtype="<f4"))
    A = lens[: L * H * H].reshape(L, H, H)
    b = lens[L * H * H :].reshape(L, H)
    with open(os.path.join(folder, "repeated.json")) as f:
        repeated = [torch.tensor(r, dtype=torch.long) for r in json.load(f)]

    times, results = {}, {}

    def timed(study, fn):
        t0 = time.perf_counter()
        fn()
        times[study] = time.perf_counter() - t0
        print(f"  PyTorch: {study} {times[study]:.1f} s", file=sys.stderr, flush=True)

    def logit():
        with torch.inference_mode():
            for k, v in lens_metrics(model, ids).items():
                results[f"logit.{k}"] = v

    def tuned():
        with torch.inference_mode():
            for k, v in lens_metrics(model, ids, lambda layer, h: h + F.linear(h, A[layer], b[layer])).items():
                results[f"tuned.{k}"] = v

    def training():
        results["train.losses"] = train_lens(model, ids[0], settings["train"])

    def heads():
        with torch.inference_mode():
            s = head_scores(model, repeated)
        results["heads.previous_token"], results["heads.duplicate_token"], results["heads.induction"] = s

    def icl():
        early, late = settings["early"], settings["late"]
        with torch.inference_mode():
            induction = []
            for row in repeated:
                half = len(row) // 2
                induction.append(token_losses_of(model, row)[half + 1 :])
            results["icl.induction_loss"] = [torch.cat(induction).double().mean().item()]
            total = torch.zeros(2, dtype=torch.float64)
            for row in ids:
                logits = model(input_ids=row[None, :late]).logits[0]
                logp = F.log_softmax(logits[[early - 1, late - 1]], dim=-1)
                total -= logp.gather(1, row[[early, late]][:, None])[:, 0].double()
            results["icl.early_late"] = (total / rows).tolist()

    def token_losses():
        with torch.inference_mode():
            results["token_losses"] = torch.cat([token_losses_of(model, row) for row in ids]).tolist()

    sha = {}

    def weights():
        with torch.inference_mode():
            results["weights.norm"], results["weights.relative_change"], results["weights.cosine"] = weight_stats(model, previous)
            sha["model"] = weights_sha256(model)

    timed("logit lens", logit)
    timed("tuned lens, evaluation", tuned)
    timed("tuned lens, training", training)
    timed("head detectors", heads)
    timed("induction loss + ICL score", icl)
    timed("per-token losses", token_losses)
    timed("weight stats + hash", weights)
    print(json.dumps({
        "times": times,
        "results": results,
        "sha256": sha["model"],
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "matmul_gflops": matmul_peak(),
    }))


main()
