#!/usr/bin/env bash
# Builds a small demo image, local/hello:1, from the static busybox of Debian's
# busybox-static package (no registry needed), running as 10001:10001, and prints its
# image id (sha256:…), which a manifest can pin as local/hello@sha256:…. Its program
# greets, marks itself ready in /tmp/ready (what the example's healthcheck tests) and
# waits; it exits cleanly on SIGTERM. The image carries busybox-static's dpkg status
# entry, as this machine installed it, and this machine's /etc/os-release, so that the
# image scanner finds the one Debian package it holds (an image where the scanner finds
# no package is refused). Usage: demo-image.sh [TAG] [--old-zlib] (default local/hello:1).
# --old-zlib also records zlib1g 1:1.2.11.dfsg-4 (source zlib) in the dpkg status, a
# version Debian lists as affected by CVE-2022-37434: the scan walkthrough's image with a
# known critical finding. Only the record is added (the library's files are not in the
# image): the scanner reads the package database, as it does in any Debian image.
set -euo pipefail
TAG="${1:-local/hello:1}"
OLD_ZLIB="${2:-}"
if [ -n "$OLD_ZLIB" ] && [ "$OLD_ZLIB" != "--old-zlib" ]; then
  echo "demo-image: usage: demo-image.sh [TAG] [--old-zlib]" >&2
  exit 2
fi
BUSYBOX=/bin/busybox
if [ ! -x "$BUSYBOX" ]; then
  echo "demo-image: $BUSYBOX missing; install busybox-static (scripts/install-deps.sh)" >&2
  exit 1
fi
ROOT="$(mktemp -d)"
trap 'rm -rf "$ROOT"' EXIT
mkdir -p "$ROOT"/bin "$ROOT"/etc "$ROOT"/proc "$ROOT"/sys "$ROOT"/dev "$ROOT"/tmp "$ROOT"/var/lib/dpkg
chmod 1777 "$ROOT"/tmp
cp "$BUSYBOX" "$ROOT"/bin/busybox
for a in sh cat echo hostname id ls sleep test touch; do ln -s busybox "$ROOT/bin/$a"; done
# The package's own status paragraph (Package, Version, Source, ...), for the scanner.
dpkg-query --status busybox-static > "$ROOT"/var/lib/dpkg/status
cat /etc/os-release > "$ROOT"/etc/os-release
if [ -n "$OLD_ZLIB" ]; then
  cat >> "$ROOT"/var/lib/dpkg/status <<'DPKG'

Package: zlib1g
Status: install ok installed
Priority: required
Section: libs
Installed-Size: 168
Maintainer: Mark Brown <broonie@debian.org>
Architecture: amd64
Multi-Arch: same
Source: zlib
Version: 1:1.2.11.dfsg-4
Description: compression library - runtime
DPKG
fi
cat > "$ROOT"/bin/hello <<'SH'
#!/bin/sh
trap 'exit 0' TERM
echo "${GREETING:-hello} from $(hostname), uid $(id -u)"
touch /tmp/ready
while true; do sleep 1; done
SH
chmod 755 "$ROOT"/bin/hello
tar --numeric-owner --owner=0 --group=0 -C "$ROOT" -cf - . |
  docker import --change 'USER 10001:10001' --change 'CMD ["/bin/hello"]' - "$TAG" >/dev/null
docker image inspect --format '{{.Id}}' "$TAG"
