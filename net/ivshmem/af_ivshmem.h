/* SPDX-License-Identifier: GPL-2.0 */
/* AF_IVSHMEM internal definitions shared by the socket layer (socket.c),
 * the region code (region.c) and the PCI driver (pci.c).
 */
#ifndef _NET_IVSHMEM_AF_IVSHMEM_H
#define _NET_IVSHMEM_AF_IVSHMEM_H

#include <linux/atomic.h>
#include <linux/list.h>
#include <linux/mutex.h>
#include <linux/pci.h>
#include <linux/spinlock.h>
#include <linux/uio.h>
#include <linux/wait.h>
#include <linux/workqueue.h>
#include <net/sock.h>
#include <uapi/linux/af_ivshmem.h>

#include "ivshmem_abi.h"

#define IVSHM_MAX_DEVICES	8
#define IVSHM_HEARTBEAT_MS	200	/* heartbeat and liveness check period */
#define IVSHM_POLL_FAST_ROUNDS	64	/* idle polls before the poller backs off */

/* Counters of one device, one sysfs file each in the PCI device's
 * "stats" directory (pci.c), and IVSHMEM_A_STATS of the fabric view
 * (fabric.c).  Documentation/networking/af_ivshmem.rst says what each
 * counts.
 */
struct ivshm_stats {
	atomic64_t doorbells_sent;
	atomic64_t doorbells_received;
	atomic64_t validation_failures;
	atomic64_t lock_steals;
	atomic64_t connects_refused;
	atomic64_t doorbells_suppressed;
	atomic64_t peers_declared_dead;
	atomic64_t channels_reclaimed;
	atomic64_t dgram_sent;
	atomic64_t dgram_received;
	atomic64_t dgram_dropped_no_socket;
	atomic64_t dgram_dropped_rcvbuf;
	atomic64_t request_scans;
	atomic64_t resets_sent;
	atomic64_t resets_received;
	atomic64_t resets_peer_dead;
	atomic64_t resets_device_gone;
	atomic64_t channels_allocated;
	atomic64_t channels_freed;
	atomic64_t rebalances;
	atomic64_t channels_grown;
	atomic64_t channels_shrunk;
	atomic64_t resizes_aborted;
	atomic64_t doorbells_limited;
	atomic64_t auth_failures;
	atomic64_t doorbell_wakes;
	atomic64_t channels_moved;
};

/**
 * struct ivshm_peer_watch - what this guest has seen of one peer slot
 * @epoch: the slot's epoch when @heartbeat last changed
 * @heartbeat: the last heartbeat value read
 * @changed: jiffies when @heartbeat or @epoch last changed
 * @stale_checks: checks in a row that saw no change
 * @dead: the incarnation @epoch is dead: its heartbeat stopped
 * @reclaim: its channels addressed to us still have to be freed
 */
struct ivshm_peer_watch {
	u64 epoch;
	u64 heartbeat;
	unsigned long changed;
	unsigned int stale_checks;
	bool dead;
	bool reclaim;
};

/**
 * struct ivshm_chan_seen - traffic of one channel as the rebalancer saw it
 * @sig: head_touch + tail at the last run
 * @moved: jiffies of the last run that found @sig changed
 */
struct ivshm_chan_seen {
	u32 sig;
	unsigned long moved;
};

