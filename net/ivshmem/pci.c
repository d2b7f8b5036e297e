// SPDX-License-Identifier: GPL-2.0
/* AF_IVSHMEM PCI driver: binds QEMU's IVSHMEM device (1af4:1110, both
 * ivshmem-plain and ivshmem-doorbell), maps the region write-back, rings
 * and takes doorbells, and runs each device's event work.
 */
#include <linux/interrupt.h>
#include <linux/io.h>
#include <linux/module.h>
#include <linux/pci.h>
#include <linux/slab.h>

#include "af_ivshmem.h"
#include "trace.h"

#define IVSHMEM_VENDOR_ID	0x1af4
#define IVSHMEM_DEVICE_ID	0x1110

/* BAR0 registers (QEMU docs/specs/ivshmem-spec.rst) */
#define IVSHMEM_REG_INTRMASK	0x00
#define IVSHMEM_REG_INTRSTATUS	0x04
#define IVSHMEM_REG_IVPOSITION	0x08
#define IVSHMEM_REG_DOORBELL	0x0c

#define IVSHMEM_BAR_REGS	0
#define IVSHMEM_BAR_MSIX	1
#define IVSHMEM_BAR_SHM		2

/* The only vector we ring and take: "something changed for you". */
#define IVSHMEM_VECTOR_EVENT	0

/* Doorbell storms: in each window of IVSHM_STORM_WINDOW_MS the event work
 * may spend storm_budget_us (default IVSHM_STORM_BUDGET_MS) in runs that
 * found nothing to do.  Once that is spent, doorbells (and kicks) no
 * longer run it: it runs once more at the window's end.  Runs that found
 * work do not count: a busy guest is not throttled, a guest rung for
 * nothing is.
 */
#define IVSHM_STORM_WINDOW_MS	100
#define IVSHM_STORM_BUDGET_MS	50

static unsigned int ivshm_storm_budget_us = IVSHM_STORM_BUDGET_MS * 1000;
module_param_named(storm_budget_us, ivshm_storm_budget_us, uint, 0644);
MODULE_PARM_DESC(storm_budget_us, "doorbell storm limit: microseconds of event work that found nothing to do allowed per 100 ms window, then doorbells wait for the window's end (default 50000)");

static struct ivshm_dev *ivshm_devices[IVSHM_MAX_DEVICES];
/* protects ivshm_devices[] and each device's dead flag */
DEFINE_MUTEX(ivshm_devices_mutex);
static struct workqueue_struct *ivshm_wq;

/**
 * ivshm_dev_get_by_index() - look up a device by region index
 * @index: region index, or %IVSHMEM_REGION_ANY for the first device
 *
 * Context: caller holds ivshm_devices_mutex; the device stays valid until
 * it is released.
 * Return: the device or NULL.
 */
struct ivshm_dev *ivshm_dev_get_by_index(unsigned int index)
{
	unsigned int i;

	lockdep_assert_held(&ivshm_devices_mutex);
	if (index != IVSHMEM_REGION_ANY)
		return index < IVSHM_MAX_DEVICES ? ivshm_devices[index] : NULL;
	for (i = 0; i < IVSHM_MAX_DEVICES; i++)
		if (ivshm_devices[i])
			return ivshm_devices[i];
	return NULL;
}

/* Runs the event work now (doorbell, or a local peer to wake); during a
 * doorbell storm, at the end of the window (it is queued for then).
 */
void ivshm_kick(struct ivshm_dev *dev)
{
	if (!READ_ONCE(dev->dead) && !READ_ONCE(dev->storm))
		mod_delayed_work(ivshm_wq, &dev->event_work, 0);
}

/**
 * ivshm_ring_doorbell() - tell @peer that something changed for it
 * @dev: the device
 * @peer: the peer id to interrupt
 *
 * Without doorbells the peer's poller notices on its own.
 */
