#!/usr/bin/env bash
# Install what the browser tests need: Debian's chromium and playwright-core.
#
# playwright-core is the Playwright library without any browser download: the tests
# launch /usr/bin/chromium themselves (tests/browser/lib.mjs), so nothing fetches a
# browser build at install or run time. The npm packages go into tests/browser/node_modules
# from the committed package-lock.json (scripts/install-node-tools.sh runs `npm ci`).
# Running it again when both are present is a no-op.
#
# Usage: scripts/install-browser.sh        # as root, or with sudo for apt-get
# Tests find chromium through $PERISCOPE_CHROMIUM, else /usr/bin/chromium.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BROWSER_DIR="$ROOT/tests/browser"
CHROMIUM="${PERISCOPE_CHROMIUM:-/usr/bin/chromium}"

if [[ ! -x "$CHROMIUM" ]]; then
    if [[ "$CHROMIUM" != /usr/bin/chromium ]]; then
        echo "error: PERISCOPE_CHROMIUM=$CHROMIUM is not an executable" >&2
        exit 1
    fi
    if ! command -v apt-get >/dev/null 2>&1; then
        echo "error: $CHROMIUM is missing and there is no apt-get; install Chromium and set PERISCOPE_CHROMIUM" >&2
        exit 1
    fi
    sudo=()
    if [[ "$(id -u)" != 0 ]]; then
        sudo=(sudo)
    fi
    echo "chromium missing: running apt-get update && apt-get install -y --no-install-recommends chromium" >&2
    DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get update -q
    DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -q --no-install-recommends chromium
fi
echo "chromium: $CHROMIUM ($("$CHROMIUM" --version 2>/dev/null || echo "version unknown"))"

"$ROOT/scripts/install-node-tools.sh" tests/browser
