#!/usr/bin/env bash
# Starts dockerd with gVisor registered as the "runsc" runtime, unless an engine already
# answers, and waits until it does. runsc needs --network=host on this kind of machine:
# with its default network mode it fails with "cannot run with network enabled in root
# network namespace".
set -euo pipefail

RUNSC="$(command -v runsc || true)"
if [ -z "$RUNSC" ]; then
  echo "start-docker: runsc not found; run scripts/install-deps.sh" >&2
  exit 1
fi

mkdir -p /etc/docker
node - "$RUNSC" <<'JS'
const fs = require("node:fs");
const path = "/etc/docker/daemon.json";
let cfg = {};
try { cfg = JSON.parse(fs.readFileSync(path, "utf8")); } catch { cfg = {}; }
cfg.runtimes = cfg.runtimes || {};
cfg.runtimes.runsc = { path: process.argv[2], runtimeArgs: ["--network=host"] };
fs.writeFileSync(path, JSON.stringify(cfg, null, 2) + "\n");
JS

if docker version >/dev/null 2>&1; then
  if docker info --format '{{json .Runtimes}}' | grep -q runsc; then
    echo "start-docker: engine already running with runsc"
    exit 0
  fi
  echo "start-docker: engine running without runsc; reloading its configuration"
  kill -HUP "$(cat /var/run/docker.pid)"
else
  echo "start-docker: starting dockerd"
  nohup dockerd >/var/log/portcullis-dockerd.log 2>&1 &
fi

for _ in $(seq 1 60); do
  if docker info --format '{{json .Runtimes}}' 2>/dev/null | grep -q runsc; then
    docker version --format 'start-docker: engine {{.Server.Version}} (API {{.Server.APIVersion}}) ready, runsc registered'
    exit 0
  fi
  sleep 1
done
echo "start-docker: engine did not answer within 60 s" >&2
tail -n 40 /var/log/portcullis-dockerd.log >&2 || true
exit 1
