// SPDX-License-Identifier: GPL-2.0
/* AF_IVSHMEM socket layer: SOCK_STREAM sockets whose two directions are
 * channels (rings) in an IVSHMEM region.
 *
 * Locking: a socket's channels are only touched under lock_sock(), apart
 * from poll(), which reads them and sets the wait flags.  The bind table is
 * under ivshm_bind_lock; a device's socket list under its socks_lock.  The
 * per-device event work (pci.c) answers connection requests and wakes
 * sockets whose channels changed.
 */
#include <linux/cred.h>
#include <linux/hash.h>
#include <linux/module.h>
#include <linux/net.h>
#include <linux/poll.h>
#include <linux/random.h>
#include <linux/sched/clock.h>
#include <linux/sched/signal.h>
#include <linux/termios.h>
#include <linux/sockios.h>
#include <linux/uio.h>
#include <net/sock.h>

#include "af_ivshmem.h"

#ifdef AF_IVSHMEM
/* In-tree: the kernel has a number of its own for us. */
static int family = AF_IVSHMEM;
#else
static int family = IVSHMEM_FAMILY_DEFAULT;
#endif
module_param(family, int, 0444);
MODULE_PARM_DESC(family, "address family number to register (out of tree: default 25)");

unsigned int ivshm_channel_size = 512 * 1024;
module_param_named(channel_size, ivshm_channel_size, uint, 0444);
MODULE_PARM_DESC(channel_size, "bytes per channel (one direction of a connection), multiple of 4096");

unsigned int ivshm_poll_interval_ms = 1;
module_param_named(poll_interval_ms, ivshm_poll_interval_ms, uint, 0644);
MODULE_PARM_DESC(poll_interval_ms, "poll interval without doorbells while busy (at least a jiffy)");

unsigned int ivshm_poll_idle_ms = 64;
module_param_named(poll_idle_ms, ivshm_poll_idle_ms, uint, 0644);
MODULE_PARM_DESC(poll_idle_ms, "longest poll interval without doorbells, reached when idle");

unsigned int ivshm_lock_lease_ms = 2000;
module_param_named(lock_lease_ms, ivshm_lock_lease_ms, uint, 0644);
MODULE_PARM_DESC(lock_lease_ms, "control lock lease: a holder silent this long is presumed dead");

unsigned int ivshm_liveness_timeout_ms = 2000;
module_param_named(liveness_timeout_ms, ivshm_liveness_timeout_ms, uint, 0644);
MODULE_PARM_DESC(liveness_timeout_ms, "a peer whose heartbeat stops this long is dead");

static unsigned int connect_timeout_ms = 5000;
module_param(connect_timeout_ms, uint, 0644);
MODULE_PARM_DESC(connect_timeout_ms, "default connect timeout");

/**
 * struct ivshm_sock - an AF_IVSHMEM socket
 * @sk: the socket; must be first
 * @local: our address (port %IVSHMEM_PORT_ANY while unbound)
 * @remote: the peer's address once connecting
 * @bind_node: entry in the bind table while @bound
 * @bound: @local.sivshm_port is ours
 * @dev: the device our channels are on, or NULL
 * @dev_node: entry in @dev's socket list
 * @scan_node: used by the event work's snapshot of the socket list
 * @tx: the channel we send on (we own it)
 * @tx_state: what we last wrote to @tx's sender_state (never read back)
 * @tx_touch: what we last wrote to @tx's head_touch
 * @want_space: what we last wrote to @tx's send_waiting
 * @want_data: what we last wrote to @rx's recv_waiting
 * @reset_err: the errno of a reset (ECONNRESET, ENETDOWN): every later
 *	send() and recv() fails with it, so a reading and a writing thread
 *	both learn of it; SO_ERROR reports it once
 * @rx: the channel we receive on (the peer owns it)
 * @zombie: preallocated record that keeps @tx until the peer releases it
 * @peer: the peer's id
 * @peer_epoch: the peer slot's epoch when we connected
 * @seen_head: rx head at the last wakeup check
 * @seen_tail: tx tail at the last wakeup check
 * @seen_state: peer states at the last wakeup check
 * @connect_deadline: jiffies when a pending connect times out
 * @accept_queue: listener: connected children not yet accepted
 * @accept_node: child: entry in the listener's @accept_queue
 * @owner_pid: tgid of the creating process (published as sender_pid)
 */
struct ivshm_sock {
	struct sock sk;
	struct sockaddr_ivshmem local;
	struct sockaddr_ivshmem remote;
	struct hlist_node bind_node;
	bool bound;
	struct ivshm_dev *dev;
	struct list_head dev_node;
	struct list_head scan_node;
	struct ivshm_ring tx;
	u32 tx_state;
	u32 tx_touch;
	bool want_space;
	bool want_data;
	int reset_err;
	struct ivshm_ring rx;
	struct ivshm_zombie *zombie;
	u32 peer;
	u64 peer_epoch;
	u64 seen_head;
	u64 seen_tail;
	u32 seen_state;
	unsigned long connect_deadline;
	struct list_head accept_queue;
	struct list_head accept_node;
	pid_t owner_pid;
};

static inline struct ivshm_sock *ivshm_sk(struct sock *sk)
{
	return container_of(sk, struct ivshm_sock, sk);
}

#define IVSHM_BIND_HASH_BITS	8
static struct hlist_head ivshm_bind_table[1 << IVSHM_BIND_HASH_BITS];
static DEFINE_SPINLOCK(ivshm_bind_lock);

static struct proto ivshm_proto = {
	.name = "AF_IVSHMEM",
	.owner = THIS_MODULE,
	.obj_size = sizeof(struct ivshm_sock),
};

/* The family number is a module parameter, so the ops carry it only once
 * the module is loaded: a copy of ivshm_stream_ops_template made at init.
 */
static const struct proto_ops *ivshm_stream_ops;

static struct hlist_head *ivshm_bind_bucket(u32 port)
{
	return &ivshm_bind_table[hash_32(port, IVSHM_BIND_HASH_BITS)];
}

static bool ivshm_port_in_use(u32 port)
{
	struct ivshm_sock *vsk;

	hlist_for_each_entry(vsk, ivshm_bind_bucket(port), bind_node)
		if (vsk->local.sivshm_port == port)
			return true;
	return false;
}

/* Binds @vsk to @port (or an ephemeral port for IVSHMEM_PORT_ANY). */
static int ivshm_bind_port(struct ivshm_sock *vsk, u32 port)
{
	const u32 range = IVSHMEM_EPHEMERAL_LAST - IVSHMEM_EPHEMERAL_FIRST + 1;
	int err = 0;
	u32 i, start;

	if (port != IVSHMEM_PORT_ANY && port < IVSHMEM_PORT_RESERVED &&
	    !ns_capable(sock_net(&vsk->sk)->user_ns, CAP_NET_BIND_SERVICE))
		return -EACCES;

	spin_lock_bh(&ivshm_bind_lock);
	if (port == IVSHMEM_PORT_ANY) {
		start = get_random_u32_below(range);
		for (i = 0; i < range; i++) {
			port = IVSHMEM_EPHEMERAL_FIRST + (start + i) % range;
			if (!ivshm_port_in_use(port))
				break;
		}
		if (i == range)
			err = -EADDRNOTAVAIL;
	} else if (ivshm_port_in_use(port)) {
		err = -EADDRINUSE;
	}
	if (!err) {
		vsk->local.sivshm_port = port;
		vsk->bound = true;
		hlist_add_head(&vsk->bind_node, ivshm_bind_bucket(port));
	}
	spin_unlock_bh(&ivshm_bind_lock);
	return err;
}

static void ivshm_unbind(struct ivshm_sock *vsk)
{
	spin_lock_bh(&ivshm_bind_lock);
	if (vsk->bound) {
		hlist_del(&vsk->bind_node);
		vsk->bound = false;
	}
	spin_unlock_bh(&ivshm_bind_lock);
}

