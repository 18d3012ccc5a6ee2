# Shell functions of the scripts that fetch a Java application for the tests
# (test/es/fetch-distribution.sh, test/kafka/fetch-kafka.sh): sourced, not run.
# Everything they say goes to stderr; stdout is the caller's answer.

java_major_of() { # $1 = a JDK/JRE home; prints its major version or nothing
  local h="$1" v=""
  [ -x "$h/bin/java" ] || return 0
  if [ -f "$h/release" ]; then
    v="$(sed -n 's/^JAVA_VERSION="\([^"]*\)".*/\1/p' "$h/release" | head -n1)"
  fi
  if [ -z "$v" ]; then
    v="$("$h/bin/java" -XshowSettings:properties -version 2>&1 | sed -n 's/^ *java\.version = //p' | head -n1)"
  fi
  v="${v#1.}"          # 1.8.0 -> 8.0
  echo "${v%%[.+-]*}"
}

# find_java MIN MAX [FORCED]: prints the first Java home (links resolved) whose
# major version is MIN..MAX, of: FORCED (if not empty), JAVA_HOME, `java` on
# PATH, Debian's own OpenJDK (17 first, then 21), anything else in /usr/lib/jvm.
# Fails if there is none.
find_java() {
  local min="$1" max="$2" forced="${3:-}" cands=() c m
  [ -n "$forced" ] && cands+=("$forced")
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
    if [ -n "$m" ] && [ "$m" -ge "$min" ] && [ "$m" -le "$max" ]; then
      readlink -f "$c"
      return 0
    fi
  done
  return 1
}

# True where install_jre17 can work: as root, with apt-get.
can_install_jre17() {
  [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1
}

# apt-get install openjdk-17-jre-headless (after an apt-get update if the first try fails).
install_jre17() {
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q openjdk-17-jre-headless >&2 \
    || { apt-get update -q >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q openjdk-17-jre-headless >&2; }
}
