#!/usr/bin/env bash
# Installs the system packages that portcullis's tests need, each only when missing:
# the Docker Engine, gVisor (runsc), a static busybox for test images, openssl, curl, and
# Python's `packaging` (the reference for the PEP 440 differential test) and Python's
# Prometheus client (its text-format parser reads the gateway's /metrics in the tests).
set -euo pipefail

need=()
have_pkg() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }
for pkg in docker.io runsc busybox-static openssl curl python3-packaging python3-prometheus-client; do
  have_pkg "$pkg" || need+=("$pkg")
done

if [ "${#need[@]}" -eq 0 ]; then
  echo "install-deps: all present"
  exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
  echo "install-deps: missing ${need[*]}; run as root to install them" >&2
  exit 1
fi

echo "install-deps: installing ${need[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${need[@]}"
