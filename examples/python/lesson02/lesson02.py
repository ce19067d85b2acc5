"""Lesson 2: real trained models under every order - train in minutes on a CPU, decode with ordo,
see the images and measure what each order costs.

    python examples/python/lesson02/lesson02.py all        # train, evaluate, draw (about 25 min on 2 cores)
    python examples/python/lesson02/lesson02.py train --orders raster par16 --out /tmp/ckpt
    python examples/python/lesson02/lesson02.py evaluate   # table.json from the committed checkpoints
    python examples/python/lesson02/lesson02.py draw       # docs/img/lesson02_*
    python examples/python/lesson02/lesson02.py speculative  # SJD / SCD on the raster checkpoint: speculative.json
    python examples/python/lesson02/lesson02.py check      # CI: decode the committed checkpoints, compare with table.json

The same tiny class-conditional model is trained under each order from the same seed for the same
number of steps (the LlamaGen GPT for raster, PAR, NAR, PAR x NAR and RandAR; LPD's and ARPG's
own decoders, of about the same size), with the order's own training layout and mask, and saved as
safetensors with the official key names plus its JSON config: `ordo generate` and ordo.Model load
them unchanged. Every checkpoint is then decoded by ordo's CPU backend under its order (the raster
one also under ZipAR, training-free) and judged (digits.py): held-out NLL per token under teacher
forcing, class accuracy, a Fréchet distance to held-out real grids, steps and time per image -
beside the oracle's predicted KL of the order on a Gaussian field fitted to the digits.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))
import digits  # noqa: E402
import llamagen  # noqa: E402
import lpd  # noqa: E402
import pictures  # noqa: E402

import ordo  # noqa: E402

GRID_SPEC = "16x16"
CHECKPOINTS = HERE / "checkpoints"
TABLE = HERE / "table.json"
IMG = HERE.parents[2] / "docs" / "img"

# The one recipe every order trains with: the model size (about 160k weights: a 0.7 MB checkpoint),
# the optimiser and the budget. Changing any of these means retraining every checkpoint.
DIM, LAYERS, HEADS = 64, 3, 4
STEPS, BATCH, LR, WARMUP, LABEL_DROP = 2000, 32, 3e-3, 50, 0.1
TRAIN_SEED = 0
# Decoding: CFG scale (constant over the steps for every order, so that orders differ only in
# their order), temperature 1, no filtering; 100 images per class; seeds of the spread.
CFG = 2.0
PER_CLASS = 100
SEEDS = (0, 1, 2)
# What `check` allows between a fresh decode of seed 0 and table.json (the decode is deterministic
# for a given build: these cover another machine's floating point), and the floor on raster.
TOLERANCE = {"accuracy": 0.04, "frechet_rel": 0.3, "nll": 0.01}
RASTER_ACCURACY_FLOOR = 0.65


@dataclass
class Order:
    """A trained checkpoint (name, family, how it trains) and the decode plans it is judged under."""

    name: str
    family: str  # gpt (plan-driven teacher forcing), randar, lpd, arpg
    train_spec: str  # the plan whose layout trains it (gpt), or the one its NLL is measured under
    decodes: list[str] = field(default_factory=list)
    per_request_orders: bool = False  # random order per image (RandAR): spec has seed=request

    def decode_specs(self) -> list[str]:
        return self.decodes or [self.train_spec]


ORDERS = [
    Order("raster", "gpt", "raster", ["raster", "zipar:5"]),
    Order("par4", "gpt", "par:2x2"),
    Order("par16", "gpt", "par:4x4"),
    Order("nar", "gpt", "nar"),
    Order("par4-nar", "gpt", "par:2x2+nar"),
    Order("randar", "randar", "randar:88", ["randar:88,seed=request"], per_request_orders=True),
    Order("lpd", "lpd", "lpd:20"),
    Order("arpg", "arpg", "arpg:64"),
]
BY_NAME = {o.name: o for o in ORDERS}


def _arpg():
    import arpg  # the ARPG decoder (examples/python/arpg.py)

    return arpg


def plan(spec: str):
    return ordo.plan(spec, GRID_SPEC)


# ---------------------------------------------------------------------------------------------
# training
# ---------------------------------------------------------------------------------------------


def make_model(order: Order):
    """The order's model at the lesson's size, and its config (what save() writes beside it)."""
    v, c = digits.VOCAB, digits.CLASSES
    if order.family in ("gpt", "randar"):
        p = plan(order.train_spec)
        args = llamagen.ModelArgs(dim=DIM, n_layer=LAYERS, n_head=HEADS, vocab_size=v, num_classes=c, multiple_of=32,
                                  spe_token_num=p.num_transitions, medusa_attention_num=1 if len(p.heads) > 1 else 0,
                                  position_instruction=order.family == "randar")
        model = llamagen.GPT(args)
        for name, t in model.named_parameters():  # LlamaGen's init: N(0, 0.02), unit norms, zero output heads
            if name in ("output.weight", "medusa_output.weight"):
                torch.nn.init.zeros_(t)
            elif t.dim() > 1 or name == "pos_instruct_embeddings":
                torch.nn.init.normal_(t, std=0.02)
        return model, args
    if order.family == "lpd":
        args = lpd.LPDArgs(dim=DIM, depth=LAYERS, num_heads=HEADS, vocab_size=v, num_classes=c, num_cells=256)
        return lpd.LPD(args), args
    if order.family == "arpg":
        a = _arpg()
        # ARPG splits its blocks evenly between the self- and the cross-decoder: 3 rounds up to 2 + 2
        args = a.ARPGArgs(dim=DIM, n_layer=LAYERS + LAYERS % 2, n_head=HEADS,
                          vocab_size=v, num_classes=c, block_size=256, multiple_of=32)
        return a.ARPG(args), args
    raise ValueError(f"unknown family {order.family!r}")


def batch_loss(order: Order, model, tokens: torch.Tensor, labels: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Mean cross-entropy per token of one batch under the order's training layout."""
    n = tokens.shape[1]
    if order.family == "gpt":
        logits = llamagen.train_forward(model, plan(order.train_spec), tokens.numpy(), labels.numpy())
        return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), tokens.reshape(-1))
    if order.family == "randar":  # a uniformly random order per image (RandAR's training)
        orders = torch.argsort(torch.rand(len(tokens), n, generator=gen), dim=1)
        logits = llamagen.randar_train_forward(model, digits.GRID, tokens, labels, orders)
        return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), torch.gather(tokens, 1, orders).reshape(-1))
    if order.family == "lpd":
        return lpd.loss(model, tokens, labels, gen)
    if order.family == "arpg":
        return _arpg().loss(model, tokens, labels, gen)
    raise ValueError(f"unknown family {order.family!r}")


