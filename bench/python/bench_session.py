"""What driving ordo's session from Python costs per step, over the C++ session (issue 14's target:
under 20 us per step added), at batch 1 and 8, measured side by side in one run.

Both loops run the same plan with greedy sampling and constant logits, so the difference is the
Python layer: next() (the step batch object), commit() (the logits handed over without a copy:
numpy, and a torch tensor through DLPack when torch is there). A vocabulary of 64 keeps the
sampler's own work small, so the difference is not lost in noise; at 16384 (LlamaGen's) a copy of
the logits per step would show as added time growing with the batch, and does not.
Run: python bench/python/bench_session.py
"""

import argparse
import time

import numpy as np

import ordo


def python_seconds_per_step(plan, batch, vocab, repeats, make_logits):
    logits = {}
    steps = 0
    t0 = time.perf_counter()
    for _ in range(repeats):
        s = ordo.Session(plan, [0] * batch, vocab, greedy=True, ids=list(range(batch)))
        while not s.done:
            b = s.next()
            shape = b.logits_shape
            if shape not in logits:
                logits[shape] = make_logits(shape)
            s.commit(logits[shape])
            steps += 1
    return (time.perf_counter() - t0) / steps


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--policy", default="par:2x2")
    ap.add_argument("--grid", default="16x16")
    ap.add_argument("--vocab", type=int, nargs="+", default=[64, 16384])
    ap.add_argument("--repeats", type=int, default=10)
    a = ap.parse_args()
    plan = ordo.plan(a.policy, a.grid)
    makers = {"numpy": lambda shape: np.full(shape, 0.5, np.float32)}
    try:
        import torch

        makers["torch"] = lambda shape: torch.full(shape, 0.5, dtype=torch.float32)
    except ImportError:
        pass
    print(f"{a.policy} on {a.grid}: {plan.num_steps} steps, greedy, {a.repeats} decodes per figure, best of 3")
    print(f"{'vocab':>6} {'batch':>5} {'logits':>7} {'C++ us/step':>12} {'Python us/step':>15} {'added us/step':>14}")
    worst = 0.0
    for vocab in a.vocab:
        for batch in (1, 8):
            for name, make in makers.items():
                # side by side, best of three: the machine is shared
                cpp = min(ordo._ordo._time_cpp_session(plan, batch, vocab, a.repeats) for _ in range(3))
                py = min(python_seconds_per_step(plan, batch, vocab, a.repeats, make) for _ in range(3))
                added = (py - cpp) * 1e6
                if vocab == min(a.vocab):
                    worst = max(worst, added)
                print(f"{vocab:>6} {batch:>5} {name:>7} {cpp * 1e6:>12.1f} {py * 1e6:>15.1f} {added:>14.1f}")
    print(f"target (vocab {min(a.vocab)}): under 20 us per step added: {'met' if worst < 20 else 'MISSED'} (worst {worst:.1f} us)")


if __name__ == "__main__":
    main()
