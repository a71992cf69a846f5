#!/usr/bin/env bash
# Installs the exact npm packages pinned in tests/js/package-lock.json (the real automerge-repo
# 2.5.6 client, the reference JS server and their dependencies) with `npm ci`, but only when
# tests/js/node_modules is missing or older than the lock file. Idempotent, quiet on success,
# safe to run from any directory and from several test processes at once.
set -euo pipefail
dir="$(cd "$(dirname "${BASH_SOURCE[0]}")/../tests/js" && pwd)"
marker="$dir/node_modules/.package-lock.json"

needs_install() {
  [ ! -f "$marker" ] || [ "$dir/package-lock.json" -nt "$marker" ] || [ "$dir/package.json" -nt "$marker" ]
}

needs_install || exit 0

if ! command -v npm >/dev/null 2>&1; then
  echo "setup-js: npm is not installed; the JS interoperability tests need Node.js 20+ with npm" >&2
  exit 1
fi

# Cargo runs tests in parallel and each may call this script: serialize on a lock held on the
# (tracked, never rewritten) package.json, then re-check, so that only one `npm ci` runs.
if command -v flock >/dev/null 2>&1; then
  exec 9<"$dir/package.json"
  flock 9
  needs_install || exit 0
fi

log="$(mktemp)"
trap 'rm -f "$log"' EXIT
if ! (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error) >"$log" 2>&1; then
  echo "setup-js: npm ci failed in $dir:" >&2
  cat "$log" >&2
  exit 1
fi
