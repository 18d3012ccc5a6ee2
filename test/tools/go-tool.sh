#!/usr/bin/env bash
# go-tool.sh TOOL: build a Go tool the tests and `npm run manifests` use, from the
# Go module proxy, cached outside the clone; print its path alone on the last line
# of stdout (progress on stderr).
#
#   helm      helm.sh/helm/v4/cmd/helm                        (STS_PILOT_HELM_VERSION, v4.3.1)
#   promtool  github.com/prometheus/prometheus/cmd/promtool   (STS_PILOT_PROMETHEUS_VERSION, v0.316.0)
#   prometheus  github.com/prometheus/prometheus/cmd/prometheus (the same version as promtool):
#             the server the metric-check tests query
#   syft      github.com/anchore/syft/cmd/syft                (STS_PILOT_SYFT_VERSION, v1.57.2): the
#             release's image SBOM (scripts/release.sh)
#   gitops-eval  test/tools/gitops-eval: the Argo CD Lua VM (gopher-lua) and Flux's
#             CEL (cel-go) in one runner; its versions are in its go.mod/go.sum, and
#             the cache key is a hash of that module's files (a change rebuilds it)
#
# Output: ${STS_PILOT_CACHE:-$HOME/.cache/sts-pilot}/bin/<tool>-<version>/<tool>.
# A cache hit runs no `go` at all. `go install <pkg>@<version>` builds with the
# tool's own go.mod (the versions its authors tested), CGO off, -trimpath,
# stripped; the version is stamped in as the tools' release builds do. Builds go
# to a temp dir and are moved into place, under a flock on $CACHE/build.lock
# (shared with build-binaries.sh, so two builds never compete for 2 cores).
# GOTOOLCHAIN=local: no toolchain download.
set -euo pipefail

TOOL="${1:?usage: go-tool.sh helm|promtool|prometheus|syft|gitops-eval}"
CACHE="${STS_PILOT_CACHE:-$HOME/.cache/sts-pilot}"

case "$TOOL" in
  helm)
    VERSION="${STS_PILOT_HELM_VERSION:-v4.3.1}"
    PKG="helm.sh/helm/v4/cmd/helm"
    LDFLAGS="-s -w -X helm.sh/helm/v4/internal/version.version=$VERSION"
    TAGS=""
    CHECK=(version --short)
    ;;
  promtool)
    VERSION="${STS_PILOT_PROMETHEUS_VERSION:-v0.316.0}"
    PKG="github.com/prometheus/prometheus/cmd/promtool"
    LDFLAGS="-s -w -X github.com/prometheus/common/version.Version=$VERSION"
    # Without the service-discovery plugins (AWS, Azure, GCE, ...): Prometheus's own
    # build tag for a smaller binary. promtool's rule checks and rule unit tests do
    # not use them, and they are most of a cold build.
    TAGS="remove_all_sd"
    CHECK=(--version)
    ;;
  prometheus)
    VERSION="${STS_PILOT_PROMETHEUS_VERSION:-v0.316.0}"
    PKG="github.com/prometheus/prometheus/cmd/prometheus"
    LDFLAGS="-s -w -X github.com/prometheus/common/version.Version=$VERSION"
    # No service-discovery plugins (the tests scrape static targets) and no
    # embedded web UI (no builtinassets tag): the query API is all they use.
    TAGS="remove_all_sd"
    CHECK=(--version)
    ;;
  syft)
    VERSION="${STS_PILOT_SYFT_VERSION:-v1.57.2}"
    PKG="github.com/anchore/syft/cmd/syft"
    # Its release builds stamp main.version the same way (.goreleaser.yaml).
    LDFLAGS="-s -w -X main.version=${VERSION#v}"
    TAGS=""
    CHECK=(version)
    ;;
  gitops-eval)
    # A throwaway module of the repo, built with `go build` from its own go.sum.
    SRC="$(cd "$(dirname "${BASH_SOURCE[0]}")/gitops-eval" && pwd)"
    VERSION="v$(cat "$SRC/go.mod" "$SRC/go.sum" "$SRC"/*.go | sha256sum | cut -c1-12)"
    PKG="."
    LDFLAGS="-s -w"
    TAGS=""
    CHECK=()
    ;;
  *) echo "[go-tool] unknown tool $TOOL (helm, promtool, prometheus, syft, gitops-eval)" >&2; exit 2 ;;
esac

OUT="$CACHE/bin/$TOOL-${VERSION#v}"
log() { printf '[go-tool] %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

if [[ -x "$OUT/$TOOL" ]]; then
  printf '%s\n' "$OUT/$TOOL"
  exit 0
fi

command -v go >/dev/null || die "go not found on PATH (Go >= 1.26 is needed to build $TOOL once)"
mkdir -p "$CACHE/bin"
exec 9>"$CACHE/build.lock"
if command -v flock >/dev/null; then
  log "waiting for $CACHE/build.lock"
  flock 9
  if [[ -x "$OUT/$TOOL" ]]; then
    printf '%s\n' "$OUT/$TOOL"
    exit 0
  fi
fi

export GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS="-buildvcs=false"
rm -rf "$CACHE/bin/.tmp-$TOOL-"*
TMP="$(mktemp -d "$CACHE/bin/.tmp-$TOOL-${VERSION#v}.XXXXXX")"
BUILD_PID=
cleanup() {
  [[ -z "$BUILD_PID" ]] || kill "$BUILD_PID" 2>/dev/null || true
  rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

start=$SECONDS
if [[ "$PKG" == "." ]]; then
  log "$(go version); go build $SRC (cold: minutes on 2 cores)"
  (cd "$SRC" && exec go build -mod=readonly -trimpath -ldflags "$LDFLAGS" -o "$TMP/$TOOL" .) >&2 &
else
  log "$(go version); go install $PKG@$VERSION (cold: minutes on 2 cores)"
  (GOBIN="$TMP" exec go install -trimpath -tags "$TAGS" -ldflags "$LDFLAGS" "$PKG@$VERSION") >&2 &
fi
BUILD_PID=$!
wait "$BUILD_PID" || die "go install $PKG@$VERSION failed (see above)"
BUILD_PID=
[[ -x "$TMP/$TOOL" ]] || die "go install left no $TOOL in $TMP"
if [[ ${#CHECK[@]} -gt 0 ]]; then
  v="$("$TMP/$TOOL" "${CHECK[@]}" 2>&1 || true)"
  [[ "$v" == *"${VERSION#v}"* ]] || die "$TOOL ${CHECK[*]} says '$v', expected $VERSION"
fi
chmod 755 "$TMP"
rm -rf "$OUT"
mv -T "$TMP" "$OUT"
log "built $TOOL $VERSION in $((SECONDS - start))s: $OUT"
printf '%s\n' "$OUT/$TOOL"
