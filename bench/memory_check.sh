#!/usr/bin/env bash
# Peak resident memory of `ordo generate` loading a GPT-B checkpoint from disk, against
# weights + KV cache (target: <= 1.1x, i.e. no second copy of the weights while loading).
# Usage: bench/memory_check.sh path/to/ordo [grid]   (writes a 445 MB checkpoint to $TMPDIR)
set -eu
ordo=$1
grid=${2:-16x16}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$ordo" generate --random-weights --preset B --policy raster --grid 2x2 --quiet \
  --save-weights "$tmp/b.safetensors" --out "$tmp/seed.json" 2>/dev/null
"$ordo" generate --weights "$tmp/b.safetensors" --preset B --policy raster --grid "$grid" --class 1 --quiet --out "$tmp/run.json"
python3 - "$tmp/run.json" <<'PY'
import json, sys
b = json.load(open(sys.argv[1]))["bytes"]
ratio = b["peak_resident"] / (b["weights"] + b["kv_cache"])
print(f"peak resident {b['peak_resident']/1e6:.0f} MB = {ratio:.3f} x (weights {b['weights']/1e6:.0f} MB + kv cache {b['kv_cache']/1e6:.1f} MB)"
      f" -> {'ok' if ratio <= 1.1 else 'MISSED'} (target <= 1.1)")
sys.exit(0 if ratio <= 1.1 else 1)
PY
