"""Baseline for `npm run bench:harness`: lm-evaluation-harness (`lm_eval --model hf`, float32, CPU)
evaluates the bench's tasks on the bench's checkpoint at each batch size given, through the same
code its command line runs (HFLM + simple_evaluate), the model loaded once. A warm-up run of two
documents a task first (lm-eval's datasets prepared, torch's kernels loaded). Prints one JSON line:
seconds and per-task acc/acc_norm for each batch size, the model's load time, and the fp32 matmul
peak measured in the same run.

usage: harness_lm_eval.py <checkpoint> <include dir> <threads> <tasks,comma,separated> <batch sizes, comma separated>
"""
import json
import sys
import time

import torch

from hf_common import matmul_peak

checkpoint, include, threads, tasks, batches = sys.argv[1:6]
torch.set_num_threads(int(threads))
tasks = tasks.split(",")

from lm_eval import simple_evaluate  # noqa: E402
from lm_eval.models.huggingface import HFLM  # noqa: E402
from lm_eval.tasks import TaskManager  # noqa: E402

t0 = time.perf_counter()
lm = HFLM(pretrained=checkpoint, dtype="float32", device="cpu", batch_size=1)
load_s = time.perf_counter() - t0
manager = TaskManager(include_path=include)


def evaluate(batch_size, limit=None):
    lm.batch_size_per_gpu = batch_size
    out = simple_evaluate(model=lm, tasks=tasks, num_fewshot=0, task_manager=manager, limit=limit, log_samples=False)
    return {
        task: {m.split(",")[0]: v for m, v in r.items() if m in ("acc,none", "acc_norm,none")}
        for task, r in out["results"].items()
    }


evaluate(1, limit=2)
runs = []
for batch in [int(b) for b in batches.split(",")]:
    t0 = time.perf_counter()
    metrics = evaluate(batch)
    runs.append({"batch": batch, "seconds": time.perf_counter() - t0, "metrics": metrics})
print(json.dumps({"load_s": load_s, "runs": runs, "torch": torch.__version__, "matmul_gflops": matmul_peak()}))