/* Finds the listener for @port on region @index; takes a reference. */
static struct sock *ivshm_find_listener(u32 port, unsigned int index)
{
	struct ivshm_sock *vsk;
	struct sock *found = NULL;

	spin_lock_bh(&ivshm_bind_lock);
	hlist_for_each_entry(vsk, ivshm_bind_bucket(port), bind_node) {
		if (vsk->local.sivshm_port != port ||
		    vsk->sk.sk_state != TCP_LISTEN)
			continue;
		if (vsk->local.sivshm_region != IVSHMEM_REGION_ANY &&
		    vsk->local.sivshm_region != index)
			continue;
		found = &vsk->sk;
		sock_hold(found);
		break;
	}
	spin_unlock_bh(&ivshm_bind_lock);
	return found;
}

/* Puts @vsk on @dev's socket list; fails when the device is going away. */
static int ivshm_attach_dev(struct ivshm_sock *vsk, struct ivshm_dev *dev)
{
	int err = 0;

	spin_lock_bh(&dev->socks_lock);
	if (dev->dead) {
		err = -ENODEV;
	} else {
		vsk->dev = dev;
		list_add_tail(&vsk->dev_node, &dev->socks);
	}
	spin_unlock_bh(&dev->socks_lock);
	return err;
}

static void ivshm_detach_dev(struct ivshm_sock *vsk)
{
	struct ivshm_dev *dev = vsk->dev;

	if (!dev)
		return;
	spin_lock_bh(&dev->socks_lock);
	list_del_init(&vsk->dev_node);
	spin_unlock_bh(&dev->socks_lock);
	vsk->dev = NULL;
}

/* Hands our tx channel to the device's zombie list until it is released. */
static void ivshm_retire_tx(struct ivshm_sock *vsk)
{
	struct ivshm_dev *dev = vsk->dev;
	struct ivshm_zombie *z = vsk->zombie;

	vsk->zombie = NULL;
	z->index = vsk->tx.index;
	z->generation = vsk->tx.generation;
	z->peer = vsk->peer;
	z->peer_epoch = vsk->peer_epoch;
	spin_lock_bh(&dev->socks_lock);
	list_add_tail(&z->node, &dev->zombies);
	spin_unlock_bh(&dev->socks_lock);
}

static struct ivshm_channel *ivshm_tx_chan(struct ivshm_sock *vsk)
{
	return ivshm_chan(vsk->dev, vsk->tx.index);
}

static struct ivshm_channel *ivshm_rx_chan(struct ivshm_sock *vsk)
{
	return ivshm_chan(vsk->dev, vsk->rx.index);
}

/* Publishes our sender state; callers order the fields it covers. */
static void ivshm_set_tx_state(struct ivshm_sock *vsk, u32 state)
{
	vsk->tx_state = state;
	ivshm_wr32(&ivshm_tx_chan(vsk)->sender_state, state);
}

/* Ends the connection on our side: the peer sees @send_state on our tx
 * channel (EOF or reset) and our release of its channel.  Called under
 * lock_sock() with the socket attached to a device.
 */
static void ivshm_disconnect(struct ivshm_sock *vsk, u32 send_state)
{
	struct sock *sk = &vsk->sk;
	struct ivshm_dev *dev = vsk->dev;

	if (!dev)
		return;
	if (sk->sk_state == TCP_ESTABLISHED) {
		/* Released before EOF: a reader that sees EOF sees both. */
		ivshm_wr32(&ivshm_rx_chan(vsk)->receiver_state,
			   IVSHM_RECV_RELEASED);
		smp_wmb();	/* release, then EOF or reset */
		if (vsk->tx_state == IVSHM_SEND_OPEN ||
		    send_state == IVSHM_SEND_RESET)
			ivshm_set_tx_state(vsk, send_state);
	} else {
		/* A request in flight: the peer may still answer it. */
		ivshm_set_tx_state(vsk, IVSHM_SEND_RESET);
	}
	ivshm_retire_tx(vsk);
	ivshm_ring_doorbell(dev, vsk->peer);
	/* Still on the device's list: its removal waits for our lock. */
	ivshm_zombies_reap(dev, false);
	ivshm_detach_dev(vsk);
}

/* Marks the socket closed with error @err (a positive errno). */
static void ivshm_set_closed(struct sock *sk, int err)
{
	sk->sk_err = err;
	sk->sk_state = TCP_CLOSE;
	if (sk->sk_socket)
		sk->sk_socket->state = SS_UNCONNECTED;
	sk_error_report(sk);
}

/* Fails the connection with @err (a positive errno). */
static void ivshm_reset(struct ivshm_sock *vsk, int err)
{
	ivshm_disconnect(vsk, IVSHM_SEND_RESET);
	vsk->reset_err = err;
	vsk->sk.sk_shutdown = SHUTDOWN_MASK;
	ivshm_set_closed(&vsk->sk, err);
}

/* ---- ring access ---- */

/* Bytes readable on the rx channel, or a negative errno when the peer's
 * channel is gone or its head is impossible.
 */
static s64 ivshm_rx_avail(struct ivshm_sock *vsk)
{
	struct ivshm_channel *ch = ivshm_rx_chan(vsk);
	u64 head, avail;

	if (ivshm_rd32(&ch->alloc_state) != IVSHM_CHAN_ALLOCATED ||
	    ivshm_rd32(&ch->generation) != vsk->rx.generation)
		return -ECONNRESET;
	head = ivshm_rd64(&ch->head);
	smp_rmb();	/* head before the ring data it covers */
	avail = head - READ_ONCE(vsk->rx.pos);
	if (avail > vsk->rx.size) {
		ivshm_note_bad(vsk->dev, "rx head", vsk->rx.index);
		return -ECONNRESET;
	}
	return avail;
}

/* Bytes free on the tx channel, or a negative errno. */
static s64 ivshm_tx_free(struct ivshm_sock *vsk)
{
	struct ivshm_channel *ch = ivshm_tx_chan(vsk);
	u64 used;

	if (ivshm_rd32(&ch->receiver_state) == IVSHM_RECV_RELEASED)
		return -EPIPE;
	used = READ_ONCE(vsk->tx.pos) - ivshm_rd64(&ch->tail);
	smp_mb();	/* tail before we overwrite the space it freed */
	if (used > vsk->tx.size) {
		ivshm_note_bad(vsk->dev, "tx tail", vsk->tx.index);
		return -ECONNRESET;
	}
	return vsk->tx.size - used;
}

/* The peer's sender state on our rx channel, checked. */
static u32 ivshm_rx_state(struct ivshm_sock *vsk)
{
	u32 state = ivshm_rd32(&ivshm_rx_chan(vsk)->sender_state);

	smp_rmb();	/* state before head: data published before EOF */
	return state;
}

static u32 ivshm_ring_off(const struct ivshm_ring *ring, u64 pos)
{
	u32 rem;

	div_u64_rem(pos, ring->size, &rem);
	return rem;
}

/* Copies @len bytes from @iter into the tx ring at our head. */
static int ivshm_ring_write(struct ivshm_sock *vsk, struct iov_iter *iter,
			    size_t len)
{
	struct ivshm_ring *ring = &vsk->tx;
	void *base = vsk->dev->shm + ring->offset;
	u32 off = ivshm_ring_off(ring, ring->pos);
	size_t first = min_t(size_t, len, ring->size - off);

	if (copy_from_iter(base + off, first, iter) != first)
		return -EFAULT;
	if (len > first && copy_from_iter(base, len - first, iter) !=
			   len - first)
		return -EFAULT;
	return 0;
}

