/* SPDX-License-Identifier: GPL-2.0 */
/* AF_IVSHMEM tracepoints: connection life cycle (socket.c), channel
 * allocation (region.c) and doorbells (pci.c), in the "af_ivshmem" trace
 * system.  See Documentation/networking/af_ivshmem.rst, "Tracepoints".
 *
 * CREATE_TRACE_POINTS is defined in socket.c only: the socket events read
 * struct ivshm_sock, which is private to that file.
 */
#undef TRACE_SYSTEM
#define TRACE_SYSTEM af_ivshmem

#ifndef _IVSHM_TRACE_ONCE
#define _IVSHM_TRACE_ONCE

struct ivshm_sock;

/* Why a connection was reset (ivshmem_reset). */
enum ivshm_reset_cause {
	IVSHM_RESET_LOCAL,	/* we reset it: close with data unread, ... */
	IVSHM_RESET_PEER,	/* the peer reset it */
	IVSHM_RESET_PEER_DEAD,	/* the peer died, left or was replaced */
	IVSHM_RESET_DEVICE_GONE, /* our device is going away */
	IVSHM_RESET_INVALID,	/* the peer's channel state was impossible */
};

/* How our side of a connection ended (ivshmem_close). */
enum ivshm_close_how {
	IVSHM_CLOSE_EOF,	/* EOF to the peer after the data */
	IVSHM_CLOSE_RESET,	/* the peer is reset */
	IVSHM_CLOSE_ABORT,	/* a connection request is withdrawn */
};

#endif /* _IVSHM_TRACE_ONCE */

#if !defined(_IVSHM_TRACE_H) || defined(TRACE_HEADER_MULTI_READ)
#define _IVSHM_TRACE_H

#include <linux/tracepoint.h>

#include "af_ivshmem.h"

/* The enums' values, for user space's decoding of the formats. */
TRACE_DEFINE_ENUM(SOCK_STREAM);
TRACE_DEFINE_ENUM(SOCK_SEQPACKET);
TRACE_DEFINE_ENUM(SOCK_DGRAM);
TRACE_DEFINE_ENUM(IVSHM_RESET_LOCAL);
TRACE_DEFINE_ENUM(IVSHM_RESET_PEER);
TRACE_DEFINE_ENUM(IVSHM_RESET_PEER_DEAD);
TRACE_DEFINE_ENUM(IVSHM_RESET_DEVICE_GONE);
TRACE_DEFINE_ENUM(IVSHM_RESET_INVALID);
TRACE_DEFINE_ENUM(IVSHM_CLOSE_EOF);
TRACE_DEFINE_ENUM(IVSHM_CLOSE_RESET);
TRACE_DEFINE_ENUM(IVSHM_CLOSE_ABORT);

#define ivshm_tp_show_type(type)					\
	__print_symbolic(type, { SOCK_STREAM, "stream" },		\
			 { SOCK_SEQPACKET, "seqpacket" },		\
			 { SOCK_DGRAM, "dgram" })

/* The socket events start with the connection's addressing: the fields
 * region, type, lpeer, lport, rpeer and rport, filled in by this and
 * printed with IVSHM_TP_SOCK_FMT.
 */
#define IVSHM_TP_SOCK_ASSIGN(vsk)					\
	do {								\
		const struct ivshm_sock *tp_vsk_ = (vsk);		\
									\
		__entry->region = tp_vsk_->local.sivshm_region;	\
		__entry->type = tp_vsk_->sk.sk_type;			\
		__entry->lpeer = tp_vsk_->local.sivshm_peer;		\
		__entry->lport = tp_vsk_->local.sivshm_port;		\
		__entry->rpeer = tp_vsk_->remote.sivshm_peer;		\
		__entry->rport = tp_vsk_->remote.sivshm_port;		\
	} while (0)

#define IVSHM_TP_SOCK_FMT	"region=%u %s local=%u:%u remote=%u:%u"

/* connect(): the request is published on our new tx channel. */
TRACE_EVENT(ivshmem_connect,
	    TP_PROTO(const struct ivshm_sock *vsk),
	    TP_ARGS(vsk),
	    TP_STRUCT__entry(__field(u16, region)
			     __field(u16, type)
			     __field(u32, lpeer)
			     __field(u32, lport)
			     __field(u32, rpeer)
			     __field(u32, rport)
			     __field(u32, tx)
			     __field(u32, tx_gen)
			     __field(u32, tx_size)),
	    TP_fast_assign(IVSHM_TP_SOCK_ASSIGN(vsk);
			   __entry->tx = vsk->tx.index;
			   __entry->tx_gen = vsk->tx.generation;
			   __entry->tx_size = vsk->tx.size;),
	    TP_printk(IVSHM_TP_SOCK_FMT " tx=%u gen=%u size=%u",
		      __entry->region, ivshm_tp_show_type(__entry->type),
		      __entry->lpeer, __entry->lport, __entry->rpeer,
		      __entry->rport, __entry->tx, __entry->tx_gen,
		      __entry->tx_size)
);

