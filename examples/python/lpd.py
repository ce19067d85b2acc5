"""LPD (Locality-aware Parallel Decoding, mit-han-lab/lpd) in PyTorch: a decoder you can train.

A compact re-implementation of the LPD decoder (conventions: /work/shared/conventions, section 1;
ordo's C++ port: include/ordo/models/lpd/): a MAR-style pre-LN ViT with

* a learned absolute position table ``pos_embed [1, N+1, D]`` (row 0: the class row, row ``1+p``:
  grid cell ``p``), added to every input row, then the input LayerNorm ``z_proj_ln``; no RoPE;
* timm-style blocks (LayerNorm with bias, fused ``qkv`` with bias, ``proj``, exact-erf GELU MLP);
* a *position-query* vector ``mask_token``: a query for cell ``p`` is ``mask_token + pos_embed[1+p]``;
* ``fake_latent``, the unconditional class vector. ``class_emb`` has exactly ``num_classes`` rows;
  label ``num_classes`` (ordo's ``null_label``) stands for ``fake_latent``.

Parameter names and shapes are the official state-dict keys, so :func:`save` writes a checkpoint
that ``ordo.Model`` (the C++ CPU backend) loads, and the official checkpoints load here.

The model knows one forward, the official training forward (:meth:`LPD.forward_train`): for a
permutation ``order`` of the cells and a group schedule ``g_0, g_1, ... (sum N)`` it runs the
sequence ``[cls, T_0 .. T_{N-1-g_last}] ++ [Q_0 .. Q_{N-1}]`` (``T_t``: the token of cell
``order[t]``; ``Q_t``: the query of cell ``order[t]``) under a block mask in which a token sees the
class row, every earlier group and its whole own group, and a query of group ``j`` sees the class
row, the tokens of groups ``< j`` and every query of group ``j``. Row ``t`` of the output predicts
cell ``order[t]``. Decoding group by group with a KV cache (what ordo's ``lpd:...`` plans do) gives
the same logits as this one pass, so a model trained here decodes with ``ordo.Model.generate``.

Usage (a lesson-sized model)::

    args = LPDArgs(dim=64, depth=2, num_heads=4, vocab_size=16, num_classes=10, num_cells=256)
    model = LPD(args)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    g = torch.Generator().manual_seed(0)
    for tokens, labels in batches:                    # labels already label-dropped (num_classes = uncond)
        opt.zero_grad(); loss(model, tokens, labels, g).backward(); opt.step()
    save(model, args, "tiny")                         # tiny.safetensors + tiny.json
    m = ordo.Model("tiny.safetensors", "tiny.json")
    m.generate(ordo.plan("lpd:20", "16x16"), [3], cfg=4.0, cfg_ramp="linear_in_rank", greedy=True)
"""

from __future__ import annotations

import json
import math
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
import llamagen  # noqa: E402  (load_safetensors / save_safetensors)

# ---------------------------------------------------------------------------------------------
# the configuration
# ---------------------------------------------------------------------------------------------


