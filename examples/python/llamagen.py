"""LlamaGen's GPT in PyTorch, decoded step by step under any ordo plan.

A compact re-implementation of the class-conditional GPT of LlamaGen (raster order), with the two
additions its descendants make:

* PAR's transition tokens M_1..M_{n-1}: an extra embedding table (``spe_tok_embeddings``) whose
  rows are fed when PAR starts decoding its regions in parallel;
* NAR's extra transformer block and second output head (``medusa_norm`` / ``medusa_output``):
  head 0 (R, "right neighbour") is read after the trunk's ``n_layer`` blocks, head 1 (B, "below
  neighbour") after the extra block.

It loads the official checkpoints (state-dict key names unchanged) and reproduces the official
logits (see tests/python/test_torch_models.py). The model knows nothing about decode orders: ordo
tells it, per step, which rows to run (``Session.next()``), at which cache slots, with which RoPE
coordinates and under which mask; the model returns one logit vector per (sequence, row, head) and
``Session.commit()`` mixes heads, applies classifier-free guidance and samples.

Two drivers:

* :func:`decode` - the inference loop over an ``ordo.Session`` with a slot-addressed KV cache;
* :func:`train_forward` - the teacher-forcing forward: the whole training layout in one pass under
  ``plan.train_mask()``, each position's logits mixed from the (slot, head, weight) terms the plan
  names.

Attention runs either with ``torch.nn.functional.scaled_dot_product_attention`` and the plan's dense
bool mask ("sdpa") or with FlexAttention and a block-sparse ``BlockMask`` ("flex").

Everything is float32 on the CPU; the golden checkpoints are tiny (dim 64, 2 layers).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

# ---------------------------------------------------------------------------------------------
# safetensors, read by hand
# ---------------------------------------------------------------------------------------------

# The dtypes the golden files use (safetensors names -> little-endian NumPy dtypes).
_SAFETENSORS_DTYPES = {
    "F32": np.dtype("<f4"),
    "F64": np.dtype("<f8"),
    "I32": np.dtype("<i4"),
    "I64": np.dtype("<i8"),
}


def load_safetensors(path) -> dict[str, torch.Tensor]:
    """Every tensor of a .safetensors file, as CPU tensors.

    The format is simple enough to read without the ``safetensors`` package: 8 bytes of
    little-endian header length, a JSON header mapping each name to its dtype, shape and
    [begin, end) byte range relative to the end of the header, then the raw data.
    """
    raw = Path(path).read_bytes()
    if len(raw) < 8:
        raise ValueError(f"{path}: too short for a safetensors file")
    header_len = int.from_bytes(raw[:8], "little")
    if 8 + header_len > len(raw):
        raise ValueError(f"{path}: header length {header_len} runs past the end of the file")
    header = json.loads(raw[8 : 8 + header_len])
    data = memoryview(raw)[8 + header_len :]
    out = {}
    for name, entry in header.items():
        if name == "__metadata__":  # free-form strings (case, repo, commit)
            continue
        dtype = _SAFETENSORS_DTYPES.get(entry["dtype"])
        if dtype is None:
            raise ValueError(f"{path}: tensor {name} has dtype {entry['dtype']}, not supported here")
        begin, end = entry["data_offsets"]
        shape = tuple(entry["shape"])
        if not (0 <= begin <= end <= len(data)) or end - begin != math.prod(shape) * dtype.itemsize:
            raise ValueError(f"{path}: tensor {name}: byte range {begin}..{end} does not hold {shape} x {dtype}")
        # frombuffer views the file's bytes (read-only); copy so that torch owns writable memory
        array = np.frombuffer(data[begin:end], dtype=dtype).reshape(shape)
        out[name] = torch.from_numpy(array.astype(dtype.newbyteorder("="), copy=True))
    return out


def save_safetensors(path, tensors: dict, metadata: dict | None = None) -> None:
    """Writes tensors (name -> torch tensor) as a float32 safetensors file, names sorted, the
    inverse of load_safetensors: what ordo's loaders read (official key names are the caller's)."""
    names = sorted(tensors)
    header, blobs, offset = {}, [], 0
    for name in names:
        a = np.ascontiguousarray(tensors[name].detach().cpu().numpy(), dtype="<f4")
        header[name] = {"dtype": "F32", "shape": list(a.shape), "data_offsets": [offset, offset + a.nbytes]}
        blobs.append(a.tobytes())
        offset += a.nbytes
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)  # the data section starts 8-byte aligned
    tmp = Path(str(path) + ".tmp")
    tmp.write_bytes(len(text).to_bytes(8, "little") + text + b"".join(blobs))
    tmp.replace(path)


# ---------------------------------------------------------------------------------------------
# the configuration
# ---------------------------------------------------------------------------------------------


def ffn_hidden(dim: int, ffn_dim_multiplier: float | None, multiple_of: int) -> int:
    """LlamaGen's FeedForward width (ARPG's too): 2/3 of 4 * dim, times the multiplier, rounded up to multiple_of."""
    hidden = int(2 * (4 * dim) / 3)
    if ffn_dim_multiplier is not None:
        hidden = int(ffn_dim_multiplier * hidden)
    return -(-hidden // multiple_of) * multiple_of


@dataclass
class ModelArgs:
    """The official ModelArgs fields that shape the weights (dropouts and init ranges do not)."""

    dim: int = 768
    n_layer: int = 12
    n_head: int = 12
    n_kv_head: int | None = None  # None: no grouped-query attention
    vocab_size: int = 16384
    num_classes: int = 1000  # the class table has one more row: the null class (CFG's uncond)
    cls_token_num: int = 1
    multiple_of: int = 256
    ffn_dim_multiplier: float | None = None
    norm_eps: float = 1e-5
    rope_base: float = 10000.0
    spe_token_num: int = 0  # PAR: transition tokens M_1..M_n
    medusa_attention_num: int = 0  # NAR: extra blocks before the second head
    position_instruction: bool = False  # RandAR: the position-instruction vector pos_instruct_embeddings

    @classmethod
    def from_json(cls, path) -> "ModelArgs":
        """From a ModelArgs JSON: a bare object, or a file holding it under ``model_args``."""
        d = json.loads(Path(path).read_text())
        d = d.get("model_args", d)
        if d.get("model_type", "c2i") != "c2i":
            raise ValueError(f"{path}: model_type {d['model_type']!r}: only class-conditional (c2i) models")
        known = {f for f in cls.__dataclass_fields__}
        args = cls(**{k: v for k, v in d.items() if k in known})
        # the official code writes None for "none" in both extensions
        args.spe_token_num = args.spe_token_num or 0
        args.medusa_attention_num = args.medusa_attention_num or 0
        return args

    def to_json(self, path) -> None:
        """Writes {"model_args": {...}}: what from_json, `ordo generate --config` and ordo.Model read."""
        Path(path).write_text(json.dumps({"model_args": {"model_type": "c2i", **self.__dict__}}, indent=1) + "\n")

    @property
    def head_dim(self) -> int:
        return self.dim // self.n_head

    @property
    def kv_heads(self) -> int:
        return self.n_kv_head or self.n_head

    @property
    def ffn_hidden(self) -> int:
        return ffn_hidden(self.dim, self.ffn_dim_multiplier, self.multiple_of)


# ---------------------------------------------------------------------------------------------
# the model
# ---------------------------------------------------------------------------------------------


class RMSNorm(nn.Module):
    def __init__(self, dim: int, eps: float):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight


class Attention(nn.Module):
    def __init__(self, a: ModelArgs):
        super().__init__()
        self.n_head, self.kv_heads, self.head_dim = a.n_head, a.kv_heads, a.head_dim
        # one projection for q, k and v: rows [q; k; v], as the checkpoint stores them
        self.wqkv = nn.Linear(a.dim, (a.n_head + 2 * a.kv_heads) * a.head_dim, bias=False)
        self.wo = nn.Linear(a.n_head * a.head_dim, a.dim, bias=False)


class FeedForward(nn.Module):
    def __init__(self, a: ModelArgs):
        super().__init__()
        self.w1 = nn.Linear(a.dim, a.ffn_hidden, bias=False)
        self.w3 = nn.Linear(a.dim, a.ffn_hidden, bias=False)
        self.w2 = nn.Linear(a.ffn_hidden, a.dim, bias=False)

    def forward(self, x):
        return self.w2(F.silu(self.w1(x)) * self.w3(x))  # SwiGLU


class Block(nn.Module):
    def __init__(self, a: ModelArgs):
        super().__init__()
        self.attention = Attention(a)
        self.feed_forward = FeedForward(a)
        self.attention_norm = RMSNorm(a.dim, a.norm_eps)
        self.ffn_norm = RMSNorm(a.dim, a.norm_eps)


class ClassEmbedding(nn.Module):  # only so that the key reads cls_embedding.embedding_table.weight
    def __init__(self, a: ModelArgs):
        super().__init__()
        self.embedding_table = nn.Embedding(a.num_classes + 1, a.dim)


class TransitionEmbedding(nn.Module):  # PAR: spe_tok_embeddings.special_embeddings.weight, row i = M_{i+1}
    def __init__(self, a: ModelArgs):
        super().__init__()
        self.special_embeddings = nn.Embedding(a.spe_token_num, a.dim)


class KVCache:
    """Keys and values per layer and sequence, addressed by slot: [layers, sequences, kv_heads, slots, head_dim].

    Which slot a row writes and which slots it reads are ordo's business (StepBatch.slots, .mask);
    the cache is only storage.
    """

    def __init__(self, args: ModelArgs, layers: int, sequences: int, slots: int):
        shape = (layers, sequences, args.kv_heads, slots, args.head_dim)
        self.k = torch.zeros(shape)
        self.v = torch.zeros(shape)

    @property
    def num_slots(self) -> int:
        return self.k.shape[3]


class GPT(nn.Module):
    """The LlamaGen GPT (class-conditional), with PAR's transition tokens and NAR's B head if the
    config has them. Parameter names are the official state-dict keys."""

    def __init__(self, args: ModelArgs):
        super().__init__()
        if args.cls_token_num != 1:
            raise ValueError("only class-conditional models with one prefix row (cls_token_num 1)")
        if args.head_dim % 4:
            raise ValueError("2D RoPE rotates head_dim/4 pairs per axis: head_dim must be a multiple of 4")
        self.args = args
        self.cls_embedding = ClassEmbedding(args)
        self.tok_embeddings = nn.Embedding(args.vocab_size, args.dim)
        if args.spe_token_num:
            self.spe_tok_embeddings = TransitionEmbedding(args)
        if args.position_instruction:  # RandAR's P token, a parameter of the root module
            self.pos_instruct_embeddings = nn.Parameter(torch.zeros(1, args.dim))
        self.layers = nn.ModuleList(Block(args) for _ in range(args.n_layer + args.medusa_attention_num))
        self.norm = RMSNorm(args.dim, args.norm_eps)
        self.output = nn.Linear(args.dim, args.vocab_size, bias=False)
        if args.medusa_attention_num:
            self.medusa_norm = RMSNorm(args.dim, args.norm_eps)
            self.medusa_output = nn.Linear(args.dim, args.vocab_size, bias=False)
        # RoPE frequencies f_k = base^(-2k / (head_dim/2)), in float32 as the official table
        quarter = args.head_dim // 4
        half = args.head_dim // 2
        freqs = 1.0 / (args.rope_base ** (torch.arange(0, half, 2)[:quarter].float() / half))
        self.register_buffer("freqs", freqs, persistent=False)  # not a checkpoint tensor

    @classmethod
    def from_files(cls, weights, config) -> "GPT":
        """An official checkpoint: its safetensors file and its ModelArgs JSON."""
        model = cls(ModelArgs.from_json(config))
        model.load_state_dict(load_safetensors(weights), strict=True)
        return model.eval()

    @property
    def num_heads(self) -> int:
        return 2 if self.args.medusa_attention_num else 1

    def new_cache(self, sequences: int, slots: int) -> KVCache:
        return KVCache(self.args, len(self.layers), sequences, slots)

    # --- pieces of the forward ---------------------------------------------------------------

    def embed(self, kind: torch.Tensor, value: torch.Tensor) -> torch.Tensor:
        """[sequences, rows] (kind, id) -> [sequences, rows, dim]: class label, token or M_value."""
        x = torch.empty(*kind.shape, self.args.dim)
        prefix, token, transition = kind == 0, kind == 1, kind == 2
        x[prefix] = self.cls_embedding.embedding_table(value[prefix])
        x[token] = self.tok_embeddings(value[token])
        if transition.any():
            if not self.args.spe_token_num:
                raise ValueError("the plan feeds PAR transition tokens; this checkpoint has none")
            x[transition] = self.spe_tok_embeddings.special_embeddings(value[transition] - 1)  # M_i is row i-1
        return x

    def rope_tables(self, coords: torch.Tensor, zero: torch.Tensor):
        """cos and sin [rows, head_dim/2] of each row's 2D rotation.

        Pair j < head_dim/4 turns by row * f_j, pair j >= head_dim/4 by col * f_(j - head_dim/4).
        A zero flag (the class token, PAR's M tokens) sets cos = sin = 0: the official table has a
        zero row there, which makes q and k exactly zero - not an identity rotation.
        """
        row = coords[..., 1].float()[..., None] * self.freqs  # [rows, head_dim/4] (or [sequences, rows, ...])
        col = coords[..., 2].float()[..., None] * self.freqs
        angle = torch.cat([row, col], dim=-1)
        keep = (~zero).float()[..., None]
        return torch.cos(angle) * keep, torch.sin(angle) * keep

    @staticmethod
    def rotate(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
        """x [sequences, rows, heads, head_dim], rotated on its interleaved pairs (x[2j], x[2j+1]);
        cos, sin [rows, head_dim/2] (shared by the sequences) or [sequences, rows, head_dim/2]."""
        pairs = x.unflatten(-1, (-1, 2))
        a, b = pairs[..., 0], pairs[..., 1]
        c, s = cos.unsqueeze(-2), sin.unsqueeze(-2)
        if c.dim() == 3:
            c, s = c[None], s[None]
        return torch.stack([a * c - b * s, b * c + a * s], dim=-1).flatten(-2)

    def attention(self, l: int, x, cos, sin, cache: KVCache, slots, mask, written, attention: str, block_mask):
        """One attention sublayer: project, rotate, write K/V at the rows' slots, attend through the mask."""
        a, L = self.args, self.layers[l].attention
        S, R, _ = x.shape
        q, k, v = L.wqkv(x).split([a.n_head * a.head_dim, a.kv_heads * a.head_dim, a.kv_heads * a.head_dim], dim=-1)
        q = self.rotate(q.unflatten(-1, (a.n_head, a.head_dim)), cos, sin)
        k = self.rotate(k.unflatten(-1, (a.kv_heads, a.head_dim)), cos, sin)
        v = v.unflatten(-1, (a.kv_heads, a.head_dim))
        # the cache is [sequences, kv_heads, slots, head_dim]: rows go to the slots the plan says
        cache.k[l][:, :, slots] = k.transpose(1, 2)
        cache.v[l][:, :, slots] = v.transpose(1, 2)
        # A visible slot the plan has not written yet (ZipAR's causal mask over the whole cache)
        # must read as K = V = 0, what the official zero-initialised cache holds: a score of 0 in
        # the softmax and nothing added. Selecting by `written` makes that hold for a used cache too,
        # whatever it holds (a product would let a stale NaN through: NaN * 0 is NaN).
        unwritten = ~written[None, None, :, None]
        keys = cache.k[l].masked_fill(unwritten, 0.0)
        values = cache.v[l].masked_fill(unwritten, 0.0)
        if a.kv_heads != a.n_head:  # grouped-query attention: each kv head serves n_head/kv_heads q heads
            keys = keys.repeat_interleave(a.n_head // a.kv_heads, dim=1)
            values = values.repeat_interleave(a.n_head // a.kv_heads, dim=1)
        q = q.transpose(1, 2)  # [sequences, heads, rows, head_dim]
        if attention == "sdpa":
            out = F.scaled_dot_product_attention(q, keys, values, attn_mask=mask)
        elif attention == "flex":
            out = _flex_attention()(q, keys, values, block_mask=block_mask)
        else:
            raise ValueError(f"attention must be 'sdpa' or 'flex', got {attention!r}")
        return L.wo(out.transpose(1, 2).flatten(-2))

    # --- the forward -------------------------------------------------------------------------

    def forward_sequence(self, x, cos, sin, mask, heads: int = 1) -> torch.Tensor:
        """The training forward: every row at once, no cache. x [sequences, rows, dim] embedded rows;
        cos, sin their RoPE ([rows, head_dim/2] or per sequence); mask [rows, rows] bool (True:
        attend). Returns logits [sequences, rows, heads, vocab] (differentiable)."""
        if heads > self.num_heads:
            raise ValueError(f"the plan reads {heads} output heads, the checkpoint has {self.num_heads}")
        a, n = self.args, self.args.n_layer
        out = []
        for l in range(n + (a.medusa_attention_num if heads > 1 else 0)):
            B, L = self.layers[l], self.layers[l].attention
            h = B.attention_norm(x)
            q, k, v = L.wqkv(h).split([a.n_head * a.head_dim, a.kv_heads * a.head_dim, a.kv_heads * a.head_dim], dim=-1)
            q = self.rotate(q.unflatten(-1, (a.n_head, a.head_dim)), cos, sin).transpose(1, 2)
            k = self.rotate(k.unflatten(-1, (a.kv_heads, a.head_dim)), cos, sin).transpose(1, 2)
            v = v.unflatten(-1, (a.kv_heads, a.head_dim)).transpose(1, 2)
            if a.kv_heads != a.n_head:
                k = k.repeat_interleave(a.n_head // a.kv_heads, dim=1)
                v = v.repeat_interleave(a.n_head // a.kv_heads, dim=1)
            o = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
            x = x + L.wo(o.transpose(1, 2).flatten(-2))
            x = x + B.feed_forward(B.ffn_norm(x))
            if l == n - 1:
                out.append(self.output(self.norm(x)))
        if heads > 1:
            out.append(self.medusa_output(self.medusa_norm(x)))
        return torch.stack(out, dim=2)

    def position_instruction(self, cos, sin) -> torch.Tensor:
        """RandAR's P token of each row's target cell: pos_instruct_embeddings viewed [n_head, head_dim]
        and rotated by the target's RoPE (cos, sin [..., rows, head_dim/2]), flattened back to dim."""
        if not self.args.position_instruction:
            raise ValueError("the plan feeds RandAR position instructions; this checkpoint has no pos_instruct_embeddings")
        a = self.args
        p = self.pos_instruct_embeddings.view(a.n_head, a.head_dim).expand(*cos.shape[:-1], a.n_head, a.head_dim)
        if cos.dim() == 2:
            return self.rotate(p[None], cos, sin)[0].flatten(-2)
        return self.rotate(p, cos, sin).flatten(-2)

    def forward(self, kind, value, coords, zero, slots, cache: KVCache, mask, written, heads: int = 1,
                attention: str = "sdpa", block_mask=None) -> torch.Tensor:
        """Logits [sequences, rows, heads, vocab] of the rows one step feeds.

        kind, value: [sequences, rows] what each row embeds; coords [rows, 3] (t, h, w) and zero
        [rows] its RoPE; slots [rows] where it writes K/V; mask [rows, cache slots] what it may
        see (True: attend); written [cache slots] (bool) which slots hold what the plan wrote (others
        read as zeros); heads: 1, or 2 to also run NAR's extra block and B head.
        """
        if heads > self.num_heads:
            raise ValueError(f"the plan reads {heads} output heads, the checkpoint has {self.num_heads}")
        n = self.args.n_layer
        cos, sin = self.rope_tables(coords, zero)
        x = self.embed(kind, value)
        out = []
        for l in range(n + (self.args.medusa_attention_num if heads > 1 else 0)):
            B = self.layers[l]
            x = x + self.attention(l, B.attention_norm(x), cos, sin, cache, slots, mask, written, attention, block_mask)
            x = x + B.feed_forward(B.ffn_norm(x))
            if l == n - 1:
                out.append(self.output(self.norm(x)))  # head 0: R for NAR, the only head otherwise
        if heads > 1:
            out.append(self.medusa_output(self.medusa_norm(x)))  # head 1: NAR's B, after the extra block
        return torch.stack(out, dim=2)


# ---------------------------------------------------------------------------------------------
# FlexAttention masks
# ---------------------------------------------------------------------------------------------


def _flex_attention():
    from torch.nn.attention.flex_attention import flex_attention

    return flex_attention


def _ordo_torch():
    """ordo.torch (ordo's BlockMask builder) if this ordo has it, else None."""
    try:
        import ordo.torch as ot
    except ImportError:
        return None
    return ot


def flex_block_mask(plan, q_slots: np.ndarray, kv_len: int, dense: np.ndarray | None = None, use_ordo: bool = True):
    """A FlexAttention BlockMask for query rows at `q_slots` over kv slots [0, kv_len).

    With ``ordo.torch`` (and use_ordo), ordo computes the block-sparse summary exactly from the
    plan. Without it, torch's ``create_block_mask`` derives it from the dense bool mask (``dense``,
    or ``plan.dense_mask``) by evaluating every pair - fine for small grids.
    """
    q_slots = np.asarray(q_slots, dtype=np.int32)
    ot = _ordo_torch() if use_ordo else None
    if ot is not None:
        return ot.block_mask(plan, q_slots=q_slots, kv_len=kv_len)
    from torch.nn.attention.flex_attention import create_block_mask

    m = torch.from_numpy(np.array(plan.dense_mask(q_slots, kv_len) if dense is None else dense, dtype=bool))

    def mask_mod(b, h, q_idx, kv_idx):
        return m[q_idx, kv_idx]

    return create_block_mask(mask_mod, None, None, m.shape[0], m.shape[1], device="cpu")


def flex_source() -> str:
    """Which BlockMask builder attention='flex' uses here."""
    return "ordo.torch.block_mask" if _ordo_torch() is not None else "torch create_block_mask (from the dense mask)"


# ---------------------------------------------------------------------------------------------
# drivers
# ---------------------------------------------------------------------------------------------


def _tensor(a, dtype=None) -> torch.Tensor:
    """A torch tensor of an ordo array (a copy: ordo's arrays are read-only views)."""
    t = torch.from_numpy(np.array(a))
    return t if dtype is None else t.to(dtype)


@torch.no_grad()
def step(model: GPT, plan, b, cache: KVCache, attention: str = "sdpa", use_ordo_block_mask: bool = True) -> np.ndarray:
    """One forward for a session's step batch `b`: writes the rows' K/V into `cache` at their slots,
    attends under the step's mask and returns float32 logits [sequences, rows, heads, vocab]."""
    kv_len = cache.num_slots
    coords, zero = b.rope()
    mask_np = b.mask(kv_len)
    block_mask = None
    if attention == "flex":
        block_mask = flex_block_mask(plan, b.slots, kv_len, dense=mask_np, use_ordo=use_ordo_block_mask)
    logits = model(
        _tensor(b.input_kind, torch.long), _tensor(b.input_value, torch.long),
        _tensor(coords, torch.long), _tensor(zero, torch.bool), _tensor(b.slots, torch.long), cache,
        _tensor(mask_np, torch.bool), _tensor(b.written(kv_len), torch.bool),
        heads=b.num_heads, attention=attention, block_mask=block_mask,
    )
    out = np.ascontiguousarray(logits.numpy(), dtype=np.float32)
    assert out.shape == tuple(b.logits_shape), (out.shape, b.logits_shape)
    return out


@torch.no_grad()
def decode(model: GPT, plan, session, attention: str = "sdpa", return_logits: bool = False, cache: KVCache | None = None,
           use_ordo_block_mask: bool = True):
    """Runs `session` to the end: one forward per step, ordo mixes heads, guides and samples.

    Returns the tokens, int32 [requests, positions] in raster order; with return_logits also, per
    step, the final logits the sampler saw: float32 [requests, emitted, vocab] (the plan's head
    mix, then CFG), in the order the step emits its positions.
    A cache may be passed (its contents are ignored where the plan has not written: see written).
    """
    if cache is None:
        cache = model.new_cache(session.num_sequences, plan.kv_cache_len)
    steps = []
    while not session.done:
        b = session.next()
        out = step(model, plan, b, cache, attention, use_ordo_block_mask)
        if return_logits:
            emitted = int(plan.emit_offsets[b.step + 1] - plan.emit_offsets[b.step])
            steps.append(np.stack([
                np.stack([session.final_logits(out, i, k) for k in range(emitted)])
                for i in range(session.num_requests)
            ]))
        session.commit(out)  # reads `out` in place: keep it alive until here
    tokens = np.stack([session.tokens(i) for i in range(session.num_requests)])
    return (tokens, steps) if return_logits else tokens


def train_inputs(plan, tokens, labels):
    """What each slot of the training layout [0, train_slots) is fed: (kind [slots], value [..., slots]).

    tokens [..., positions] (raster order), labels scalar or [...]. prefix -> the class label;
    token -> the token at that position; transition -> its number i (embedded as M_i).
    """
    n = plan.train_slots
    kind = np.array(plan.slot_kind[:n])
    index = np.array(plan.slot_index[:n])
    tokens = np.asarray(tokens)
    labels = np.asarray(labels)[..., None]
    at = tokens[..., np.where(kind == 1, index, 0)]
    value = np.where(kind == 0, labels, np.where(kind == 1, at, index))
    return kind, value


def mix_terms(plan):
    """The teacher-forcing mix as flat arrays: position q's logits = sum of weight * out[slot, head]
    over the terms with that q. Read off the plan's contribution lists (one per emission rank)."""
    offsets = np.array(plan.contrib_offsets)
    per_rank = np.diff(offsets)
    rank = np.repeat(np.arange(plan.num_positions), per_rank)  # the emission rank of each term
    q = np.array(plan.order)[rank]  # ... its position
    step = np.array(plan.step_of)[q]  # ... the step that emits it
    slot = np.array(plan.fed)[np.array(plan.fed_offsets)[step] + np.array(plan.contrib_row).astype(np.int64)]
    return q, slot, np.array(plan.contrib_head).astype(np.int64), np.array(plan.contrib_weight)


def train_forward(model: GPT, plan, tokens, labels, attention: str = "sdpa", use_ordo_block_mask: bool = True) -> torch.Tensor:
    """The teacher-forcing forward: logits [..., positions, vocab] in raster order, no guidance
    (differentiable: a training step is this, a cross-entropy against `tokens`, and backward()).

    tokens [positions] or [batch, positions] (raster order), labels an int or [batch] (the null
    class num_classes is CFG's unconditional row). Every slot of the training layout is fed at
    once under plan.train_mask(); each position's logits are then mixed from the rows and heads the
    plan names, as a decode step would mix them. attention "flex" runs one sequence at a time
    through the cached forward with a FlexAttention BlockMask; "sdpa" runs the batch at once.
    """
    tokens = np.asarray(tokens)
    single = tokens.ndim == 1
    tokens = tokens.reshape(-1, tokens.shape[-1])
    labels = np.broadcast_to(np.asarray(labels).reshape(-1), (tokens.shape[0],))
    n = plan.train_slots
    heads = len(plan.heads)
    kind, value = train_inputs(plan, tokens, labels)
    slots = np.arange(n, dtype=np.int32)
    coords, zero = plan.rope(slots)
    mask = _tensor(plan.train_mask(), torch.bool)
    if attention == "flex":
        block_mask = flex_block_mask(plan, slots, n, dense=plan.train_mask(), use_ordo=use_ordo_block_mask)
        out = torch.cat([model(
            _tensor(kind[None], torch.long), _tensor(value[i : i + 1], torch.long), _tensor(coords, torch.long),
            _tensor(zero, torch.bool), _tensor(slots, torch.long), model.new_cache(1, n), mask,
            torch.ones(n, dtype=torch.bool), heads=heads, attention="flex", block_mask=block_mask,
        ) for i in range(len(value))])
    elif attention == "sdpa":
        cos, sin = model.rope_tables(_tensor(coords, torch.long), _tensor(zero, torch.bool))
        kinds = _tensor(np.broadcast_to(kind, value.shape), torch.long)
        out = model.forward_sequence(model.embed(kinds, _tensor(value, torch.long)), cos, sin, mask, heads)
    else:
        raise ValueError(f"attention must be 'sdpa' or 'flex', got {attention!r}")
    q, slot, head, weight = mix_terms(plan)  # out: [batch, slots, heads, vocab]
    if slot.size and slot.max() >= n:
        raise ValueError("a position is predicted from a slot the training layout does not feed")
    terms = torch.from_numpy(weight)[:, None] * out[:, torch.from_numpy(slot).long(), torch.from_numpy(head)]
    logits = torch.zeros(out.shape[0], plan.num_positions, out.shape[-1]).index_add_(1, torch.from_numpy(q).long(), terms)
    return logits[0] if single else logits


def randar_train_forward(model: GPT, grid: tuple[int, int], tokens, labels, orders) -> torch.Tensor:
    """RandAR's training forward (ziqipang/RandAR forward_train): the interleaved layout
    [cls, P_0, x_0, P_1, x_1, ...] of each sequence's own order under a plain causal mask, P_t the
    position instruction of cell orders[t], P_t and x_t both at RoPE(orders[t]).

    tokens [batch, positions] (raster), labels [batch], orders [batch, positions] (a permutation
    each) as torch tensors. Returns logits [batch, positions, vocab]: row t (read at P_t) predicts
    cell orders[:, t].
    """
    b, n = tokens.shape
    height, width = grid
    if height * width != n:
        raise ValueError(f"tokens have {n} positions, the grid {height}x{width} has {height * width}")
    coords = torch.zeros(b, 1 + 2 * n, 3, dtype=torch.long)
    cell = torch.stack([orders // width, orders % width], dim=-1)  # [batch, positions, (h, w)]
    coords[:, 1::2, 1:] = cell
    coords[:, 2::2, 1:] = cell
    zero = torch.zeros(b, 1 + 2 * n, dtype=torch.bool)
    zero[:, 0] = True  # the class row: q = k = 0, as the official table's zero row
    cos, sin = model.rope_tables(coords, zero)
    x = torch.empty(b, 1 + 2 * n, model.args.dim)
    x[:, 0] = model.cls_embedding.embedding_table(labels)
    x[:, 1::2] = model.position_instruction(cos[:, 1::2], sin[:, 1::2])
    x[:, 2::2] = model.tok_embeddings(torch.gather(tokens, 1, orders))
    causal = torch.ones(1 + 2 * n, 1 + 2 * n, dtype=torch.bool).tril()
    return model.forward_sequence(x, cos, sin, causal)[:, 1::2, 0]


# ---------------------------------------------------------------------------------------------
# command line: decode one image's tokens
# ---------------------------------------------------------------------------------------------

if __name__ == "__main__":
    import argparse

    import ordo

    ap = argparse.ArgumentParser(description="Greedy or sampled decode of a LlamaGen-family checkpoint under an ordo plan.")
    ap.add_argument("weights", help="the checkpoint (.safetensors, official key names)")
    ap.add_argument("config", help="its ModelArgs JSON")
    ap.add_argument("--policy", default="raster", help="raster, par:2x2, nar, zipar:3, ...")
    ap.add_argument("--grid", default="8x8")
    ap.add_argument("--label", type=int, default=0)
    ap.add_argument("--cfg", type=float, default=1.0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--greedy", action="store_true")
    ap.add_argument("--attention", choices=["sdpa", "flex"], default="sdpa")
    a = ap.parse_args()

    gpt = GPT.from_files(a.weights, a.config)
    plan = ordo.plan(a.policy, a.grid)
    session = ordo.Session(plan, [a.label], gpt.args.vocab_size, cfg=a.cfg, seed=a.seed,
                           null_label=gpt.args.num_classes, greedy=a.greedy)
    tokens = decode(gpt, plan, session, attention=a.attention)
    print(f"{plan.num_steps} forward passes ({a.policy} on {a.grid})")
    height, width = (int(n) for n in a.grid.split("x")[-2:])
    print(tokens[0].reshape(height, width))
