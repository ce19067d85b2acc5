"""ARPG (hp-l33/ARPG, "autoregressive parallel generation") in PyTorch: a model that can be trained.

A compact re-implementation of the official ``models/arpg.py`` Transformer (commit 1a1758c; the
conventions are written out with file:line citations in design.md section 7 and
conventions/lpd-randar-arpg-sjd-scd.md section 3), meant for training tiny class-conditional models
whose checkpoints ordo's C++ CPU backend (``ordo.Model``) then decodes under an ``arpg:`` plan.

The model is a two-pass "decoder-decoder":

* ``layers.self_dec.*`` - LlamaGen-style blocks (RMSNorm, bias-free q/k/v/proj, SwiGLU, 2D RoPE on
  q and k) over the fed rows ``[class, t_0, ..., t_{N-2}]`` (``t_j`` = the token of the j-th cell of
  the order), the class row with RoPE's zero row, token rows with their own cell's rotation;
* ``layers.norm`` / ``layers.to_k`` / ``layers.to_v`` - one shared K/V from the self-decoder's
  output (k rotated by the row's own cell);
* ``layers.cross_dec.*`` - blocks of N [MASK] queries (embedding row ``vocab_size``), query j
  rotated by the RoPE of its *target* cell ``order[j]``, cross-attending to the shared K/V only;
  queries never see each other;
* ``norm`` and ``head`` - logits over the image vocabulary.

The official model has ``n_layer // 2`` self-decoder and ``n_layer // 2`` cross-decoder blocks;
the embedding table holds ``vocab_size + num_classes + 3`` rows: tokens, the [MASK] query
(``vocab_size``), the classes (``vocab_size + 1 + label``), the null class ``none_conds_id =
vocab_size + num_classes + 1`` (so label ``num_classes`` *is* the unconditional label, as in ordo)
and an unused "none token". Parameter names are the official state-dict keys, so a checkpoint
written by :func:`save` loads in ``ordo.Model`` and official checkpoints load here.

The training forward (official ``Transformer.forward``): a causal mask over the self-decoder rows
and a causal mask from the queries to the shared rows, so query j sees the class and
``t_0 .. t_{j-1}`` - one pass teaches every "next cell of the order given the cells before it".
Passing ``group_sizes`` instead reproduces the official *inference* visibility for a grouped
schedule (a fed group sees itself bidirectionally; the queries of group g see the class and all
tokens of the groups before g), which is what ``ordo.Model.teacher_forcing_logits`` replays.

Everything is float32; attention is ``scaled_dot_product_attention`` (``is_causal`` for training,
a bool mask for grouped schedules).
"""

from __future__ import annotations

import json
import math
import sys
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
import llamagen  # noqa: E402  (RMSNorm, FeedForward and the safetensors I/O: the same conventions)

REPO = "hp-l33/ARPG"
COMMIT = "1a1758c304b288a673370a2bae27aa8fa8dbe88d"


# ---------------------------------------------------------------------------------------------
# the configuration
# ---------------------------------------------------------------------------------------------