/* Copies @len bytes at rx position @pos into @iter. */
static int ivshm_ring_read(struct ivshm_sock *vsk, u64 pos,
			   struct iov_iter *iter, size_t len)
{
	struct ivshm_ring *ring = &vsk->rx;
	void *base = vsk->dev->shm + ring->offset;
	u32 off = ivshm_ring_off(ring, pos);
	size_t first = min_t(size_t, len, ring->size - off);

	if (copy_to_iter(base + off, first, iter) != first)
		return -EFAULT;
	if (len > first && copy_to_iter(base, len - first, iter) !=
			   len - first)
		return -EFAULT;
	return 0;
}

/* Wait flags: request-then-recheck.  A side about to wait sets its flag,
 * issues a full barrier and checks the ring again; the other side publishes
 * its index, issues a full barrier and rings if the flag is set.
 */
static void ivshm_want_data(struct ivshm_sock *vsk, bool want)
{
	vsk->want_data = want;
	ivshm_wr32(&ivshm_rx_chan(vsk)->recv_waiting, want);
	smp_mb();	/* flag before the recheck of head */
}

static void ivshm_want_space(struct ivshm_sock *vsk, bool want)
{
	vsk->want_space = want;
	ivshm_wr16(&ivshm_tx_chan(vsk)->send_waiting, want);
	smp_mb();	/* flag before the recheck of tail */
}

/* ---- connection setup ---- */

static void ivshm_set_established(struct ivshm_sock *vsk)
{
	struct sock *sk = &vsk->sk;

	sk->sk_state = TCP_ESTABLISHED;
	if (sk->sk_socket)
		sk->sk_socket->state = SS_CONNECTED;
	vsk->seen_head = 0;
	vsk->seen_tail = 0;
	vsk->seen_state = 0;
}

/* Checks that the reply channel named by the peer really is the way back
 * for our request: allocated by the peer, to us, pointing at our request,
 * with sane geometry.  Fills @vsk->rx on success.
 */
static bool ivshm_accept_reply(struct ivshm_sock *vsk, u32 index, u32 gen)
{
	struct ivshm_dev *dev = vsk->dev;
	struct ivshm_channel *ch;
	u32 off, size;

	if (index >= IVSHM_MAX_CHANNELS)
		return false;
	ch = ivshm_chan(dev, index);
	if (ivshm_rd32(&ch->alloc_state) != IVSHM_CHAN_ALLOCATED ||
	    ivshm_rd32(&ch->generation) != gen)
		return false;
	smp_rmb();	/* alloc_state/generation before the fields */
	off = ivshm_rd32(&ch->buff_offset);
	size = ivshm_rd32(&ch->buff_size);
	if (ivshm_rd16(&ch->sender_vm) != vsk->peer ||
	    ivshm_rd16(&ch->receiver_vm) != dev->self ||
	    ivshm_rd32(&ch->peer_channel) != vsk->tx.index ||
	    ivshm_rd32(&ch->peer_generation) != vsk->tx.generation ||
	    ivshm_rd32(&ch->src_port) != vsk->remote.sivshm_port ||
	    ivshm_rd32(&ch->dst_port) != vsk->local.sivshm_port ||
	    !ivshm_chan_geometry(dev, off, size))
		return false;
	vsk->rx.index = index;
	vsk->rx.generation = gen;
	vsk->rx.offset = off;
	vsk->rx.size = size;
	vsk->rx.pos = 0;
	return true;
}

/* Fails a pending connect with @err. */
static void ivshm_connect_fail(struct ivshm_sock *vsk, int err)
{
	struct ivshm_dev *dev = vsk->dev;

	if (err == ECONNREFUSED) {
		/* A refusal is the receiver's last word: free at once. */
		ivshm_chan_free(dev, vsk->tx.index, vsk->tx.generation);
		ivshm_detach_dev(vsk);
	} else {
		ivshm_disconnect(vsk, IVSHM_SEND_RESET);
	}
	ivshm_set_closed(&vsk->sk, err);
}

/* Looks at the answer to our connection request.  Under lock_sock(). */
static void ivshm_connect_check(struct ivshm_sock *vsk)
{
	struct ivshm_channel *ch = ivshm_tx_chan(vsk);
	u32 rstate = ivshm_rd32(&ch->receiver_state);
	u32 index, gen;

	switch (rstate) {
	case IVSHM_RECV_ACCEPTED:
	case IVSHM_RECV_RELEASED:
		/* A peer that accepts and closes at once replaces ACCEPTED
		 * by RELEASED before we look; its reply fields stay valid.
		 */
		smp_rmb();	/* receiver_state before the reply fields */
		index = ivshm_rd32(&ch->reply_channel);
		gen = ivshm_rd32(&ch->reply_generation);
		if (!ivshm_accept_reply(vsk, index, gen)) {
			ivshm_note_bad(vsk->dev, "reply channel", index);
			ivshm_connect_fail(vsk, ECONNRESET);
			return;
		}
		ivshm_set_tx_state(vsk, IVSHM_SEND_OPEN);
		ivshm_set_established(vsk);
		vsk->sk.sk_state_change(&vsk->sk);
		return;
	case IVSHM_RECV_REFUSED:
		ivshm_connect_fail(vsk, ECONNREFUSED);
		return;
	case IVSHM_RECV_NONE:
		if (time_after(jiffies, vsk->connect_deadline))
			ivshm_connect_fail(vsk, ETIMEDOUT);
		return;
	default:
		ivshm_note_bad(vsk->dev, "receiver state", vsk->tx.index);
		ivshm_connect_fail(vsk, ECONNRESET);
	}
}

/* ---- socket life cycle ---- */

static void ivshm_sk_destruct(struct sock *sk)
{
	kfree(ivshm_sk(sk)->zombie);
}

static void ivshm_init_addr(struct sockaddr_ivshmem *addr)
{
	memset(addr, 0, sizeof(*addr));
	addr->sivshm_family = family;
	addr->sivshm_port = IVSHMEM_PORT_ANY;
	addr->sivshm_peer = IVSHMEM_PEER_ANY;
	addr->sivshm_region = IVSHMEM_REGION_ANY;
}

static struct sock *ivshm_sk_alloc(struct net *net, struct socket *sock,
				   int type, int kern)
{
	struct ivshm_sock *vsk;
	struct sock *sk;

	sk = sk_alloc(net, family, GFP_KERNEL, &ivshm_proto, kern);
	if (!sk)
		return NULL;
	sock_init_data(sock, sk);
	sk->sk_type = type;
	sk->sk_destruct = ivshm_sk_destruct;
	vsk = ivshm_sk(sk);
	vsk->zombie = kzalloc(sizeof(*vsk->zombie), GFP_KERNEL);
	if (!vsk->zombie) {
		sk_free(sk);
		return NULL;
	}
	ivshm_init_addr(&vsk->local);
	ivshm_init_addr(&vsk->remote);
	INIT_LIST_HEAD(&vsk->dev_node);
	INIT_LIST_HEAD(&vsk->accept_queue);
	INIT_LIST_HEAD(&vsk->accept_node);
	vsk->owner_pid = task_tgid_nr(current);
	return sk;
}

/* Closes the connection and any unaccepted children.  Under lock_sock(). */
static void ivshm_close_locked(struct ivshm_sock *vsk)
{
	struct sock *sk = &vsk->sk;
	struct ivshm_sock *child, *tmp;

	if (sk->sk_state == TCP_LISTEN) {
		list_for_each_entry_safe(child, tmp, &vsk->accept_queue,
					 accept_node) {
			list_del_init(&child->accept_node);
			sk_acceptq_removed(sk);
			lock_sock_nested(&child->sk, SINGLE_DEPTH_NESTING);
			ivshm_disconnect(child, IVSHM_SEND_RESET);
			child->sk.sk_state = TCP_CLOSE;
			release_sock(&child->sk);
			sock_put(&child->sk);
		}
	}
	ivshm_disconnect(vsk, IVSHM_SEND_SHUTDOWN);
	sk->sk_state = TCP_CLOSE;
	sk->sk_shutdown = SHUTDOWN_MASK;
}

