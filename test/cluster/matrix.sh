#!/usr/bin/env bash
# npm run test:matrix:kubernetes — the gate suite (test/integration/gate.test.ts,
# revert storm included) on every Kubernetes version of the matrix, each on its
# own control plane built from the Go module proxy (build-binaries.sh, cached),
# in the gate mode that version serves (docs/install.md, "Kubernetes versions");
# then the chart installed on the oldest (test/cluster/chart-install.test.ts).
# Not part of `npm test` (which runs 1.37). A table at the end; exit 1 if any failed.
#
#   VERSIONS="v1.30.14 v1.35.4"   a subset (default: the four below)
#   STS_PILOT_BUILD_JOBS=1        build parallelism (default here: 1, the machine is shared)
#   STS_PILOT_MAP_BETA=0          start 1.34/1.35 as they ship (MutatingAdmissionPolicy beta off:
#                                 the validating-only gate) instead of with the beta on
#
# Versions: the newest patch of 1.30, 1.33, 1.35 and 1.37 whose staging modules the
# Go module proxy serves in full (no 1.31.x or 1.32.x: build-binaries.sh says why).
set -uo pipefail
cd "$(dirname "$0")/../.."
export PATH="$PWD/node_modules/.bin:$PATH"
export STS_PILOT_BUILD_JOBS="${STS_PILOT_BUILD_JOBS:-1}"
versions="${VERSIONS:-v1.30.14 v1.33.13 v1.35.4 v1.37.2}"
oldest="$(printf '%s\n' $versions | sort -V | head -1)"
mocha_run() { # log file, test files and flags...
  local log="$1"; shift
  mocha --no-config --timeout 300000 --exit --node-option disable-warning=ExperimentalWarning \
    --require ./test/leftovers.hooks.ts --reporter ./test/summary-reporter.cjs "$@" >"$log" 2>&1
}

rows=()
failed=0
for v in $versions; do
  log="$(mktemp -t "sts-pilot-matrix-k8s-$v.XXXXXX.log")"
  start=$(date +%s)
  if ! STS_PILOT_K8S_VERSION="$v" bash test/cluster/build-binaries.sh >/dev/null 2>"$log.build"; then
    rows+=("$v|-|build failed ($log.build)|-|-")
    failed=1
    continue
  fi
  STS_PILOT_K8S_VERSION="$v" mocha_run "$log" test/integration/gate.test.ts
  rc=$?
  mode="$(sed -n 's/.*gate mode \([a-z0-9-]*\)$/\1/p' "$log" | head -1)"
  summary="$(grep -E '^[0-9]+ passed, [0-9]+ failed' "$log" | tail -1)"
  # The revert storm with the gate (the first storm line); the second is the guard alone.
  storm="$(grep -E '^ +[0-9]+ reverts, [0-9]+ pod moves, [0-9]+ unapproved$' "$log" | head -1 | sed -E 's/^ +//')"
  unapproved="$(sed -E 's/.* ([0-9]+) unapproved$/\1/' <<<"$storm")"
  rows+=("$v|${mode:-?}|${summary:-no summary} ($(( $(date +%s) - start )) s)|${storm:-not run}|${unapproved:-?}")
  { [ $rc -eq 0 ] && [ "${unapproved:-x}" = 0 ]; } || failed=1
  echo "$v: ${summary:-no summary}; storm: ${storm:-not run}; log $log" >&2
done

chart="not run"
log="$(mktemp -t "sts-pilot-matrix-chart-$oldest.XXXXXX.log")"
if STS_PILOT_K8S_VERSION="$oldest" mocha_run "$log" test/cluster/chart-install.test.ts; then
  chart="$(grep -E '^[0-9]+ passed, [0-9]+ failed' "$log" | tail -1)"
else
  chart="FAILED: $(grep -E '^[0-9]+ passed, [0-9]+ failed' "$log" | tail -1) (log $log)"
  failed=1
fi

echo
printf '| %-9s | %-16s | %-32s | %-40s | %-10s |\n' Kubernetes 'gate mode' 'gate suite' 'revert storm (with the gate)' unapproved
printf '|%s|%s|%s|%s|%s|\n' ----------- ------------------ ---------------------------------- ------------------------------------------ ------------
for r in "${rows[@]}"; do
  IFS='|' read -r a b c d e <<<"$r"
  printf '| %-9s | %-16s | %-32s | %-40s | %-10s |\n' "$a" "$b" "$c" "$d" "$e"
done
echo
echo "chart installed on $oldest: $chart"
exit $failed
