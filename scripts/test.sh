#!/usr/bin/env bash
# Sets up and runs every test: the check that tests run only the programs that
# scripts/programs.tsv lists (and this script installs), unit tests (CTest/GoogleTest), the hardening
# check of the binary, the generated-code check, the dev CSMS self-test, the
# integration tests against the strict dev CSMS, and the unit tests again under
# AddressSanitizer + UndefinedBehaviorSanitizer. Exits non-zero if any fails.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
set +e  # run every step, report all failures at the end

ensure_packages --programs build,test -- "${BUILD_PACKAGES[@]}" "${TEST_PACKAGES[@]}" || exit 1
ensure_node_modules || exit 1
export CTEST_OUTPUT_ON_FAILURE=1

passed=0; failed=0; failures=()
step() {  # name command...
  local name="$1"; shift
  say "$name"
  local t0=$SECONDS
  if "$@"; then
    passed=$((passed + 1)); echo "--- $name: ok ($((SECONDS - t0)) s)"
  else
    failed=$((failed + 1)); failures+=("$name"); echo "--- $name: FAILED ($((SECONDS - t0)) s)"
  fi
}

generated_is_current() {
  local tmp; tmp="$(mktemp -d)"
  node "$REPO/tools/schema-gen/generate.js" \
    "$REPO/tools/dev-csms/node_modules/ocpp-rpc/lib/schemas/ocpp2_0_1.json" "$tmp" >/dev/null &&
    diff -r "$tmp" "$REPO/src/ocpp/generated" && rm -rf "$tmp"
}

unit_tests() { (cd "$BUILD_DIR" && ctest --timeout 120 -j2); }

integration_tests() {
  CG_BIN="$BUILD_DIR/chargeguard" node --test --test-reporter=spec "$REPO/tests/integration/"
}

sanitizer_unit_tests() {
  local dir="$REPO/build-asan"
  cmake -S "$REPO" -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE=Debug -DCG_SANITIZE=ON -DCG_BUILD_DAEMON=OFF >/dev/null &&
    ninja -C "$dir" -j"$(nproc)" cg_unit_tests &&
    (cd "$dir" && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 ctest --timeout 300 -j2)
}

step "tests run only programs of scripts/programs.tsv" "$REPO/scripts/check-programs.sh"
step "generated schema tables match the pinned schemas" generated_is_current
if build_release with-tests; then
  step "unit tests" unit_tests
  step "hardening of build/chargeguard (NET-5)" "$REPO/tests/hardening/check-binary.sh" "$BUILD_DIR/chargeguard"
  step "dev CSMS self-test" node "$REPO/tools/dev-csms/selftest.js"
  step "integration tests (strict OCPP 2.0.1 CSMS)" integration_tests
else
  failed=$((failed + 1)); failures+=("release build")
fi
step "unit tests under ASan + UBSan" sanitizer_unit_tests

echo
for f in "${failures[@]}"; do echo "FAILED: $f"; done
echo "test steps: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