void ivshm_ring_doorbell(struct ivshm_dev *dev, u32 peer)
{
	if (peer == dev->self) {
		ivshm_kick(dev);
		return;
	}
	if (!dev->doorbell)
		return;
	iowrite32(peer << 16 | IVSHMEM_VECTOR_EVENT,
		  dev->regs + IVSHMEM_REG_DOORBELL);
	trace_ivshmem_doorbell_send(dev, peer);
	atomic64_inc(&dev->stats.doorbells_sent);
}

static irqreturn_t ivshm_irq(int irq, void *data)
{
	struct ivshm_dev *dev = data;

	atomic64_inc(&dev->stats.doorbells_received);
	trace_ivshmem_doorbell_recv(dev, IVSHMEM_VECTOR_EVENT);
	if (READ_ONCE(dev->storm)) {
		atomic64_inc(&dev->stats.doorbells_limited);
		return IRQ_HANDLED;
	}
	if (!ivshm_wake_sleepers(dev)) {
		ivshm_kick(dev);
	} else if (!READ_ONCE(dev->event_soon) && !READ_ONCE(dev->dead)) {
		/* The woken task runs first; the scan follows within a tick
		 * (and a later doorbell does not push it back).
		 */
		WRITE_ONCE(dev->event_soon, true);
		mod_delayed_work(ivshm_wq, &dev->event_work, 1);
	}
	ivshm_rebalance_event(dev);
	return IRQ_HANDLED;
}

static void ivshm_event_work(struct work_struct *work)
{
	struct ivshm_dev *dev = container_of(to_delayed_work(work),
					     struct ivshm_dev, event_work);
	u64 start = ktime_get_ns();
	unsigned long next;
	bool active;

	WRITE_ONCE(dev->event_soon, false);
	smp_mb();	/* a doorbell after this point queues us again */

	if (time_after_eq(jiffies, dev->storm_end)) {
		/* A new window: the budget is back. */
		dev->storm_end = jiffies +
				 msecs_to_jiffies(IVSHM_STORM_WINDOW_MS);
		dev->storm_ns = 0;
		WRITE_ONCE(dev->storm, false);
	}
	active = ivshm_dev_events(dev);
	if (!active)
		dev->storm_ns += ktime_get_ns() - start;
	if (!dev->storm && dev->storm_ns >
	    (u64)READ_ONCE(ivshm_storm_budget_us) * NSEC_PER_USEC) {
		WRITE_ONCE(dev->storm, true);
		dev_warn_ratelimited(&dev->pdev->dev,
				     "doorbells for nothing: event work deferred to the end of the window\n");
	}

	/* With interrupts this is the housekeeping tick (connect timeouts,
	 * released channels, dead peers).  Without, it is the poller: fast
	 * while something happened in the last IVSHM_POLL_FAST_ROUNDS polls,
	 * then doubling its interval up to poll_idle_ms.
	 */
	if (active) {
		dev->idle_polls = 0;
		/* Polling mode: a busy poll stands for a doorbell. */
		if (!dev->doorbell)
			ivshm_rebalance_event(dev);
	}
	if (dev->doorbell)
		next = HZ;
	else if (++dev->idle_polls <= IVSHM_POLL_FAST_ROUNDS)
		next = msecs_to_jiffies(ivshm_poll_interval_ms);
	else
		next = min(dev->poll_delay * 2,
			   msecs_to_jiffies(ivshm_poll_idle_ms));
	dev->poll_delay = max(next, 1UL);
	next = dev->poll_delay;
	if (dev->storm)
		next = max_t(long, (long)(dev->storm_end - jiffies), 1);
	if (!READ_ONCE(dev->dead))
		queue_delayed_work(ivshm_wq, &dev->event_work, next);
}

/* Runs the rebalancer now (a connection found the region full, or the
 * rebalancer's parameters changed).
 */
void ivshm_rebalance_kick(struct ivshm_dev *dev)
{
	if (!READ_ONCE(dev->dead))
		mod_delayed_work(ivshm_wq, &dev->rebalance_work, 0);
}

