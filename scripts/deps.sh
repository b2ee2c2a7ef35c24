#!/usr/bin/env bash
# Installs the Debian packages the build and tests need, when missing.
# As root it runs apt-get; otherwise it prints the exact command to run.
set -euo pipefail
pkgs=(cmake make gcc g++ pkg-config libunwind-dev libdw-dev libelf-dev libzstd-dev
      libc6-dbg liblua5.4-dev libsqlite3-dev python3)
missing=()
for p in "${pkgs[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
    echo "heaptrail: missing build dependencies; run as root:" >&2
    echo "  apt-get update && apt-get install -y ${missing[*]}" >&2
    exit 1
fi
echo "heaptrail: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
