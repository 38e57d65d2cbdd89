#!/usr/bin/env bash
# The whole test suite: linters, type checks, unit tests and the simulated-fleet
# tests (markers: sim; slow and gpu ones are left to `make test-slow`/`test-gpu`).
# Every stage runs; the exit code is non-zero if any of them failed.
set -uo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh || exit 1
export PATH="$PWD/.venv/bin:$PATH"
export JETSON_RT_REQUIRE_SIM=1

failed=()
stage() {
  local name=$1
  shift
  echo "== $name"
  local start=$SECONDS
  "$@"
  local rc=$?
  echo "== $name: rc=$rc in $((SECONDS - start)) s"
  [ "$rc" -eq 0 ] || failed+=("$name")
}

stage ruff ruff check runtime tests benchmarks collections tools
stage ruff-format ruff format --check runtime tests benchmarks collections tools
stage mypy mypy
stage yamllint yamllint --strict .
stage ansible-lint ansible-lint --offline -q
stage ansible-test-sanity ./scripts/sanity.sh

pytest_stage() {
  pytest -m "not slow and not gpu" --durations=25 "$@"
  local rc=$?
  # pytest exits 5 when no test was collected: with a marker filter that is not a failure
  if [ "$rc" -eq 5 ]; then
    echo "pytest: no tests selected"
    return 0
  fi
  return "$rc"
}
stage pytest pytest_stage "$@"

# The report as headless Chromium rendered it (tests/chromium.py), for a CI run to keep.
shots=${JETSON_RT_SCREENSHOTS:-artifacts/screenshots}
if compgen -G "$shots/*.png" >/dev/null; then
  echo "screenshots of the validation report:"
  ls -l "$shots"/*.png
fi

if [ "${#failed[@]}" -gt 0 ]; then
  echo "FAILED stages: ${failed[*]}"
  exit 1
fi
echo "all stages passed"
