"""The PyTorch LlamaGen of examples/python/llamagen.py against the official code and the CPU backend.

Golden data (tests/data/e2e, see tests/data/golden/README.md and README-zipar.md): tiny LlamaGen
(raster), PAR and NAR checkpoints and a raster checkpoint decoded by the released ZipAR, with the
official greedy token grids, every decode step's sampler logits (after head mixing and CFG 2.0)
and the official training forward's logits. Here the model is driven by ordo's Session and masks,
with both attention paths (SDPA with the dense mask, FlexAttention with a BlockMask); the C++
tests/test_gpt_golden.cpp checks the Eigen backend against the same files.
"""

import json
import sys
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="the PyTorch models need torch (pip install torch)")
ordo = pytest.importorskip("ordo", reason="the ordo extension is not importable (build it, or set PYTHONPATH)")

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent.parent / "examples" / "python"))
import llamagen  # noqa: E402

E2E = HERE.parent / "data" / "e2e"

# Eager FlexAttention on the CPU warns that it is unfused; for these tiny models that is the point.
pytestmark = pytest.mark.filterwarnings("ignore:flex_attention called without torch.compile")

# A backend that sums in another order than the official run differs by ~1e-5 (golden README); the
# greedy tokens stay exact because the smallest top-1/top-2 margin is 3.7e-3.
TOL = 1e-4

# (case, ordo policy, has a .teacher file: ZipAR is training-free, its model trains as raster)
CASES = [
    ("raster_G8_cfg2.0_label3", "raster", True),
    ("par_G8_n4_cfg2.0_label3", "par:2x2", True),
    ("nar_G8_cfg2.0_label3", "nar", True),
    ("zipar_G8_w3_cfg2.0_label3", "zipar:3", False),
]
DECODE_CASES = [pytest.param(c, p, id=p) for c, p, _ in CASES]
TEACHER_CASES = [pytest.param(c, p, id=p) for c, p, t in CASES if t]
ATTENTION = ["sdpa", "flex"]


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    # The models are tiny: threads only add overhead (and contend with other work on the machine).
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def max_abs_diff(ours, ref) -> float:
    """max |ours - ref|, asserting matching shapes and finite values.

    NaN compares false, so `assert d < tol` already fails on NaN; the explicit isfinite checks
    also catch an inf on either side and say which one.
    """
    ours, ref = np.asarray(ours, dtype=np.float64), np.asarray(ref, dtype=np.float64)
    assert ours.shape == ref.shape, (ours.shape, ref.shape)
    assert np.isfinite(ours).all(), "our logits hold NaN or inf"
    assert np.isfinite(ref).all(), "the reference logits hold NaN or inf"
    return float(np.max(np.abs(ours - ref)))


def assert_close(ours, ref, tol=TOL) -> float:
    d = max_abs_diff(ours, ref)
    assert d < tol, f"max |diff| = {d:.3g} >= {tol:.3g}"
    return d


_models: dict = {}


def load(case: str):
    """(model, run record) of a golden case, loaded once per test session."""
    if case not in _models:
        model = llamagen.GPT.from_files(E2E / f"{case}.weights.safetensors", E2E / f"{case}.weights.json")
        run = json.loads((E2E / f"{case}.json").read_text())
        _models[case] = (model, run)
    return _models[case]


def grid(run) -> np.ndarray:
    return np.asarray(run["tokens_raster"], dtype=np.int32).reshape(-1)


def teacher(case: str):
    t = llamagen.load_safetensors(E2E / f"{case}.teacher.safetensors")
    ref = t["logits_raster"] if "logits_raster" in t else t["logits"]
    return t["tokens_raster"].numpy(), int(t["label"][0]), ref.numpy()


def cpu_backend(case: str):
    return ordo.Model(str(E2E / f"{case}.weights.safetensors"), str(E2E / f"{case}.weights.json"))


# --- the reader and the config -----------------------------------------------------------------


@pytest.mark.parametrize("case", [c for c, _, _ in CASES])
def test_checkpoint_reads_with_its_config(case):
    info = json.loads((E2E / f"{case}.weights.json").read_text())
    args = llamagen.ModelArgs.from_json(E2E / f"{case}.weights.json")
    assert args.ffn_hidden == info["ffn_hidden_dim"]
    assert args.head_dim == info["head_dim"]
    assert args.num_classes + 1 == info["label_table_rows"]
    weights = llamagen.load_safetensors(E2E / f"{case}.weights.safetensors")
    assert {k: list(v.shape) for k, v in weights.items()} == info["tensors"]
    assert all(v.dtype == torch.float32 for v in weights.values())
    # the model has exactly the checkpoint's tensors (load_state_dict is strict)
    model, _ = load(case)
    assert set(model.state_dict()) == set(info["tensors"])


def test_safetensors_reader_reads_int64():
    t = llamagen.load_safetensors(E2E / "raster_G8_cfg2.0_label3.teacher.safetensors")
    assert t["tokens_raster"].dtype == torch.int64 and t["tokens_raster"].shape == (64,)
    assert t["label"].tolist() == [3]


