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
#   STS_PILOT_CASSANDRA_JAVA_HOME  force a JDK/JRE (else JAVA_HOME, `java` on PATH, /usr/lib/jvm/*)
#
# stdout (everything else goes to stderr):
#   version=<ver>
#   java_home=<a Java home of major 11..17, which Cassandra 4.1/5.0 support>
#   <libs dir>                      <- always the LAST line
# A cache hit does no network access and returns at once.
set -euo pipefail

version="${STS_PILOT_CASSANDRA_VERSION:-5.0.6}"
java_min=11
java_max=17
cache_root="${STS_PILOT_CACHE:-$HOME/.cache/sts-pilot}/cassandra"
home="$cache_root/$version"

# shellcheck source=../tools/fetch-lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/../tools/fetch-lib.sh"

if ! java_home="$(find_java "$java_min" "$java_max" "${STS_PILOT_CASSANDRA_JAVA_HOME:-}")"; then
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

echo "version=$version"
echo "java_home=$java_home"
echo "$home/libs"