@dataclass
class ARPGArgs:
    """The official ModelArgs fields that shape an ARPG model (dropouts and init ranges do not).

    ``n_layer`` counts both decoders, as the official code does: ``n_layer // 2`` self-decoder
    blocks and ``n_layer // 2`` cross-decoder blocks (an odd count is refused here rather than
    silently dropping a block). ``block_size`` is the number of cells of the square token grid the
    RoPE table covers (16x16 = 256); ordo's backend computes rotations for any grid.
    """

    dim: int = 1024
    n_layer: int = 24
    n_head: int = 16
    vocab_size: int = 16384
    num_classes: int = 1000
    block_size: int = 256
    multiple_of: int = 256
    ffn_dim_multiplier: float | None = None
    norm_eps: float = 1e-5
    rope_base: float = 10000.0
    initializer_range: float = 0.02
    cls_token_num: int = 1

    def __post_init__(self):
        if self.n_layer < 2 or self.n_layer % 2:
            raise ValueError(f"n_layer {self.n_layer}: ARPG splits it evenly into self- and cross-decoder blocks (an even number >= 2)")
        if self.dim % self.n_head or self.head_dim % 4:
            raise ValueError(f"dim {self.dim} / n_head {self.n_head}: head_dim must be an integer multiple of 4 (2D RoPE)")
        if math.isqrt(self.block_size) ** 2 != self.block_size:
            raise ValueError(f"block_size {self.block_size} is not a square grid")
        if self.cls_token_num != 1:
            raise ValueError("ARPG is class-conditional with one class row (cls_token_num 1)")

    @property
    def n_self(self) -> int:
        return self.n_layer // 2

    @property
    def n_cross(self) -> int:
        return self.n_layer // 2

    @property
    def grid_size(self) -> int:
        return math.isqrt(self.block_size)

    @property
    def head_dim(self) -> int:
        return self.dim // self.n_head

    @property
    def ffn_hidden(self) -> int:
        return llamagen.ffn_hidden(self.dim, self.ffn_dim_multiplier, self.multiple_of)

    @property
    def mask_token_id(self) -> int:
        return self.vocab_size

    @property
    def none_conds_id(self) -> int:
        return self.vocab_size + self.num_classes + 1

    @property
    def embedding_rows(self) -> int:
        return self.vocab_size + self.num_classes + 3

    def to_json(self, path) -> None:
        """The JSON ordo's loader reads n_head from (``n_head_from_weights_json``): the official
        ModelArgs under ``constructor_args``, as the golden ``*.weights.json`` files lay it out."""
        ctor = {
            "dim": self.dim, "n_layer": self.n_layer, "n_head": self.n_head, "multiple_of": self.multiple_of,
            "ffn_dim_multiplier": self.ffn_dim_multiplier, "rope_base": self.rope_base, "norm_eps": self.norm_eps,
            "initializer_range": self.initializer_range, "token_dropout_p": 0.0, "attn_dropout_p": 0.0,
            "resid_dropout_p": 0.0, "ffn_dropout_p": 0.0, "drop_path_rate": 0.0, "num_classes": self.num_classes,
            "class_dropout_prob": 0.1, "model_type": "c2i", "vocab_size": self.vocab_size,
            "cls_token_num": self.cls_token_num, "block_size": self.block_size,
        }
        derived = {
            "head_dim": self.head_dim, "ffn_hidden": self.ffn_hidden, "n_self_dec": self.n_self, "n_cross_dec": self.n_cross,
            "embedding_rows": self.embedding_rows, "mask_token_id": self.mask_token_id,
            "class_id": f"{self.vocab_size}+1+label", "none_conds_id": self.none_conds_id,
            "none_token_id": self.none_conds_id + 1,
        }
        doc = {"repo": REPO, "commit": COMMIT, "class": "models/arpg.py: Transformer(ModelArgs(**args))",
               "written_by": "ordo examples/python/arpg.py", "constructor_args": ctor, "derived": derived}
        Path(path).write_text(json.dumps(doc, indent=1) + "\n")

    @classmethod
    def from_json(cls, path) -> "ARPGArgs":
        """From a ModelArgs JSON: a bare object, or one holding it under ``constructor_args``."""
        d = json.loads(Path(path).read_text())
        d = d.get("constructor_args", d)
        if d.get("model_type", "c2i") != "c2i":
            raise ValueError(f"{path}: model_type {d['model_type']!r}: only class-conditional (c2i) models")
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in known})


# ---------------------------------------------------------------------------------------------
# the model
# ---------------------------------------------------------------------------------------------


def rotate(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """x [B, rows, heads, head_dim] rotated on its interleaved pairs by cos/sin [B, rows, head_dim/2]."""
    pairs = x.unflatten(-1, (-1, 2))
    a, b = pairs[..., 0], pairs[..., 1]
    c, s = cos[:, :, None, :], sin[:, :, None, :]
    return torch.stack([a * c - b * s, b * c + a * s], dim=-1).flatten(-2)


def _heads(x: torch.Tensor, n_head: int) -> torch.Tensor:
    return x.unflatten(-1, (n_head, -1))  # [B, rows, heads, head_dim]


def _attend(q, k, v, mask, causal: bool) -> torch.Tensor:
    """q, k, v [B, rows, heads, head_dim] -> [B, rows, dim]."""
    out = F.scaled_dot_product_attention(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2),
                                         attn_mask=mask, is_causal=causal and mask is None)
    return out.transpose(1, 2).flatten(-2)


