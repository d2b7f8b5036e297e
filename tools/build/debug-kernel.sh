#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# Builds, once per machine, a guest kernel with the kernel's runtime
# checkers (KASAN, lockdep, atomic-sleep, kmemleak, debugobjects, UBSAN)
# from Debian's linux-source-6.1 tarball, for `make check-debug`.
#
#   tools/build/debug-kernel.sh          build if needed; print the tree
#   tools/build/debug-kernel.sh --print  print the tree; fail if not built
#
# The build lives outside the repository, in
#   ${IVSHMEM_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/af_ivshmem}/kernel-HASH/
# where HASH covers the tarball and the configuration below:
#   linux-source-6.1/         the kernel tree (KDIR for the module)
#   linux-source-6.1/arch/x86/boot/bzImage
#   mod/lib/modules/VERSION/  its modules (modules_install)
#   build.log, build-seconds  the log and how long the build took
#
# It starts from defconfig + kvm_guest.config (not Debian's full
# configuration: that would take hours), makes built-in what the lab
# needs, turns off large subsystems the lab never uses, and adds the
# checkers.  Nice 19, -j$(nproc) unless IVSHMEM_DEBUG_JOBS is set.
set -euo pipefail

SELF=$(readlink -f -- "$0")
cache=${IVSHMEM_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/af_ivshmem}
tarball=$(ls -1 /usr/src/linux-source-6.1.tar.* 2>/dev/null | head -n1)
[ -n "$tarball" ] || {
	echo "debug-kernel: linux-source-6.1 is not installed" >&2
	exit 1
}

# The configuration on top of defconfig + kvm_guest.config.
fragment() {
	cat <<'CFG'
# What the lab's guests need, built in (the initramfs skips built-ins).
CONFIG_MODULES=y
CONFIG_MODULE_UNLOAD=y
CONFIG_MODVERSIONS=n
CONFIG_MODULE_SIG=n
CONFIG_PCI=y
CONFIG_PCI_MSI=y
CONFIG_VIRTIO=y
CONFIG_VIRTIO_PCI=y
CONFIG_VIRTIO_NET=y
CONFIG_NET_9P=y
CONFIG_NET_9P_VIRTIO=y
CONFIG_9P_FS=y
CONFIG_9P_FS_POSIX_ACL=y
CONFIG_NETWORK_FILESYSTEMS=y
CONFIG_OVERLAY_FS=y
CONFIG_TMPFS=y
CONFIG_TMPFS_POSIX_ACL=y
CONFIG_DEVTMPFS=y
CONFIG_DEBUG_FS=y
CONFIG_BLK_DEV_INITRD=y
CONFIG_RD_GZIP=y
CONFIG_UNIX=y
CONFIG_INET=y
CONFIG_IPV6=y
CONFIG_UNIX_DIAG=y
CONFIG_INET_DIAG=y
CONFIG_PACKET_DIAG=y
CONFIG_NETLINK_DIAG=y
CONFIG_VSOCKETS=y
CONFIG_VIRTIO_VSOCKETS=y
CONFIG_VSOCKETS_DIAG=y
CONFIG_FTRACE=y
CONFIG_FUNCTION_TRACER=n
CONFIG_KEYS=y
CONFIG_CRYPTO_AES=y
CONFIG_CRYPTO_GCM=y
CONFIG_CRYPTO_GHASH=y
CONFIG_CRYPTO_HMAC=y
CONFIG_CRYPTO_SHA256=y
CONFIG_CRYPTO_CHACHA20POLY1305=y
CONFIG_CRYPTO_USER_API_HASH=y
CONFIG_CRYPTO_USER_API_AEAD=y
# Time: no debug info, none of the big drivers a guest never sees.
CONFIG_DEBUG_INFO_NONE=y
CONFIG_DEBUG_INFO_DWARF_TOOLCHAIN_DEFAULT=n
CONFIG_DRM=n
CONFIG_SOUND=n
CONFIG_WIRELESS=n
CONFIG_WLAN=n
CONFIG_CFG80211=n
CONFIG_MAC80211=n
CONFIG_USB_SUPPORT=n
CONFIG_NFS_FS=n
CONFIG_NFSD=n
CONFIG_NETFILTER=n
CONFIG_AGP=n
CONFIG_HIBERNATION=n
CONFIG_SECURITY_SELINUX=n
# The checkers.
CONFIG_KASAN=y
CONFIG_KASAN_GENERIC=y
CONFIG_KASAN_INLINE=y
CONFIG_KASAN_VMALLOC=n
CONFIG_PROVE_LOCKING=y
CONFIG_DEBUG_ATOMIC_SLEEP=y
CONFIG_DEBUG_KMEMLEAK=y
CONFIG_DEBUG_KMEMLEAK_MEM_POOL_SIZE=40000
CONFIG_DEBUG_KMEMLEAK_AUTO_SCAN=n
CONFIG_DEBUG_KMEMLEAK_DEFAULT_OFF=n
CONFIG_DEBUG_OBJECTS=y
CONFIG_DEBUG_OBJECTS_FREE=y
CONFIG_DEBUG_OBJECTS_TIMERS=y
CONFIG_DEBUG_OBJECTS_WORK=y
CONFIG_DEBUG_OBJECTS_RCU_HEAD=y
CONFIG_DEBUG_OBJECTS_ENABLE_DEFAULT=1
CONFIG_UBSAN=y
CONFIG_UBSAN_BOUNDS=y
CONFIG_UBSAN_SHIFT=y
CONFIG_UBSAN_DIV_ZERO=y
CONFIG_UBSAN_BOOL=y
CONFIG_UBSAN_ENUM=y
CONFIG_UBSAN_ALIGNMENT=n
CONFIG_UBSAN_SANITIZE_ALL=y
CONFIG_UBSAN_TRAP=n
CONFIG_DEBUG_LIST=y
CONFIG_DETECT_HUNG_TASK=y
CONFIG_SOFTLOCKUP_DETECTOR=y
CONFIG_PANIC_ON_OOPS=n
CONFIG_LOCALVERSION="-afivshmem-debug"
CONFIG_LOCALVERSION_AUTO=n
CFG
}

