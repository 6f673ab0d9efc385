"""Loads GPT-NeoX configs with GPT-NeoX's own argument parser and prints what it derives, as JSON.

usage: python neox_v1_args.py <gpt-neox checkout at v1.0> <global_num_gpus> <config.yml>...

Only megatron/neox_arguments is imported from the checkout. The modules it imports for training
(torch, deepspeed, shortuuid and a few megatron helpers) are replaced by small stand-ins, which is
enough for NeoXArgs.from_ymls: it validates the keys, derives the batch, precision and checkpoint
steps, and checks types and values. Prints one JSON object per config file, in order.
"""
import importlib
import json
import sys
import types


def stub(name, **attrs):
    module = types.ModuleType(name)
    module.__dict__.update(attrs)
    sys.modules[name] = module
    return module


def expand_attention_types(config, num_layers):
    # [[["flash"], 6]] -> ["flash"] * 6, as the attention-config key is written.
    out = []
    for kinds, count in config:
        for i in range(count):
            out.append(kinds[i % len(kinds)])
    assert len(out) == num_layers, f"attention-config covers {len(out)} layers, not {num_layers}"
    return out


def install_stubs(checkout):
    cuda = types.SimpleNamespace(device_count=lambda: 0)
    distributed = types.SimpleNamespace(is_initialized=lambda: False)
    stub("torch", cuda=cuda, distributed=distributed, half="float16", bfloat16="bfloat16", float="float32")
    stub("shortuuid", uuid=lambda: "stub")
    stub("deepspeed")
    stub("deepspeed.launcher")
    stub("deepspeed.launcher.runner", DLTS_HOSTFILE="/nonexistent/hostfile")
    megatron = stub("megatron")
    megatron.__path__ = [f"{checkout}/megatron"]
    stub("megatron.logging", Tee=object)
    stub("megatron.tokenizer", build_tokenizer=lambda args: None)
    stub("megatron.utils", obtain_resource_pool=lambda *a: {}, expand_attention_types=expand_attention_types)


DERIVED = [
    "num_layers", "hidden_size", "num_attention_heads", "seq_length", "max_position_embeddings",
    "pos_emb", "rotary_pct", "rotary_emb_base", "gpt_j_residual", "no_weight_tying", "norm", "activation",
    "init_method", "output_layer_init_method", "init_method_std", "lr", "min_lr", "optimizer",
    "train_iters", "lr_decay_iters", "lr_decay_style", "warmup", "weight_decay", "gradient_clipping",
    "train_batch_size", "train_micro_batch_size_per_gpu", "gradient_accumulation_steps",
    "model_parallel_size", "precision", "zero_stage", "save_iters", "eval_interval", "eval_iters",
    "seed", "make_vocab_size_divisible_by", "hidden_dropout", "attention_dropout",
]


def main():
    checkout, gpus, files = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
    install_stubs(checkout)
    NeoXArgs = importlib.import_module("megatron.neox_arguments").NeoXArgs
    for path in files:
        args = NeoXArgs.from_ymls([path], overwrite_values={"global_num_gpus": gpus})
        print(json.dumps({key: getattr(args, key) for key in DERIVED}))


if __name__ == "__main__":
    main()
