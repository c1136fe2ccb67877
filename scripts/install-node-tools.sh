#!/usr/bin/env bash
# Install the npm packages of the Node-driven tests from their committed lock files:
# tests/browser (playwright-core) and tests/graphql (graphql-ws, ws, graphql), or only
# the directories given. A directory whose node_modules already holds every pinned
# version is left alone (no registry call).
#
# Usage: scripts/install-node-tools.sh [tests/browser] [tests/graphql]
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
if [[ $# -eq 0 ]]; then
    set -- tests/browser tests/graphql
fi

if ! command -v npm >/dev/null 2>&1; then
    echo "error: node and npm are required for the Node-driven tests (e.g. apt-get install nodejs npm)" >&2
    exit 1
fi

# Every dependency in package.json installed at exactly its pinned version.
installed_matches() {
    node -e '
        const dir = process.argv[1];
        const deps = require(dir + "/package.json").dependencies || {};
        for (const [name, want] of Object.entries(deps)) {
            let have;
            try { have = require(dir + "/node_modules/" + name + "/package.json").version; } catch { process.exit(1); }
            if (have !== want) process.exit(1);
        }
    ' "$1" 2>/dev/null
}

for dir in "$@"; do
    path="$ROOT/$dir"
    if ! installed_matches "$path"; then
        echo "installing npm packages: npm ci in $path" >&2
        # playwright-core has no install script; the variable is a second guard against
        # a browser download should a future version grow one.
        (cd "$path" && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund --loglevel=error)
    fi
    node -e '
        const dir = process.argv[1];
        const deps = Object.keys(require(dir + "/package.json").dependencies || {});
        console.log(process.argv[2] + ": " + deps.map((n) => n + "@" + require(dir + "/node_modules/" + n + "/package.json").version).join(", "));
    ' "$path" "$dir"
done
