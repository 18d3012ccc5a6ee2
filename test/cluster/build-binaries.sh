#!/usr/bin/env bash
# build-binaries.sh — build real Kubernetes control-plane binaries for the
# real-cluster test suite, from the Go module proxy, cached outside the clone.
#
# Output: one directory holding four executables
#     etcd  kube-apiserver  kube-controller-manager  kubectl
# Its path is printed ALONE on the last line of stdout; progress goes to stderr.
#
#   ${STS_PILOT_CACHE:-$HOME/.cache/sts-pilot}/bin/k8s-<kver>-etcd-<ever>/
#
# Behaviour
# * Cache hit: if all four files exist and are executable in the output dir,
#   print it and exit 0 at once (no `go` is run).
# * KUBEBUILDER_ASSETS: if set and that directory has all four executables,
#   print it and exit 0 without building. envtest's asset bundles normally lack
#   kube-controller-manager (and this suite needs the StatefulSet controller),
#   so when any of the four is missing there we say so and build all four into
#   the cache dir as usual (simple, and the versions then match each other).
# * Builds go into a temp dir next to the output dir and are `mv`d into place,
#   so an interrupted build never leaves a half-filled cache. SIGTERM/SIGINT
#   stop the running `go build` at once and remove the temp dir; stale temp
#   dirs are removed on the next run. A flock on $CACHE/build.lock serialises
#   concurrent runs (a second run waits, then takes the cache hit).
# * Kubernetes: a throwaway module in $CACHE/build/k8s-<kver> requires
#   k8s.io/kubernetes <kver> and replaces every staging module (each
#   `k8s.io/<name> v0.0.0` require of kubernetes's own go.mod, derived from the
#   downloaded go.mod) with its published k8s.io/<name> v0.<minor>.<patch>.
#   Built like `make` does for release binaries: CGO_ENABLED=0, -trimpath,
#   -tags selinux,notest,grpcnotrace, -ldflags "-s -w -X .../version.gitVersion=..."
#   so `--version` and /version report the real version.
# * etcd: a throwaway module in $CACHE/build/etcd-<ever> with a main.go calling
#   go.etcd.io/etcd/server/v3/etcdmain.Main(os.Args) (what etcd's own main does).
# * The build dirs are kept, and Go's own module/build caches (GOMODCACHE,
#   GOCACHE; defaults under $HOME) are used, so a rebuild is quick.
# * GOTOOLCHAIN=local: no toolchain download is possible here. Needs Go >= the
#   `go` line of kubernetes's go.mod (1.26.0 for v1.37.x).
#
# Versions: Kubernetes v1.37.2 is the newest the proxy serves; it pins etcd
# v3.7.0 (its go.mod requires go.etcd.io/etcd/server/v3 v3.7.0 and
# build/dependencies.yaml says etcd 3.7.0), so that is the etcd we build.
# Override with STS_PILOT_K8S_VERSION / STS_PILOT_ETCD_VERSION; parallelism
# with STS_PILOT_BUILD_JOBS (default: nproc). The older versions of the
# Kubernetes matrix (test/cluster/matrix.sh, test/cluster/FLAGS.md) have their
# etcd in the table below. The proxy serves some staging modules for some
# patches only: v1.30.14, v1.33.13 and v1.35.4 have every one at their own
# v0.N.M; no v1.31.x or v1.32.x does (v1.31.14 lacks kube-controller-manager,
# kube-scheduler, endpointslice, kubectl … at v0.31.14), hence 1.30 in the matrix.
#
# Timings on the 2-core machine (details in test/cluster/FLAGS.md): cold
# build ~11-14 min wall clock (~13-16 CPU-min), ~2.5 GB RSS peak, ~4 GB of
# GOCACHE; rebuild with a warm GOCACHE 15-90 s (~20 CPU-s); cache hit ~0.00 s.
set -euo pipefail

K8S_VERSION="${STS_PILOT_K8S_VERSION:-v1.37.2}"
# The etcd each Kubernetes version of the matrix (test/cluster/matrix.sh) runs on:
# the one its build/dependencies.yaml names when the Go module proxy serves it,
# else the one its go.mod requires (go.etcd.io/etcd/server/v3).
case "$K8S_VERSION" in
  v1.30.14) DEFAULT_ETCD=v3.5.15 ;; # dependencies.yaml (go.mod: v3.5.10)
  v1.33.13) DEFAULT_ETCD=v3.5.21 ;; # go.mod (dependencies.yaml's v3.5.24 is not served)
  v1.35.4) DEFAULT_ETCD=v3.6.5 ;;   # go.mod (dependencies.yaml's v3.6.6 is not served)
  *) DEFAULT_ETCD=v3.7.0 ;;         # v1.37.2: go.mod and dependencies.yaml agree
esac
ETCD_VERSION="${STS_PILOT_ETCD_VERSION:-$DEFAULT_ETCD}"

