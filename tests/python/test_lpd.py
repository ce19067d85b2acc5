"""LPD from Python: query rows in the plan, one order per request in one Session, the per-token CFG ramp."""

import numpy as np
import pytest

import ordo


def test_an_lpd_plan_has_its_queries_in_the_slots_of_their_targets():
    p = ordo.plan("lpd:20", "16x16")
    assert p.num_steps == 20 and p.num_slots == 257 and p.num_queries == 256
    assert p.position_encoding == "cell_table" and p.teacher_forcing == "replay" and p.mask_mode == "step_causal"
    q = p.queries
    assert q.shape == (256, 2) and not q.flags.writeable
    # each query row is written into its target's own slot; the target's token overwrites it a step later
    assert np.array_equal(p.fed[q[:, 0]], p.slot_of[q[:, 1]])
    assert np.array_equal(np.sort(q[:, 1]), np.arange(256))
    sizes = np.diff(p.emit_offsets)
    assert sizes.tolist() == [1, 2, 4, 5, 7, 8, 10, 11, 12, 14, 15, 16, 17, 18, 18, 19, 19, 20, 20, 20]
    # the query rows see their step's queries and what is decoded; the token rows their whole group
    st = p.step(3)
    dense = p.dense_mask(np.array(st["fed"], dtype=np.int32), p.kv_cache_len)
    first = int(p.emit_offsets[3])
    tokens = int(sizes[2])
    assert dense[:tokens].sum(axis=1).tolist() == [1 + first] * tokens
    assert dense[tokens:].sum(axis=1).tolist() == [1 + first + int(sizes[3])] * int(sizes[3])
    # the plan exchange format reads it back
    assert ordo.plan_from_json(p.to_json()).digest == p.digest


def test_bad_lpd_specs_are_named():
    with pytest.raises(ValueError, match="LPD released no group sizes for 576 tokens"):
        ordo.plan("lpd:20", "24x24")
    with pytest.raises(ValueError, match="sum to 35"):
        ordo.plan("lpd:sizes=1+3+8+12+11", "6x6")


def cell_logits(b):
    """Logits that depend on the step, each row's content and the cell it is at (a stand-in for a cell_table model)."""
    v = b.input_value.astype(np.int64) * 7919 + (b.input_cell.astype(np.int64) + 2) * 104723 + np.asarray(b.input_kind, dtype=np.int64) * 31
    v = v[:, :, None, None] + np.arange(b.vocab)[None, None, None, :] * 104729 + b.step
    return ((v % 1000) / 100.0).astype(np.float32)


def run(session):
    while not session.done:
        session.commit(cell_logits(session.next()))
    return [session.tokens(i).copy() for i in range(session.num_requests)]


def test_requests_with_their_own_orders_share_one_session():
    schedule = ordo.plan("lpd:sizes=1+3+8+12+12,seed=request", "6x6")
    orders = [np.asarray(ordo.plan(f"lpd:sizes=1+3+8+12+12,seed={s}", "6x6").order) for s in range(3)]
    kw = dict(cfg=3.0, cfg_ramp="linear_in_rank", seed=5, null_label=10, top_k=8)
    together = run(ordo.Session(schedule, [1, 2, 3], 64, orders=[o.tolist() for o in orders], **kw))
    for i in range(3):
        alone = run(ordo.Session(schedule, [i + 1], 64, ids=[i], orders=[orders[i].tolist()], **kw))
        assert np.array_equal(alone[0], together[i])
        baked = run(ordo.Session(ordo.plan(f"lpd:sizes=1+3+8+12+12,seed={i}", "6x6"), [i + 1], 64, ids=[i], **kw))
        assert np.array_equal(baked[0], together[i])
    # the batch carries each request's cells
    s = ordo.Session(schedule, [1, 2], 64, orders=[orders[0].tolist(), orders[1].tolist()])
    b = s.next()
    assert b.input_kind[0].tolist() == [0, 3] and b.input_cell[:, 1].tolist() == [orders[0][0], orders[1][0]]
    with pytest.raises(ValueError, match="not a permutation"):
        ordo.Session(schedule, [1], 64, orders=[[0] * 36])
    raster = ordo.Session(ordo.plan("raster", "6x6"), [1], 64, orders=[orders[0].tolist()])  # any plan takes a position table
    b = raster.next()
    assert b.input_cell[0].tolist() == [-1] and b.per_request_positions
    with pytest.raises(ValueError, match="cfg_ramp"):
        ordo.Session(schedule, [1], 64, cfg_ramp="cosine")


def test_randar_and_arpg_plans():
    r = ordo.plan("randar:88", "16x16")
    assert r.num_steps == 88 and r.mask_mode == "slot_causal" and r.query_mode == "in_cache"
    assert (r.slot_kind == 3).sum() == 256  # a query slot per position (P_t), beside its token slot
    a = ordo.plan("arpg:64", "16x16")
    assert a.num_steps == 64 and a.query_mode == "cross" and a.num_queries == 256
    # the order can be given: one position table per request over the schedule
    schedule = ordo.plan("randar:88,seed=request", "16x16")
    s = ordo.Session(schedule, [1], 64, orders=[list(range(255, -1, -1))])
    b = s.next()
    assert b.per_request_positions and b.input_cell[0].tolist() == [-1, 255]
    with pytest.raises(ValueError, match="RandAR schedule of 300 steps for 256 tokens"):
        ordo.plan("randar:300", "16x16")


def test_an_arpg_step_mask_shows_the_cross_queries_view():
    p = ordo.plan("arpg:steps=3,seed=0", "2x3")
    s = ordo.Session(p, [1], 8)
    for _ in range(2):  # step 1: the previous group's tokens, then the call's queries
        b = s.next()
        if b.step == 1:
            break
        s.commit(np.zeros(b.logits_shape, dtype=np.float32))
    m = b.mask()
    kinds = b.input_kind[0].tolist()
    written = b.written()
    for r, kind in enumerate(kinds):
        if kind == 3:  # a query sees exactly what is written through the step, its own slot not
            assert np.array_equal(m[r], written)
            assert not m[r][b.slots[r]]
        else:  # a token row sees the cache and its own group
            assert m[r][b.slots[r]]


DATA = __import__("pathlib").Path(__file__).resolve().parents[1] / "data" / "e2e"


@pytest.mark.parametrize("case,spec,ramp,order_key", [
    ("lpd_G16_s20_orderseed0_cfg4.0_label3", "lpd:20", "linear_in_rank", None),
    ("randar_G16_s88_orderseed0_cfg1.0-4.0_label3", "randar:88,seed=request", "linear_in_step_start", "order"),
    ("arpg_G16_s64_orderseed0_cfg4.0_label3", "arpg:64,seed=request", "linear_in_step_end", "order"),
])
def test_the_cpu_models_reproduce_the_official_grids(case, spec, ramp, order_key):
    import json
    run = json.loads((DATA / f"{case}.json").read_text())
    m = ordo.Model(str(DATA / f"{case}.weights.safetensors"), str(DATA / f"{case}.weights.json"))
    orders = [run[order_key]] if order_key else None
    tokens = m.generate(ordo.plan(spec, "16x16"), [run["label"]], cfg=4.0, greedy=True, cfg_ramp=ramp, orders=orders)
    assert tokens.shape == (1, 256)
    assert tokens[0].tolist() == [t for row in run["tokens_raster"] for t in row]