/**
 * struct ivshm_dev - one IVSHMEM device (one region) in this guest
 * @pdev: the PCI device
 * @regs: BAR0 registers
 * @shm: BAR2, the shared region, mapped write-back
 * @shm_size: size of @shm in bytes
 * @index: region index, as used in sockaddr_ivshmem.sivshm_region
 * @self: our peer id on the region
 * @doorbell: true when the device has a server and MSI-X doorbells
 * @nvec: number of MSI-X vectors in use
 * @hdr: the control section
 * @peers: the peer table
 * @chans: the channel table
 * @data_end: byte offset of the end of the data area
 * @alloc_mutex: serialises this guest's users of the control lock
 * @lock_seq: next control-lock sequence number (under @alloc_mutex)
 * @extents: scratch array for the allocator (under @alloc_mutex)
 * @alloc_hint: next channel index to try (under @alloc_mutex)
 * @answered_gen: per channel index, the generation of the last connection
 *	request this guest answered (only touched by the event work)
 * @request_seen: per peer, the last request_seq seen (event work only)
 * @next_request_scan: jiffies of the next unconditional request scan
 * @request_seq: our own slot's request_seq
 * @event_work: scans the region and wakes sockets; run by the doorbell
 *	interrupt, and periodically (polling mode: every @poll_delay)
 * @poll_delay: polling mode: the current interval in jiffies, short while
 *	there is traffic, doubling up to poll_idle_ms while idle
 * @idle_polls: polls in a row that found nothing to do
 * @socks_lock: protects @socks and @zombies
 * @socks: sockets with channels on this device
 * @zombies: our channels whose receiver has not released them yet
 * @dead: set on removal; nothing new starts
 * @heartbeat_work: publishes our heartbeat and watches the others'
 * @heartbeat: our heartbeat value (never read back from the region)
 * @watch: per peer slot, its liveness as we see it (heartbeat work only,
 *	but @watch[].dead is read by others: see ivshm_peer_alive())
 * @dgram: datagram channels to and from each peer (dgram.c)
 * @rebalance_work: the rebalancer (socket.c), run every
 *	rebalance_interval_ms and after every rebalance_doorbells events
 * @rebalance_events: doorbells (or busy polls) since the last kick
 * @rebalance_urgent: the next run shrinks every idle channel of ours now
 *	(a connection found the region full)
 * @rebalance_shrinks: runs that did such an urgent shrink, for waiters
 *	on @rebalance_wq
 * @rebalance_wq: woken after each run
 * @last_rebalance: jiffies at the end of the last run, 0 before the first
 * @rebalance_seen: per channel index, what the rebalancer last saw of
 *	its traffic (rebalancer only)
 * @stats: counters
 * @storm_end: jiffies at the end of the event work's current time window
 * @storm_ns: time the event work spent in that window in runs that found
 *	nothing to do (event work only)
 * @storm: its budget for the window is spent: doorbells and kicks wait for
 *	the run queued at the window's end (pci.c)
 * @event_shrink_waited: the current event-work run has waited for an
 *	urgent shrink already (socket.c)
 * @sleepers_lock: protects @sleepers; taken in the doorbell interrupt
 * @sleepers: sockets blocked in recv() or send() on this device, which the
 *	doorbell interrupt wakes itself (see ivshm_wake_sleepers())
 * @event_soon: the event work is due within a tick: a doorbell that woke a
 *	sleeper does not move it again (pci.c)
 */
struct ivshm_dev {
	struct pci_dev *pdev;
	void __iomem *regs;
	void *shm;
	u64 shm_size;
	unsigned int index;
	u32 self;
	bool doorbell;
	int nvec;
	struct ivshm_region_header *hdr;
	struct ivshm_peer_slot *peers;
	struct ivshm_channel *chans;
	u32 data_end;
	struct mutex alloc_mutex;	/* see @alloc_mutex above */
	u64 lock_seq;
	u64 *extents;
	u32 alloc_hint;
	u32 *answered_gen;
	u32 request_seen[IVSHM_MAX_PEERS];
	unsigned long next_request_scan;
	atomic_t request_seq;
	struct delayed_work event_work;
	unsigned long poll_delay;
	unsigned int idle_polls;
	spinlock_t socks_lock;		/* see @socks_lock above */
	struct list_head socks;
	struct list_head zombies;
	bool dead;
	struct delayed_work heartbeat_work;
	u64 heartbeat;
	struct ivshm_peer_watch watch[IVSHM_MAX_PEERS];
	struct ivshm_dgram_dev *dgram;
	struct delayed_work rebalance_work;
	atomic_t rebalance_events;
	bool rebalance_urgent;
	atomic_t rebalance_shrinks;
	wait_queue_head_t rebalance_wq;
	unsigned long last_rebalance;
	struct ivshm_chan_seen *rebalance_seen;
	struct ivshm_stats stats;
	unsigned long storm_end;
	u64 storm_ns;
	bool storm;
	bool event_shrink_waited;
	spinlock_t sleepers_lock;	/* see @sleepers_lock above */
	struct list_head sleepers;
	bool event_soon;
};

/**
 * struct ivshm_ring - this guest's private view of one channel
 * @index: channel table index
 * @generation: the entry's generation when the connection was set up
 * @offset: validated byte offset of the ring in the region
 * @size: validated ring size in bytes
 * @pos: our own position: head for a channel we send on, tail for one we
 *	receive on.  Never read back from shared memory.
 */
struct ivshm_ring {
	u32 index;
	u32 generation;
	u32 offset;
	u32 size;
	u64 pos;
};

