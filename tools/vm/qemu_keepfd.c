// SPDX-License-Identifier: GPL-2.0
/*
 * qemu_keepfd.so - LD_PRELOAD helper that tools/vm/lab puts under QEMU so
 * that an ivshmem-doorbell device can be hot-unplugged.
 *
 * Without KVM irqfd (TCG), QEMU's ivshmem device watches its own vector
 * eventfds with qemu_set_fd_handler(), but its exit function closes those
 * eventfds without removing the handlers (QEMU 7.2 and later). The next file
 * QEMU opens gets the same descriptor number (9p opens files all the time),
 * the stale handler runs when it becomes readable, and QEMU dies on freed
 * memory in ivshmem_vector_notify().
 *
 * This library wraps close(): when the descriptor is an eventfd, it puts a
 * fresh eventfd that nobody can write to (so it never becomes readable) on
 * the same number instead of freeing it. The number stays taken, a stale
 * handler on it never fires, and the cost is one descriptor per closed
 * eventfd (QEMU closes eventfds only when devices go away).
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

static int (*real_close)(int fd);

static int is_eventfd(int fd)
{
	char path[48], target[32];
	ssize_t n;

	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	n = readlink(path, target, sizeof(target) - 1);
	if (n <= 0)
		return 0;
	target[n] = '\0';
	return strcmp(target, "anon_inode:[eventfd]") == 0;
}

int close(int fd)
{
	int quiet;

	if (!real_close)
		real_close = (int (*)(int))dlsym(RTLD_NEXT, "close");
	if (fd > 2 && is_eventfd(fd)) {
		quiet = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		if (quiet >= 0) {
			/* dup3() drops the old eventfd and reuses its number */
			if (dup3(quiet, fd, O_CLOEXEC) == fd) {
				real_close(quiet);
				return 0;
			}
			real_close(quiet);
		}
	}
	return real_close(fd);
}