class SelfAttention(nn.Module):  # keys layers.self_dec.i.attn.{to_q,to_k,to_v,proj}.weight
    def __init__(self, a: ARPGArgs):
        super().__init__()
        self.n_head = a.n_head
        self.to_q = nn.Linear(a.dim, a.dim, bias=False)
        self.to_k = nn.Linear(a.dim, a.dim, bias=False)
        self.to_v = nn.Linear(a.dim, a.dim, bias=False)
        self.proj = nn.Linear(a.dim, a.dim, bias=False)

    def forward(self, x, cos, sin, mask, causal):
        q = rotate(_heads(self.to_q(x), self.n_head), cos, sin)
        k = rotate(_heads(self.to_k(x), self.n_head), cos, sin)
        v = _heads(self.to_v(x), self.n_head)
        return self.proj(_attend(q, k, v, mask, causal))


class CrossAttention(nn.Module):  # keys layers.cross_dec.i.attn.{to_q,proj}.weight
    def __init__(self, a: ARPGArgs):
        super().__init__()
        self.n_head = a.n_head
        self.to_q = nn.Linear(a.dim, a.dim, bias=False)
        self.proj = nn.Linear(a.dim, a.dim, bias=False)

    def forward(self, x, k, v, cos, sin, mask, causal):
        q = rotate(_heads(self.to_q(x), self.n_head), cos, sin)  # the target cell's rotation
        return self.proj(_attend(q, k, v, mask, causal))


class SelfBlock(nn.Module):
    def __init__(self, a: ARPGArgs):
        super().__init__()
        self.attn = SelfAttention(a)
        self.ffn = llamagen.FeedForward(a)
        self.attn_norm = llamagen.RMSNorm(a.dim, a.norm_eps)
        self.ffn_norm = llamagen.RMSNorm(a.dim, a.norm_eps)

    def forward(self, x, cos, sin, mask, causal):
        h = x + self.attn(self.attn_norm(x), cos, sin, mask, causal)
        return h + self.ffn(self.ffn_norm(h))


class CrossBlock(nn.Module):
    def __init__(self, a: ARPGArgs):
        super().__init__()
        self.attn = CrossAttention(a)
        self.ffn = llamagen.FeedForward(a)
        self.attn_norm = llamagen.RMSNorm(a.dim, a.norm_eps)
        self.ffn_norm = llamagen.RMSNorm(a.dim, a.norm_eps)

    def forward(self, q, k, v, cos, sin, mask, causal):
        h = q + self.attn(self.attn_norm(q), k, v, cos, sin, mask, causal)
        return h + self.ffn(self.ffn_norm(h))


class DecoderDecoder(nn.Module):  # keys layers.{self_dec,norm,to_k,to_v,cross_dec}
    def __init__(self, a: ARPGArgs):
        super().__init__()
        self.n_head = a.n_head
        self.self_dec = nn.ModuleList(SelfBlock(a) for _ in range(a.n_self))
        self.cross_dec = nn.ModuleList(CrossBlock(a) for _ in range(a.n_cross))
        self.norm = llamagen.RMSNorm(a.dim, a.norm_eps)
        self.to_k = nn.Linear(a.dim, a.dim, bias=False)
        self.to_v = nn.Linear(a.dim, a.dim, bias=False)


