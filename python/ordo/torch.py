"""ordo.torch: an ordo plan's mask for PyTorch's FlexAttention (needs PyTorch >= 2.5).

A mask is a predicate plus a block-sparse summary (FlexAttention's BlockMask). ordo computes the
summary exactly from the plan (``Plan.block_mask``: per query block the kv blocks all of whose
pairs are visible, and those with some), and the predicate, ``mask_mod``, is evaluated only on the
partial blocks. ``flex_attention(q, k, v, block_mask=ordo.torch.block_mask(plan))`` then trains
under any ordo order; with ``q_slots`` (the rows a decode step feeds) it decodes under it.

Under a ``slot_causal`` plan (ZipAR) a visible slot not written yet by the step must read as
K = V = 0 (``StepBatch.written``): zero those cache rows, as the official zero-initialised cache
is; the mask itself is the same either way.
"""

from __future__ import annotations

import numpy as np
import torch
from torch.nn.attention.flex_attention import BlockMask

from ._ordo import Plan

__all__ = ["block_mask", "dense_mask", "mask_mod"]


def _rows(plan: Plan, q_slots, kv_len):
    if q_slots is None:
        q = np.arange(plan.train_slots, dtype=np.int32)
        kv = plan.train_slots if kv_len is None else int(kv_len)
    else:
        q = np.ascontiguousarray(np.asarray(q_slots), dtype=np.int32)
        if q.ndim != 1:
            raise ValueError(f"q_slots must be 1-D, got {q.ndim} dimensions")
        kv = plan.kv_cache_len if kv_len is None else int(kv_len)
    if kv < 1:
        raise ValueError(f"kv_len must be >= 1, got {kv}")
    return q, kv


def mask_mod(plan: Plan, q_slots=None, device=None):
    """FlexAttention's mask_mod for the plan: ``(b, h, q_idx, kv_idx) -> visible(q_slots[q_idx], kv_idx)``.

    q_slots: the query rows' slots (default: the training layout, slot i at row i). The rule is
    ordo's (docs/concepts.md, the mask): under step_causal a slot sees the slots written by its
    step (the prefix is causal among itself); under slot_causal every slot up to its own. Slots
    past the layout are never visible.
    """
    q, _ = _rows(plan, q_slots, 1)
    qs = torch.as_tensor(q.astype(np.int64), device=device)
    fs = torch.as_tensor(np.asarray(plan.fed_step).astype(np.int64), device=device)
    n, prefix = plan.num_slots, plan.prefix
    by_slot_only = plan.mask_mode == "slot_causal"

    def mod(b, h, q_idx, kv_idx):
        slot = qs[q_idx]
        inside = kv_idx < n
        kv = torch.clamp(kv_idx, max=n - 1)
        causal = kv <= slot
        if by_slot_only:
            return inside & causal
        return inside & torch.where(slot < prefix, causal, fs[kv] <= fs[slot])

    return mod


def dense_mask(plan: Plan, q_slots=None, kv_len=None, device=None) -> torch.Tensor:
    """The mask as a bool tensor [rows, kv_len] (True: may attend), e.g. for scaled_dot_product_attention."""
    q, kv = _rows(plan, q_slots, kv_len)
    return torch.from_numpy(plan.dense_mask(q, kv)).to(device)


# BlockMask's layout of a CSR list: counts [nq] and indices [nq, kv blocks], each row's blocks first.
def _csr_to_dense(offsets, blocks, nq: int, nkv: int):
    counts = np.diff(np.asarray(offsets)).astype(np.int32)
    idx = np.zeros((nq, nkv), dtype=np.int32)
    for i in range(nq):
        row = blocks[offsets[i]:offsets[i + 1]]
        idx[i, : len(row)] = row
    return counts, idx


def block_mask(plan: Plan, q_slots=None, kv_len=None, block_size=128, device=None) -> BlockMask:
    """A FlexAttention BlockMask for the plan's mask, from ordo's exact block-sparse summary.

    q_slots: the query rows' slots (default: the training layout [0, train_slots)); kv_len: the kv
    slots [0, kv_len) (default: train_slots for the training layout, else the decode cache,
    plan.kv_cache_len). block_size: an int or (q block, kv block).
    """
    q, kv = _rows(plan, q_slots, kv_len)
    bq, bkv = (block_size, block_size) if isinstance(block_size, int) else block_size
    if bq < 1 or bkv < 1:
        raise ValueError(f"block sizes must be >= 1, got {bq} x {bkv}")
    summary = plan.block_mask(q, kv, bq, bkv)
    nq, nkv = (len(q) + bq - 1) // bq, (kv + bkv - 1) // bkv
    partial_n, partial_idx = _csr_to_dense(summary["partial_offsets"], summary["partial_blocks"], nq, nkv)
    full_n, full_idx = _csr_to_dense(summary["full_offsets"], summary["full_blocks"], nq, nkv)

    def t(a):
        return torch.as_tensor(a, device=device)[None, None]

    return BlockMask.from_kv_blocks(
        t(partial_n), t(partial_idx), t(full_n), t(full_idx),
        BLOCK_SIZE=(bq, bkv), mask_mod=mask_mod(plan, q, device), seq_lengths=(len(q), kv),
    )
