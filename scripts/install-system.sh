#!/usr/bin/env bash
# Installs the Debian packages the lab and the tests run for real, when any is missing.
set -euo pipefail
missing=()
for package in "$@"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" \
        || missing+=("$package")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
    echo "install-system: missing Debian packages: ${missing[*]} (run as root, or install them)" >&2
    exit 1
fi
echo "install-system: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq "${missing[@]}" >/dev/null
# The packaged daemons must not run system-wide: the lab and the tests start their own.
for unit in bird named zookeeper nginx haproxy prometheus prometheus-node-exporter; do
    service "$unit" stop >/dev/null 2>&1 || true
done
