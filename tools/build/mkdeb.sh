#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# mkdeb.sh OUTDIR: builds OUTDIR/af-ivshmem_VERSION_ARCH.deb from a built
# tree (`make deb` builds the tools first).  The package holds the tools,
# headers and man pages under /usr and the modules' DKMS source tree under
# /usr/src/af_ivshmem-VERSION; its maintainer scripts register the modules
# with DKMS, build and install them for the running kernel (when its
# headers are there; DKMS builds them for every kernel installed later),
# and remove them again.
set -euo pipefail

TOP=$(cd "$(dirname "$0")/../.." && pwd)
OUT=${1:?usage: mkdeb.sh OUTDIR}
VERSION=$(cat "$TOP/VERSION")
ARCH=$(dpkg --print-architecture)
STAGE=$(mktemp -d /tmp/af_ivshmem-deb.XXXXXX)
trap 'rm -rf "$STAGE"' EXIT

make -s -C "$TOP" install-tools DESTDIR="$STAGE" PREFIX=/usr >/dev/null
make -s -C "$TOP" dkms-source DESTDIR="$STAGE" >/dev/null
mkdir -p "$STAGE/DEBIAN"
cat >"$STAGE/DEBIAN/control" <<CONTROL
Package: af-ivshmem
Version: $VERSION
Architecture: $ARCH
Maintainer: AF_IVSHMEM developers <af-ivshmem@localhost>
Depends: dkms, libc6, libmnl0
Section: kernel
Priority: optional
Installed-Size: $(du -sk --exclude=DEBIAN "$STAGE" | cut -f1)
Description: sockets between virtual machines over QEMU IVSHMEM
 The af_ivshmem kernel module (built by DKMS) adds the AF_IVSHMEM socket
 family: stream, seqpacket and datagram sockets between guests that share
 an IVSHMEM region.  Also: its sock_diag module af_ivshmem_diag, ivss (ss
 for AF_IVSHMEM), ivshmem-server (the host side), ivshmem-nc, ivshmem-perf,
 ivshmem-demo, the uapi headers and the manual pages.
CONTROL
cat >"$STAGE/DEBIAN/postinst" <<POSTINST
#!/bin/sh
set -e
if [ "\$1" = configure ]; then
	dkms status -m af_ivshmem -v $VERSION | grep -q . ||
		dkms add -m af_ivshmem -v $VERSION
	if [ -e "/lib/modules/\$(uname -r)/build" ]; then
		dkms install -m af_ivshmem -v $VERSION -k "\$(uname -r)"
	else
		echo "af-ivshmem: no headers for \$(uname -r); DKMS builds the modules once they are installed"
	fi
fi
POSTINST
cat >"$STAGE/DEBIAN/prerm" <<PRERM
#!/bin/sh
set -e
if [ "\$1" = remove ] || [ "\$1" = upgrade ] || [ "\$1" = deconfigure ]; then
	if dkms status -m af_ivshmem -v $VERSION | grep -q .; then
		dkms remove -m af_ivshmem -v $VERSION --all
	fi
fi
PRERM
chmod 0755 "$STAGE/DEBIAN/postinst" "$STAGE/DEBIAN/prerm"
mkdir -p "$OUT"
dpkg-deb --root-owner-group -Zxz --build "$STAGE" \
	"$OUT/af-ivshmem_${VERSION}_$ARCH.deb" >/dev/null
echo "$OUT/af-ivshmem_${VERSION}_$ARCH.deb"