static int ivshm_release(struct socket *sock)
{
	struct sock *sk = sock->sk;

	if (!sk)
		return 0;
	lock_sock(sk);
	ivshm_close_locked(ivshm_sk(sk));
	ivshm_unbind(ivshm_sk(sk));
	sock_orphan(sk);
	release_sock(sk);
	sock_put(sk);
	sock->sk = NULL;
	sock->state = SS_FREE;
	return 0;
}

/* Validates a user address; returns it in @out. */
static int ivshm_check_addr(struct sockaddr *uaddr, int len,
			    struct sockaddr_ivshmem **out)
{
	struct sockaddr_ivshmem *addr = (struct sockaddr_ivshmem *)uaddr;

	if (len < (int)sizeof(*addr))
		return -EINVAL;
	if (addr->sivshm_family != family)
		return -EAFNOSUPPORT;
	if (addr->sivshm_reserved1 || addr->sivshm_flags)
		return -EINVAL;
	*out = addr;
	return 0;
}

static int ivshm_bind(struct socket *sock, struct sockaddr *uaddr, int len)
{
	struct sock *sk = sock->sk;
	struct ivshm_sock *vsk = ivshm_sk(sk);
	struct sockaddr_ivshmem *addr;
	struct ivshm_dev *dev;
	int err;

	err = ivshm_check_addr(uaddr, len, &addr);
	if (err)
		return err;

	lock_sock(sk);
	if (vsk->bound || sock->state != SS_UNCONNECTED) {
		err = -EINVAL;
		goto out;
	}
	/* The peer id, if given, must be ours on that region. */
	mutex_lock(&ivshm_devices_mutex);
	dev = ivshm_dev_get_by_index(addr->sivshm_region);
	if (addr->sivshm_region != IVSHMEM_REGION_ANY && !dev)
		err = -EADDRNOTAVAIL;
	else if (addr->sivshm_peer != IVSHMEM_PEER_ANY &&
		 (!dev || addr->sivshm_peer != dev->self))
		err = -EADDRNOTAVAIL;
	mutex_unlock(&ivshm_devices_mutex);
	if (err)
		goto out;
	err = ivshm_bind_port(vsk, addr->sivshm_port);
	if (!err) {
		vsk->local.sivshm_peer = addr->sivshm_peer;
		vsk->local.sivshm_region = addr->sivshm_region;
	}
out:
	release_sock(sk);
	return err;
}

/* SO_BUSY_POLL: how long a sender or receiver spins before sleeping. */
static u64 ivshm_busy_deadline(struct sock *sk)
{
#ifdef CONFIG_NET_RX_BUSY_POLL
	unsigned int usec = READ_ONCE(sk->sk_ll_usec);

	if (usec)
		return local_clock() + (u64)usec * NSEC_PER_USEC;
#endif
	return 0;
}

static bool ivshm_busy_continue(u64 deadline)
{
	return deadline && local_clock() < deadline && !need_resched() &&
	       !signal_pending(current);
}

/* Spins (SO_BUSY_POLL) until more than @seen bytes are readable or the
 * peer's state leaves @state.  Returns true if that happened.
 */
static bool ivshm_busy_rx(struct ivshm_sock *vsk, s64 seen, u32 state)
{
	u64 deadline = ivshm_busy_deadline(&vsk->sk);

	while (ivshm_busy_continue(deadline)) {
		if (ivshm_rx_avail(vsk) != seen ||
		    ivshm_rd32(&ivshm_rx_chan(vsk)->sender_state) != state)
			return true;
		cpu_relax();
	}
	return false;
}

/* Spins (SO_BUSY_POLL) until the tx ring has room. */
static bool ivshm_busy_tx(struct ivshm_sock *vsk)
{
	u64 deadline = ivshm_busy_deadline(&vsk->sk);

	while (ivshm_busy_continue(deadline)) {
		if (ivshm_tx_free(vsk))
			return true;
		cpu_relax();
	}
	return false;
}

/* Sleeps once on the socket (the caller added @wait and rechecked).
 * Returns 0 after a wakeup, -EAGAIN when the timeout is spent, or the
 * error for a pending signal.
 */
static int ivshm_wait(struct sock *sk, struct wait_queue_entry *wait,
		      long *timeo)
{
	if (!*timeo)
		return -EAGAIN;
	if (signal_pending(current))
		return sock_intr_errno(*timeo);
	release_sock(sk);
	*timeo = wait_woken(wait, TASK_INTERRUPTIBLE, *timeo);
	lock_sock(sk);
	return 0;
}

static int ivshm_connect(struct socket *sock, struct sockaddr *uaddr,
			 int len, int flags)
{
	DEFINE_WAIT_FUNC(wait, woken_wake_function);
	struct sock *sk = sock->sk;
	struct ivshm_sock *vsk = ivshm_sk(sk);
	struct sockaddr_ivshmem *addr;
	struct ivshm_channel *ch;
	struct ivshm_dev *dev;
	long timeo;
	int err;

	err = ivshm_check_addr(uaddr, len, &addr);
	if (err)
		return err;
	if (addr->sivshm_port == IVSHMEM_PORT_ANY ||
	    addr->sivshm_peer == IVSHMEM_PEER_ANY)
		return -EINVAL;

	lock_sock(sk);
	switch (sock->state) {
	case SS_CONNECTED:
		err = -EISCONN;
		goto out;
	case SS_CONNECTING:
		err = sk->sk_state == TCP_SYN_SENT ? -EALREADY : -EISCONN;
		if (sk->sk_state == TCP_SYN_SENT && !(flags & O_NONBLOCK))
			goto wait;
		goto out;
	default:
		break;
	}
	if (sk->sk_state == TCP_LISTEN) {
		err = -EINVAL;
		goto out;
	}

	/* A socket may connect again after a failed or reset connection. */
	if (!vsk->zombie) {
		vsk->zombie = kzalloc(sizeof(*vsk->zombie), GFP_KERNEL);
		if (!vsk->zombie) {
			err = -ENOMEM;
			goto out;
		}
	}
	sk->sk_err = 0;
	sk->sk_shutdown = 0;
	vsk->reset_err = 0;

	mutex_lock(&ivshm_devices_mutex);
	dev = ivshm_dev_get_by_index(addr->sivshm_region);
	if (!dev)
		err = -ENETUNREACH;
	else if (vsk->local.sivshm_region != IVSHMEM_REGION_ANY &&
		 vsk->local.sivshm_region != dev->index)
		err = -EINVAL;
	else if (!ivshm_peer_active(dev, addr->sivshm_peer, &vsk->peer_epoch) ||
		 !ivshm_peer_alive(dev, addr->sivshm_peer, vsk->peer_epoch))
		err = -EHOSTUNREACH;
	else if (!vsk->bound)
		err = ivshm_bind_port(vsk, IVSHMEM_PORT_ANY);
	if (!err)
		err = ivshm_attach_dev(vsk, dev);
	mutex_unlock(&ivshm_devices_mutex);
	if (err)
		goto out;

	err = ivshm_chan_alloc(dev, ivshm_channel_size, &vsk->tx);
	if (err) {
		ivshm_detach_dev(vsk);
		goto out;
	}
	vsk->peer = addr->sivshm_peer;
	vsk->local.sivshm_peer = dev->self;
	vsk->local.sivshm_region = dev->index;
	vsk->remote = *addr;
	vsk->remote.sivshm_region = dev->index;

	ch = ivshm_tx_chan(vsk);
	ivshm_wr16(&ch->receiver_vm, vsk->peer);
	ivshm_wr32(&ch->sender_pid, vsk->owner_pid);
	ivshm_wr32(&ch->src_port, vsk->local.sivshm_port);
	ivshm_wr32(&ch->dst_port, addr->sivshm_port);
	ivshm_wr16(&ch->sock_type, sk->sk_type);
	smp_wmb();	/* the request's fields before its state */
	ivshm_set_tx_state(vsk, IVSHM_SEND_CONNECTING);

	sk->sk_state = TCP_SYN_SENT;
	sock->state = SS_CONNECTING;
	vsk->connect_deadline = jiffies + msecs_to_jiffies(connect_timeout_ms);
	ivshm_ring_doorbell(dev, vsk->peer);

	if (flags & O_NONBLOCK) {
		err = -EINPROGRESS;
		goto out;
	}
wait:
	timeo = vsk->connect_deadline - jiffies;
	add_wait_queue(sk_sleep(sk), &wait);
	while (sk->sk_state == TCP_SYN_SENT) {
		ivshm_connect_check(vsk);
		if (sk->sk_state != TCP_SYN_SENT)
			break;
		if ((long)timeo <= 0) {
			ivshm_connect_fail(vsk, ETIMEDOUT);
			break;
		}
		if (signal_pending(current)) {
			err = sock_intr_errno(timeo);
			ivshm_connect_fail(vsk, EINTR);
			sk->sk_err = 0;
			remove_wait_queue(sk_sleep(sk), &wait);
			goto out;
		}
		release_sock(sk);
		timeo = wait_woken(&wait, TASK_INTERRUPTIBLE, timeo);
		lock_sock(sk);
	}
	remove_wait_queue(sk_sleep(sk), &wait);
	err = sk->sk_state == TCP_ESTABLISHED ? 0 : sock_error(sk);
	if (!err && sk->sk_state != TCP_ESTABLISHED)
		err = -ECONNRESET;
out:
	release_sock(sk);
	return err;
}

