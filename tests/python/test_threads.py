"""The CPU backend's thread count and bf16 weights from Python: the same tokens on any thread count,
bf16 close to fp32, bad values named."""

from pathlib import Path

import numpy as np
import pytest

import ordo

DATA = Path(__file__).resolve().parents[1] / "data" / "e2e"
CASE = "par_G8_n4_cfg2.0_label3"


def model(**kw):
    return ordo.Model(str(DATA / f"{CASE}.weights.safetensors"), str(DATA / f"{CASE}.weights.json"), **kw)


@pytest.fixture
def restore_threads():
    before = ordo.get_num_threads()
    yield
    ordo.set_num_threads(before)


def test_tokens_do_not_depend_on_the_thread_count(restore_threads):
    m = model()
    p = ordo.plan("par:2x2", "8x8")
    runs = []
    for n in (1, 2, 3):
        ordo.set_num_threads(n)
        assert ordo.get_num_threads() == n
        runs.append(m.generate(p, [3, 1], cfg=2.0, seed=5, top_k=5))
    assert all(np.array_equal(r, runs[0]) for r in runs)
    assert not np.array_equal(runs[0][0], runs[0][1])


def test_bad_thread_counts_are_named(restore_threads):
    with pytest.raises(ValueError, match="thread count must be >= 1, got 0"):
        ordo.set_num_threads(0)
    with pytest.raises(ValueError, match="got -2"):
        ordo.set_num_threads(-2)


def test_bf16_weights_decode_close_to_fp32():
    p = ordo.plan("par:2x2", "8x8")
    f32, b16 = model(), model(weight_dtype="bf16")
    assert (f32.weight_dtype, b16.weight_dtype) == ("fp32", "bf16")
    tokens = np.zeros(64, dtype=np.int32)
    a, b = f32.teacher_forcing_logits(p, tokens, 3), b16.teacher_forcing_logits(p, tokens, 3)
    err = np.abs(a - b).max()
    assert 0 < err < 8 * 2.0**-8 * np.abs(a).max()  # docs/cpu-backend.md: bf16 accuracy
    assert (a.argmax(1) == b.argmax(1)).mean() >= 0.9


def test_bad_weight_dtype_is_named():
    with pytest.raises(ValueError, match='must be "fp32" or "bf16", got "int8"'):
        model(weight_dtype="int8")
    lpd = "lpd_G16_s20_orderseed0_cfg4.0_label3"
    with pytest.raises(ValueError, match="LPD and ARPG run in fp32"):
        ordo.Model(str(DATA / f"{lpd}.weights.safetensors"), str(DATA / f"{lpd}.weights.json"), weight_dtype="bf16")
