#!/usr/bin/env bash
# CLI behaviour: exit codes and one-line errors. Usage: cli_checks.sh path/to/ordo
set -u
ordo=$1
fails=0
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
ok()   { if "$@" >/dev/null 2>&1; then echo "ok: $*"; else echo "FAIL (should succeed): $*"; fails=$((fails+1)); fi; }
bad()  { # bad EXPECTED_TEXT cmd...: must exit non-zero and print one line containing the text
  local want=$1; shift
  local out; out=$("$@" 2>&1); local rc=$?
  if [ $rc -ne 0 ] && grep -qF -- "$want" <<<"$out" && [ "$(wc -l <<<"$out")" -le 3 ]; then echo "ok: rejects $*";
  else echo "FAIL (rc=$rc): $* -> $out"; fails=$((fails+1)); fi
}
ok "$ordo" plan --policy par:2x2 --grid 24x24
ok "$ordo" plan --policy nar --grid 4x16x16 --format text
ok "$ordo" plan --policy zipar:8 --grid 16x16 --prefix 3
ok "$ordo" show --policy par:2x2+nar --grid 16x16 --color always
ok "$ordo" overview --grid 24x24
bad "unknown policy 'spiral'" "$ordo" plan --policy spiral --grid 8x8
bad "not divisible into 2x2 regions" "$ordo" plan --policy par:2x2 --grid 15x16
bad "extents must be >= 1" "$ordo" show --policy raster --grid 0x4
bad "more than 4194304 positions" "$ordo" show --policy raster --grid 100000x100000
# sizes past the documented caps (docs/concepts.md, Limits): refused at once, before any allocation
bad "grid 30000x30000 has more than 4194304 positions" "$ordo" show --policy raster --grid 30000x30000
bad "prefix 2000000000 is longer than the 65536 rows" "$ordo" plan --policy raster --grid 4x4 --prefix 2000000000
bad "more regions than the 4194304 positions" "$ordo" plan --policy par:65536x65536 --grid 8x8
bad "prefix must be >= 1" "$ordo" plan --policy raster --grid 4x4 --prefix 0
bad "format" "$ordo" plan --policy raster --grid 4x4 --format yaml
bad "grid spec" "$ordo" plan --policy raster --grid 4by4
# LPD specs (docs/orders.md): the grammar's errors name the problem
ok "$ordo" plan --policy lpd:steps=32,repulsion=2,seed=5 --grid 16x16
ok "$ordo" show --policy lpd:sizes=1+3+8+12+12,seed=request --grid 6x6 --color never
bad "LPD released no group sizes for 576 tokens in 20 steps" "$ordo" plan --policy lpd:20 --grid 24x24
bad "the group sizes sum to 35, the grid 6x6 has 36" "$ordo" plan --policy lpd:sizes=1+3+8+12+11 --grid 6x6
bad "unknown key 'window'" "$ordo" plan --policy lpd:20,window=3 --grid 16x16
bad "give steps (a released schedule) or sizes (your own), not both" "$ordo" plan --policy lpd:steps=20,sizes=256 --grid 16x16
bad "the seed is an integer 0..2^32-1" "$ordo" plan --policy lpd:20,seed=-1 --grid 16x16
bad "repulsion must be a number >= 0" "$ordo" plan --policy lpd:20,repulsion=x --grid 16x16
# RandAR and ARPG specs, and orders as data
ok "$ordo" show --policy randar:88 --grid 16x16 --color never
ok "$ordo" plan --policy arpg:steps=32,schedule=cosine,seed=4 --grid 16x16
bad "RandAR schedule of 300 steps for 256 tokens" "$ordo" plan --policy randar:300 --grid 16x16
bad "the schedule is arccos or cosine" "$ordo" plan --policy arpg:64,schedule=linear --grid 16x16
bad "an explicit order is given in code" "$ordo" plan --policy randar:88,order=1 --grid 16x16
echo '[0, 1, 2, 3, 4, 5]' > "$tmp/o6.json"
ok "$ordo" plan --policy arpg:3 --order "$tmp/o6.json" --grid 2x3
echo '[0, 1, 2, 3, 4, 4]' > "$tmp/o6bad.json"
bad "arpg: the order is not a permutation of the grid's cells" "$ordo" plan --policy arpg:3 --order "$tmp/o6bad.json" --grid 2x3
echo '{"order": [0]}' > "$tmp/o_obj.json"
bad "o_obj.json: an order is a JSON list of raster cells" "$ordo" plan --policy arpg:3 --order "$tmp/o_obj.json" --grid 2x3
"$ordo" plan --policy lpd:sizes=1+3+8+12+12 --grid 6x6 > "$tmp/l.json"
"$ordo" plan --plan "$tmp/l.json" > "$tmp/l2.json"
cmp -s "$tmp/l.json" "$tmp/l2.json" && echo "ok: an LPD plan reads back" || { echo "FAIL: plan --plan changed the LPD plan"; fails=$((fails+1)); }
# JSON is well formed and has the schema's top-level fields
out=$("$ordo" plan --policy par:2x2 --grid 8x8)
for key in '"train"' '"plan"' '"slot_step"' '"logit_rows"' '"num_forward_calls": 19' '"kv_cache_len": 72'; do
  grep -qF -- "$key" <<<"$out" || { echo "FAIL: plan JSON lacks $key"; fails=$((fails+1)); }