def save(order: Order, model, args, stem: Path) -> None:
    if order.family in ("gpt", "randar"):
        llamagen.save_safetensors(f"{stem}.safetensors", model.state_dict(), {"lesson": "02", "order": order.name})
        args.to_json(f"{stem}.json")
    elif order.family == "lpd":
        lpd.save(model, args, stem)
    else:
        _arpg().save(model, args, stem)


def train(order: Order, out: Path, steps: int = STEPS, log=print) -> dict:
    """Trains one checkpoint with the lesson's recipe; writes out/NAME.{safetensors,json,train.json}."""
    torch.manual_seed(TRAIN_SEED)
    gen = torch.Generator().manual_seed(TRAIN_SEED)
    x, y = (torch.from_numpy(a) for a in digits.split()["train"])
    model, args = make_model(order)
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=LR, betas=(0.9, 0.95), weight_decay=0.05)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min(1.0, (s + 1) / WARMUP) * 0.5 * (1 + math.cos(math.pi * min(s, steps) / steps)))
    t0 = time.perf_counter()
    for s in range(steps):
        idx = torch.randint(len(x), (BATCH,), generator=gen)
        labels = torch.where(torch.rand(BATCH, generator=gen) < LABEL_DROP, digits.CLASSES, y[idx])  # CFG's null class
        loss = batch_loss(order, model, x[idx], labels, gen)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        if s % 100 == 0 or s == steps - 1:
            log(f"  {order.name} step {s:4d}  loss {loss.item():.4f}  {time.perf_counter() - t0:6.1f} s")
    seconds = time.perf_counter() - t0
    out.mkdir(parents=True, exist_ok=True)
    stem = out / order.name
    save(order, model, args, stem)
    record = {"order": order.name, "steps": steps, "batch": BATCH, "seed": TRAIN_SEED, "seconds": round(seconds, 1),
              "threads": torch.get_num_threads(), "held_out_nll": held_out_nll(order, stem)}
    Path(f"{stem}.train.json").write_text(json.dumps(record, indent=1) + "\n")
    log(f"  {order.name}: {seconds:.0f} s, held-out NLL {record['held_out_nll']:.4f} nats/token")
    return record