class ARPG(nn.Module):
    """The official ARPG Transformer (parameters under the official state-dict keys)."""

    def __init__(self, args: ARPGArgs):
        super().__init__()
        self.args = args
        self.embeddings = nn.Embedding(args.embedding_rows, args.dim)
        self.layers = DecoderDecoder(args)
        self.norm = llamagen.RMSNorm(args.dim, args.norm_eps)
        self.head = nn.Linear(args.dim, args.vocab_size, bias=False)
        # the official 2D RoPE table: row 0 (the class row) all zeros - which zeroes q and k there,
        # it is not an identity rotation - then the cells in raster order; pair j < head_dim/4
        # turns by the cell's row * f_j, pair j >= head_dim/4 by its column * f_(j - head_dim/4)
        half = args.head_dim // 2
        freqs = 1.0 / (args.rope_base ** (torch.arange(0, half, 2)[: half // 2].float() / half))
        t = torch.arange(args.grid_size).float()
        f = torch.outer(t, freqs)
        g = args.grid_size
        angle = torch.cat([f[:, None, :].expand(g, g, -1), f[None, :, :].expand(g, g, -1)], dim=-1).flatten(0, 1)
        zero = torch.zeros(1, half)
        self.register_buffer("rope_cos", torch.cat([zero, torch.cos(angle)]), persistent=False)
        self.register_buffer("rope_sin", torch.cat([zero, torch.sin(angle)]), persistent=False)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """The official init: Linear and Embedding weights ~ N(0, initializer_range), RMSNorm ones,
        the output head zero."""
        for m in self.modules():
            if isinstance(m, (nn.Linear, nn.Embedding)):
                nn.init.normal_(m.weight, 0.0, self.args.initializer_range)
            elif isinstance(m, llamagen.RMSNorm):
                nn.init.ones_(m.weight)
        nn.init.zeros_(self.head.weight)

    # --- masks -----------------------------------------------------------------------------------

    @staticmethod
    def group_masks(group_sizes, device=None):
        """Bool masks (True: attend) for a grouped schedule: (self [N, N], cross [N, N]).

        Self-decoder row 0 is the class, row i >= 1 the token of generation index i-1 (fed once
        its group is decoded); it sees the rows of its own group and every earlier one. The
        query of generation index t (group g) sees the class and the tokens of groups < g. With
        every group of size 1 both masks are causal: the training forward.
        """
        sizes = torch.as_tensor(list(group_sizes), dtype=torch.long)
        group = torch.repeat_interleave(torch.arange(len(sizes)), sizes)  # group of generation index t
        rows = torch.cat([torch.tensor([-1]), group[:-1]])  # group of each fed row (-1: the class)
        self_mask = rows[None, :] <= rows[:, None]
        cross_mask = rows[None, :] < group[:, None]
        return self_mask.to(device), cross_mask.to(device)

    # --- the forward -----------------------------------------------------------------------------

    def forward_train(self, tokens: torch.Tensor, labels: torch.Tensor, orders: torch.Tensor, group_sizes=None) -> torch.Tensor:
        """The official training forward, batched: logits [B, N, vocab] in *generation* order.

        tokens: int64 [B, N], raster order; labels: int64 [B] in 0..num_classes (num_classes =
        the null class, none_conds_id; label dropping is the caller's); orders: int64 [B, N], one
        permutation of the raster cells per sample. Row t of the result predicts cell
        ``orders[:, t]`` (the golden ``logits_seq`` layout; :func:`to_raster` reorders it) from the
        class and the tokens of ``orders[:, :t]``. One differentiable pass.

        group_sizes (optional): a decode schedule's cells per call (summing to N), shared by the
        batch; the masks are then the official inference visibility (see :meth:`group_masks`) -
        what ``ordo.Model.teacher_forcing_logits`` computes for an ``arpg:`` plan.
        """
        a = self.args
        B, N = tokens.shape
        if orders.shape != (B, N) or labels.shape != (B,):
            raise ValueError(f"tokens {tuple(tokens.shape)}, labels {tuple(labels.shape)}, orders {tuple(orders.shape)}: want [B, N], [B], [B, N]")
        if N != a.block_size:
            raise ValueError(f"{N} tokens per sample, the model's grid has {a.block_size} cells")
        cond = labels + a.vocab_size + 1  # label num_classes -> none_conds_id
        shuffled = tokens.gather(1, orders)
        x = self.embeddings(torch.cat([cond[:, None], shuffled[:, :-1]], dim=1))  # [class, t_0 .. t_{N-2}]
        fed_rope = torch.cat([torch.zeros_like(orders[:, :1]), orders[:, :-1] + 1], dim=1)  # table rows
        cos_in, sin_in = self.rope_cos[fed_rope], self.rope_sin[fed_rope]
        cos_q, sin_q = self.rope_cos[orders + 1], self.rope_sin[orders + 1]
        if group_sizes is None:
            self_mask = cross_mask = None  # is_causal: query j and fed row j see rows 0..j
        else:
            self_mask, cross_mask = self.group_masks(group_sizes, tokens.device)
            if self_mask.shape[0] != N:
                raise ValueError(f"group sizes sum to {self_mask.shape[0]}, not {N}")

        L = self.layers
        for blk in L.self_dec:
            x = blk(x, cos_in, sin_in, self_mask, True)
        xn = L.norm(x)
        k = rotate(_heads(L.to_k(xn), a.n_head), cos_in, sin_in)  # the shared K/V
        v = _heads(L.to_v(xn), a.n_head)
        q = self.embeddings.weight[a.mask_token_id].expand(B, N, a.dim)  # N [MASK] queries
        for blk in L.cross_dec:
            q = blk(q, k, v, cos_q, sin_q, cross_mask, True)
        return self.head(self.norm(q))


def to_raster(logits: torch.Tensor, orders: torch.Tensor) -> torch.Tensor:
    """Generation-order logits [B, N, V] (row t = cell orders[:, t]) -> raster order [B, N, V]."""
    return torch.empty_like(logits).scatter_(1, orders[..., None].expand_as(logits), logits)


def random_orders(batch: int, n: int, generator: torch.Generator | None = None, device=None) -> torch.Tensor:
    """One uniformly random permutation per sample, as the official ``batch_seq_shuffle``:
    ``torch.rand(bs, seq_len).argsort(dim=1)``."""
    return torch.rand(batch, n, generator=generator, device=device).argsort(dim=1)


def loss(model: ARPG, tokens: torch.Tensor, labels: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Mean cross-entropy per token of a training batch (tokens [B, N] raster, labels [B]).

    Orders as the official training draws them (``models/arpg.py`` L23-33 and L430-451, called by
    ``train_c2i.py`` L212 as ``model(z_indices, c_indices, targets=z_indices)``): a fresh uniformly
    random permutation per sample and per step, ``torch.rand(B, N).argsort(1)`` (here from
    ``generator``); the inputs, the RoPE rows and the targets are shuffled by it, and
    ``F.cross_entropy`` averages over all B*N predictions. Label dropping (official: inside the
    model, ``class_dropout_prob`` 0.1 -> none_conds_id) is the caller's: pass labels with some
    set to ``num_classes``. The official run also uses dropout (token 0.1, residual/FFN 0.1),
    which this model leaves out.
    """
    B, N = tokens.shape
    orders = random_orders(B, N, generator, tokens.device)
    logits = model.forward_train(tokens, labels, orders)
    return F.cross_entropy(logits.flatten(0, 1), tokens.gather(1, orders).flatten())


# ---------------------------------------------------------------------------------------------
# checkpoints
# ---------------------------------------------------------------------------------------------


def save(model: ARPG, args: ARPGArgs, stem) -> None:
    """Writes ``stem.safetensors`` (float32, official keys) and ``stem.json`` (the ModelArgs,
    n_head included): ``ordo.Model(f"{stem}.safetensors", f"{stem}.json")`` loads them."""
    stem = str(stem)
    llamagen.save_safetensors(stem + ".safetensors", model.state_dict(), {"repo": REPO, "commit": COMMIT})
    args.to_json(stem + ".json")


def load(stem) -> ARPG:
    """The model :func:`save` wrote (or an official checkpoint converted to safetensors with its
    ModelArgs JSON), in eval mode."""
    stem = str(stem)
    model = ARPG(ARPGArgs.from_json(stem + ".json"))
    model.load_state_dict(llamagen.load_safetensors(stem + ".safetensors"), strict=True)
    return model.eval()
