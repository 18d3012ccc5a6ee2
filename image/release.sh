#!/usr/bin/env bash
# image/release.sh [--no-image] [OUT]: everything a release ships, in one folder
# (`npm run release`; OUT default dist/release, git-ignored; emptied first):
#
#   sts-pilot-<v>.oci.tar              the OCI image (an OCI layout as a tar:
#                                      `skopeo copy oci-archive:...`, `podman load -i`,
#                                      `docker load -i` (Docker >= 25), `ctr image import`)
#   sts-pilot-<v>.cdx.json             its SBOM, CycloneDX JSON by syft: the
#                                      Debian packages of the base, Node, node_modules
#   sts-pilot-<v>.tgz                  the Helm chart (`helm package`)
#   kubectl-sts_pilot                  the CLI and kubectl plugin as one file; runs
#                                      on Node >= 24 with nothing beside it
#   kubectl-sts_pilot-<v>.tar.gz       that file as krew installs it
#   plugin.yaml                        the krew manifest, with the archive's sha256
#   SHA256SUMS                         `sha256sum -c SHA256SUMS` checks all of the above
#
# --no-image leaves out the image and its SBOM (no root needed: the CLI, the krew
# files, the chart); test/unit/release.test.ts runs it so.
#
# Reproducible: every time written is SOURCE_DATE_EPOCH (default: the commit time
# of HEAD), archives list their entries sorted, owned by 0:0, gzip without a name
# or time; the image is image/build.sh's (see there for what it pins). Two runs on
# one commit give the same bytes in every file; `.ci/run` checks the image digest
# by building it twice.
#
# Where the release is published (the krew manifest's download address):
# STS_PILOT_RELEASE_URL, default <source>/releases/download/v<version>, where the
# source is STS_PILOT_SOURCE_URL, else package.json's repository, else the git
# remote origin (the image's org.opencontainers.image.source label too).
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
IMAGE=1
if [[ "${1:-}" == --no-image ]]; then IMAGE=; shift; fi
OUT="${1:-$ROOT/dist/release}"
log() { printf '[release] %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }
start=$SECONDS

NODE="$ROOT/node_modules/.bin/node"
[[ -x "$NODE" ]] || die "run npm ci first (esbuild and Node 24 are the project's own)"
json() { "$NODE" -e "const d=require(process.argv[1]); console.log($2)" "$1"; }
VERSION="$(json "$ROOT/package.json" 'd.version')"
DESCRIPTION="$(json "$ROOT/package.json" 'd.description')"

if [[ -z "${SOURCE_DATE_EPOCH:-}" ]]; then
  SOURCE_DATE_EPOCH="$(git -C "$ROOT" log -1 --format=%ct)" || die "no git commit to take the time from: set SOURCE_DATE_EPOCH"
fi
export SOURCE_DATE_EPOCH
if [[ -n "$(git -C "$ROOT" status --porcelain 2>/dev/null)" ]]; then
  log "WARNING: uncommitted changes; the files are not those of commit $(git -C "$ROOT" rev-parse --short HEAD)"
fi
SOURCE_URL="${STS_PILOT_SOURCE_URL:-$(json "$ROOT/package.json" '(typeof d.repository === "string" ? d.repository : d.repository?.url) ?? ""')}"
if [[ -z "$SOURCE_URL" ]]; then
  SOURCE_URL="$(git -C "$ROOT" remote get-url origin 2>/dev/null || true)"
  [[ "$SOURCE_URL" =~ ^git@([^:]+):(.*)$ ]] && SOURCE_URL="https://${BASH_REMATCH[1]}/${BASH_REMATCH[2]}"
  SOURCE_URL="${SOURCE_URL%.git}"
fi
[[ -n "$SOURCE_URL" ]] || die "where is the source published? set STS_PILOT_SOURCE_URL (or package.json repository, or a git remote origin)"
export STS_PILOT_SOURCE_URL="$SOURCE_URL"
RELEASE_URL="${STS_PILOT_RELEASE_URL:-$SOURCE_URL/releases/download/v$VERSION}"

# Archives as reproducible as the image: sorted, one time, root-owned, no gzip name/time.
tar_fixed() { tar --sort=name --mtime="@$SOURCE_DATE_EPOCH" --owner=0 --group=0 --numeric-owner --mode=go=rX,u+rw --format=gnu "$@"; }

mkdir -p "$OUT"
OUT="$(cd "$OUT" && pwd)"
# Emptied first, so that SHA256SUMS is all there is; only a folder that is empty or
# holds an earlier release (its SHA256SUMS), never one given by mistake.
if [[ -n "$(ls -A "$OUT")" && ! -f "$OUT/SHA256SUMS" ]]; then
  die "$OUT is not empty and holds no earlier release (SHA256SUMS): give an empty or new folder"
fi
find "$OUT" -mindepth 1 -delete
WORK="$(mktemp -d "${TMPDIR:-/tmp}/sts-pilot-release.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT
log "sts-pilot $VERSION, SOURCE_DATE_EPOCH $SOURCE_DATE_EPOCH, into $OUT"

# --- the CLI / kubectl plugin: one file, and the krew archive and manifest --------
"$NODE" "$ROOT/image/bundle.ts" --cli "$OUT/kubectl-sts_pilot" >&2
mkdir "$WORK/krew"
cp "$OUT/kubectl-sts_pilot" "$WORK/krew/"
files=(kubectl-sts_pilot)
[[ -f "$ROOT/LICENSE" ]] && cp "$ROOT/LICENSE" "$WORK/krew/" && files+=(LICENSE)
KREW="kubectl-sts_pilot-$VERSION.tar.gz"
tar_fixed -C "$WORK/krew" -cf - "${files[@]}" | gzip -9 -n >"$OUT/$KREW"
krew_sha="$(sha256sum "$OUT/$KREW" | cut -d' ' -f1)"
{
  cat <<EOF
# krew plugin manifest: kubectl krew install --manifest=plugin.yaml --archive=$KREW
# (or without --archive, from the uri). Written by image/release.sh.
apiVersion: krew.googlecode.github.com/v1alpha2
kind: Plugin
metadata:
  name: sts-pilot
spec:
  version: v$VERSION
  homepage: $SOURCE_URL
  shortDescription: Application-aware StatefulSet rollouts
  description: |
    $DESCRIPTION.
    status, wait, pause, resume, approve, undo and hooks for the StatefulSets
    that sts-pilot manages. One JavaScript file: needs Node.js 24 or newer on PATH.
  caveats: |
    Needs Node.js 24 or newer as \`node\` on PATH.
  platforms:
EOF
  for os in linux darwin; do
    cat <<EOF
    - selector:
        matchLabels:
          os: $os
      uri: $RELEASE_URL/$KREW
      sha256: $krew_sha
      bin: kubectl-sts_pilot
      files:
        - from: kubectl-sts_pilot
          to: .
EOF
    [[ " ${files[*]} " == *" LICENSE "* ]] && printf '        - from: LICENSE\n          to: .\n'
  done
} >"$OUT/plugin.yaml"

# --- the chart ---------------------------------------------------------------------
HELM="$(bash "$ROOT/test/tools/go-tool.sh" helm | tail -1)"
cp -a "$ROOT/charts/sts-pilot" "$WORK/chart"
find "$WORK/chart" -exec touch --no-dereference --date="@$SOURCE_DATE_EPOCH" {} +
"$HELM" package "$WORK/chart" --destination "$OUT" --version "$VERSION" --app-version "$VERSION" >&2

# --- the image and its SBOM ----------------------------------------------------------
if [[ -n "$IMAGE" ]]; then
  IMAGE_DIR="$ROOT/dist/image"
  bash "$ROOT/image/build.sh" "$IMAGE_DIR" >/dev/null
  tar_fixed -C "$IMAGE_DIR/oci" -cf "$OUT/sts-pilot-$VERSION.oci.tar" oci-layout index.json blobs
  digest="$("$NODE" -e 'console.log(require(process.argv[1]).digest)' "$IMAGE_DIR/build.json")"
  SYFT="$(bash "$ROOT/test/tools/go-tool.sh" syft | tail -1)"
  log "syft: the image's SBOM"
  # No update check (no network), no file metadata (sizes and times change nothing in what is shipped).
  SYFT_CHECK_FOR_APP_UPDATE=false "$SYFT" scan --quiet --source-name sts-pilot --source-version "$VERSION" \
    -o "cyclonedx-json=$WORK/sbom.json" "oci-dir:$IMAGE_DIR/oci" >&2
  # syft stamps each run with a time and a random serial number: the commit time and
  # one derived from the image digest instead, so that one commit gives one SBOM.
  "$NODE" -e '
    const fs = require("node:fs");
    const [file, out, created, digest] = process.argv.slice(1);
    const d = JSON.parse(fs.readFileSync(file, "utf8"));
    const h = digest.replace(/^sha256:/, "");
    d.serialNumber = `urn:uuid:${h.slice(0, 8)}-${h.slice(8, 12)}-5${h.slice(13, 16)}-${((parseInt(h[16], 16) & 3) | 8).toString(16)}${h.slice(17, 20)}-${h.slice(20, 32)}`;
    d.metadata.timestamp = created;
    fs.writeFileSync(out, JSON.stringify(d, null, 2) + "\n");
  ' "$WORK/sbom.json" "$OUT/sts-pilot-$VERSION.cdx.json" "$(date -u -d "@$SOURCE_DATE_EPOCH" +%Y-%m-%dT%H:%M:%SZ)" "$digest"
fi

# --- checksums -----------------------------------------------------------------------
(cd "$OUT" && find . -maxdepth 1 -type f ! -name SHA256SUMS -printf '%f\n' | LC_ALL=C sort | xargs sha256sum -- >SHA256SUMS)
log "done in $((SECONDS - start))s:"
(cd "$OUT" && for f in $(LC_ALL=C ls); do printf '  %-34s %10s  %s\n' "$f" "$(stat -c %s "$f")" "$(sha256sum "$f" | cut -c1-16)"; done) >&2
printf '%s\n' "$OUT"
