// SPDX-License-Identifier: GPL-2.0
/* AF_IVSHMEM region layer: formatting and attaching the shared region, the
 * cross-guest control lock, peer slots and channel allocation.
 *
 * Every value read from the region may have been written by a hostile
 * guest: it is read once with READ_ONCE(), validated, and only the
 * validated copy is used.
 */
#include <linux/delay.h>
#include <linux/jiffies.h>
#include <linux/sched.h>
#include <linux/slab.h>
#include <linux/sort.h>

#include "af_ivshmem.h"
#include "trace.h"

#define IVSHM_FORMAT_WAIT_MS	5000
#define IVSHM_LOCK_WAIT_MS	10000

void ivshm_note_bad(struct ivshm_dev *dev, const char *what, u32 index)
{
	atomic64_inc(&dev->stats.validation_failures);
	dev_warn_ratelimited(&dev->pdev->dev,
			     "invalid shared state: %s (entry %u)\n",
			     what, index);
}

/* Writes a fresh v1 header; called by the guest that won format_state. */
static void ivshm_region_format(struct ivshm_dev *dev)
{
	struct ivshm_region_header *hdr = dev->hdr;
	u32 data_blocks = (dev->shm_size - IVSHM_DATA_OFFSET) /
			  IVSHM_BLOCK_SIZE;

	memset(dev->shm + IVSHM_PEER_TABLE_OFFSET, 0,
	       IVSHM_DATA_OFFSET - IVSHM_PEER_TABLE_OFFSET);
	ivshm_wr32(&hdr->abi_version, IVSHM_ABI_VERSION);
	ivshm_wr64(&hdr->region_size, dev->shm_size);
	ivshm_wr32(&hdr->block_size, IVSHM_BLOCK_SIZE);
	ivshm_wr32(&hdr->max_peers, IVSHM_MAX_PEERS);
	ivshm_wr32(&hdr->max_channels, IVSHM_MAX_CHANNELS);
	ivshm_wr32(&hdr->peer_table_offset, IVSHM_PEER_TABLE_OFFSET);
	ivshm_wr32(&hdr->channel_table_offset, IVSHM_CHANNEL_TABLE_OFFSET);
	ivshm_wr32(&hdr->data_offset, IVSHM_DATA_OFFSET);
	ivshm_wr32(&hdr->data_blocks, data_blocks);
	ivshm_wr64(&hdr->control_lock, 0);
	ivshm_wr32(&hdr->free_start_offset, IVSHM_DATA_OFFSET);
	ivshm_wr32(&hdr->num_active_channel, 0);
	ivshm_wr64(&hdr->alloc_generation, 0);
	smp_wmb();	/* header fields before the magic */
	ivshm_wr32(&hdr->magic, IVSHM_MAGIC);
	smp_wmb();	/* magic before READY */
	ivshm_wr32(&hdr->format_state, IVSHM_FORMAT_READY);
}

/* Checks a header formatted by another guest against what we support. */
static int ivshm_region_validate(struct ivshm_dev *dev)
{
	struct ivshm_region_header *hdr = dev->hdr;
	u32 data_blocks = (dev->shm_size - IVSHM_DATA_OFFSET) /
			  IVSHM_BLOCK_SIZE;

	if (ivshm_rd32(&hdr->magic) != IVSHM_MAGIC ||
	    ivshm_rd32(&hdr->abi_version) != IVSHM_ABI_VERSION) {
		dev_err(&dev->pdev->dev,
			"region has magic %#x version %u, want %#x version %u\n",
			ivshm_rd32(&hdr->magic), ivshm_rd32(&hdr->abi_version),
			IVSHM_MAGIC, IVSHM_ABI_VERSION);
		return -EPROTO;
	}
	if (ivshm_rd64(&hdr->region_size) != dev->shm_size ||
	    ivshm_rd32(&hdr->block_size) != IVSHM_BLOCK_SIZE ||
	    ivshm_rd32(&hdr->max_peers) != IVSHM_MAX_PEERS ||
	    ivshm_rd32(&hdr->max_channels) != IVSHM_MAX_CHANNELS ||
	    ivshm_rd32(&hdr->peer_table_offset) != IVSHM_PEER_TABLE_OFFSET ||
	    ivshm_rd32(&hdr->channel_table_offset) != IVSHM_CHANNEL_TABLE_OFFSET ||
	    ivshm_rd32(&hdr->data_offset) != IVSHM_DATA_OFFSET ||
	    ivshm_rd32(&hdr->data_blocks) != data_blocks) {
		dev_err(&dev->pdev->dev, "region header has an unsupported layout\n");
		return -EPROTO;
	}
	return 0;
}