static int ivshm_listen(struct socket *sock, int backlog)
{
	struct sock *sk = sock->sk;
	struct ivshm_sock *vsk = ivshm_sk(sk);
	int err = 0;

	lock_sock(sk);
	if (sock->state != SS_UNCONNECTED ||
	    (sk->sk_state != TCP_CLOSE && sk->sk_state != TCP_LISTEN)) {
		err = -EINVAL;
		goto out;
	}
	if (!vsk->bound)
		err = ivshm_bind_port(vsk, IVSHMEM_PORT_ANY);
	if (err)
		goto out;
	sk->sk_max_ack_backlog = backlog;
	sk->sk_state = TCP_LISTEN;
out:
	release_sock(sk);
	return err;
}

static int ivshm_accept(struct socket *sock, struct socket *newsock,
			int flags, bool kern)
{
	DEFINE_WAIT_FUNC(wait, woken_wake_function);
	struct sock *sk = sock->sk;
	struct ivshm_sock *vsk = ivshm_sk(sk);
	struct ivshm_sock *child;
	long timeo;
	int err = 0;

	lock_sock(sk);
	if (sk->sk_state != TCP_LISTEN) {
		err = -EINVAL;
		goto out;
	}
	timeo = sock_rcvtimeo(sk, flags & O_NONBLOCK);
	add_wait_queue(sk_sleep(sk), &wait);
	while (list_empty(&vsk->accept_queue) && sk->sk_state == TCP_LISTEN) {
		err = ivshm_wait(sk, &wait, &timeo);
		if (err)
			break;
	}
	remove_wait_queue(sk_sleep(sk), &wait);
	if (err)
		goto out;
	if (sk->sk_state != TCP_LISTEN) {
		err = -EINVAL;
		goto out;
	}
	child = list_first_entry(&vsk->accept_queue, struct ivshm_sock,
				 accept_node);
	list_del_init(&child->accept_node);
	sk_acceptq_removed(sk);

	lock_sock_nested(&child->sk, SINGLE_DEPTH_NESTING);
	sock_graft(&child->sk, newsock);
	newsock->state = child->sk.sk_state == TCP_ESTABLISHED ?
			 SS_CONNECTED : SS_UNCONNECTED;
	release_sock(&child->sk);
out:
	release_sock(sk);
	return err;
}

/* Publishes our answer to the request in channel @req. */
static void ivshm_publish_answer(struct ivshm_dev *dev,
				 struct ivshm_channel *req, u32 sender,
				 u32 answer, u32 reply_index, u32 reply_gen)
{
	ivshm_wr32(&req->reply_channel, reply_index);
	ivshm_wr32(&req->reply_generation, reply_gen);
	smp_wmb();	/* the reply before the state */
	ivshm_wr32(&req->receiver_state, answer);
	ivshm_ring_doorbell(dev, sender);
}

/* Tries to accept the connection request in channel @index: a listener,
 * room in its backlog, a reply channel.  On success the answer is
 * published before the child can be accepted (and so closed).  Runs in
 * the event work.  Returns false if the caller must refuse.
 */
static bool ivshm_answer_request(struct ivshm_dev *dev, u32 index, u32 gen,
				 struct ivshm_channel *req, u32 sender)
{
	u32 src_port = ivshm_rd32(&req->src_port);
	u32 dst_port = ivshm_rd32(&req->dst_port);
	u32 off = ivshm_rd32(&req->buff_offset);
	u32 size = ivshm_rd32(&req->buff_size);
	u32 type = ivshm_rd16(&req->sock_type);
	struct ivshm_sock *child;
	struct ivshm_channel *ch;
	struct sock *listener, *sk;
	u64 epoch;

	if (!ivshm_peer_active(dev, sender, &epoch) ||
	    !ivshm_peer_alive(dev, sender, epoch) ||
	    !ivshm_chan_geometry(dev, off, size) ||
	    src_port == IVSHMEM_PORT_ANY) {
		ivshm_note_bad(dev, "connection request", index);
		return false;
	}
	listener = ivshm_find_listener(dst_port, dev->index);
	if (!listener)
		return false;

	lock_sock(listener);
	if (listener->sk_state != TCP_LISTEN || listener->sk_type != type ||
	    sk_acceptq_is_full(listener))
		goto refuse;
	sk = ivshm_sk_alloc(sock_net(listener), NULL, listener->sk_type, 0);
	if (!sk)
		goto refuse;
	/* Device removal may find the child on the device's list: it waits
	 * for this lock, and so only ever sees a complete child.
	 */
	lock_sock_nested(sk, SINGLE_DEPTH_NESTING);
	child = ivshm_sk(sk);
	child->owner_pid = ivshm_sk(listener)->owner_pid;
	child->peer = sender;
	child->peer_epoch = epoch;
	child->local.sivshm_port = dst_port;
	child->local.sivshm_peer = dev->self;
	child->local.sivshm_region = dev->index;
	child->remote.sivshm_port = src_port;
	child->remote.sivshm_peer = sender;
	child->remote.sivshm_region = dev->index;
	child->rx.index = index;
	child->rx.generation = gen;
	child->rx.offset = off;
	child->rx.size = size;

	if (ivshm_attach_dev(child, dev))
		goto free_child;
	if (ivshm_chan_alloc(dev, ivshm_channel_size, &child->tx)) {
		ivshm_detach_dev(child);
		goto free_child;
	}
	ch = ivshm_tx_chan(child);
	ivshm_wr16(&ch->receiver_vm, sender);
	ivshm_wr32(&ch->sender_pid, child->owner_pid);
	ivshm_wr32(&ch->src_port, dst_port);
	ivshm_wr32(&ch->dst_port, src_port);
	ivshm_wr16(&ch->sock_type, type);
	ivshm_wr32(&ch->peer_channel, index);
	ivshm_wr32(&ch->peer_generation, gen);
	smp_wmb();	/* reply fields before sender_state */
	ivshm_set_tx_state(child, IVSHM_SEND_OPEN);
	ivshm_set_established(child);
	ivshm_publish_answer(dev, req, sender, IVSHM_RECV_ACCEPTED,
			     child->tx.index, child->tx.generation);