# ---------------------------------------------------------------------------------------------
# decoding and judging
# ---------------------------------------------------------------------------------------------


def load(stem: Path) -> "ordo.Model":
    return ordo.Model(f"{stem}.safetensors", f"{stem}.json")


def held_out_nll(order: Order, stem: Path) -> float:
    """Mean negative log-likelihood per token (nats) of the held-out grids, conditioned on their
    class, under the order's own plan: ordo's teacher-forcing forward on the CPU backend."""
    model, p = load(stem), plan(order.train_spec)
    x, y = digits.split()["test"]
    total = 0.0
    for tokens, label in zip(x, y):
        logits = torch.from_numpy(np.array(model.teacher_forcing_logits(p, tokens.astype(np.int32), int(label))))
        total += F.cross_entropy(logits, torch.from_numpy(tokens), reduction="sum").item()
    return total / x.size


def labels_for(per_class: int) -> np.ndarray:
    return np.repeat(np.arange(digits.CLASSES), per_class)


def decode(order: Order, spec: str, stem: Path, seed: int, per_class: int = PER_CLASS) -> tuple[np.ndarray, float]:
    """Tokens [images, 256] and seconds per image: ordo's CPU backend, CFG, sampling at temperature 1."""
    model, p = load(stem), plan(spec)
    labels = labels_for(per_class)
    kw = {}
    if order.per_request_orders:  # one uniformly random order per image, from the seed
        rng = np.random.default_rng(seed)
        kw["orders"] = [rng.permutation(p.num_positions).tolist() for _ in labels]
    t0 = time.perf_counter()
    tokens = model.generate(p, labels.tolist(), cfg=CFG, seed=seed, **kw)
    return np.asarray(tokens), (time.perf_counter() - t0) / len(labels)


def fitted_field() -> tuple[str, float]:
    """The Gaussian field the oracle scores orders on, fitted to the digits: an exponential kernel
    k(d) = exp(-d / ell) whose ell matches the grids' mean correlation of horizontal and vertical
    neighbours (token values centred per cell)."""
    x = digits.split()["train"][0].reshape(-1, *digits.GRID).astype(np.float64)
    x = x - x.mean(0)
    sd = x.std(0) + 1e-12

    def corr(a, b, sa, sb):
        return float(((a * b).mean(0) / (sa * sb)).mean())

    rho = 0.5 * (corr(x[:, :, 1:], x[:, :, :-1], sd[:, 1:], sd[:, :-1]) + corr(x[:, 1:], x[:, :-1], sd[1:], sd[:-1]))
    return "exp", -1.0 / math.log(rho)


