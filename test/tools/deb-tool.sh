#!/usr/bin/env bash
# deb-tool.sh PACKAGE: a Debian package's files, unpacked (not installed) under
# ${STS_PILOT_CACHE:-$HOME/.cache/sts-pilot}/deb/<package>-<version>/; prints that
# directory alone on the last line of stdout. Used for tini (its static build,
# usr/bin/tini-static), which the pilot tests run as PID 1.
# `apt-get download` fetches the .deb from the machine's Debian sources (no root
# needed); the package lists are refreshed once when they do not know it.
set -euo pipefail
PKG="${1:?usage: deb-tool.sh PACKAGE}"
CACHE="${STS_PILOT_CACHE:-$HOME/.cache/sts-pilot}"
log() { printf '[deb-tool] %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

candidate() { apt-cache policy "$PKG" 2>/dev/null | sed -n 's/^ *Candidate: //p'; }
VERSION="$(candidate)"
if [[ -z "$VERSION" || "$VERSION" == "(none)" ]]; then
  [[ "$(id -u)" == 0 ]] || die "apt does not know $PKG; run apt-get update (as root) first"
  log "apt-get update (the package lists do not know $PKG)"
  apt-get update -qq >&2 || die "apt-get update failed"
  VERSION="$(candidate)"
fi
[[ -n "$VERSION" && "$VERSION" != "(none)" ]] || die "no Debian package $PKG in the machine's sources"
OUT="$CACHE/deb/$PKG-${VERSION//[:+~]/_}"
if [[ -f "$OUT/.complete" ]]; then
  printf '%s\n' "$OUT"
  exit 0
fi
mkdir -p "$CACHE/deb"
TMP="$(mktemp -d "$CACHE/deb/.tmp-$PKG.XXXXXX")"
trap 'rm -rf "$TMP"' EXIT
log "apt-get download $PKG=$VERSION"
(cd "$TMP" && apt-get download -q "$PKG=$VERSION" >&2) || die "apt-get download $PKG=$VERSION failed"
deb="$(ls "$TMP"/*.deb)"
mkdir "$TMP/root"
dpkg-deb -x "$deb" "$TMP/root"
touch "$TMP/root/.complete"
rm -rf "$OUT"
mv -T "$TMP/root" "$OUT"
log "unpacked $PKG $VERSION into $OUT"
printf '%s\n' "$OUT"
