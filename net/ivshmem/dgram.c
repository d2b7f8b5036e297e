// SPDX-License-Identifier: GPL-2.0
/* AF_IVSHMEM datagram transport: one channel from this guest to each peer
 * it sends datagrams to, shared by all of this guest's datagram sockets,
 * and the channels other guests opened to us, drained by the event work
 * into the receiving sockets' queues.
 *
 * A datagram is a struct ivshm_dgram header, its payload and padding to
 * 8 bytes, published at once by moving head.  Delivery is in order per
 * pair of guests; a datagram is dropped (and counted) only by the
 * receiving guest, when no socket is bound to its port or the socket's
 * receive buffer is full.  A sender whose channel is full waits for room
 * (or fails with EAGAIN when it must not wait).
 */
#include <linux/module.h>
#include <linux/sched/signal.h>
#include <linux/skbuff.h>
#include <linux/slab.h>
#include <linux/uio.h>

#include "af_ivshmem.h"

/* Datagrams drained from one channel per event-work run. */
#define IVSHM_DGRAM_BUDGET	256

/**
 * struct ivshm_dgram_tx - our datagram channel to one peer
 * @open: @ring is allocated and published
 * @ring: the channel (ring.pos is our head)
 * @peer_epoch: the peer's epoch when we opened it
 * @seen_tail: tail at the last look, to wake senders when it moves
 * @last_used: jiffies of the last datagram sent on it
 * @waiters: senders waiting for room in it (under tx_mutex); a channel
 *	with waiters is never idle
 */
struct ivshm_dgram_tx {
	bool open;
	struct ivshm_ring ring;
	u64 peer_epoch;
	u64 seen_tail;
	unsigned long last_used;
	unsigned int waiters;
};

/**
 * struct ivshm_dgram_rx - a peer's datagram channel to us
 * @open: adopted and not released
 * @ring: the validated channel (ring.pos is our tail)
 */
struct ivshm_dgram_rx {
	bool open;
	struct ivshm_ring ring;
};

/**
 * struct ivshm_dgram_dev - datagram state of one device
 * @users: senders hold it for reading; removal takes it for writing
 * @tx_mutex: serialises senders and the event work on @tx
 * @space_wq: senders waiting for room in a channel
 * @tx: per peer, our channel to it
 * @rx: per peer, its channel to us (event work only)
 */
struct ivshm_dgram_dev {
	struct rw_semaphore users;
	struct mutex tx_mutex;		/* see @tx_mutex above */
	wait_queue_head_t space_wq;
	struct ivshm_dgram_tx tx[IVSHM_MAX_PEERS];
	struct ivshm_dgram_rx rx[IVSHM_MAX_PEERS];
};

unsigned int ivshm_dgram_channel_size = 256 * 1024;
module_param_named(dgram_channel_size, ivshm_dgram_channel_size, uint, 0444);
MODULE_PARM_DESC(dgram_channel_size, "bytes of each datagram channel (one per pair of guests and direction), multiple of 4096, at least 64 KiB");

static unsigned int dgram_idle_ms = 2000;
module_param(dgram_idle_ms, uint, 0644);
MODULE_PARM_DESC(dgram_idle_ms, "a datagram channel of ours unused this long, empty and with no sender waiting, is let go");

static u32 ivshm_dgram_bytes(u32 len)
{
	return sizeof(struct ivshm_dgram) + round_up(len, IVSHM_REC_ALIGN);
}

/* The smallest datagram channel: one largest datagram, in blocks. */
u32 ivshm_dgram_min_channel(void)
{
	return round_up(ivshm_dgram_bytes(IVSHMEM_DGRAM_MAX), IVSHM_BLOCK_SIZE);
}

/* Allocates the datagram state (device-managed). */
int ivshm_dgram_attach(struct ivshm_dev *dev)
{
	struct ivshm_dgram_dev *dd;

	dd = devm_kzalloc(&dev->pdev->dev, sizeof(*dd), GFP_KERNEL);

	if (!dd)
		return -ENOMEM;
	init_rwsem(&dd->users);
	mutex_init(&dd->tx_mutex);
	init_waitqueue_head(&dd->space_wq);
	dev->dgram = dd;
	return 0;
}

/* Lets go of our channel to @peer: it is freed once the peer released
 * it or is gone (the zombie list), or at once if that cannot be recorded.
 */
