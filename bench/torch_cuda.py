"""PyTorch CUDA fp32 beside `npm run bench:gpu`: ../shared/bench/torch_gptneox.py's model, trained on the GPU.
python torch_cuda.py SCRIPT V d L h T B [--steps N]
prints one JSON line: the GPU's name, its fp32 matmul peak (4096², TF32 off, best of 10), training
tokens/s of whole steps (forward, backward, clip_grad_norm_, AdamW), forward tokens/s and the peak
memory torch allocated; or {"error": ...} when CUDA is not available."""
import argparse, importlib.util, json, time

ap = argparse.ArgumentParser()
ap.add_argument("script")
ap.add_argument("shape", type=int, nargs=6, metavar="V d L h T B")
ap.add_argument("--steps", type=int, default=10)
a = ap.parse_args()

spec = importlib.util.spec_from_file_location("torch_gptneox", a.script)
neox = importlib.util.module_from_spec(spec)
spec.loader.exec_module(neox)
torch, F = neox.torch, neox.F
if not torch.cuda.is_available():
    print(json.dumps(dict(error=f"torch {torch.__version__} sees no CUDA device")))
    raise SystemExit(0)
torch.backends.cuda.matmul.allow_tf32 = False
torch.backends.cudnn.allow_tf32 = False
dev = torch.device("cuda")


def timed(fn, runs):
    fn(); fn(); torch.cuda.synchronize()
    best = float("inf")
    for _ in range(runs):
        t0 = time.perf_counter(); fn(); torch.cuda.synchronize()
        best = min(best, time.perf_counter() - t0)
    return best


n = 4096
x = torch.randn(n, n, device=dev)
peak = 2 * n**3 / timed(lambda: x @ x, 10) / 1e9

V, d, L, h, T, B = a.shape
torch.manual_seed(0)
m = neox.GPTNeoX(V, d, L, h, 4 * d).to(dev)
opt = torch.optim.AdamW(m.parameters(), lr=1e-4, betas=(0.9, 0.95), eps=1e-8, weight_decay=0.1)
ids = torch.randint(0, V, (B, T + 1), device=dev)


def step():
    opt.zero_grad()
    loss = F.cross_entropy(m(ids[:, :-1]).reshape(-1, V), ids[:, 1:].reshape(-1))
    loss.backward(); torch.nn.utils.clip_grad_norm_(m.parameters(), 1.0); opt.step()


for _ in range(2): step()
torch.cuda.synchronize(); torch.cuda.reset_peak_memory_stats()
t0 = time.perf_counter()
for _ in range(a.steps): step()
torch.cuda.synchronize()
dt = (time.perf_counter() - t0) / a.steps
mem = torch.cuda.max_memory_allocated()
with torch.no_grad():
    fdt = timed(lambda: m(ids[:, :-1]), a.steps)
print(json.dumps(dict(gpu=torch.cuda.get_device_name(0), torch=torch.__version__, matmul_gflops=peak,
                      train_tok_s=B * T / dt, fwd_tok_s=B * T / fdt, max_allocated_gib=mem / 2**30)))