/* Every rebalance_doorbells doorbells (or busy polls), a rebalancer run. */
void ivshm_rebalance_event(struct ivshm_dev *dev)
{
	unsigned int every = READ_ONCE(ivshm_rebalance_doorbells);

	if (every && atomic_inc_return(&dev->rebalance_events) >= every) {
		atomic_set(&dev->rebalance_events, 0);
		ivshm_rebalance_kick(dev);
	}
}

/* A parameter changed: every device's rebalancer runs now and re-arms its
 * timer with the new interval.
 */
void ivshm_rebalance_kick_all(void)
{
	unsigned int i;

	mutex_lock(&ivshm_devices_mutex);
	for (i = 0; i < IVSHM_MAX_DEVICES; i++)
		if (ivshm_devices[i])
			ivshm_rebalance_kick(ivshm_devices[i]);
	mutex_unlock(&ivshm_devices_mutex);
}

static void ivshm_rebalance_work(struct work_struct *work)
{
	struct ivshm_dev *dev = container_of(to_delayed_work(work),
					     struct ivshm_dev, rebalance_work);
	unsigned int ms = READ_ONCE(ivshm_rebalance_interval_ms);

	ivshm_rebalance(dev);
	/* A kick (mod_delayed_work) meanwhile is not undone by this. */
	if (ms && !READ_ONCE(dev->dead))
		queue_delayed_work(ivshm_wq, &dev->rebalance_work,
				   max(msecs_to_jiffies(ms), 1UL));
}

/* Publishes our heartbeat and checks everyone else's. */
static void ivshm_heartbeat_work(struct work_struct *work)
{
	struct ivshm_dev *dev = container_of(to_delayed_work(work),
					     struct ivshm_dev, heartbeat_work);

	ivshm_wr64(&dev->peers[dev->self].heartbeat, ++dev->heartbeat);
	if (ivshm_peers_check(dev))
		ivshm_kick(dev);
	if (!READ_ONCE(dev->dead))
		queue_delayed_work(ivshm_wq, &dev->heartbeat_work,
				   msecs_to_jiffies(IVSHM_HEARTBEAT_MS));
}

static int ivshm_setup_irq(struct ivshm_dev *dev)
{
	struct pci_dev *pdev = dev->pdev;
	int nvec, err;

	nvec = pci_alloc_irq_vectors(pdev, 1, 1, PCI_IRQ_MSIX);
	if (nvec < 0)
		return nvec;
	err = request_irq(pci_irq_vector(pdev, IVSHMEM_VECTOR_EVENT), ivshm_irq,
			  0, "af_ivshmem", dev);
	if (err) {
		pci_free_irq_vectors(pdev);
		return err;
	}
	dev->nvec = nvec;
	return 0;
}

static void ivshm_teardown_irq(struct ivshm_dev *dev)
{
	if (!dev->nvec)
		return;
	free_irq(pci_irq_vector(dev->pdev, IVSHMEM_VECTOR_EVENT), dev);
	pci_free_irq_vectors(dev->pdev);
	dev->nvec = 0;
}

