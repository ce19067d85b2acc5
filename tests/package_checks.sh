#!/usr/bin/env bash
# ordo as a dependency: install + find_package, add_subdirectory and FetchContent all work.
# Usage: package_checks.sh SOURCE_DIR WORK_DIR
set -eu
src=$1; work=$2
rm -rf "$work"; mkdir -p "$work"
cmake -S "$src" -B "$work/ordo-build" -DORDO_BUILD_TESTS=OFF -DORDO_BUILD_EXAMPLES=OFF -DORDO_BUILD_CLI=OFF -DORDO_BUILD_BENCH=OFF -DORDO_INSTALL=ON >/dev/null
cmake --install "$work/ordo-build" --prefix "$work/prefix" >/dev/null
for mode in find_package add_subdirectory fetchcontent; do
  cmake -S "$src/tests/consumer" -B "$work/$mode" -DORDO_MODE=$mode -DORDO_SOURCE_DIR="$src" -DCMAKE_PREFIX_PATH="$work/prefix" >/dev/null
  cmake --build "$work/$mode" >/dev/null
  "$work/$mode/consumer"
  echo "ok: $mode"
done
