#!/usr/bin/env bash
# Fetch a runnable Elasticsearch/OpenSearch distribution from Maven Central
# (through `mvn`, the only route this project has to it) and unpack it into a
# cache outside the clone.
#
#   STS_PILOT_ES_DIST     opensearch (default) | elasticsearch
#   STS_PILOT_ES_VERSION  default: 2.19.6 for opensearch, 8.19.21 for elasticsearch
#   STS_PILOT_CACHE       default: $HOME/.cache/sts-pilot  (distribution lands in $STS_PILOT_CACHE/es/<name>-<ver>/)
#   STS_PILOT_ES_JAVA_HOME  force a JDK/JRE (else JAVA_HOME, `java` on PATH, /usr/lib/jvm/*)
#
# Artifacts (the "integ-test-zip": core server + transport module, no bundled JDK):
#   org.opensearch.distribution.integ-test-zip:opensearch:<ver>:zip        (no security plugin at all)
#   org.elasticsearch.distribution.integ-test-zip:elasticsearch:<ver>:zip  (has x-pack-security: the
#       harness sets xpack.security.enabled=false; it also lacks the rest-root module, so GET / is 405)
#
# stdout (everything else goes to stderr):
#   flavor=<opensearch|elasticsearch>
#   version=<ver>
#   java_home=<a JDK/JRE home whose major version this distribution runs on>
#   <home dir>                      <- always the LAST line
# A cache hit does no network access and returns at once.
set -euo pipefail

dist="${STS_PILOT_ES_DIST:-opensearch}"
case "$dist" in
  opensearch)
    version="${STS_PILOT_ES_VERSION:-2.19.6}"
    artifact="org.opensearch.distribution.integ-test-zip:opensearch:${version}:zip"
    ;;
  elasticsearch)
    version="${STS_PILOT_ES_VERSION:-8.19.21}"
    artifact="org.elasticsearch.distribution.integ-test-zip:elasticsearch:${version}:zip"
    ;;
  *)
    echo "fetch-distribution: STS_PILOT_ES_DIST must be opensearch or elasticsearch, not '$dist'" >&2
    exit 2
    ;;
esac
major="${version%%.*}"

# Java versions each line runs on (no bundled JDK in the integ-test-zip):
#  OpenSearch 1.x: 11..17
#  OpenSearch 2.x: 11..21 (uses the SecurityManager, which JDK 24 removed; 22/23 untested) -> prefer 17, 21
#  OpenSearch 3.x: 21+
#  Elasticsearch 8.x: 17+ (tested here on 17; 8.19 also has entitlements for 24+)
#  Elasticsearch 9.x: 21+
case "$dist:$major" in
  opensearch:1) java_min=11; java_max=17 ;;
  opensearch:2) java_min=11; java_max=21 ;;
  opensearch:*) java_min=21; java_max=99 ;;
  elasticsearch:8) java_min=17; java_max=99 ;;
  elasticsearch:7) java_min=11; java_max=21 ;;
  elasticsearch:*) java_min=21; java_max=99 ;;
esac

cache_root="${STS_PILOT_CACHE:-$HOME/.cache/sts-pilot}/es"
home="$cache_root/$dist-$version"

# --- Java --------------------------------------------------------------------
# shellcheck source=../tools/fetch-lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/../tools/fetch-lib.sh"

if ! java_home="$(find_java "$java_min" "$java_max" "${STS_PILOT_ES_JAVA_HOME:-}")"; then
  if can_install_jre17 && [ "$java_min" -le 17 ] && [ "$java_max" -ge 17 ]; then
    echo "fetch-distribution: no Java $java_min..$java_max found; installing openjdk-17-jre-headless" >&2
    install_jre17
    java_home="$(find_java "$java_min" "$java_max" "${STS_PILOT_ES_JAVA_HOME:-}")" || { echo "fetch-distribution: still no usable Java after install" >&2; exit 1; }
  else
    echo "fetch-distribution: $dist $version needs a Java $java_min..$java_max runtime (set STS_PILOT_ES_JAVA_HOME," \
         "or apt-get install openjdk-17-jre-headless)" >&2
    exit 1
  fi
fi

# --- Distribution ------------------------------------------------------------
if [ ! -x "$home/bin/$dist" ]; then
  command -v mvn >/dev/null 2>&1 || { echo "fetch-distribution: mvn is needed (apt-get install maven)" >&2; exit 1; }
  mkdir -p "$cache_root"
  tmp="$(mktemp -d "$cache_root/.tmp-$dist-$version.XXXXXX")"
  trap 'rm -rf "$tmp"' EXIT
  echo "fetch-distribution: downloading $artifact" >&2
  start=$(date +%s)
  mvn -B -q -Dstyle.color=never org.apache.maven.plugins:maven-dependency-plugin:3.6.1:copy \
      -Dartifact="$artifact" -DoutputDirectory="$tmp/zip" -Dmdep.overWriteReleases=true >&2
  zip="$(ls "$tmp"/zip/*.zip)"
  mkdir "$tmp/x"
  if command -v unzip >/dev/null 2>&1; then
    unzip -q "$zip" -d "$tmp/x"
  else
    python3 -m zipfile -e "$zip" "$tmp/x"
    chmod +x "$tmp/x/$dist-$version"/bin/*     # python's zipfile drops the mode bits
  fi
  [ -x "$tmp/x/$dist-$version/bin/$dist" ] || { echo "fetch-distribution: unexpected zip layout in $zip" >&2; ls "$tmp/x" >&2; exit 1; }
  # Make it readable by the unprivileged user the harness runs nodes as when we are root.
  chmod -R a+rX "$tmp/x/$dist-$version"
  # Atomic publish; if another run won the race, keep theirs.
  if ! mv -T "$tmp/x/$dist-$version" "$home" 2>/dev/null; then
    [ -x "$home/bin/$dist" ] || { echo "fetch-distribution: could not move into $home" >&2; exit 1; }
  fi
  echo "fetch-distribution: $dist $version ready in $(( $(date +%s) - start ))s" >&2
fi

# --- Security check: nodes must serve plain HTTP without credentials ---------
if [ "$dist" = opensearch ]; then
  if [ -e "$home/plugins/opensearch-security" ]; then
    echo "fetch-distribution: $home has the opensearch-security plugin; the harness expects none" >&2
    exit 1
  fi
elif [ -d "$home/modules/x-pack-security" ]; then
  echo "fetch-distribution: note: $dist $version has x-pack-security; the harness turns it off unless a test turns security on" >&2
fi

echo "flavor=$dist"
echo "version=$version"
echo "java_home=$java_home"
echo "$home"
