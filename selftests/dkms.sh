#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# Installation.  On the host, without touching the system: `make install`
# into a temporary DESTDIR puts exactly the expected files there and
# nothing in their real places, `make uninstall` removes them again, and
# the DKMS source tree (`make dkms-source`) builds the modules on its own.
# In one guest of the VM lab, where DKMS may change the kernel's module
# tree (the guest sees the host's / through a 9p overlay whose writes stay
# in the guest, so DKMS and the kernel headers are the host's and nothing
# reaches the host): `make dkms-install` registers, builds and installs
# the modules for the guest's kernel, `dkms status` says so, modprobe finds
# them under updates/dkms, loads it (the guest has an ivshmem-doorbell
# device) and unloads it, and `make dkms-remove` takes it all away.  The
# Debian package (`make deb`) holds the right files; installing it in the
# guest builds the modules through DKMS, and removing it takes all away.
# Building the module under TCG takes a few minutes.  Needs dkms on the
# host (`make deps`).  Prints TAP; exits non-zero on failure.
set -uo pipefail

TOP=$(cd "$(dirname "$0")/.." && pwd)
export IVSHMEM_LAB_DIR=${IVSHMEM_LAB_DIR:-/tmp/af_ivshmem-dkms}
# shellcheck source=selftests/guest_lib.sh
. "$TOP/selftests/guest_lib.sh"

VERSION=$(cat "$TOP/VERSION")
KDIR=$("$TOP/tools/build/kdir.sh")
KREL=$(sed -n 's/.*UTS_RELEASE "\(.*\)"/\1/p' "$KDIR/include/generated/utsrelease.h")
TMP=$(mktemp -d /tmp/af_ivshmem-dkms.XXXXXX)
trap 'rm -rf "$TMP"' EXIT

# make install into a staging directory.
expected="lib/modules/$KREL/extra/af_ivshmem.ko
lib/modules/$KREL/extra/af_ivshmem_diag.ko
usr/local/bin/ivshmem-demo
usr/local/bin/ivshmem-keys
usr/local/bin/ivshmem-nc
usr/local/bin/ivshmem-perf
usr/local/bin/ivshmem-run
usr/local/bin/ivss
usr/local/include/ivshmem.h
usr/local/include/linux/af_ivshmem.h
usr/local/include/linux/ivshmem_diag.h
usr/local/lib/af_ivshmem/libivshmem-preload.so
usr/local/sbin/ivshmem-server"
for m in "$TOP"/man/*.[1-8]; do
	expected+=$'\n'"usr/local/share/man/man${m##*.}/${m##*/}"
done
expected=$(sort <<<"$expected")
before=$(while read -r f; do [ -e "/$f" ] && echo "/$f"; done <<<"$expected")
if make -C "$TOP" install DESTDIR="$TMP/root" >"$TMP/install.log" 2>&1; then
	ok "make install DESTDIR=... succeeds"
else
	not_ok "make install DESTDIR=... succeeds" "$(tail -n 5 "$TMP/install.log")"
fi
expect "it installs the modules, tools, headers and man pages under DESTDIR" \
	"$expected" "$(cd "$TMP/root" && find . -type f | sed 's|^\./||' | sort)"
after=$(while read -r f; do [ -e "/$f" ] && echo "/$f"; done <<<"$expected")
expect "  ... and nothing in their places outside DESTDIR" "$before" "$after"
make -C "$TOP" uninstall DESTDIR="$TMP/root" >"$TMP/uninstall.log" 2>&1
expect "make uninstall DESTDIR=... removes every file" "" \
	"$(find "$TMP/root" -type f)"

# The DKMS tree on its own.
src=$TMP/dkms/usr/src/af_ivshmem-$VERSION
make -C "$TOP" dkms-source DESTDIR="$TMP/dkms" >"$TMP/source.log" 2>&1
# The tree as installed, before the build below adds its outputs.
src_files=$(cd "$src/.." && find "af_ivshmem-$VERSION" -type f | sed 's|^|usr/src/|')
expect "make dkms-source fills in PACKAGE_VERSION" "PACKAGE_VERSION=\"$VERSION\"" \
	"$(grep '^PACKAGE_VERSION=' "$src/dkms.conf" 2>&1)"
if make -C "$KDIR" M="$src/net/ivshmem" modules >"$TMP/build.log" 2>&1 &&
   [ -f "$src/net/ivshmem/af_ivshmem.ko" ] &&
   [ -f "$src/net/ivshmem/af_ivshmem_diag.ko" ]; then
	ok "the DKMS source tree builds the modules on its own"
else
	not_ok "the DKMS source tree builds the modules on its own" \
		"$(tail -n 5 "$TMP/build.log")"
fi

# The Debian package: what make install puts under PREFIX, under /usr,
# and the DKMS source tree instead of built modules.
deb=$(make -s -C "$TOP" deb 2>"$TMP/deb.log" | tail -n 1)
expect "make deb builds dist/af-ivshmem_VERSION_ARCH.deb" \
	"$TOP/dist/af-ivshmem_${VERSION}_$(dpkg --print-architecture).deb" "$deb"
expect "  ... named af-ivshmem $VERSION, depending on dkms and libmnl0" \
	"af-ivshmem $VERSION dkms, libc6, libmnl0" \
	"$(dpkg-deb -f "$deb" Package Version Depends 2>&1 | sed 's/^[A-Za-z]*: //' | paste -sd' ')"
deb_expected=$(grep -v '^lib/modules/' <<<"$expected" | sed 's|^usr/local/|usr/|'
	echo "$src_files")