def evaluate(checkpoints: Path = CHECKPOINTS, seeds=SEEDS, orders=ORDERS, per_class: int = PER_CLASS, workers: int = 2, log=print) -> dict:
    """The lesson's table: one row per (checkpoint, decode plan). Decodes run `workers` at a time
    (ordo's generate releases the GIL; each is single-threaded)."""
    judge = digits.Judge()
    kernel, ell = fitted_field()
    jobs = [(o, spec, seed) for o in orders for spec in o.decode_specs() for seed in seeds]
    with ThreadPoolExecutor(workers) as pool:
        decoded = list(pool.map(lambda j: decode(j[0], j[1], checkpoints / j[0].name, j[2], per_class), jobs))
    results = dict(zip(((o.name, spec, seed) for o, spec, seed in jobs), decoded))
    rows = []
    for order in orders:
        nll = held_out_nll(order, checkpoints / order.name)
        for spec in order.decode_specs():
            p = plan(spec)
            oracle_plan = plan(order.train_spec) if order.per_request_orders else p  # one fixed order stands for all
            kl, _ = ordo.exact_kl(oracle_plan, kernel, ell)
            runs = [results[(order.name, spec, seed)] for seed in seeds]
            acc = [judge.accuracy(tokens, labels_for(per_class)) for tokens, _ in runs]
            fd = [judge.frechet(tokens) for tokens, _ in runs]
            row = {"checkpoint": order.name, "decode": spec, "steps": p.num_steps, "nll": round(nll, 4),
                   "accuracy": [round(a, 4) for a in acc], "frechet": [round(f, 4) for f in fd],
                   "ms_per_image": round(1000 * float(np.median([sec for _, sec in runs])), 2), "oracle_kl": round(kl, 4)}
            rows.append(row)
            log(f"  {order.name:9s} {spec:24s} {p.num_steps:4d} steps  nll {nll:.3f}  acc {np.mean(acc):.3f}±{np.std(acc):.3f}"
                f"  FD {np.mean(fd):.3f}±{np.std(fd):.3f}  {row['ms_per_image']:.1f} ms/img  KL {kl:.3f}")
    real = digits.split()
    reference = {"real_test_accuracy": round(judge.accuracy(*real["test"]), 4),
                 "real_train_frechet": round(judge.frechet(real["train"][0]), 4)}
    return {"grid": GRID_SPEC, "cfg": CFG, "per_class": per_class, "seeds": list(seeds), "field": {"kernel": kernel, "ell": round(ell, 4)},
            "reference": reference, "rows": rows}


def table_markdown(table: dict) -> str:
    """The table as docs/teaching.md shows it."""
    lines = ["| checkpoint | decoded as | steps | held-out NLL (nats/token) | class accuracy | Fréchet distance | ms / image | oracle KL (nats) |",
             "|---|---|---:|---:|---:|---:|---:|---:|"]
    for r in table["rows"]:
        a, f = np.array(r["accuracy"]), np.array(r["frechet"])
        lines.append(f"| {r['checkpoint']} | `{r['decode']}` | {r['steps']} | {r['nll']:.3f} | {a.mean():.3f} ± {a.std():.3f} | "
                     f"{f.mean():.2f} ± {f.std():.2f} | {r['ms_per_image']:.1f} | {r['oracle_kl']:.3f} |")
    return "\n".join(lines)