@dataclass
class LPDArgs:
    """What shapes an LPD decoder (dropouts and the label-drop probability do not)."""

    dim: int = 1024  # decoder_embed_dim
    depth: int = 24  # decoder_depth
    num_heads: int = 16  # decoder_num_heads (in no tensor shape: ordo reads it from the JSON)
    mlp_ratio: float = 4.0  # MLP hidden width = int(dim * mlp_ratio)
    vocab_size: int = 16384  # vqgan_vocab_size
    num_classes: int = 1000  # class_num; label num_classes = unconditional (fake_latent)
    num_cells: int = 256  # grid cells N = (img_size / vqgan_stride)^2; pos_embed has N + 1 rows
    norm_eps: float = 1e-6  # every LayerNorm

    @property
    def mlp_hidden(self) -> int:
        return int(self.dim * self.mlp_ratio)

    @property
    def head_dim(self) -> int:
        return self.dim // self.num_heads

    @property
    def null_label(self) -> int:
        return self.num_classes

    def to_json(self, path) -> None:
        """Writes the JSON that goes beside the checkpoint: the official constructor arguments
        under ``constructor_args`` (the layout of the golden ``weights.json``; ordo's C++ loader
        reads ``constructor_args.decoder_num_heads``, see ``num_heads_from_weights_json``), plus
        ``num_cells`` and ``norm_eps`` there too so that :meth:`from_json` gives these args back."""
        side = math.isqrt(self.num_cells)
        ctor = {
            "decoder_embed_dim": self.dim,
            "decoder_depth": self.depth,
            "decoder_num_heads": self.num_heads,
            "mlp_ratio": self.mlp_ratio,
            "class_num": self.num_classes,
            "vqgan_vocab_size": self.vocab_size,
            "num_cells": self.num_cells,
            "norm_eps": self.norm_eps,
        }
        if side * side == self.num_cells:  # the official code knows square grids only
            ctor.update(img_size=16 * side, vqgan_stride=16)
        doc = {
            "class": "models/lpd.py: LPD (re-implemented in ordo examples/python/lpd.py)",
            "constructor_args": ctor,
            "derived": {"head_dim": self.head_dim, "mlp_hidden": self.mlp_hidden, "seq_len": self.num_cells,
                        "null_label": self.null_label},
        }
        Path(path).write_text(json.dumps(doc, indent=1) + "\n")

    @classmethod
    def from_json(cls, path) -> "LPDArgs":
        """From :meth:`to_json`'s file or an official one (``constructor_args`` with the official
        names, the grid from ``img_size / vqgan_stride``), or a bare object of either kind."""
        d = json.loads(Path(path).read_text())
        c = d.get("constructor_args", d)
        if "num_cells" in c:
            cells = int(c["num_cells"])
        else:
            cells = (int(c.get("img_size", 256)) // int(c.get("vqgan_stride", 16))) ** 2
        return cls(
            dim=int(c.get("decoder_embed_dim", c.get("dim", cls.dim))),
            depth=int(c.get("decoder_depth", c.get("depth", cls.depth))),
            num_heads=int(c.get("decoder_num_heads", c.get("num_heads", cls.num_heads))),
            mlp_ratio=float(c.get("mlp_ratio", cls.mlp_ratio)),
            vocab_size=int(c.get("vqgan_vocab_size", c.get("vocab_size", cls.vocab_size))),
            num_classes=int(c.get("class_num", c.get("num_classes", cls.num_classes))),
            num_cells=cells,
            norm_eps=float(c.get("norm_eps", cls.norm_eps)),
        )


# ---------------------------------------------------------------------------------------------
# the model (parameter names = the official state-dict keys)
# ---------------------------------------------------------------------------------------------


class Attention(nn.Module):
    def __init__(self, a: LPDArgs):
        super().__init__()
        self.num_heads = a.num_heads
        self.qkv = nn.Linear(a.dim, 3 * a.dim, bias=True)  # rows [q; k; v], head-major inside each
        self.proj = nn.Linear(a.dim, a.dim, bias=True)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        B, L, D = x.shape
        q, k, v = self.qkv(x).view(B, L, 3, self.num_heads, D // self.num_heads).permute(2, 0, 3, 1, 4)
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)  # bool mask: True = may attend
        return self.proj(y.transpose(1, 2).reshape(B, L, D))


class Mlp(nn.Module):
    def __init__(self, a: LPDArgs):
        super().__init__()
        self.fc1 = nn.Linear(a.dim, a.mlp_hidden)
        self.fc2 = nn.Linear(a.mlp_hidden, a.dim)

    def forward(self, x):
        return self.fc2(F.gelu(self.fc1(x)))  # exact (erf) GELU


class Block(nn.Module):
    def __init__(self, a: LPDArgs):
        super().__init__()
        self.norm1 = nn.LayerNorm(a.dim, eps=a.norm_eps)
        self.attn = Attention(a)
        self.norm2 = nn.LayerNorm(a.dim, eps=a.norm_eps)
        self.mlp = Mlp(a)

    def forward(self, x, mask):
        x = x + self.attn(self.norm1(x), mask)
        return x + self.mlp(self.norm2(x))


def group_ids(group_sizes, num_cells: int) -> torch.Tensor:
    """The group id of every row of the training sequence (conventions 1b): the class row 0,
    the tokens of group j 2(j+1) (j < K-1; the last group's tokens are not in the sequence),
    the queries of group j 2j+1."""
    sizes = [int(g) for g in group_sizes]
    if any(g < 1 for g in sizes) or sum(sizes) != num_cells:
        raise ValueError(f"group sizes {sizes} must be >= 1 and sum to {num_cells}")
    ctx = [0] + [2 * (j + 1) for j, g in enumerate(sizes[:-1]) for _ in range(g)]
    qry = [2 * j + 1 for j, g in enumerate(sizes) for _ in range(g)]
    return torch.tensor(ctx + qry)


def train_mask(group_sizes, num_cells: int) -> torch.Tensor:
    """bool [L, L], L = 2N + 1 - g_last: row q may attend to column kv iff they are in the same group,
    or kv is a context row (class or token) of an earlier group (official models/mask.py)."""
    gid = group_ids(group_sizes, num_cells)
    context_len = 1 + num_cells - int(group_sizes[-1])
    is_context = torch.arange(gid.numel()) < context_len
    return (gid[:, None] == gid[None, :]) | ((gid[None, :] < gid[:, None]) & is_context[None, :])


class LPD(nn.Module):
    """The LPD decoder. ``state_dict()`` keys and shapes are the official ones."""

    def __init__(self, args: LPDArgs):
        super().__init__()
        if args.dim % args.num_heads:
            raise ValueError(f"dim {args.dim} is not divisible by num_heads {args.num_heads}")
        self.args = args
        D = args.dim
        self.class_emb = nn.Embedding(args.num_classes, D)  # no null row: fake_latent is the uncond class
        self.token_emb = nn.Embedding(args.vocab_size, D)
        self.fake_latent = nn.Parameter(torch.zeros(1, D))
        self.pos_embed = nn.Parameter(torch.zeros(1, args.num_cells + 1, D))
        self.z_proj_ln = nn.LayerNorm(D, eps=args.norm_eps)
        self.mask_token = nn.Parameter(torch.zeros(1, 1, D))
        self.blocks = nn.ModuleList(Block(args) for _ in range(args.depth))
        self.norm = nn.LayerNorm(D, eps=args.norm_eps)
        self.head = nn.Linear(D, args.vocab_size, bias=False)
        self._masks: dict[tuple, torch.Tensor] = {}
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """The official initialisation: N(0, 0.02) for the embeddings and learned vectors, Xavier-uniform
        Linear weights with zero biases, LayerNorms 1 / 0."""
        for p in (self.class_emb.weight, self.fake_latent, self.mask_token, self.pos_embed, self.token_emb.weight):
            nn.init.normal_(p, std=0.02)
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.xavier_uniform_(m.weight)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.LayerNorm):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def class_rows(self, labels: torch.Tensor) -> torch.Tensor:
        """[B, D]: class_emb[label], or fake_latent for label num_classes (unconditional)."""
        C = self.args.num_classes
        if bool(((labels < 0) | (labels > C)).any()):
            raise ValueError(f"labels must be in 0..{C} ({C} = unconditional)")
        uncond = (labels == C).unsqueeze(-1)
        return torch.where(uncond, self.fake_latent, self.class_emb(labels.clamp(max=C - 1)))

    def mask(self, group_sizes, device) -> torch.Tensor:
        key = (tuple(int(g) for g in group_sizes), str(device))
        m = self._masks.get(key)
        if m is None:
            if len(self._masks) > 64:
                self._masks.clear()
            m = self._masks[key] = train_mask(key[0], self.args.num_cells).to(device)
        return m

    def forward_train(self, tokens: torch.Tensor, labels: torch.Tensor, orders: torch.Tensor, group_sizes) -> torch.Tensor:
        """The official training forward (models/lpd.py ``forward_decoder`` + ``head``), batched.

        tokens int64 [B, N] in raster order; labels int64 [B] (num_classes = unconditional);
        orders int64 [B, N], a permutation of 0..N-1 per sample (generation order); group_sizes:
        K ints summing to N, shared by the batch. Returns logits [B, N, vocab]; row t predicts cell
        orders[:, t]. One pass, differentiable.
        """
        B, N = tokens.shape
        if N != self.args.num_cells or orders.shape != tokens.shape or labels.shape != (B,):
            raise ValueError(f"tokens and orders must be [B, {self.args.num_cells}] and labels [B]")
        g_last = int(group_sizes[-1])
        pos = self.pos_embed[0]  # [N+1, D]
        cell_pos = pos[1 + orders]  # [B, N, D], the position of generation index t's cell
        cls = self.class_rows(labels) + pos[0]  # [B, D]
        toks = self.token_emb(torch.gather(tokens, 1, orders)[:, : N - g_last]) + cell_pos[:, : N - g_last]
        queries = self.mask_token + cell_pos  # [B, N, D]
        x = self.z_proj_ln(torch.cat([cls[:, None], toks, queries], dim=1))  # [B, 2N+1-g_last, D]
        mask = self.mask(group_sizes, x.device)
        for block in self.blocks:
            x = block(x, mask)
        return self.head(self.norm(x[:, -N:]))


