/* SPDX-License-Identifier: GPL-2.0 WITH Linux-syscall-note */
/*
 * AF_IVSHMEM socket diagnostics: the sock_diag interface of the
 * af_ivshmem_diag module, and the "ivshmem" generic netlink family of the
 * af_ivshmem module (the fabric view: regions, peers, channels, counters).
 *
 * See Documentation/networking/af_ivshmem.rst, "Diagnostics".
 */
#ifndef _UAPI_LINUX_IVSHMEM_DIAG_H
#define _UAPI_LINUX_IVSHMEM_DIAG_H

#include <linux/types.h>

/*
 * sock_diag: a NETLINK_SOCK_DIAG socket, nlmsg_type SOCK_DIAG_BY_FAMILY,
 * carrying struct ivshmem_diag_req with sdiag_family set to the module's
 * family number (ivshmem_family() in tools/lib/ivshmem.h).  With NLM_F_DUMP
 * the reply is one struct ivshmem_diag_msg per matching socket; without it,
 * the one socket named by idiag_ino and idiag_cookie (ENOENT if it is
 * gone).  Sockets that are neither bound nor connected are not listed.
 */

/* idiag_show: which attributes to add to each reply. */
#define IVSHMEM_SHOW_CHANNELS	0x1	/* IVSHMEM_DIAG_CHANNELS */
#define IVSHMEM_SHOW_MEMINFO	0x2	/* IVSHMEM_DIAG_MEMINFO */

/* idiag_cookie of an exact request that names the socket by inode only. */
#define IVSHMEM_DIAG_NOCOOKIE	(~0U)

/**
 * struct ivshmem_diag_req - a sock_diag request for AF_IVSHMEM sockets
 * @sdiag_family: the AF_IVSHMEM family number
 * @sdiag_protocol: zero
 * @idiag_types: bitmask of (1 << SOCK_STREAM), (1 << SOCK_SEQPACKET),
 *	(1 << SOCK_DGRAM); zero means every type
 * @idiag_states: bitmask of (1 << TCP_*) states as reported in
 *	&struct ivshmem_diag_msg.idiag_state; zero means every state
 * @idiag_ino: exact request: the socket's inode number
 * @idiag_show: IVSHMEM_SHOW_* bits
 * @idiag_cookie: exact request: the socket's cookie from an earlier reply,
 *	or both words %IVSHMEM_DIAG_NOCOOKIE
 */
struct ivshmem_diag_req {
	__u8	sdiag_family;
	__u8	sdiag_protocol;
	__u16	idiag_types;
	__u32	idiag_states;
	__u32	idiag_ino;
	__u32	idiag_show;
	__u32	idiag_cookie[2];
};

/* ivshmem_diag_msg.idiag_flags */
#define IVSHMEM_DIAG_F_SECURE	0x1	/* data encrypted and authenticated */
#define IVSHMEM_DIAG_F_RESET	0x2	/* the connection was reset */

/**
 * struct ivshmem_diag_msg - one socket
 * @idiag_family: the AF_IVSHMEM family number
 * @idiag_type: SOCK_STREAM, SOCK_SEQPACKET or SOCK_DGRAM
 * @idiag_state: TCP_LISTEN, TCP_SYN_SENT (connecting), TCP_ESTABLISHED,
 *	TCP_FIN_WAIT2 (we shut down sending, the peer has not),
 *	TCP_CLOSE_WAIT (the peer shut down sending, we have not),
 *	TCP_CLOSING (both directions shut down, the socket still open) or
 *	TCP_CLOSE (a bound datagram socket without a default destination,
 *	or a connection that ended).  A datagram socket with a default
 *	destination is TCP_ESTABLISHED.
 * @idiag_shutdown: the socket's own RCV_SHUTDOWN (1) and SEND_SHUTDOWN
 *	(2) bits
 * @idiag_region: the region index of the socket's address
 * @idiag_flags: IVSHMEM_DIAG_F_* bits
 * @idiag_local_peer: local peer id, or IVSHMEM_PEER_ANY
 * @idiag_local_port: local port
 * @idiag_remote_peer: peer id of the other end (connected sockets,
 *	connecting sockets and datagram sockets with a default
 *	destination), else IVSHMEM_PEER_ANY
 * @idiag_remote_port: its port, else IVSHMEM_PORT_ANY
 * @idiag_ino: inode number of the socket
 * @idiag_uid: owner's uid
 * @idiag_rqueue: bytes received and not yet read (stream: bytes in the
 *	receive channel; seqpacket: bytes in the receive channel, record
 *	headers included; datagram: payload bytes queued on the socket);
 *	for a listener, connections waiting in the accept queue
 * @idiag_wqueue: bytes sent and not yet read by the peer (bytes in the
 *	send channel); for a listener, its backlog; zero for datagram
 *	sockets, whose sends go straight into the shared channel
 * @idiag_peer_pid: pid, in the peer's guest, of the process that created
 *	the peer socket (connected stream and seqpacket sockets), else 0
 * @idiag_reserved: zero
 * @idiag_cookie: the socket's cookie (for exact requests)
 */
