#!/usr/bin/env bash
# Extracts the few files the project uses from Debian's linux-source-6.1
# tarball (checkpatch and its data, the kselftest harness) into a cache
# directory outside the repository, once.  Prints that directory.
set -euo pipefail
cache=${IVSHMEM_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/af_ivshmem}
tarball=$(ls -1 /usr/src/linux-source-6.1.tar.* 2>/dev/null | head -n1)
[ -n "$tarball" ] || { echo "ksrc: linux-source-6.1 is not installed" >&2; exit 1; }
dest=$cache/linux-source-6.1
stamp=$dest/.extracted-$(stat -c %Y "$tarball")
if [ ! -e "$stamp" ]; then
	mkdir -p "$cache"
	rm -rf "$dest"
	tar -C "$cache" -xf "$tarball" \
		linux-source-6.1/scripts/checkpatch.pl \
		linux-source-6.1/scripts/spelling.txt \
		linux-source-6.1/scripts/const_structs.checkpatch \
		linux-source-6.1/tools/testing/selftests/kselftest.h \
		linux-source-6.1/tools/testing/selftests/kselftest_harness.h
	touch "$stamp"
fi
echo "$dest"
