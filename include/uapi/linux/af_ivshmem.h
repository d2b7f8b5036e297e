/* SPDX-License-Identifier: GPL-2.0 WITH Linux-syscall-note */
/*
 * AF_IVSHMEM: sockets between virtual machines that share a QEMU IVSHMEM
 * region.  User-space ABI.
 *
 * See Documentation/networking/af_ivshmem.rst for the protocol.
 */
#ifndef _UAPI_LINUX_AF_IVSHMEM_H
#define _UAPI_LINUX_AF_IVSHMEM_H

#ifndef __KERNEL__
#include <sys/socket.h>	/* struct sockaddr, sa_family_t */
#endif

#include <linux/ioctl.h>
#include <linux/socket.h>
#include <linux/types.h>

/*
 * The address family number.  An in-tree build owns AF_IVSHMEM.  The
 * out-of-tree module cannot register a number >= AF_MAX, so it borrows an
 * unused one below AF_MAX (module parameter "family", default
 * IVSHMEM_FAMILY_DEFAULT).  User space asks the running module for the
 * number: see ivshmem_family() in tools/lib/ivshmem.h, which reads
 * IVSHMEM_FAMILY_SYSFS.
 */
#define IVSHMEM_FAMILY_DEFAULT	25
#define IVSHMEM_FAMILY_SYSFS	"/sys/module/af_ivshmem/parameters/family"

/* Wildcards. */
#define IVSHMEM_PORT_ANY	((__u32)-1)	/* bind: pick an ephemeral port */
#define IVSHMEM_PEER_ANY	((__u32)-1)	/* bind: accept from any peer */
#define IVSHMEM_REGION_ANY	((__u16)-1)	/* any region (device) */

/* Ports below this need CAP_NET_BIND_SERVICE. */
#define IVSHMEM_PORT_RESERVED	1024
/* Automatic (ephemeral) ports are taken from this inclusive range. */
#define IVSHMEM_EPHEMERAL_FIRST	49152
#define IVSHMEM_EPHEMERAL_LAST	65535

/**
 * struct sockaddr_ivshmem - address of an AF_IVSHMEM socket
 * @sivshm_family: the family number (see above)
 * @sivshm_reserved1: must be zero
 * @sivshm_port: port number, or %IVSHMEM_PORT_ANY
 * @sivshm_peer: peer id of the guest on its region (the IVPosition QEMU's
 *	ivshmem server assigned it, or the slot it claimed on a region without
 *	a server), or %IVSHMEM_PEER_ANY
 * @sivshm_region: index of the IVSHMEM device in the guest that owns the
 *	address, or %IVSHMEM_REGION_ANY (means the first region)
 * @sivshm_flags: must be zero
 *
 * The same size as struct sockaddr (16 bytes), shaped like AF_VSOCK's
 * sockaddr_vm.
 */
struct sockaddr_ivshmem {
	__kernel_sa_family_t sivshm_family;
	__u16 sivshm_reserved1;
	__u32 sivshm_port;
	__u32 sivshm_peer;
	__u16 sivshm_region;
	__u16 sivshm_flags;
};

/*
 * ioctl on any AF_IVSHMEM socket: the local peer id on the region the
 * socket is bound to (or the first region if it is not bound).  Fails
 * with ENODEV when no IVSHMEM device is present.
 */
#define IOCTL_IVSHMEM_GET_LOCAL_PEER	_IOR('v', 0xe0, __u32)

#endif /* _UAPI_LINUX_AF_IVSHMEM_H */