/**
 * struct ivshm_resize - a resize of one of our channels, decided and not
 *	yet switched to (the switch waits for the ring to drain)
 * @size: the new ring size; 0 when no resize is pending
 * @reserve: a growth must leave this many bytes of the data area free
 * @unit: a growth cut short by the room there is gets a multiple of this
 *	(channel_min_size, a multiple of the block size), so that every size
 *	the rebalancer picks leaves gaps that hold whole minimum channels
 * @move: not a resize but a move (compaction): @size is the ring's own,
 *	and the ring goes to the lowest gap that holds it if that is below
 *	its offset, else stays
 */
struct ivshm_resize {
	u32 size;
	u32 reserve;
	u32 unit;
	bool move;
};

/* A channel we sent on, closed, and wait for the receiver to release.
 * @request: a connection request we gave up on (never established): if
 * the peer accepted it, we release its reply channel, which no socket of
 * ours ever took; @reply_done once we have.
 * @paired: the connection had the peer's channel to us, @pair_index with
 * @pair_generation.  Once the peer has freed that, it is done with ours
 * too, released or not (see ivshm_zombies_reap()).
 */
struct ivshm_zombie {
	struct list_head node;
	u32 index;
	u32 generation;
	u32 peer;
	u64 peer_epoch;
	bool request;
	bool reply_done;
	bool paired;
	u32 pair_index;
	u32 pair_generation;
};

/* Shared fields: one READ_ONCE/WRITE_ONCE each, converted from LE. */
static inline u16 ivshm_rd16(const __le16 *p)
{
	return le16_to_cpu(READ_ONCE(*p));
}

static inline u32 ivshm_rd32(const __le32 *p)
{
	return le32_to_cpu(READ_ONCE(*p));
}

static inline u64 ivshm_rd64(const __le64 *p)
{
	return le64_to_cpu(READ_ONCE(*p));
}

static inline void ivshm_wr16(__le16 *p, u16 v)
{
	WRITE_ONCE(*p, cpu_to_le16(v));
}

static inline void ivshm_wr32(__le32 *p, u32 v)
{
	WRITE_ONCE(*p, cpu_to_le32(v));
}

static inline void ivshm_wr64(__le64 *p, u64 v)
{
	WRITE_ONCE(*p, cpu_to_le64(v));
}

/* Compare-and-exchange on a shared field; returns the old value. */
static inline u32 ivshm_cmpxchg32(__le32 *p, u32 old, u32 new)
{
	return le32_to_cpu((__force __le32)cmpxchg((__force u32 *)p,
			   (__force u32)cpu_to_le32(old),
			   (__force u32)cpu_to_le32(new)));
}

static inline u64 ivshm_cmpxchg64(__le64 *p, u64 old, u64 new)
{
	return le64_to_cpu((__force __le64)cmpxchg64((__force u64 *)p,
			   (__force u64)cpu_to_le64(old),
			   (__force u64)cpu_to_le64(new)));
}

/* Byte offset of ring position @pos in @ring. */
static inline u32 ivshm_ring_off(const struct ivshm_ring *ring, u64 pos)
{
	u32 rem;

	div_u64_rem(pos, ring->size, &rem);
	return rem;
}

/* Copies @len bytes from @iter into @ring (mapped at @base) at @pos,
 * wrapping at the ring's end.
 */
static inline int ivshm_ring_fill(void *base, const struct ivshm_ring *ring,
				  u64 pos, struct iov_iter *iter, size_t len)
{
	u32 off = ivshm_ring_off(ring, pos);
	size_t first = min_t(size_t, len, ring->size - off);

	if (copy_from_iter(base + off, first, iter) != first)
		return -EFAULT;
	if (len > first && copy_from_iter(base, len - first, iter) !=
			   len - first)
		return -EFAULT;
	return 0;
}

/* Region layer (region.c). */
int ivshm_region_attach(struct ivshm_dev *dev);
void ivshm_region_detach(struct ivshm_dev *dev);
bool ivshm_peer_active(struct ivshm_dev *dev, u32 peer, u64 *epoch);
bool ivshm_peer_alive(struct ivshm_dev *dev, u32 peer, u64 epoch);
bool ivshm_peer_declared_dead(struct ivshm_dev *dev, u32 peer, u64 epoch);
bool ivshm_peers_check(struct ivshm_dev *dev);
void ivshm_reclaim_dead_peers(struct ivshm_dev *dev);
int ivshm_chan_free_foreign(struct ivshm_dev *dev, u32 index, u32 generation,
			    u32 sender);
