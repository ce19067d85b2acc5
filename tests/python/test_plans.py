"""ordo's plans from Python: the arrays, zero-copy views, JSON, and orders written in Python."""

import gc
import json

import numpy as np
import pytest

import ordo

GRIDS_AND_ORDERS = [
    ("8x8", "raster"), ("8x8", "par:2x2"), ("16x16", "par:4x4"), ("8x8", "nar"), ("4x8x8", "nar"),
    ("8x8", "par:2x2+nar"), ("8x8", "zipar:3"), ("16x16", "zipar:5"), ("2x4x4", "par:1x2x2"),
]


def test_plan_counts_match_the_closed_forms():
    assert ordo.plan("par:2x2", "24x24").num_steps == 147
    assert ordo.plan("par:4x4", "24x24").num_steps == 51
    assert ordo.plan("nar", "16x16").num_steps == 31
    assert ordo.plan("zipar:5", "16x16").num_steps == 102  # the released ZipAR: 2W + (H-2)w
    assert ordo.plan("zipar:8", "24x24").num_steps == 224
    p = ordo.plan("nar", "16x16")
    assert p.heads == ["R", "B"] and p.mask_mode == "step_causal" and p.teacher_forcing == "full"
    assert p.grid == (16, 16) and p.num_positions == 256 and p.policy == "nar"
    assert "zipar:5" in ordo.policies("16x16")


def test_arrays_are_read_only_zero_copy_views_that_keep_the_plan_alive():
    p = ordo.plan("par:2x2", "8x8")
    fed = p.fed
    assert fed.dtype == np.int32 and not fed.flags.writeable
    with pytest.raises(ValueError):
        fed[0] = 5
    assert fed.ctypes.data == p.fed.ctypes.data  # the same memory each time: no copy
    order = p.order
    del p
    gc.collect()
    assert sorted(order.tolist()) == list(range(64))  # the view owns a reference to the plan
    p = ordo.plan("nar", "6x6")
    w, row, head = p.contrib_weight, p.contrib_row, p.contrib_head  # strided views of one struct array
    assert w.dtype == np.float32 and row.dtype == np.uint16 and head.dtype == np.uint8
    assert len(w) == len(row) == len(head) == p.contrib_offsets[-1]
    assert set(np.unique(w).tolist()) <= {0.5, 1.0}