static int ivshm_probe(struct pci_dev *pdev, const struct pci_device_id *id)
{
	struct ivshm_dev *dev;
	resource_size_t start, len;
	unsigned int index;
	u32 ivposition;
	int err;

	dev = devm_kzalloc(&pdev->dev, sizeof(*dev), GFP_KERNEL);
	if (!dev)
		return -ENOMEM;
	dev->pdev = pdev;
	mutex_init(&dev->alloc_mutex);
	spin_lock_init(&dev->socks_lock);
	INIT_LIST_HEAD(&dev->socks);
	spin_lock_init(&dev->sleepers_lock);
	INIT_LIST_HEAD(&dev->sleepers);
	INIT_LIST_HEAD(&dev->zombies);
	INIT_DELAYED_WORK(&dev->event_work, ivshm_event_work);
	/* Not 0: jiffies starts 5 minutes before wrapping to 0. */
	dev->storm_end = jiffies;
	INIT_DELAYED_WORK(&dev->heartbeat_work, ivshm_heartbeat_work);
	INIT_DELAYED_WORK(&dev->rebalance_work, ivshm_rebalance_work);
	init_waitqueue_head(&dev->rebalance_wq);
	pci_set_drvdata(pdev, dev);
	err = ivshm_dgram_attach(dev);
	if (err)
		return err;

	err = pcim_enable_device(pdev);
	if (err)
		return err;
	start = pci_resource_start(pdev, IVSHMEM_BAR_SHM);
	len = pci_resource_len(pdev, IVSHMEM_BAR_SHM);
	if (!start || !len)
		return dev_err_probe(&pdev->dev, -ENODEV, "no shared memory BAR\n");
	/* Both BARs exclusive, whatever CONFIG_IO_STRICT_DEVMEM says: while
	 * we are bound, nobody maps the region or rings doorbells through
	 * /dev/mem or the device's sysfs resource files, not even root.
	 * Released with the managed device.
	 */
	err = pci_request_selected_regions_exclusive(pdev,
						     BIT(IVSHMEM_BAR_REGS) |
						     BIT(IVSHMEM_BAR_SHM),
						     "af_ivshmem");
	if (err)
		return err;
	dev->regs = pcim_iomap(pdev, IVSHMEM_BAR_REGS, 0);
	if (!dev->regs)
		return -ENOMEM;
	/* Plain RAM on the host: map it cacheable, never as MMIO. */
	dev->shm = devm_memremap(&pdev->dev, start, len, MEMREMAP_WB);
	if (IS_ERR(dev->shm))
		return PTR_ERR(dev->shm);
	dev->shm_size = len;

	/* ivshmem-doorbell has an MSI-X BAR and a server-given IVPosition. */
	ivposition = ioread32(dev->regs + IVSHMEM_REG_IVPOSITION);
	dev->doorbell = pdev->msix_cap &&
			pci_resource_len(pdev, IVSHMEM_BAR_MSIX) &&
			ivposition <= 0xffff;
	if (dev->doorbell) {
		if (ivposition >= IVSHM_MAX_PEERS)
			return dev_err_probe(&pdev->dev, -ERANGE,
					     "peer id %u beyond the %u this ABI supports\n",
					     ivposition, IVSHM_MAX_PEERS);
		dev->self = ivposition;
	}

	err = ivshm_region_attach(dev);
	if (err)
		return err;
	/* Interrupts only once the tables they lead to are set up. */
	if (dev->doorbell) {
		/* MSI-X messages are bus-master writes. */
		pci_set_master(pdev);
		err = ivshm_setup_irq(dev);
		if (err) {
			dev_err(&pdev->dev, "MSI-X setup: %d\n", err);
			goto fail_region;
		}
	}

	mutex_lock(&ivshm_devices_mutex);
	for (index = 0; index < IVSHM_MAX_DEVICES; index++)
		if (!ivshm_devices[index])
			break;
	if (index == IVSHM_MAX_DEVICES) {
		mutex_unlock(&ivshm_devices_mutex);
		err = -ENOSPC;
		goto fail_irq;
	}
	dev->index = index;
	ivshm_devices[index] = dev;
	mutex_unlock(&ivshm_devices_mutex);

	ivshm_kick(dev);
	queue_delayed_work(ivshm_wq, &dev->heartbeat_work, 0);
	if (ivshm_rebalance_interval_ms)
		queue_delayed_work(ivshm_wq, &dev->rebalance_work,
				   msecs_to_jiffies(ivshm_rebalance_interval_ms));
	ivshm_addr_changed();
	dev_info(&pdev->dev,
		 "region %u: %llu MiB, peer id %u, %s mode\n", index,
		 dev->shm_size >> 20, dev->self,
		 dev->doorbell ? "doorbell" : "polling");
	return 0;

fail_irq:
	ivshm_teardown_irq(dev);
	WRITE_ONCE(dev->dead, true);
	cancel_delayed_work_sync(&dev->rebalance_work);
	cancel_delayed_work_sync(&dev->event_work);
fail_region:
	ivshm_region_detach(dev);
	return err;
}

