#!/usr/bin/env bash
# Installs the pinned npm packages of tests/js (the real automerge-repo client and the reference
# JS server) when they are missing or the lock file changed. Idempotent and quiet on success.
set -euo pipefail
dir="$(cd "$(dirname "$0")/../tests/js" && pwd)"
marker="$dir/node_modules/.package-lock.json"

if ! command -v npm >/dev/null 2>&1; then
  echo "npm is not installed: the JS interoperability tests need Node.js 20+ with npm" >&2
  exit 1
fi
if [ ! -f "$marker" ] || [ "$dir/package-lock.json" -nt "$marker" ]; then
  echo "installing pinned npm packages in tests/js…" >&2
  # `npm install` rather than `npm ci`: npm 11 records optional platform packages of
  # cbor-extract inconsistently, and `npm ci` then refuses the lock file it wrote itself.
  (cd "$dir" && npm install --no-audit --no-fund --loglevel=error >/dev/null)
fi