/* Formats the region if it is blank, else waits for it and checks it. */
static int ivshm_region_format_or_wait(struct ivshm_dev *dev)
{
	unsigned long deadline;

	if (ivshm_cmpxchg32(&dev->hdr->format_state, IVSHM_FORMAT_BLANK,
			    IVSHM_FORMAT_BUSY) == IVSHM_FORMAT_BLANK) {
		ivshm_region_format(dev);
		dev_info(&dev->pdev->dev, "formatted region (%llu bytes)\n",
			 dev->shm_size);
		return 0;
	}

	deadline = jiffies + msecs_to_jiffies(IVSHM_FORMAT_WAIT_MS);
	while (ivshm_rd32(&dev->hdr->format_state) != IVSHM_FORMAT_READY) {
		if (time_after(jiffies, deadline)) {
			dev_err(&dev->pdev->dev,
				"region stays unformatted (state %u)\n",
				ivshm_rd32(&dev->hdr->format_state));
			return -ETIMEDOUT;
		}
		msleep(20);
	}
	smp_rmb();	/* format_state before the header fields */
	return ivshm_region_validate(dev);
}

static int ivshm_peer_claim(struct ivshm_dev *dev)
{
	struct ivshm_peer_slot *slot;
	u32 i;

	if (!dev->doorbell) {
		/* No server hands out ids: claim the first free slot. */
		for (i = 0; i < IVSHM_MAX_PEERS; i++) {
			if (ivshm_cmpxchg32(&dev->peers[i].state,
					    IVSHM_PEER_FREE,
					    IVSHM_PEER_ACTIVE) == IVSHM_PEER_FREE)
				break;
		}
		if (i == IVSHM_MAX_PEERS) {
			dev_err(&dev->pdev->dev, "no free peer slot\n");
			return -EBUSY;
		}
		dev->self = i;
	}
	slot = &dev->peers[dev->self];
	ivshm_wr32(&slot->flags, dev->doorbell ? IVSHM_PEER_F_DOORBELL : 0);
	ivshm_wr64(&slot->heartbeat, 0);
	ivshm_wr32(&slot->request_seq, 0);
	atomic_set(&dev->request_seq, 0);
	ivshm_wr64(&slot->epoch, ivshm_rd64(&slot->epoch) + 1);
	smp_wmb();	/* slot fields before the slot turns active */
	ivshm_wr32(&slot->state, IVSHM_PEER_ACTIVE);
	return 0;
}

bool ivshm_peer_active(struct ivshm_dev *dev, u32 peer, u64 *epoch)
{
	struct ivshm_peer_slot *slot;

	if (peer >= IVSHM_MAX_PEERS)
		return false;
	slot = &dev->peers[peer];
	if (ivshm_rd32(&slot->state) != IVSHM_PEER_ACTIVE)
		return false;
	if (epoch)
		*epoch = ivshm_rd64(&slot->epoch);
	return true;
}

/**
 * ivshm_peer_alive() - is this incarnation of @peer still there?
 * @dev: the device
 * @peer: peer id
 * @epoch: the epoch the peer slot had when we started talking to it
 *
 * False once the slot is freed, taken by a new incarnation (another
 * epoch), or its heartbeat has stopped for the liveness timeout.
 */
bool ivshm_peer_alive(struct ivshm_dev *dev, u32 peer, u64 epoch)
{
	u64 now_epoch;

	if (!ivshm_peer_active(dev, peer, &now_epoch) || now_epoch != epoch)
		return false;
	return !ivshm_peer_declared_dead(dev, peer, epoch);
}

/**
 * ivshm_peer_declared_dead() - has our liveness check given up on @peer?
 * @dev: the device
 * @peer: peer id, below %IVSHM_MAX_PEERS
 * @epoch: the incarnation in question
 *
 * Unlike ivshm_peer_alive() this does not look at the peer slot: the
 * caller has read its state and epoch already.  Our own slot is never
 * declared dead.
 */
bool ivshm_peer_declared_dead(struct ivshm_dev *dev, u32 peer, u64 epoch)
{
	return READ_ONCE(dev->watch[peer].dead) &&
	       READ_ONCE(dev->watch[peer].epoch) == epoch;
}

/**
 * ivshm_peers_check() - one liveness check of every other peer slot
 * @dev: the device
 *
 * Run every IVSHM_HEARTBEAT_MS by the heartbeat work.  A peer is declared
 * dead when its heartbeat has not changed for the liveness timeout *and*
 * for as many of our own checks as fit in that time: if this guest was
 * not scheduled for a while, its own gap does not count against others.
 *
 * Return: true if a peer was declared dead (the caller runs the event work).
 */
