"""One shape of ../shared/bench/torch_gptneox.py in a fresh process, so that its peak RSS is that shape's:
python torch_train.py SCRIPT V d L h T B [--steps N] [--threads N] [--forward-only]
prints one JSON line: bench()'s result (or, with --forward-only, the forward alone), torch's version and ru_maxrss."""
import argparse, importlib.util, json, resource, time

ap = argparse.ArgumentParser()
ap.add_argument("script")
ap.add_argument("shape", type=int, nargs=6, metavar="V d L h T B")
ap.add_argument("--steps", type=int, default=2)
ap.add_argument("--threads", type=int, default=2)
ap.add_argument("--forward-only", action="store_true")
a = ap.parse_args()

spec = importlib.util.spec_from_file_location("torch_gptneox", a.script)
neox = importlib.util.module_from_spec(spec)
spec.loader.exec_module(neox)
torch = neox.torch


def forward(V, d, L, h, T, B, steps, threads):
    torch.set_num_threads(threads); torch.manual_seed(0)
    m = neox.GPTNeoX(V, d, L, h, 4 * d).eval()
    ids = torch.randint(0, V, (B, T))
    with torch.no_grad():
        m(ids)
        t0 = time.perf_counter()
        for _ in range(steps): m(ids)
        dt = (time.perf_counter() - t0) / steps
    return dict(V=V, d=d, L=L, h=h, T=T, B=B, params=sum(p.numel() for p in m.parameters()), fwd_tok_s=B * T / dt)


result = (forward if a.forward_only else neox.bench)(*a.shape, a.steps, a.threads)
# ru_maxrss is in KiB on Linux.
print(json.dumps(dict(result, torch=torch.__version__, maxrss_kib=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)))
