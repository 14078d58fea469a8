#!/usr/bin/env bash
# Install everything, build (a release build and an ASan+UBSan build) and run the whole test
# suite in both. Tests that need ../shared (the real data set and golden files) skip without it
# (ctest lists them as skipped), unless LS_REQUIRE_SHARED=1 (CI) makes them fail; under it, any
# test that still skipped fails the run, except the gpu-labelled ones (no GPU on a CI machine).
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

# run_tests DIR: the whole suite in the build DIR; then, under LS_REQUIRE_SHARED=1, the tests
# ctest reported as skipped (exit 77) and not labelled gpu fail the run: a skip tested nothing.
run_tests() {
  local dir=$1 log=$1/ctest.log gpu skipped t unexpected=""
  (cd "$dir" && ctest --output-on-failure -j "$JOBS") | tee "$log"
  [ "${LS_REQUIRE_SHARED:-0}" = 1 ] || return 0
  gpu=$(cd "$dir" && ctest -N -L gpu | sed -n 's/^ *Test *#[0-9]*: *//p')
  skipped=$(sed -n 's/^[[:space:]]*[0-9]* - \([^ ]*\) (Skipped)$/\1/p' "$log")
  for t in $skipped; do grep -qx -- "$t" <<<"$gpu" || unexpected="$unexpected $t"; done
  if [ -n "$unexpected" ]; then
    echo "== FAIL: skipped under LS_REQUIRE_SHARED=1 (only gpu tests may skip):$unexpected"
    return 1
  fi
  echo "== no test skipped but the gpu ones"
}

install_packages
find_tokenizer
export LS_TOKENIZER=$TOKENIZER
build "$ROOT/build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DLS_WERROR=ON
echo "== tests (release build)"
run_tests "$ROOT/build"
build "$ROOT/build-asan" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DLS_SANITIZE=ON -DLS_WERROR=ON  # -O2: sweeps at -O0 crawl
echo "== tests (AddressSanitizer + UndefinedBehaviorSanitizer build)"
run_tests "$ROOT/build-asan"
