# SPDX-License-Identifier: GPL-2.0
#
# AF_IVSHMEM: top-level build.
#
#   make          build the module, the tools and the tests
#   make run      boot two guests and show a message and a bulk transfer
#   make check    build, lint and run every test (host and guests)
#   make check-debug  make check and a 10-minute soak on a guest kernel with
#                 KASAN, lockdep, kmemleak, debugobjects and UBSAN (built
#                 once into ~/.cache/af_ivshmem: over an hour the first time)
#   make ivss-test  the ivss parser and printer, offline (TAP)
#   make bench    the benchmark suite: every transport side by side
#   make bench-latency / bench-rebalance   the older, single benchmarks
#   make install  the modules (modules_install), tools, headers, man pages
#   make dkms-install / dkms-remove   register the modules with DKMS
#   make deb      a Debian package: tools, and the modules through DKMS
#
# KDIR=/path/to/kernel/build overrides the kernel the module is built for
# (default: the newest Debian kernel with both image and headers).
# install and uninstall honour DESTDIR, PREFIX (/usr/local), INSTALL_MOD_PATH
# and INSTALL_MOD_DIR (extra); dkms-* build for DKMS_KERNEL (default: the
# running kernel).

TOP := $(CURDIR)
# Found after `make deps` has installed the headers; KDIR= overrides.
KDIR_OF = $$(KDIR="$(KDIR)" $(TOP)/tools/build/kdir.sh)
MODDIR := $(TOP)/net/ivshmem
MODULE := $(MODDIR)/af_ivshmem.ko

CC ?= cc
USER_CFLAGS := -O2 -g -std=gnu11 -Wall -Wextra -Werror \
	-I$(TOP)/include/uapi -D_GNU_SOURCE
KSRC = $(shell $(TOP)/tools/build/ksrc.sh)

DEMO := tools/ivshmem-demo/ivshmem-demo
NC := tools/ivshmem-nc/ivshmem-nc
KEYS := tools/ivshmem-keys/ivshmem-keys
IVSS := tools/ivss/ivss
HOSTILE := tools/ivshmem-hostile/ivshmem-hostile
PRELOAD := tools/ivshmem-run/libivshmem-preload.so
PERF := tools/ivshmem-perf/ivshmem-perf
TESTS := selftests/ivshmem_test selftests/ivshmem_peerd selftests/ivshmem_stream \
	selftests/ivshmem_pingpong selftests/ivshmem_conformance \
	selftests/ivshmem_sockets selftests/ivshmem_churn selftests/ivss_test \
	selftests/ivshmem_resize selftests/ivshmem_seqmsg \
	selftests/ivshmem_fuzz selftests/ivshmem_soak
# ivss talks netlink through libmnl (libmnl-dev, installed by make deps).
MNL_CFLAGS = $(shell pkg-config --cflags libmnl 2>/dev/null)
MNL_LIBS = $(shell pkg-config --libs libmnl 2>/dev/null || echo -lmnl)
IVSS_DEPS := tools/ivss/ivss.c tools/lib/ivshmem.h \
	include/uapi/linux/af_ivshmem.h include/uapi/linux/ivshmem_diag.h
CONFORMANCE_SOURCES := $(addprefix selftests/conformance/,main.c stream.c \
	seqpacket.c dgram.c)