def test_arrays_describe_the_plan_consistently():
    for grid, spec in GRIDS_AND_ORDERS:
        p = ordo.plan(spec, grid)
        n = p.num_positions
        assert sorted(p.order.tolist()) == list(range(n))
        assert np.array_equal(p.order[p.rank_of], np.arange(n))
        steps = np.searchsorted(p.emit_offsets, np.arange(n), side="right") - 1
        assert np.array_equal(steps, p.step_of[p.order])
        kinds, index = p.slot_kind, p.slot_index
        assert np.array_equal(index[p.slot_of], np.arange(n)) and (kinds[p.slot_of] == 1).all()
        for s in range(0, p.num_steps, max(1, p.num_steps // 7)):
            st = p.step(s)
            lo, hi = p.fed_offsets[s], p.fed_offsets[s + 1]
            assert np.array_equal(st["fed"], p.fed[lo:hi])
            assert len(st["from"]) == len(st["emitted"])


def test_stand_ins_and_rope():
    z = ordo.plan("zipar:3", "8x8")
    assert z.num_stand_ins == 6 and z.stand_ins.shape == (6, 2)
    st = z.step(11)  # the first stand-in: slot 16 of (1, 7) written with a copy of (0, 7), slot 8
    assert st["fed"].tolist() == [11, 16] and st["content"].tolist() == [11, 8]
    coords, zero = z.rope(np.array([0, 16], dtype=np.int32))
    assert zero.tolist() == [1, 0] and coords[1].tolist() == [0, 1, 7]


def test_json_round_trip():
    for grid, spec in GRIDS_AND_ORDERS:
        p = ordo.plan(spec, grid)
        text = p.to_json()
        assert json.loads(text)["format"] == "ordo-plan/3"
        back = ordo.plan_from_json(text)
        assert back == p and back.digest == p.digest and back.policy == p.policy
    with pytest.raises(ValueError, match="kv_cache_len: the file has 7"):
        j = json.loads(ordo.plan("raster", "2x2").to_json())
        j["plan"]["kv_cache_len"] = 7
        ordo.plan_from_json(json.dumps(j))


def steps_of(p):
    """A built-in plan restated as the Python order format: layout and steps."""
    layout = []
    for s in range(p.prefix, p.num_slots):
        layout.append("M" if p.slot_kind[s] == 2 else int(p.slot_index[s]))
    stand_in = {int(r): int(c) for r, c in p.stand_ins}
    steps = []
    for s in range(p.num_steps):
        st = p.step(s)
        first = int(p.fed_offsets[s])
        feed = [(int(slot), stand_in[first + r]) if first + r in stand_in else int(slot) for r, slot in enumerate(st["fed"])]
        emit = [(int(pos), [(row, head, w) for row, head, w in terms]) for pos, terms in zip(st["emitted"], st["from"])]
        steps.append({"feed": feed, "emit": emit})
    return layout, steps


def test_an_order_written_in_python_gives_the_plan_of_its_cpp_twin():
    for grid, spec in GRIDS_AND_ORDERS:
        p = ordo.plan(spec, grid)
        layout, steps = steps_of(p)
        q = ordo.plan_from_steps(grid, steps, layout=layout, mask=p.mask_mode, heads=p.heads, encoding=p.position_encoding,
                                 forcing=p.teacher_forcing, policy="mine")
        assert q == p, spec
        assert q.policy == "mine"
    # the shorthand: (position, row) for a single full-weight term, raster layout by default
    raster = [{"feed": [0], "emit": [(0, 0)]}] + [{"feed": [q], "emit": [(q, 0)]} for q in range(1, 16)]
    assert ordo.plan_from_steps("4x4", raster) == ordo.plan("raster", "4x4")


def test_an_invalid_python_order_is_a_value_error_naming_the_step():
    good = [{"feed": [0], "emit": [(0, 0)]}] + [{"feed": [q], "emit": [(q, 0)]} for q in range(1, 4)]
    twice = [dict(s) for s in good]
    twice[2] = {"feed": [2], "emit": [(1, 0)]}
    with pytest.raises(ValueError, match=r"policy emitted position 1 twice \(steps 1 and 2\)"):
        ordo.plan_from_steps("2x2", twice)
    future = [dict(s) for s in good]
    future[1] = {"feed": [3], "emit": [(1, 0)]}  # slot 3 holds position 2, not emitted yet
    with pytest.raises(ValueError, match=r"step 1 feeds position 2 before it is emitted"):
        ordo.plan_from_steps("2x2", future)
    with pytest.raises(ValueError, match=r"step 1: emit: position 9 is outside the 4-token grid"):
        ordo.plan_from_steps("2x2", [good[0], {"feed": [1], "emit": [(9, 0)]}])
    with pytest.raises(ValueError, match=r"step 0: expected a dict"):
        ordo.plan_from_steps("2x2", [[0]])
    with pytest.raises(ValueError, match=r"step 1: a value has the wrong type"):
        ordo.plan_from_steps("2x2", [good[0], {"feed": ["x"], "emit": []}])
    with pytest.raises(ValueError, match="no head is named"):
        ordo.plan_from_steps("2x2", [{"feed": [0], "emit": [(0, [(0, "B", 1.0)])]}])
    with pytest.raises(ValueError, match="mask must be"):
        ordo.plan_from_steps("2x2", good, mask="causal")


def test_bad_specs_are_value_errors():
    for policy, grid, message in [("par:3x3", "8x8", "not divisible"), ("zipar:1", "8x8", "2..7"), ("warp", "8x8", "unknown policy"),
                                  ("raster", "0x4", "extents must be >= 1"), ("raster", "99999x99999", "more than")]:
        with pytest.raises(ValueError, match=message):
            ordo.plan(policy, grid)


def test_positions_give_1d_ids_of_the_training_layout():
    p = ordo.plan("par:2x2", "4x4")
    pos = p.positions(np.arange(p.train_slots, dtype=np.int32))
    assert pos[0] == -1 and (pos[5:8] == -1).all()  # cls and the three transition tokens M_1..M_3
    assert sorted(pos[pos >= 0].tolist()) == list(range(15))  # every token but the last (shifted forcing)
    coords, zero = p.rope()
    assert np.array_equal(coords[p.slot_of][:, 1] * 4 + coords[p.slot_of][:, 2], np.arange(16))


def test_random_python_orders_are_refused_cleanly():
    """A fuzz of the Python order reader: mutated steps are plans or ValueErrors, nothing else."""
    rng = np.random.default_rng(0)
    base = [{"feed": [0], "emit": [(0, 0)]}] + [{"feed": [q], "emit": [(q, 0)]} for q in range(1, 9)]
    junk = [-1, 0, 3, 9, 99, 2**31, -(2**40), 1.5, "x", None, (1,), (1, 2, 3), [(0, "main", 1.0)], [(0, 7, 1.0)], [(0, 0, 2.0)], {}]
    outcomes = {"plan": 0, "error": 0}
    for _ in range(400):
        steps = [{"feed": list(s["feed"]), "emit": list(s["emit"])} for s in base]
        for _ in range(int(rng.integers(1, 4))):
            s = steps[int(rng.integers(len(steps)))]
            what = int(rng.integers(4))
            if what == 0:
                s["feed"].append(junk[int(rng.integers(len(junk)))])
            elif what == 1 and s["emit"]:
                pos, _ = s["emit"][0]
                s["emit"][0] = (pos, junk[int(rng.integers(len(junk)))])
            elif what == 2:
                s["emit"].append((junk[int(rng.integers(len(junk)))], 0))
            else:
                steps.pop(int(rng.integers(len(steps))))
        try:
            ordo.plan_from_steps("3x3", steps)
            outcomes["plan"] += 1
        except ValueError as e:
            assert str(e), "an error names the problem"
            outcomes["error"] += 1
    assert outcomes["error"] > 300

