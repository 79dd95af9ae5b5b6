#!/bin/sh
# Installs the test-only npm tools of tests/package.json (pinned by
# tests/package-lock.json) into tests/node_modules: Stoplight Prism and
# Twilio's OpenAPI description of its 2010 API (@twilio/cli-core), for the
# SMS contract tests. Nothing else needs them: the workers build and run
# without node.
#
# Idempotent and quick once installed: a stamp in node_modules records the
# lock file's checksum, so `npm ci` runs only when the lock changed or the
# tools are missing. A lock file (flock) keeps two test runs from
# installing into the same folder at once. Exit 1 when npm is missing or
# the install fails (callers skip the Prism tests then).
set -eu
cd "$(dirname "$0")/.."
REPO=$(pwd)
T=$REPO/tests
SPEC=$T/node_modules/@twilio/cli-core/src/services/twilio-api/twilio_api_v2010.json
STAMP=$T/node_modules/.mfa-lock.sha256

if ! command -v npm >/dev/null 2>&1; then
    echo "npm-deps: npm is not installed (scripts/deps.sh installs it)" >&2
    exit 1
fi
want=$(sha256sum "$T/package-lock.json" | cut -d' ' -f1)
installed() {
    [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$want" ] &&
        [ -x "$T/node_modules/.bin/prism" ] && [ -f "$SPEC" ]
}
installed && exit 0

mkdir -p "$REPO/var"
exec 9>"$REPO/var/npm-deps.lock"
flock 9
installed && exit 0 # another run did it while we waited
echo "npm-deps: installing the test tools (npm ci in tests/)" >&2
# No install scripts: none of these packages needs one.
npm ci --prefix "$T" --no-audit --no-fund --ignore-scripts \
    --loglevel=error >&2
[ -x "$T/node_modules/.bin/prism" ] && [ -f "$SPEC" ] || {
    echo "npm-deps: prism or the Twilio spec is missing after npm ci" >&2
    exit 1
}
printf '%s\n' "$want" >"$STAMP"