static void ivshm_remove(struct pci_dev *pdev)
{
	struct ivshm_dev *dev = pci_get_drvdata(pdev);

	mutex_lock(&ivshm_devices_mutex);
	WRITE_ONCE(dev->dead, true);
	ivshm_devices[dev->index] = NULL;
	mutex_unlock(&ivshm_devices_mutex);

	ivshm_teardown_irq(dev);
	cancel_delayed_work_sync(&dev->heartbeat_work);
	cancel_delayed_work_sync(&dev->rebalance_work);
	/* Detached sockets stop kicking the work; then it can be stopped. */
	ivshm_dev_detach_socks(dev);
	cancel_delayed_work_sync(&dev->event_work);
	/* The event work (polling mode) may have kicked it meanwhile. */
	cancel_delayed_work_sync(&dev->rebalance_work);
	ivshm_dgram_detach(dev);
	ivshm_zombies_reap(dev, true);
	ivshm_region_detach(dev);
	dev_info(&pdev->dev, "region %u removed\n", dev->index);
}

/* Counters: one read-only file each in the device's "stats" directory. */
struct ivshm_stat_attr {
	struct device_attribute attr;
	size_t offset;		/* of the counter in struct ivshm_stats */
};

static ssize_t ivshm_stat_show(struct device *d, struct device_attribute *attr,
			       char *buf)
{
	struct ivshm_dev *dev = pci_get_drvdata(to_pci_dev(d));
	size_t offset = container_of(attr, struct ivshm_stat_attr, attr)->offset;

	if (!dev)
		return -ENODEV;
	return sysfs_emit(buf, "%lld\n",
			  atomic64_read((atomic64_t *)((char *)&dev->stats +
						       offset)));
}

#define IVSHM_STAT_ATTR(field)						\
static struct ivshm_stat_attr ivshm_stat_##field = {			\
	.attr = {							\
		.attr = { .name = #field, .mode = 0444 },		\
		.show = ivshm_stat_show,				\
	},								\
	.offset = offsetof(struct ivshm_stats, field),			\
}

IVSHM_STAT_ATTR(doorbells_sent);
IVSHM_STAT_ATTR(doorbells_received);
IVSHM_STAT_ATTR(doorbells_suppressed);
IVSHM_STAT_ATTR(validation_failures);
IVSHM_STAT_ATTR(lock_steals);
IVSHM_STAT_ATTR(connects_refused);
IVSHM_STAT_ATTR(peers_declared_dead);
IVSHM_STAT_ATTR(channels_reclaimed);
IVSHM_STAT_ATTR(dgram_sent);
IVSHM_STAT_ATTR(dgram_received);
IVSHM_STAT_ATTR(dgram_dropped_no_socket);
IVSHM_STAT_ATTR(dgram_dropped_rcvbuf);
IVSHM_STAT_ATTR(request_scans);
IVSHM_STAT_ATTR(resets_sent);
IVSHM_STAT_ATTR(resets_received);
IVSHM_STAT_ATTR(resets_peer_dead);
IVSHM_STAT_ATTR(resets_device_gone);
IVSHM_STAT_ATTR(channels_allocated);
IVSHM_STAT_ATTR(channels_freed);
IVSHM_STAT_ATTR(rebalances);
IVSHM_STAT_ATTR(channels_grown);
IVSHM_STAT_ATTR(channels_shrunk);
IVSHM_STAT_ATTR(resizes_aborted);
IVSHM_STAT_ATTR(doorbells_limited);
IVSHM_STAT_ATTR(auth_failures);
IVSHM_STAT_ATTR(doorbell_wakes);
IVSHM_STAT_ATTR(channels_moved);

