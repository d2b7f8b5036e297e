#!/usr/bin/env bash
# Installs the Debian packages the build, the lab and the tests need, if
# any is missing.  Idempotent; run by `make deps` (every other target
# depends on it).  `deps.sh kernel` adds what building a kernel from
# linux-source-6.1 needs (tools/build/debug-kernel.sh runs it).
set -euo pipefail

pkgs=(gcc make libc6-dev qemu-system-x86 qemu-utils linux-image-amd64
      linux-headers-amd64 linux-source-6.1 busybox-static kmod cpio sparse
      xz-utils perl python3 procps groff-base python3-docutils dkms libmnl-dev
      pkg-config iperf3 sockperf socat gnuplot-nox)
case ${1:-} in
'') ;;
kernel) pkgs+=(flex bison bc libelf-dev libssl-dev patch) ;;
*)
	echo "usage: $0 [kernel]" >&2
	exit 2
	;;
esac
missing=()
for p in "${pkgs[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null |
		grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "deps: installing ${missing[*]}"
if [ "$(id -u)" -ne 0 ]; then
	echo "deps: need root to install packages (or install them yourself)" >&2
	exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q --no-install-recommends "${missing[@]}"
