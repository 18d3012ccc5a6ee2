#!/usr/bin/env bash
# The Patroni end-to-end test against several Patroni releases, one after the
# other (each gets its own venv under the cache). Not part of `npm test`, which
# runs one version (install.sh's default). Prints one line per version and a
# summary line; exits non-zero if any failed.
#
#   STS_PILOT_PATRONI_VERSIONS  default "4.1.5 4.0.11 3.3.11 3.0.3" (3.0.3: the last release that reports a streaming replica as running)
set -uo pipefail
cd "$(dirname "$0")/../.."
export PATH="$PWD/node_modules/.bin:$PATH"
versions="${STS_PILOT_PATRONI_VERSIONS:-4.1.5 4.0.11 3.3.11 3.0.3}"
passed=0; failed=0; summary=()
for v in $versions; do
  log="${TMPDIR:-/tmp}/sts-pilot-patroni-matrix-$v.log"
  start=$(date +%s)
  if STS_PILOT_PATRONI_VERSION="$v" mocha --no-config --timeout 300000 --exit --node-option disable-warning=ExperimentalWarning \
      --reporter ./test/summary-reporter.cjs test/integration/patroni-e2e.test.ts test/integration/rollout.test.ts --grep patroni >"$log" 2>&1; then
    passed=$((passed + 1)); result=ok
  else
    failed=$((failed + 1)); result=FAILED
  fi
  line="patroni $v: $result in $(( $(date +%s) - start )) s (log: $log)"
  echo "$line"; summary+=("$line")
  grep -h '\[figures\]' "$log" | sed 's/^/    /'
done
printf '%s\n' "${summary[@]}"
echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