bool ivshm_peers_check(struct ivshm_dev *dev)
{
	unsigned int need = ivshm_liveness_timeout_ms / IVSHM_HEARTBEAT_MS;
	unsigned long timeout = msecs_to_jiffies(ivshm_liveness_timeout_ms);
	bool died = false;
	u32 p;

	for (p = 0; p < IVSHM_MAX_PEERS; p++) {
		struct ivshm_peer_watch *w = &dev->watch[p];
		struct ivshm_peer_slot *slot = &dev->peers[p];
		u64 epoch, beat;

		if (p == dev->self ||
		    ivshm_rd32(&slot->state) != IVSHM_PEER_ACTIVE)
			continue;
		epoch = ivshm_rd64(&slot->epoch);
		beat = ivshm_rd64(&slot->heartbeat);
		if (epoch != w->epoch || beat != w->heartbeat) {
			w->epoch = epoch;
			w->heartbeat = beat;
			w->changed = jiffies;
			w->stale_checks = 0;
			WRITE_ONCE(w->dead, false);
			continue;
		}
		if (w->dead || ++w->stale_checks < need ||
		    !time_after(jiffies, w->changed + timeout))
			continue;
		WRITE_ONCE(w->dead, true);
		w->reclaim = true;
		died = true;
		atomic64_inc(&dev->stats.peers_declared_dead);
		dev_warn(&dev->pdev->dev,
			 "peer %u (epoch %llu) stopped beating: declared dead after %u ms\n",
			 p, epoch, jiffies_to_msecs(jiffies - w->changed));
	}
	return died;
}

int ivshm_region_attach(struct ivshm_dev *dev)
{
	int err;

	ivshm_abi_size_checks();
	if (dev->shm_size < IVSHM_MIN_REGION_SIZE ||
	    !is_power_of_2(dev->shm_size) || dev->shm_size > SZ_2G) {
		dev_err(&dev->pdev->dev,
			"region size %llu unsupported (power of two, 1 MiB to 2 GiB)\n",
			dev->shm_size);
		return -EINVAL;
	}
	dev->hdr = dev->shm;
	dev->peers = dev->shm + IVSHM_PEER_TABLE_OFFSET;
	dev->chans = dev->shm + IVSHM_CHANNEL_TABLE_OFFSET;
	dev->data_end = dev->shm_size;

	/* One more than the table: the entry being allocated. */
	dev->extents = kcalloc(IVSHM_MAX_CHANNELS + 1, sizeof(*dev->extents),
			       GFP_KERNEL);
	dev->answered_gen = kcalloc(IVSHM_MAX_CHANNELS,
				    sizeof(*dev->answered_gen), GFP_KERNEL);
	dev->rebalance_seen = kvcalloc(IVSHM_MAX_CHANNELS,
				       sizeof(*dev->rebalance_seen), GFP_KERNEL);
	if (!dev->extents || !dev->answered_gen || !dev->rebalance_seen) {
		err = -ENOMEM;
		goto fail;
	}

	err = ivshm_region_format_or_wait(dev);
	if (err)
		goto fail;
	err = ivshm_peer_claim(dev);
	if (err)
		goto fail;
	return 0;
fail:
	kfree(dev->extents);
	kfree(dev->answered_gen);
	kvfree(dev->rebalance_seen);
	dev->extents = NULL;
	dev->answered_gen = NULL;
	dev->rebalance_seen = NULL;
	return err;
}

void ivshm_region_detach(struct ivshm_dev *dev)
{
	struct ivshm_peer_slot *slot = &dev->peers[dev->self];

	ivshm_wr32(&slot->state, IVSHM_PEER_FREE);
	kfree(dev->extents);
	kfree(dev->answered_gen);
	kvfree(dev->rebalance_seen);
	dev->extents = NULL;
	dev->answered_gen = NULL;
	dev->rebalance_seen = NULL;
}

/* The control lock.  A plain 64-bit word in the header taken with
 * compare-and-exchange: 0 when free, else (sequence << 16) | (holder + 1).
 * A waiter that sees the same non-zero value for longer than the lease
 * (module parameter lock_lease_ms) takes the lock over: its holder is
 * presumed dead.  Holders keep it for a table scan only.
 */
static int ivshm_control_lock(struct ivshm_dev *dev, u64 *token)
{
	__le64 *word = &dev->hdr->control_lock;
	unsigned long deadline = jiffies + msecs_to_jiffies(IVSHM_LOCK_WAIT_MS);
	unsigned long seen_since = jiffies;
	u64 seen = 0, cur, mine;
	unsigned int spins = 0;

	lockdep_assert_held(&dev->alloc_mutex);
	for (;; cpu_relax()) {
		if (time_after(jiffies, deadline))
			return -ETIMEDOUT;
		mine = (++dev->lock_seq << 16) | (dev->self + 1);
		cur = ivshm_rd64(word);
		if (!cur) {
			if (ivshm_cmpxchg64(word, 0, mine) == 0)
				break;
			continue;
		}
		if (cur != seen) {
			seen = cur;
			seen_since = jiffies;
		} else if (time_after(jiffies, seen_since +
				      msecs_to_jiffies(ivshm_lock_lease_ms))) {
			if (ivshm_cmpxchg64(word, cur, mine) == cur) {
				atomic64_inc(&dev->stats.lock_steals);
				dev_warn(&dev->pdev->dev,
					 "control lock held by peer %llu past its lease: taken over\n",
					 (cur & 0xffff) - 1);
				break;
			}
		}
		if (++spins >= 64)
			usleep_range(20, 100);
	}
	*token = mine;
	return 0;
}

