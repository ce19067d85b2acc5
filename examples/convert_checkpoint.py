#!/usr/bin/env python3
"""Convert an official LlamaGen / PAR / NAR class-conditional GPT checkpoint (.pt) for ordo.

    python3 examples/convert_checkpoint.py c2i_B_256.pt c2i_B_256.safetensors --model GPT-B
    ordo generate --config c2i_B_256.json ...   # with the weights file c2i_B_256.safetensors

Reads the .pt with torch (the only dependency), takes the state dict (under "model", "module",
"state_dict" or "ema", or a bare one), strips "module." / "_orig_mod." prefixes, drops runtime
buffers (kv caches, freqs_cis, masks), and writes OUT.safetensors (tensors in sorted-key order,
f32 by default) plus OUT.json holding {"model_args": {...}} inferred from the tensor shapes.
ordo's loader is strict: the file must hold exactly the tensors of that config, with the official
key names and shapes, as F32, F16 or BF16. The safetensors format is written by hand: an 8-byte
little-endian header length, a JSON header padded with spaces to a multiple of 8, then the data.
"""

import argparse
import ctypes
import inspect
import json
import os
import pickle
import re
import struct
import sys

# name: (n_layer, dim, n_head), as in LlamaGen's GPT_models
PRESETS = {
    "GPT-B": (12, 768, 12),
    "GPT-L": (24, 1024, 16),
    "GPT-XL": (36, 1280, 20),
    "GPT-XXL": (48, 1536, 24),
    "GPT-3B": (24, 3200, 32),
}
DTYPE_TAGS = {"f32": "F32", "f16": "F16", "bf16": "BF16"}
DTYPE_SIZES = {"F64": 8, "F32": 4, "F16": 2, "BF16": 2, "I64": 8, "I32": 4, "I16": 2, "I8": 1, "U8": 1, "BOOL": 1}
STATE_KEYS = ("model", "module", "state_dict", "ema")
STRIP_PREFIXES = ("module.", "_orig_mod.")
RUNTIME_BUFFERS = ("kv_cache", "freqs_cis", "causal_mask", "diagonal_mask")
LABEL_TABLE = "cls_embedding.embedding_table.weight"
SPE_TABLE = "spe_tok_embeddings.special_embeddings.weight"


def die(msg):
    sys.exit("convert_checkpoint: error: " + msg)


def warn(msg):
    print("convert_checkpoint: warning: " + msg, file=sys.stderr)


def import_torch():
    try:
        import torch
    except ImportError:
        die("PyTorch is needed to read .pt checkpoints: pip install torch (the CPU build is enough)")
    return torch


# ---- safetensors writer (no torch, no safetensors package) ----------------------------------

def write_safetensors(path, tensors, metadata):
    """tensors: {name: (dtype tag, shape, fetch)}, fetch() giving the tensor's little-endian bytes.
    Writes them in sorted-name order, back to back; offsets are relative to the data section."""
    if "__metadata__" in tensors:
        die("a tensor is named __metadata__")
    names = sorted(tensors)
    header, offset, sizes = {}, 0, []
    for name in names:
        tag, shape, _ = tensors[name]
        size = DTYPE_SIZES[tag]
        for d in shape:
            size *= int(d)
        header[name] = {"dtype": tag, "shape": [int(d) for d in shape], "data_offsets": [offset, offset + size]}
        offset += size
        sizes.append(size)
    # metadata values must be strings; replace what UTF-8 cannot hold (undecodable file names)
    clean = lambda s: str(s).encode("utf-8", "replace").decode("utf-8")
    header["__metadata__"] = {clean(k): clean(v) for k, v in metadata.items()}
    text = json.dumps(header, separators=(",", ":")).encode("utf-8")
    text += b" " * (-len(text) % 8)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for name, size in zip(names, sizes):
            data = memoryview(tensors[name][2]())
            if data.nbytes != size:
                die("tensor %s: got %d bytes, its shape needs %d" % (name, data.nbytes, size))
            f.write(data)
    os.replace(tmp, path)
    return 8 + len(text) + offset


# ---- state dict and config (shapes only; no torch) ------------------------------------------

