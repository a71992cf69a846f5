#!/usr/bin/env bash
# Makes sure the browser tests have what they need: Debian's Chromium (installed with apt-get
# when missing; needs root) and the pinned npm packages, including playwright-core (through
# setup-js.sh). Idempotent and quiet when everything is there; prints the Chromium path.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup-js.sh

chromium="${FIELDSYNC_CHROMIUM:-$(command -v chromium || true)}"
if [ -z "$chromium" ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing Chromium (Debian package chromium) for the browser tests…" >&2
    # Serialize with other test processes doing the same.
    exec 9>/tmp/fieldsync-setup-browser.lock
    flock 9
    if ! command -v chromium >/dev/null 2>&1; then
      DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=900 install -y -qq chromium >/dev/null 2>&1 \
        || { apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=900 install -y -qq chromium >/dev/null; }
    fi
    chromium="$(command -v chromium)"
  else
    echo "setup-browser: Chromium is not installed and this user cannot install it (apt-get install chromium)" >&2
    exit 1
  fi
fi
echo "$chromium"