# ---------------------------------------------------------------------------------------------
# training
# ---------------------------------------------------------------------------------------------

# The official training schedules for 256 cells (orders/group_sizes_training/group_sizes_256.json of
# mit-han-lab/lpd): one is drawn per iteration. Stored as (size, count) runs.
_TRAINING_SCHEDULES_256_RUNS = [
    [(1, 256)],
    [(1, 41), (2, 46), (3, 41)],
    [(1, 10), (2, 7), (3, 7), (4, 9), (5, 11), (6, 20)],
    [(1, 2), (2, 2), (3, 2), (4, 1), (5, 2), (6, 2), (7, 2), (8, 2), (9, 2), (10, 3), (11, 4), (12, 8)],
    [(1, 1), (2, 1), (3, 1), (4, 1), (5, 1), (6, 1), (7, 1), (8, 1), (9, 1), (10, 1), (11, 2), (12, 1), (13, 1),
     (14, 3), (15, 2), (16, 3), (17, 2)],
    [(1, 1), (2, 1), (4, 1), (5, 1), (7, 1), (8, 1), (10, 1), (11, 1), (12, 1), (14, 1), (15, 1), (16, 1), (17, 1),
     (18, 2), (19, 2), (20, 3)],
    [(1, 1), (4, 1), (6, 1), (8, 1), (11, 1), (13, 1), (15, 1), (17, 1), (19, 1), (20, 1), (22, 1), (23, 1),
     (24, 3), (25, 1)],
    [(1, 1), (7, 1), (11, 1), (15, 1), (19, 1), (22, 1), (25, 1), (28, 1), (30, 1), (32, 1), (33, 2)],
    [(1, 1), (15, 1), (24, 1), (32, 1), (40, 1), (45, 1), (49, 1), (50, 1)],
]
TRAINING_SCHEDULES_256 = [[g for g, n in runs for _ in range(n)] for runs in _TRAINING_SCHEDULES_256_RUNS]


