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
 * Socket types: SOCK_STREAM, SOCK_SEQPACKET and SOCK_DGRAM.  Each type has
 * its own port space, as TCP and UDP do.
 *
 * SOCK_DGRAM: a datagram carries at most IVSHMEM_DGRAM_MAX bytes of
 * payload; a larger one fails with EMSGSIZE.  A datagram for a port on
 * which no datagram socket is bound, or whose socket's receive buffer is
 * full, is dropped and counted by the receiving guest.
 */
#define IVSHMEM_DGRAM_MAX	65507

/*
 * Socket options.  The level is the address family number, as AF_VSOCK
 * uses AF_VSOCK: setsockopt(fd, ivshmem_family(), IVSHMEM_..., ...).
 */

/* __u64, milliseconds (> 0): how long connect() waits for an answer before
 * it fails with ETIMEDOUT.  Default: the module parameter
 * connect_timeout_ms.  A listener passes its value on to accepted sockets.
 */
#define IVSHMEM_CONNECT_TIMEOUT_MS	1

/* struct ivshmem_peer_info, read only: who is at the other end of a
 * connected SOCK_STREAM or SOCK_SEQPACKET socket (ENOTCONN otherwise).
 */
#define IVSHMEM_PEER_INFO		2

/**
 * struct ivshmem_peer_info - the other end of a connection
 * @peer: the peer's id on the region (its VM)
 * @pid: pid, in the peer's guest, of the process that created the peer
 *	socket (for an accepted socket, the process that created the
 *	listener); as the peer's kernel published it
 * @port: the peer's port
 * @region: the region index the connection runs over
 * @reserved: zero
 */
struct ivshmem_peer_info {
	__u32 peer;
	__u32 pid;
	__u32 port;
	__u16 region;
	__u16 reserved;
};

/* int, IVSHMEM_SECURITY_*: whether the connection must be encrypted and
 * authenticated.  Set before connect() (EISCONN while connecting or
 * connected); a listener passes it on to the sockets it accepts next.
 * Default: the module parameter "security".  OFF: never (a peer that
 * requires protection refuses us); PREFER: protected when a key for the
 * peer is loaded, and then required; REQUIRE: protected or no connection
 * (ENOKEY without a key).  SOCK_SEQPACKET connections are never
 * protected: REQUIRE refuses them (EPROTONOSUPPORT).
 */
#define IVSHMEM_SECURITY		8
#define IVSHMEM_SECURITY_OFF		0
#define IVSHMEM_SECURITY_PREFER		1
#define IVSHMEM_SECURITY_REQUIRE	2

/* int, read only: 1 when the connection is encrypted and authenticated,
 * else 0 (ENOTCONN while not connected).
 */
#define IVSHMEM_PROTECTED		9

/*
 * ioctl on any AF_IVSHMEM socket: the local peer id on the region the
 * socket is bound to (or the first region if it is not bound).  Fails
 * with ENODEV when no IVSHMEM device is present.
 */
#define IOCTL_IVSHMEM_GET_LOCAL_PEER	_IOR('v', 0xe0, __u32)

/**
 * struct ivshmem_ipv4_map - an IPv4 address and the peer that publishes it
 * @addr: IPv4 address, network byte order
 * @peer: peer id on @region
 * @region: region index
 * @reserved: zero
 *
 * Every guest publishes the IPv4 addresses of its interfaces (the first
 * eight, loopback excepted) in its peer slot, so that a TCP destination
 * can be mapped to a peer (tools/ivshmem-run does).
 */
struct ivshmem_ipv4_map {
	__be32 addr;
	__u32 peer;
	__u16 region;
	__u16 reserved;
};

/*
 * ioctl on any AF_IVSHMEM socket: which live peer publishes @addr?  Fills
 * in @peer and @region (regions in index order; this guest itself counts,
 * since AF_IVSHMEM connects to its own peer id too).  ENOENT when no peer
 * publishes it, EINVAL when @reserved is not zero.
 */
#define IOCTL_IVSHMEM_RESOLVE_IPV4	_IOWR('v', 0xe1, struct ivshmem_ipv4_map)

/*
 * ioctl on any AF_IVSHMEM socket: the first IPv4 address that live peer
 * @peer publishes on region @region (IVSHMEM_REGION_ANY: the first region)
 * into @addr.  ENOENT when it publishes none, ENODEV without that region,
 * EINVAL for a peer id out of range or @reserved not zero.
 */
#define IOCTL_IVSHMEM_PEER_IPV4		_IOWR('v', 0xe2, struct ivshmem_ipv4_map)

/* Length of a pairwise key (HMAC-SHA256 output). */
#define IVSHMEM_KEY_LEN		32
#define IVSHMEM_KEY_F_DELETE	0x1	/* delete instead of set */

/**
 * struct ivshmem_key - the key this guest shares with one peer
 * @region: region index (%IVSHMEM_REGION_ANY: region 0)
 * @flags: IVSHMEM_KEY_F_*
 * @peer: the peer's id; %IVSHMEM_PEER_ANY with %IVSHMEM_KEY_F_DELETE
 *	deletes every key of the region
 * @reserved: zero
 * @key: the key, K(self, peer) as tools/ivshmem-keys derives it
 */
struct ivshmem_key {
	__u16 region;
	__u16 flags;
	__u32 peer;
	__u32 reserved;
	__u8 key[IVSHMEM_KEY_LEN];
};

/*
 * ioctl on any AF_IVSHMEM socket, CAP_NET_ADMIN: set or delete a pairwise
 * key.  Keys live in the module until deleted or the module unloads; no
 * call reads them back.  Connections set up before keep their keys.
 */
#define IOCTL_IVSHMEM_SET_KEY		_IOW('v', 0xe8, struct ivshmem_key)

#endif /* _UAPI_LINUX_AF_IVSHMEM_H */
