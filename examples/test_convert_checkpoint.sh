#!/usr/bin/env bash
# examples/test_convert_checkpoint.sh - checks examples/convert_checkpoint.py on a tiny fake
# LlamaGen checkpoint (dim 64, 2 layers, the keys of tests/data/e2e/raster_G8_cfg2.0_label3).
# Part 1 needs no torch: the hand-written safetensors writer, key cleaning and config inference,
# on stand-in tensors. Part 2 needs torch: a real {"model": state_dict} .pt through the script,
# its output read back with plain Python. Exit 0: passed; 77: torch missing (part 1 passed); else failed.
set -euo pipefail
export PYTHONDONTWRITEBYTECODE=1  # leave no __pycache__ in examples/

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
script="$here/convert_checkpoint.py"
case_json="$here/../tests/data/e2e/raster_G8_cfg2.0_label3.weights.json"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# A header parser shared by both parts (no torch): {name: (dtype, shape, bytes)}, metadata.
cat > "$tmp/read_st.py" <<'EOF'
import json, struct
def read_st(path):
    b = open(path, "rb").read()
    n = struct.unpack("<Q", b[:8])[0]
    assert n % 8 == 0 and len(b) >= 8 + n, "header length %d" % n
    text = b[8:8 + n].decode("utf-8")
    assert text.rstrip(" ").endswith("}"), "header must be a JSON object padded with spaces"
    h = json.loads(text)
    meta = h.pop("__metadata__")
    names = list(h)
    assert names == sorted(names), "not in sorted order"
    end = 0
    for k in names:  # contiguous, in header order, sizes matching shapes
        e = h[k]
        size = {"F32": 4, "F16": 2, "BF16": 2}[e["dtype"]]
        for d in e["shape"]:
            size *= d
        assert e["data_offsets"] == [end, end + size], (k, e)
        end += size
    assert len(b) == 8 + n + end, "data section is %d bytes, offsets say %d" % (len(b) - 8 - n, end)
    data = b[8 + n:]
    return {k: (h[k]["dtype"], h[k]["shape"], data[h[k]["data_offsets"][0]:h[k]["data_offsets"][1]]) for k in names}, meta
EOF

# ---- part 1: no torch --------------------------------------------------------------------------
python3 - "$script" "$case_json" "$tmp" <<'EOF'
import importlib.util, json, struct, sys, types
script, case_json, tmp = sys.argv[1:]
sys.path.insert(0, tmp)
from read_st import read_st
spec = importlib.util.spec_from_file_location("convert_checkpoint", script)
cc = importlib.util.module_from_spec(spec)
spec.loader.exec_module(cc)

case = json.load(open(case_json))
class Fake:  # a stand-in tensor: the script's shape logic only needs .shape
    def __init__(self, shape):
        self.shape = tuple(shape)
sd = {"module." + k: Fake(s) for k, s in case["tensors"].items()}
sd["module.layers.0.attention.kv_cache.k_cache"] = Fake([2, 4, 64, 16])
sd["module._orig_mod.freqs_cis"] = Fake([65, 8, 2])
got, where = cc.pick_state_dict({"model": sd, "steps": 7})
kept, dropped = cc.clean_state_dict(got)
assert where == "model"
assert sorted(kept) == sorted(case["tensors"]), sorted(set(kept) ^ set(case["tensors"]))
assert sorted(k for k, _ in dropped) == ["module._orig_mod.freqs_cis", "module.layers.0.attention.kv_cache.k_cache"], dropped

opt = types.SimpleNamespace(model=None, n_head=4, vocab_size=None, num_classes=None, spe_token_num=None, medusa_attention_num=None)
shapes = {k: v.shape for k, v in kept.items()}
args = cc.infer_model_args(shapes, opt)
for k in ("dim", "n_layer", "n_head", "n_kv_head", "vocab_size", "num_classes", "cls_token_num", "model_type"):
    assert args[k] == case["model_args"][k], (k, args[k])