static void ivshm_control_unlock(struct ivshm_dev *dev, u64 token)
{
	/* cmpxchg orders the table writes before the release */
	if (ivshm_cmpxchg64(&dev->hdr->control_lock, token, 0) != token)
		dev_warn(&dev->pdev->dev, "control lock was taken from us\n");
}

bool ivshm_chan_geometry(struct ivshm_dev *dev, u32 offset, u32 size)
{
	return size && IS_ALIGNED(offset, IVSHM_BLOCK_SIZE) &&
	       IS_ALIGNED(size, IVSHM_BLOCK_SIZE) &&
	       offset >= IVSHM_DATA_OFFSET && offset < dev->data_end &&
	       size <= dev->data_end - offset;
}

static int ivshm_extent_cmp(const void *a, const void *b)
{
	u64 x = *(const u64 *)a, y = *(const u64 *)b;

	return x < y ? -1 : x > y;
}

/* Scans the table under the control lock: collects the extents of
 * allocated channels (offset << 32 | size) sorted by offset, and returns
 * their number.  Entries with impossible geometry are counted as
 * validation failures and occupy nothing.
 */
static unsigned int ivshm_collect_extents(struct ivshm_dev *dev)
{
	unsigned int n = 0;
	u32 i;

	for (i = 0; i < IVSHM_MAX_CHANNELS; i++) {
		struct ivshm_channel *ch = ivshm_chan(dev, i);
		u32 off, size;

		if (ivshm_rd32(&ch->alloc_state) != IVSHM_CHAN_ALLOCATED)
			continue;
		off = ivshm_rd32(&ch->buff_offset);
		size = ivshm_rd32(&ch->buff_size);
		if (!ivshm_chan_geometry(dev, off, size)) {
			ivshm_note_bad(dev, "channel geometry", i);
			continue;
		}
		dev->extents[n++] = (u64)off << 32 | size;
	}
	sort(dev->extents, n, sizeof(u64), ivshm_extent_cmp, NULL);
	return n;
}

/* Publishes num_active_channel and free_start_offset after a change. */
static void ivshm_publish_usage(struct ivshm_dev *dev, unsigned int n)
{
	u32 end = IVSHM_DATA_OFFSET;
	unsigned int i;

	for (i = 0; i < n; i++)
		end = max_t(u32, end, (dev->extents[i] >> 32) +
				      (u32)dev->extents[i]);
	ivshm_wr32(&dev->hdr->num_active_channel, n);
	ivshm_wr32(&dev->hdr->free_start_offset, end);
	ivshm_wr64(&dev->hdr->alloc_generation,
		   ivshm_rd64(&dev->hdr->alloc_generation) + 1);
}

/* First fit: the lowest gap of @size bytes between sorted extents. */
static bool ivshm_find_gap(struct ivshm_dev *dev, unsigned int n, u32 size,
			   u32 *offset)
{
	u32 cursor = IVSHM_DATA_OFFSET;
	unsigned int i;

	for (i = 0; i <= n; i++) {
		u32 next = i < n ? dev->extents[i] >> 32 : dev->data_end;

		if (next >= cursor && next - cursor >= size) {
			*offset = cursor;
			return true;
		}
		if (i < n)
			cursor = max_t(u32, cursor, next + (u32)dev->extents[i]);
	}
	return false;
}

/**
 * ivshm_ring_state() - is a channel we send on still ours and open?
 * @dev: the device
 * @ring: our view of the channel
 *
 * Reads the entry's state, generation and receiver state once each and
 * counts nothing: callers that act on a changed entry count it.
 *
 * Return: 0 if the entry is ours and its receiver_state is neither
 * RELEASED nor REFUSED, -EPIPE once it is one of those, or
 * -ECONNRESET if the entry was freed or reallocated behind our back.
 */
int ivshm_ring_state(struct ivshm_dev *dev, const struct ivshm_ring *ring)
{
	struct ivshm_channel *ch = ivshm_chan(dev, ring->index);
	u32 rstate = ivshm_rd32(&ch->receiver_state);

	if (ivshm_rd32(&ch->alloc_state) != IVSHM_CHAN_ALLOCATED ||
	    ivshm_rd32(&ch->generation) != ring->generation)
		return -ECONNRESET;
	if (rstate == IVSHM_RECV_RELEASED || rstate == IVSHM_RECV_REFUSED)
		return -EPIPE;
	return 0;
}

/**
 * ivshm_ring_room() - free bytes in a channel we send on
 * @dev: the device
 * @ring: our view of the channel; ring->pos is our own head
 *
 * Reads the receiver's tail once and checks it against our own head.
 * Also checks that the entry is still ours: one freed or reallocated
 * behind our back (only a hostile guest does that) is not written to.
 *
 * Return: the free bytes, -EPIPE once the receiver wrote RELEASED or
 * REFUSED, or -ECONNRESET for an impossible tail or an
 * entry that changed (counted).
 */