int ivshm_chan_alloc(struct ivshm_dev *dev, u32 size, struct ivshm_ring *ring);
int ivshm_chan_free(struct ivshm_dev *dev, u32 index, u32 generation);
int ivshm_chan_switch(struct ivshm_dev *dev, struct ivshm_ring *ring,
		      struct ivshm_resize *rs);
bool ivshm_chan_geometry(struct ivshm_dev *dev, u32 offset, u32 size);
bool ivshm_chan_held(struct ivshm_dev *dev, u32 index, u32 generation,
		     u32 sender);
struct ivshm_channel *ivshm_reply_channel(struct ivshm_dev *dev, u32 index,
					  u32 gen, u32 peer, u32 self,
					  u32 req_index, u32 req_gen);
int ivshm_ring_state(struct ivshm_dev *dev, const struct ivshm_ring *ring);
s64 ivshm_ring_room(struct ivshm_dev *dev, const struct ivshm_ring *ring);
void ivshm_note_bad(struct ivshm_dev *dev, const char *what, u32 index);
void ivshm_zombies_reap(struct ivshm_dev *dev, bool force);

static inline struct ivshm_channel *ivshm_chan(struct ivshm_dev *dev, u32 i)
{
	return &dev->chans[i];
}

/* Announces a request or datagram channel just published in the table. */
void ivshm_post_request(struct ivshm_dev *dev);

/* Device layer (pci.c). */
void ivshm_ring_doorbell(struct ivshm_dev *dev, u32 peer);
void ivshm_kick(struct ivshm_dev *dev);
void ivshm_rebalance_kick(struct ivshm_dev *dev);
void ivshm_rebalance_kick_all(void);
void ivshm_rebalance_event(struct ivshm_dev *dev);
bool ivshm_wake_sleepers(struct ivshm_dev *dev);
struct ivshm_dev *ivshm_dev_get_by_index(unsigned int index);

/* Datagram transport (dgram.c). */
extern unsigned int ivshm_dgram_channel_size;
u32 ivshm_dgram_min_channel(void);
int ivshm_dgram_attach(struct ivshm_dev *dev);
void ivshm_dgram_detach(struct ivshm_dev *dev);
void ivshm_dgram_hold(struct ivshm_dev *dev);
void ivshm_dgram_unhold(struct ivshm_dev *dev);
int ivshm_dgram_xmit(struct ivshm_dev *dev, u32 peer, u32 src_port,
		     u32 dst_port, struct iov_iter *iter, u32 len, long *timeo);
void ivshm_dgram_adopt(struct ivshm_dev *dev, u32 index, u32 gen,
		       struct ivshm_channel *ch, u32 sender);
bool ivshm_dgram_events(struct ivshm_dev *dev);

/* Socket layer (socket.c). */
bool ivshm_dev_events(struct ivshm_dev *dev);
void ivshm_dgram_deliver(struct ivshm_dev *dev, u32 src_peer, u32 src_port,
			 u32 dst_port, struct sk_buff *skb);
void ivshm_dev_detach_socks(struct ivshm_dev *dev);
void ivshm_rebalance(struct ivshm_dev *dev);
int ivshm_sock_init(void);
void ivshm_sock_exit(void);

/* Published IPv4 addresses (addr.c). */
int ivshm_addr_init(void);
void ivshm_addr_exit(void);
void ivshm_addr_changed(void);
int ivshm_addr_ioctl(unsigned int cmd, void __user *arg);

/* The fabric view, generic netlink family "ivshmem" (fabric.c). */
int ivshm_fabric_init(void);
void ivshm_fabric_exit(void);

/* For af_ivshmem_diag (socket.c, exported). */
struct ivshmem_diag_msg;
struct ivshmem_diag_channels;
int ivshm_family(void);
struct sock *ivshm_diag_next(struct sock *prev, unsigned long *pos);
int ivshm_diag_fill(struct sock *sk, struct ivshmem_diag_msg *msg,
		    struct ivshmem_diag_channels *chans);

/* Module parameters (socket.c). */
extern unsigned int ivshm_channel_size;
extern unsigned int ivshm_poll_interval_ms;
extern unsigned int ivshm_poll_idle_ms;
extern unsigned int ivshm_lock_lease_ms;
extern unsigned int ivshm_liveness_timeout_ms;
extern unsigned int ivshm_rebalance_interval_ms;
extern unsigned int ivshm_rebalance_doorbells;

/* Device table (pci.c). */
extern struct mutex ivshm_devices_mutex;

#endif /* _NET_IVSHMEM_AF_IVSHMEM_H */
