"""ordo: decode orders for autoregressive visual generation.

Plans (what each step of a decode feeds and emits, head mixing, the mask), masks in dense,
FlashInfer-packed and block-sparse forms, Python-defined orders, a step-wise session that mixes
heads, guides and samples, the CPU backend and the exact quality oracle. The C++ library does the
work; arrays come out as read-only NumPy views and go in without a copy. ``ordo.torch`` (needs
PyTorch) builds FlexAttention block masks.
"""

from ._ordo import (
    JacobiSession,
    Model,
    Plan,
    Session,
    StepBatch,
    VQDecoder,
    exact_kl,
    get_num_threads,
    packed_mask_indptr,
    plan,
    plan_from_json,
    plan_from_steps,
    policies,
    set_num_threads,
)

__all__ = [
    "JacobiSession",
    "Model",
    "Plan",
    "Session",
    "StepBatch",
    "VQDecoder",
    "exact_kl",
    "get_num_threads",
    "packed_mask_indptr",
    "plan",
    "plan_from_json",
    "plan_from_steps",
    "policies",
    "set_num_threads",
]
__version__ = "0.1.0"