# The configuration and the tarball name the build (not this script: a
# change to its comments must not cost a rebuild).
hash=$({
	fragment
	stat -c '%s %Y' "$tarball"
} | sha256sum | cut -c1-12)
dir=$cache/kernel-$hash
tree=$dir/linux-source-6.1

# Amendments for the lab (debug-kernel-patches/, see each file's head):
# source patches (*.patch) and configuration fragments (*.config).  Each
# is applied once; a tree built before an amendment was added gets it and
# an incremental rebuild (make rebuilds only what an option touches),
# not the hour-long build a change to the fragment above costs.
patchdir=$(dirname "$SELF")/debug-kernel-patches
marker() {	# marker FILE: the file in $dir that says FILE was applied
	case $1 in
	*.patch) echo "$dir/.patch-$(basename "$1" .patch)" ;;
	*) echo "$dir/.config-$(basename "$1" .config)" ;;
	esac
}
pending_patches() {
	local p
	for p in "$patchdir"/*.patch "$patchdir"/*.config; do
		[ -e "$p" ] || continue
		[ -e "$(marker "$p")" ] || echo "$p"
	done
}
built() {
	[ -e "$dir/.done" ] && [ -z "$(pending_patches)" ]
}

if [ "${1:-}" = --print ]; then
	built || {
		echo "debug-kernel: not built yet ($dir); run $SELF" >&2
		exit 1
	}
	echo "$tree"
	exit 0
fi
if built; then
	echo "$tree"
	exit 0
fi

# flex, bison, libelf and the rest a kernel build needs (not make check).
"$(dirname "$SELF")/deps.sh" kernel
mkdir -p "$dir"
exec 9>"$dir/.lock"
flock 9
if built; then
	echo "$tree"
	exit 0
fi
# checks FRAGMENT: every option FRAGMENT asks for took (or is off) in
# .config (merge_config's check).
checks() {
	local missing=0 line opt val

	while IFS= read -r line; do
		case $line in CONFIG_*=*) ;; *) continue ;; esac
		opt=${line%%=*}
		val=${line#*=}
		if [ "$val" = n ]; then
			! grep -q "^$opt=" .config || { echo "still set: $line"; missing=1; }
		else
			grep -qx "$opt=$val" .config || { echo "not taken: $line"; missing=1; }
		fi
	done <"$1"
	[ $missing -eq 0 ] || echo "debug-kernel: warning: options above differ"
}

# Writes .config in the tree (cwd): defconfig + kvm_guest.config + the
# fragment.
configure() {
	make -s defconfig
	make -s kvm_guest.config
	scripts/kconfig/merge_config.sh -m .config "$dir/debug.config" >/dev/null
	make -s olddefconfig
	checks "$dir/debug.config"
}

jobs=${IVSHMEM_DEBUG_JOBS:-$(nproc)}
log=$dir/build.log
start=$(date +%s)
# A subshell with its own errexit (a `{ } || ...` list would turn it off):
# any failed step fails the build.
set +e
(
	set -e
	echo "debug-kernel: building in $dir (log $log), started $(date)"
	if [ ! -e "$dir/.extracted" ]; then
		rm -rf "$tree" "$dir"/.patch-* "$dir"/.config-*
		tar -C "$dir" -xf "$tarball"
		touch "$dir/.extracted"
	fi
	for p in $(pending_patches); do
		[[ $p == *.patch ]] || continue
		echo "debug-kernel: applying $(basename "$p")"
		patch -d "$tree" -p1 --forward <"$p"
		touch "$(marker "$p")"
	done
	fragment >"$dir/debug.config"
	cd "$tree"
	if [ -e "$dir/.done" ]; then
		# Built before: only amendments are new, make rebuilds what
		# they touch.
		rm -f "$dir/.done"
	else
		configure
	fi
	for p in $(pending_patches); do
		[[ $p == *.config ]] || continue
		echo "debug-kernel: merging $(basename "$p")"
		scripts/kconfig/merge_config.sh -m .config "$p" >/dev/null
		make -s olddefconfig
		checks "$p"
		touch "$(marker "$p")"
	done
	nice -n 19 make -j"$jobs" bzImage modules
	rm -rf "$dir/mod"
	make -s INSTALL_MOD_PATH="$dir/mod" modules_install
	end=$(date +%s)
	echo $((end - start)) >"$dir/build-seconds"
	echo "debug-kernel: built in $((end - start)) s with -j$jobs on $(nproc) CPUs"
) >>"$log" 2>&1
rc=$?
set -e
if [ $rc -ne 0 ]; then
	echo "debug-kernel: build failed, see $log" >&2
	exit 1
fi
touch "$dir/.done"
echo "$tree"
