/* SPDX-License-Identifier: LGPL-2.1 OR MIT */
/*
 * User-space helpers for AF_IVSHMEM.
 *
 * The out-of-tree module borrows an address family number below AF_MAX and
 * publishes it as a read-only module parameter; ivshmem_family() reads it,
 * the way VMware's VMCISock_GetAFValue() once did for vsock.  With an
 * in-tree kernel that defines AF_IVSHMEM, that constant is returned.
 */
#ifndef _IVSHMEM_USER_H
#define _IVSHMEM_USER_H

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <linux/af_ivshmem.h>

/**
 * ivshmem_family() - the address family number of AF_IVSHMEM
 *
 * Return: the number, or -1 with errno set (ENOENT: module not loaded).
 */
static inline int ivshmem_family(void)
{
#ifdef AF_IVSHMEM
	return AF_IVSHMEM;
#else
	static int cached;
	FILE *f;
	int fam;

	if (cached > 0)
		return cached;
	f = fopen(IVSHMEM_FAMILY_SYSFS, "r");
	if (!f)
		return -1;
	if (fscanf(f, "%d", &fam) != 1 || fam <= 0) {
		fclose(f);
		errno = EINVAL;
		return -1;
	}
	fclose(f);
	cached = fam;
	return fam;
#endif
}

/* Fills @addr for @peer and @port on the first region. */
static inline void ivshmem_addr(struct sockaddr_ivshmem *addr, uint32_t peer,
				uint32_t port)
{
	memset(addr, 0, sizeof(*addr));
	addr->sivshm_family = (sa_family_t)ivshmem_family();
	addr->sivshm_peer = peer;
	addr->sivshm_port = port;
	addr->sivshm_region = IVSHMEM_REGION_ANY;
}

/**
 * ivshmem_local_peer() - this guest's peer id on the first region
 *
 * Return: the peer id, or -1 with errno set.
 */
static inline long ivshmem_local_peer(void)
{
	int fam = ivshmem_family();
	uint32_t peer;
	int fd, err;

	if (fam < 0)
		return -1;
	fd = socket(fam, SOCK_STREAM, 0);
	if (fd < 0)
		return -1;
	err = ioctl(fd, IOCTL_IVSHMEM_GET_LOCAL_PEER, &peer);
	close(fd);
	return err ? -1 : (long)peer;
}

static const char *const ivshmem_security_names[] = {
	[IVSHMEM_SECURITY_OFF] = "off",
	[IVSHMEM_SECURITY_PREFER] = "prefer",
	[IVSHMEM_SECURITY_REQUIRE] = "require",
};

/**
 * ivshmem_security_parse() - an IVSHMEM_SECURITY policy from its name
 * @name: "off", "prefer" or "require", as the tools' -s options take it
 *
 * Return: the IVSHMEM_SECURITY_* value, or -1 for any other name.
 */
static inline int ivshmem_security_parse(const char *name)
{
	int i;

	for (i = 0; i <= IVSHMEM_SECURITY_REQUIRE; i++)
		if (!strcmp(name, ivshmem_security_names[i]))
			return i;
	return -1;
}

/* The name of an IVSHMEM_SECURITY_* value, "?" for any other. */
static inline const char *ivshmem_security_name(int policy)
{
	if (policy < 0 || policy > IVSHMEM_SECURITY_REQUIRE)
		return "?";
	return ivshmem_security_names[policy];
}

#endif /* _IVSHMEM_USER_H */