UAPI_HEADERS := include/uapi/linux/af_ivshmem.h include/uapi/linux/ivshmem_diag.h
KERNEL_SOURCES := $(filter-out %.mod.c,$(wildcard net/ivshmem/*.c net/ivshmem/*.h)) \
	$(UAPI_HEADERS)

VERSION := $(shell cat $(TOP)/VERSION)
PREFIX ?= /usr/local
BINDIR ?= $(PREFIX)/bin
SBINDIR ?= $(PREFIX)/sbin
INCLUDEDIR ?= $(PREFIX)/include
MANDIR ?= $(PREFIX)/share/man
LIBDIR ?= $(PREFIX)/lib
# ivshmem-run's preload library.
PRELOAD_DIR = $(LIBDIR)/af_ivshmem
INSTALL_MOD_DIR ?= extra
# Root of /lib/modules for modules_install; empty means the running system.
MOD_ROOT = $(DESTDIR)$(INSTALL_MOD_PATH)
# The release of the kernel in KDIR, as its modules directory is named.
KREL_OF = $$(sed -n 's/.*UTS_RELEASE "\(.*\)"/\1/p' \
	"$(KDIR_OF)/include/generated/utsrelease.h")
MAN_PAGES := $(wildcard man/*.[1-8])
SERVER := tools/ivshmem-server/ivshmem-server
# What DKMS needs to build the module on its own: /usr/src/af_ivshmem-VERSION.
DKMS_SRC := /usr/src/af_ivshmem-$(VERSION)
DKMS_MOD := -m af_ivshmem -v $(VERSION)
DKMS_K = $(if $(DKMS_KERNEL),-k $(DKMS_KERNEL))

.PHONY: all deps module tools selftests check check-debug run bench bench-latency \
	bench-rebalance lint sparse deb \
	install-modules install-tools \
	checkpatch docs clean install uninstall dkms-source dkms-install \
	dkms-remove ivss-test

all: module tools selftests

deps:
	@$(TOP)/tools/build/deps.sh

module: deps
	$(MAKE) -C "$(KDIR_OF)" M=$(MODDIR) W=1 modules

tools: deps $(DEMO) $(NC) $(IVSS) $(PRELOAD) $(PERF) $(HOSTILE) $(KEYS)
	$(MAKE) -C tools/ivshmem-server

tools/%: tools/%.c tools/lib/ivshmem.h include/uapi/linux/af_ivshmem.h
	$(CC) $(USER_CFLAGS) -o $@ $<

$(IVSS): $(IVSS_DEPS)
	$(CC) $(USER_CFLAGS) $(MNL_CFLAGS) -o $@ $< $(MNL_LIBS)

# LD_PRELOAD library of ivshmem-run: TCP programs over AF_IVSHMEM.
$(PRELOAD): tools/ivshmem-run/preload.c include/uapi/linux/af_ivshmem.h
	$(CC) $(USER_CFLAGS) -fPIC -shared -o $@ $< -ldl -lpthread

# The benchmark: threads for parallel streams and the server.
$(PERF): tools/ivshmem-perf/ivshmem-perf.c tools/lib/ivshmem.h \
		include/uapi/linux/af_ivshmem.h
	$(CC) $(USER_CFLAGS) -o $@ $< -lpthread

selftests: deps $(TESTS)

selftests/ivshmem_peerd selftests/ivshmem_stream selftests/ivshmem_pingpong \
		selftests/ivshmem_sockets selftests/ivshmem_churn \
		selftests/ivshmem_resize selftests/ivshmem_seqmsg \
		selftests/ivshmem_fuzz selftests/ivshmem_soak: %: %.c \
		selftests/ivshmem_util.h tools/lib/ivshmem.h \
		include/uapi/linux/af_ivshmem.h
	$(CC) $(USER_CFLAGS) -o $@ $< -lpthread

selftests/ivshmem_test: selftests/ivshmem_test.c selftests/ivshmem_util.h \
		tools/lib/ivshmem.h include/uapi/linux/af_ivshmem.h
	$(CC) $(USER_CFLAGS) -Wno-unused-parameter -Wno-sign-compare \
		-I$(KSRC)/tools/testing/selftests -o $@ $< -lpthread

# ivss's parsing and printing on hand-built netlink replies: no kernel.
selftests/ivss_test: selftests/ivss_test.c $(IVSS_DEPS)
	$(CC) $(USER_CFLAGS) $(MNL_CFLAGS) -o $@ $< $(MNL_LIBS)

ivss-test: deps selftests/ivss_test
	selftests/ivss_test

selftests/ivshmem_conformance: $(CONFORMANCE_SOURCES) \
		selftests/conformance/conformance.h tools/lib/ivshmem.h \
		include/uapi/linux/af_ivshmem.h
	$(CC) $(USER_CFLAGS) -o $@ $(CONFORMANCE_SOURCES) -lpthread

# Kernel coding style and static checks on the module and the uapi header.
checkpatch: deps
	$(KSRC)/scripts/checkpatch.pl --strict --no-tree --terse \
		--ignore SPDX_LICENSE_TAG,FILE_PATH_CHANGES -f $(KERNEL_SOURCES)

sparse: deps
	$(MAKE) -C "$(KDIR_OF)" M=$(MODDIR) C=2 W=1 modules

# The design document and the manual pages render without a warning.
docs: deps
	python3 -m docutils --halt=warning Documentation/networking/af_ivshmem.rst /dev/null
	for m in man/*.[1-8]; do groff -man -ww -z "$$m" || exit 1; done

lint: checkpatch sparse docs

check: all
	@$(TOP)/selftests/run.sh

# The debug kernel's tree is KDIR for this target's module build (the
# script builds the module itself).
check-debug: deps tools selftests
	@$(TOP)/selftests/check-debug.sh

run: all
	@$(TOP)/tools/vm/demo.sh

# Benchmarks (not tests).  bench: ivshmem-perf over AF_IVSHMEM (doorbell,
# polling), TCP between guests, TCP loopback, AF_UNIX, AF_VSOCK, memcpy and
# iperf3 under ivshmem-run, side by side (tools/bench/suite.sh; results in
# bench/).  bench-latency: ping-pong in every mode beside TCP;
# bench-rebalance: one busy stream next to idle ones, fairness.
bench: all
	@$(TOP)/tools/bench/suite.sh

bench-latency: all
	@$(TOP)/tools/bench/latency.sh

bench-rebalance: all
	@$(TOP)/tools/bench/rebalance.sh

# The kernel's modules_install signs the module if the kernel's config asks
# for it and carries on, with an SSL error, when its key is absent (as with
# Debian's headers); it skips depmod without System.map, so we run it.
install: install-modules install-tools

install-modules: module
	$(MAKE) -C "$(KDIR_OF)" M=$(MODDIR) INSTALL_MOD_PATH="$(MOD_ROOT)" \
		INSTALL_MOD_DIR=$(INSTALL_MOD_DIR) modules_install
	if [ -z "$(MOD_ROOT)" ]; then depmod -a "$(KREL_OF)"; fi

# Everything but the modules: tools, headers, man pages.
install-tools: tools
	install -D -m 0755 $(SERVER) "$(DESTDIR)$(SBINDIR)/ivshmem-server"
	install -D -m 0755 $(NC) "$(DESTDIR)$(BINDIR)/ivshmem-nc"
	install -D -m 0755 $(KEYS) "$(DESTDIR)$(BINDIR)/ivshmem-keys"
	install -D -m 0755 $(IVSS) "$(DESTDIR)$(BINDIR)/ivss"
	install -D -m 0755 $(DEMO) "$(DESTDIR)$(BINDIR)/ivshmem-demo"
	install -D -m 0755 $(PERF) "$(DESTDIR)$(BINDIR)/ivshmem-perf"
	install -D -m 0644 $(PRELOAD) "$(DESTDIR)$(PRELOAD_DIR)/libivshmem-preload.so"
	sed 's|@LIBDIR@|$(PRELOAD_DIR)|' tools/ivshmem-run/ivshmem-run \
		> "$(DESTDIR)$(BINDIR)/ivshmem-run"
	chmod 0755 "$(DESTDIR)$(BINDIR)/ivshmem-run"
	for h in $(UAPI_HEADERS); do \
		install -D -m 0644 $$h "$(DESTDIR)$(INCLUDEDIR)/linux/$${h##*/}" \
			|| exit 1; \
	done
	install -D -m 0644 tools/lib/ivshmem.h "$(DESTDIR)$(INCLUDEDIR)/ivshmem.h"
	for m in $(MAN_PAGES); do \
		install -D -m 0644 $$m "$(DESTDIR)$(MANDIR)/man$${m##*.}/$${m#man/}" \
			|| exit 1; \
	done

uninstall:
	rm -f "$(MOD_ROOT)/lib/modules/$(KREL_OF)/$(INSTALL_MOD_DIR)/af_ivshmem.ko" \
		"$(MOD_ROOT)/lib/modules/$(KREL_OF)/$(INSTALL_MOD_DIR)/af_ivshmem_diag.ko"
	if [ -z "$(MOD_ROOT)" ]; then depmod -a "$(KREL_OF)"; fi
	rm -f "$(DESTDIR)$(SBINDIR)/ivshmem-server" \
		"$(DESTDIR)$(BINDIR)/ivshmem-nc" "$(DESTDIR)$(BINDIR)/ivshmem-demo" \
		"$(DESTDIR)$(BINDIR)/ivss" "$(DESTDIR)$(BINDIR)/ivshmem-run" \
		"$(DESTDIR)$(BINDIR)/ivshmem-perf" \
		"$(DESTDIR)$(BINDIR)/ivshmem-keys" \
		"$(DESTDIR)$(PRELOAD_DIR)/libivshmem-preload.so" \
		"$(DESTDIR)$(INCLUDEDIR)/linux/af_ivshmem.h" \
		"$(DESTDIR)$(INCLUDEDIR)/linux/ivshmem_diag.h" \
		"$(DESTDIR)$(INCLUDEDIR)/ivshmem.h"
	for m in $(MAN_PAGES); do \
		rm -f "$(DESTDIR)$(MANDIR)/man$${m##*.}/$${m#man/}"; \
	done

# The modules' sources, the uapi headers, dkms.conf (with the version filled
# in) and VERSION, laid out as in the repository (the module finds the uapi
# header at ../../include).  DESTDIR stages it, e.g. for a package.
dkms-source:
	rm -rf "$(DESTDIR)$(DKMS_SRC)"
	install -D -m 0644 -t "$(DESTDIR)$(DKMS_SRC)/net/ivshmem" \
		net/ivshmem/Kbuild $(filter net/%,$(KERNEL_SOURCES))
	install -D -m 0644 -t "$(DESTDIR)$(DKMS_SRC)/include/uapi/linux" \
		$(UAPI_HEADERS)
	install -m 0644 VERSION "$(DESTDIR)$(DKMS_SRC)/VERSION"
	sed 's/"@VERSION@"/"$(VERSION)"/' dkms.conf > "$(DESTDIR)$(DKMS_SRC)/dkms.conf"

# A Debian package (in dist/): the tools, headers and man pages under /usr
# and the modules' sources under /usr/src, which DKMS builds when the
# package is installed and for every kernel installed after it.
deb: tools
	$(TOP)/tools/build/mkdeb.sh "$(TOP)/dist"

# A version already registered is removed first, so this also reinstalls.
dkms-install:
	@command -v dkms >/dev/null || { echo "dkms is not installed" >&2; exit 1; }
	if [ -n "$$(dkms status $(DKMS_MOD))" ]; then dkms remove $(DKMS_MOD) --all; fi
	$(MAKE) dkms-source DESTDIR=
	dkms add $(DKMS_MOD)
	dkms build $(DKMS_MOD) $(DKMS_K)
	dkms install $(DKMS_MOD) $(DKMS_K)

dkms-remove:
	@command -v dkms >/dev/null || { echo "dkms is not installed" >&2; exit 1; }
	if [ -n "$$(dkms status $(DKMS_MOD))" ]; then dkms remove $(DKMS_MOD) --all; fi
	rm -rf "$(DKMS_SRC)"

clean:
	-$(MAKE) -C "$(KDIR_OF)" M=$(MODDIR) clean
	$(MAKE) -C tools/ivshmem-server clean
	rm -f $(DEMO) $(NC) $(IVSS) $(PRELOAD) $(PERF) $(HOSTILE) $(TESTS)