struct ivshmem_diag_msg {
	__u8	idiag_family;
	__u8	idiag_type;
	__u8	idiag_state;
	__u8	idiag_shutdown;
	__u16	idiag_region;
	__u16	idiag_flags;
	__u32	idiag_local_peer;
	__u32	idiag_local_port;
	__u32	idiag_remote_peer;
	__u32	idiag_remote_port;
	__u32	idiag_ino;
	__u32	idiag_uid;
	__u32	idiag_rqueue;
	__u32	idiag_wqueue;
	__u32	idiag_peer_pid;
	__u32	idiag_reserved;
	__u32	idiag_cookie[2];
};

/* Attributes after struct ivshmem_diag_msg. */
enum {
	IVSHMEM_DIAG_UNSPEC,
	IVSHMEM_DIAG_CHANNELS,	/* struct ivshmem_diag_channels */
	IVSHMEM_DIAG_MEMINFO,	/* __u32[SK_MEMINFO_VARS], as sock_diag's */
	__IVSHMEM_DIAG_MAX,
};

#define IVSHMEM_DIAG_MAX (__IVSHMEM_DIAG_MAX - 1)

/* ivshmem_diag_channels index of a direction that has no channel */
#define IVSHMEM_DIAG_NO_CHANNEL	(~0U)

/**
 * struct ivshmem_diag_channels - the channels of a connection
 * @tx_index: channel table index of the channel we send on, or
 *	%IVSHMEM_DIAG_NO_CHANNEL
 * @tx_generation: its generation
 * @tx_offset: byte offset of its ring in the region
 * @tx_size: ring size in bytes
 * @rx_index: the channel we receive on (the peer's), or
 *	%IVSHMEM_DIAG_NO_CHANNEL
 * @rx_generation: its generation
 * @rx_offset: byte offset of its ring in the region
 * @rx_size: ring size in bytes
 */
struct ivshmem_diag_channels {
	__u32	tx_index;
	__u32	tx_generation;
	__u32	tx_offset;
	__u32	tx_size;
	__u32	rx_index;
	__u32	rx_generation;
	__u32	rx_offset;
	__u32	rx_size;
};

/*
 * The fabric view: generic netlink family IVSHMEM_GENL_NAME, version
 * IVSHMEM_GENL_VERSION, registered by af_ivshmem itself.  Every command
 * is a dump (NLM_F_DUMP); IVSHMEM_A_REGION in the request limits it to one
 * region.  Readable by any user: it shows the region's bookkeeping, never
 * its data.
 */
#define IVSHMEM_GENL_NAME	"ivshmem"
#define IVSHMEM_GENL_VERSION	1

enum {
	IVSHMEM_CMD_UNSPEC,
	IVSHMEM_CMD_GET_REGION,	/* one message per region */
	IVSHMEM_CMD_GET_PEER,	/* one per active peer slot per region */
	IVSHMEM_CMD_GET_CHANNEL, /* one per allocated channel per region */
	__IVSHMEM_CMD_MAX,
};

#define IVSHMEM_CMD_MAX (__IVSHMEM_CMD_MAX - 1)

enum {
	IVSHMEM_A_UNSPEC,
	IVSHMEM_A_PAD,
	/* every message */
	IVSHMEM_A_REGION,		/* u32: region index */
	/* IVSHMEM_CMD_GET_REGION */
	IVSHMEM_A_SELF,			/* u32: our peer id */
	IVSHMEM_A_DOORBELL,		/* u8: 1 doorbells, 0 polling */
	IVSHMEM_A_REGION_SIZE,		/* u64: bytes */
	IVSHMEM_A_DATA_BYTES,		/* u64: bytes of the data area */
	IVSHMEM_A_FREE_BYTES,		/* u64: data bytes in no channel */
	IVSHMEM_A_ACTIVE_CHANNELS,	/* u32: allocated channel entries */
	IVSHMEM_A_MAX_CHANNELS,		/* u32: channel table entries */
	IVSHMEM_A_STATS,		/* nested: IVSHMEM_STAT_*, each u64 */
	/* IVSHMEM_CMD_GET_PEER */
	IVSHMEM_A_PEER_ID,		/* u32 */
	IVSHMEM_A_PEER_EPOCH,		/* u64 */
	IVSHMEM_A_PEER_HEARTBEAT,	/* u64 */
	IVSHMEM_A_PEER_FLAGS,		/* u32: the slot's flags */
	IVSHMEM_A_PEER_ALIVE,		/* u8: 1 alive, 0 declared dead */
	IVSHMEM_A_PEER_SELF,		/* flag: this slot is ours */
	/* IVSHMEM_CMD_GET_CHANNEL */
	IVSHMEM_A_CHAN_INDEX,		/* u32 */
	IVSHMEM_A_CHAN_GENERATION,	/* u32 */
	IVSHMEM_A_CHAN_SENDER,		/* u32: sender's peer id */
	IVSHMEM_A_CHAN_RECEIVER,	/* u32: receiver's peer id */
	IVSHMEM_A_CHAN_TYPE,		/* u32: SOCK_* */
	IVSHMEM_A_CHAN_SRC_PORT,	/* u32 */
	IVSHMEM_A_CHAN_DST_PORT,	/* u32 */
	IVSHMEM_A_CHAN_OFFSET,		/* u32: ring offset in the region */
	IVSHMEM_A_CHAN_SIZE,		/* u32: ring bytes */
	IVSHMEM_A_CHAN_FILL,		/* u32: bytes written, not consumed */
	IVSHMEM_A_CHAN_SENDER_STATE,	/* u32: IVSHMEM_CHAN_SEND_* */
	IVSHMEM_A_CHAN_RECEIVER_STATE,	/* u32: IVSHMEM_CHAN_RECV_* */
	IVSHMEM_A_CHAN_SENDER_PID,	/* u32 */
	IVSHMEM_A_CHAN_PEER_CHANNEL,	/* u32: reply channel: the request's */
	/* IVSHMEM_CMD_GET_REGION, absent before the rebalancer's first run */
	IVSHMEM_A_LAST_REBALANCE_MS,	/* u64: ms since our last rebalance */
	__IVSHMEM_A_MAX,
};

