#!/usr/bin/env bash
# run-in-root.sh ROOTFS HOSTDIR UID:GID ARGS...: what a container runtime does with
# the image, by hand: ARGS run in a new mount and PID namespace (ARGS[0] is PID 1),
# chrooted into ROOTFS mounted read-only, as UID:GID, with /proc, /dev, a tmpfs
# on /tmp, and HOSTDIR bind-mounted (writable) at /tmp/host. The network is the
# host's (the test control plane is on loopback). Root is needed for the mounts.
set -euo pipefail
ROOTFS="$1" HOSTDIR="$2" USERSPEC="$3"
shift 3
# The environment is the image's (the caller passes it); the host's tools by full path.
IMAGE_PATH="${PATH:-/usr/local/bin:/usr/bin:/bin}"
exec /usr/bin/unshare --mount --pid --fork --propagation private -- /bin/sh -c '
  set -e
  R="$1" H="$2" U="$3" P="$4"; shift 4
  PATH=/usr/sbin:/usr/bin:/sbin:/bin
  mount --bind "$R" "$R"
  mount -o remount,bind,ro "$R"
  mount -t proc proc "$R/proc"
  mount --rbind /dev "$R/dev"
  mount -t tmpfs -o size=64m,mode=1777 tmpfs "$R/tmp"
  mkdir "$R/tmp/host"
  mount --bind "$H" "$R/tmp/host"
  PATH="$P" exec /usr/sbin/chroot --userspec="$U" "$R" "$@"
' run-in-root "$ROOTFS" "$HOSTDIR" "$USERSPEC" "$IMAGE_PATH" "$@"