static void ivshm_dgram_tx_close(struct ivshm_dev *dev, u32 peer)
{
	struct ivshm_dgram_tx *tx = &dev->dgram->tx[peer];
	struct ivshm_channel *ch = ivshm_chan(dev, tx->ring.index);
	struct ivshm_zombie *z;

	if (!tx->open)
		return;
	tx->open = false;
	smp_wmb();	/* the last head before the shutdown */
	ivshm_wr32(&ch->sender_state, IVSHM_SEND_SHUTDOWN);
	z = kzalloc(sizeof(*z), GFP_KERNEL);
	if (!z) {
		ivshm_chan_free(dev, tx->ring.index, tx->ring.generation);
		return;
	}
	z->index = tx->ring.index;
	z->generation = tx->ring.generation;
	z->peer = peer;
	z->peer_epoch = tx->peer_epoch;
	spin_lock_bh(&dev->socks_lock);
	list_add_tail(&z->node, &dev->zombies);
	spin_unlock_bh(&dev->socks_lock);
	ivshm_ring_doorbell(dev, peer);
}

/* Tells the sender of rx channel @peer that we are done with it. */
static void ivshm_dgram_rx_close(struct ivshm_dev *dev, u32 peer)
{
	struct ivshm_dgram_rx *rx = &dev->dgram->rx[peer];
	struct ivshm_channel *ch = ivshm_chan(dev, rx->ring.index);

	if (!rx->open)
		return;
	rx->open = false;
	if (ivshm_rd32(&ch->alloc_state) == IVSHM_CHAN_ALLOCATED &&
	    ivshm_rd32(&ch->generation) == rx->ring.generation) {
		ivshm_wr32(&ch->receiver_state, IVSHM_RECV_RELEASED);
		ivshm_ring_doorbell(dev, peer);
	}
}

/* The device is going away (dev->dead is set and the event work stopped):
 * wake and wait out the senders, let go of every channel.
 */
void ivshm_dgram_detach(struct ivshm_dev *dev)
{
	struct ivshm_dgram_dev *dd = dev->dgram;
	u32 p;

	if (!dd)
		return;
	wake_up_interruptible_all(&dd->space_wq);
	down_write(&dd->users);
	mutex_lock(&dd->tx_mutex);
	for (p = 0; p < IVSHM_MAX_PEERS; p++) {
		ivshm_dgram_tx_close(dev, p);
		ivshm_dgram_rx_close(dev, p);
	}
	mutex_unlock(&dd->tx_mutex);
	up_write(&dd->users);
}

/* A sender holds the device's datagram state while it uses it. */
void ivshm_dgram_hold(struct ivshm_dev *dev)
{
	down_read(&dev->dgram->users);
}

void ivshm_dgram_unhold(struct ivshm_dev *dev)
{
	up_read(&dev->dgram->users);
}

/* Opens our channel to @peer (incarnation @epoch).  Under tx_mutex. */
static int ivshm_dgram_tx_open(struct ivshm_dev *dev, u32 peer, u64 epoch)
{
	struct ivshm_dgram_tx *tx = &dev->dgram->tx[peer];
	struct ivshm_channel *ch;
	int err;

	err = ivshm_chan_alloc(dev, ivshm_dgram_channel_size, &tx->ring);
	if (err)
		return err;
	ch = ivshm_chan(dev, tx->ring.index);
	ivshm_wr16(&ch->receiver_vm, peer);
	ivshm_wr32(&ch->src_port, IVSHMEM_PORT_ANY);
	ivshm_wr32(&ch->dst_port, IVSHMEM_PORT_ANY);
	ivshm_wr16(&ch->sock_type, SOCK_DGRAM);
	smp_wmb();	/* the channel's fields before its state */
	ivshm_wr32(&ch->sender_state, IVSHM_SEND_OPEN);
	ivshm_post_request(dev);
	tx->open = true;
	tx->peer_epoch = epoch;
	tx->seen_tail = 0;
	tx->last_used = jiffies;
	return 0;
}

/* Whether a sender waiting for @need bytes to @peer should look again. */
static bool ivshm_dgram_may_send(struct ivshm_dev *dev, u32 peer, u32 need)
{
	struct ivshm_dgram_tx *tx = &dev->dgram->tx[peer];

	s64 room;

	if (READ_ONCE(dev->dead) || !READ_ONCE(tx->open))
		return true;
	room = ivshm_ring_room(dev, &tx->ring);
	return room < 0 || room >= need;
}

/* A datagram header is 16 bytes at a multiple of 8: it may straddle the
 * ring's end (8 bytes before it, 8 at its start).  These copy it in two
 * parts, so that neither side ever touches memory past the ring.
 */