	list_add_tail(&child->accept_node, &ivshm_sk(listener)->accept_queue);
	sk_acceptq_added(listener);
	release_sock(sk);
	listener->sk_data_ready(listener);
	release_sock(listener);
	sock_put(listener);
	return true;

free_child:
	release_sock(sk);
	sock_put(sk);
refuse:
	release_sock(listener);
	sock_put(listener);
	return false;
}

/* Finds connection requests addressed to us and answers each once.
 * Returns true if there was one.
 */
static bool ivshm_handle_requests(struct ivshm_dev *dev)
{
	bool found = false;
	u32 i;

	for (i = 0; i < IVSHM_MAX_CHANNELS; i++) {
		struct ivshm_channel *ch = ivshm_chan(dev, i);
		u32 gen, sstate, sender;

		if (ivshm_rd32(&ch->alloc_state) != IVSHM_CHAN_ALLOCATED ||
		    ivshm_rd16(&ch->receiver_vm) != dev->self)
			continue;
		sstate = ivshm_rd32(&ch->sender_state);
		if (sstate != IVSHM_SEND_CONNECTING &&
		    sstate != IVSHM_SEND_RESET)
			continue;
		gen = ivshm_rd32(&ch->generation);
		if (dev->answered_gen[i] == gen)
			continue;
		smp_rmb();	/* state before the request's fields */
		/* Only requests: reply channels name the request they answer. */
		if (ivshm_rd32(&ch->peer_generation))
			continue;
		dev->answered_gen[i] = gen;
		found = true;
		sender = ivshm_rd16(&ch->sender_vm);
		if (sender >= IVSHM_MAX_PEERS) {
			ivshm_note_bad(dev, "request sender", i);
			continue;
		}
		if (sstate == IVSHM_SEND_RESET) {
			/* Given up before we saw it: just let it go. */
			ivshm_publish_answer(dev, ch, sender,
					     IVSHM_RECV_RELEASED, 0, 0);
			continue;
		}
		if (!ivshm_answer_request(dev, i, gen, ch, sender)) {
			atomic64_inc(&dev->stats.connects_refused);
			ivshm_publish_answer(dev, ch, sender,
					     IVSHM_RECV_REFUSED, 0, 0);
		}
	}
	return found;
}

/* Wakes @vsk's waiters for whatever changed since the last look. */
static bool ivshm_wake_changes(struct ivshm_dev *dev, struct ivshm_sock *vsk)
{
	struct ivshm_channel *rx = ivshm_chan(dev, vsk->rx.index);
	struct ivshm_channel *tx = ivshm_chan(dev, vsk->tx.index);
	struct sock *sk = &vsk->sk;
	bool changed = false;
	u64 head, tail;
	u32 state;

	state = ivshm_rd32(&rx->sender_state) |
		ivshm_rd32(&tx->receiver_state) << 8 |
		ivshm_rd32(&rx->generation) << 16;
	head = ivshm_rd64(&rx->head);
	tail = ivshm_rd64(&tx->tail);
	if (state != vsk->seen_state) {
		vsk->seen_state = state;
		sk->sk_state_change(sk);
		changed = true;
	}
	if (head != vsk->seen_head) {
		vsk->seen_head = head;
		sk->sk_data_ready(sk);
		changed = true;
	}
	if (tail != vsk->seen_tail) {
		vsk->seen_tail = tail;
		sk->sk_write_space(sk);
		changed = true;
	}
	return changed;
}

/**
 * ivshm_dev_events() - process everything that may have changed
 * @dev: the device
 *
 * Run by the device's event work after a doorbell, on every poll tick and
 * once a second for housekeeping.  Answers connection requests, completes
 * or times out pending connects, wakes sockets whose channels moved, and
 * frees released channels.
 *
 * Return: true if anything happened (the poller then stays fast).
 */
bool ivshm_dev_events(struct ivshm_dev *dev)
{
	struct ivshm_sock *vsk, *tmp;
	bool active;
	LIST_HEAD(scan);

	active = ivshm_handle_requests(dev);

	spin_lock_bh(&dev->socks_lock);
	list_for_each_entry(vsk, &dev->socks, dev_node) {
		sock_hold(&vsk->sk);
		list_add_tail(&vsk->scan_node, &scan);
	}
	spin_unlock_bh(&dev->socks_lock);

	list_for_each_entry_safe(vsk, tmp, &scan, scan_node) {
		struct sock *sk = &vsk->sk;

		list_del(&vsk->scan_node);
		if (!ivshm_peer_alive(dev, vsk->peer, vsk->peer_epoch) ||
		    (READ_ONCE(sk->sk_state) == TCP_ESTABLISHED &&
		     ivshm_rd32(&ivshm_chan(dev, vsk->rx.index)->sender_state) ==
		     IVSHM_SEND_RESET)) {
			/* The peer died, left, was replaced or reset us: act
			 * now, so that a socket nobody reads (a child not yet
			 * accepted) lets go of the peer's channels too.
			 */
			lock_sock(sk);
			if (vsk->dev == dev && sk->sk_state == TCP_SYN_SENT)
				ivshm_connect_fail(vsk, EHOSTUNREACH);
			else if (vsk->dev == dev &&
				 sk->sk_state == TCP_ESTABLISHED)
				ivshm_reset(vsk, ECONNRESET);
			release_sock(sk);
		} else if (READ_ONCE(sk->sk_state) == TCP_SYN_SENT) {
			lock_sock(sk);
			if (sk->sk_state == TCP_SYN_SENT && vsk->dev == dev)
				ivshm_connect_check(vsk);
			release_sock(sk);
		} else if (READ_ONCE(sk->sk_state) == TCP_ESTABLISHED &&
			   READ_ONCE(vsk->dev) == dev) {
			/* Racing with a close only costs a stale wakeup: the
			 * channels stay mapped until the device goes away.
			 */
			active |= ivshm_wake_changes(dev, vsk);
		}
		sock_put(sk);
	}

	ivshm_reclaim_dead_peers(dev);
	ivshm_zombies_reap(dev, false);
	return active;
}

/* The device is going away: fail every socket on it with ENETDOWN. */
void ivshm_dev_detach_socks(struct ivshm_dev *dev)
{
	struct ivshm_sock *vsk;

	for (;;) {
		spin_lock_bh(&dev->socks_lock);
		vsk = list_first_entry_or_null(&dev->socks, struct ivshm_sock,
					       dev_node);
		if (vsk)
			sock_hold(&vsk->sk);
		spin_unlock_bh(&dev->socks_lock);
		if (!vsk)
			break;
		lock_sock(&vsk->sk);
		if (vsk->dev == dev)
			ivshm_reset(vsk, ENETDOWN);
		release_sock(&vsk->sk);
		sock_put(&vsk->sk);
	}
}

/* ---- data path ---- */