s64 ivshm_ring_room(struct ivshm_dev *dev, const struct ivshm_ring *ring)
{
	struct ivshm_channel *ch = ivshm_chan(dev, ring->index);
	int state = ivshm_ring_state(dev, ring);
	u64 used;

	if (state == -ECONNRESET)
		ivshm_note_bad(dev, "our channel changed", ring->index);
	if (state)
		return state;
	used = READ_ONCE(ring->pos) - ivshm_rd64(&ch->tail);
	smp_mb();	/* tail before we overwrite the space it freed */
	if (used > ring->size) {
		ivshm_note_bad(dev, "tail", ring->index);
		return -ECONNRESET;
	}
	return ring->size - used;
}

/**
 * ivshm_post_request() - announce a new request in the channel table
 * @dev: the device
 *
 * Called after the request's sender_state is published: receivers scan
 * the table when a peer's request_seq moves (and once a second anyway).
 */
void ivshm_post_request(struct ivshm_dev *dev)
{
	smp_wmb();	/* the request before its announcement */
	ivshm_wr32(&dev->peers[dev->self].request_seq,
		   atomic_inc_return(&dev->request_seq));
}

/* Under the control lock: the first free entry after the one used last,
 * zeroed, with a new generation, us as the sender and the ring @offset,
 * @size; the caller adds its fields, then marks it allocated.  Returns the
 * entry's index, or -ENOBUFS when the table is full.
 */
static int ivshm_claim_entry(struct ivshm_dev *dev, u32 offset, u32 size,
			     u32 *generation)
{
	struct ivshm_channel *ch;
	u32 i, idx, gen;

	for (i = 0; i < IVSHM_MAX_CHANNELS; i++) {
		idx = (dev->alloc_hint + i) % IVSHM_MAX_CHANNELS;
		ch = ivshm_chan(dev, idx);
		if (ivshm_rd32(&ch->alloc_state) != IVSHM_CHAN_FREE)
			continue;
		dev->alloc_hint = (idx + 1) % IVSHM_MAX_CHANNELS;
		gen = ivshm_rd32(&ch->generation) + 1;
		if (!gen)
			gen = 1;
		memset(ch, 0, sizeof(*ch));
		ivshm_wr32(&ch->generation, gen);
		ivshm_wr16(&ch->sender_vm, dev->self);
		ivshm_wr32(&ch->buff_offset, offset);
		ivshm_wr32(&ch->buff_size, size);
		*generation = gen;
		return idx;
	}
	return -ENOBUFS;
}

/**
 * ivshm_chan_alloc() - allocate a channel entry and its ring
 * @dev: the device
 * @size: ring size in bytes, a multiple of the block size
 * @ring: filled with the entry's index, generation and geometry
 *
 * The entry is zeroed and marked allocated with us as the sender; the
 * caller fills in the rest of the sender half and then sets sender_state.
 *
 * Return: 0, -ENOBUFS when the region has no room, or -ETIMEDOUT when the
 * control lock cannot be had.
 */
int ivshm_chan_alloc(struct ivshm_dev *dev, u32 size, struct ivshm_ring *ring)
{
	unsigned int n;
	u32 offset, gen;
	u64 token;
	int err, idx;

	mutex_lock(&dev->alloc_mutex);
	err = ivshm_control_lock(dev, &token);
	if (err)
		goto out;

	n = ivshm_collect_extents(dev);
	if (!ivshm_find_gap(dev, n, size, &offset)) {
		err = -ENOBUFS;
		goto unlock;
	}
	idx = ivshm_claim_entry(dev, offset, size, &gen);
	if (idx < 0) {
		err = idx;
		goto unlock;
	}
	smp_wmb();	/* entry fields before alloc_state */
	ivshm_wr32(&ivshm_chan(dev, idx)->alloc_state, IVSHM_CHAN_ALLOCATED);

	dev->extents[n++] = (u64)offset << 32 | size;
	ivshm_publish_usage(dev, n);

	ring->index = idx;
	ring->generation = gen;
	ring->offset = offset;
	ring->size = size;
	ring->pos = 0;
	atomic64_inc(&dev->stats.channels_allocated);
unlock:
	ivshm_control_unlock(dev, token);
out:
	mutex_unlock(&dev->alloc_mutex);
	trace_ivshmem_chan_alloc(dev, size, ring, err);
	return err;
}

/**
 * ivshm_chan_held() - whether a channel entry is still a known channel
 * @dev: the device
 * @index: the entry (already validated)
 * @generation: the generation it had when we learnt of it
 * @sender: the peer that allocated it
 *
 * A snapshot, unless under the control lock: once its sender frees the
 * entry, it may serve another connection, with another generation.
 *
 * Return: true if @index is allocated, with @generation, by @sender.
 */
bool ivshm_chan_held(struct ivshm_dev *dev, u32 index, u32 generation,
		     u32 sender)
{
	struct ivshm_channel *ch = ivshm_chan(dev, index);

	return ivshm_rd32(&ch->alloc_state) == IVSHM_CHAN_ALLOCATED &&
	       ivshm_rd32(&ch->generation) == generation &&
	       ivshm_rd16(&ch->sender_vm) == sender;
}

