// SPDX-License-Identifier: GPL-2.0
/* AF_IVSHMEM fabric view: the "ivshmem" generic netlink family.
 *
 * Three dumps show what this guest sees of each region it is attached to:
 * the region and its counters, the active peer slots, and the allocated
 * channel entries.  Everything but the counters and our liveness verdicts
 * is read from the shared region, which other guests may write at any
 * time: each field is read once and reported as read, and only the values
 * this code computes from them (free bytes, fill) are validated.  A dump
 * is a snapshot taken without the control lock; a channel being allocated
 * or freed meanwhile may or may not be in it.
 *
 * The contract is include/uapi/linux/ivshmem_diag.h; the attributes are
 * described in Documentation/networking/af_ivshmem.rst, "Diagnostics".
 */
#include <linux/kernel.h>
#include <linux/mutex.h>
#include <net/genetlink.h>
#include <uapi/linux/ivshmem_diag.h>

#include "af_ivshmem.h"

/* cb->args[] of a dump */
#define IVSHM_FABRIC_REGION	0	/* region index to go on with */
#define IVSHM_FABRIC_POS	1	/* peer slot or channel in that region */
#define IVSHM_FABRIC_STARTED	2	/* the request has been checked */

static struct genl_family ivshm_genl_family;

/**
 * typedef ivshm_fabric_fill_t - adds one region's messages to a dump
 * @skb: the dump skb
 * @cb: the dump's callback state
 * @dev: the region's device (ivshm_devices_mutex held)
 * @pos: where to go on within the region (peer slot, channel index); set
 *	to where to go on next time when the skb is full
 *
 * Return: 0 when the region is done, -EMSGSIZE when the skb is full.
 */
typedef int (*ivshm_fabric_fill_t)(struct sk_buff *skb,
				   struct netlink_callback *cb,
				   struct ivshm_dev *dev, long *pos);

static void *ivshm_fabric_hdr(struct sk_buff *skb, struct netlink_callback *cb,
			      struct ivshm_dev *dev)
{
	void *hdr;

	hdr = genlmsg_put(skb, NETLINK_CB(cb->skb).portid, cb->nlh->nlmsg_seq,
			  &ivshm_genl_family, NLM_F_MULTI,
			  genl_dumpit_info(cb)->op.cmd);
	if (!hdr)
		return NULL;
	if (nla_put_u32(skb, IVSHMEM_A_REGION, dev->index)) {
		genlmsg_cancel(skb, hdr);
		return NULL;
	}
	return hdr;
}