assert cc.check_against_ordo(shapes, args)  # ordo's key set and shapes, FFN width included

# the writer, with made-up bytes (value i of tensor k is float(i))
def payload(shape):
    n = 1
    for d in shape:
        n *= d
    return struct.pack("<%df" % n, *range(n))
tensors = {k: ("F32", s, lambda s=s: payload(s)) for k, s in shapes.items()}
cc.write_safetensors(tmp + "/fake.safetensors", tensors, {"source": "fake.pt", "converter": "examples/convert_checkpoint.py"})
back, meta = read_st(tmp + "/fake.safetensors")
assert meta == {"source": "fake.pt", "converter": "examples/convert_checkpoint.py"}, meta
for k, s in shapes.items():
    assert back[k] == ("F32", list(s), payload(s)), k
print("part 1 (no torch): writer, key cleaning and config inference ok")
EOF

# ---- part 2: torch -----------------------------------------------------------------------------
if ! python3 -c "import torch" 2>/dev/null; then
    echo "SKIP: torch not installed"
    exit 77
fi

python3 - "$case_json" "$tmp" <<'EOF'
import json, sys, torch
case_json, tmp = sys.argv[1:]
case = json.load(open(case_json))
torch.manual_seed(0)
sd = {"module." + k: torch.randn(*s) for k, s in case["tensors"].items()}
sd["module.layers.0.attention.kv_cache.k_cache"] = torch.zeros(2, 4, 64, 16)
torch.save({"model": sd}, tmp + "/fake.pt")
json.dump({k[len("module."):]: v.flatten().tolist() for k, v in sd.items() if "kv_cache" not in k}, open(tmp + "/values.json", "w"))
EOF

for dtype in f32 bf16; do
    python3 "$script" "$tmp/fake.pt" "$tmp/out_$dtype.safetensors" --n-head 4 --dtype "$dtype" > "$tmp/log_$dtype"
    grep -q "dropped module.layers.0.attention.kv_cache.k_cache" "$tmp/log_$dtype" || { cat "$tmp/log_$dtype"; echo "FAIL: the kv_cache buffer was not reported dropped"; exit 1; }
    python3 - "$case_json" "$tmp" "$dtype" <<'EOF'
import json, struct, sys
case_json, tmp, dtype = sys.argv[1:]
sys.path.insert(0, tmp)
from read_st import read_st
case = json.load(open(case_json))
got, meta = read_st("%s/out_%s.safetensors" % (tmp, dtype))
assert sorted(got) == sorted(case["tensors"]), sorted(set(got) ^ set(case["tensors"]))
tag = {"f32": "F32", "bf16": "BF16"}[dtype]
for k, s in case["tensors"].items():
    assert got[k][0] == tag and got[k][1] == s, (k, got[k][:2], s)
assert meta["source"] == "fake.pt" and meta["converter"].endswith("convert_checkpoint.py"), meta
values = json.load(open(tmp + "/values.json"))
for k, want in values.items():
    raw = got[k][2]
    if tag == "F32":
        have = list(struct.unpack("<%df" % len(want), raw))
        assert have == want, k
    else:  # bf16 is the top half of a float; rounding keeps it within 2^-8 relative
        have = [struct.unpack("<f", b"\0\0" + raw[2 * i:2 * i + 2])[0] for i in range(len(want))]
        assert all(abs(h - w) <= abs(w) * 2 ** -8 for h, w in zip(have, want)), k
args = json.load(open("%s/out_%s.json" % (tmp, dtype)))["model_args"]
for k in ("dim", "n_layer", "n_head", "n_kv_head", "vocab_size", "num_classes", "cls_token_num", "model_type"):
    assert args[k] == case["model_args"][k], (k, args[k])
print("part 2 (torch, %s): keys, shapes, values, metadata and model_args ok" % dtype)
EOF
done
echo "test_convert_checkpoint: ok"
