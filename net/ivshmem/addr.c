// SPDX-License-Identifier: GPL-2.0
/* AF_IVSHMEM: IPv4 addresses published in the peer slots.
 *
 * Each guest writes the IPv4 addresses of its interfaces (init_net,
 * loopback excepted, at most IVSHM_SLOT_IPV4) into its own peer slot on
 * every region, at attach and whenever an address comes or goes.  Two
 * ioctls map an address to the peer publishing it and back, so that user
 * space can move a TCP connection to AF_IVSHMEM (tools/ivshmem-run).
 *
 * The list is a hint, not an authority: other guests' slots are hostile
 * memory, read once and clamped, and a reader racing with a rewrite may
 * see a mix of the old and the new list.
 */

#include <linux/inetdevice.h>
#include <linux/netdevice.h>
#include <linux/uaccess.h>
#include <linux/workqueue.h>
#include <net/net_namespace.h>

#include "af_ivshmem.h"

/* Collects this guest's IPv4 addresses into @addrs; returns how many. */
static unsigned int ivshm_addr_collect(__be32 *addrs)
{
	struct net_device *ndev;
	unsigned int n = 0;

	rcu_read_lock();
	for_each_netdev_rcu(&init_net, ndev) {
		struct in_device *in_dev;
		const struct in_ifaddr *ifa;

		if (ndev->flags & IFF_LOOPBACK)
			continue;
		in_dev = __in_dev_get_rcu(ndev);
		if (!in_dev)
			continue;
		in_dev_for_each_ifa_rcu(ifa, in_dev) {
			if (ipv4_is_loopback(ifa->ifa_local) ||
			    !ifa->ifa_local || n == IVSHM_SLOT_IPV4)
				continue;
			addrs[n++] = ifa->ifa_local;
		}
	}
	rcu_read_unlock();
	return n;
}

/* Rewrites our own slot's list: count to zero, the entries, the count. */
static void ivshm_addr_write(struct ivshm_dev *dev, const __be32 *addrs,
			     unsigned int n)
{
	struct ivshm_peer_slot *slot = &dev->peers[dev->self];
	unsigned int i;

	ivshm_wr32(&slot->ipv4_count, 0);
	smp_wmb();	/* no reader takes the new entries for the old count */
	for (i = 0; i < IVSHM_SLOT_IPV4; i++)
		WRITE_ONCE(slot->ipv4[i], i < n ? addrs[i] : 0);
	smp_wmb();	/* entries before the count that covers them */
	ivshm_wr32(&slot->ipv4_count, n);
}

static void ivshm_addr_work_fn(struct work_struct *work)
{
	__be32 addrs[IVSHM_SLOT_IPV4];
	unsigned int n = ivshm_addr_collect(addrs);
	unsigned int i;

	mutex_lock(&ivshm_devices_mutex);
	for (i = 0; i < IVSHM_MAX_DEVICES; i++) {
		struct ivshm_dev *dev = ivshm_dev_get_by_index(i);

		if (dev)
			ivshm_addr_write(dev, addrs, n);
	}
	mutex_unlock(&ivshm_devices_mutex);
}

static DECLARE_WORK(ivshm_addr_work, ivshm_addr_work_fn);

/**
 * ivshm_addr_changed() - republish this guest's addresses on every region
 *
 * Called when a device is attached and on address changes; the work
 * runs in process context and takes ivshm_devices_mutex.
 */
void ivshm_addr_changed(void)
{
	schedule_work(&ivshm_addr_work);
}

static int ivshm_addr_event(struct notifier_block *nb, unsigned long event,
			    void *ptr)
{
	const struct in_ifaddr *ifa = ptr;

	if (net_eq(dev_net(ifa->ifa_dev->dev), &init_net))
		ivshm_addr_changed();
	return NOTIFY_DONE;
}

static struct notifier_block ivshm_addr_notifier = {
	.notifier_call = ivshm_addr_event,
};

/* A peer we may name: active and, unless it is us, not declared dead. */
static bool ivshm_addr_peer_live(struct ivshm_dev *dev, u32 peer)
{
	u64 epoch;

	if (!ivshm_peer_active(dev, peer, &epoch))
		return false;
	return peer == dev->self || !ivshm_peer_declared_dead(dev, peer, epoch);
}

/* The published count of @slot, read once and clamped. */
static unsigned int ivshm_addr_count(struct ivshm_peer_slot *slot)
{
	unsigned int n = ivshm_rd32(&slot->ipv4_count);

	smp_rmb();	/* the count before the entries it covers */
	return min_t(unsigned int, n, IVSHM_SLOT_IPV4);
}

static int ivshm_addr_resolve(struct ivshmem_ipv4_map *map)
{
	unsigned int i, j, n;
	u32 p;

	if (!map->addr)
		return -ENOENT;
	for (i = 0; i < IVSHM_MAX_DEVICES; i++) {
		struct ivshm_dev *dev = ivshm_dev_get_by_index(i);

		if (!dev)
			continue;
		for (p = 0; p < IVSHM_MAX_PEERS; p++) {
			struct ivshm_peer_slot *slot = &dev->peers[p];

			if (!ivshm_addr_peer_live(dev, p))
				continue;
			n = ivshm_addr_count(slot);
			for (j = 0; j < n; j++) {
				if (READ_ONCE(slot->ipv4[j]) != map->addr)
					continue;
				map->peer = p;
				map->region = dev->index;
				return 0;
			}
		}
	}
	return -ENOENT;
}

static int ivshm_addr_of_peer(struct ivshmem_ipv4_map *map)
{
	struct ivshm_peer_slot *slot;
	struct ivshm_dev *dev;
	unsigned int j, n;

	if (map->peer >= IVSHM_MAX_PEERS)
		return -EINVAL;
	dev = ivshm_dev_get_by_index(map->region);
	if (!dev)
		return -ENODEV;
	if (!ivshm_addr_peer_live(dev, map->peer))
		return -ENOENT;
	slot = &dev->peers[map->peer];
	n = ivshm_addr_count(slot);
	for (j = 0; j < n; j++) {
		__be32 addr = READ_ONCE(slot->ipv4[j]);

		if (addr) {
			map->addr = addr;
			map->region = dev->index;
			return 0;
		}
	}
	return -ENOENT;
}

/**
 * ivshm_addr_ioctl() - IOCTL_IVSHMEM_RESOLVE_IPV4 and IOCTL_IVSHMEM_PEER_IPV4
 * @cmd: the ioctl
 * @arg: user pointer to a struct ivshmem_ipv4_map
 *
 * Return: 0 or a negative errno (see include/uapi/linux/af_ivshmem.h).
 */
int ivshm_addr_ioctl(unsigned int cmd, void __user *arg)
{
	struct ivshmem_ipv4_map map;
	int err;

	if (copy_from_user(&map, arg, sizeof(map)))
		return -EFAULT;
	if (map.reserved)
		return -EINVAL;
	mutex_lock(&ivshm_devices_mutex);
	if (cmd == IOCTL_IVSHMEM_RESOLVE_IPV4)
		err = ivshm_addr_resolve(&map);
	else
		err = ivshm_addr_of_peer(&map);
	mutex_unlock(&ivshm_devices_mutex);
	if (!err && copy_to_user(arg, &map, sizeof(map)))
		err = -EFAULT;
	return err;
}

int ivshm_addr_init(void)
{
	return register_inetaddr_notifier(&ivshm_addr_notifier);
}

void ivshm_addr_exit(void)
{
	unregister_inetaddr_notifier(&ivshm_addr_notifier);
	cancel_work_sync(&ivshm_addr_work);
}