/* IVSHMEM_STAT_* attribute of each counter in struct ivshm_stats. */
static const struct {
	u16 attr;
	u16 offset;
} ivshm_fabric_stats[] = {
#define IVSHM_FABRIC_STAT(attr, field) \
	{ IVSHMEM_STAT_##attr, offsetof(struct ivshm_stats, field) }
	IVSHM_FABRIC_STAT(DOORBELLS_SENT, doorbells_sent),
	IVSHM_FABRIC_STAT(DOORBELLS_RECEIVED, doorbells_received),
	IVSHM_FABRIC_STAT(DOORBELLS_SUPPRESSED, doorbells_suppressed),
	IVSHM_FABRIC_STAT(VALIDATION_FAILURES, validation_failures),
	IVSHM_FABRIC_STAT(LOCK_STEALS, lock_steals),
	IVSHM_FABRIC_STAT(CONNECTS_REFUSED, connects_refused),
	IVSHM_FABRIC_STAT(PEERS_DECLARED_DEAD, peers_declared_dead),
	IVSHM_FABRIC_STAT(CHANNELS_RECLAIMED, channels_reclaimed),
	IVSHM_FABRIC_STAT(DGRAM_SENT, dgram_sent),
	IVSHM_FABRIC_STAT(DGRAM_RECEIVED, dgram_received),
	IVSHM_FABRIC_STAT(DGRAM_DROPPED_NO_SOCKET, dgram_dropped_no_socket),
	IVSHM_FABRIC_STAT(DGRAM_DROPPED_RCVBUF, dgram_dropped_rcvbuf),
	IVSHM_FABRIC_STAT(REQUEST_SCANS, request_scans),
	IVSHM_FABRIC_STAT(RESETS_SENT, resets_sent),
	IVSHM_FABRIC_STAT(RESETS_RECEIVED, resets_received),
	IVSHM_FABRIC_STAT(RESETS_PEER_DEAD, resets_peer_dead),
	IVSHM_FABRIC_STAT(RESETS_DEVICE_GONE, resets_device_gone),
	IVSHM_FABRIC_STAT(CHANNELS_ALLOCATED, channels_allocated),
	IVSHM_FABRIC_STAT(CHANNELS_FREED, channels_freed),
	IVSHM_FABRIC_STAT(REBALANCES, rebalances),
	IVSHM_FABRIC_STAT(CHANNELS_GROWN, channels_grown),
	IVSHM_FABRIC_STAT(CHANNELS_SHRUNK, channels_shrunk),
	IVSHM_FABRIC_STAT(RESIZES_ABORTED, resizes_aborted),
	IVSHM_FABRIC_STAT(DOORBELLS_LIMITED, doorbells_limited),
	IVSHM_FABRIC_STAT(AUTH_FAILURES, auth_failures),
	IVSHM_FABRIC_STAT(DOORBELL_WAKES, doorbell_wakes),
	IVSHM_FABRIC_STAT(CHANNELS_MOVED, channels_moved),
#undef IVSHM_FABRIC_STAT
};

static int ivshm_fabric_put_stats(struct sk_buff *skb, struct ivshm_dev *dev)
{
	struct nlattr *nest;
	unsigned int i;

	/* Every counter once: the uapi enum, less UNSPEC and PAD. */
	BUILD_BUG_ON(ARRAY_SIZE(ivshm_fabric_stats) !=
		     IVSHMEM_STAT_MAX - IVSHMEM_STAT_PAD);
	BUILD_BUG_ON(sizeof(struct ivshm_stats) !=
		     ARRAY_SIZE(ivshm_fabric_stats) * sizeof(atomic64_t));

	nest = nla_nest_start(skb, IVSHMEM_A_STATS);
	if (!nest)
		return -EMSGSIZE;
	for (i = 0; i < ARRAY_SIZE(ivshm_fabric_stats); i++) {
		const atomic64_t *counter = (const void *)&dev->stats +
					    ivshm_fabric_stats[i].offset;

		if (nla_put_u64_64bit(skb, ivshm_fabric_stats[i].attr,
				      atomic64_read(counter),
				      IVSHMEM_STAT_PAD)) {
			nla_nest_cancel(skb, nest);
			return -EMSGSIZE;
		}
	}
	nla_nest_end(skb, nest);
	return 0;
}

/**
 * ivshm_fabric_usage() - count the allocated channels and the bytes they use
 * @dev: the device
 * @active: set to the number of allocated entries, valid or not
 *
 * Reads each allocated entry's geometry once.  An entry with impossible
 * geometry counts in @active but occupies no data bytes, as for the
 * allocator; entries that overlap (only a hostile guest writes those) may
 * add up to more than the data area, so the result is capped by it.
 *
 * Return: the data bytes in allocated channels.
 */
static u64 ivshm_fabric_usage(struct ivshm_dev *dev, u32 *active)
{
	u64 used = 0;
	u32 i, n = 0;

	for (i = 0; i < IVSHM_MAX_CHANNELS; i++) {
		struct ivshm_channel *ch = ivshm_chan(dev, i);
		u32 off, size;

		if (ivshm_rd32(&ch->alloc_state) != IVSHM_CHAN_ALLOCATED)
			continue;
		n++;
		smp_rmb();	/* alloc_state before the geometry */
		off = ivshm_rd32(&ch->buff_offset);
		size = ivshm_rd32(&ch->buff_size);
		if (ivshm_chan_geometry(dev, off, size))
			used += size;
	}
	*active = n;
	return min_t(u64, used, dev->data_end - IVSHM_DATA_OFFSET);
}

static int ivshm_fabric_fill_region(struct sk_buff *skb,
				    struct netlink_callback *cb,
				    struct ivshm_dev *dev, long *pos)
{
	u64 data = dev->data_end - IVSHM_DATA_OFFSET;
	unsigned long last = READ_ONCE(dev->last_rebalance);
	u64 used;
	u32 active;
	void *hdr;

	used = ivshm_fabric_usage(dev, &active);
	hdr = ivshm_fabric_hdr(skb, cb, dev);
	if (!hdr)
		return -EMSGSIZE;
	if (nla_put_u32(skb, IVSHMEM_A_SELF, dev->self) ||
	    nla_put_u8(skb, IVSHMEM_A_DOORBELL, dev->doorbell) ||
	    nla_put_u64_64bit(skb, IVSHMEM_A_REGION_SIZE, dev->shm_size,
			      IVSHMEM_A_PAD) ||
	    nla_put_u64_64bit(skb, IVSHMEM_A_DATA_BYTES, data,
			      IVSHMEM_A_PAD) ||
	    nla_put_u64_64bit(skb, IVSHMEM_A_FREE_BYTES, data - used,
			      IVSHMEM_A_PAD) ||
	    nla_put_u32(skb, IVSHMEM_A_ACTIVE_CHANNELS, active) ||
	    nla_put_u32(skb, IVSHMEM_A_MAX_CHANNELS, IVSHM_MAX_CHANNELS) ||
	    (last && nla_put_u64_64bit(skb, IVSHMEM_A_LAST_REBALANCE_MS,
				       jiffies_to_msecs(jiffies - last),
				       IVSHMEM_A_PAD)) ||
	    ivshm_fabric_put_stats(skb, dev)) {
		genlmsg_cancel(skb, hdr);
		return -EMSGSIZE;
	}
	genlmsg_end(skb, hdr);
	return 0;
}

static int ivshm_fabric_fill_peers(struct sk_buff *skb,
				   struct netlink_callback *cb,
				   struct ivshm_dev *dev, long *pos)
{
	for (; *pos < IVSHM_MAX_PEERS; ++*pos) {
		struct ivshm_peer_slot *slot = &dev->peers[*pos];
		u32 id = *pos, flags;
		u64 epoch, beat;
		bool alive;
		void *hdr;

		if (ivshm_rd32(&slot->state) != IVSHM_PEER_ACTIVE)
			continue;
		smp_rmb();	/* state before the slot's fields */
		epoch = ivshm_rd64(&slot->epoch);
		beat = ivshm_rd64(&slot->heartbeat);
		flags = ivshm_rd32(&slot->flags);
		alive = !ivshm_peer_declared_dead(dev, id, epoch);

		hdr = ivshm_fabric_hdr(skb, cb, dev);
		if (!hdr)
			return -EMSGSIZE;
		if (nla_put_u32(skb, IVSHMEM_A_PEER_ID, id) ||
		    nla_put_u64_64bit(skb, IVSHMEM_A_PEER_EPOCH, epoch,
				      IVSHMEM_A_PAD) ||
		    nla_put_u64_64bit(skb, IVSHMEM_A_PEER_HEARTBEAT, beat,
				      IVSHMEM_A_PAD) ||
		    nla_put_u32(skb, IVSHMEM_A_PEER_FLAGS, flags) ||
		    nla_put_u8(skb, IVSHMEM_A_PEER_ALIVE, alive) ||
		    (id == dev->self &&
		     nla_put_flag(skb, IVSHMEM_A_PEER_SELF))) {
			genlmsg_cancel(skb, hdr);
			return -EMSGSIZE;
		}
		genlmsg_end(skb, hdr);
	}
	return 0;
}

/* A channel entry, each field read once. */
struct ivshm_fabric_chan {
	u32 generation;
	u32 sender;
	u32 receiver;
	u32 type;
	u32 src_port;
	u32 dst_port;
	u32 offset;
	u32 size;
	u32 fill;
	u32 sender_state;
	u32 receiver_state;
	u32 sender_pid;
	u32 peer_channel;
	u32 peer_generation;
};

/* Reads channel @ch, which was seen allocated.  Fill is head - tail,
 * clamped to [0, size] whatever the two positions say.
 */
static void ivshm_fabric_read_chan(struct ivshm_channel *ch,
				   struct ivshm_fabric_chan *c)
{
	s64 fill;

	smp_rmb();	/* alloc_state before the entry's fields */
	c->generation = ivshm_rd32(&ch->generation);
	c->sender = ivshm_rd16(&ch->sender_vm);
	c->receiver = ivshm_rd16(&ch->receiver_vm);
	c->type = ivshm_rd16(&ch->sock_type);
	c->src_port = ivshm_rd32(&ch->src_port);
	c->dst_port = ivshm_rd32(&ch->dst_port);
	c->offset = ivshm_rd32(&ch->buff_offset);
	c->size = ivshm_rd32(&ch->buff_size);
	c->sender_state = ivshm_rd32(&ch->sender_state);
	c->receiver_state = ivshm_rd32(&ch->receiver_state);
	c->sender_pid = ivshm_rd32(&ch->sender_pid);
	c->peer_channel = ivshm_rd32(&ch->peer_channel);
	c->peer_generation = ivshm_rd32(&ch->peer_generation);
	/* Both ends may move between the two reads.  Tail first: an honest
	 * ring then never looks negative, only at most a ring's worth too
	 * full, which the clamp turns into "full".
	 */
	fill = -(s64)ivshm_rd64(&ch->tail);
	smp_rmb();	/* tail before head */
	fill += ivshm_rd64(&ch->head);
	c->fill = clamp_t(s64, fill, 0, c->size);
}

static int ivshm_fabric_fill_chans(struct sk_buff *skb,
				   struct netlink_callback *cb,
				   struct ivshm_dev *dev, long *pos)
{
	for (; *pos < IVSHM_MAX_CHANNELS; ++*pos) {
		struct ivshm_channel *ch = ivshm_chan(dev, *pos);
		struct ivshm_fabric_chan c;
		void *hdr;

		if (ivshm_rd32(&ch->alloc_state) != IVSHM_CHAN_ALLOCATED)
			continue;
		ivshm_fabric_read_chan(ch, &c);

		hdr = ivshm_fabric_hdr(skb, cb, dev);
		if (!hdr)
			return -EMSGSIZE;
		if (nla_put_u32(skb, IVSHMEM_A_CHAN_INDEX, *pos) ||
		    nla_put_u32(skb, IVSHMEM_A_CHAN_GENERATION, c.generation) ||
		    nla_put_u32(skb, IVSHMEM_A_CHAN_SENDER, c.sender) ||
		    nla_put_u32(skb, IVSHMEM_A_CHAN_RECEIVER, c.receiver) ||
		    nla_put_u32(skb, IVSHMEM_A_CHAN_TYPE, c.type) ||
		    nla_put_u32(skb, IVSHMEM_A_CHAN_SRC_PORT, c.src_port) ||
		    nla_put_u32(skb, IVSHMEM_A_CHAN_DST_PORT, c.dst_port) ||
		    nla_put_u32(skb, IVSHMEM_A_CHAN_OFFSET, c.offset) ||
		    nla_put_u32(skb, IVSHMEM_A_CHAN_SIZE, c.size) ||
		    nla_put_u32(skb, IVSHMEM_A_CHAN_FILL, c.fill) ||
		    nla_put_u32(skb, IVSHMEM_A_CHAN_SENDER_STATE,
				c.sender_state) ||
		    nla_put_u32(skb, IVSHMEM_A_CHAN_RECEIVER_STATE,
				c.receiver_state) ||
		    nla_put_u32(skb, IVSHMEM_A_CHAN_SENDER_PID, c.sender_pid) ||
		    /* only a reply channel names a request channel */
		    (c.peer_generation &&
		     nla_put_u32(skb, IVSHMEM_A_CHAN_PEER_CHANNEL,
				 c.peer_channel))) {
			genlmsg_cancel(skb, hdr);
			return -EMSGSIZE;
		}
		genlmsg_end(skb, hdr);
	}
	return 0;
}

/**
 * ivshm_fabric_dump() - run one dump over the regions
 * @skb: the dump skb
 * @cb: the dump's callback state; cb->args[] is the cursor (region, then
 *	peer slot or channel within it), so that the dump goes on in the
 *	next skb where this one filled up
 * @fill: adds one region's messages
 *
 * ivshm_devices_mutex is held for one skb at a time: a device in the table
 * cannot be removed meanwhile.  A region removed between two skbs is left
 * out of the rest of the dump.
 *
 * Return: the skb's length, 0 at the end, or -ENODEV when the request
 * names a region that does not exist.
 */
static int ivshm_fabric_dump(struct sk_buff *skb, struct netlink_callback *cb,
			     ivshm_fabric_fill_t fill)
{
	struct nlattr **attrs = genl_dumpit_info(cb)->attrs;
	unsigned int first = 0, last = IVSHM_MAX_DEVICES, index;
	struct nlattr *filter = attrs ? attrs[IVSHMEM_A_REGION] : NULL;
	int err = 0;

	if (filter) {
		first = nla_get_u32(filter);
		if (first >= IVSHM_MAX_DEVICES)
			return -ENODEV;
		last = first + 1;
	}

	mutex_lock(&ivshm_devices_mutex);
	if (!cb->args[IVSHM_FABRIC_STARTED]) {
		cb->args[IVSHM_FABRIC_STARTED] = 1;
		cb->args[IVSHM_FABRIC_REGION] = first;
		cb->args[IVSHM_FABRIC_POS] = 0;
		if (filter && !ivshm_dev_get_by_index(first)) {
			err = -ENODEV;
			goto out;
		}
	}
	for (index = cb->args[IVSHM_FABRIC_REGION]; index < last; index++) {
		struct ivshm_dev *dev = ivshm_dev_get_by_index(index);

		if (dev) {
			err = fill(skb, cb, dev, &cb->args[IVSHM_FABRIC_POS]);
			if (err)
				break;
		}
		cb->args[IVSHM_FABRIC_POS] = 0;
	}
	cb->args[IVSHM_FABRIC_REGION] = index;
out:
	mutex_unlock(&ivshm_devices_mutex);
	if (err == -EMSGSIZE)
		err = 0;	/* full: the rest goes in the next skb */
	return err ?: skb->len;
}

static int ivshm_fabric_get_region(struct sk_buff *skb,
				   struct netlink_callback *cb)
{
	return ivshm_fabric_dump(skb, cb, ivshm_fabric_fill_region);
}

static int ivshm_fabric_get_peer(struct sk_buff *skb,
				 struct netlink_callback *cb)
{
	return ivshm_fabric_dump(skb, cb, ivshm_fabric_fill_peers);
}

static int ivshm_fabric_get_channel(struct sk_buff *skb,
				    struct netlink_callback *cb)
{
	return ivshm_fabric_dump(skb, cb, ivshm_fabric_fill_chans);
}

/* Requests carry at most a region; any other attribute is refused. */
static const struct nla_policy ivshm_fabric_policy[IVSHMEM_A_MAX + 1] = {
	[IVSHMEM_A_REGION] = { .type = NLA_U32 },
};

/* No GENL_ADMIN_PERM: any user may look (no data is ever shown). */
static const struct genl_small_ops ivshm_fabric_ops[] = {
	{
		.cmd = IVSHMEM_CMD_GET_REGION,
		.dumpit = ivshm_fabric_get_region,
	},
	{
		.cmd = IVSHMEM_CMD_GET_PEER,
		.dumpit = ivshm_fabric_get_peer,
	},
	{
		.cmd = IVSHMEM_CMD_GET_CHANNEL,
		.dumpit = ivshm_fabric_get_channel,
	},
};

static struct genl_family ivshm_genl_family __ro_after_init = {
	.name = IVSHMEM_GENL_NAME,
	.version = IVSHMEM_GENL_VERSION,
	.maxattr = IVSHMEM_A_MAX,
	.policy = ivshm_fabric_policy,
	.module = THIS_MODULE,
	.small_ops = ivshm_fabric_ops,
	.n_small_ops = ARRAY_SIZE(ivshm_fabric_ops),
	/* resv_start_op 0: every command validated strictly */
};

int __init ivshm_fabric_init(void)
{
	return genl_register_family(&ivshm_genl_family);
}

void ivshm_fabric_exit(void)
{
	genl_unregister_family(&ivshm_genl_family);
}
