/* SPDX-License-Identifier: GPL-2.0 */
/*
 * AF_IVSHMEM shared-memory ABI, version 2.
 *
 * Everything here lives in the IVSHMEM region, which every guest on the
 * region can read and write at any time.  All fields are fixed-width
 * little-endian, all references are offsets or table indices, and no kernel
 * object or lock is ever stored here.  A reader treats every field as
 * hostile: read it once, validate it, then use the validated copy.
 *
 * Documentation/networking/af_ivshmem.rst describes the layout and the
 * protocols that use it; the two must agree.
 */
#ifndef _NET_IVSHMEM_ABI_H
#define _NET_IVSHMEM_ABI_H

#include <linux/build_bug.h>
#include <linux/types.h>

#define IVSHM_MAGIC		0x4d485349	/* "ISHM" */
#define IVSHM_ABI_VERSION	2
#define IVSHM_BLOCK_SIZE	4096
#define IVSHM_MAX_PEERS		64
#define IVSHM_MAX_CHANNELS	4096
#define IVSHM_MIN_REGION_SIZE	(1024 * 1024)

#define IVSHM_PEER_TABLE_OFFSET		IVSHM_BLOCK_SIZE
#define IVSHM_CHANNEL_TABLE_OFFSET	(2 * IVSHM_BLOCK_SIZE)

/* header.format_state */
enum ivshm_format_state {
	IVSHM_FORMAT_BLANK = 0,		/* zeroed memory from the host */
	IVSHM_FORMAT_BUSY = 1,		/* a guest is writing the header */
	IVSHM_FORMAT_READY = 2,
};

/**
 * struct ivshm_region_header - the control section, at offset 0
 * @magic: %IVSHM_MAGIC, written last when formatting
 * @abi_version: %IVSHM_ABI_VERSION
 * @region_size: size of the whole region in bytes (a power of two)
 * @block_size: %IVSHM_BLOCK_SIZE
 * @max_peers: entries in the peer table
 * @max_channels: entries in the channel table
 * @peer_table_offset: byte offset of the peer table
 * @channel_table_offset: byte offset of the channel table
 * @data_offset: byte offset of the first data block
 * @data_blocks: number of data blocks
 * @format_state: &enum ivshm_format_state, taken with compare-and-exchange
 * @control_lock: cross-guest lock word for the allocation tables: 0 when
 *	free, else holder peer id + 1 in bits 0-15 and an acquisition
 *	sequence number in bits 16-63
 * @free_start_offset: byte offset of the end of the highest allocated
 *	channel (everything from here to the region end is free)
 * @num_active_channel: number of allocated channel table entries
 * @alloc_generation: incremented on every allocation or free
 */
struct ivshm_region_header {
	__le32 magic;
	__le32 abi_version;
	__le64 region_size;
	__le32 block_size;
	__le32 max_peers;
	__le32 max_channels;
	__le32 peer_table_offset;
	__le32 channel_table_offset;
	__le32 data_offset;
	__le32 data_blocks;
	__le32 format_state;
	__le64 control_lock;
	__le32 free_start_offset;
	__le32 num_active_channel;
	__le64 alloc_generation;
};

/* peer.state */
enum ivshm_peer_state {
	IVSHM_PEER_FREE = 0,
	IVSHM_PEER_ACTIVE = 1,
};

#define IVSHM_PEER_F_DOORBELL	0x1	/* the peer takes doorbell interrupts */

/**
 * struct ivshm_peer_slot - one guest; written only by the guest that owns it
 * @state: &enum ivshm_peer_state
 * @flags: IVSHM_PEER_F_*
 * @epoch: incremented each time a guest takes the slot
 * @heartbeat: incremented by the owner while it is alive
 * @request_seq: incremented by the owner after it publishes a connection
 *	request or a datagram channel: receivers scan the channel table
 *	for new requests only when some peer's @request_seq moved (and
 *	once a second, whatever it says)
 * @ipv4_count: number of valid entries in @ipv4 (0 to %IVSHM_SLOT_IPV4);
 *	readers clamp it
 * @ipv4: the owner's IPv4 addresses (network byte order), so that a TCP
 *	destination can be mapped to a peer id (tools/ivshmem-run).  An
 *	advisory hint: the owner rewrites it when its addresses change
 */
struct ivshm_peer_slot {
	__le32 state;
	__le32 flags;
	__le64 epoch;
	__le64 heartbeat;
	__le32 request_seq;
	__le32 ipv4_count;
	__be32 ipv4[8];
};

#define IVSHM_SLOT_IPV4	8	/* entries in ivshm_peer_slot.ipv4 */

/* channel.alloc_state */
enum ivshm_alloc_state {
	IVSHM_CHAN_FREE = 0,
	IVSHM_CHAN_ALLOCATED = 1,
};

/* channel.sender_state */
enum ivshm_sender_state {
	IVSHM_SEND_NONE = 0,
	IVSHM_SEND_CONNECTING = 1,	/* a connection request */
	IVSHM_SEND_OPEN = 2,
	IVSHM_SEND_SHUTDOWN = 3,	/* no more data: EOF after the ring */
	IVSHM_SEND_RESET = 4,		/* aborted: the reader gets ECONNRESET */
};

/* channel.receiver_state */
enum ivshm_receiver_state {
	IVSHM_RECV_NONE = 0,
	IVSHM_RECV_ACCEPTED = 1,	/* reply_channel names the way back */
	IVSHM_RECV_REFUSED = 2,		/* no listener; receiver is done */
	IVSHM_RECV_RELEASED = 3,	/* receiver is done with the channel */
	IVSHM_RECV_NOBUFS = 4,		/* refused: no room for a reply channel */
	IVSHM_RECV_DENIED = 5,		/* refused: security policy or no key */
};