expect "  ... holding the tools, headers, man pages and the DKMS source tree" \
	"$(sort <<<"$deb_expected")" \
	"$(dpkg-deb -c "$deb" | awk '$1 !~ /^d/ {sub(/^\.\//, "", $6); print $6}' | sort)"

# DKMS in a guest.
if ! command -v dkms >/dev/null; then
	not_ok "dkms is installed on the host (make deps)" "no dkms"
	echo "1..$n"
	exit 1
fi
lab_up "a guest starts" -n 1 --mode doorbell
# The lab's minimal init mounts devtmpfs, which has no /dev/fd; dkms uses
# bash's <(...) throughout and needs it (as any udev-managed system has).
run vm1 "[ -e /dev/fd ] || ln -s /proc/self/fd /dev/fd" >/dev/null
GREL=$(run vm1 "uname -r")
t0=$(date +%s)
out=$("$LAB" exec vm1 --timeout 1800 -- \
	"cd '$TOP' && make dkms-install >/tmp/dkms-install.log 2>&1 && echo installed ||
	tail -n 20 /tmp/dkms-install.log" 2>&1)
expect "make dkms-install in the guest ($(($(date +%s) - t0)) s)" installed "$out"
expect "dkms status: installed for the guest's kernel" \
	"af_ivshmem/$VERSION, $GREL, x86_64: installed" \
	"$(run vm1 "dkms status af_ivshmem")"
expect "modinfo finds the modules under updates/dkms" \
	"/lib/modules/$GREL/updates/dkms/af_ivshmem.ko
/lib/modules/$GREL/updates/dkms/af_ivshmem_diag.ko" \
	"$(run vm1 "modinfo -n af_ivshmem af_ivshmem_diag")"
expect "modprobe loads it" yes \
	"$(run vm1 "modprobe af_ivshmem && lsmod | grep -q '^af_ivshmem ' && echo yes")"
expect_match "  ... and it drives the guest's ivshmem-doorbell device" \
	"region 0: " "$(run vm1 "dmesg | grep 'doorbell mode'")"
expect "modprobe -r unloads it" gone \
	"$(run vm1 "modprobe -r af_ivshmem && ! lsmod | grep -q '^af_ivshmem ' && echo gone")"
expect "modprobe af_ivshmem_diag loads af_ivshmem too (depmod knows)" yes \
	"$(run vm1 "modprobe af_ivshmem_diag && lsmod | grep -q '^af_ivshmem ' && echo yes")"
expect "modprobe -r af_ivshmem_diag unloads both" gone \
	"$(run vm1 "modprobe -r af_ivshmem_diag && ! lsmod | grep -q '^af_ivshmem' && echo gone")"
out=$(run vm1 "cd '$TOP' && make dkms-remove >/tmp/dkms-remove.log 2>&1 && echo removed ||
	tail -n 20 /tmp/dkms-remove.log")
expect "make dkms-remove in the guest" removed "$out"
expect "dkms status no longer lists it" "" "$(run vm1 "dkms status af_ivshmem")"
expect "modinfo no longer finds it, its files and sources are gone" \
	"not found" \
	"$(run vm1 "modinfo -n af_ivshmem >/dev/null 2>&1 ||
		modinfo -n af_ivshmem_diag >/dev/null 2>&1 ||
		[ -e /lib/modules/$GREL/updates/dkms/af_ivshmem.ko ] ||
		[ -e /lib/modules/$GREL/updates/dkms/af_ivshmem_diag.ko ] ||
		[ -e /usr/src/af_ivshmem-$VERSION ] ||
		[ -e /var/lib/dkms/af_ivshmem ] || echo not found")"

# The package in the same guest: installing it builds and installs the
# modules through DKMS; removing it takes them and the tools away.
# man-db's trigger would rebuild the whole manual database, which takes
# minutes under TCG: the guest turns its automatic updates off.
run vm1 "rm -f /var/lib/man-db/auto-update" >/dev/null
t0=$(date +%s)
out=$("$LAB" exec vm1 --timeout 1800 -- \
	"dpkg -i '$deb' >/tmp/deb-install.log 2>&1 && echo installed ||
	tail -n 20 /tmp/deb-install.log" 2>&1)
expect "dpkg -i af-ivshmem in the guest ($(($(date +%s) - t0)) s)" installed "$out"
expect "  ... DKMS built and installed the modules for the guest's kernel" \
	"af_ivshmem/$VERSION, $GREL, x86_64: installed" \
	"$(run vm1 "dkms status af_ivshmem")"
expect "  ... modprobe af_ivshmem_diag loads both, ivss lists no socket" \
	"loaded" "$(run vm1 "modprobe af_ivshmem_diag && /usr/bin/ivss -a -H &&
		lsmod | grep -q '^af_ivshmem ' && echo loaded")"
expect "dpkg -r af-ivshmem unloaded: modules, DKMS tree and tools gone" \
	"removed" "$(run vm1 "modprobe -r af_ivshmem_diag &&
		dpkg -r af-ivshmem >/tmp/deb-remove.log 2>&1 &&
		[ -z \"\$(dkms status af_ivshmem)\" ] &&
		! modinfo -n af_ivshmem >/dev/null 2>&1 &&
		[ ! -e /usr/src/af_ivshmem-$VERSION ] && [ ! -e /usr/bin/ivss ] &&
		echo removed || tail -n 20 /tmp/deb-remove.log")"
if "$LAB" stop >/dev/null 2>&1; then ok "guest kernel log is clean"
else not_ok "guest kernel log is clean" "see $IVSHMEM_LAB_DIR/vm1/console.log"; fi
echo "1..$n"
[ "$failures" -eq 0 ]