/* Under the control lock: is channel @index still allocated by us, with
 * @generation?
 */
static bool ivshm_chan_ours(struct ivshm_dev *dev, u32 index, u32 generation)
{
	return ivshm_chan_held(dev, index, generation, dev->self);
}

/* Under the control lock, with @n sorted extents that do not include
 * the ring's own: where a ring of up to @rs->size bytes goes, and how
 * large it can be.  In place (at the ring's offset) if the blocks it
 * needs are free, else the lowest gap that holds the size; when nothing
 * holds it, the larger of the room in place and the largest gap.  The
 * data area keeps @rs->reserve bytes free.  A size cut short by the room
 * is a multiple of @rs->unit.  Returns the size, 0 if there is no room.
 */
static u32 ivshm_place_ring(struct ivshm_dev *dev, unsigned int n,
			    const struct ivshm_ring *ring,
			    const struct ivshm_resize *rs, u32 *offset)
{
	u32 size = rs->size, reserve = rs->reserve, unit = rs->unit;
	u32 data = dev->data_end - IVSHM_DATA_OFFSET;
	u32 cursor = IVSHM_DATA_OFFSET, here = 0, best = 0, best_off = 0;
	u64 used = 0;
	unsigned int i;

	for (i = 0; i <= n; i++) {
		u32 next = i < n ? dev->extents[i] >> 32 : dev->data_end;

		if (next > cursor) {
			if (cursor <= ring->offset && ring->offset < next)
				here = next - ring->offset;
			if (next - cursor > best) {
				best = next - cursor;
				best_off = cursor;
			}
		}
		if (i < n) {
			used += (u32)dev->extents[i];
			cursor = max_t(u32, cursor, next + (u32)dev->extents[i]);
		}
	}
	if (used + reserve >= data)
		return 0;
	if (size > data - reserve - used)
		size = rounddown((u32)(data - reserve - used), unit);
	if (here >= size) {
		*offset = ring->offset;
		return size;
	}
	if (best >= size && ivshm_find_gap(dev, n, size, offset))
		return size;
	if (here >= best) {
		*offset = ring->offset;
		return rounddown(here, unit);
	}
	*offset = best_off;
	return rounddown(best, unit);
}

/* Drops the ring's own extent from the @n sorted extents; returns how
 * many are left.
 */
static unsigned int ivshm_extents_drop(struct ivshm_dev *dev, unsigned int n,
				       const struct ivshm_ring *ring)
{
	u64 own = (u64)ring->offset << 32 | ring->size;
	unsigned int i;

	for (i = 0; i < n; i++) {
		if (dev->extents[i] == own) {
			memmove(&dev->extents[i], &dev->extents[i + 1],
				(n - i - 1) * sizeof(dev->extents[0]));
			return n - 1;
		}
	}
	return n;
}

/**
 * ivshm_chan_switch() - give an empty channel of ours its new size
 * @dev: the device
 * @ring: our view of the channel; its ring must be empty (the receiver's
 *	tail equal to ring->pos), and gets the new offset and size
 * @rs: the pending resize; cleared
 *
 * Under the control lock.  A shrink keeps the start of the ring.  A
 * growth places the new ring now, with the old one's space counted as
 * free since nothing in it is needed any more: in place when the blocks
 * after the ring's start are free, else in the lowest gap that holds
 * @rs->size; when none does, as large as the room in place or the
 * largest gap allows (see ivshm_place_ring()).  A move (@rs->move,
 * compaction) keeps the size and goes to the lowest gap that holds it,
 * over the old ring's space too, if that is below the ring's offset;
 * else nothing changes and 0 is returned.  Then it writes
 * the channel's buff_offset and buff_size, and other guests' allocators
 * see the new extent and the old space free at once.  The caller writes
 * no data before this returns; the release of the control lock orders
 * the geometry before anything written afterwards.
 *
 * Return: 0, or a negative errno (-ENOBUFS: no room to grow; -ESTALE: the
 * channel is no longer ours).  The resize is then dropped, counted in
 * resizes_aborted, and the channel keeps its old geometry.
 */
int ivshm_chan_switch(struct ivshm_dev *dev, struct ivshm_ring *ring,
		      struct ivshm_resize *rs)
{
	struct ivshm_channel *ch = ivshm_chan(dev, ring->index);
	u32 size = rs->size, offset = ring->offset;
	unsigned int n;
	u64 token;
	int err;

