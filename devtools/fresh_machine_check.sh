#!/usr/bin/env bash
# The fresh-machine path (issue 11), end to end, as a new user meets it: a clone of this
# repository's HEAD into an empty folder (no .venv, no .cache), then the README's `make test`
#   1. with the browser absent and not installable: passes, the skip and its reason shown;
#   2. the same with REQUIRE_BROWSER=1 (as CI runs it): fails, saying why.
# "Absent": CHROMIUM_PATH names a file that does not exist. "Not installable": PATH is a
# folder of links to every tool on this PATH except apt-get, apt and sudo. Nothing is
# installed on the machine. It takes minutes (a new virtualenv, then the whole suite).
# Logs go to test-artifacts/fresh-machine/. Exit 0 when both runs behave as promised.
set -euo pipefail

repo="$(cd "$(dirname "$0")/.." && pwd)"
logs="$repo/test-artifacts/fresh-machine"
work="$(mktemp -d "${TMPDIR:-/tmp}/fresh-machine.XXXXXX")"
trap 'rm -rf "$work"' EXIT
mkdir -p "$logs" "$work/bin"

commit="$(git -C "$repo" rev-parse HEAD)"
git clone --quiet --no-local "$repo" "$work/clone"
git -C "$work/clone" checkout --quiet "$commit"

IFS=: read -r -a dirs <<<"$PATH"
for dir in "${dirs[@]}"; do
  for tool in "$dir"/*; do
    name="${tool##*/}"
    case "$name" in apt-get | apt | sudo) continue ;; esac
    if [ -x "$tool" ] && [ ! -e "$work/bin/$name" ]; then ln -s "$tool" "$work/bin/$name"; fi
  done
done

run() {  # run LOG [VAR=value...]: `make test` in the clone on the stripped machine; prints its exit code
  local log="$1" started status
  shift
  started=$(date +%s)
  set +e
  (cd "$work/clone" && env -u REQUIRE_BROWSER -u REQUIRE_CURL PATH="$work/bin" \
    CHROMIUM_PATH="$work/no-chromium" "$@" make test) >"$log" 2>&1
  status=$?
  set -e
  echo "$status $(($(date +%s) - started))"
}

fail() { echo "fresh-machine check FAILED: $*" >&2; exit 1; }

echo "fresh-machine check: clone of $commit; make test with the browser absent and not installable..."
read -r status seconds < <(run "$logs/make-test.log")
grep -E '^contact-notes: chromium not found' "$logs/make-test.log" || true
grep -E '^SKIPPED .*test_docs_browser' "$logs/make-test.log" || true
tail -n 1 "$logs/make-test.log"
echo "  exit $status after ${seconds}s (log: $logs/make-test.log)"
[ "$status" -eq 0 ] || fail "make test did not pass"
grep -q 'cannot install it here (apt-get is not on PATH); the /docs browser test will be skipped' \
  "$logs/make-test.log" || fail "the bootstrap did not say why the browser test is skipped"
grep -qE '^SKIPPED \[1\] tests/test_docs_browser.py:[0-9]+: chromium not found' "$logs/make-test.log" ||
  fail "pytest's summary does not show the browser test's skip reason"

echo "fresh-machine check: the same with REQUIRE_BROWSER=1..."
read -r status seconds < <(run "$logs/make-test-require-browser.log" REQUIRE_BROWSER=1)
grep -E 'REQUIRE_BROWSER' "$logs/make-test-require-browser.log" || true
echo "  exit $status after ${seconds}s (log: $logs/make-test-require-browser.log)"
[ "$status" -ne 0 ] || fail "make test passed with REQUIRE_BROWSER=1 and no browser"
grep -q 'REQUIRE_BROWSER=1 makes this an error' "$logs/make-test-require-browser.log" ||
  fail "the failure does not name REQUIRE_BROWSER"

echo "fresh-machine check: OK"
