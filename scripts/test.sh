#!/usr/bin/env bash
# The suite, run once on the embedded store and, when MONGODB_URI is set, once more with
# the store contract and the HTTP suites on MongoDB. REQUIRE_MONGODB=1 makes a missing
# MongoDB an error instead of a skip (CI sets it); REQUIRE_BROWSER=1 does the same for a
# missing Chromium in the page tests (test/helpers/browser.ts).
set -euo pipefail
cd "$(dirname "$0")/.."

# The web page's bundle is what the page tests load: rebuild it so they never see a stale one.
npm run --silent build:web

echo "== embedded store (SQLite) =="
env -u MONGODB_URI npx tap "$@"

if [ -n "${MONGODB_URI:-}" ]; then
  echo "== MongoDB store (${MONGODB_URI%%\?*}) =="
  npx tap test/store/mongo.test.ts test/routes test/e2e
else
  echo "MongoDB store run SKIPPED: MONGODB_URI is not set." \
    "Start a local test server with: export MONGODB_URI=\$(bash scripts/mongo-test-server.sh start)"
  if [ "${REQUIRE_MONGODB:-}" = 1 ]; then
    echo "REQUIRE_MONGODB=1 but the MongoDB run was skipped" >&2
    exit 1
  fi
fi
