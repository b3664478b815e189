#!/usr/bin/env bash
# Front door #2: every test — Swift unit tests, lint (swift-format, shellcheck), and the integration suite
# (real tansu broker, real processes, real socket, real HTTP clients, real Helm rendering). Installs what it needs.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
# shellcheck source=scripts/env.sh
source scripts/env.sh

step() { printf '\n== %s ==\n' "$*"; }

step "build (debug, with tests)"
swift build --build-tests 2>&1 | grep -E "error|warning: unre|Compiling|Build complete" | grep -v "^\[" || true
swift build --build-tests >/dev/null  # fail here on a compile error

step "lint"
swift format lint --strict -r Sources Tests Package.swift Plugins
shellcheck -x scripts/*.sh .ci/run

step "unit tests (swift test)"
swift test --skip-build 2>&1 | tail -n 25

step "fuzz (every libFuzzer target briefly; make fuzz runs them longer)"
FUZZ_SECONDS="${FUZZ_SECONDS:-10}" FUZZ_OPT="${FUZZ_OPT:--Onone}" bash scripts/fuzz.sh

step "integration tests (pytest: tansu, processes, socket, HTTP, chart)"
.venv/bin/python -m pytest Tests/Integration -q -p no:cacheprovider --durations=20 "$@"
