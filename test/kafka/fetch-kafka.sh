#!/usr/bin/env bash
# Fetch Apache Kafka (the broker, KRaft only) from Maven Central through `mvn`
# and keep its jars in a cache outside the clone. Kafka publishes no runnable
# distribution there, only its modules: a throwaway pom that depends on
# org.apache.kafka:kafka_2.13 (the server) and resolves it with
# dependency:copy-dependencies gives the same jars as the tarball's libs/.
#
#   STS_PILOT_KAFKA_VERSION  default 4.4.0
#   STS_PILOT_CACHE          default $HOME/.cache/sts-pilot  (jars land in $STS_PILOT_CACHE/kafka/<ver>/libs/)
#   STS_PILOT_KAFKA_JAVA_HOME  force a JDK/JRE (else JAVA_HOME, `java` on PATH, /usr/lib/jvm/*)
#
# stdout (everything else goes to stderr):
#   version=<ver>
#   java_home=<a Java home of major >= 17, which Kafka 4 brokers need>
#   <libs dir>                      <- always the LAST line
# A cache hit does no network access and returns at once.
set -euo pipefail

version="${STS_PILOT_KAFKA_VERSION:-4.4.0}"
java_min=17
cache_root="${STS_PILOT_CACHE:-$HOME/.cache/sts-pilot}/kafka"
home="$cache_root/$version"

java_major_of() { # $1 = a Java home; prints its major version or nothing
  local h="$1" v=""
  [ -x "$h/bin/java" ] || return 0
  [ -f "$h/release" ] && v="$(sed -n 's/^JAVA_VERSION="\([^"]*\)".*/\1/p' "$h/release" | head -n1)"
  [ -z "$v" ] && v="$("$h/bin/java" -XshowSettings:properties -version 2>&1 | sed -n 's/^ *java\.version = //p' | head -n1)"
  v="${v#1.}"
  echo "${v%%[.+-]*}"
}

find_java() {
  local cands=() c m
  [ -n "${STS_PILOT_KAFKA_JAVA_HOME:-}" ] && cands+=("$STS_PILOT_KAFKA_JAVA_HOME")
  [ -n "${JAVA_HOME:-}" ] && cands+=("$JAVA_HOME")
  if command -v java >/dev/null 2>&1; then
    c="$(readlink -f "$(command -v java)")"
    cands+=("${c%/bin/java}")
  fi
  for c in /usr/lib/jvm/java-17-openjdk-* /usr/lib/jvm/java-21-openjdk-* /usr/lib/jvm/*; do
    [ -d "$c" ] && cands+=("$c")
  done
  for c in "${cands[@]}"; do
    m="$(java_major_of "$c")"
    if [ -n "$m" ] && [ "$m" -ge "$java_min" ]; then
      readlink -f "$c"
      return 0
    fi
  done
  return 1
}

if ! java_home="$(find_java)"; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "fetch-kafka: no Java >= $java_min found; installing openjdk-17-jre-headless" >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q openjdk-17-jre-headless >&2 \
      || { apt-get update -q >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q openjdk-17-jre-headless >&2; }
    java_home="$(find_java)" || { echo "fetch-kafka: still no usable Java after install" >&2; exit 1; }
  else
    echo "fetch-kafka: Kafka $version needs Java >= $java_min (set STS_PILOT_KAFKA_JAVA_HOME, or apt-get install openjdk-17-jre-headless)" >&2
    exit 1
  fi
fi

if [ ! -f "$home/.complete" ]; then
  command -v mvn >/dev/null 2>&1 || { echo "fetch-kafka: mvn is needed (apt-get install maven)" >&2; exit 1; }
  mkdir -p "$cache_root"
  tmp="$(mktemp -d "$cache_root/.tmp-$version.XXXXXX")"
  trap 'rm -rf "$tmp"' EXIT
  # The server, and log4j's SLF4J binding so that the broker's log lines reach stdout.
  cat >"$tmp/pom.xml" <<EOF
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>io.sts-pilot.test</groupId>
  <artifactId>kafka-libs</artifactId>
  <version>1</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency><groupId>org.apache.kafka</groupId><artifactId>kafka_2.13</artifactId><version>$version</version></dependency>
    <dependency><groupId>org.slf4j</groupId><artifactId>slf4j-api</artifactId><version>2.0.17</version></dependency>
    <dependency><groupId>org.apache.logging.log4j</groupId><artifactId>log4j-slf4j2-impl</artifactId><version>2.24.3</version></dependency>
    <dependency><groupId>org.apache.logging.log4j</groupId><artifactId>log4j-core</artifactId><version>2.24.3</version></dependency>
  </dependencies>
</project>
EOF
  echo "fetch-kafka: resolving org.apache.kafka:kafka_2.13:$version and its dependencies" >&2
  start=$(date +%s)
  mvn -B -q -Dstyle.color=never -f "$tmp/pom.xml" org.apache.maven.plugins:maven-dependency-plugin:3.6.1:copy-dependencies \
      -DincludeScope=runtime -DoutputDirectory="$tmp/libs" >&2
  ls "$tmp/libs"/kafka_2.13-"$version".jar >/dev/null || { echo "fetch-kafka: kafka_2.13-$version.jar missing after resolution" >&2; exit 1; }
  chmod -R a+rX "$tmp/libs"
  rm -rf "$home"
  mkdir -p "$home"
  mv "$tmp/libs" "$home/libs"
  touch "$home/.complete"
  echo "fetch-kafka: Kafka $version ready ($(ls "$home/libs" | wc -l) jars) in $(( $(date +%s) - start ))s" >&2
fi

echo "version=$version"
echo "java_home=$java_home"
echo "$home/libs"
