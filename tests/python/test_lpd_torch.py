"""The trainable PyTorch LPD (examples/python/lpd.py): the official training forward on the golden
tiny model, the official training draws, and a round trip train -> save -> ordo.Model (the C++ CPU
backend) -> greedy decode and teacher forcing."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import ordo

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
sys.path.insert(0, str(ROOT / "examples" / "python"))
import lpd  # noqa: E402
import llamagen  # noqa: E402

GOLDEN = ROOT / "tests" / "data" / "e2e" / "lpd_G16_s20_orderseed0_cfg4.0_label3"


def test_the_training_forward_reproduces_the_official_logits():
    model = lpd.load(f"{GOLDEN}.weights", f"{GOLDEN}.weights.safetensors")
    assert model.args == lpd.LPDArgs(dim=64, depth=2, num_heads=4, mlp_ratio=4.0, vocab_size=64, num_classes=10, num_cells=256)
    t = llamagen.load_safetensors(f"{GOLDEN}.teacher.safetensors")
    tokens, order = t["tokens_raster"][None], t["order"][None]
    # twice in one batch, the second copy under a different order: samples must not leak into each other
    other = torch.roll(order, 17, dims=1)
    with torch.no_grad():
        logits = model.forward_train(torch.cat([tokens, tokens]), t["label"].repeat(2), torch.cat([order, other]),
                                     t["group_sizes"].tolist())
    assert logits.shape == (2, 256, 64) and torch.isfinite(logits).all()
    diff = (logits[0] - t["logits_seq"]).abs().max().item()
    assert diff < 1e-4, diff  # seen: 8.6e-6
    raster = torch.empty_like(logits[0])
    raster[order[0]] = logits[0]
    assert (raster - t["logits_raster"]).abs().max().item() < 1e-4
    assert (logits[1] - t["logits_seq"]).abs().max().item() > 1e-2  # a different order gives other logits


def test_the_mask_is_the_official_block_mask():
    # schedule [1, 2, 1] on 4 cells: rows cls, T0, T1, T2, Q0, Q1, Q2, Q3 (the last group's token T3 is not in it)
    m = lpd.train_mask([1, 2, 1], 4).int().tolist()
    assert m == [
        [1, 0, 0, 0, 0, 0, 0, 0],  # cls: itself
        [1, 1, 0, 0, 0, 0, 0, 0],  # T0: cls, its group
        [1, 1, 1, 1, 0, 0, 0, 0],  # T1: cls, T0, its whole group (bidirectional)
        [1, 1, 1, 1, 0, 0, 0, 0],  # T2
        [1, 0, 0, 0, 1, 0, 0, 0],  # Q0: cls, itself
        [1, 1, 0, 0, 0, 1, 1, 0],  # Q1: cls, T0, the queries of its call
        [1, 1, 0, 0, 0, 1, 1, 0],  # Q2
        [1, 1, 1, 1, 0, 0, 0, 1],  # Q3: cls, T0..T2, itself
    ]
    with pytest.raises(ValueError, match="sum to 4"):
        lpd.train_mask([1, 2], 4)


def test_the_loss_draws_a_random_order_per_sample_and_one_official_schedule_per_batch():
    assert [len(s) for s in lpd.training_schedules(256)] == [256, 128, 64, 32, 24, 20, 16, 12, 8]
    for n in (256, 64, 36):
        for s in lpd.training_schedules(n):
            assert sum(s) == n and s[0] == 1 and min(s) >= 1
    torch.manual_seed(1)
    args = lpd.LPDArgs(dim=16, depth=1, num_heads=2, vocab_size=16, num_classes=10, num_cells=36)
    model = lpd.LPD(args)
    tokens = torch.randint(16, (3, 36))
    labels = torch.tensor([0, 10, 4])  # 10: unconditional (fake_latent)
    g = torch.Generator().manual_seed(5)
    got = lpd.loss(model, tokens, labels, g)
    # replay the same draws by hand
    g = torch.Generator().manual_seed(5)
    schedules = lpd.training_schedules(36)
    schedule = schedules[int(torch.randint(len(schedules), (1,), generator=g))]
    orders = lpd.random_orders(3, 36, g)
    assert len({tuple(o) for o in orders.tolist()}) == 3
    logits = model.forward_train(tokens, labels, orders, schedule)
    want = torch.nn.functional.cross_entropy(logits.reshape(-1, 16), torch.gather(tokens, 1, orders).reshape(-1))
    assert torch.allclose(got, want)
    got.backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())
    assert model.fake_latent.grad.abs().sum() > 0 and model.class_emb.weight.grad[4].abs().sum() > 0
    with pytest.raises(ValueError, match="labels"):
        model.forward_train(tokens, torch.tensor([0, 11, 4]), orders, schedule)


@pytest.fixture(scope="module")
def memorised(tmp_path_factory):
    """A tiny LPD (16x16 grid, vocab 16, 10 classes) trained to memorise two grids, saved."""
    torch.manual_seed(0)
    args = lpd.LPDArgs(dim=32, depth=2, num_heads=2, vocab_size=16, num_classes=10, num_cells=256)
    model = lpd.LPD(args)
    g = torch.Generator().manual_seed(0)
    grids = torch.randint(16, (2, 256), generator=g)
    labels = torch.tensor([3, 7])
    opt = torch.optim.AdamW(model.parameters(), lr=5e-3, weight_decay=0.0)
    for _ in range(250):  # about 2 s on one core; the loss ends near 1e-3 (memorised under every schedule)
        opt.zero_grad()
        lpd.loss(model, grids, labels, g).backward()
        opt.step()
    model.eval()
    stem = tmp_path_factory.mktemp("lpd") / "tiny"
    lpd.save(model, args, stem)
    return model, args, stem, grids, labels


def test_a_trained_model_decodes_its_grids_with_ordos_cpu_backend(memorised):
    model, args, stem, grids, labels = memorised
    back = lpd.load(stem)
    assert back.args == args
    assert all(torch.equal(back.state_dict()[k], v) for k, v in model.state_dict().items())
    cpu = ordo.Model(f"{stem}.safetensors", f"{stem}.json")
    for spec, grid in (("lpd:20", "16x16"), ("lpd:steps=32,seed=3", "16x16"), ("lpd:sizes=1+7+24+64+160,seed=1", "16x16")):
        plan = ordo.plan(spec, grid)
        out = cpu.generate(plan, labels.tolist(), greedy=True)
        assert out.shape == (2, 256)
        assert np.array_equal(out, grids.numpy()), spec


def test_ordos_teacher_forcing_equals_the_torch_training_forward(memorised):
    model, args, stem, grids, labels = memorised
    cpu = ordo.Model(f"{stem}.safetensors", f"{stem}.json")
    plan = ordo.plan("lpd:20", "16x16")
    order = torch.tensor(np.array(plan.order), dtype=torch.int64)[None]
    sizes = np.diff(plan.emit_offsets).tolist()
    assert sum(sizes) == 256 and len(sizes) == 20
    for i, label in ((0, 3), (1, 7), (0, args.null_label)):  # null_label: fake_latent on both sides
        want = cpu.teacher_forcing_logits(plan, np.ascontiguousarray(grids[i].numpy(), dtype=np.int32), label)
        with torch.no_grad():
            seq = model.forward_train(grids[i : i + 1], torch.tensor([label]), order, sizes)[0]
        raster = torch.empty_like(seq)
        raster[order[0]] = seq  # row t predicts cell order[t]; ordo answers in raster order
        assert np.isfinite(want).all()
        diff = np.abs(raster.numpy() - want).max()
        assert diff < 1e-4, (label, diff)