static int ivshm_stream_sendmsg(struct socket *sock, struct msghdr *msg,
				size_t len)
{
	DEFINE_WAIT_FUNC(wait, woken_wake_function);
	struct sock *sk = sock->sk;
	struct ivshm_sock *vsk = ivshm_sk(sk);
	struct ivshm_channel *ch;
	size_t sent = 0;
	long timeo;
	s64 space, free;
	int err = 0;

	if (msg->msg_flags & MSG_OOB)
		return -EOPNOTSUPP;

	lock_sock(sk);
	timeo = sock_sndtimeo(sk, msg->msg_flags & MSG_DONTWAIT);
	add_wait_queue(sk_sleep(sk), &wait);
	while (sent < len) {
		if (vsk->reset_err) {
			err = -vsk->reset_err;
			break;
		}
		if (sk->sk_err) {
			err = sock_error(sk);
			break;
		}
		if (sk->sk_shutdown & SEND_SHUTDOWN) {
			err = -EPIPE;
			break;
		}
		if (sk->sk_state != TCP_ESTABLISHED || !vsk->dev) {
			err = -ENOTCONN;
			break;
		}
		space = ivshm_tx_free(vsk);
		if (space == -ECONNRESET) {
			ivshm_reset(vsk, ECONNRESET);
			err = -ECONNRESET;
			break;
		}
		if (space < 0) {
			err = space;
			break;
		}
		if (!space) {
			if (timeo && ivshm_busy_tx(vsk))
				continue;
			ivshm_want_space(vsk, true);
			if (ivshm_tx_free(vsk))
				continue;
			err = ivshm_wait(sk, &wait, &timeo);
			if (err)
				break;
			continue;
		}
		ch = ivshm_tx_chan(vsk);
		if (vsk->want_space)
			ivshm_want_space(vsk, false);
		free = space;
		space = min_t(size_t, space, len - sent);
		err = ivshm_ring_write(vsk, &msg->msg_iter, space);
		if (err)
			break;
		smp_wmb();	/* data before head */
		vsk->tx.pos += space;
		ivshm_wr64(&ch->head, vsk->tx.pos);
		ivshm_wr32(&ch->head_touch, ++vsk->tx_touch);
		ivshm_wr32(&ch->data_size, vsk->tx.size - free + space);
		sent += space;
		smp_mb();	/* head before the receiver's wait flag */
		if (ivshm_rd32(&ch->recv_waiting))
			ivshm_ring_doorbell(vsk->dev, vsk->peer);
		else
			atomic64_inc(&vsk->dev->stats.doorbells_suppressed);
	}
	remove_wait_queue(sk_sleep(sk), &wait);
	if (vsk->dev && sk->sk_state == TCP_ESTABLISHED &&
	    ivshm_tx_free(vsk) == 0)
		ivshm_want_space(vsk, true);	/* so poll() users get woken */
	release_sock(sk);

	if (err == -EPIPE && !(msg->msg_flags & MSG_NOSIGNAL) && !sent)
		send_sig(SIGPIPE, current, 0);
	return sent ? sent : err;
}

static int ivshm_stream_recvmsg(struct socket *sock, struct msghdr *msg,
				size_t len, int flags)
{
	DEFINE_WAIT_FUNC(wait, woken_wake_function);
	struct sock *sk = sock->sk;
	struct ivshm_sock *vsk = ivshm_sk(sk);
	bool peek = flags & MSG_PEEK;
	struct ivshm_channel *ch;
	size_t copied = 0, target;
	long timeo;
	s64 avail;
	u32 state;
	int err = 0;

	if (flags & MSG_OOB)
		return -EOPNOTSUPP;

	lock_sock(sk);
	if (sk->sk_state != TCP_ESTABLISHED) {
		if (vsk->reset_err)
			err = -vsk->reset_err;
		else if (sk->sk_err)
			err = sock_error(sk);
		else if (sk->sk_state != TCP_CLOSE ||
			 !(sk->sk_shutdown & RCV_SHUTDOWN))
			err = -ENOTCONN;
		goto out;
	}
	target = sock_rcvlowat(sk, flags & MSG_WAITALL, len);
	timeo = sock_rcvtimeo(sk, flags & MSG_DONTWAIT);
	add_wait_queue(sk_sleep(sk), &wait);
	while (copied < len) {
		if (vsk->reset_err || sk->sk_err) {
			if (!copied)
				err = vsk->reset_err ? -vsk->reset_err :
				      sock_error(sk);
			break;
		}
		if (!vsk->dev)
			break;
		state = ivshm_rx_state(vsk);
		avail = ivshm_rx_avail(vsk);
		if (avail < 0 || state == IVSHM_SEND_RESET) {
			ivshm_reset(vsk, ECONNRESET);
			if (!copied)
				err = -ECONNRESET;
			break;
		}
		if (peek)
			avail -= copied;
		if (avail > 0) {
			size_t n = min_t(size_t, avail, len - copied);

			ch = ivshm_rx_chan(vsk);
			if (vsk->want_data)
				ivshm_want_data(vsk, false);
			err = ivshm_ring_read(vsk, vsk->rx.pos +
					      (peek ? copied : 0),
					      &msg->msg_iter, n);
			if (err) {
				if (copied)
					err = 0;
				break;
			}
			copied += n;
			if (!peek) {
				smp_mb();	/* data read before tail */
				vsk->rx.pos += n;
				ivshm_wr64(&ch->tail, vsk->rx.pos);
				smp_mb();	/* tail before the wait flag */
				if (ivshm_rd16(&ch->send_waiting))
					ivshm_ring_doorbell(vsk->dev, vsk->peer);
			}
			if (copied >= target)
				break;
			continue;
		}
		if (state == IVSHM_SEND_SHUTDOWN || copied >= target ||
		    (sk->sk_shutdown & RCV_SHUTDOWN))
			break;
		if (timeo && ivshm_busy_rx(vsk, peek ? copied : 0, state))
			continue;
		/* State changes always ring: only data needs the recheck. */
		ivshm_want_data(vsk, true);
		if (ivshm_rx_avail(vsk) > (peek ? (s64)copied : 0))
			continue;
		err = ivshm_wait(sk, &wait, &timeo);
		if (err) {
			if (copied)
				err = 0;
			break;
		}
	}
	remove_wait_queue(sk_sleep(sk), &wait);
	/* Not reading any more: new data must ring (poll, epoll users). */
	if (vsk->dev && sk->sk_state == TCP_ESTABLISHED)
		ivshm_want_data(vsk, true);
out:
	release_sock(sk);
	return copied ? copied : err;
}

/* poll() for a connected socket.  Under lock_sock(). */
static __poll_t ivshm_poll_channels(struct ivshm_sock *vsk)
{
	struct sock *sk = &vsk->sk;
	bool asked = false;
	__poll_t mask = 0;

	/* Readable: data, EOF or a reset.  Else ask for a doorbell, once. */
	for (;;) {
		u32 rstate = ivshm_rx_state(vsk);
		s64 avail = ivshm_rx_avail(vsk);

		if (avail < 0 || rstate == IVSHM_SEND_RESET)
			return EPOLLERR | EPOLLHUP | EPOLLIN | EPOLLRDNORM |
			       EPOLLRDHUP | EPOLLOUT | EPOLLWRNORM;
		if (rstate == IVSHM_SEND_SHUTDOWN) {
			mask |= EPOLLIN | EPOLLRDNORM | EPOLLRDHUP;
			if (sk->sk_shutdown & SEND_SHUTDOWN)
				mask |= EPOLLHUP;
		}
		if (avail > 0)
			mask |= EPOLLIN | EPOLLRDNORM;
		if ((mask & EPOLLIN) || asked)
			break;
		ivshm_want_data(vsk, true);
		asked = true;
	}
	/* Writable: room in the ring, or a write would fail at once. */
	if (sk->sk_shutdown & SEND_SHUTDOWN) {
		mask |= EPOLLOUT | EPOLLWRNORM;
	} else {
		asked = false;
		for (;;) {
			if (ivshm_tx_free(vsk)) {
				mask |= EPOLLOUT | EPOLLWRNORM;
				break;
			}
			if (asked)
				break;
			ivshm_want_space(vsk, true);
			asked = true;
		}
	}
	return mask;
}