static struct attribute *ivshm_stats_attrs[] = {
	&ivshm_stat_doorbells_sent.attr.attr,
	&ivshm_stat_doorbells_received.attr.attr,
	&ivshm_stat_doorbells_suppressed.attr.attr,
	&ivshm_stat_validation_failures.attr.attr,
	&ivshm_stat_lock_steals.attr.attr,
	&ivshm_stat_connects_refused.attr.attr,
	&ivshm_stat_peers_declared_dead.attr.attr,
	&ivshm_stat_channels_reclaimed.attr.attr,
	&ivshm_stat_dgram_sent.attr.attr,
	&ivshm_stat_dgram_received.attr.attr,
	&ivshm_stat_dgram_dropped_no_socket.attr.attr,
	&ivshm_stat_dgram_dropped_rcvbuf.attr.attr,
	&ivshm_stat_request_scans.attr.attr,
	&ivshm_stat_resets_sent.attr.attr,
	&ivshm_stat_resets_received.attr.attr,
	&ivshm_stat_resets_peer_dead.attr.attr,
	&ivshm_stat_resets_device_gone.attr.attr,
	&ivshm_stat_channels_allocated.attr.attr,
	&ivshm_stat_channels_freed.attr.attr,
	&ivshm_stat_rebalances.attr.attr,
	&ivshm_stat_channels_grown.attr.attr,
	&ivshm_stat_channels_shrunk.attr.attr,
	&ivshm_stat_resizes_aborted.attr.attr,
	&ivshm_stat_doorbells_limited.attr.attr,
	&ivshm_stat_auth_failures.attr.attr,
	&ivshm_stat_doorbell_wakes.attr.attr,
	&ivshm_stat_channels_moved.attr.attr,
	NULL
};

static const struct attribute_group ivshm_stats_group = {
	.name = "stats",
	.attrs = ivshm_stats_attrs,
};

static const struct attribute_group *ivshm_dev_groups[] = {
	&ivshm_stats_group,
	NULL
};

static const struct pci_device_id ivshm_pci_ids[] = {
	{ PCI_DEVICE(IVSHMEM_VENDOR_ID, IVSHMEM_DEVICE_ID) },
	{ }
};
MODULE_DEVICE_TABLE(pci, ivshm_pci_ids);

static struct pci_driver ivshm_pci_driver = {
	.name = "af_ivshmem",
	.id_table = ivshm_pci_ids,
	.probe = ivshm_probe,
	.remove = ivshm_remove,
	.dev_groups = ivshm_dev_groups,
};

static int __init ivshm_init(void)
{
	int err;

	ivshm_wq = alloc_workqueue("af_ivshmem", WQ_UNBOUND, 0);
	if (!ivshm_wq)
		return -ENOMEM;
	err = ivshm_sock_init();
	if (err)
		goto fail_wq;
	err = ivshm_addr_init();
	if (err)
		goto fail_sock;
	err = pci_register_driver(&ivshm_pci_driver);
	if (err)
		goto fail_addr;
	err = ivshm_fabric_init();
	if (err)
		goto fail_pci;
	return 0;
fail_pci:
	pci_unregister_driver(&ivshm_pci_driver);
fail_addr:
	ivshm_addr_exit();
fail_sock:
	ivshm_sock_exit();
fail_wq:
	destroy_workqueue(ivshm_wq);
	return err;
}

static void __exit ivshm_exit(void)
{
	ivshm_fabric_exit();
	pci_unregister_driver(&ivshm_pci_driver);
	ivshm_addr_exit();
	ivshm_sock_exit();
	destroy_workqueue(ivshm_wq);
}

module_init(ivshm_init);
module_exit(ivshm_exit);

MODULE_DESCRIPTION("AF_IVSHMEM: sockets between VMs over a QEMU IVSHMEM region");
MODULE_LICENSE("GPL");
