#!/usr/bin/env bash
# Install what README's two commands need and this machine lacks, from Debian/Ubuntu
# packages: Python 3.11+ with venv, Java 17+, Maven, Prometheus (the metrics and alert
# tests run the real one). Run as root or with sudo; `--check` only lists what is missing
# (exit 1 when something is). Idempotent: installs nothing when all is there.
set -euo pipefail

check_only=0
[[ "${1:-}" == "--check" ]] && check_only=1

need=()
if ! python3 -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
  need+=(python3)
fi
if ! python3 -c 'import ensurepip, venv' 2>/dev/null; then
  need+=(python3-venv)
fi
java_version="$(java -version 2>&1 || true)"
if ! command -v java >/dev/null 2>&1 \
  || ! grep -qE 'version "(1[7-9]|[2-9][0-9])' <<<"$java_version"; then
  need+=(openjdk-17-jre-headless)
fi
command -v mvn >/dev/null 2>&1 || need+=(maven)
command -v prometheus >/dev/null 2>&1 || need+=(prometheus)

if ((${#need[@]} == 0)); then
  echo "prerequisites: all present (python3 >= 3.11 with venv, java >= 17, maven, prometheus)"
  exit 0
fi
echo "prerequisites missing: ${need[*]}"
((check_only)) && exit 1

sudo=()
if ((EUID != 0)); then
  command -v sudo >/dev/null 2>&1 || { echo "run as root (or install sudo)" >&2; exit 1; }
  sudo=(sudo)
fi
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -qq
"${sudo[@]}" apt-get install -y -qq --no-install-recommends "${need[@]}"
# Debian's prometheus package starts a system service on :9090; the tests start their own
# Prometheus on a free port, so the service is not needed (stop it to save memory).
if [[ " ${need[*]} " == *" prometheus "* ]] && command -v systemctl >/dev/null 2>&1; then
  "${sudo[@]}" systemctl disable --now prometheus >/dev/null 2>&1 || true
fi
echo "installed: ${need[*]}"