CACHE="${STS_PILOT_CACHE:-$HOME/.cache/sts-pilot}"
NAME="k8s-${K8S_VERSION#v}-etcd-${ETCD_VERSION#v}"
OUT="$CACHE/bin/$NAME"
BINARIES=(etcd kube-apiserver kube-controller-manager kubectl)

log() { printf '[build-binaries] %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

has_all() { # dir -> 0 if all four binaries are executable files there
  local d="$1" b
  for b in "${BINARIES[@]}"; do [[ -f "$d/$b" && -x "$d/$b" ]] || return 1; done
}

# --- fast paths --------------------------------------------------------------
if [[ -n "${KUBEBUILDER_ASSETS:-}" ]]; then
  if has_all "$KUBEBUILDER_ASSETS"; then
    log "using KUBEBUILDER_ASSETS=$KUBEBUILDER_ASSETS"
    printf '%s\n' "$KUBEBUILDER_ASSETS"
    exit 0
  fi
  log "KUBEBUILDER_ASSETS=$KUBEBUILDER_ASSETS lacks some of: ${BINARIES[*]}; using/building $OUT instead"
fi
if has_all "$OUT"; then
  printf '%s\n' "$OUT"
  exit 0
fi

# --- slow path: build ----------------------------------------------------------
command -v go >/dev/null || die "go not found on PATH"
mkdir -p "$CACHE/bin" "$CACHE/build"

exec 9>"$CACHE/build.lock"
if command -v flock >/dev/null; then
  log "waiting for $CACHE/build.lock"
  flock 9
  if has_all "$OUT"; then # another run finished it while we waited
    printf '%s\n' "$OUT"
    exit 0
  fi
fi

export GOTOOLCHAIN=local
export CGO_ENABLED=0
export GOFLAGS="-mod=mod -buildvcs=false"
JOBS="${STS_PILOT_BUILD_JOBS:-$(nproc 2>/dev/null || echo 2)}"

# Leftovers of interrupted builds (we hold the lock, so none is in use).
rm -rf "$CACHE/bin/.tmp-$NAME."*
TMP_OUT="$(mktemp -d "$CACHE/bin/.tmp-$NAME.XXXXXX")"
BUILD_PID=
cleanup() {
  [[ -z "$BUILD_PID" ]] || kill "$BUILD_PID" 2>/dev/null || true
  rm -rf "$TMP_OUT"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

log "$(go version); building $NAME with -p $JOBS into $OUT"
start=$SECONDS

# --- Kubernetes ----------------------------------------------------------------
[[ "$K8S_VERSION" =~ ^v1\.([0-9]+)\.([0-9]+)$ ]] || die "K8S_VERSION must look like v1.N.M, got $K8S_VERSION"
K8S_MINOR="${BASH_REMATCH[1]}"
STAGING_VERSION="v0.${BASH_REMATCH[1]}.${BASH_REMATCH[2]}"

log "downloading k8s.io/kubernetes@$K8S_VERSION (module zip is ~60 MB)"
K8S_JSON="$(cd "$CACHE/build" && GOFLAGS='' go mod download -json "k8s.io/kubernetes@$K8S_VERSION")" \
  || die "go mod download k8s.io/kubernetes@$K8S_VERSION failed: $K8S_JSON"
json_field() { sed -n "s/^[[:space:]]*\"$1\": \"\(.*\)\",\{0,1\}$/\1/p" <<<"$2"; }
K8S_GOMOD="$(json_field GoMod "$K8S_JSON")"
K8S_INFO="$(json_field Info "$K8S_JSON")"
[[ -f "$K8S_GOMOD" ]] || die "no go.mod for k8s.io/kubernetes@$K8S_VERSION in: $K8S_JSON"

# Staging modules: every `k8s.io/<name> v0.0.0` require in kubernetes's go.mod.
mapfile -t STAGING < <(awk '$1 ~ /^k8s\.io\// && $2 == "v0.0.0" {print $1}' "$K8S_GOMOD" | sort -u)
((${#STAGING[@]} > 0)) || die "found no k8s.io/* v0.0.0 requires in $K8S_GOMOD"
GO_LINE="$(grep -m1 -E '^go [0-9]' "$K8S_GOMOD")"
GODEBUG_LINE="$(grep -m1 -E '^godebug ' "$K8S_GOMOD" || true)"
BUILD_DATE="$(sed -n 's/.*"Time":"\([^"]*\)".*/\1/p' "$K8S_INFO" 2>/dev/null || true)"
[[ -n "$BUILD_DATE" ]] || BUILD_DATE="$(date -u +%Y-%m-%dT%H:%M:%SZ)"

K8S_DIR="$CACHE/build/k8s-$K8S_VERSION"
mkdir -p "$K8S_DIR"
{
  echo "// Generated by sts-pilot test/cluster/build-binaries.sh; throwaway build module."
  echo "module sts-pilot.local/build/k8s"
  echo
  echo "$GO_LINE"
  [[ -z "$GODEBUG_LINE" ]] || echo "$GODEBUG_LINE"
  echo
  echo "require k8s.io/kubernetes $K8S_VERSION"
  echo
  echo "replace ("
  for m in "${STAGING[@]}"; do printf '\t%s => %s %s\n' "$m" "$m" "$STAGING_VERSION"; done
  echo ")"
} >"$K8S_DIR/go.mod.new"
# Keep go.mod/go.sum (and so go's resolution) when nothing changed.
if cmp -s "$K8S_DIR/go.mod.new" "$K8S_DIR/go.mod.gen" 2>/dev/null && [[ -f "$K8S_DIR/go.mod" ]]; then
  rm "$K8S_DIR/go.mod.new"
else
  cp "$K8S_DIR/go.mod.new" "$K8S_DIR/go.mod"
  mv "$K8S_DIR/go.mod.new" "$K8S_DIR/go.mod.gen"
  rm -f "$K8S_DIR/go.sum"
fi
log "k8s build module $K8S_DIR: ${#STAGING[@]} staging modules => $STAGING_VERSION"

K8S_LDFLAGS="-s -w"
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  K8S_LDFLAGS+=" -X $pkg.gitVersion=$K8S_VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=$K8S_MINOR"
  K8S_LDFLAGS+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=$BUILD_DATE"
done

log "go build kube-apiserver kube-controller-manager kubectl (cold: tens of minutes on 2 cores)"
# In the background + wait, so a TERM/INT to this script stops the build at once.
(
  cd "$K8S_DIR"
  exec go build -p "$JOBS" -trimpath -tags selinux,notest,grpcnotrace -ldflags "$K8S_LDFLAGS" \
    -o "$TMP_OUT/" \
    k8s.io/kubernetes/cmd/kube-apiserver \
    k8s.io/kubernetes/cmd/kube-controller-manager \
    k8s.io/kubernetes/cmd/kubectl
) >&2 &
BUILD_PID=$!
wait "$BUILD_PID" || die "kubernetes build failed (see above)"
BUILD_PID=
log "kubernetes built after $((SECONDS - start))s"

# --- etcd --------------------------------------------------------------------
ETCD_DIR="$CACHE/build/etcd-$ETCD_VERSION"
mkdir -p "$ETCD_DIR"
cat >"$ETCD_DIR/main.go" <<'EOF'
// Generated by sts-pilot test/cluster/build-binaries.sh: the etcd server binary,
// exactly as etcd's own server/main.go builds it.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() {
	etcdmain.Main(os.Args)
}
EOF
if [[ ! -f "$ETCD_DIR/go.mod" ]] || ! grep -q "go.etcd.io/etcd/server/v3 $ETCD_VERSION\$" "$ETCD_DIR/go.mod"; then
  printf '// Generated by sts-pilot test/cluster/build-binaries.sh; throwaway build module.\nmodule sts-pilot.local/build/etcd\n\ngo 1.26\n\nrequire go.etcd.io/etcd/server/v3 %s\n' \
    "$ETCD_VERSION" >"$ETCD_DIR/go.mod"
  rm -f "$ETCD_DIR/go.sum"
fi
log "go build etcd $ETCD_VERSION in $ETCD_DIR"
(
  cd "$ETCD_DIR"
  exec go build -p "$JOBS" -trimpath -ldflags "-s -w" -o "$TMP_OUT/etcd" .
) >&2 &
BUILD_PID=$!
wait "$BUILD_PID" || die "etcd build failed (see above)"
BUILD_PID=

# --- verify and publish ------------------------------------------------------------
has_all "$TMP_OUT" || die "build finished but binaries are missing in $TMP_OUT: $(ls "$TMP_OUT")"
v="$("$TMP_OUT/kube-apiserver" --version 2>&1)"
[[ "$v" == "Kubernetes $K8S_VERSION" ]] || die "kube-apiserver --version says '$v', expected 'Kubernetes $K8S_VERSION'"
v="$("$TMP_OUT/kube-controller-manager" --version 2>&1)"
[[ "$v" == "Kubernetes $K8S_VERSION" ]] || die "kube-controller-manager --version says '$v'"
v="$("$TMP_OUT/kubectl" version --client 2>&1)" # no `| head`: SIGPIPE + pipefail
v="${v%%$'\n'*}"
[[ "$v" == *"$K8S_VERSION"* ]] || die "kubectl version --client says '$v'"
v="$("$TMP_OUT/etcd" --version 2>&1)"
v="${v%%$'\n'*}"
[[ "$v" == "etcd Version: ${ETCD_VERSION#v}" ]] || die "etcd --version says '$v'"

chmod 755 "$TMP_OUT"
rm -rf "$OUT" # only ever an incomplete leftover here: has_all failed above
mv -T "$TMP_OUT" "$OUT"
log "done in $((SECONDS - start))s: $OUT"
printf '%s\n' "$OUT"