done
# a saved plan is read back: written again it is the same bytes; text and step map as from the policy
"$ordo" plan --policy zipar:3 --grid 4x2x6 --prefix 2 > "$tmp/z.json"
"$ordo" plan --plan "$tmp/z.json" > "$tmp/z2.json"
cmp -s "$tmp/z.json" "$tmp/z2.json" && echo "ok: plan --plan writes the file it read" || { echo "FAIL: plan --plan changed the plan"; fails=$((fails+1)); }
[ "$("$ordo" plan --plan "$tmp/z.json" --format text)" = "$("$ordo" plan --policy zipar:3 --grid 4x2x6 --prefix 2 --format text)" ] \
  && echo "ok: plan --plan --format text" || { echo "FAIL: plan --plan --format text differs"; fails=$((fails+1)); }
[ "$("$ordo" show --plan "$tmp/z.json" --color never)" = "$("$ordo" show --policy zipar:3 --grid 4x2x6 --color never)" ] \
  && echo "ok: show --plan" || { echo "FAIL: show --plan differs from show --policy"; fails=$((fails+1)); }
sed 's/"kv_cache_len": 56/"kv_cache_len": 48/' "$tmp/z.json" > "$tmp/bad.json"
bad "/plan/kv_cache_len: the file has 48, the plan it describes has 56" "$ordo" show --plan "$tmp/bad.json"
head -c 500 "$tmp/z.json" > "$tmp/cut.json"
bad "plan JSON: unexpected end" "$ordo" plan --plan "$tmp/cut.json"
bad "cannot read plan file" "$ordo" show --plan "$tmp/none.json"
bad "plan file /dev/zero is larger than 64.0 MiB" "$ordo" show --plan /dev/zero
bad "excludes" "$ordo" plan --plan "$tmp/z.json" --grid 4x4
bad "give --policy SPEC (with --grid) or --plan FILE" "$ordo" plan
# generate (only when the CLI was built with the CPU backend)
if "$ordo" generate --help >/dev/null 2>&1; then
  d=$(cd "$(dirname "$0")" && pwd)/data/e2e
  nar="--weights $d/nar_G8_cfg2.0_label3.weights.safetensors --config $d/nar_G8_cfg2.0_label3.weights.json"
  ras="--weights $d/raster_G8_cfg2.0_label3.weights.safetensors --config $d/raster_G8_cfg2.0_label3.weights.json"
  par="--weights $d/par_G8_n4_cfg2.0_label3.weights.safetensors --config $d/par_G8_n4_cfg2.0_label3.weights.json"
  # the official greedy run, reproduced through the CLI: same token grid
  # shellcheck disable=SC2086
  ok "$ordo" generate $nar --policy nar --grid 8x8 --class 3 --cfg 2 --top-k 1 --out "$tmp/nar.json"
  if ! python3 -c "import json,sys; a=json.load(open('$tmp/nar.json')); b=json.load(open('$d/nar_G8_cfg2.0_label3.json')); sys.exit(a['tokens']!=b['tokens_raster'])"; then
    echo "FAIL: ordo generate (nar) tokens differ from the official run"; fails=$((fails+1)); fi
  # shellcheck disable=SC2086
  ok "$ordo" generate $par --policy par:2x2 --grid 8x8 --class 3 --batch 2 --top-k 5 --out "$tmp/par.json"
  ok "$ordo" generate --random-weights --config "$d/raster_G8_cfg2.0_label3.weights.json" --policy zipar:4 --grid 8x8 --out "$tmp/z.json"
  # shellcheck disable=SC2086
  bad "medusa_norm/medusa_output" "$ordo" generate $ras --policy nar --grid 8x8 --out "$tmp/x.json"
  # shellcheck disable=SC2086
  bad "the plan feeds 15 PAR transition tokens" "$ordo" generate $par --policy par:4x4 --grid 8x8 --out "$tmp/x.json"
  # shellcheck disable=SC2086
  bad "unexpected tensor 'layers.2." "$ordo" generate --weights "$d/nar_G8_cfg2.0_label3.weights.safetensors" --config "$d/raster_G8_cfg2.0_label3.weights.json" --out "$tmp/x.json"
  bad "give --config FILE.json or --preset NAME" "$ordo" generate --random-weights --out "$tmp/x.json"
  # threads (docs/cpu-backend.md, Threads): the same tokens on 1 and 3 threads; bf16 products; bad values named
  # shellcheck disable=SC2086
  ok "$ordo" generate $par --policy par:2x2 --grid 8x8 --class 3 --batch 2 --top-k 5 --threads 1 --out "$tmp/par_t1.json"
  # shellcheck disable=SC2086
  ok "$ordo" generate $par --policy par:2x2 --grid 8x8 --class 3 --batch 2 --top-k 5 --threads 3 --out "$tmp/par_t3.json"
  if ! python3 -c "import json,sys; a=json.load(open('$tmp/par_t1.json')); b=json.load(open('$tmp/par_t3.json')); sys.exit(a['tokens']!=b['tokens'] or (a['threads'],b['threads'])!=(1,3))"; then
    echo "FAIL: ordo generate tokens differ between --threads 1 and --threads 3"; fails=$((fails+1)); fi
  # shellcheck disable=SC2086
  ok "$ordo" generate $nar --policy nar --grid 8x8 --class 3 --cfg 2 --top-k 1 --weight-dtype bf16 --out "$tmp/nar_bf16.json"
  # shellcheck disable=SC2086
  bad "--threads: Value 0 not in range" "$ordo" generate $par --policy par:2x2 --grid 8x8 --threads 0 --out "$tmp/x.json"
  # shellcheck disable=SC2086
  bad "--threads" "$ordo" generate $par --policy par:2x2 --grid 8x8 --threads -2 --out "$tmp/x.json"
  # shellcheck disable=SC2086
  bad "--weight-dtype: int8 not in {fp32,bf16}" "$ordo" generate $par --policy par:2x2 --grid 8x8 --weight-dtype int8 --out "$tmp/x.json"
  bad "--class 10 outside 0..9" "$ordo" generate $ras --grid 8x8 --class 10 --out "$tmp/x.json"
  bad "embedding width 64 does not match the preset's dim 768" "$ordo" generate --weights "$d/raster_G8_cfg2.0_label3.weights.safetensors" --preset B --out "$tmp/x.json"
  head -c 1000 "$d/raster_G8_cfg2.0_label3.weights.safetensors" > "$tmp/cut.safetensors"
  bad "truncated" "$ordo" generate --weights "$tmp/cut.safetensors" --config "$d/raster_G8_cfg2.0_label3.weights.json" --out "$tmp/x.json"
  bad "cannot read" "$ordo" generate --weights "$tmp/none.safetensors" --config "$tmp/none.json" --out "$tmp/x.json"
  # text inputs are read with a cap (an endless one too) and bounded nesting
  bad "config /dev/zero is larger than 1.0 MiB" timeout 60 "$ordo" generate --random-weights --config /dev/zero --out "$tmp/x.json"
  python3 -c "n=60000; open('$tmp/deep.json','w').write('{\"model_args\":'*n + '{}' + '}'*n)"
  bad "nesting deeper than 64 levels" "$ordo" generate --random-weights --config "$tmp/deep.json" --out "$tmp/x.json"
  # a config that does not fit the checkpoint is refused before its 13 TB arena is allocated
  python3 -c "import json; j=json.load(open('$d/raster_G8_cfg2.0_label3.weights.json')); j['model_args'].update(dim=16384, n_layer=1024); json.dump(j, open('$tmp/wide.json','w'))"
  bad "tensor 'cls_embedding.embedding_table.weight' has shape [11, 64]" "$ordo" generate --weights "$d/raster_G8_cfg2.0_label3.weights.safetensors" --config "$tmp/wide.json" --out "$tmp/x.json"
  python3 -c "import json; j=json.load(open('$d/raster_G8_cfg2.0_label3.weights.json')); j['model_args'].update(n_layer=100000); json.dump(j, open('$tmp/deep_layers.json','w'))"
  bad "n_layer + medusa_attention_num 100000 is over the limit of 1024" "$ordo" generate --random-weights --config "$tmp/deep_layers.json" --out "$tmp/x.json"
  # LPD: the official greedy run through the CLI (CFG 4, linear schedule), and the family checks
  lpd="--weights $d/lpd_G16_s20_orderseed0_cfg4.0_label3.weights.safetensors --config $d/lpd_G16_s20_orderseed0_cfg4.0_label3.weights.json"
  # shellcheck disable=SC2086
  ok "$ordo" generate $lpd --policy lpd:20 --grid 16x16 --class 3 --cfg 4 --top-k 1 --out "$tmp/lpd.json"
  if ! python3 -c "import json,sys; a=json.load(open('$tmp/lpd.json')); b=json.load(open('$d/lpd_G16_s20_orderseed0_cfg4.0_label3.json')); sys.exit(a['tokens']!=b['tokens_raster'])"; then
    echo "FAIL: ordo generate (lpd) tokens differ from the official run"; fails=$((fails+1)); fi
  # shellcheck disable=SC2086
  ok "$ordo" generate $lpd --policy lpd:20,seed=request --grid 16x16 --batch 2 --top-k 4 --out "$tmp/lpd2.json"
  # shellcheck disable=SC2086
  bad "--weight-dtype bf16 is for the LlamaGen-family GPT; LPD runs in fp32" "$ordo" generate $lpd --policy lpd:20 --grid 16x16 --weight-dtype bf16 --out "$tmp/x.json"
  # shellcheck disable=SC2086
  bad "is an LPD checkpoint; raster decodes with a LlamaGen-family model" "$ordo" generate $lpd --policy raster --grid 16x16 --out "$tmp/x.json"
  # shellcheck disable=SC2086
  bad "is a LlamaGen-family checkpoint; lpd:20 decodes with an LPD model" "$ordo" generate $ras --policy lpd:20 --grid 16x16 --out "$tmp/x.json"
  # shellcheck disable=SC2086
  bad "the plan's grid 12x12 has 144 cells, the LPD checkpoint's pos_embed has 257 rows" "$ordo" generate $lpd --policy lpd:sizes=1+2+4+6+8+10+12+14+16+18+20+18+15 --grid 12x12 --out "$tmp/x.json"
  # shellcheck disable=SC2086
  bad "--cfg-schedule linear is LPD's" "$ordo" generate $ras --grid 8x8 --cfg-schedule linear --out "$tmp/x.json"
  # RandAR and ARPG: the official greedy runs through the CLI, their orders given as data
  for m in randar_G16_s88_orderseed0_cfg1.0-4.0_label3:randar:88 arpg_G16_s64_orderseed0_cfg4.0_label3:arpg:64; do
    c=${m%%:*}; pol=${m#*:}
    python3 -c "import json; json.dump(json.load(open('$d/$c.json'))['order'], open('$tmp/order.json','w'))"
    ok "$ordo" generate --weights "$d/$c.weights.safetensors" --config "$d/$c.weights.json" --policy "$pol" --order "$tmp/order.json" --grid 16x16 --class 3 --cfg 4 --top-k 1 --out "$tmp/$c.out.json"
    if ! python3 -c "import json,sys; a=json.load(open('$tmp/$c.out.json')); b=json.load(open('$d/$c.json')); sys.exit(a['tokens']!=b['tokens_raster'])"; then
      echo "FAIL: ordo generate ($pol) tokens differ from the official run"; fails=$((fails+1)); fi
  done
  # seed=request: each image its own order (ARPG too); an --order file is the plan's, not composed with one
  a="--weights $d/arpg_G16_s64_orderseed0_cfg4.0_label3.weights.safetensors --config $d/arpg_G16_s64_orderseed0_cfg4.0_label3.weights.json"
  # shellcheck disable=SC2086
  ok "$ordo" generate $a --policy arpg:64,seed=request --grid 16x16 --batch 2 --top-k 2 --out "$tmp/a2.json"
  if ! python3 -c "import json,sys; o=json.load(open('$tmp/a2.json'))['orders']; sys.exit(not (len(o)==2 and o[0]!=o[1] and sorted(o[0])==list(range(256))))"; then
    echo "FAIL: arpg seed=request does not give each image its order"; fails=$((fails+1)); fi
  python3 -c "import json; json.dump(json.load(open('$d/randar_G16_s88_orderseed0_cfg1.0-4.0_label3.json'))['order'], open('$tmp/order.json','w'))"
  r="--weights $d/randar_G16_s88_orderseed0_cfg1.0-4.0_label3.weights.safetensors --config $d/randar_G16_s88_orderseed0_cfg1.0-4.0_label3.weights.json"
  # shellcheck disable=SC2086
  ok "$ordo" generate $r --policy randar:88,seed=request --order "$tmp/order.json" --grid 16x16 --class 3 --cfg 4 --top-k 1 --out "$tmp/r1.json"
  if ! python3 -c "import json,sys; a=json.load(open('$tmp/r1.json')); b=json.load(open('$d/randar_G16_s88_orderseed0_cfg1.0-4.0_label3.json')); sys.exit(a['tokens']!=b['tokens_raster'] or 'orders' in a)"; then
    echo "FAIL: --order with seed=request is not the plan's order"; fails=$((fails+1)); fi
  # shellcheck disable=SC2086
  bad "--cfg-interval guides the first steps of a constant scale; lpd:20 ramps its scale" "$ordo" generate $lpd --policy lpd:20 --grid 16x16 --cfg-interval 3 --out "$tmp/x.json"
  bad "is an ARPG checkpoint; randar:88 decodes with a LlamaGen-family model" "$ordo" generate --weights "$d/arpg_G16_s64_orderseed0_cfg4.0_label3.weights.safetensors" --config "$d/arpg_G16_s64_orderseed0_cfg4.0_label3.weights.json" --policy randar:88 --grid 16x16 --out "$tmp/x.json"
  # shellcheck disable=SC2086
  bad "is a LlamaGen-family checkpoint; arpg:64 decodes with an ARPG model" "$ordo" generate $ras --policy arpg:64 --grid 16x16 --out "$tmp/x.json"
  # shellcheck disable=SC2086
  bad "--order gives a random-order policy its order (randar, arpg); raster has its own" "$ordo" generate $ras --policy raster --order "$tmp/order.json" --grid 8x8 --out "$tmp/x.json"
  ok "$ordo" compare --grid 16x16 --ell 2 --policies raster,par:4x4,lpd:20,lpd:steps=32,seed=3 --order-seeds 3 --out "$tmp/cmpl"
  if ! python3 -c "import json,sys; d=json.load(open('$tmp/cmpl/compare.json')); l=[o for o in d if o['policy'].startswith('lpd:')]; sys.exit(not (len(l)==2 and all(o['order_seeds']==3 and o['kl_nats_sd']>0 for o in l)))"; then
    echo "FAIL: compare.json lacks the LPD spread over order seeds"; fails=$((fails+1)); fi
  # compare: the table, compare.md and compare.json (one object per policy with policy, steps, kl_nats)
  ok "$ordo" compare --grid 8x8,2x4x4 --ell 1,2 --out "$tmp/cmp"
  if ! python3 -c "import json,sys; d=json.load(open('$tmp/cmp/compare.json')); sys.exit(not (len(d) > 8 and all({'policy','steps','kl_nats'} <= set(o) for o in d) and any(o['policy']=='raster' and o['kl_nats']==0 for o in d)))"; then
    echo "FAIL: compare.json lacks policy/steps/kl_nats"; fails=$((fails+1)); fi
  [ -s "$tmp/cmp/compare.md" ] || { echo "FAIL: compare.md missing"; fails=$((fails+1)); }
  ok "$ordo" compare --grid 8x8 --kernel sqexp --policies raster,nar,par:4x4 --out "$tmp/cmp2"
  bad "kernel" "$ordo" compare --kernel cubic --out "$tmp/x"
  bad "length scale" "$ordo" compare --grid 8x8 --ell 0 --out "$tmp/x"
  bad "not divisible into 4x4 regions" "$ordo" compare --grid 6x6 --policies par:4x4 --out "$tmp/x"
  # the oracle's covariance: refused, naming the memory it would need, before any work
  bad "grid 256x256 (65536 positions) needs 96.0 GiB" "$ordo" compare --grid 8x8,256x256 --out "$tmp/big"
  [ -e "$tmp/big" ] && { echo "FAIL: compare wrote output before refusing a grid"; fails=$((fails+1)); }
  bad "over the limit of 64.0 KiB" "$ordo" compare --grid 8x8 --max-memory 64KiB --out "$tmp/x"
  ok "$ordo" compare --grid 8x8 --max-memory 96KiB --policies raster,nar --out "$tmp/cmp3"
fi
# pictures: ordo decode and generate --png (only when the CLI was built with the CPU backend)
if "$ordo" decode --help >/dev/null 2>&1; then
  here=$(cd "$(dirname "$0")" && pwd)
  v=$here/data/vq; e=$here/data/e2e
  tiny="$v/vq_tiny.weights.safetensors"
  png_check="python3 $here/png_check.py"
  # the golden round trip: vq_tiny's codes through `ordo decode` give the official uint8 image
  python3 -c "import json; c=json.load(open('$v/vq_tiny.json'))['codes'][0]; print(json.dumps({'tokens': [c[r*6:(r+1)*6] for r in range(6)], 'grid': '6x6'}))" > "$tmp/tiny_tokens.json"
  ok "$ordo" decode --vq "$tiny" --tokens "$tmp/tiny_tokens.json" --png "$tmp/tiny.png"
  $png_check "$tmp/tiny.png" "$v/vq_tiny.outputs.safetensors" "$v/vq_tiny.json" || { echo "FAIL: ordo decode of vq_tiny differs from the official image"; fails=$((fails+1)); }
  ok "$ordo" decode --vq "$tiny" --tokens "$tmp/tiny_tokens.json" --eval-size 16 --png "$tmp/tiny16.png"
  $png_check --size "$tmp/tiny16.png" 16 16 || { echo "FAIL: --eval-size 16"; fails=$((fails+1)); }
  # a batch of non-square grids (2 images of 3x5 tokens, 12x20 px) tiles side by side with 2 px padding
  echo '{"tokens": [[[1,2,3,4,5],[6,7,8,9,10],[11,12,13,14,15]], [[63,0,5,9,33],[2,7,7,7,1],[2,3,4,5,6]]], "grid": "3x5"}' > "$tmp/batch.json"
  ok "$ordo" decode --vq "$tiny" --tokens "$tmp/batch.json" --png "$tmp/batch.png"
  $png_check --size "$tmp/batch.png" 46 16 || { echo "FAIL: batch tiling"; fails=$((fails+1)); }
  # without --vq: false colour, 16 px per token
  ok "$ordo" decode --tokens "$tmp/tiny_tokens.json" --png "$tmp/false.png"
  $png_check --size "$tmp/false.png" 96 96 || { echo "FAIL: false-colour size"; fails=$((fails+1)); }
  ras="--weights $e/raster_G8_cfg2.0_label3.weights.safetensors --config $e/raster_G8_cfg2.0_label3.weights.json"
  ok "$ordo" generate $ras --grid 8x8 --class 3 --batch 2 --quiet --out "$tmp/g.json" --png "$tmp/g.png"
  $png_check --size "$tmp/g.png" 262 132 || { echo "FAIL: generate --png false colour of a batch of 2"; fails=$((fails+1)); }
  ok "$ordo" decode --tokens "$tmp/g.json" --png "$tmp/g2.png"
  # a generator whose vocabulary is the tiny tokenizer's codebook (64): generate decodes its batch with --vq
  python3 -c "import json; w=json.load(open('$e/raster_G8_cfg2.0_label3.weights.json')); w['model_args']['vocab_size']=64; print(json.dumps(w))" > "$tmp/v64.json"
  ok "$ordo" generate --random-weights --config "$tmp/v64.json" --grid 8x8 --batch 3 --quiet --out "$tmp/v64.out.json" --vq "$tiny" --png "$tmp/v64.png"
  $png_check --size "$tmp/v64.png" 104 36 || { echo "FAIL: generate --vq --png of a batch of 3"; fails=$((fails+1)); }
  # the same tokens through ordo decode give the same picture
  ok "$ordo" decode --vq "$tiny" --tokens "$tmp/v64.out.json" --png "$tmp/v64b.png"
  cmp -s "$tmp/v64.png" "$tmp/v64b.png" || { echo "FAIL: generate --png and decode of its tokens differ"; fails=$((fails+1)); }
  # errors, each before anything is written
  bad "has a codebook of 64 entries, the generator's vocabulary has 256 tokens" "$ordo" generate $ras --grid 8x8 --quiet --out "$tmp/x.json" --vq "$tiny" --png "$tmp/x.png"
  { [ -e "$tmp/x.json" ] || [ -e "$tmp/x.png" ]; } && { echo "FAIL: generate wrote output before refusing the tokenizer"; fails=$((fails+1)); }
  bad "--vq requires --png" "$ordo" generate $ras --grid 8x8 --out "$tmp/x.json" --vq "$tiny"
  echo '{"tokens": [[0, 64], [1, 2]]}' > "$tmp/t64.json"
  bad "token 64 at row 0, column 1 is outside the codebook of 64 entries" "$ordo" decode --vq "$tiny" --tokens "$tmp/t64.json" --png "$tmp/x.png"
  echo '{"tokens": [[0, 1], [1]]}' > "$tmp/ragged.json"
  bad "rows must be equally long" "$ordo" decode --vq "$tiny" --tokens "$tmp/ragged.json" --png "$tmp/x.png"
  bad "\"grid\" says 6x6, the token rows are 3x5" "$ordo" decode --vq "$tiny" --tokens <(sed 's/3x5/6x6/' "$tmp/batch.json") --png "$tmp/x.png"
  python3 -c "import json; print(json.dumps({'tokens': [[0] * 4100]}))" > "$tmp/wide.json"
  bad "a 1x4100 token grid decodes to 4x16400 pixels, over the 16384-pixel side" "$ordo" decode --vq "$tiny" --tokens "$tmp/wide.json" --png "$tmp/x.png"
  head -c 100000 "$tiny" > "$tmp/cut.safetensors"
  bad "truncated" "$ordo" decode --vq "$tmp/cut.safetensors" --tokens "$tmp/tiny_tokens.json" --png "$tmp/x.png"
  bad "not a VQ tokenizer (no quantize.embedding.weight, no decoder.*) but a GPT's tok_embeddings" "$ordo" decode --vq "$e/raster_G8_cfg2.0_label3.weights.safetensors" --tokens "$tmp/tiny_tokens.json" --png "$tmp/x.png"
  [ -e "$tmp/x.png" ] && { echo "FAIL: decode wrote a picture before refusing"; fails=$((fails+1)); }
  # compare with a checkpoint: one image per order it runs (same class and seed), the others listed with the reason
  ok "$ordo" generate --random-weights --config "$tmp/v64.json" --grid 8x8 --class 3 --seed 5 --quiet --out "$tmp/r64.json" --save-weights "$tmp/v64.safetensors" --vq "$tiny" --png "$tmp/r64.png"
  v64="--weights $tmp/v64.safetensors --config $tmp/v64.json"
  ok "$ordo" compare --grid 8x8 $v64 --vq "$tiny" --class 3 --seed 5 --out "$tmp/cmpi"
  # a raster checkpoint runs raster and zipar (columns 0, 1); PAR and NAR lack transition tokens / the B head
  if ! python3 -c "import json,sys; d=json.load(open('$tmp/cmpi/compare.json')); c={o['policy']: o['image']['column'] for o in d if 'image' in o}; s={o['policy']: o['image_skipped'] for o in d if 'image_skipped' in o}; sys.exit(not (c == {'raster': 0, 'zipar:2': 1} and 'it is not a PAR checkpoint' in s['par:2x2'] and 'output heads' in s['nar']))"; then
    echo "FAIL: compare.json's image columns and skipped orders"; fails=$((fails+1)); fi
  grep -qF -- "- par:4x4: the plan feeds 15 PAR transition tokens" "$tmp/cmpi/compare.md" || { echo "FAIL: compare.md does not list the skipped orders"; fails=$((fails+1)); }
  $png_check --size "$tmp/cmpi/images.png" 64 32 || { echo "FAIL: compare images.png is not 2 images of 32x32 side by side"; fails=$((fails+1)); }
  $png_check --column "$tmp/cmpi/images.png" 0 "$tmp/r64.png" || { echo "FAIL: compare's raster image differs from ordo generate's"; fails=$((fails+1)); }
  [ -s "$tmp/cmpi/images_labelled.png" ] || { echo "FAIL: compare images_labelled.png missing"; fails=$((fails+1)); }
  # without --vq: the token grids in false colour, 16 px per token
  ok "$ordo" compare --grid 8x8 $ras --policies raster,nar --class 3 --out "$tmp/cmpf"
  $png_check --size "$tmp/cmpf/images.png" 128 128 || { echo "FAIL: compare false-colour images.png size"; fails=$((fails+1)); }
  ok "$ordo" generate $ras --grid 8x8 --class 3 --quiet --out "$tmp/f.json" --png "$tmp/f.png"
  $png_check --column "$tmp/cmpf/images.png" 0 "$tmp/f.png" || { echo "FAIL: compare's false-colour raster image differs from ordo generate's"; fails=$((fails+1)); }
  # errors, each before anything is written
  bad "has a codebook of 64 entries, the generator's vocabulary has 256 tokens" "$ordo" compare --grid 8x8 $ras --vq "$tiny" --out "$tmp/cx"
  [ -e "$tmp/cx" ] && { echo "FAIL: compare wrote output before refusing the tokenizer"; fails=$((fails+1)); }
  bad "compare: --vq decodes the images of a checkpoint: give --weights" "$ordo" compare --grid 8x8 --vq "$tiny" --out "$tmp/cx"
  bad "compare: --weights needs --config" "$ordo" compare --grid 8x8 --weights "$tmp/v64.safetensors" --out "$tmp/cx"
  bad "is an LPD checkpoint; compare runs a LlamaGen-family GPT" "$ordo" compare --grid 16x16 --weights "$e/lpd_G16_s20_orderseed0_cfg4.0_label3.weights.safetensors" --config "$e/lpd_G16_s20_orderseed0_cfg4.0_label3.weights.json" --out "$tmp/cx"
  bad "--class 10 outside 0..9" "$ordo" compare --grid 8x8 $ras --class 10 --out "$tmp/cx"
  [ -e "$tmp/cx" ] && { echo "FAIL: compare wrote output before refusing"; fails=$((fails+1)); }
fi
echo "$((fails == 0 ? 1 : 0)) passed, $fails failed"
[ $fails -eq 0 ]
