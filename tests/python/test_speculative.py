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