/* In channel.sock_type, beside the type: the connection is protected
 * (see "Encryption and key exchange" in af_ivshmem.rst): both rings
 * start with handshake bytes, then carry sealed records.
 */
#define IVSHM_SOCK_F_SECURE	0x100
#define IVSHM_SOCK_TYPE_MASK	0xff

/**
 * struct ivshm_channel - one direction of one connection
 *
 * The first 64 bytes are written only by the sender, which allocated the
 * channel; the last 64 only by the receiver.  The sender frees the channel
 * once the receiver has released it (or has died).
 *
 * @alloc_state: &enum ivshm_alloc_state (under the control lock)
 * @generation: incremented on each allocation of this entry
 * @head: producer position: bytes ever written into the ring
 * @sender_vm: peer id of the sender
 * @receiver_vm: peer id of the receiver
 * @sender_pid: pid (in the sender's guest) of the process that created it
 * @buff_offset: byte offset of the ring in the region, block aligned
 * @buff_size: ring size in bytes, a multiple of the block size
 * @src_port: sender's port
 * @dst_port: receiver's port
 * @sock_type: SOCK_STREAM, SOCK_SEQPACKET or SOCK_DGRAM, with
 *	%IVSHM_SOCK_F_SECURE for a protected connection
 * @send_waiting: non-zero while the sender waits for ring space
 * @peer_channel: for a reply channel, the request channel's index
 * @peer_generation: and its generation
 * @sender_state: &enum ivshm_sender_state
 * @data_size: head - tail as last seen by the sender (informational)
 * @head_touch: incremented each time the sender publishes @head
 * @tail: consumer position: bytes ever consumed from the ring
 * @receiver_state: &enum ivshm_receiver_state
 * @reply_channel: with %IVSHM_RECV_ACCEPTED, the reply channel's index
 * @reply_generation: and its generation
 * @recv_waiting: non-zero while the receiver waits for data
 * @reserved: zero
 */
struct ivshm_channel {
	/* sender half */
	__le32 alloc_state;
	__le32 generation;
	__le64 head;
	__le16 sender_vm;
	__le16 receiver_vm;
	__le32 sender_pid;
	__le32 buff_offset;
	__le32 buff_size;
	__le32 src_port;
	__le32 dst_port;
	__le16 sock_type;
	__le16 send_waiting;
	__le32 peer_channel;
	__le32 peer_generation;
	__le32 sender_state;
	__le32 data_size;
	__le32 head_touch;
	/* receiver half */
	__le64 tail;
	__le32 receiver_state;
	__le32 reply_channel;
	__le32 reply_generation;
	__le32 recv_waiting;
	__u8 reserved[40];
};

/* SOCK_SEQPACKET rings carry records: a header, then @len payload bytes,
 * then padding to the next multiple of 8.  A message is one or more
 * records; the last has IVSHM_REC_EOR.  A record never holds more than
 * the ring minus its header, so a message of any size passes through a
 * ring of any size, one record at a time.
 */
#define IVSHM_REC_EOR		0x1	/* last record of the message */
#define IVSHM_REC_ABORT		0x2	/* the message was abandoned: drop it */
#define IVSHM_REC_FLAGS		(IVSHM_REC_EOR | IVSHM_REC_ABORT)
#define IVSHM_REC_ALIGN		8

/**
 * struct ivshm_record - header of a SOCK_SEQPACKET record
 * @len: payload bytes that follow
 * @flags: IVSHM_REC_*
 */
struct ivshm_record {
	__le32 len;
	__le32 flags;
};

/* SOCK_DGRAM: each guest has at most one datagram channel to each peer,
 * shared by all its datagram sockets.  Its ring carries one record per
 * datagram: this header, @len payload bytes, padding to 8.
 */

/**
 * struct ivshm_dgram - header of a datagram in a datagram channel
 * @len: payload bytes (at most IVSHMEM_DGRAM_MAX)
 * @src_port: the sending socket's port
 * @dst_port: the destination port
 * @reserved: zero
 */
struct ivshm_dgram {
	__le32 len;
	__le32 src_port;
	__le32 dst_port;
	__le32 reserved;
};

static inline void ivshm_abi_size_checks(void)
{
	BUILD_BUG_ON(sizeof(struct ivshm_record) != IVSHM_REC_ALIGN);
	BUILD_BUG_ON(sizeof(struct ivshm_dgram) % IVSHM_REC_ALIGN);
	BUILD_BUG_ON(sizeof(struct ivshm_region_header) != 72);
	BUILD_BUG_ON(offsetof(struct ivshm_region_header, control_lock) != 48);
	BUILD_BUG_ON(sizeof(struct ivshm_peer_slot) != 64);
	BUILD_BUG_ON(offsetof(struct ivshm_peer_slot, ipv4) != 32);
	BUILD_BUG_ON(sizeof(((struct ivshm_peer_slot *)0)->ipv4) !=
		     IVSHM_SLOT_IPV4 * sizeof(__be32));
	BUILD_BUG_ON(sizeof(struct ivshm_channel) != 128);
	BUILD_BUG_ON(offsetof(struct ivshm_channel, tail) != 64);
	BUILD_BUG_ON(IVSHM_MAX_PEERS * sizeof(struct ivshm_peer_slot) >
		     IVSHM_CHANNEL_TABLE_OFFSET - IVSHM_PEER_TABLE_OFFSET);
}

/* Byte offset of the first data block for this ABI's table sizes. */
#define IVSHM_DATA_OFFSET \
	(IVSHM_CHANNEL_TABLE_OFFSET + \
	 IVSHM_MAX_CHANNELS * sizeof(struct ivshm_channel))

#endif /* _NET_IVSHMEM_ABI_H */
