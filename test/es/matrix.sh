#!/usr/bin/env bash
# npm run test:matrix:elasticsearch — the real-cluster suites of the elasticsearch
# hook on every version the registries serve and this machine runs (Java 17 by
# default; releases that need Java 21+ run on the Java 25 in /usr/lib/jvm, found
# by fetch-distribution.sh). One line per version and suite at the end.
#
#   MATRIX="opensearch:2.19.6 elasticsearch:8.19.21"   a subset
#   SUITES="elasticsearch-hook elasticsearch-tiers"     which test files (default: elasticsearch-hook)
set -uo pipefail
cd "$(dirname "$0")/../.."
export PATH="$PWD/node_modules/.bin:$PATH"
matrix="${MATRIX:-elasticsearch:7.17.29 elasticsearch:8.19.21 elasticsearch:9.2.0 opensearch:1.3.20 opensearch:2.19.6 opensearch:3.6.0}"
suites="${SUITES:-elasticsearch-hook}"
results=()
for entry in $matrix; do
  dist="${entry%%:*}"; version="${entry#*:}"
  for suite in $suites; do
    log="$(mktemp -t "sts-pilot-matrix-$dist-$version-$suite.XXXXXX.log")"
    start=$(date +%s)
    STS_PILOT_ES_EXTENDED=1 STS_PILOT_ES_DIST="$dist" STS_PILOT_ES_VERSION="$version" \
      mocha --no-config --timeout 300000 --exit --node-option disable-warning=ExperimentalWarning \
        --reporter ./test/summary-reporter.cjs "test/integration/$suite.test.ts" >"$log" 2>&1
    rc=$?
    summary="$(grep -E '^[0-9]+ passed, [0-9]+ failed' "$log" | tail -1)"
    line="$dist $version $suite: ${summary:-no summary} ($(( $(date +%s) - start )) s; log $log)"
    [ $rc -eq 0 ] || line="$line FAILED"
    echo "$line"
    results+=("$line")
  done
done
echo
printf '%s\n' "${results[@]}"
for r in "${results[@]}"; do case "$r" in *FAILED*) exit 1 ;; esac; done
