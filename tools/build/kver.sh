#!/usr/bin/env bash
# Prints the newest kernel version that has both an image in /boot (to boot
# guests) and headers in /usr/src (to build the module against).
set -euo pipefail
for img in $(ls -1 /boot/vmlinuz-* 2>/dev/null | sort -Vr); do
	v=${img#/boot/vmlinuz-}
	if [ -d "/usr/src/linux-headers-$v" ] && [ -d "/lib/modules/$v" ]; then
		echo "$v"
		exit 0
	fi
done
echo "kver: no kernel with both /boot/vmlinuz-V and /usr/src/linux-headers-V" >&2
exit 1