def test_tolerance_check_fails_on_nan_and_inf():
    a = np.zeros(4, dtype=np.float32)
    for bad in (np.nan, np.inf, -np.inf):
        b = a.copy()
        b[2] = bad
        with pytest.raises(AssertionError):
            assert_close(b, a)
        with pytest.raises(AssertionError):
            assert_close(a, b)
    # and the plain comparison alone already fails on NaN
    assert not (np.max(np.abs(np.array([np.nan]))) < TOL)
    with pytest.raises(AssertionError):
        assert_close(a + 1e-3, a)
    assert assert_close(a + 1e-5, a) < TOL


# --- decoding --------------------------------------------------------------------------------


def golden_session(plan, model, run, cfg=None):
    return ordo.Session(plan, [run["label"]], model.args.vocab_size, cfg=run["cfg_scale"] if cfg is None else cfg,
                        null_label=model.args.num_classes, greedy=True)


@pytest.mark.parametrize("attention", ATTENTION)
@pytest.mark.parametrize("case,policy", DECODE_CASES)
def test_decode_equals_official_generate(case, policy, attention, record_property):
    """Greedy decode with CFG 2.0: the official token grid, and every step's sampler logits."""
    model, run = load(case)
    plan = ordo.plan(policy, "8x8")
    assert plan.num_steps == run["num_forward_calls"]
    if "kv_cache_len" in run:
        assert plan.kv_cache_len == run["kv_cache_len"]
    session = golden_session(plan, model, run)
    tokens, steps = llamagen.decode(model, plan, session, attention=attention, return_logits=True)
    ref = llamagen.load_safetensors(E2E / f"{case}.logits.safetensors")
    assert len(steps) == plan.num_steps == len(ref)
    worst = max(max_abs_diff(ours[0], ref[f"step_{k:03d}"].numpy()) for k, ours in enumerate(steps))
    record_property("max_abs_diff", worst)
    print(f"{case} {attention}: max |logit diff| over {len(steps)} steps = {worst:.3g}")
    assert worst < TOL
    np.testing.assert_array_equal(tokens[0], grid(run))


@pytest.mark.parametrize("case,policy", DECODE_CASES)
def test_decode_without_cfg_equals_cpu_backend(case, policy):
    """cfg 1.0 (one sequence per request): the same greedy grid as ordo's C++ CPU backend."""
    model, run = load(case)
    plan = ordo.plan(policy, "8x8")
    want = cpu_backend(case).generate(plan, [run["label"]], greedy=True)
    for attention in ATTENTION:
        session = golden_session(plan, model, run, cfg=1.0)
        assert session.num_sequences == 1
        tokens = llamagen.decode(model, plan, session, attention=attention)
        np.testing.assert_array_equal(tokens, want, err_msg=attention)


def test_used_cache_gives_the_same_zipar_decode():
    """ZipAR's mask shows slots not written yet; they must read as zeros whatever the cache holds
    (here NaN), as the official zero-initialised cache does."""
    case, policy = "zipar_G8_w3_cfg2.0_label3", "zipar:3"
    model, run = load(case)
    plan = ordo.plan(policy, "8x8")
    session = golden_session(plan, model, run)
    cache = model.new_cache(session.num_sequences, plan.kv_cache_len)
    cache.k.fill_(float("nan"))
    cache.v.fill_(float("nan"))
    tokens, steps = llamagen.decode(model, plan, session, return_logits=True, cache=cache)
    ref = llamagen.load_safetensors(E2E / f"{case}.logits.safetensors")
    for k, ours in enumerate(steps):
        assert_close(ours[0], ref[f"step_{k:03d}"].numpy())
    np.testing.assert_array_equal(tokens[0], grid(run))


@pytest.mark.parametrize("policy", ["par:2x2", "zipar:3"])
def test_flex_with_torch_block_mask(policy):
    """The fallback when ordo.torch is missing: torch's create_block_mask from the dense mask."""
    case = {p: c for c, p, _ in CASES}[policy]
    model, run = load(case)
    plan = ordo.plan(policy, "8x8")
    tokens = llamagen.decode(model, plan, golden_session(plan, model, run), attention="flex", use_ordo_block_mask=False)
    np.testing.assert_array_equal(tokens[0], grid(run))


# --- the training forward --------------------------------------------------------------------


@pytest.mark.parametrize("attention", ATTENTION)
@pytest.mark.parametrize("case,policy", TEACHER_CASES)
def test_train_forward_equals_official_training_forward(case, policy, attention, record_property):
    model, _ = load(case)
    plan = ordo.plan(policy, "8x8")
    tokens, label, ref = teacher(case)
    with torch.no_grad():  # FlexAttention has no CPU backward, and none is needed here
        ours = llamagen.train_forward(model, plan, tokens, label, attention=attention).numpy()
    d = assert_close(ours, ref)
    record_property("max_abs_diff", d)
    print(f"{case} {attention}: teacher-forced max |logit diff| = {d:.3g}")
    # and the C++ CPU backend's teacher forcing
    cpp = cpu_backend(case).teacher_forcing_logits(plan, tokens.astype(np.int32), label)
    assert_close(ours, cpp)


@pytest.mark.parametrize("case,policy", TEACHER_CASES)
def test_train_forward_flex_with_torch_block_mask(case, policy):
    model, _ = load(case)
    plan = ordo.plan(policy, "8x8")
    tokens, label, ref = teacher(case)
    with torch.no_grad():
        assert_close(llamagen.train_forward(model, plan, tokens, label, attention="flex", use_ordo_block_mask=False).numpy(), ref)
