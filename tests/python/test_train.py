"""Training under an ordo order and decoding under the same order: a tiny PAR model learns four
token grids from the teacher-forcing forward (ordo's training layout and mask) and then decodes
each of them back through ordo.Session."""

import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

import ordo

torch = pytest.importorskip("torch", reason="PyTorch is not installed: training needs it")
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "examples" / "python"))
import llamagen  # noqa: E402


@pytest.mark.parametrize("spec", ["par:2x2", "nar"])
def test_a_model_trained_under_an_order_decodes_what_it_learned(spec):
    warnings.filterwarnings("ignore", message=".*flex_attention called without torch.compile.*")
    torch.manual_seed(0)
    torch.set_num_threads(1)
    plan = ordo.plan(spec, "8x8")
    args = llamagen.ModelArgs(dim=64, n_layer=2, n_head=4, vocab_size=64, num_classes=10, multiple_of=32,
                              spe_token_num=plan.num_transitions, medusa_attention_num=1 if len(plan.heads) > 1 else 0)
    model = llamagen.GPT(args)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    data = [(np.random.default_rng(i).integers(0, 64, 64).astype(np.int32), i) for i in range(4)]
    for _ in range(40):
        for tokens, label in data:
            logits = llamagen.train_forward(model, plan, tokens, label, attention="sdpa")
            loss = torch.nn.functional.cross_entropy(logits, torch.as_tensor(tokens).long())
            opt.zero_grad()
            loss.backward()
            opt.step()
    assert float(loss) < 0.1
    model.eval()
    for attention in ("sdpa", "flex"):
        s = ordo.Session(plan, [label for _, label in data], args.vocab_size, null_label=args.num_classes, greedy=True)
        got = llamagen.decode(model, plan, s, attention=attention)
        assert np.array_equal(got, np.stack([tokens for tokens, _ in data])), attention