static void ivshm_dgram_hdr_put(void *base, const struct ivshm_ring *ring,
				u64 pos, const struct ivshm_dgram *hdr)
{
	u32 off = ivshm_ring_off(ring, pos);
	u32 first = min_t(u32, sizeof(*hdr), ring->size - off);

	memcpy(base + off, hdr, first);
	memcpy(base, (const void *)hdr + first, sizeof(*hdr) - first);
}

static void ivshm_dgram_hdr_get(const void *base,
				const struct ivshm_ring *ring, u64 pos,
				struct ivshm_dgram *hdr)
{
	u32 off = ivshm_ring_off(ring, pos);
	u32 first = min_t(u32, sizeof(*hdr), ring->size - off);

	memcpy(hdr, base + off, first);
	memcpy((void *)hdr + first, base, sizeof(*hdr) - first);
}

/* Copies a header and @len bytes from @iter into @tx at its head. */
static int ivshm_dgram_put(struct ivshm_dev *dev, struct ivshm_dgram_tx *tx,
			   const struct ivshm_dgram *hdr,
			   struct iov_iter *iter, u32 len)
{
	void *base = dev->shm + tx->ring.offset;

	ivshm_dgram_hdr_put(base, &tx->ring, tx->ring.pos, hdr);
	return ivshm_ring_fill(base, &tx->ring, tx->ring.pos + sizeof(*hdr),
			       iter, len);
}

/**
 * ivshm_dgram_xmit() - send one datagram to another guest
 * @dev: the region, held with ivshm_dgram_hold()
 * @peer: the receiving guest (not ourselves), below IVSHM_MAX_PEERS
 * @src_port: the sending socket's port
 * @dst_port: the destination port
 * @iter: the payload
 * @len: payload bytes, at most IVSHMEM_DGRAM_MAX
 * @timeo: how long to wait for room (0: not at all); updated
 *
 * Return: 0, or -EHOSTUNREACH (peer not there), -ENOBUFS (no channel),
 * -EAGAIN (no room in time), -EFAULT, -ENETDOWN or a signal's error.
 */
int ivshm_dgram_xmit(struct ivshm_dev *dev, u32 peer, u32 src_port,
		     u32 dst_port, struct iov_iter *iter, u32 len, long *timeo)
{
	struct ivshm_dgram_dev *dd = dev->dgram;
	struct ivshm_dgram_tx *tx = &dd->tx[peer];
	u32 need = ivshm_dgram_bytes(len);
	struct ivshm_dgram hdr = {
		.len = cpu_to_le32(len),
		.src_port = cpu_to_le32(src_port),
		.dst_port = cpu_to_le32(dst_port),
	};
	struct ivshm_channel *ch;
	bool reopened = false;
	s64 room;
	u64 epoch;
	int err;

	if (need > ivshm_dgram_channel_size)
		return -EMSGSIZE;
	mutex_lock(&dd->tx_mutex);
	for (;;) {
		if (READ_ONCE(dev->dead)) {
			err = -ENETDOWN;
			break;
		}
		if (!ivshm_peer_active(dev, peer, &epoch) ||
		    !ivshm_peer_alive(dev, peer, epoch)) {
			ivshm_dgram_tx_close(dev, peer);
			err = -EHOSTUNREACH;
			break;
		}
		if (tx->open && tx->peer_epoch != epoch)
			ivshm_dgram_tx_close(dev, peer);	/* a new incarnation */
		if (!tx->open) {
			err = ivshm_dgram_tx_open(dev, peer, epoch);
			if (err)
				break;
		}
		room = ivshm_ring_room(dev, &tx->ring);
		if (room < 0) {
			/* Let go by the receiver (its module was reloaded),
			 * or an impossible tail: one new channel, then give
			 * up.
			 */
			ivshm_dgram_tx_close(dev, peer);
			err = -EHOSTUNREACH;
			if (reopened)
				break;
			reopened = true;
			continue;
		}
		ch = ivshm_chan(dev, tx->ring.index);
		if (room >= need) {
			err = ivshm_dgram_put(dev, tx, &hdr, iter, len);
			if (err)
				break;
			smp_wmb();	/* the datagram before head */
			tx->ring.pos += need;
			ivshm_wr64(&ch->head, tx->ring.pos);
			ivshm_wr32(&ch->data_size, tx->ring.size - room + need);
			smp_mb();	/* head before the receiver's flag */
			if (ivshm_rd32(&ch->recv_waiting) ||
			    ivshm_rd32(&ch->receiver_state) == IVSHM_RECV_NONE)
				ivshm_ring_doorbell(dev, peer);
			atomic64_inc(&dev->stats.dgram_sent);
			tx->last_used = jiffies;
			break;
		}
		if (!*timeo) {
			err = -EAGAIN;
			break;
		}
		ivshm_wr16(&ch->send_waiting, 1);
		smp_mb();	/* flag before the recheck of tail */
		if (ivshm_ring_room(dev, &tx->ring) >= need)
			continue;
		tx->waiters++;
		mutex_unlock(&dd->tx_mutex);
		*timeo = wait_event_interruptible_timeout
			(dd->space_wq, ivshm_dgram_may_send(dev, peer, need),
			 *timeo);
		mutex_lock(&dd->tx_mutex);
		tx->waiters--;
		if (*timeo < 0) {
			err = *timeo;
			*timeo = 0;
			break;
		}
	}
	mutex_unlock(&dd->tx_mutex);
	return err;
}