	mutex_lock(&dev->alloc_mutex);
	err = ivshm_control_lock(dev, &token);
	if (err)
		goto out;
	if (!ivshm_chan_ours(dev, ring->index, ring->generation)) {
		err = -ESTALE;
		goto unlock;
	}
	if (rs->move) {
		/* A move that finds no lower gap is no failure: it stays. */
		n = ivshm_extents_drop(dev, ivshm_collect_extents(dev), ring);
		size = ring->size;
		if (!ivshm_find_gap(dev, n, size, &offset) ||
		    offset >= ring->offset)
			goto unlock;
	} else if (size > ring->size) {
		n = ivshm_extents_drop(dev, ivshm_collect_extents(dev), ring);
		size = ivshm_place_ring(dev, n, ring, rs, &offset);
		if (size <= ring->size) {
			err = -ENOBUFS;
			goto unlock;
		}
	}
	trace_ivshmem_chan_resize(dev, ring->index, ring->offset, ring->size,
				  offset, size);
	if (rs->move)
		atomic64_inc(&dev->stats.channels_moved);
	else if (size > ring->size)
		atomic64_inc(&dev->stats.channels_grown);
	else
		atomic64_inc(&dev->stats.channels_shrunk);
	ivshm_wr32(&ch->buff_offset, offset);
	ivshm_wr32(&ch->buff_size, size);
	ivshm_publish_usage(dev, ivshm_collect_extents(dev));
	ring->offset = offset;
	ring->size = size;
unlock:
	ivshm_control_unlock(dev, token);
out:
	mutex_unlock(&dev->alloc_mutex);
	if (err)
		atomic64_inc(&dev->stats.resizes_aborted);
	rs->size = 0;
	return err;
}

/**
 * ivshm_chan_free() - return one of our channels to the free pool
 * @dev: the device
 * @index: channel table index
 * @generation: generation it had when we allocated it
 *
 * Only frees the entry if it is still the one we allocated.
 *
 * Return: as ivshm_chan_free_foreign().
 */
int ivshm_chan_free(struct ivshm_dev *dev, u32 index, u32 generation)
{
	return ivshm_chan_free_foreign(dev, index, generation, dev->self);
}

/**
 * ivshm_chan_free_foreign() - free a channel allocated by @sender
 * @dev: the device
 * @index: channel table index
 * @generation: generation it had when we learnt of it
 * @sender: the peer that allocated it: ourselves, or a dead peer whose
 *	channels to us we reclaim
 *
 * Return: 0 (freed, or not ours any more), or -ETIMEDOUT when the control
 * lock could not be had: callers with more to free stop there.
 */
int ivshm_chan_free_foreign(struct ivshm_dev *dev, u32 index, u32 generation,
			    u32 sender)
{
	struct ivshm_channel *ch = ivshm_chan(dev, index);
	u64 token;
	int err;

	mutex_lock(&dev->alloc_mutex);
	err = ivshm_control_lock(dev, &token);
	if (err) {
		dev_warn_ratelimited(&dev->pdev->dev,
				     "channel %u not freed: lock timeout\n",
				     index);
		goto out;
	}
	if (ivshm_rd32(&ch->alloc_state) == IVSHM_CHAN_ALLOCATED &&
	    ivshm_rd32(&ch->generation) == generation &&
	    ivshm_rd16(&ch->sender_vm) == sender) {
		trace_ivshmem_chan_free(dev, index, generation, sender);
		ivshm_wr32(&ch->sender_state, IVSHM_SEND_NONE);
		ivshm_wr32(&ch->alloc_state, IVSHM_CHAN_FREE);
		ivshm_publish_usage(dev, ivshm_collect_extents(dev));
		atomic64_inc(&dev->stats.channels_freed);
	} else {
		ivshm_note_bad(dev, "freeing a channel that changed", index);
	}
	ivshm_control_unlock(dev, token);
out:
	mutex_unlock(&dev->alloc_mutex);
	return err;
}

/**
 * ivshm_reply_channel() - the peer's reply to one of our requests
 * @dev: the device
 * @index: the channel index the request's reply_channel names
 * @gen: the generation its reply_generation names
 * @peer: who must have allocated the reply (its sender)
 * @self: who it must be addressed to (its receiver)
 * @req_index: our request's channel index
 * @req_gen: our request's generation
 *
 * Both values come from shared memory: the entry is used only if it is,
 * right now, allocated with generation @gen, from @peer to @self, and
 * points back at the request.  Callers check what else they need.
 *
 * Return: the channel entry, or NULL if it is not that reply.
 */
struct ivshm_channel *ivshm_reply_channel(struct ivshm_dev *dev, u32 index,
					  u32 gen, u32 peer, u32 self,
					  u32 req_index, u32 req_gen)
{
	struct ivshm_channel *ch;

	if (index >= IVSHM_MAX_CHANNELS || !gen)
		return NULL;
	ch = ivshm_chan(dev, index);
	if (ivshm_rd32(&ch->alloc_state) != IVSHM_CHAN_ALLOCATED ||
	    ivshm_rd32(&ch->generation) != gen)
		return NULL;
	smp_rmb();	/* alloc_state/generation before the fields */
	if (ivshm_rd16(&ch->sender_vm) != peer ||
	    ivshm_rd16(&ch->receiver_vm) != self ||
	    ivshm_rd32(&ch->peer_channel) != req_index ||
	    ivshm_rd32(&ch->peer_generation) != req_gen)
		return NULL;
	return ch;
}

