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

# shellcheck source=../tools/fetch-lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/../tools/fetch-lib.sh"

if ! java_home="$(find_java "$java_min" 999 "${STS_PILOT_KAFKA_JAVA_HOME:-}")"; then
  if can_install_jre17; then
    echo "fetch-kafka: no Java >= $java_min found; installing openjdk-17-jre-headless" >&2
    install_jre17
    java_home="$(find_java "$java_min" 999 "${STS_PILOT_KAFKA_JAVA_HOME:-}")" || { echo "fetch-kafka: still no usable Java after install" >&2; exit 1; }
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
