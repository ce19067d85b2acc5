"""Lesson 2 (examples/python/lesson02): the data, the judges, the pictures, and the committed
checkpoints - loaded unchanged, refused under an order they do not fit, and decoded by ordo's CPU
backend into the quality the committed table records (the regression check of the decode path)."""

import json
import struct
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest

import ordo

pytest.importorskip("torch", reason="PyTorch is not installed: the lesson needs it")
pytest.importorskip("sklearn", reason="scikit-learn is not installed: the lesson's data and judges need it")
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "examples" / "python" / "lesson02"))
import digits  # noqa: E402
import lesson02  # noqa: E402
import pictures  # noqa: E402


def test_the_digits_become_16x16_grids_of_16_levels_with_a_stratified_held_out_fifth():
    tokens, labels = digits.token_grids()
    assert tokens.shape == (1797, 256) and labels.shape == (1797,)
    assert tokens.min() == 0 and tokens.max() == 15
    s = digits.split()
    assert len(s["train"][0]) + len(s["test"][0]) == 1797 and len(s["test"][0]) == 360
    assert np.abs(np.bincount(s["test"][1]) / 360 - np.bincount(labels) / 1797).max() < 0.01  # stratified
    again = digits.split()
    assert np.array_equal(s["test"][0], again["test"][0])  # the split is fixed


def test_the_judges_tell_real_digits_from_noise():
    judge = digits.Judge()
    s = digits.split()
    assert judge.accuracy(*s["test"]) > 0.95
    real = judge.frechet(s["train"][0])
    noise = judge.frechet(np.random.default_rng(0).integers(0, 16, (360, 256)))
    assert np.isfinite(real) and np.isfinite(noise) and real < 0.5 < 5.0 < noise


def test_the_frechet_distance_is_the_closed_form_on_gaussians():
    rng = np.random.default_rng(1)
    a = rng.normal(size=(20000, 3))
    b = rng.normal(size=(20000, 3)) * 2.0 + 1.0
    # N(0, I) vs N(1, 4I): |mu|^2 = 3, tr(I + 4I - 2 * 2I) = 3
    assert abs(digits.frechet_distance(a, b) - 6.0) < 0.15
    assert abs(digits.frechet_distance(a, a)) < 1e-6


def test_the_png_writer_writes_what_a_png_reader_reads(tmp_path):
    img = np.random.default_rng(2).integers(0, 256, (5, 7, 3)).astype(np.uint8)
    pictures.write_png(tmp_path / "x.png", img)
    raw = (tmp_path / "x.png").read_bytes()
    assert raw[:8] == b"\x89PNG\r\n\x1a\n"
    w, h = struct.unpack(">II", raw[16:24])
    assert (w, h) == (7, 5)
    n = struct.unpack(">I", raw[33:37])[0]
    assert raw[37:41] == b"IDAT"
    rows = zlib.decompress(raw[41 : 41 + n])
    back = np.frombuffer(rows, dtype=np.uint8).reshape(5, 1 + 21)
    assert (back[:, 0] == 0).all() and np.array_equal(back[:, 1:].reshape(5, 7, 3), img)


def _stem(name):
    return lesson02.CHECKPOINTS / name


@pytest.mark.parametrize("order", lesson02.ORDERS, ids=lambda o: o.name)
def test_each_committed_checkpoint_is_small_and_loads_unchanged(order):
    stem = _stem(order.name)
    assert Path(f"{stem}.safetensors").stat().st_size <= 2 * 1024 * 1024
    m = lesson02.load(stem)  # ordo's CPU backend, official key names, strict shapes
    assert (m.vocab_size, m.num_classes) == (digits.VOCAB, digits.CLASSES)
    record = json.loads(Path(f"{stem}.train.json").read_text())
    assert record["steps"] == lesson02.STEPS and record["seed"] == lesson02.TRAIN_SEED


def test_a_checkpoint_decoded_under_an_order_it_was_not_trained_for_is_refused():
    par = lesson02.load(_stem("par4"))
    with pytest.raises(ValueError, match="2 output heads.*checkpoint has 1"):
        par.generate(lesson02.plan("nar"), [3])
    with pytest.raises(ValueError, match="15 PAR transition tokens.*checkpoint has 3"):
        par.generate(lesson02.plan("par:4x4"), [3])
    with pytest.raises(ValueError, match="position-instruction"):
        lesson02.load(_stem("raster")).generate(lesson02.plan("randar:88"), [3])
    with pytest.raises(ValueError, match="LPD"):
        lesson02.load(_stem("lpd")).generate(lesson02.plan("nar"), [3])


def test_the_committed_checkpoints_decode_to_the_committed_table():
    """Every checkpoint decoded by ordo with seed 0, 100 images per class: class accuracy,
    Fréchet distance and held-out NLL within lesson02.TOLERANCE of table.json, raster's accuracy
    at least lesson02.RASTER_ACCURACY_FLOOR."""
    failures = lesson02.check(log=lambda *a: None)
    assert not failures, "\n".join(failures)
