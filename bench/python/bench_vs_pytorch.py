"""ordo's CPU backend next to the official PyTorch code on the same machine, same weights, same
threads: seconds per image for raster (LlamaGen), PAR-4x (PAR) and NAR (NAR), GPT-B with random
weights, 16x16 tokens, CFG 2, top-k 2000, temperature 1.

Not part of CI: it needs the official repositories, which ordo neither ships nor commits. Check them
out (any commit; the ones ordo's golden data were made with are in shared/golden/README.md) and
point the script at them:

    python bench/python/bench_vs_pytorch.py \
        --llamagen ~/src/LlamaGen --par ~/src/PAR --nar ~/src/NAR/NAR-images \
        --threads 1 0 --batch 1 8 --rounds 3 [--weights fp32 bf16]

(--threads 0: every core.) For each order a child process builds the official GPT-B with
torch.manual_seed(0) (the official init), saves its state dict, which examples/convert_checkpoint.py
turns into ordo's checkpoint, and then times the official generate(); ordo.Model.generate() runs the
same weights in this process. Rounds alternate official / ordo so both see the same machine load;
the table gives medians and ordo's speedup, as seconds per image (a batch's time / its images).
Each child imports only its own repository (all three use the package name `autoregressive`).
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent

# order name -> (repository option, ordo policy, extra GPT constructor arguments)
ORDERS = {
    "raster": ("llamagen", "raster", {}),
    "par4": ("par", "par:2x2", {"spe_token_num": 3, "ar_token_num": 4}),
    "nar": ("nar", "nar", {}),
}
GRID, VOCAB, CLASSES, CFG, TOP_K = 16, 16384, 1000, 2.0, 2000


def child(order: str, repo: str, out: str, threads: list[int], batches: list[int], rounds_file: str | None) -> None:
    """In the official repository's environment: build (and save) the model, or time generate()."""
    import torch

    sys.path.insert(0, repo)
    try:  # NAR's generate.py imports tqdm for a progress bar it does not need here
        import tqdm  # noqa: F401
    except ImportError:
        import importlib.machinery
        import types

        shim = types.ModuleType("tqdm")
        shim.__spec__ = importlib.machinery.ModuleSpec("tqdm", None)
        shim.tqdm = lambda it=None, *a, **k: it
        sys.modules["tqdm"] = shim
    from autoregressive.models.gpt import GPT_models  # the official code, from --llamagen/--par/--nar
    from autoregressive.models.generate import generate

    torch.manual_seed(0)
    extra = ORDERS[order][2]
    model = GPT_models["GPT-B"](vocab_size=VOCAB, block_size=GRID * GRID, num_classes=CLASSES, cls_token_num=1, model_type="c2i", **extra)
    model.eval()
    if rounds_file is None:
        torch.save({"model": model.state_dict()}, out)
        return
    times = {}
    for t in threads:
        torch.set_num_threads(t if t > 0 else os.cpu_count())
        for b in batches:
            labels = torch.arange(b) % CLASSES
            t0 = time.perf_counter()
            with torch.no_grad():
                generate(model, labels, GRID * GRID, cfg_scale=CFG, temperature=1.0, top_k=TOP_K, top_p=1.0, sample_logits=True)
            times[f"{t},{b}"] = (time.perf_counter() - t0) / b
    Path(rounds_file).write_text(json.dumps(times))


def run_child(order: str, repo: str, out: str, threads=(), batches=(), rounds_file=None) -> None:
    cmd = [sys.executable, __file__, "--child", order, "--repo", repo, "--out", out]
    if rounds_file:
        cmd += ["--rounds-file", rounds_file, "--threads", *map(str, threads), "--batch", *map(str, batches)]
    subprocess.run(cmd, check=True)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--llamagen", help="official LlamaGen checkout (raster)")
    ap.add_argument("--par", help="official PAR checkout (PAR-4x)")
    ap.add_argument("--nar", help="official NAR checkout's NAR-images folder")
    ap.add_argument("--orders", nargs="+", choices=list(ORDERS), default=list(ORDERS))
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 0], help="thread counts (0: every core)")
    ap.add_argument("--batch", type=int, nargs="+", default=[1])
    ap.add_argument("--weights", nargs="+", choices=["fp32", "bf16"], default=["fp32"], help="ordo's stored weights")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--json", type=Path, help="also write the medians here")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    ap.add_argument("--repo", help=argparse.SUPPRESS)
    ap.add_argument("--out", help=argparse.SUPPRESS)
    ap.add_argument("--rounds-file", help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    if a.child:
        child(a.child, a.repo, a.out, a.threads, a.batch, a.rounds_file)
        return 0

    import numpy as np

    import ordo

    sys.path.insert(0, str(ROOT / "examples"))
    import convert_checkpoint

    cores = os.cpu_count()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for order in a.orders:
            repo_opt, policy, _ = ORDERS[order]
            repo = getattr(a, repo_opt)
            if not repo:
                print(f"{order}: skipped (give --{repo_opt})")
                continue
            pt, st = f"{tmp}/{order}.pt", f"{tmp}/{order}.safetensors"
            run_child(order, repo, pt)
            convert_checkpoint.main([pt, st, "--model", "GPT-B"])
            plan = ordo.plan(policy, f"{GRID}x{GRID}")
            models = {w: ordo.Model(st, st.replace(".safetensors", ".json"), weight_dtype=w) for w in a.weights}
            official = {}
            ours = {}
            for r in range(a.rounds):
                rf = f"{tmp}/{order}.{r}.json"
                run_child(order, repo, pt, a.threads, a.batch, rf)
                for k, v in json.loads(Path(rf).read_text()).items():
                    official.setdefault(k, []).append(v)
                for w, m in models.items():
                    for t in a.threads:
                        ordo.set_num_threads(t if t > 0 else cores)
                        for b in a.batch:
                            labels = list(np.arange(b) % CLASSES)
                            t0 = time.perf_counter()
                            m.generate(plan, labels, cfg=CFG, top_k=TOP_K, seed=r)
                            ours.setdefault((w, t, b), []).append((time.perf_counter() - t0) / b)
            for (w, t, b), v in ours.items():
                o = statistics.median(official[f"{t},{b}"])
                s = statistics.median(v)
                rows.append({"order": order, "threads": t if t > 0 else cores, "batch": b, "weights": w, "pytorch_s": o, "ordo_s": s, "speedup": o / s})
                print(f"{order} threads {rows[-1]['threads']} batch {b} {w}: PyTorch {o:.2f} s/image, ordo {s:.2f}, {o / s:.2f}x", flush=True)
    print(f"\nseconds per image, medians of {a.rounds} rounds (GPT-B, random weights, {GRID}x{GRID}, CFG {CFG}, top-k {TOP_K}; {cores} cores)")
    print("| order | threads | batch | ordo weights | PyTorch | ordo | ordo speedup |")
    print("|---|---:|---:|---|---:|---:|---:|")
    for r in rows:
        print(f"| {r['order']} | {r['threads']} | {r['batch']} | {r['weights']} | {r['pytorch_s']:.2f} | {r['ordo_s']:.2f} | {r['speedup']:.2f}x |")
    if a.json:
        a.json.write_text(json.dumps(rows, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