def check(checkpoints: Path = CHECKPOINTS, table_path: Path = TABLE, log=print) -> list[str]:
    """CI: decode every committed checkpoint with seed 0 and compare with the committed table.
    Returns the failures (empty: all within tolerance)."""
    committed = json.loads(Path(table_path).read_text())
    fresh = evaluate(checkpoints, seeds=(committed["seeds"][0],), per_class=committed["per_class"], log=log)
    failures = []
    for old, new in zip(committed["rows"], fresh["rows"], strict=True):
        where = f"{old['checkpoint']} decoded as {old['decode']}"
        if (old["checkpoint"], old["decode"]) != (new["checkpoint"], new["decode"]):
            failures.append(f"row order changed: {where} vs {new['checkpoint']}/{new['decode']}")
            continue
        checks = [("accuracy", abs(new["accuracy"][0] - old["accuracy"][0]), TOLERANCE["accuracy"]),
                  ("Fréchet distance (relative)", abs(new["frechet"][0] - old["frechet"][0]) / old["frechet"][0], TOLERANCE["frechet_rel"]),
                  ("held-out NLL", abs(new["nll"] - old["nll"]), TOLERANCE["nll"])]
        for what, diff, tol in checks:
            if not diff <= tol:  # NaN fails too
                failures.append(f"{where}: {what} moved by {diff:.4f} (tolerance {tol})")
        if new["steps"] != old["steps"]:
            failures.append(f"{where}: {new['steps']} steps, the table says {old['steps']}")
    raster = next(r for r in fresh["rows"] if r["decode"] == "raster")
    if not raster["accuracy"][0] >= RASTER_ACCURACY_FLOOR:
        failures.append(f"raster class accuracy {raster['accuracy'][0]:.3f} is under the floor {RASTER_ACCURACY_FLOOR}")
    return failures


SPECULATIVE = HERE / "speculative.json"


def speculative(checkpoints: Path = CHECKPOINTS, windows=(4, 8, 16, 32), per_class: int = 10, seed: int = 0, log=print) -> dict:
    """Speculative Jacobi decoding of the raster checkpoint (training-free, lossless): tokens
    accepted per forward for each window length and variant, and the samples judged like raster's
    (they follow the same distribution, so accuracy and Fréchet distance agree within sampling
    noise). Each image's count is the forwards that advanced it: what it needs decoded alone."""
    judge = digits.Judge()
    model, p = load(checkpoints / "raster"), plan("raster")
    labels = labels_for(per_class)
    variants = [("SJD", "uniform", "none"), ("SJD, left-neighbour drafts", "left_neighbour", "none"),
                ("SCD-GS", "uniform", "gumbel"), ("SCD-MC", "uniform", "maximal")]
    rows = []
    for name, init, coupling in [("raster", "uniform", "none")] + variants:
        for window in (windows if name != "raster" else (0,)):
            t0 = time.perf_counter()
            tokens, stats = model.generate(p, labels.tolist(), cfg=CFG, seed=seed, jacobi_window=window, draft_init=init,
                                           coupling=coupling, return_stats=True)
            seconds = time.perf_counter() - t0
            per_image = p.num_positions / np.asarray(stats["iterations"], dtype=np.float64)
            row = {"variant": name, "window": window, "tokens_per_forward": round(float(per_image.mean()), 3),
                   "forwards_per_image": round(float(np.mean(stats["iterations"])), 1),
                   "accuracy": round(judge.accuracy(tokens, labels), 4), "frechet": round(judge.frechet(tokens), 4),
                   "ms_per_image": round(1000 * seconds / len(labels), 2)}
            rows.append(row)
            log(f"  {name:28s} L={window:2d}  {row['tokens_per_forward']:5.2f} tokens/forward  {row['forwards_per_image']:6.1f} forwards/image"
                f"  acc {row['accuracy']:.3f}  FD {row['frechet']:.3f}  {row['ms_per_image']:.1f} ms/img")
    return {"checkpoint": "raster", "cfg": CFG, "per_class": per_class, "seed": seed, "rows": rows}


# ---------------------------------------------------------------------------------------------
# pictures
# ---------------------------------------------------------------------------------------------


def emission_steps(spec: str, order_table=None) -> np.ndarray:
    """The step that emits each grid cell, [256] (raster), for the plan (and a position table)."""
    p = plan(spec)
    step_of = np.asarray(p.step_of)
    if order_table is None:
        return step_of
    cells = np.empty_like(step_of)
    cells[np.asarray(order_table)] = step_of  # plan position t is grid cell order_table[t]
    return cells


