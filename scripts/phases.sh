# Sourced by scripts/run-tests and .ci/run: `phase NAME COMMAND...` runs COMMAND and prints how long
# it took, so every log shows where the time goes; with ORDO_PHASE_LOG set, it also appends
# "NAME SECONDS" to that file for a closing summary.
phase() {
  local name=$1 t0=$SECONDS
  shift
  echo "== $name =="
  "$@"
  local dt=$((SECONDS - t0))
  echo "== $name: ${dt} s =="
  if [ -n "${ORDO_PHASE_LOG:-}" ]; then printf '%-18s %6d s\n' "$name" "$dt" >> "$ORDO_PHASE_LOG"; fi
}