def training_schedules(num_cells: int) -> list[list[int]]:
    """The group schedules training draws from: for 256 cells the official nine (256 down to 8 steps);
    for another grid each of them rescaled to ``num_cells`` (the group boundaries at the same
    fractions of the sequence, rounded; first group 1, no empty group). The official code has a
    second list only for 1024 cells (512 px fine-tuning); this rescaling is ordo's stand-in."""
    if num_cells == 256:
        return [list(s) for s in TRAINING_SCHEDULES_256]
    out = []
    for s in TRAINING_SCHEDULES_256:
        ends, c = [], 0
        for g in s:
            c += g
            ends.append(round(c * num_cells / 256))
        sizes, prev = [], 0
        for e in [1] + ends:
            e = max(e, 1)
            if e > prev:
                sizes.append(e - prev)
                prev = e
        if sizes not in out:
            out.append(sizes)
    return out


def random_orders(batch: int, num_cells: int, generator: torch.Generator | None = None, device=None) -> torch.Tensor:
    """int64 [batch, num_cells]: an independent uniformly random permutation per sample."""
    return torch.rand(batch, num_cells, generator=generator).argsort(dim=1).to(device)


def loss(model: LPD, tokens: torch.Tensor, labels: torch.Tensor, generator: torch.Generator | None = None,
         schedules: list[list[int]] | None = None) -> torch.Tensor:
    """Mean cross-entropy per token of one training batch, drawn as the official training draws it.

    Official (mit-han-lab/lpd ``engine.py`` train loop + ``LPD.forward``/``sample_orders``):

    * **orders**: a fresh, uniformly random permutation of the cells for *every sample*
      (``np.random.shuffle`` per sample). Training does *not* use the locality-aware orders; those
      are an inference-time choice (ordo's ``lpd:...`` plans). Here: ``argsort`` of uniform noise
      from ``generator``.
    * **group sizes**: *one* schedule per iteration, shared by the whole batch, picked uniformly
      (``random.choice``) from ``orders/group_sizes_training/group_sizes_256.json`` - nine schedules
      with 256, 128, 64, 32, 24, 20, 16, 12 and 8 steps, all starting with a group of 1
      (:data:`TRAINING_SCHEDULES_256`; :func:`training_schedules` rescales them to other grids).
      ``schedules=`` overrides the list.
    * loss: plain cross-entropy over all B*N predictions (row t against the token of cell
      ``order[t]``).

    Label dropout (the official ``fake_latent`` swap with probability 0.1) is the caller's: pass
    label ``num_classes`` for the dropped samples.
    """
    B, N = tokens.shape
    schedules = schedules if schedules is not None else training_schedules(N)
    pick = int(torch.randint(len(schedules), (1,), generator=generator))
    orders = random_orders(B, N, generator, tokens.device)
    logits = model.forward_train(tokens, labels, orders, schedules[pick])
    target = torch.gather(tokens, 1, orders)
    return F.cross_entropy(logits.reshape(B * N, -1), target.reshape(-1))


# ---------------------------------------------------------------------------------------------
# files
# ---------------------------------------------------------------------------------------------


def save(model: LPD, args: LPDArgs, stem) -> None:
    """Writes ``stem.safetensors`` (float32, official keys) and ``stem.json`` (:meth:`LPDArgs.to_json`):
    ``ordo.Model(f"{stem}.safetensors", f"{stem}.json")`` loads the pair, so does :func:`load`."""
    stem = str(stem)
    llamagen.save_safetensors(f"{stem}.safetensors", model.state_dict())
    args.to_json(f"{stem}.json")


def load(stem, weights=None) -> LPD:
    """An LPD from ``stem.json`` and ``stem.safetensors`` (or ``weights``), strict, in eval mode.
    Official JSONs (the golden ``weights.json``) work too."""
    stem = str(stem)
    args = LPDArgs.from_json(f"{stem}.json")
    model = LPD(args)
    model.load_state_dict(llamagen.load_safetensors(weights or f"{stem}.safetensors"), strict=True)
    return model.eval()