static __poll_t ivshm_poll(struct file *file, struct socket *sock,
			   poll_table *wait)
{
	struct sock *sk = sock->sk;
	struct ivshm_sock *vsk = ivshm_sk(sk);
	__poll_t mask = 0;
	u8 state;

	sock_poll_wait(file, sock, wait);
	state = READ_ONCE(sk->sk_state);

	if (sk->sk_err || READ_ONCE(vsk->reset_err))
		mask |= EPOLLERR;
	if (sk->sk_shutdown == SHUTDOWN_MASK || state == TCP_CLOSE)
		mask |= EPOLLHUP;
	if (sk->sk_shutdown & RCV_SHUTDOWN)
		mask |= EPOLLIN | EPOLLRDNORM | EPOLLRDHUP;

	if (state == TCP_LISTEN) {
		if (READ_ONCE(sk->sk_ack_backlog))
			mask |= EPOLLIN | EPOLLRDNORM;
		return mask;
	}
	if (state == TCP_CLOSE)
		return mask | EPOLLOUT | EPOLLWRNORM;
	if (state != TCP_ESTABLISHED)
		return mask;

	/* The channels are only stable under the socket lock. */
	lock_sock(sk);
	if (sk->sk_state == TCP_ESTABLISHED && vsk->dev)
		mask |= ivshm_poll_channels(vsk);
	release_sock(sk);
	return mask;
}

static int ivshm_shutdown(struct socket *sock, int how)
{
	struct sock *sk = sock->sk;
	struct ivshm_sock *vsk = ivshm_sk(sk);
	int mode, err = 0;

	/* SHUT_RD (0), SHUT_WR (1), SHUT_RDWR (2) to RCV/SEND_SHUTDOWN */
	if (how < SHUT_RD || how > SHUT_RDWR)
		return -EINVAL;
	mode = how + 1;

	lock_sock(sk);
	if (sk->sk_state != TCP_ESTABLISHED) {
		err = -ENOTCONN;
		goto out;
	}
	sk->sk_shutdown |= mode;
	if ((mode & SEND_SHUTDOWN) && vsk->dev) {
		if (vsk->tx_state == IVSHM_SEND_OPEN) {
			smp_wmb();	/* data (head) before EOF */
			ivshm_set_tx_state(vsk, IVSHM_SEND_SHUTDOWN);
			ivshm_ring_doorbell(vsk->dev, vsk->peer);
		}
	}
	sk->sk_state_change(sk);
out:
	release_sock(sk);
	return err;
}

static int ivshm_getname(struct socket *sock, struct sockaddr *uaddr,
			 int peer)
{
	struct sock *sk = sock->sk;
	struct ivshm_sock *vsk = ivshm_sk(sk);
	struct sockaddr_ivshmem *addr = (struct sockaddr_ivshmem *)uaddr;
	int err = sizeof(*addr);

	lock_sock(sk);
	if (peer) {
		if (sock->state != SS_CONNECTED)
			err = -ENOTCONN;
		else
			*addr = vsk->remote;
	} else {
		*addr = vsk->local;
	}
	release_sock(sk);
	return err;
}

static int ivshm_local_peer(struct ivshm_sock *vsk, u32 *peer)
{
	struct ivshm_dev *dev;
	int err = 0;

	mutex_lock(&ivshm_devices_mutex);
	dev = ivshm_dev_get_by_index(vsk->local.sivshm_region);
	if (dev)
		*peer = dev->self;
	else
		err = -ENODEV;
	mutex_unlock(&ivshm_devices_mutex);
	return err;
}

static int ivshm_ioctl(struct socket *sock, unsigned int cmd,
		       unsigned long arg)
{
	struct sock *sk = sock->sk;
	struct ivshm_sock *vsk = ivshm_sk(sk);
	int __user *uarg = (int __user *)arg;
	s64 n = 0;
	u32 peer;
	int err;

	switch (cmd) {
	case IOCTL_IVSHMEM_GET_LOCAL_PEER:
		err = ivshm_local_peer(vsk, &peer);
		return err ? err : put_user(peer, (u32 __user *)arg);
	case SIOCINQ:
	case SIOCOUTQ:
		lock_sock(sk);
		if (sk->sk_state == TCP_LISTEN) {
			release_sock(sk);
			return -EINVAL;
		}
		if (sk->sk_state == TCP_ESTABLISHED && vsk->dev) {
			n = cmd == SIOCINQ ? ivshm_rx_avail(vsk) :
			    ivshm_tx_free(vsk);
			if (n < 0)
				n = 0;
			else if (cmd == SIOCOUTQ)
				n = vsk->tx.size - n;
		}
		release_sock(sk);
		return put_user((int)n, uarg);
	default:
		return -ENOIOCTLCMD;
	}
}

static int ivshm_setsockopt(struct socket *sock, int level, int optname,
			    sockptr_t optval, unsigned int optlen)
{
	return -ENOPROTOOPT;
}

static int ivshm_getsockopt(struct socket *sock, int level, int optname,
			    char __user *optval, int __user *optlen)
{
	return -ENOPROTOOPT;
}

static const struct proto_ops ivshm_stream_ops_template = {
	.owner = THIS_MODULE,
	.release = ivshm_release,
	.bind = ivshm_bind,
	.connect = ivshm_connect,
	.socketpair = sock_no_socketpair,
	.accept = ivshm_accept,
	.getname = ivshm_getname,
	.poll = ivshm_poll,
	.ioctl = ivshm_ioctl,
	.listen = ivshm_listen,
	.shutdown = ivshm_shutdown,
	.setsockopt = ivshm_setsockopt,
	.getsockopt = ivshm_getsockopt,
	.sendmsg = ivshm_stream_sendmsg,
	.recvmsg = ivshm_stream_recvmsg,
	.mmap = sock_no_mmap,
	.sendpage = sock_no_sendpage,
};

static int ivshm_create(struct net *net, struct socket *sock, int protocol,
			int kern)
{
	if (!net_eq(net, &init_net))
		return -EAFNOSUPPORT;
	if (protocol && protocol != family)
		return -EPROTONOSUPPORT;
	switch (sock->type) {
	case SOCK_STREAM:
		sock->ops = ivshm_stream_ops;
		break;
	default:
		return -ESOCKTNOSUPPORT;
	}
	sock->state = SS_UNCONNECTED;
	if (!ivshm_sk_alloc(net, sock, sock->type, kern))
		return -ENOMEM;
	return 0;
}

static struct net_proto_family ivshm_family_ops = {
	.create = ivshm_create,
	.owner = THIS_MODULE,
};

int ivshm_sock_init(void)
{
	void *ops;
	int err;

	if (family <= 0 || family >= AF_MAX) {
		pr_err("af_ivshmem: family %d out of range 1..%d\n", family,
		       AF_MAX - 1);
		return -EINVAL;
	}
	if (ivshm_channel_size < IVSHM_BLOCK_SIZE ||
	    !IS_ALIGNED(ivshm_channel_size, IVSHM_BLOCK_SIZE)) {
		pr_err("af_ivshmem: channel_size must be a multiple of %u\n",
		       IVSHM_BLOCK_SIZE);
		return -EINVAL;
	}
	/* A writable copy of the const template, given the run-time family. */
	ops = kmemdup(&ivshm_stream_ops_template,
		      sizeof(ivshm_stream_ops_template), GFP_KERNEL);
	if (!ops)
		return -ENOMEM;
	*(int *)(ops + offsetof(typeof(ivshm_stream_ops_template), family)) =
		family;
	ivshm_stream_ops = ops;
	ivshm_family_ops.family = family;
	err = proto_register(&ivshm_proto, 0);
	if (err)
		goto free_ops;
	err = sock_register(&ivshm_family_ops);
	if (err) {
		pr_err("af_ivshmem: family %d is taken (%d); load with family=N\n",
		       family, err);
		proto_unregister(&ivshm_proto);
		goto free_ops;
	}
	return 0;
free_ops:
	kfree(ivshm_stream_ops);
	return err;
}

void ivshm_sock_exit(void)
{
	sock_unregister(family);
	proto_unregister(&ivshm_proto);
	kfree(ivshm_stream_ops);
}