def pick_state_dict(obj, key=None):
    """The state dict inside a loaded checkpoint, and the top-level key it was under (None: bare)."""
    if hasattr(obj, "state_dict") and not isinstance(obj, dict):  # a whole nn.Module was saved
        return obj.state_dict(), None
    if not isinstance(obj, dict):
        die("the checkpoint holds a %s, not a dict" % type(obj).__name__)
    if key is not None:
        if key not in obj or not isinstance(obj[key], dict):
            die("no state dict under %r (top-level keys: %s)" % (key, ", ".join(map(str, obj))))
        return obj[key], key
    for k in STATE_KEYS:
        if isinstance(obj.get(k), dict):
            return obj[k], k
        if hasattr(obj.get(k), "state_dict"):
            return obj[k].state_dict(), k
    if obj and all(hasattr(v, "shape") for v in obj.values()):
        return obj, None
    die("no state dict under %s, and not a bare state dict either (top-level keys: %s)"
        % ("/".join(STATE_KEYS), ", ".join(map(str, obj))))


def clean_state_dict(sd):
    """Strips wrapper prefixes and drops runtime buffers: (kept {name: tensor}, [(key, why)])."""
    kept, dropped = {}, []
    for key, value in sd.items():
        name = key
        while name.startswith(STRIP_PREFIXES):
            name = name[len(next(p for p in STRIP_PREFIXES if name.startswith(p))):]
        buf = next((b for b in RUNTIME_BUFFERS if b in name), None)
        if buf:
            dropped.append((key, "runtime buffer (%s)" % buf))
        elif not hasattr(value, "shape"):
            dropped.append((key, "not a tensor (%s)" % type(value).__name__))
        elif name in kept:
            die("two keys become %r once prefixes are stripped" % name)
        else:
            kept[name] = value
    return kept, dropped


