#!/usr/bin/env bash
# CLI behaviour: exit codes and one-line errors. Usage: cli_checks.sh path/to/ordo
set -u
ordo=$1
fails=0
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
bad "overflows" "$ordo" show --policy raster --grid 100000x100000
bad "prefix must be >= 1" "$ordo" plan --policy raster --grid 4x4 --prefix 0
bad "format" "$ordo" plan --policy raster --grid 4x4 --format yaml
bad "grid spec" "$ordo" plan --policy raster --grid 4by4
# JSON is well formed and has the schema's top-level fields
out=$("$ordo" plan --policy par:2x2 --grid 8x8)
for key in '"train"' '"plan"' '"mask_ranges"' '"logit_rows"' '"num_forward_calls": 19' '"kv_cache_len": 72'; do
  grep -qF -- "$key" <<<"$out" || { echo "FAIL: plan JSON lacks $key"; fails=$((fails+1)); }
done
echo "$((fails == 0 ? 1 : 0)) passed, $fails failed"
[ $fails -eq 0 ]
