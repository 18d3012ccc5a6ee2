#!/usr/bin/env bash
# Installs what the Patroni tests run, outside the clone, and prints where:
#   PostgreSQL 15 from Debian's packages (apt-get, when its server binaries are missing),
#   Patroni and psycopg from PyPI into a venv under the cache.
#
#   STS_PILOT_CACHE            default: $HOME/.cache/sts-pilot  (venv in $STS_PILOT_CACHE/patroni/venv-<patroni>-<psycopg>)
#   STS_PILOT_PATRONI_VERSION  default 4.1.5
#   STS_PILOT_PSYCOPG_VERSION  default 3.3.9
#   STS_PILOT_PG_MAJOR         default 15 (the Debian package postgresql-<major>)
#
# stdout (everything else goes to stderr), one key=value a line:
#   pg_bin=/usr/lib/postgresql/15/bin
#   patroni=<venv>/bin/patroni
#   patronictl=<venv>/bin/patronictl
#   python=<venv>/bin/python
#   venv=<venv>        (a test copies it where the member's user can read it, and runs python -m patroni there)
# A cache hit does no network access and returns at once. Any failure exits
# non-zero with the reason on stderr: the tests fail with it, they never skip.
set -euo pipefail

patroni_version="${STS_PILOT_PATRONI_VERSION:-4.1.5}"
psycopg_version="${STS_PILOT_PSYCOPG_VERSION:-3.3.9}"
pg_major="${STS_PILOT_PG_MAJOR:-15}"
cache_root="${STS_PILOT_CACHE:-$HOME/.cache/sts-pilot}/patroni"
venv="$cache_root/venv-$patroni_version-$psycopg_version"
pg_bin="/usr/lib/postgresql/$pg_major/bin"

say() { echo "install-patroni: $*" >&2; }
die() { say "$*"; exit 1; }

# --- PostgreSQL server (Debian) ----------------------------------------------
if [ ! -x "$pg_bin/postgres" ] || [ ! -x "$pg_bin/initdb" ] || [ ! -x "$pg_bin/pg_ctl" ]; then
  command -v apt-get >/dev/null 2>&1 || die "no $pg_bin/postgres and no apt-get to install postgresql-$pg_major: install PostgreSQL $pg_major's server binaries there"
  [ "$(id -u)" = 0 ] || die "no $pg_bin/postgres; installing postgresql-$pg_major needs root (run: sudo apt-get install -y postgresql-$pg_major)"
  say "installing postgresql-$pg_major from Debian's packages"
  apt-get update -qq >&2 || die "apt-get update failed"
  # Debian's postinst would create and start a 'main' cluster on 5432: not wanted here.
  mkdir -p /etc/postgresql-common
  if ! grep -qs '^create_main_cluster' /etc/postgresql-common/createcluster.conf; then
    echo 'create_main_cluster = false' >> /etc/postgresql-common/createcluster.conf
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "postgresql-$pg_major" >&2 \
    || die "apt-get install postgresql-$pg_major failed"
  [ -x "$pg_bin/postgres" ] || die "postgresql-$pg_major installed, but $pg_bin/postgres is missing"
fi
command -v setpriv >/dev/null 2>&1 || die "setpriv (util-linux) is needed to run PostgreSQL as an unprivileged user"

# --- Patroni + psycopg (PyPI) ------------------------------------------------
if [ ! -x "$venv/bin/patroni" ] || [ ! -f "$venv/.complete" ]; then
  py=""
  # The system's Python first: the members run as an unprivileged user, who must be
  # able to reach the venv's base interpreter (a pyenv under /root is out of reach).
  for c in /usr/bin/python3 python3 python3.13 python3.12 python3.11 python3.10 python3.9; do
    if command -v "$c" >/dev/null 2>&1 && "$c" -c 'import sys, venv, ensurepip; sys.exit(0 if sys.version_info >= (3, 9) else 1)' 2>/dev/null; then
      py="$(command -v "$c")"; break
    fi
  done
  [ -n "$py" ] || die "no python3 >= 3.9 with the venv module (Debian: apt-get install python3-venv)"
  say "creating $venv with $py ($("$py" --version 2>&1))"
  rm -rf "$venv"
  mkdir -p "$cache_root"
  "$py" -m venv "$venv" >&2 || die "python -m venv failed (Debian: apt-get install python3-venv)"
  # patroni[etcd3]: its etcd3 DCS talks to etcd's v3 JSON gateway and needs python-etcd for its error types.
  "$venv/bin/pip" install --quiet --disable-pip-version-check --no-input \
    "patroni[etcd3]==$patroni_version" "psycopg[binary]==$psycopg_version" >&2 \
    || { rm -rf "$venv"; die "pip install patroni[etcd3]==$patroni_version psycopg[binary]==$psycopg_version failed (see above)"; }
  "$venv/bin/python" -c 'import patroni, psycopg' >&2 || { rm -rf "$venv"; die "the venv cannot import patroni and psycopg"; }
  # Readable by the unprivileged user the members run as (the cache may be under /root).
  chmod -R a+rX "$venv"
  touch "$venv/.complete"
fi

echo "pg_bin=$pg_bin"
echo "patroni=$venv/bin/patroni"
echo "patronictl=$venv/bin/patronictl"
echo "python=$venv/bin/python"
echo "venv=$venv"