def infer_model_args(shapes, opt):
    """ModelArgs (the fields that shape the weights) from {name: shape}, checked against opt."""
    def need(name, rank):
        if name not in shapes:
            return None
        if len(shapes[name]) != rank:
            die("%s has shape %s, expected %d-D" % (name, list(shapes[name]), rank))
        return [int(d) for d in shapes[name]]

    tok = need("tok_embeddings.weight", 2)
    if tok is None:
        die("no tok_embeddings.weight: not a LlamaGen GPT state dict (keys: %s ...)" % ", ".join(sorted(shapes)[:8]))
    cls = need(LABEL_TABLE, 2)
    if cls is None:
        die("no %s: not a class-conditional (c2i) model; ordo runs c2i models only" % LABEL_TABLE)
    vocab_size, dim = tok
    num_classes = cls[0] - 1
    if cls[1] != dim or num_classes < 1:
        die("%s has shape %s, expected [num_classes + 1, %d]" % (LABEL_TABLE, cls, dim))
    for flag, want, got in (("--vocab-size", opt.vocab_size, vocab_size), ("--num-classes", opt.num_classes, num_classes)):
        if want is not None and want != got:
            die("%s %d, but the checkpoint has %d" % (flag, want, got))

    layers = sorted({int(m.group(1)) for m in map(re.compile(r"layers\.(\d+)\.").match, shapes) if m})
    if not layers or layers != list(range(len(layers))):
        die("layer indices %s are not 0..n-1" % layers)
    total = len(layers)

    preset = None
    if opt.model:
        preset = PRESETS[opt.model]
        if preset[1] != dim:
            die("%s has dim %d, but tok_embeddings.weight is %s (wrong --model?)" % (opt.model, preset[1], tok))
    else:
        name = next((n for n, p in PRESETS.items() if p[1] == dim), None)
        if name:
            preset = PRESETS[name]
            print("preset %s (from dim %d)" % (name, dim))
    if opt.n_head:
        n_head = opt.n_head
    elif preset:
        n_head = preset[2]
    else:
        die("dim %d matches no preset (%s): give --n-head" % (dim, ", ".join(PRESETS)))
    if dim % n_head:
        die("dim %d is not divisible by n_head %d" % (dim, n_head))
    head_dim = dim // n_head

    has_medusa = "medusa_norm.weight" in shapes
    medusa = opt.medusa_attention_num
    if medusa is None:
        if not has_medusa:
            medusa = 0
        elif preset:
            medusa = total - preset[0]
        else:
            die("a NAR checkpoint (medusa_norm.weight) with a non-preset dim: give --medusa-attention-num")
    if medusa > 0 and not has_medusa:
        die("medusa_attention_num %d, but there is no medusa_norm.weight (not a NAR checkpoint)" % medusa)
    if medusa == 0 and has_medusa:
        die("a NAR checkpoint (medusa_norm.weight) needs medusa_attention_num >= 1")
    n_layer = total - medusa
    if n_layer < 1 or medusa < 0:
        die("%d layers cannot hold medusa_attention_num %d" % (total, medusa))
    if preset and n_layer != preset[0]:
        warn("the trunk has %d layers, the preset %d; writing n_layer %d" % (n_layer, preset[0], n_layer))

    spe = need(SPE_TABLE, 2)
    spe_token_num = spe[0] if spe else 0
    if opt.spe_token_num is not None and opt.spe_token_num != spe_token_num:
        die("--spe-token-num %d, but the checkpoint has %d transition tokens (%s)" % (opt.spe_token_num, spe_token_num, SPE_TABLE))

    qkv = need("layers.0.attention.wqkv.weight", 2)
    w1 = need("layers.0.feed_forward.w1.weight", 2)
    if qkv is None or w1 is None:
        die("layers.0 lacks attention.wqkv.weight or feed_forward.w1.weight")
    kv2 = qkv[0] // head_dim - n_head
    if qkv[0] % head_dim or kv2 < 2 or kv2 % 2 or n_head % (kv2 // 2):
        die("wqkv rows %d do not fit n_head %d, head_dim %d" % (qkv[0], n_head, head_dim))
    n_kv_head = None if kv2 // 2 == n_head else kv2 // 2
    # FeedForward: int(2 * 4 * dim / 3) rounded up to multiple_of (256 in the official models)
    hidden = 2 * 4 * dim // 3
    multiple_of = next((m for m in (256, 128, 64, 32, 16, 8, 4, 2, 1) if -(-hidden // m) * m == w1[0]), None)
    if multiple_of is None:
        die("feed-forward width %d is not int(8 * dim / 3) = %d rounded up to a power of two" % (w1[0], hidden))

    args = {
        "dim": dim, "n_layer": n_layer, "n_head": n_head, "n_kv_head": n_kv_head, "multiple_of": multiple_of,
        "ffn_dim_multiplier": None, "rope_base": 10000, "norm_eps": 1e-05, "vocab_size": vocab_size,
        "num_classes": num_classes, "cls_token_num": 1, "model_type": "c2i",
    }
    if spe_token_num:
        args["spe_token_num"] = spe_token_num
        args["ar_token_num"] = spe_token_num + 1  # the released PAR models: 3/4 and 15/16
    if medusa:
        args["medusa_attention_num"] = medusa
    return args


def expected_shapes(a):
    """The tensors ordo's loader wants for these model args (include/ordo/models/llamagen/gpt_config.hpp)."""
    d, hd, kv = a["dim"], a["dim"] // a["n_head"], a["n_kv_head"] or a["n_head"]
    ffn = -(-(2 * 4 * d // 3) // a["multiple_of"]) * a["multiple_of"]
    want = {LABEL_TABLE: (a["num_classes"] + 1, d), "tok_embeddings.weight": (a["vocab_size"], d),
            "norm.weight": (d,), "output.weight": (a["vocab_size"], d)}
    if a.get("spe_token_num"):
        want[SPE_TABLE] = (a["spe_token_num"], d)
    if a.get("medusa_attention_num"):
        want["medusa_norm.weight"] = (d,)
        want["medusa_output.weight"] = (a["vocab_size"], d)
    for i in range(a["n_layer"] + a.get("medusa_attention_num", 0)):
        p = "layers.%d." % i
        want.update({p + "attention.wqkv.weight": ((a["n_head"] + 2 * kv) * hd, d), p + "attention.wo.weight": (d, d),
                     p + "feed_forward.w1.weight": (ffn, d), p + "feed_forward.w3.weight": (ffn, d),
                     p + "feed_forward.w2.weight": (d, ffn), p + "attention_norm.weight": (d,), p + "ffn_norm.weight": (d,)})
    return want


def check_against_ordo(shapes, args):
    want = expected_shapes(args)
    problems = ["missing %s %s" % (k, list(s)) for k, s in sorted(want.items()) if k not in shapes]
    problems += ["unexpected %s %s" % (k, list(shapes[k])) for k in sorted(shapes) if k not in want]
    problems += ["%s is %s, ordo needs %s" % (k, list(shapes[k]), list(s))
                 for k, s in sorted(want.items()) if k in shapes and tuple(shapes[k]) != tuple(s)]
    for p in problems:
        warn("ordo's loader will reject this file: " + p)
    return not problems


# ---- torch side ------------------------------------------------------------------------------

def load_checkpoint(path, allow_pickle):
    torch = import_torch()
    try:  # the training scripts save their argparse.Namespace beside the weights
        torch.serialization.add_safe_globals([argparse.Namespace])
    except AttributeError:  # torch < 2.4
        pass
    if "weights_only" not in inspect.signature(torch.load).parameters:  # torch < 1.13
        if not allow_pickle:
            die("this torch cannot load with weights_only=True; upgrade it, or rerun with --allow-pickle for a file you trust")
        return torch.load(path, map_location="cpu")
    try:
        return torch.load(path, map_location="cpu", weights_only=not allow_pickle)
    except pickle.UnpicklingError as e:
        die("%s: torch.load(weights_only=True) refused it (%s); if the file comes from a source you trust, "
            "rerun with --allow-pickle" % (path, str(e).splitlines()[0] if str(e) else e))


def tensor_bytes(t, torch_dtype):
    t = t.detach().to(device="cpu", dtype=torch_dtype).contiguous()
    n = t.numel() * t.element_size()
    return ctypes.string_at(t.data_ptr(), n) if n else b""


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("input", help="official checkpoint (.pt)")
    ap.add_argument("output", help="OUT.safetensors; the model args go to OUT.json")
    ap.add_argument("--model", choices=sorted(PRESETS), help="size preset (default: the one whose dim matches)")
    ap.add_argument("--dtype", choices=sorted(DTYPE_TAGS), default="f32", help="stored dtype (default f32)")
    ap.add_argument("--spe-token-num", type=int, help="PAR transition tokens (default: rows of %s)" % SPE_TABLE)
    ap.add_argument("--medusa-attention-num", type=int, help="NAR extra blocks (default: layers past the preset's n_layer)")
    ap.add_argument("--vocab-size", type=int, help="check the vocabulary (official: 16384; default: from the checkpoint)")
    ap.add_argument("--num-classes", type=int, help="check the class count (official: 1000; default: from the checkpoint)")
    ap.add_argument("--n-head", type=int, help="attention heads, for a dim that matches no preset")
    ap.add_argument("--key", help="top-level key of the state dict (default: the first of %s)" % ", ".join(STATE_KEYS))
    ap.add_argument("--allow-pickle", action="store_true", help="load with weights_only=False (trusted files only)")
    opt = ap.parse_args(argv)
    if sys.byteorder != "little":
        die("this writer copies tensors as the host stores them, and safetensors is little-endian")
    if not os.path.isfile(opt.input):
        die("no file %s" % opt.input)

    torch = import_torch()
    sd, where = pick_state_dict(load_checkpoint(opt.input, opt.allow_pickle), opt.key)
    print("state dict: %s (%d entries)" % ("under %r" % where if where else "bare", len(sd)))
    kept, dropped = clean_state_dict(sd)
    for key, why in dropped:
        print("dropped %s: %s" % (key, why))
    for name, t in kept.items():
        if not t.is_floating_point():
            die("%s is a %s tensor, not a weight" % (name, t.dtype))
    shapes = {k: tuple(t.shape) for k, t in kept.items()}

    args = infer_model_args(shapes, opt)
    print("model_args: " + json.dumps(args))
    check_against_ordo(shapes, args)

    tag, torch_dtype = DTYPE_TAGS[opt.dtype], {"f32": torch.float32, "f16": torch.float16, "bf16": torch.bfloat16}[opt.dtype]
    tensors = {k: (tag, shapes[k], lambda t=t: tensor_bytes(t, torch_dtype)) for k, t in kept.items()}
    metadata = {"format": "pt", "source": os.path.basename(opt.input), "converter": "examples/convert_checkpoint.py",
                "state_dict_key": where or "", "dtype": tag}
    size = write_safetensors(opt.output, tensors, metadata)
    config = os.path.splitext(opt.output)[0] + ".json"
    with open(config, "w") as f:
        json.dump({"model_args": args}, f, indent=2)
        f.write("\n")
    print("wrote %s (%d tensors, %s, %d bytes) and %s" % (opt.output, len(tensors), tag, size, config))


if __name__ == "__main__":
    main()