/**
 * ivshm_dgram_adopt() - take a peer's new datagram channel to us
 * @dev: the region
 * @index: channel table index
 * @gen: its generation
 * @ch: the entry
 * @sender: the peer that opened it
 *
 * Run by the event work.  A peer has one datagram channel to us; a new
 * one replaces the old, which is released.
 */
void ivshm_dgram_adopt(struct ivshm_dev *dev, u32 index, u32 gen,
		       struct ivshm_channel *ch, u32 sender)
{
	struct ivshm_dgram_rx *rx = &dev->dgram->rx[sender];
	u32 off = ivshm_rd32(&ch->buff_offset);
	u32 size = ivshm_rd32(&ch->buff_size);
	u64 epoch;

	if (!ivshm_chan_geometry(dev, off, size) ||
	    size < ivshm_dgram_bytes(IVSHMEM_DGRAM_MAX) ||
	    !ivshm_peer_active(dev, sender, &epoch) ||
	    !ivshm_peer_alive(dev, sender, epoch)) {
		ivshm_note_bad(dev, "datagram channel", index);
		ivshm_wr32(&ch->receiver_state, IVSHM_RECV_REFUSED);
		ivshm_ring_doorbell(dev, sender);
		return;
	}
	ivshm_dgram_rx_close(dev, sender);
	rx->ring.index = index;
	rx->ring.generation = gen;
	rx->ring.offset = off;
	rx->ring.size = size;
	rx->ring.pos = 0;
	rx->open = true;
	/* The event work always wants to hear of new datagrams. */
	ivshm_wr32(&ch->recv_waiting, 1);
	smp_wmb();	/* flag before the answer */
	ivshm_wr32(&ch->receiver_state, IVSHM_RECV_ACCEPTED);
	ivshm_ring_doorbell(dev, sender);
}

/* Copies @len bytes at @pos of @ring into a new skb. */
static struct sk_buff *ivshm_dgram_skb(struct ivshm_dev *dev,
				       struct ivshm_ring *ring, u64 pos,
				       u32 len)
{
	void *base = dev->shm + ring->offset;
	u32 off = ivshm_ring_off(ring, pos);
	u32 first = min(len, ring->size - off);
	struct sk_buff *skb;

	skb = alloc_skb(len, GFP_KERNEL);
	if (!skb)
		return NULL;
	skb_put_data(skb, base + off, first);
	if (len > first)
		skb_put_data(skb, base, len - first);
	return skb;
}