/* A connection request we gave up on (timed out, interrupted, or a reply
 * that failed its checks) that the peer accepted has a reply channel that
 * no socket of ours took: release it, as its receiver, so that the peer
 * can free it.  Only the peer's reply to this very request is touched.
 */
static void ivshm_zombie_release_reply(struct ivshm_dev *dev,
				       struct ivshm_zombie *z,
				       struct ivshm_channel *req)
{
	struct ivshm_channel *ch;
	u32 index, gen;

	smp_rmb();	/* receiver_state before the reply fields */
	index = ivshm_rd32(&req->reply_channel);
	gen = ivshm_rd32(&req->reply_generation);
	z->reply_done = true;
	ch = ivshm_reply_channel(dev, index, gen, z->peer, dev->self,
				 z->index, z->generation);
	if (ch)
		ivshm_wr32(&ch->receiver_state, IVSHM_RECV_RELEASED);
}

/**
 * ivshm_zombies_reap() - free closed channels the receiver has released
 * @dev: the device
 * @force: free them all (the device is going away)
 *
 * A channel is returned only once its receiver has released it (or
 * refused it, for want of a listener or of room), or the receiver's peer
 * slot has gone or changed epoch: until then the receiver may still write
 * its half of the entry.  A request we gave up on that the peer accepted
 * first gets its reply channel released (ivshm_zombie_release_reply()).
 *
 * Also once the peer has freed its channel of the same connection: a peer
 * writes its last to our entry (its tail, its release) before it frees
 * its own, so nothing of its is pending any more.  Without this, a peer
 * that dropped the connection without releasing ours (it gave up on a
 * request as it was accepted, and never looked at the reply) would hold
 * ours until it died.
 */
void ivshm_zombies_reap(struct ivshm_dev *dev, bool force)
{
	struct ivshm_zombie *z, *tmp;
	LIST_HEAD(done);

	spin_lock_bh(&dev->socks_lock);
	list_for_each_entry_safe(z, tmp, &dev->zombies, node) {
		struct ivshm_channel *ch = ivshm_chan(dev, z->index);
		u32 rstate = ivshm_rd32(&ch->receiver_state);

		if (!force && z->request && !z->reply_done &&
		    (rstate == IVSHM_RECV_ACCEPTED ||
		     rstate == IVSHM_RECV_RELEASED))
			ivshm_zombie_release_reply(dev, z, ch);
		if (force || rstate == IVSHM_RECV_RELEASED ||
		    rstate == IVSHM_RECV_REFUSED ||
		    rstate == IVSHM_RECV_NOBUFS ||
		    !ivshm_peer_alive(dev, z->peer, z->peer_epoch) ||
		    (z->paired && !ivshm_chan_held(dev, z->pair_index,
						   z->pair_generation, z->peer)))
			list_move(&z->node, &done);
	}
	spin_unlock_bh(&dev->socks_lock);

	list_for_each_entry_safe(z, tmp, &done, node) {
		/* A control lock held hostage costs one timeout per run,
		 * not one per zombie: the rest wait for the next run.
		 */
		if (ivshm_chan_free(dev, z->index, z->generation) && !force) {
			spin_lock_bh(&dev->socks_lock);
			list_splice(&done, &dev->zombies);
			spin_unlock_bh(&dev->socks_lock);
			return;
		}
		list_del(&z->node);
		kfree(z);
	}
}

/**
 * ivshm_reclaim_dead_peers() - free dead peers' channels addressed to us
 * @dev: the device
 *
 * A dead peer never frees its channels.  Each receiver frees the ones
 * addressed to it, while the dead incarnation still holds the slot (same
 * epoch, heartbeat stopped): then every channel with that sender id is
 * the dead incarnation's.  Run by the event work after it has reset the
 * sockets that used them.
 */
void ivshm_reclaim_dead_peers(struct ivshm_dev *dev)
{
	u32 p, i;

	for (p = 0; p < IVSHM_MAX_PEERS; p++) {
		struct ivshm_peer_watch *w = &dev->watch[p];

		if (!READ_ONCE(w->reclaim))
			continue;
		WRITE_ONCE(w->reclaim, false);
		for (i = 0; i < IVSHM_MAX_CHANNELS; i++) {
			struct ivshm_channel *ch = ivshm_chan(dev, i);
			u32 gen;

			if (!READ_ONCE(w->dead) ||
			    ivshm_rd64(&dev->peers[p].epoch) != w->epoch)
				break;	/* came back: leave its channels */
			if (ivshm_rd32(&ch->alloc_state) !=
			    IVSHM_CHAN_ALLOCATED ||
			    ivshm_rd16(&ch->sender_vm) != p ||
			    ivshm_rd16(&ch->receiver_vm) != dev->self)
				continue;
			gen = ivshm_rd32(&ch->generation);
			if (ivshm_chan_free_foreign(dev, i, gen, p)) {
				/* Lock timeout: try again next run. */
				WRITE_ONCE(w->reclaim, true);
				return;
			}
			atomic64_inc(&dev->stats.channels_reclaimed);
		}
	}
}