#define IVSHMEM_A_MAX (__IVSHMEM_A_MAX - 1)

/* Channel states as the shared channel table holds them. */
enum {
	IVSHMEM_CHAN_SEND_NONE,
	IVSHMEM_CHAN_SEND_CONNECTING,
	IVSHMEM_CHAN_SEND_OPEN,
	IVSHMEM_CHAN_SEND_SHUTDOWN,
	IVSHMEM_CHAN_SEND_RESET,
};

enum {
	IVSHMEM_CHAN_RECV_NONE,
	IVSHMEM_CHAN_RECV_ACCEPTED,
	IVSHMEM_CHAN_RECV_REFUSED,
	IVSHMEM_CHAN_RECV_RELEASED,
	IVSHMEM_CHAN_RECV_NOBUFS,	/* refused: no room for a reply channel */
};

/* Counters in IVSHMEM_A_STATS, one u64 attribute each. */
enum {
	IVSHMEM_STAT_UNSPEC,
	IVSHMEM_STAT_PAD,
	IVSHMEM_STAT_DOORBELLS_SENT,
	IVSHMEM_STAT_DOORBELLS_RECEIVED,
	IVSHMEM_STAT_DOORBELLS_SUPPRESSED,
	IVSHMEM_STAT_VALIDATION_FAILURES,
	IVSHMEM_STAT_LOCK_STEALS,
	IVSHMEM_STAT_CONNECTS_REFUSED,
	IVSHMEM_STAT_PEERS_DECLARED_DEAD,
	IVSHMEM_STAT_CHANNELS_RECLAIMED,
	IVSHMEM_STAT_DGRAM_SENT,
	IVSHMEM_STAT_DGRAM_RECEIVED,
	IVSHMEM_STAT_DGRAM_DROPPED_NO_SOCKET,
	IVSHMEM_STAT_DGRAM_DROPPED_RCVBUF,
	IVSHMEM_STAT_REQUEST_SCANS,
	IVSHMEM_STAT_RESETS_SENT,	/* we reset: unread data, linger 0 */
	IVSHMEM_STAT_RESETS_RECEIVED,	/* the peer reset the connection */
	IVSHMEM_STAT_RESETS_PEER_DEAD,	/* connections lost to a dead peer */
	IVSHMEM_STAT_RESETS_DEVICE_GONE, /* connections lost to unplug */
	IVSHMEM_STAT_CHANNELS_ALLOCATED,
	IVSHMEM_STAT_CHANNELS_FREED,
	IVSHMEM_STAT_REBALANCES,	/* rebalancer runs */
	IVSHMEM_STAT_CHANNELS_GROWN,	/* resizes of our channels: larger */
	IVSHMEM_STAT_CHANNELS_SHRUNK,	/* and smaller */
	IVSHMEM_STAT_RESIZES_ABORTED,	/* resizes given up before the switch */
	IVSHMEM_STAT_DOORBELLS_LIMITED,	/* doorbells deferred by a storm */
	IVSHMEM_STAT_AUTH_FAILURES,	/* handshakes or records that failed
					 * authentication
					 */
	IVSHMEM_STAT_DOORBELL_WAKES,	/* blocked recv()/send() callers the
					 * doorbell interrupt woke itself
					 */
	IVSHMEM_STAT_CHANNELS_MOVED,	/* idle channels of ours moved down
					 * to merge free space (compaction)
					 */
	__IVSHMEM_STAT_MAX,
};

#define IVSHMEM_STAT_MAX (__IVSHMEM_STAT_MAX - 1)

#endif /* _UAPI_LINUX_IVSHMEM_DIAG_H */
