#!/usr/bin/env bash
# Prints the kernel build directory to build the module against: $KDIR if
# set, else the headers of the newest kernel with both image and headers.
set -euo pipefail
if [ -n "${KDIR:-}" ]; then
	echo "$KDIR"
	exit 0
fi
v=$("$(dirname "$0")/kver.sh")
echo "/usr/src/linux-headers-$v"
