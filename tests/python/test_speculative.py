"""Speculative Jacobi decoding (SJD, SCD) through the Python package, on lesson 2's trained raster
checkpoint: greedy SJD is Jacobi decoding (raster's greedy tokens exactly, in fewer forwards),
sampling replays by seed, the counts add up, and misuse is refused."""

from pathlib import Path

import numpy as np
import pytest

import ordo

CKPT = Path(__file__).resolve().parents[2] / "examples" / "python" / "lesson02" / "checkpoints" / "raster"


@pytest.fixture(scope="module")
def model():
    return ordo.Model(f"{CKPT}.safetensors", f"{CKPT}.json")


@pytest.fixture(scope="module")
def raster():
    return ordo.plan("raster", "16x16")


def test_greedy_sjd_is_jacobi_decoding_raster_greedy_tokens_in_fewer_forwards(model, raster):
    labels = [0, 3, 7]
    want = model.generate(raster, labels, greedy=True, cfg=2.0)
    for coupling in ("none", "gumbel", "maximal"):
        got, stats = model.generate(raster, labels, greedy=True, cfg=2.0, jacobi_window=16, coupling=coupling, return_stats=True)
        assert np.array_equal(got, want), coupling
        assert 0 < stats["forward_passes"] < raster.num_steps
        assert len(stats["iterations"]) == 3 and max(stats["iterations"]) <= stats["forward_passes"]


def test_sampled_sjd_replays_by_seed_and_reports_its_forwards(model, raster):
    a, sa = model.generate(raster, [1, 2], cfg=2.0, seed=5, jacobi_window=8, draft_init="left_neighbour", return_stats=True)
    b, sb = model.generate(raster, [1, 2], cfg=2.0, seed=5, jacobi_window=8, draft_init="left_neighbour", return_stats=True)
    assert np.array_equal(a, b) and sa == sb
    assert a.min() >= 0 and a.max() < model.vocab_size
    _, plain = model.generate(raster, [1, 2], cfg=2.0, seed=5, return_stats=True)
    assert plain == {"forward_passes": 256, "iterations": [256, 256]}


def test_speculative_decoding_refuses_what_it_cannot_run(model, raster):
    with pytest.raises(ValueError, match="raster"):
        model.generate(ordo.plan("par:2x2", "16x16"), [1], jacobi_window=4)
    with pytest.raises(ValueError, match="coupling"):
        model.generate(raster, [1], jacobi_window=4, coupling="exact")
    with pytest.raises(ValueError, match="draft_init"):
        model.generate(raster, [1], jacobi_window=4, draft_init="zeros")
    with pytest.raises(ValueError, match="jacobi_window too"):
        model.generate(raster, [1], coupling="gumbel")
    with pytest.raises(ValueError, match="window"):
        model.generate(raster, [1], jacobi_window=257)


# ---- the step-wise JacobiSession, driven by a host engine (here the PyTorch GPT) ----

def torch_gpt():
    pytest.importorskip("torch", reason="the PyTorch GPT needs torch")
    import sys
    sys.path.insert(0, str(CKPT.parents[2]))
    import llamagen
    return llamagen, llamagen.GPT.from_files(f"{CKPT}.safetensors", f"{CKPT}.json")


def test_jacobi_session_drives_a_host_model_window_by_window(model, raster):
    """PyTorch runs each window (the batch's rows, rope and window mask are all it needs); greedy
    SJD/SCD gives the C++ backend's raster greedy tokens in the same number of forwards."""
    llamagen, gpt = torch_gpt()
    labels = [2, 5]
    want, plain = model.generate(raster, labels, greedy=True, cfg=2.0, return_stats=True)
    for coupling in ("none", "maximal"):
        _, stats = model.generate(raster, labels, greedy=True, cfg=2.0, jacobi_window=16, coupling=coupling, return_stats=True)
        s = ordo.JacobiSession(raster, labels, model.vocab_size, window=16, coupling=coupling, cfg=2.0, null_label=model.null_label, greedy=True)
        windows = []
        cache = gpt.new_cache(s.num_sequences, raster.kv_cache_len)
        while not s.done:
            b = s.next()
            windows.append(b.window_steps)
            assert b.mask(raster.kv_cache_len).shape == (b.num_rows, raster.kv_cache_len)
            assert b.num_rows <= s.max_rows
            s.commit(llamagen.step(gpt, raster, b, cache))
        got = np.stack([s.tokens(i) for i in range(s.num_requests)])
        assert np.array_equal(got, want), coupling
        assert s.forward_passes == stats["forward_passes"] == len(windows) < plain["forward_passes"]
        assert [s.iterations(i) for i in range(2)] == stats["iterations"]
        assert max(windows) == 16 and all(s.frontier(i) == raster.num_positions for i in range(2))


def test_jacobi_session_replays_and_refuses_misuse(raster):
    def run(seed):
        s = ordo.JacobiSession(raster, [1], 16, window=4, draft_init="left_neighbour", seed=seed)
        while not s.done:
            b = s.next()
            logits = np.zeros(b.logits_shape, dtype=np.float32)
            logits[..., 3] = 1.0  # a fixed distribution: every window accepts some drafts
            s.commit(logits)
        return s.tokens(0), s.forward_passes
    a, b, c = run(7), run(7), run(8)
    assert np.array_equal(a[0], b[0]) and a[1] == b[1] and not np.array_equal(a[0], c[0])
    assert a[1] < raster.num_positions

    s = ordo.JacobiSession(raster, [1], 16, window=4)
    b = s.next()
    assert (b.window_steps, b.num_rows) == (4, 4)
    with pytest.raises(ValueError, match="twice"):
        s.next()
    bad = np.zeros(b.logits_shape, dtype=np.float32)
    bad[0, 2, 0, 5] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        s.commit(bad)
    assert s.frontier(0) == 0 and s.forward_passes == 0
    with pytest.raises(ValueError, match="needs"):
        s.commit(np.zeros(3, dtype=np.float32))
    s.commit(np.zeros(b.logits_shape, dtype=np.float32))
    assert s.frontier(0) >= 1
    with pytest.raises(ValueError, match="window 0 is outside"):
        ordo.JacobiSession(raster, [1], 16, window=0)
    with pytest.raises(ValueError, match="not raster-like"):
        ordo.JacobiSession(ordo.plan("nar", "16x16"), [1], 16, window=4)
    with pytest.raises(ValueError, match="coupling"):
        ordo.JacobiSession(raster, [1], 16, window=4, coupling="exact")
    with pytest.raises(ValueError, match="outside the session"):
        s.tokens(3)