/* Drains a peer's channel to us; returns true if there was anything. */
static bool ivshm_dgram_drain(struct ivshm_dev *dev, u32 peer)
{
	struct ivshm_dgram_rx *rx = &dev->dgram->rx[peer];
	struct ivshm_channel *ch = ivshm_chan(dev, rx->ring.index);
	struct ivshm_dgram hdr;
	unsigned int n = 0;
	u32 len;
	u64 head, avail;
	struct sk_buff *skb;

	if (ivshm_rd32(&ch->alloc_state) != IVSHM_CHAN_ALLOCATED ||
	    ivshm_rd32(&ch->generation) != rx->ring.generation) {
		rx->open = false;	/* freed: reclaimed or gone */
		return false;
	}
	head = ivshm_rd64(&ch->head);
	smp_rmb();	/* head before the datagrams it covers */
	avail = head - rx->ring.pos;
	if (avail > rx->ring.size) {
		ivshm_note_bad(dev, "datagram head", rx->ring.index);
		ivshm_dgram_rx_close(dev, peer);
		return true;
	}
	while (avail >= sizeof(hdr) && n++ < IVSHM_DGRAM_BUDGET) {
		ivshm_dgram_hdr_get(dev->shm + rx->ring.offset, &rx->ring,
				    rx->ring.pos, &hdr);
		len = le32_to_cpu(hdr.len);
		if (len > IVSHMEM_DGRAM_MAX || ivshm_dgram_bytes(len) > avail) {
			ivshm_note_bad(dev, "datagram", rx->ring.index);
			ivshm_dgram_rx_close(dev, peer);
			return true;
		}
		skb = ivshm_dgram_skb(dev, &rx->ring, rx->ring.pos + sizeof(hdr),
				      len);
		if (skb) {
			atomic64_inc(&dev->stats.dgram_received);
			ivshm_dgram_deliver(dev, peer, le32_to_cpu(hdr.src_port),
					    le32_to_cpu(hdr.dst_port), skb);
		} else {
			atomic64_inc(&dev->stats.dgram_dropped_rcvbuf);
		}
		rx->ring.pos += ivshm_dgram_bytes(len);
		avail -= ivshm_dgram_bytes(len);
	}
	if (!n) {
		/* The sender let go and everything was read: release. */
		if (ivshm_rd32(&ch->sender_state) != IVSHM_SEND_SHUTDOWN)
			return false;
		smp_rmb();	/* shutdown before the last head */
		if (ivshm_rd64(&ch->head) != rx->ring.pos)
			return false;
		ivshm_dgram_rx_close(dev, peer);
		return true;
	}
	smp_mb();	/* datagrams copied before tail */
	ivshm_wr64(&ch->tail, rx->ring.pos);
	smp_mb();	/* tail before the sender's flag */
	if (ivshm_rd16(&ch->send_waiting))
		ivshm_ring_doorbell(dev, peer);
	if (avail)
		ivshm_kick(dev);	/* budget spent: come back */
	return true;
}

/**
 * ivshm_dgram_events() - datagram part of the event work
 * @dev: the region
 *
 * Drains the channels peers opened to us and wakes senders whose channel
 * got room.  Our channels to peers that died or left are let go.
 *
 * Return: true if anything happened.
 */
bool ivshm_dgram_events(struct ivshm_dev *dev)
{
	struct ivshm_dgram_dev *dd = dev->dgram;
	bool active = false, wake = false;
	u64 epoch, tail;
	u32 p;

	for (p = 0; p < IVSHM_MAX_PEERS; p++)
		if (dd->rx[p].open)
			active |= ivshm_dgram_drain(dev, p);

	if (!mutex_trylock(&dd->tx_mutex)) {
		wake_up_interruptible_all(&dd->space_wq);
		return active;
	}
	for (p = 0; p < IVSHM_MAX_PEERS; p++) {
		struct ivshm_dgram_tx *tx = &dd->tx[p];
		struct ivshm_channel *ch;

		if (!tx->open)
			continue;
		if (!ivshm_peer_active(dev, p, &epoch) ||
		    epoch != tx->peer_epoch ||
		    !ivshm_peer_alive(dev, p, epoch)) {
			ivshm_dgram_tx_close(dev, p);
			wake = true;
			continue;
		}
		ch = ivshm_chan(dev, tx->ring.index);
		tail = ivshm_rd64(&ch->tail);
		if (tail == tx->ring.pos && !tx->waiters &&
		    time_after(jiffies, tx->last_used +
			       msecs_to_jiffies(READ_ONCE(dgram_idle_ms)))) {
			/* Idle and empty: give the space back.  Not while a
			 * sender waits for room: it was woken by nobody.
			 */
			ivshm_dgram_tx_close(dev, p);
			continue;
		}
		if (tail != tx->seen_tail) {
			tx->seen_tail = tail;
			active = true;
			/* Waiters look again at every move; a waiter that
			 * still lacks room sleeps on, so the flag that makes
			 * the receiver ring stays up while anyone waits.
			 */
			if (tx->waiters)
				wake = true;
			else if (ivshm_rd16(&ch->send_waiting))
				ivshm_wr16(&ch->send_waiting, 0);
		} else if (tx->waiters && ivshm_ring_state(dev, &tx->ring)) {
			wake = true;	/* they find it and count it */
		}
	}
	mutex_unlock(&dd->tx_mutex);
	if (wake)
		wake_up_interruptible_all(&dd->space_wq);
	return active;
}
