#!/usr/bin/env bash
# Self-test of the JS side (driver.mjs, reference-server.mjs): installs the pinned packages if
# needed, then runs tests/js/selftest.mjs, which starts the reference server on a random port and
# drives two clients through create / waitSynced / find / concurrent edits / convergence.
#
#   tests/js/selftest.sh                                # against the reference JS server
#   tests/js/selftest.sh --url ws://127.0.0.1:PORT/sync # against a running server (e.g. fieldsync)
#
# Exits non-zero on failure; bounded by a 180 s limit (the orchestrator has its own 120 s one).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
"$here/../../scripts/setup-js.sh"
exec timeout --kill-after=5 180 node "$here/selftest.mjs" "$@"
