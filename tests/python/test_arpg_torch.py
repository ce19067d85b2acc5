"""The trainable PyTorch ARPG (examples/python/arpg.py): the official training forward on the golden
checkpoint, and a tiny model trained here, saved, loaded by ordo's C++ backend and decoded back.

Run: python -m pytest tests/python/test_arpg_torch.py -q   (a few seconds on one core)
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "examples" / "python"))
import arpg  # noqa: E402
import llamagen  # noqa: E402

ordo = pytest.importorskip("ordo")

CASE = ROOT / "tests" / "data" / "e2e" / "arpg_G16_s64_orderseed0_cfg4.0_label3"
# The golden logits are the official fp32 run's: a float64 forward differs from them by 3.8e-4
# (max |logit| 17), so a tolerance much below that would test fp32 rounding, not the model. A
# wrong mask, RoPE row or class id moves them by O(1). The C++ backend's test uses the same bound.
GOLDEN_TOL = 1e-3


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Tiny matrices: more threads only contend (the suite runs on a shared machine)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def golden_model() -> arpg.ARPG:
    model = arpg.ARPG(arpg.ARPGArgs.from_json(f"{CASE}.weights.json"))
    model.load_state_dict(llamagen.load_safetensors(f"{CASE}.weights.safetensors"), strict=True)
    return model.eval()


def test_golden_teacher_logits():
    model = golden_model()
    assert model.args.n_self == model.args.n_cross == 2 and model.args.n_head == 4
    tf = llamagen.load_safetensors(f"{CASE}.teacher.safetensors")
    tokens, order, label = tf["tokens_raster"][None], tf["order"][None], tf["label"]
    # a batch of two: the golden sample, and the same tokens under another order (batch rows independent)
    other = torch.randperm(256, generator=torch.Generator().manual_seed(1))[None]
    with torch.no_grad():
        out = model.forward_train(tokens.repeat(2, 1), label.repeat(2), torch.cat([order, other]))
        alone = model.forward_train(tokens, label, other)
    assert out.shape == (2, 256, 64) and torch.isfinite(out).all()
    ref = tf["logits_seq"]
    d = (out[0] - ref).abs().max().item()
    print(f"golden max |diff| = {d:.3g} (max |logit| {ref.abs().max().item():.3g})")
    assert d < GOLDEN_TOL
    raster = arpg.to_raster(out[:1], order)[0]
    assert (raster - tf["logits_raster"]).abs().max().item() < GOLDEN_TOL
    assert (out[1] - alone[0]).abs().max().item() < 1e-5
    # every group of size 1 = the training masks; the null class changes the logits
    with torch.no_grad():
        grouped = model.forward_train(tokens, label, order, group_sizes=[1] * 256)
        uncond = model.forward_train(tokens, torch.tensor([model.args.num_classes]), order)
    assert (grouped[0] - out[0]).abs().max().item() < 1e-5
    assert (uncond[0] - ref).abs().max().item() > 1e-2


def test_golden_loss_and_backward():
    model = golden_model()
    tf = llamagen.load_safetensors(f"{CASE}.teacher.safetensors")
    tokens = tf["tokens_raster"][None].repeat(3, 1)
    labels = torch.tensor([3, 0, model.args.num_classes])
    g = torch.Generator().manual_seed(0)
    value = arpg.loss(model, tokens, labels, g)
    # the same draw by hand: orders torch.rand(B, N).argsort(1), targets shuffled with them
    orders = torch.rand(3, 256, generator=torch.Generator().manual_seed(0)).argsort(1)
    logits = model.forward_train(tokens, labels, orders)
    by_hand = torch.nn.functional.cross_entropy(logits.flatten(0, 1), tokens.gather(1, orders).flatten())
    assert torch.isfinite(value) and abs(value.item() - by_hand.item()) < 1e-5
    value.backward()
    grads = {n: p.grad for n, p in model.named_parameters()}
    assert all(g is not None and torch.isfinite(g).all() for g in grads.values())
    assert grads["layers.self_dec.0.attn.to_q.weight"].abs().max() > 0  # the self-decoder is trained through the shared K/V


# --------------------------------------------------------------------------------------------
# round trip: train here, decode with ordo's C++ backend
# --------------------------------------------------------------------------------------------

GRID, VOCAB, CLASSES = 8, 16, 10
CONSTANT = {2: 5, 7: 11}  # label -> the token of its constant grid
RANDOM = (0, 1)  # labels of two random grids


@pytest.fixture(scope="module")
def trained(one_thread, tmp_path_factory):
    """A tiny ARPG trained for a second or two (official loss, random orders) on four 8x8 grids:
    labels 2 and 7 a constant grid each, labels 0 and 1 a random grid each.

    An ARPG model cannot memorise a random grid exactly: its only position signal is 2D RoPE,
    which is relative (the class row has RoPE's zero row, so its key is zero), so the model is
    translation-equivariant and its first call - queries that see only the class - gives every
    query the same logits. The random grids therefore check that ordo's greedy decode is a greedy
    decode of this model (whatever it learned), the constant ones that it returns what was learned.
    """
    torch.manual_seed(0)
    args = arpg.ARPGArgs(dim=32, n_layer=4, n_head=2, vocab_size=VOCAB, num_classes=CLASSES, block_size=GRID * GRID, multiple_of=32)
    model = arpg.ARPG(args)
    g = torch.Generator().manual_seed(0)
    grids = torch.cat([torch.full((1, GRID * GRID), t) for t in CONSTANT.values()]
                      + [torch.randint(0, VOCAB, (len(RANDOM), GRID * GRID), generator=g)])
    labels = torch.tensor(list(CONSTANT) + list(RANDOM))
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2, weight_decay=0.0)
    tokens, batch_labels = grids.repeat(4, 1), labels.repeat(4)  # 16 samples, each with its own order
    first = None
    for _ in range(60):
        value = arpg.loss(model, tokens, batch_labels, g)
        first = value.item() if first is None else first
        opt.zero_grad()
        value.backward()
        opt.step()
    model.eval()
    stem = tmp_path_factory.mktemp("arpg") / "tiny"
    arpg.save(model, args, stem)
    return model, args, grids, labels, stem, (first, value.item())


def test_round_trip_save_load(trained):
    model, args, grids, labels, stem, (first, last) = trained
    # the zero head starts at log(vocab); the constant grids are learned (the random ones are not)
    assert abs(first - np.log(VOCAB)) < 1e-4 and last < 0.6 * first, (first, last)
    again = arpg.load(stem)
    assert again.args == args
    for (n, p), (m, q) in zip(model.state_dict().items(), again.state_dict().items()):
        assert n == m and torch.equal(p, q)
    cpu = ordo.Model(f"{stem}.safetensors", f"{stem}.json")
    assert "ARPG" in cpu.config and "heads 2" in cpu.config
    assert cpu.vocab_size == VOCAB and cpu.num_classes == CLASSES and cpu.null_label == CLASSES


def plan_order(plan):
    order = torch.tensor(np.asarray(plan.order), dtype=torch.long)[None]
    return order, np.diff(np.asarray(plan.emit_offsets)).tolist()


@pytest.mark.parametrize("policy", ["arpg:steps=8,seed=0", "arpg:steps=4,seed=3,schedule=cosine", "arpg:steps=64,seed=1"])
def test_round_trip_ordo_greedy_decode(trained, policy):
    model, args, grids, labels, stem, _ = trained
    cpu = ordo.Model(f"{stem}.safetensors", f"{stem}.json")
    plan = ordo.plan(policy, f"{GRID}x{GRID}")
    out = cpu.generate(plan, labels.tolist(), greedy=True, cfg=1.0)
    assert out.shape == (len(labels), GRID * GRID)
    # the constant grids come back
    np.testing.assert_array_equal(out[: len(CONSTANT)], grids[: len(CONSTANT)].numpy())
    # every cell ordo chose is the PyTorch model's argmax given the cells of the earlier calls:
    # one grouped forward on ordo's own output checks the whole decode (ties within 1e-4 allowed)
    order, sizes = plan_order(plan)
    with torch.no_grad():
        logits = arpg.to_raster(model.forward_train(torch.from_numpy(out).long(), labels, order.repeat(len(labels), 1),
                                                    group_sizes=sizes), order.repeat(len(labels), 1))
    chosen = logits.gather(2, torch.from_numpy(out).long()[..., None])[..., 0]
    assert (chosen >= logits.max(-1).values - 1e-4).all()


@pytest.mark.parametrize("policy", ["arpg:steps=8,seed=0", "arpg:steps=64,seed=5"])
def test_round_trip_teacher_forcing_matches_ordo(trained, policy):
    """ordo replays the plan's calls (a fed group sees itself; queries see the groups before
    theirs); forward_train with the plan's order and group sizes is the same computation. With one
    cell per call (steps=64 on 8x8) it is the official training forward."""
    model, args, grids, labels, stem, _ = trained
    cpu = ordo.Model(f"{stem}.safetensors", f"{stem}.json")
    plan = ordo.plan(policy, f"{GRID}x{GRID}")
    order, sizes = plan_order(plan)
    for row, label in ((0, 2), (2, 0), (3, 7), (3, CLASSES)):  # memorised, random grids, wrong class, null class
        ref = cpu.teacher_forcing_logits(plan, grids[row].numpy().astype(np.int32), label)
        with torch.no_grad():
            grouped = model.forward_train(grids[row : row + 1], torch.tensor([label]), order, group_sizes=sizes)
            causal = model.forward_train(grids[row : row + 1], torch.tensor([label]), order)
        ours = arpg.to_raster(grouped, order)[0].numpy()
        assert ref.shape == ours.shape == (GRID * GRID, VOCAB) and np.isfinite(ref).all()
        scale = max(1.0, float(np.abs(ref).max()))
        assert np.abs(ours - ref).max() < 1e-5 * scale, (policy, row, label, np.abs(ours - ref).max())
        if max(sizes) == 1:  # one cell per call: ordo's replay is the training forward
            assert np.abs(arpg.to_raster(causal, order)[0].numpy() - ref).max() < 1e-5 * scale
        else:  # several: it is not (a fed group sees itself at inference)
            assert np.abs(arpg.to_raster(causal, order)[0].numpy() - ref).max() > 1e-4 * scale
