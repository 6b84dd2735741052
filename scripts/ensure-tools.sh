#!/usr/bin/env bash
# Installs, from Debian's packages, the command-line tools the tests and the demo need
# when they are missing: ensure-tools.sh COMMAND[:PACKAGE]... (PACKAGE defaults to COMMAND).
set -euo pipefail
missing=()
for tool in "$@"; do
  command -v "${tool%%:*}" >/dev/null || missing+=("${tool#*:}")
done
((${#missing[@]} == 0)) && exit 0
echo "Installing missing tools: ${missing[*]}" >&2
sudo=()
[[ $(id -u) -ne 0 ]] && sudo=(sudo)
"${sudo[@]}" apt-get update -q >&2
DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}" >&2
