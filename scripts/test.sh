#!/usr/bin/env bash
# Install everything, build (a release build and an ASan+UBSan build) and run the whole test
# suite in both. Tests that need ../shared (the real data set and golden files) skip without it,
# unless LS_REQUIRE_SHARED=1 (CI) makes them fail.
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
install_packages
find_tokenizer
export LS_TOKENIZER=$TOKENIZER
build "$ROOT/build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DLS_WERROR=ON
echo "== tests (release build)"
(cd "$ROOT/build" && ctest --output-on-failure -j "$JOBS")
build "$ROOT/build-asan" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DLS_SANITIZE=ON -DLS_WERROR=ON  # -O2: sweeps at -O0 crawl
echo "== tests (AddressSanitizer + UndefinedBehaviorSanitizer build)"
(cd "$ROOT/build-asan" && ctest --output-on-failure -j "$JOBS")