/* The outcome of a connect() that got as far as ivshmem_connect: 0 or a
 * negative errno.
 */
TRACE_EVENT(ivshmem_connect_done,
	    TP_PROTO(const struct ivshm_sock *vsk, int err),
	    TP_ARGS(vsk, err),
	    TP_STRUCT__entry(__field(u16, region)
			     __field(u16, type)
			     __field(u32, lpeer)
			     __field(u32, lport)
			     __field(u32, rpeer)
			     __field(u32, rport)
			     __field(int, err)),
	    TP_fast_assign(IVSHM_TP_SOCK_ASSIGN(vsk);
			   __entry->err = err;),
	    TP_printk(IVSHM_TP_SOCK_FMT " err=%d",
		      __entry->region, ivshm_tp_show_type(__entry->type),
		      __entry->lpeer, __entry->lport, __entry->rpeer,
		      __entry->rport, __entry->err)
);

/* The event work accepted a request: a child joins the accept queue.
 * rx is the request's channel, tx the reply channel.
 */
TRACE_EVENT(ivshmem_accept,
	    TP_PROTO(const struct ivshm_sock *child),
	    TP_ARGS(child),
	    TP_STRUCT__entry(__field(u16, region)
			     __field(u16, type)
			     __field(u32, lpeer)
			     __field(u32, lport)
			     __field(u32, rpeer)
			     __field(u32, rport)
			     __field(u32, rx)
			     __field(u32, tx)),
	    TP_fast_assign(IVSHM_TP_SOCK_ASSIGN(child);
			   __entry->rx = child->rx.index;
			   __entry->tx = child->tx.index;),
	    TP_printk(IVSHM_TP_SOCK_FMT " rx=%u tx=%u",
		      __entry->region, ivshm_tp_show_type(__entry->type),
		      __entry->lpeer, __entry->lport, __entry->rpeer,
		      __entry->rport, __entry->rx, __entry->tx)
);

/* Our side of a connection, or a pending request, ends: @send_state is
 * what the peer is told on our tx channel.
 */
TRACE_EVENT(ivshmem_close,
	    TP_PROTO(const struct ivshm_sock *vsk, u32 send_state),
	    TP_ARGS(vsk, send_state),
	    TP_STRUCT__entry(__field(u16, region)
			     __field(u16, type)
			     __field(u32, lpeer)
			     __field(u32, lport)
			     __field(u32, rpeer)
			     __field(u32, rport)
			     __field(u8, how)),
	    TP_fast_assign(IVSHM_TP_SOCK_ASSIGN(vsk);
			   __entry->how =
				vsk->sk.sk_state != TCP_ESTABLISHED ?
				IVSHM_CLOSE_ABORT :
				send_state == IVSHM_SEND_RESET ?
				IVSHM_CLOSE_RESET : IVSHM_CLOSE_EOF;),
	    TP_printk(IVSHM_TP_SOCK_FMT " how=%s",
		      __entry->region, ivshm_tp_show_type(__entry->type),
		      __entry->lpeer, __entry->lport, __entry->rpeer,
		      __entry->rport,
		      __print_symbolic(__entry->how,
				       { IVSHM_CLOSE_EOF, "eof" },
				       { IVSHM_CLOSE_RESET, "reset" },
				       { IVSHM_CLOSE_ABORT, "abort" }))
);

/* A connection is reset; @err is what the socket's calls fail with from
 * now on, a negative errno (0 when the reset comes from its close).
 */
TRACE_EVENT(ivshmem_reset,
	    TP_PROTO(const struct ivshm_sock *vsk, int cause, int err),
	    TP_ARGS(vsk, cause, err),
	    TP_STRUCT__entry(__field(u16, region)
			     __field(u16, type)
			     __field(u32, lpeer)
			     __field(u32, lport)
			     __field(u32, rpeer)
			     __field(u32, rport)
			     __field(u8, cause)
			     __field(int, err)),
	    TP_fast_assign(IVSHM_TP_SOCK_ASSIGN(vsk);
			   __entry->cause = cause;
			   __entry->err = err;),
	    TP_printk(IVSHM_TP_SOCK_FMT " cause=%s err=%d",
		      __entry->region, ivshm_tp_show_type(__entry->type),
		      __entry->lpeer, __entry->lport, __entry->rpeer,
		      __entry->rport,
		      __print_symbolic(__entry->cause,
				       { IVSHM_RESET_LOCAL, "local" },
				       { IVSHM_RESET_PEER, "peer" },
				       { IVSHM_RESET_PEER_DEAD, "peer_dead" },
				       { IVSHM_RESET_DEVICE_GONE, "device_gone" },
				       { IVSHM_RESET_INVALID, "invalid" }),
		      __entry->err)
);

/* ivshm_chan_alloc(): @err is 0, or why there is no channel of @size
 * (index, gen and offset are then zero).
 */