def draw(checkpoints: Path = CHECKPOINTS, table_path: Path = TABLE, out: Path = IMG, per_row: int = 10, frames: int = 8) -> None:
    """docs/img/lesson02_samples_NAME.png (rows = classes), lesson02_frames.png (one decode per
    order at evenly spaced steps; undecoded cells red) and lesson02_quality.svg (FD against steps)."""
    out.mkdir(parents=True, exist_ok=True)
    levels, scale = digits.VOCAB, 4
    strips = []
    for order in ORDERS:
        stem = checkpoints / order.name
        for spec in order.decode_specs():
            tokens, _ = decode(order, spec, stem, seed=0, per_class=per_row)
            rows = [[pictures.grey(t.reshape(digits.GRID), levels, scale) for t in tokens[c * per_row:(c + 1) * per_row]]
                    for c in range(digits.CLASSES)]
            pictures.write_png(out / f"lesson02_samples_{order.name}{'' if spec == order.decode_specs()[0] else '_' + spec.split(':')[0]}.png",
                               pictures.tile(rows))
            table = None
            if order.per_request_orders:
                table = np.random.default_rng(0).permutation(plan(spec).num_positions)
            steps = emission_steps(spec, table).reshape(digits.GRID)
            image = tokens[3 * per_row].reshape(digits.GRID)  # the first "3"
            n = int(steps.max()) + 1
            strip = []
            for k in range(frames):
                upto = round((k + 1) * n / frames) - 1  # after this step
                frame = pictures.grey(image, levels, 8)
                hidden = np.repeat(np.repeat(steps > upto, 8, 0), 8, 1)
                frame[hidden] = (230, 120, 110)
                strip.append(frame)
            strips.append(strip)
    pictures.write_png(out / "lesson02_frames.png", pictures.tile(strips, gap=3))
    t = json.loads(Path(table_path).read_text())
    pts = [{"x": r["steps"], "y": float(np.mean(r["frechet"])), "err": float(np.std(r["frechet"])),
            "label": r["decode"] if r["checkpoint"] != "raster" or r["decode"] != "raster" else "raster"} for r in t["rows"]]
    pictures.scatter_svg(out / "lesson02_quality.svg", pts, "decode steps (forward passes), log scale", "Fréchet distance to held-out digits")


# ---------------------------------------------------------------------------------------------
# command line
# ---------------------------------------------------------------------------------------------


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("command", choices=["train", "evaluate", "draw", "speculative", "check", "all"])
    ap.add_argument("--orders", nargs="+", choices=list(BY_NAME), default=list(BY_NAME), help="which checkpoints (default: all)")
    ap.add_argument("--out", type=Path, default=CHECKPOINTS, help="where checkpoints are written (train) or read")
    ap.add_argument("--steps", type=int, default=STEPS, help="training steps (the lesson's checkpoints: %(default)s)")
    ap.add_argument("--threads", type=int, default=2, help="PyTorch threads while training")
    a = ap.parse_args(argv)
    torch.set_num_threads(a.threads)
    orders = [BY_NAME[n] for n in a.orders]
    if a.command in ("train", "all"):
        for o in orders:
            train(o, a.out, a.steps)
    if a.command in ("evaluate", "all"):
        table = evaluate(a.out, orders=orders)
        if orders == ORDERS and a.out == CHECKPOINTS:  # the committed table is every order of the committed checkpoints
            TABLE.write_text(json.dumps(table, indent=1) + "\n")
        print(table_markdown(table))
    if a.command in ("draw", "all"):
        draw(a.out)
    if a.command in ("speculative", "all"):
        SPECULATIVE.write_text(json.dumps(speculative(a.out), indent=1) + "\n")
    if a.command == "check":
        failures = check(a.out)
        for f in failures:
            print("FAIL", f)
        print("check: " + ("all rows within tolerance" if not failures else f"{len(failures)} failures"))
        return 1 if failures else 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
