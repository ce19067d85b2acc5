"""ordo.Session and the masks from Python: agreement of the mask forms, the step API, bad input."""

import sys
from pathlib import Path

import numpy as np
import pytest

import ordo

DATA = Path(__file__).resolve().parents[1] / "data" / "e2e"
ORDERS = [("raster", "6x6"), ("par:2x2", "8x8"), ("par:4x4", "8x8"), ("nar", "7x9"), ("nar", "2x4x4"),
          ("par:2x2+nar", "8x8"), ("zipar:3", "6x8"), ("zipar:2", "5x3"), ("lpd:sizes=1+3+8+12+12", "6x6")]


def unpack(bits, rows, kv):
    flat = np.unpackbits(bits, bitorder="little")[: rows * kv]
    return flat.reshape(rows, kv).astype(bool)


@pytest.mark.parametrize("spec,grid", ORDERS)
def test_dense_packed_and_block_masks_agree(spec, grid):
    p = ordo.plan(spec, grid)
    kv = p.kv_cache_len
    for s in range(p.num_steps):
        q = np.array(p.step(s)["fed"], dtype=np.int32)
        dense = p.dense_mask(q, kv)
        assert dense.shape == (len(q), kv)
        assert np.array_equal(unpack(p.pack_mask(q, kv), len(q), kv), dense)
        for bq, bkv in [(1, 1), (2, 8), (16, 16)]:
            bm = p.block_mask(q, kv, bq, bkv)
            for qb in range(len(bm["full_offsets"]) - 1):
                rows = dense[qb * bq:(qb + 1) * bq]
                full = set(bm["full_blocks"][bm["full_offsets"][qb]:bm["full_offsets"][qb + 1]].tolist())
                part = set(bm["partial_blocks"][bm["partial_offsets"][qb]:bm["partial_offsets"][qb + 1]].tolist())
                for b in range((kv + bkv - 1) // bkv):
                    tile = rows[:, b * bkv:(b + 1) * bkv]
                    assert (b in full) == bool(tile.all()) and (b in part) == bool(tile.any() and not tile.all())
    tm = p.train_mask()
    assert np.array_equal(tm, p.dense_mask(np.arange(p.train_slots, dtype=np.int32), p.train_slots))
    assert p.visible(int(q[0]), 0)
    indptr = ordo.packed_mask_indptr([3, 1], [10, 7])
    assert indptr.tolist() == [0, 4, 5]


def test_flex_attention_equals_sdpa_under_every_order():
    torch = pytest.importorskip("torch", reason="PyTorch is not installed: the FlexAttention checks need it")
    import warnings

    import ordo.torch as ot
    from torch.nn.attention.flex_attention import flex_attention

    warnings.filterwarnings("ignore", message=".*flex_attention called without torch.compile.*")
    torch.manual_seed(0)
    for spec, grid in ORDERS:
        p = ordo.plan(spec, grid)
        for q_slots in [None, np.array(p.step(p.num_steps // 2)["fed"])]:
            dense = ot.dense_mask(p, q_slots)
            rows, kv = dense.shape
            q, k, v = torch.randn(1, 2, rows, 8), torch.randn(1, 2, kv, 8), torch.randn(1, 2, kv, 8)
            want = torch.nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=dense)
            for block in [8, (4, 16)]:
                got = flex_attention(q, k, v, block_mask=ot.block_mask(p, q_slots, block_size=block))
                d = float((got - want).abs().max())
                assert d < 1e-5, (spec, grid, block, d)


def run(session, logits_of):
    while not session.done:
        b = session.next()
        session.commit(logits_of(b))


def hashed_logits(b):
    """Logits that depend on the step and on what each row carries (a deterministic stand-in for a model)."""
    v = b.input_value.astype(np.int64)[:, :, None, None] * 7919 + np.arange(b.vocab)[None, None, None, :] * 104729
    v = v + np.asarray(b.slots, dtype=np.int64)[None, :, None, None] * 31 + np.arange(b.num_heads)[None, None, :, None] * 17 + b.step
    return ((v % 1000) / 100.0).astype(np.float32)


def test_the_session_is_reproducible_and_independent_of_the_batch():
    p = ordo.plan("par:2x2+nar", "8x8")
    first = ordo.Session(p, [1, 2, 3], 64, cfg=3.0, seed=11, null_label=10, top_k=20, temperature=0.9)
    run(first, hashed_logits)
    again = ordo.Session(p, [1, 2, 3], 64, cfg=3.0, seed=11, null_label=10, top_k=20, temperature=0.9)
    run(again, hashed_logits)
    alone = ordo.Session(p, [2], 64, cfg=3.0, seed=11, null_label=10, top_k=20, temperature=0.9, ids=[1])
    run(alone, hashed_logits)
    assert all(np.array_equal(first.tokens(i), again.tokens(i)) for i in range(3))
    assert np.array_equal(first.tokens(1), alone.tokens(0))  # request id 1 draws the same, in any batch
    other = ordo.Session(p, [1, 2, 3], 64, cfg=3.0, seed=12, null_label=10, top_k=20, temperature=0.9)
    run(other, hashed_logits)
    assert not np.array_equal(first.tokens(0), other.tokens(0))
    assert (first.tokens(0) >= 0).all() and first.done and first.step == p.num_steps


def test_the_step_batch_describes_the_step():
    p = ordo.plan("par:2x2", "4x4")
    s = ordo.Session(p, [5, 6], 32, cfg=2.0, null_label=9)
    b = s.next()
    assert b.num_sequences == 4 and b.logits_shape == (4, 1, 1, 32)
    assert b.input_kind.tolist() == [[0], [0], [0], [0]] and b.input_value.tolist() == [[5], [6], [9], [9]]
    s.commit(np.zeros(b.logits_shape, np.float32))
    for _ in range(3):
        s.commit(np.zeros(s.next().logits_shape, np.float32))
    b = s.next()  # step 4: a token and the three transition tokens, one bidirectional group
    assert b.slots.tolist() == [4, 5, 6, 7] and b.input_kind[0].tolist() == [1, 2, 2, 2] and b.input_value[0, 1:].tolist() == [1, 2, 3]
    coords, zero = b.rope()
    assert zero.tolist() == [0, 1, 1, 1]
    assert b.mask(8)[:, 4:8].all() and b.written().tolist()[:8] == [1] * 8
    assert not b.slots.flags.writeable


def test_zero_copy_logits_and_torch_tensors():
    p = ordo.plan("raster", "2x2")
    s = ordo.Session(p, [0], 8, greedy=True)
    b = s.next()
    logits = np.zeros(b.logits_shape, np.float32)
    logits[..., 5] = 1.0
    s.commit(logits)
    assert s.tokens(0)[0] == 5
    torch = pytest.importorskip("torch", reason="PyTorch is not installed")
    t = torch.zeros(s.next().logits_shape, dtype=torch.float32)
    t[..., 3] = 2.0
    s.commit(t)  # a CPU tensor through DLPack, no copy
    assert s.tokens(0)[1] == 3


def test_bad_input_is_a_clear_error_and_changes_nothing():
    p = ordo.plan("nar", "4x4")
    s = ordo.Session(p, [1], 16, cfg=2.0, null_label=9)
    with pytest.raises(ValueError, match=r"commit\(\) without next\(\)"):
        s.commit(np.zeros(32, np.float32))
    b = s.next()
    with pytest.raises(ValueError, match=r"next\(\) called twice"):
        s.next()
    shape = b.logits_shape
    with pytest.raises(ValueError, match="float32"):
        s.commit(np.zeros(shape, np.float64))
    with pytest.raises(ValueError, match="needs 64"):
        s.commit(np.zeros(7, np.float32))
    with pytest.raises(ValueError, match="C-contiguous"):
        s.commit(np.zeros((shape[3], shape[0], shape[1], shape[2]), np.float32).transpose(1, 2, 3, 0))
    bad = np.zeros(shape, np.float32)
    bad[1, 0, 1, 3] = np.nan
    with pytest.raises(ValueError, match="sequence 1, row 0, head 1, token 3 are NaN at step 0"):
        s.commit(bad)
    bad[1, 0, 1, 3] = np.inf
    with pytest.raises(ValueError, match="infinite"):
        s.commit(bad)
    assert s.step == 0 and s.pending and (s.tokens(0) == -1).all()
    s.commit(np.zeros(shape, np.float32))
    assert s.step == 1
    with pytest.raises(ValueError, match="rewind"):
        s.rewind(5)
    s.rewind(0)
    assert s.step == 0 and s.tokens(0)[0] == -1
    with pytest.raises(ValueError, match="outside the session"):
        s.tokens(3)
    with pytest.raises(ValueError, match="top_p"):
        ordo.Session(p, [1], 16, top_p=0.0)
    with pytest.raises(ValueError, match="no requests"):
        ordo.Session(p, [], 16)
    with pytest.raises(ValueError, match="int32"):
        p.dense_mask(np.array([1, 2], np.int64))
    with pytest.raises(ValueError, match="outside the plan"):
        p.dense_mask(np.array([99], np.int32))


def test_the_cpu_backend_and_the_oracle():
    name = "par_G8_n4_cfg2.0_label3"
    m = ordo.Model(str(DATA / f"{name}.weights.safetensors"), str(DATA / f"{name}.weights.json"))
    p = ordo.plan("par:2x2", "8x8")
    import json

    run = json.loads((DATA / f"{name}.json").read_text())
    tokens = m.generate(p, [run["label"]], cfg=run["cfg_scale"], greedy=True)
    assert tokens.shape == (1, 64) and tokens[0].tolist() == [t for row in run["tokens_raster"] for t in row]
    with pytest.raises(ValueError, match="ModelArgs"):
        ordo.Model(str(DATA / f"{name}.weights.safetensors"))
    with pytest.raises(ValueError, match="the plan reads 2|heads"):
        m.generate(ordo.plan("nar", "8x8"), [1])
    total, per_step = ordo.exact_kl(ordo.plan("par:2x2", "24x24"), "exp", 2.0)
    assert abs(total - 5.898e-06) < 1e-8 and len(per_step) == 147 and abs(per_step.sum() - total) < 1e-12
    assert ordo.exact_kl(ordo.plan("raster", "8x8"))[0] == 0.0
    with pytest.raises(ValueError, match="kernel"):
        ordo.exact_kl(p, "cubic")


def test_python_session_draws_what_the_cpp_backend_draws():
    """The same seed gives the same tokens: a multinomial decode driven from Python with PyTorch
    logits against ordo.Model.generate (C++ session, Eigen model)."""
    torch = pytest.importorskip("torch", reason="PyTorch is not installed")
    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "examples" / "python"))
    import llamagen

    torch.set_num_threads(1)
    name = "nar_G8_cfg2.0_label3"
    weights, config = DATA / f"{name}.weights.safetensors", DATA / f"{name}.weights.json"
    model = llamagen.GPT.from_files(weights, config)
    cpp = ordo.Model(str(weights), str(config))
    p = ordo.plan("nar", "8x8")
    for seed in (0, 1):
        want = cpp.generate(p, [3, 4], cfg=2.0, seed=seed, top_k=40, temperature=1.0)
        s = ordo.Session(p, [3, 4], cpp.vocab_size, cfg=2.0, seed=seed, top_k=40, null_label=cpp.null_label)
        got = llamagen.decode(model, p, s)
        assert np.array_equal(np.asarray(got), want), seed