TRACE_EVENT(ivshmem_chan_alloc,
	    TP_PROTO(const struct ivshm_dev *dev, u32 size,
		     const struct ivshm_ring *ring, int err),
	    TP_ARGS(dev, size, ring, err),
	    TP_STRUCT__entry(__field(u16, region)
			     __field(u32, index)
			     __field(u32, gen)
			     __field(u32, offset)
			     __field(u32, size)
			     __field(int, err)),
	    TP_fast_assign(__entry->region = dev->index;
			   __entry->index = err ? 0 : ring->index;
			   __entry->gen = err ? 0 : ring->generation;
			   __entry->offset = err ? 0 : ring->offset;
			   __entry->size = size;
			   __entry->err = err;),
	    TP_printk("region=%u index=%u gen=%u offset=%#x size=%u err=%d",
		      __entry->region, __entry->index, __entry->gen,
		      __entry->offset, __entry->size, __entry->err)
);

/* A channel entry is freed: one of ours, or one a dead @sender sent us.
 * The entry is still allocated and was checked against @gen and @sender;
 * its receiver and geometry are read once, for the record only.
 */
TRACE_EVENT(ivshmem_chan_free,
	    TP_PROTO(const struct ivshm_dev *dev, u32 index, u32 gen,
		     u32 sender),
	    TP_ARGS(dev, index, gen, sender),
	    TP_STRUCT__entry(__field(u16, region)
			     __field(u16, sender)
			     __field(u16, receiver)
			     __field(u32, index)
			     __field(u32, gen)
			     __field(u32, offset)
			     __field(u32, size)),
	    TP_fast_assign(const struct ivshm_channel *ch = &dev->chans[index];

			   __entry->region = dev->index;
			   __entry->sender = sender;
			   __entry->receiver = ivshm_rd16(&ch->receiver_vm);
			   __entry->index = index;
			   __entry->gen = gen;
			   __entry->offset = ivshm_rd32(&ch->buff_offset);
			   __entry->size = ivshm_rd32(&ch->buff_size);),
	    TP_printk("region=%u index=%u gen=%u offset=%#x size=%u sender=%u receiver=%u",
		      __entry->region, __entry->index, __entry->gen,
		      __entry->offset, __entry->size, __entry->sender,
		      __entry->receiver)
);

/* One of our channels switches to a new ring (ivshm_chan_switch()): it
 * was empty, and the next byte goes at the same position in the new ring.
 */
TRACE_EVENT(ivshmem_chan_resize,
	    TP_PROTO(const struct ivshm_dev *dev, u32 index, u32 old_offset,
		     u32 old_size, u32 new_offset, u32 new_size),
	    TP_ARGS(dev, index, old_offset, old_size, new_offset, new_size),
	    TP_STRUCT__entry(__field(u16, region)
			     __field(u32, index)
			     __field(u32, old_offset)
			     __field(u32, old_size)
			     __field(u32, new_offset)
			     __field(u32, new_size)),
	    TP_fast_assign(__entry->region = dev->index;
			   __entry->index = index;
			   __entry->old_offset = old_offset;
			   __entry->old_size = old_size;
			   __entry->new_offset = new_offset;
			   __entry->new_size = new_size;),
	    TP_printk("region=%u index=%u old_offset=%#x old_size=%u new_offset=%#x new_size=%u",
		      __entry->region, __entry->index, __entry->old_offset,
		      __entry->old_size, __entry->new_offset,
		      __entry->new_size)
);

/* A doorbell interrupt was sent to @peer.  Not traced: the doorbells not
 * sent because the peer did not ask for one, and the local wakeups of a
 * connection to ourselves.
 */
TRACE_EVENT(ivshmem_doorbell_send,
	    TP_PROTO(const struct ivshm_dev *dev, u32 peer),
	    TP_ARGS(dev, peer),
	    TP_STRUCT__entry(__field(u16, region)
			     __field(u32, self)
			     __field(u32, peer)),
	    TP_fast_assign(__entry->region = dev->index;
			   __entry->self = dev->self;
			   __entry->peer = peer;),
	    TP_printk("region=%u self=%u peer=%u", __entry->region,
		      __entry->self, __entry->peer)
);

/* A doorbell interrupt came in on MSI-X vector @vector. */
TRACE_EVENT(ivshmem_doorbell_recv,
	    TP_PROTO(const struct ivshm_dev *dev, u32 vector),
	    TP_ARGS(dev, vector),
	    TP_STRUCT__entry(__field(u16, region)
			     __field(u32, self)
			     __field(u32, vector)),
	    TP_fast_assign(__entry->region = dev->index;
			   __entry->self = dev->self;
			   __entry->vector = vector;),
	    TP_printk("region=%u self=%u vector=%u", __entry->region,
		      __entry->self, __entry->vector)
);

#endif /* _IVSHM_TRACE_H */

/* Out of tree: define_trace.h finds this file through -I$(src). */
#undef TRACE_INCLUDE_PATH
#define TRACE_INCLUDE_PATH .
#undef TRACE_INCLUDE_FILE
#define TRACE_INCLUDE_FILE trace
#include <trace/define_trace.h>
