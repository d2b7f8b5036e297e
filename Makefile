# SPDX-License-Identifier: GPL-2.0
#
# AF_IVSHMEM: top-level build.
#
#   make          build the module, the tools and the tests
#   make run      boot two guests and show a message and a bulk transfer
#   make check    build, lint and run every test (host and guests)
#   make bench    latency benchmark: AF_IVSHMEM modes beside TCP
#
# KDIR=/path/to/kernel/build overrides the kernel the module is built for
# (default: the newest Debian kernel with both image and headers).

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
TESTS := selftests/ivshmem_test selftests/ivshmem_peerd selftests/ivshmem_stream \
	selftests/ivshmem_pingpong selftests/ivshmem_conformance
CONFORMANCE_SOURCES := $(addprefix selftests/conformance/,main.c stream.c \
	seqpacket.c dgram.c)
KERNEL_SOURCES := $(filter-out %.mod.c,$(wildcard net/ivshmem/*.c net/ivshmem/*.h)) \
	include/uapi/linux/af_ivshmem.h

.PHONY: all deps module tools selftests check run bench lint sparse \
	checkpatch docs clean

all: module tools selftests

deps:
	@$(TOP)/tools/build/deps.sh

module: deps
	$(MAKE) -C "$(KDIR_OF)" M=$(MODDIR) W=1 modules

tools: deps $(DEMO) $(NC)
	$(MAKE) -C tools/ivshmem-server

tools/%: tools/%.c tools/lib/ivshmem.h include/uapi/linux/af_ivshmem.h
	$(CC) $(USER_CFLAGS) -o $@ $<

selftests: deps $(TESTS)

selftests/ivshmem_peerd selftests/ivshmem_stream selftests/ivshmem_pingpong: %: %.c \
		selftests/ivshmem_util.h tools/lib/ivshmem.h \
		include/uapi/linux/af_ivshmem.h
	$(CC) $(USER_CFLAGS) -o $@ $< -lpthread

selftests/ivshmem_test: selftests/ivshmem_test.c selftests/ivshmem_util.h \
		tools/lib/ivshmem.h include/uapi/linux/af_ivshmem.h
	$(CC) $(USER_CFLAGS) -Wno-unused-parameter -Wno-sign-compare \
		-I$(KSRC)/tools/testing/selftests -o $@ $< -lpthread

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

run: all
	@$(TOP)/tools/vm/demo.sh

# Benchmarks (not tests): ping-pong latency in every mode beside TCP.
bench: all
	@$(TOP)/tools/bench/latency.sh

clean:
	-$(MAKE) -C "$(KDIR_OF)" M=$(MODDIR) clean
	$(MAKE) -C tools/ivshmem-server clean
	rm -f $(DEMO) $(NC) $(TESTS)
