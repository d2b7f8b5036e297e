// SPDX-License-Identifier: GPL-2.0
/* AF_IVSHMEM socket layer: SOCK_STREAM sockets whose two directions are
 * channels (rings) in an IVSHMEM region.
 *
 * Locking: a socket's channels are only touched under lock_sock(), apart
 * from poll(), which reads them and sets the wait flags.  The bind table is
 * under ivshm_bind_lock; a device's socket list under its socks_lock; the
 * list of every socket (for sock_diag) under ivshm_all_lock.  The
 * per-device event work (pci.c) answers connection requests and wakes
 * sockets whose channels changed.
 */
#include <crypto/algapi.h>
#include <linux/cred.h>
#include <linux/delay.h>
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
#include <uapi/linux/ivshmem_diag.h>

#include "af_ivshmem.h"
#include "secure.h"

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

/* Rebalancing: see Documentation/networking/af_ivshmem.rst, "Rebalancing". */
unsigned int ivshm_rebalance_interval_ms = 1000;
unsigned int ivshm_rebalance_doorbells = 100;
static unsigned int channel_min_size = 16 * 1024;
static unsigned int channel_max_size;
static unsigned int idle_shrink_ms = 2000;

/* A new interval applies at once: every rebalancer runs and re-arms. */
static int ivshm_set_interval(const char *val, const struct kernel_param *kp)
{
	int err = param_set_uint(val, kp);

	if (!err)
		ivshm_rebalance_kick_all();
	return err;
}

static const struct kernel_param_ops ivshm_interval_ops = {
	.set = ivshm_set_interval,
	.get = param_get_uint,
};

module_param_cb(rebalance_interval_ms, &ivshm_interval_ops,
		&ivshm_rebalance_interval_ms, 0644);
MODULE_PARM_DESC(rebalance_interval_ms, "rebalancer timer period (0: no timer)");
module_param_named(rebalance_doorbells, ivshm_rebalance_doorbells, uint, 0644);
MODULE_PARM_DESC(rebalance_doorbells, "run the rebalancer every this many doorbells, or busy polls (0: never)");
module_param(channel_min_size, uint, 0644);
MODULE_PARM_DESC(channel_min_size, "size idle channels shrink to, and the smallest channel a connection gets (rounded up to 4096)");
module_param(channel_max_size, uint, 0644);
MODULE_PARM_DESC(channel_max_size, "largest size a channel grows to (0: only the fair share limits it)");
module_param(idle_shrink_ms, uint, 0644);
MODULE_PARM_DESC(idle_shrink_ms, "a channel with no traffic this long shrinks to channel_min_size");

/* Security: see "Encryption and key exchange" in af_ivshmem.rst. */
static const char * const ivshm_policy_names[] = {
	[IVSHMEM_SECURITY_OFF] = "off",
	[IVSHMEM_SECURITY_PREFER] = "prefer",
	[IVSHMEM_SECURITY_REQUIRE] = "require",
};

static int security = IVSHMEM_SECURITY_PREFER;

static int ivshm_set_security(const char *val, const struct kernel_param *kp)
{
	int i = sysfs_match_string(ivshm_policy_names, val);

	if (i < 0)
		return i;
	WRITE_ONCE(security, i);
	return 0;
}

static int ivshm_get_security(char *buf, const struct kernel_param *kp)
{
	return sysfs_emit(buf, "%s\n", ivshm_policy_names[READ_ONCE(security)]);
}

static const struct kernel_param_ops ivshm_security_ops = {
	.set = ivshm_set_security,
	.get = ivshm_get_security,
};

module_param_cb(security, &ivshm_security_ops, NULL, 0644);
MODULE_PARM_DESC(security, "default connection security: off, prefer (protected when a key for the peer is loaded, and then required) or require");

static int test_claim_peer = -1;
module_param(test_claim_peer, int, 0644);
MODULE_PARM_DESC(test_claim_peer, "TEST ONLY: connection requests claim to come from this peer id (-1: our own)");

static bool test_forget_reply;
module_param(test_forget_reply, bool, 0644);
MODULE_PARM_DESC(test_forget_reply, "TEST ONLY: a connect whose request is accepted frees the request, never taking or releasing the reply, and fails with ECONNABORTED");

static uint test_connect_stall_ms;
module_param(test_connect_stall_ms, uint, 0644);
MODULE_PARM_DESC(test_connect_stall_ms, "TEST ONLY: a connect waits this long once its socket is on the device, before it allocates its channel (as a busy control lock makes it)");

/* The kernel's crypto modules, for modprobe (insmod users load them). */
MODULE_SOFTDEP("pre: gcm ghash-generic ctr");

/* channel_min_size in whole blocks, at least one. */
static u32 ivshm_min_channel(void)
{
	u32 min = READ_ONCE(channel_min_size);

	return clamp_t(u32, round_up(min, IVSHM_BLOCK_SIZE), IVSHM_BLOCK_SIZE,
		       SZ_1G);
}

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
 * @sleep_node: entry in @dev's sleepers while tasks are blocked in recv()
 *	or send() in doorbell mode (see ivshm_wake_sleepers()); this and the
 *	next four under @dev->sleepers_lock
 * @rx_sleepers: tasks blocked in recv() on it, or 0 once woken
 * @tx_sleepers: tasks blocked in send() on it, or 0 once woken
 * @sleep_head: the rx head at which recv() has nothing new
 * @sleep_tail: the tx tail a blocked send() saw
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
 * @peer_pid: the sender_pid the peer published on our rx channel
 * @tx_msg_open: SOCK_SEQPACKET: a message was cut short after some of its
 *	records went out; an ABORT record must come before anything else
 * @rx_discard: SOCK_SEQPACKET: the rest of the current message is dropped
 *	(it did not fit the buffer of the recv() that returned MSG_TRUNC)
 * @connect_timeout_ms: IVSHMEM_CONNECT_TIMEOUT_MS
 * @dgram_connected: SOCK_DGRAM: @remote is the default destination and
 *	the only source accepted (written under ivshm_bind_lock too)
 * @all_node: entry in ivshm_all_socks, from allocation to destruction
 * @diag_pos: the socket's place in ivshm_all_socks (see ivshm_diag_next())
 * @rebal_node: used by the rebalancer's snapshot of the socket list
 * @resize: a resize of @tx decided by the rebalancer, waiting for the
 *	ring to empty (see "Channel resizing" in af_ivshmem.rst)
 * @tx_need: the bytes a sender waits for now, 0 when none waits
 * @tx_full: times a sender found @tx full since the last rebalance
 * @rebal_pos: @tx.pos at the last rebalance
 * @tx_active: jiffies when the rebalancer last saw @tx.pos move
 * @move_gen: the region's alloc_generation after the last move of @tx
 *	compaction tried (it tries again once the table changed)
 * @sec_policy: IVSHMEM_SECURITY
 * @sec: the session of a protected connection, else NULL
 * @sec_wanted: connector: this connection is to be protected
 * @sec_key: connector, while connecting protected: the pairwise key
 * @sec_nonce: connector, while connecting protected: our nonce
 * @sec_listener: acceptor, while the connector's proof has not come
 *	(TCP_SYN_RECV, on the listener's @sec_pending): the listener, held
 * @sec_pending: listener: children whose handshake is not done
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
	struct list_head sleep_node;
	unsigned int rx_sleepers;
	unsigned int tx_sleepers;
	u64 sleep_head;
	u64 sleep_tail;
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
	u32 peer_pid;
	bool tx_msg_open;
	bool rx_discard;
	u64 connect_timeout_ms;
	bool dgram_connected;
	struct list_head all_node;
	unsigned long diag_pos;
	struct list_head rebal_node;
	struct ivshm_resize resize;
	u32 tx_need;
	u32 tx_full;
	u64 rebal_pos;
	unsigned long tx_active;
	u64 move_gen;
	u8 sec_policy;
	bool sec_wanted;
	struct ivshm_sec *sec;
	u8 sec_key[IVSHMEM_KEY_LEN];
	u8 sec_nonce[IVSHM_SEC_NONCE];
	struct sock *sec_listener;
	struct list_head sec_pending;
};

static inline struct ivshm_sock *ivshm_sk(struct sock *sk)
{
	return container_of(sk, struct ivshm_sock, sk);
}

/* Here, not with the other includes: the socket events read ivshm_sock. */
#define CREATE_TRACE_POINTS
#include "trace.h"

#define IVSHM_BIND_HASH_BITS	8
static struct hlist_head ivshm_bind_table[1 << IVSHM_BIND_HASH_BITS];
static DEFINE_SPINLOCK(ivshm_bind_lock);

/* Every socket, in creation order, for sock_diag; @ivshm_next_pos is the
 * next socket's diag_pos (never reused: the module is 64-bit only).
 */
static LIST_HEAD(ivshm_all_socks);
static DEFINE_SPINLOCK(ivshm_all_lock);
static unsigned long ivshm_next_pos;

static struct proto ivshm_proto = {
	.name = "AF_IVSHMEM",
	.owner = THIS_MODULE,
	.obj_size = sizeof(struct ivshm_sock),
};

/* The family number is a module parameter, so the ops carry it only once
 * the module is loaded: copies of the templates made at init.
 */
static const struct proto_ops *ivshm_stream_ops;
static const struct proto_ops *ivshm_seqpacket_ops;
static const struct proto_ops *ivshm_dgram_ops;

static struct hlist_head *ivshm_bind_bucket(u32 port)
{
	return &ivshm_bind_table[hash_32(port, IVSHM_BIND_HASH_BITS)];
}

/* Each socket type has its own port space, as TCP and UDP do. */
static bool ivshm_port_in_use(u32 port, int type)
{
	struct ivshm_sock *vsk;

	hlist_for_each_entry(vsk, ivshm_bind_bucket(port), bind_node)
		if (vsk->local.sivshm_port == port && vsk->sk.sk_type == type)
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
			if (!ivshm_port_in_use(port, vsk->sk.sk_type))
				break;
		}
		if (i == range)
			err = -EADDRNOTAVAIL;
	} else if (ivshm_port_in_use(port, vsk->sk.sk_type)) {
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

/* Finds the listener of @type for @port on region @index; takes a
 * reference.
 */
static struct sock *ivshm_find_listener(u32 port, int type,
					unsigned int index)
{
	struct ivshm_sock *vsk;
	struct sock *found = NULL;

	spin_lock_bh(&ivshm_bind_lock);
	hlist_for_each_entry(vsk, ivshm_bind_bucket(port), bind_node) {
		if (vsk->local.sivshm_port != port ||
		    vsk->sk.sk_type != type || vsk->sk.sk_state != TCP_LISTEN)
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

/* Takes @vsk off its device's sleepers.  Under the socket lock, like
 * every change of @vsk->dev: a socket on the list always has its device.
 */
static void ivshm_sleeper_del(struct ivshm_sock *vsk)
{
	struct ivshm_dev *dev = vsk->dev;
	unsigned long flags;

	spin_lock_irqsave(&dev->sleepers_lock, flags);
	list_del_init(&vsk->sleep_node);
	vsk->rx_sleepers = 0;
	vsk->tx_sleepers = 0;
	spin_unlock_irqrestore(&dev->sleepers_lock, flags);
}

static void ivshm_detach_dev(struct ivshm_sock *vsk)
{
	struct ivshm_dev *dev = vsk->dev;

	if (!dev)
		return;
	ivshm_sleeper_del(vsk);
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
	z->request = vsk->sk.sk_state == TCP_SYN_SENT;
	z->paired = vsk->sk.sk_state == TCP_ESTABLISHED ||
		    vsk->sk.sk_state == TCP_SYN_RECV;
	z->pair_index = vsk->rx.index;
	z->pair_generation = vsk->rx.generation;
	spin_lock_bh(&dev->socks_lock);
	list_add_tail(&z->node, &dev->zombies);
	spin_unlock_bh(&dev->socks_lock);
}

/* Largest channel SO_SNDBUF can ask for. */
#define IVSHM_MAX_SNDBUF_CHANNEL	(16 * 1024 * 1024)

/* The size of the channel @sk sends on: SO_SNDBUF / 2 (the value the user
 * set) rounded up to blocks if it was set, else the module's channel_size.
 */
static u32 ivshm_tx_channel_size(struct sock *sk)
{
	u32 size;

	if (!(sk->sk_userlocks & SOCK_SNDBUF_LOCK))
		return ivshm_channel_size;
	size = round_up(READ_ONCE(sk->sk_sndbuf) / 2, IVSHM_BLOCK_SIZE);
	return clamp_t(u32, size, IVSHM_BLOCK_SIZE, IVSHM_MAX_SNDBUF_CHANNEL);
}

static struct ivshm_channel *ivshm_tx_chan(struct ivshm_sock *vsk)
{
	return ivshm_chan(vsk->dev, vsk->tx.index);
}

static struct ivshm_channel *ivshm_rx_chan(struct ivshm_sock *vsk)
{
	return ivshm_chan(vsk->dev, vsk->rx.index);
}

/* Whether the peer's channel we receive on is still the one we connected
 * with: once the peer frees it, the entry may serve another connection.
 */
static bool ivshm_rx_held(struct ivshm_dev *dev, struct ivshm_sock *vsk)
{
	return ivshm_chan_held(dev, vsk->rx.index, vsk->rx.generation,
			       vsk->peer);
}

/* Publishes our sender state; callers order the fields it covers. */
static void ivshm_set_tx_state(struct ivshm_sock *vsk, u32 state)
{
	vsk->tx_state = state;
	ivshm_wr32(&ivshm_tx_chan(vsk)->sender_state, state);
}

/* Decides a resize of @tx to @size; it happens when the ring is empty. */
static void ivshm_resize_plan(struct ivshm_sock *vsk, u32 size, u32 reserve)
{
	vsk->resize.size = size;
	vsk->resize.reserve = reserve;
	vsk->resize.unit = ivshm_min_channel();
	vsk->resize.move = false;
}

/* Gives up a pending resize (the connection ends). */
static void ivshm_resize_drop(struct ivshm_sock *vsk)
{
	if (vsk->resize.size) {
		vsk->resize.size = 0;
		atomic64_inc(&vsk->dev->stats.resizes_aborted);
	}
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
	ivshm_resize_drop(vsk);
	trace_ivshmem_close(vsk, send_state);
	if (sk->sk_state == TCP_ESTABLISHED || sk->sk_state == TCP_SYN_RECV) {
		/* Released before EOF: a reader that sees EOF sees both.  Not
		 * once the peer (or our reclaim) has freed the entry: it may
		 * be another connection's by now.
		 */
		if (ivshm_rx_held(dev, vsk))
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

/* Why @vsk is reset with @err, in order: the device is going away
 * (ENETDOWN); the peer reset it (RESET on the channel we receive on,
 * still the one we connected with); the peer's incarnation is gone
 * (declared dead, left or replaced); the peer freed the channel we
 * receive on (it let go of the connection: also counted as its reset);
 * else the peer's shared state was impossible.
 */
static int ivshm_reset_cause(struct ivshm_sock *vsk, int err)
{
	struct ivshm_dev *dev = vsk->dev;
	bool established = vsk->sk.sk_state == TCP_ESTABLISHED;
	bool rx_held;

	if (err == ENETDOWN)
		return IVSHM_RESET_DEVICE_GONE;
	if (!dev)
		return IVSHM_RESET_PEER_DEAD;
	rx_held = established && ivshm_rx_held(dev, vsk);
	if (rx_held &&
	    ivshm_rd32(&ivshm_rx_chan(vsk)->sender_state) == IVSHM_SEND_RESET)
		return IVSHM_RESET_PEER;
	if (!ivshm_peer_alive(dev, vsk->peer, vsk->peer_epoch))
		return IVSHM_RESET_PEER_DEAD;
	if (established && !rx_held)
		return IVSHM_RESET_PEER;
	return IVSHM_RESET_INVALID;
}

/* Counts a connection lost to a reset, once: the first reset detaches
 * the socket from its device.  Impossible shared state is counted as a
 * validation failure already.
 */
static void ivshm_count_reset(struct ivshm_sock *vsk, int cause)
{
	struct ivshm_stats *stats;

	if (!vsk->dev)
		return;
	stats = &vsk->dev->stats;
	if (cause == IVSHM_RESET_DEVICE_GONE)
		atomic64_inc(&stats->resets_device_gone);
	else if (cause == IVSHM_RESET_PEER)
		atomic64_inc(&stats->resets_received);
	else if (cause == IVSHM_RESET_PEER_DEAD)
		atomic64_inc(&stats->resets_peer_dead);
}

/* Fails the connection with @err (a positive errno). */
static void ivshm_reset(struct ivshm_sock *vsk, int err)
{
	int cause = ivshm_reset_cause(vsk, err);

	trace_ivshmem_reset(vsk, cause, -err);
	ivshm_count_reset(vsk, cause);
	ivshm_disconnect(vsk, IVSHM_SEND_RESET);
	vsk->reset_err = err;
	vsk->sk.sk_shutdown = SHUTDOWN_MASK;
	ivshm_set_closed(&vsk->sk, err);
}

/* ---- ring access ---- */

/* SO_SNDBUF/SO_RCVBUF for a ring of @size bytes: twice the size (as
 * setsockopt() doubles), capped to fit the int (rings reach 1 GiB, and a
 * hostile sender's geometry up to the region's size).
 */
static int ivshm_buf_value(u32 size)
{
	return min_t(u64, 2ULL * size, INT_MAX);
}

/* The geometry of the rx channel, read again: the sender may have resized
 * it.  Called only once head showed unread data: the sender changes the
 * geometry only while the ring is empty, and publishes that data after
 * the change, so this is the geometry the data was written with.
 */
static bool ivshm_rx_geometry(struct ivshm_sock *vsk, struct ivshm_channel *ch)
{
	u32 off = ivshm_rd32(&ch->buff_offset);
	u32 size = ivshm_rd32(&ch->buff_size);

	if (!ivshm_chan_geometry(vsk->dev, off, size)) {
		ivshm_note_bad(vsk->dev, "rx geometry", vsk->rx.index);
		return false;
	}
	if (size != vsk->rx.size)
		WRITE_ONCE(vsk->sk.sk_rcvbuf, ivshm_buf_value(size));
	vsk->rx.offset = off;
	vsk->rx.size = size;
	return true;
}

/* Bytes readable on the rx channel, or a negative errno when the peer's
 * channel is gone or its head or geometry is impossible.  With data, the
 * rx ring's geometry is refreshed first.
 */
static s64 ivshm_rx_avail(struct ivshm_sock *vsk)
{
	struct ivshm_channel *ch = ivshm_rx_chan(vsk);
	u64 head, avail;

	if (!ivshm_rx_held(vsk->dev, vsk))
		return -ECONNRESET;
	head = ivshm_rd64(&ch->head);
	smp_rmb();	/* head before the geometry and the data it covers */
	avail = head - READ_ONCE(vsk->rx.pos);
	if (avail && !ivshm_rx_geometry(vsk, ch))
		return -ECONNRESET;
	if (avail > vsk->rx.size) {
		ivshm_note_bad(vsk->dev, "rx head", vsk->rx.index);
		return -ECONNRESET;
	}
	return avail;
}

/* Bytes free on the tx channel for new data, or a negative errno.  While
 * a resize is pending, none until the ring is empty: the sender then
 * switches (ivshm_resize_try()) before it writes.
 */
static s64 ivshm_tx_free(struct ivshm_sock *vsk)
{
	s64 room = ivshm_ring_room(vsk->dev, &vsk->tx);

	if (room > 0 && vsk->resize.size && room < vsk->tx.size)
		return 0;
	return room;
}

/* Switches @tx to the pending size if its ring is empty.  Under
 * lock_sock(), so no data is being written meanwhile.
 */
static void ivshm_resize_try(struct ivshm_sock *vsk)
{
	if (!vsk->resize.size ||
	    ivshm_ring_room(vsk->dev, &vsk->tx) != vsk->tx.size)
		return;
	/* On failure the resize is dropped: the old ring goes on. */
	if (!ivshm_chan_switch(vsk->dev, &vsk->tx, &vsk->resize))
		WRITE_ONCE(vsk->sk.sk_sndbuf, ivshm_buf_value(vsk->tx.size));
}

/* The peer's sender state on our rx channel, checked. */
static u32 ivshm_rx_state(struct ivshm_sock *vsk)
{
	u32 state = ivshm_rd32(&ivshm_rx_chan(vsk)->sender_state);

	smp_rmb();	/* state before head: data published before EOF */
	return state;
}

/* Copies @len bytes from @iter into the tx ring at position @pos. */
static int ivshm_ring_write(struct ivshm_sock *vsk, u64 pos,
			    struct iov_iter *iter, size_t len)
{
	return ivshm_ring_fill(vsk->dev->shm + vsk->tx.offset, &vsk->tx, pos,
			       iter, len);
}

/* Writes a record header (SOCK_SEQPACKET) at tx position @pos. */
static void ivshm_ring_put_record(struct ivshm_sock *vsk, u64 pos, u32 len,
				  u32 flags)
{
	struct ivshm_record rec = {
		.len = cpu_to_le32(len),
		.flags = cpu_to_le32(flags),
	};
	void *base = vsk->dev->shm + vsk->tx.offset;

	/* Records are 8-byte aligned and rings a multiple of 4096: a
	 * header never wraps.
	 */
	memcpy(base + ivshm_ring_off(&vsk->tx, pos), &rec, sizeof(rec));
}

/* Reads the record header at rx position @pos: one copy, then decoded. */
static void ivshm_ring_get_record(struct ivshm_sock *vsk, u64 pos, u32 *len,
				  u32 *flags)
{
	void *base = vsk->dev->shm + vsk->rx.offset;
	struct ivshm_record rec;

	memcpy(&rec, base + ivshm_ring_off(&vsk->rx, pos), sizeof(rec));
	*len = le32_to_cpu(rec.len);
	*flags = le32_to_cpu(rec.flags);
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

/* Copies @len bytes out of the rx ring at @pos into @buf. */
static void ivshm_ring_copy_out(struct ivshm_sock *vsk, u64 pos, void *buf,
				u32 len)
{
	void *base = vsk->dev->shm + vsk->rx.offset;
	u32 off = ivshm_ring_off(&vsk->rx, pos);
	u32 first = min_t(u32, len, vsk->rx.size - off);

	memcpy(buf, base + off, first);
	memcpy(buf + first, base, len - first);
}

/* Copies @len bytes from @buf into the tx ring at @pos. */
static void ivshm_ring_copy_in(struct ivshm_sock *vsk, u64 pos,
			       const void *buf, u32 len)
{
	void *base = vsk->dev->shm + vsk->tx.offset;
	u32 off = ivshm_ring_off(&vsk->tx, pos);
	u32 first = min_t(u32, len, vsk->tx.size - off);

	memcpy(base + off, buf, first);
	memcpy(base, buf + first, len - first);
}

/* ---- connection setup ---- */

static void ivshm_set_established(struct ivshm_sock *vsk)
{
	struct sock *sk = &vsk->sk;

	sk->sk_state = TCP_ESTABLISHED;
	if (sk->sk_socket)
		sk->sk_socket->state = SS_CONNECTED;
	/* SO_SNDBUF and SO_RCVBUF now tell the channel sizes (times two,
	 * as setsockopt() doubles what it is given).
	 */
	WRITE_ONCE(sk->sk_sndbuf, ivshm_buf_value(vsk->tx.size));
	WRITE_ONCE(sk->sk_rcvbuf, ivshm_buf_value(vsk->rx.size));
	vsk->rebal_pos = 0;
	vsk->tx_active = jiffies;
	vsk->move_gen = U64_MAX;
	vsk->tx_full = 0;
	vsk->tx_need = 0;
	vsk->seen_head = 0;
	vsk->seen_tail = 0;
	vsk->seen_state = 0;
}

/* The peer id our connection requests carry (test_claim_peer: another). */
static u32 ivshm_claimed_self(struct ivshm_dev *dev)
{
	int claim = READ_ONCE(test_claim_peer);

	return claim >= 0 && claim < IVSHM_MAX_PEERS ? claim : dev->self;
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

	ch = ivshm_reply_channel(dev, index, gen, vsk->peer,
				 ivshm_claimed_self(dev), vsk->tx.index,
				 vsk->tx.generation);
	if (!ch)
		return false;
	off = ivshm_rd32(&ch->buff_offset);
	size = ivshm_rd32(&ch->buff_size);
	if (ivshm_rd32(&ch->src_port) != vsk->remote.sivshm_port ||
	    ivshm_rd32(&ch->dst_port) != vsk->local.sivshm_port ||
	    !ivshm_chan_geometry(dev, off, size))
		return false;
	vsk->rx.index = index;
	vsk->rx.generation = gen;
	vsk->rx.offset = off;
	vsk->rx.size = size;
	vsk->rx.pos = 0;
	vsk->peer_pid = ivshm_rd32(&ch->sender_pid);
	return true;
}

/* Ends a pending connect with @err.  With @drop our request is freed at
 * once, else it waits on the zombie list like any closed channel.
 */
static void ivshm_connect_end(struct ivshm_sock *vsk, int err, bool drop)
{
	struct ivshm_dev *dev = vsk->dev;

	trace_ivshmem_connect_done(vsk, -err);
	memzero_explicit(vsk->sec_key, sizeof(vsk->sec_key));
	if (drop) {
		ivshm_chan_free(dev, vsk->tx.index, vsk->tx.generation);
		ivshm_detach_dev(vsk);
	} else {
		ivshm_disconnect(vsk, IVSHM_SEND_RESET);
	}
	/* As TCP: poll() then says IN|RDHUP|ERR|HUP|OUT. */
	vsk->sk.sk_shutdown = SHUTDOWN_MASK;
	ivshm_set_closed(&vsk->sk, err);
}

/* Fails a pending connect with @err (a positive errno). */
static void ivshm_connect_fail(struct ivshm_sock *vsk, int err)
{
	/* A refusal is the receiver's last word: free at once. */
	ivshm_connect_end(vsk, err, err == ECONNREFUSED || err == ENOBUFS ||
			  err == EACCES);
}

/* ---- protected connections (secure.c has the cryptography) ---- */

/* Whether a connection of @vsk to @peer on @dev is protected: 1 yes (the
 * key is in @vsk->sec_key), 0 no, or a negative errno when the policy
 * forbids it.
 */
static int ivshm_sec_decide(struct ivshm_sock *vsk, struct ivshm_dev *dev,
			    u32 peer)
{
	bool require = vsk->sec_policy == IVSHMEM_SECURITY_REQUIRE;

	if (vsk->sec_policy == IVSHMEM_SECURITY_OFF)
		return 0;
	if (ivshm_sec_key(dev->index, peer, vsk->sec_key))
		return 1;
	return require ? -ENOKEY : 0;
}

/* Fills the transcript both sides build of a handshake. */
static void ivshm_sec_transcript(struct ivshm_sec_transcript *t, u16 type,
				 u32 connector, u32 acceptor, u32 cport,
				 u32 aport, const struct ivshm_ring *req,
				 const struct ivshm_ring *reply,
				 const u8 *nonce_c, const u8 *nonce_a)
{
	BUILD_BUG_ON(sizeof(IVSHM_SEC_LABEL) != sizeof(t->label));
	memset(t, 0, sizeof(*t));
	memcpy(t->label, IVSHM_SEC_LABEL, sizeof(t->label));
	t->connector = cpu_to_le16(connector);
	t->acceptor = cpu_to_le16(acceptor);
	t->type = cpu_to_le16(type);
	t->connector_port = cpu_to_le32(cport);
	t->acceptor_port = cpu_to_le32(aport);
	t->req_index = cpu_to_le32(req->index);
	t->req_gen = cpu_to_le32(req->generation);
	t->reply_index = cpu_to_le32(reply->index);
	t->reply_gen = cpu_to_le32(reply->generation);
	memcpy(t->nonce_c, nonce_c, IVSHM_SEC_NONCE);
	memcpy(t->nonce_a, nonce_a, IVSHM_SEC_NONCE);
}

/* Connector: writes our nonce at the start of the request's ring. */
static void ivshm_sec_hello(struct ivshm_sock *vsk)
{
	get_random_bytes(vsk->sec_nonce, sizeof(vsk->sec_nonce));
	ivshm_ring_copy_in(vsk, 0, vsk->sec_nonce, IVSHM_SEC_NONCE);
	vsk->tx.pos = IVSHM_SEC_NONCE;
	smp_wmb();	/* the nonce before head */
	ivshm_wr64(&ivshm_tx_chan(vsk)->head, vsk->tx.pos);
}

/* Connector, the reply channel accepted: checks the acceptor's nonce and
 * MAC at the start of the reply ring, answers with our MAC and starts the
 * session.  Returns 0, or fails the connect and returns its errno.
 */
static int ivshm_sec_connected(struct ivshm_sock *vsk)
{
	struct ivshm_channel *rx = ivshm_rx_chan(vsk);
	struct ivshm_dev *dev = vsk->dev;
	u8 hello[IVSHM_SEC_HS_BYTES], mac[IVSHM_SEC_MAC];
	struct ivshm_sec_transcript t;
	struct ivshm_sec *sec;
	int err = -EKEYREJECTED;
	bool flagged;
	u64 head;

	flagged = ivshm_rd16(&rx->sock_type) & IVSHM_SOCK_F_SECURE;
	if (!vsk->sec_wanted && !flagged)
		return 0;
	if (!vsk->sec_wanted || !flagged)
		goto fail;	/* a downgrade, or a reply we did not ask for */
	head = ivshm_rd64(&rx->head);
	smp_rmb();	/* head before the bytes it covers */
	if (head != IVSHM_SEC_HS_BYTES)
		goto fail;
	ivshm_ring_copy_out(vsk, 0, hello, sizeof(hello));
	ivshm_sec_transcript(&t, vsk->sk.sk_type, ivshm_claimed_self(dev),
			     vsk->peer, vsk->local.sivshm_port,
			     vsk->remote.sivshm_port,
			     &vsk->tx, &vsk->rx, vsk->sec_nonce, hello);
	if (ivshm_sec_mac(vsk->sec_key, 'A', &t, mac) ||
	    crypto_memneq(mac, hello + IVSHM_SEC_NONCE, IVSHM_SEC_MAC))
		goto fail;
	sec = ivshm_sec_start(vsk->sec_key, &t, true);
	if (IS_ERR(sec)) {
		err = PTR_ERR(sec);
		goto fail;
	}
	err = ivshm_sec_mac(vsk->sec_key, 'C', &t, mac);
	if (err) {
		ivshm_sec_free(sec);
		goto fail;
	}
	memzero_explicit(vsk->sec_key, sizeof(vsk->sec_key));
	vsk->sec = sec;
	ivshm_ring_copy_in(vsk, vsk->tx.pos, mac, IVSHM_SEC_MAC);
	smp_wmb();	/* our MAC before head */
	vsk->tx.pos += IVSHM_SEC_MAC;
	ivshm_wr64(&ivshm_tx_chan(vsk)->head, vsk->tx.pos);
	vsk->rx.pos = IVSHM_SEC_HS_BYTES;
	smp_mb();	/* the acceptor's bytes read before tail */
	ivshm_wr64(&rx->tail, vsk->rx.pos);
	ivshm_ring_doorbell(dev, vsk->peer);
	return 0;
fail:
	if (err == -EKEYREJECTED) {
		atomic64_inc(&dev->stats.auth_failures);
		ivshm_note_bad(dev, "handshake", vsk->rx.index);
	}
	/* The reply channel was checked: release it, then give up. */
	ivshm_wr32(&rx->receiver_state, IVSHM_RECV_RELEASED);
	smp_wmb();	/* release before our reset */
	ivshm_connect_fail(vsk, -err);
	return err;
}

/* Acceptor, answering a protected request: reads the connector's nonce,
 * writes ours and our MAC at the start of the reply ring, and starts the
 * session; the connector's MAC is still to come.  Returns 0 or a
 * negative errno (the request is then refused).
 */
static int ivshm_sec_accepting(struct ivshm_sock *child,
			       struct ivshm_channel *req, const u8 *key)
{
	u8 hello[IVSHM_SEC_HS_BYTES], nonce_c[IVSHM_SEC_NONCE];
	struct ivshm_sec_transcript t;
	struct ivshm_sec *sec;
	u64 head;
	int err;

	head = ivshm_rd64(&req->head);
	smp_rmb();	/* head before the nonce */
	if (head != IVSHM_SEC_NONCE) {
		ivshm_note_bad(child->dev, "handshake", child->rx.index);
		return -ECONNREFUSED;
	}
	ivshm_ring_copy_out(child, 0, nonce_c, sizeof(nonce_c));
	get_random_bytes(hello, IVSHM_SEC_NONCE);
	ivshm_sec_transcript(&t, child->sk.sk_type, child->peer,
			     child->dev->self, child->remote.sivshm_port,
			     child->local.sivshm_port, &child->rx, &child->tx,
			     nonce_c, hello);
	sec = ivshm_sec_start(key, &t, false);
	if (IS_ERR(sec))
		return PTR_ERR(sec);
	err = ivshm_sec_mac(key, 'A', &t, hello + IVSHM_SEC_NONCE) ?:
	      ivshm_sec_mac(key, 'C', &t, sec->expect_mac);
	if (err) {
		ivshm_sec_free(sec);
		return err;
	}
	child->sec = sec;
	ivshm_ring_copy_in(child, 0, hello, sizeof(hello));
	child->tx.pos = IVSHM_SEC_HS_BYTES;
	smp_wmb();	/* our bytes before head */
	ivshm_wr64(&ivshm_tx_chan(child)->head, child->tx.pos);
	child->rx.pos = IVSHM_SEC_NONCE;
	smp_mb();	/* the nonce read before tail */
	ivshm_wr64(&req->tail, child->rx.pos);
	return 0;
}

/* Acceptor: the connector's MAC came (or the handshake failed).  Under
 * the listener's lock and the child's.  The child leaves the listener's
 * pending list, for its accept queue or for good.
 */
static void ivshm_sec_pending_done(struct ivshm_sock *child,
				   struct sock *listener)
{
	struct ivshm_dev *dev = child->dev;
	struct sock *sk = &child->sk;
	u8 mac[IVSHM_SEC_MAC];
	s64 avail;
	int err = 0;

	avail = ivshm_rx_avail(child);
	if (avail < 0 || ivshm_rx_state(child) == IVSHM_SEND_RESET ||
	    !ivshm_peer_alive(dev, child->peer, child->peer_epoch)) {
		err = ECONNRESET;
	} else if (avail >= IVSHM_SEC_MAC) {
		ivshm_ring_copy_out(child, child->rx.pos, mac, sizeof(mac));
		if (crypto_memneq(mac, child->sec->expect_mac, sizeof(mac))) {
			atomic64_inc(&dev->stats.auth_failures);
			ivshm_note_bad(dev, "handshake", child->rx.index);
			err = EKEYREJECTED;
		}
	} else if (time_after(jiffies, child->connect_deadline)) {
		err = ETIMEDOUT;
	} else {
		return;		/* not yet */
	}
	list_del_init(&child->accept_node);
	child->sec_listener = NULL;
	sock_put(listener);	/* the child's; the caller holds another */
	if (!err && (listener->sk_state != TCP_LISTEN ||
		     sk_acceptq_is_full(listener)))
		err = ECONNREFUSED;
	if (err) {
		ivshm_disconnect(child, IVSHM_SEND_RESET);
		ivshm_set_closed(sk, err);
		sock_put(sk);	/* the pending list's; the caller holds one */
		return;
	}
	child->rx.pos += IVSHM_SEC_MAC;
	smp_mb();	/* the MAC read before tail */
	ivshm_wr64(&ivshm_rx_chan(child)->tail, child->rx.pos);
	ivshm_set_established(child);
	trace_ivshmem_accept(child);
	list_add_tail(&child->accept_node, &ivshm_sk(listener)->accept_queue);
	sk_acceptq_added(listener);
	listener->sk_data_ready(listener);
}

/* Event work: a child in the handshake (TCP_SYN_RECV). */
static void ivshm_sec_pending_check(struct ivshm_sock *child,
				    struct ivshm_dev *dev)
{
	struct sock *sk = &child->sk, *listener;

	lock_sock(sk);
	listener = child->sec_listener;
	if (listener)
		sock_hold(listener);
	release_sock(sk);
	if (!listener)
		return;
	lock_sock(listener);
	lock_sock_nested(sk, SINGLE_DEPTH_NESTING);
	if (child->sec_listener == listener && child->dev == dev &&
	    sk->sk_state == TCP_SYN_RECV)
		ivshm_sec_pending_done(child, listener);
	release_sock(sk);
	release_sock(listener);
	sock_put(listener);
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
		if (READ_ONCE(test_forget_reply)) {
			/* Drops the accepted request, reply untouched. */
			ivshm_connect_end(vsk, ECONNABORTED, true);
			return;
		}
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
		if (ivshm_sec_connected(vsk))
			return;
		ivshm_set_tx_state(vsk, IVSHM_SEND_OPEN);
		ivshm_set_established(vsk);
		trace_ivshmem_connect_done(vsk, 0);
		vsk->sk.sk_state_change(&vsk->sk);
		return;
	case IVSHM_RECV_REFUSED:
		ivshm_connect_fail(vsk, ECONNREFUSED);
		return;
	case IVSHM_RECV_NOBUFS:
		ivshm_connect_fail(vsk, ENOBUFS);
		return;
	case IVSHM_RECV_DENIED:
		ivshm_connect_fail(vsk, EACCES);
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
	struct ivshm_sock *vsk = ivshm_sk(sk);

	spin_lock_bh(&ivshm_all_lock);
	list_del(&vsk->all_node);
	spin_unlock_bh(&ivshm_all_lock);
	skb_queue_purge(&sk->sk_receive_queue);
	kfree(vsk->zombie);
	ivshm_sec_free(vsk->sec);
	memzero_explicit(vsk->sec_key, sizeof(vsk->sec_key));
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
	vsk = ivshm_sk(sk);
	INIT_LIST_HEAD(&vsk->all_node);
	sk->sk_destruct = ivshm_sk_destruct;
	vsk->zombie = kzalloc(sizeof(*vsk->zombie), GFP_KERNEL);
	if (!vsk->zombie) {
		sk_free(sk);
		return NULL;
	}
	ivshm_init_addr(&vsk->local);
	ivshm_init_addr(&vsk->remote);
	INIT_LIST_HEAD(&vsk->dev_node);
	INIT_LIST_HEAD(&vsk->sleep_node);
	INIT_LIST_HEAD(&vsk->accept_queue);
	INIT_LIST_HEAD(&vsk->accept_node);
	INIT_LIST_HEAD(&vsk->sec_pending);
	vsk->sec_policy = READ_ONCE(security);
	vsk->owner_pid = task_tgid_nr(current);
	vsk->connect_timeout_ms = connect_timeout_ms;
	spin_lock_bh(&ivshm_all_lock);
	vsk->diag_pos = ivshm_next_pos++;
	list_add_tail(&vsk->all_node, &ivshm_all_socks);
	spin_unlock_bh(&ivshm_all_lock);
	return sk;
}

/* A listener stops listening: its unaccepted children are reset and new
 * requests are refused.  Under lock_sock().
 */
static void ivshm_stop_listening(struct ivshm_sock *vsk)
{
	struct sock *sk = &vsk->sk;
	struct ivshm_sock *child, *tmp;

	list_for_each_entry_safe(child, tmp, &vsk->accept_queue, accept_node) {
		list_del_init(&child->accept_node);
		sk_acceptq_removed(sk);
		lock_sock_nested(&child->sk, SINGLE_DEPTH_NESTING);
		if (child->dev) {
			trace_ivshmem_reset(child, IVSHM_RESET_LOCAL, 0);
			if (child->sk.sk_state == TCP_ESTABLISHED)
				atomic64_inc(&child->dev->stats.resets_sent);
		}
		ivshm_disconnect(child, IVSHM_SEND_RESET);
		child->sk.sk_state = TCP_CLOSE;
		release_sock(&child->sk);
		sock_put(&child->sk);
	}
	list_for_each_entry_safe(child, tmp, &vsk->sec_pending, accept_node) {
		list_del_init(&child->accept_node);
		lock_sock_nested(&child->sk, SINGLE_DEPTH_NESTING);
		child->sec_listener = NULL;
		__sock_put(sk);	/* the child's; the caller holds ours */
		if (child->dev)
			trace_ivshmem_reset(child, IVSHM_RESET_LOCAL, 0);
		ivshm_disconnect(child, IVSHM_SEND_RESET);
		child->sk.sk_state = TCP_CLOSE;
		release_sock(&child->sk);
		sock_put(&child->sk);
	}
	sk->sk_state = TCP_CLOSE;
}

/* Sends EOF: the peer reads what we sent, then end of file. */
static void ivshm_send_eof(struct ivshm_sock *vsk)
{
	if (vsk->dev && vsk->tx_state == IVSHM_SEND_OPEN) {
		/* No more data: no use for a bigger or smaller ring. */
		ivshm_resize_drop(vsk);
		smp_wmb();	/* data (head) before EOF */
		ivshm_set_tx_state(vsk, IVSHM_SEND_SHUTDOWN);
		ivshm_ring_doorbell(vsk->dev, vsk->peer);
	}
}

/* SO_LINGER with a timeout: send EOF, then wait until the peer has read
 * everything we sent, the connection ends, the time is up or a signal
 * comes.  Under lock_sock().
 */
static void ivshm_linger(struct ivshm_sock *vsk)
{
	DEFINE_WAIT_FUNC(wait, woken_wake_function);
	struct sock *sk = &vsk->sk;
	long timeo = sk->sk_lingertime;
	s64 space;

	ivshm_send_eof(vsk);
	add_wait_queue(sk_sleep(sk), &wait);
	while (timeo > 0 && !signal_pending(current) && vsk->dev &&
	       sk->sk_state == TCP_ESTABLISHED) {
		space = ivshm_tx_free(vsk);
		if (space < 0 || space == vsk->tx.size)
			break;
		ivshm_want_space(vsk, true);
		space = ivshm_tx_free(vsk);
		if (space < 0 || space == vsk->tx.size)
			break;
		release_sock(sk);
		timeo = wait_woken(&wait, TASK_INTERRUPTIBLE, timeo);
		lock_sock(sk);
	}
	remove_wait_queue(sk_sleep(sk), &wait);
}

/* Closes the connection and any unaccepted children.  Under lock_sock().
 * Data left unread, or SO_LINGER with a zero timeout, resets the peer
 * instead of giving it EOF, as TCP does.
 */
static void ivshm_close_locked(struct ivshm_sock *vsk)
{
	struct sock *sk = &vsk->sk;
	u32 how = IVSHM_SEND_SHUTDOWN;

	if (sk->sk_state == TCP_LISTEN)
		ivshm_stop_listening(vsk);
	if (sk->sk_state == TCP_ESTABLISHED && vsk->dev) {
		s64 avail = ivshm_rx_avail(vsk);

		if (avail > 0 || (vsk->sec && (vsk->sec->rx_len ||
					       vsk->sec->rx_held)) ||
		    (sock_flag(sk, SOCK_LINGER) && !sk->sk_lingertime)) {
			how = IVSHM_SEND_RESET;
			atomic64_inc(&vsk->dev->stats.resets_sent);
		} else if (avail) {
			how = IVSHM_SEND_RESET;	/* the peer's channel is gone */
		} else if (sock_flag(sk, SOCK_LINGER)) {
			ivshm_linger(vsk);
		}
	}
	if (how == IVSHM_SEND_RESET)
		trace_ivshmem_reset(vsk, IVSHM_RESET_LOCAL, 0);
	ivshm_disconnect(vsk, how);
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

/* Spins (SO_BUSY_POLL) until the tx ring has @need bytes free. */
static bool ivshm_busy_tx(struct ivshm_sock *vsk, u32 need)
{
	u64 deadline = ivshm_busy_deadline(&vsk->sk);

	while (ivshm_busy_continue(deadline)) {
		if (ivshm_tx_free(vsk) >= need)
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

/**
 * ivshm_wait_ring() - ivshm_wait() for a connected socket's rings
 * @vsk: the socket, locked, its wait flag set and the ring rechecked
 * @wait: its entry on the socket's wait queue
 * @timeo: the remaining timeout, updated
 * @rx: a recv() waits for data, else a send() for room
 * @seen: recv(): the rx head at which there is nothing new (what the
 *	recheck found); send(): the tx tail it found
 *
 * In doorbell mode the socket is on the device's sleepers while it waits,
 * so that the doorbell interrupt wakes it at once when the value it waits
 * on moves, instead of after the event work's scan of the region.  Any
 * number of tasks may wait on one socket (a reader and a writer, several
 * readers): the socket is listed once, with a count per direction.
 *
 * Return: as ivshm_wait().
 */
static int ivshm_wait_ring(struct ivshm_sock *vsk,
			   struct wait_queue_entry *wait, long *timeo,
			   bool rx, u64 seen)
{
	struct ivshm_dev *dev = vsk->dev;
	unsigned long flags;
	int err;

	if (!dev || !dev->doorbell || !*timeo ||
	    vsk->sk.sk_state != TCP_ESTABLISHED)
		return ivshm_wait(&vsk->sk, wait, timeo);
	spin_lock_irqsave(&dev->sleepers_lock, flags);
	if (rx) {
		vsk->sleep_head = seen;
		vsk->rx_sleepers++;
	} else {
		vsk->sleep_tail = seen;
		vsk->tx_sleepers++;
	}
	if (list_empty(&vsk->sleep_node))
		list_add_tail(&vsk->sleep_node, &dev->sleepers);
	spin_unlock_irqrestore(&dev->sleepers_lock, flags);
	err = ivshm_wait(&vsk->sk, wait, timeo);
	/* Detached meanwhile: off the list already, and @dev may be gone. */
	if (vsk->dev != dev)
		return err;
	spin_lock_irqsave(&dev->sleepers_lock, flags);
	if (rx && vsk->rx_sleepers)
		vsk->rx_sleepers--;
	else if (!rx && vsk->tx_sleepers)
		vsk->tx_sleepers--;
	if (!vsk->rx_sleepers && !vsk->tx_sleepers)
		list_del_init(&vsk->sleep_node);
	spin_unlock_irqrestore(&dev->sleepers_lock, flags);
	return err;
}

/**
 * ivshm_wake_sleepers() - the doorbell interrupt's own wakeups
 * @dev: the device
 *
 * Wakes every socket with tasks blocked in recv() whose rx head moved, or
 * in send() whose tx tail moved, since they went to sleep, without waiting
 * for the event work: the woken tasks then run before the scan.  A woken
 * socket leaves the list (its tasks put it back if they sleep again), so
 * each wakeup is counted once.  A hostile guest can only cause spurious
 * wakeups this way (the tasks check their ring as always); the walk is
 * bounded by this guest's own sockets with blocked tasks.
 *
 * Return: true if it woke any.
 */
bool ivshm_wake_sleepers(struct ivshm_dev *dev)
{
	struct ivshm_sock *vsk, *tmp;
	bool woke = false;

	/* An unlocked look first: most interrupts find nobody blocked.  A
	 * socket listed just now is woken by the event work, as without
	 * this path.
	 */
	if (list_empty(&dev->sleepers))
		return false;
	spin_lock(&dev->sleepers_lock);
	list_for_each_entry_safe(vsk, tmp, &dev->sleepers, sleep_node) {
		if (!(vsk->rx_sleepers && vsk->sleep_head !=
		      ivshm_rd64(&ivshm_rx_chan(vsk)->head)) &&
		    !(vsk->tx_sleepers && vsk->sleep_tail !=
		      ivshm_rd64(&ivshm_tx_chan(vsk)->tail)))
			continue;
		list_del_init(&vsk->sleep_node);
		vsk->rx_sleepers = 0;
		vsk->tx_sleepers = 0;
		wake_up_interruptible_poll(sk_sleep(&vsk->sk), EPOLLIN |
					   EPOLLRDNORM | EPOLLOUT |
					   EPOLLWRNORM);
		atomic64_inc(&dev->stats.doorbell_wakes);
		woke = true;
	}
	spin_unlock(&dev->sleepers_lock);
	return woke;
}

/* Asks the rebalancer to shrink our idle channels now and waits for it,
 * a second at most.  The caller may hold the lock of sockets that are not
 * connected (the rebalancer does not lock those).  @waited is NULL when
 * the caller may always wait; the event work (answering requests in a
 * region a hostile guest keeps full) passes its flag, and waits once per
 * run, not once per request.
 */
static void ivshm_rebalance_shrink_now(struct ivshm_dev *dev, bool *waited)
{
	int done = atomic_read(&dev->rebalance_shrinks);

	WRITE_ONCE(dev->rebalance_urgent, true);
	ivshm_rebalance_kick(dev);
	if (waited) {
		if (*waited)
			return;
		*waited = true;
	}
	wait_event_timeout(dev->rebalance_wq,
			   atomic_read(&dev->rebalance_shrinks) != done ||
			   READ_ONCE(dev->dead), HZ);
}

/**
 * ivshm_alloc_tx() - allocate the channel a new connection sends on
 * @dev: the device
 * @size: the size it should have
 * @ring: filled as by ivshm_chan_alloc()
 * @waited: NULL, or the event work's flag: see ivshm_rebalance_shrink_now()
 *
 * When the region has no room for @size, halved sizes down to
 * channel_min_size are tried; when even that fails, our rebalancer
 * shrinks our idle channels at once and the smallest size is tried once
 * more.  Connections are never broken to make room.
 *
 * Return: 0, -ENOBUFS, or another error of ivshm_chan_alloc().
 */
static int ivshm_alloc_tx(struct ivshm_dev *dev, u32 size,
			  struct ivshm_ring *ring, bool *waited)
{
	u32 min = ivshm_min_channel();
	int err;

	for (;;) {
		err = ivshm_chan_alloc(dev, size, ring);
		if (err != -ENOBUFS || size <= min)
			break;
		size = max_t(u32, rounddown(size / 2, min), min);
	}
	if (err != -ENOBUFS)
		return err;
	ivshm_rebalance_shrink_now(dev, waited);
	return ivshm_chan_alloc(dev, size, ring);
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
	unsigned int stall_ms;
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
	ivshm_sec_free(vsk->sec);
	vsk->sec = NULL;

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
	if (!err) {
		/* With its epoch before the event work can see the socket:
		 * it checks that this peer is alive.
		 */
		vsk->peer = addr->sivshm_peer;
		err = ivshm_attach_dev(vsk, dev);
	}
	mutex_unlock(&ivshm_devices_mutex);
	if (err)
		goto out;
	stall_ms = READ_ONCE(test_connect_stall_ms);
	if (stall_ms)
		msleep(stall_ms);
	err = ivshm_sec_decide(vsk, dev, addr->sivshm_peer);
	if (err < 0) {
		ivshm_detach_dev(vsk);
		goto out;
	}
	vsk->sec_wanted = err;
	err = 0;

	err = ivshm_alloc_tx(dev, ivshm_tx_channel_size(sk), &vsk->tx, NULL);
	if (err) {
		ivshm_detach_dev(vsk);
		goto out;
	}
	vsk->local.sivshm_peer = dev->self;
	vsk->local.sivshm_region = dev->index;
	vsk->remote = *addr;
	vsk->remote.sivshm_region = dev->index;

	ch = ivshm_tx_chan(vsk);
	ivshm_wr16(&ch->receiver_vm, vsk->peer);
	ivshm_wr32(&ch->sender_pid, vsk->owner_pid);
	ivshm_wr32(&ch->src_port, vsk->local.sivshm_port);
	ivshm_wr32(&ch->dst_port, addr->sivshm_port);
	ivshm_wr16(&ch->sock_type, sk->sk_type |
		   (vsk->sec_wanted ? IVSHM_SOCK_F_SECURE : 0));
	if (vsk->sec_wanted)
		ivshm_sec_hello(vsk);
	if (ivshm_claimed_self(dev) != dev->self)
		ivshm_wr16(&ch->sender_vm, ivshm_claimed_self(dev));
	smp_wmb();	/* the request's fields before its state */
	ivshm_set_tx_state(vsk, IVSHM_SEND_CONNECTING);
	trace_ivshmem_connect(vsk);

	ivshm_post_request(dev);

	sk->sk_state = TCP_SYN_SENT;
	sock->state = SS_CONNECTING;
	vsk->connect_deadline = jiffies +
				msecs_to_jiffies(vsk->connect_timeout_ms);
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

/* An accepted socket starts with its listener's settings, as in TCP. */
static void ivshm_inherit(struct ivshm_sock *child, struct ivshm_sock *parent)
{
	struct sock *sk = &child->sk, *psk = &parent->sk;

	child->owner_pid = parent->owner_pid;
	child->connect_timeout_ms = parent->connect_timeout_ms;
	child->sec_policy = parent->sec_policy;
	sk->sk_userlocks = psk->sk_userlocks;
	sk->sk_sndbuf = READ_ONCE(psk->sk_sndbuf);
	sk->sk_rcvbuf = READ_ONCE(psk->sk_rcvbuf);
	sk->sk_rcvlowat = READ_ONCE(psk->sk_rcvlowat);
	sk->sk_rcvtimeo = READ_ONCE(psk->sk_rcvtimeo);
	sk->sk_sndtimeo = READ_ONCE(psk->sk_sndtimeo);
	sk->sk_lingertime = READ_ONCE(psk->sk_lingertime);
	if (sock_flag(psk, SOCK_LINGER))
		sock_set_flag(sk, SOCK_LINGER);
#ifdef CONFIG_NET_RX_BUSY_POLL
	sk->sk_ll_usec = READ_ONCE(psk->sk_ll_usec);
#endif
}

/* Tries to accept the connection request in channel @index: a listener,
 * room in its backlog, a reply channel.  On success the answer is
 * published before the child can be accepted (and so closed).  Runs in
 * the event work; @type is the request's sock_type as the caller read
 * it.  Returns 0, or the refusal the caller must publish: -ECONNREFUSED,
 * or -ENOBUFS when the region has no room for a reply channel; or
 * -ETIMEDOUT when the control lock could not be had (nothing published).
 */
static int ivshm_answer_request(struct ivshm_dev *dev, u32 index, u32 gen,
				struct ivshm_channel *req, u32 sender,
				u32 type, bool secure)
{
	u8 key[IVSHMEM_KEY_LEN];
	u32 src_port = ivshm_rd32(&req->src_port);
	u32 dst_port = ivshm_rd32(&req->dst_port);
	u32 off = ivshm_rd32(&req->buff_offset);
	u32 size = ivshm_rd32(&req->buff_size);
	struct ivshm_sock *child;
	struct ivshm_channel *ch;
	struct sock *listener, *sk;
	int err = -ECONNREFUSED, alloc;
	bool has_key;
	u8 policy;
	u64 epoch;

	if (!ivshm_peer_active(dev, sender, &epoch) ||
	    !ivshm_peer_alive(dev, sender, epoch) ||
	    !ivshm_chan_geometry(dev, off, size) ||
	    src_port == IVSHMEM_PORT_ANY) {
		ivshm_note_bad(dev, "connection request", index);
		return err;
	}
	if (type != SOCK_STREAM && type != SOCK_SEQPACKET) {
		ivshm_note_bad(dev, "request type", index);
		return err;
	}
	listener = ivshm_find_listener(dst_port, type, dev->index);
	if (!listener)
		return err;

	lock_sock(listener);
	if (listener->sk_state != TCP_LISTEN || listener->sk_type != type ||
	    sk_acceptq_is_full(listener))
		goto refuse;
	/* Protected when asked and we have the key; plain only when our
	 * policy allows it for this peer (a downgrade is refused).
	 */
	policy = ivshm_sk(listener)->sec_policy;
	has_key = ivshm_sec_key(dev->index, sender, key);
	if (secure ? policy == IVSHMEM_SECURITY_OFF || !has_key :
	    policy == IVSHMEM_SECURITY_REQUIRE ||
	    (policy == IVSHMEM_SECURITY_PREFER && has_key)) {
		err = -EACCES;
		goto refuse;
	}
	sk = ivshm_sk_alloc(sock_net(listener), NULL, listener->sk_type, 0);
	if (!sk)
		goto refuse;
	/* Device removal may find the child on the device's list: it waits
	 * for this lock, and so only ever sees a complete child.
	 */
	lock_sock_nested(sk, SINGLE_DEPTH_NESTING);
	child = ivshm_sk(sk);
	ivshm_inherit(child, ivshm_sk(listener));
	child->peer_pid = ivshm_rd32(&req->sender_pid);
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
	/* The rebalancer skips both locked sockets: neither is connected. */
	alloc = ivshm_alloc_tx(dev, ivshm_tx_channel_size(sk), &child->tx,
			       &dev->event_shrink_waited);
	if (alloc) {
		if (alloc == -ENOBUFS || alloc == -ETIMEDOUT)
			err = alloc;
		ivshm_detach_dev(child);
		goto free_child;
	}
	ch = ivshm_tx_chan(child);
	ivshm_wr16(&ch->receiver_vm, sender);
	ivshm_wr32(&ch->sender_pid, child->owner_pid);
	ivshm_wr32(&ch->src_port, dst_port);
	ivshm_wr32(&ch->dst_port, src_port);
	ivshm_wr16(&ch->sock_type, type | (secure ? IVSHM_SOCK_F_SECURE : 0));
	ivshm_wr32(&ch->peer_channel, index);
	ivshm_wr32(&ch->peer_generation, gen);
	if (secure) {
		alloc = ivshm_sec_accepting(child, req, key);
		if (alloc) {
			/* Nobody saw the reply channel: free it now. */
			ivshm_chan_free(dev, child->tx.index,
					child->tx.generation);
			ivshm_detach_dev(child);
			goto free_child;
		}
	}
	smp_wmb();	/* reply fields before sender_state */
	ivshm_set_tx_state(child, IVSHM_SEND_OPEN);
	if (secure) {
		/* accept() sees it once the connector's MAC came. */
		sk->sk_state = TCP_SYN_RECV;
		child->connect_deadline = jiffies +
			msecs_to_jiffies(child->connect_timeout_ms);
		child->sec_listener = listener;
		sock_hold(listener);
		list_add_tail(&child->accept_node,
			      &ivshm_sk(listener)->sec_pending);
	} else {
		ivshm_set_established(child);
	}
	ivshm_publish_answer(dev, req, sender, IVSHM_RECV_ACCEPTED,
			     child->tx.index, child->tx.generation);
	if (!secure) {
		trace_ivshmem_accept(child);
		list_add_tail(&child->accept_node,
			      &ivshm_sk(listener)->accept_queue);
		sk_acceptq_added(listener);
	}
	release_sock(sk);
	if (!secure)
		listener->sk_data_ready(listener);
	release_sock(listener);
	sock_put(listener);
	memzero_explicit(key, sizeof(key));
	return 0;

free_child:
	release_sock(sk);
	sock_put(sk);
refuse:
	release_sock(listener);
	sock_put(listener);
	memzero_explicit(key, sizeof(key));
	return err;
}

/* Finds connection requests addressed to us and answers each once.
 * Returns true if there was one.
 */
/* Whether the channel table may hold new requests for us: some peer's
 * request_seq moved since the last scan, or a second has passed (a lost
 * announcement costs at most that).  Run by the event work only.
 */
static bool ivshm_requests_posted(struct ivshm_dev *dev)
{
	bool posted = false;
	u32 p, seq;

	for (p = 0; p < IVSHM_MAX_PEERS; p++) {
		seq = ivshm_rd32(&dev->peers[p].request_seq);
		if (seq != dev->request_seen[p]) {
			dev->request_seen[p] = seq;
			posted = true;
		}
	}
	if (time_after_eq(jiffies, dev->next_request_scan))
		posted = true;
	if (posted) {
		dev->next_request_scan = jiffies + HZ;
		atomic64_inc(&dev->stats.request_scans);
	}
	smp_rmb();	/* announcements before the requests they announce */
	return posted;
}

static bool ivshm_handle_requests(struct ivshm_dev *dev)
{
	bool found = false;
	int err;
	u32 i;

	if (!ivshm_requests_posted(dev))
		return false;

	for (i = 0; i < IVSHM_MAX_CHANNELS; i++) {
		struct ivshm_channel *ch = ivshm_chan(dev, i);
		u32 gen, sstate, sender, type;
		bool secure;

		if (ivshm_rd32(&ch->alloc_state) != IVSHM_CHAN_ALLOCATED ||
		    ivshm_rd16(&ch->receiver_vm) != dev->self)
			continue;
		sstate = ivshm_rd32(&ch->sender_state);
		if (sstate != IVSHM_SEND_CONNECTING &&
		    sstate != IVSHM_SEND_RESET && sstate != IVSHM_SEND_OPEN)
			continue;
		gen = ivshm_rd32(&ch->generation);
		if (dev->answered_gen[i] == gen)
			continue;
		smp_rmb();	/* state before the request's fields */
		/* Only requests: reply channels name the request they answer;
		 * open channels are new only if they carry datagrams.
		 */
		if (ivshm_rd32(&ch->peer_generation))
			continue;
		type = ivshm_rd16(&ch->sock_type);
		secure = type & IVSHM_SOCK_F_SECURE;
		type &= ~IVSHM_SOCK_F_SECURE;
		if (sstate == IVSHM_SEND_OPEN ? type != SOCK_DGRAM :
		    type == SOCK_DGRAM)
			continue;
		dev->answered_gen[i] = gen;
		found = true;
		sender = ivshm_rd16(&ch->sender_vm);
		if (sender >= IVSHM_MAX_PEERS) {
			ivshm_note_bad(dev, "request sender", i);
			continue;
		}
		if (type == SOCK_DGRAM) {
			ivshm_dgram_adopt(dev, i, gen, ch, sender);
			continue;
		}
		if (sstate == IVSHM_SEND_RESET) {
			/* Given up before we saw it: just let it go. */
			ivshm_publish_answer(dev, ch, sender,
					     IVSHM_RECV_RELEASED, 0, 0);
			continue;
		}
		err = ivshm_answer_request(dev, i, gen, ch, sender, type,
					   secure);
		if (err == -ETIMEDOUT) {
			/* The control lock is held hostage: one timeout per
			 * run, not one per request.  This request and the
			 * rest wait for the next scan.
			 */
			dev->answered_gen[i] = 0;
			dev->next_request_scan = jiffies;
			break;
		}
		if (err) {
			atomic64_inc(&dev->stats.connects_refused);
			ivshm_publish_answer(dev, ch, sender,
					     err == -ENOBUFS ? IVSHM_RECV_NOBUFS :
					     err == -EACCES ? IVSHM_RECV_DENIED :
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

/* Whether @vsk's connection on @dev is over: its peer's incarnation is
 * gone, or, established, the peer reset it or freed the channel we
 * receive on.  Exact under the socket lock with @vsk on @dev; without,
 * a hint only (a connect completing meanwhile may show the last
 * connection's rx fields): the caller looks again under the lock.
 */
static bool ivshm_sock_lost(struct ivshm_dev *dev, struct ivshm_sock *vsk)
{
	u32 index, generation;

	if (!ivshm_peer_alive(dev, READ_ONCE(vsk->peer),
			      READ_ONCE(vsk->peer_epoch)))
		return true;
	if (READ_ONCE(vsk->sk.sk_state) != TCP_ESTABLISHED)
		return false;
	index = READ_ONCE(vsk->rx.index);
	generation = READ_ONCE(vsk->rx.generation);
	return !ivshm_chan_held(dev, index, generation, READ_ONCE(vsk->peer)) ||
	       ivshm_rd32(&ivshm_chan(dev, index)->sender_state) ==
	       IVSHM_SEND_RESET;
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

	dev->event_shrink_waited = false;
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
		if (READ_ONCE(sk->sk_state) == TCP_SYN_RECV) {
			ivshm_sec_pending_check(vsk, dev);
		} else if (ivshm_sock_lost(dev, vsk)) {
			/* The peer died, left, was replaced, reset us or let
			 * go of its channel: act now, so that a socket nobody
			 * reads (a child not yet accepted) lets go of the
			 * peer's channels too.  Looked at again under the
			 * lock: unlocked, a connect may be half set up.
			 */
			lock_sock(sk);
			if (vsk->dev == dev && ivshm_sock_lost(dev, vsk)) {
				if (sk->sk_state == TCP_SYN_SENT)
					ivshm_connect_fail(vsk, EHOSTUNREACH);
				else if (sk->sk_state == TCP_ESTABLISHED)
					ivshm_reset(vsk, ECONNRESET);
			}
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

	active |= ivshm_dgram_events(dev);
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

/* ---- rebalancing ---- */

/**
 * struct ivshm_rebal_view - what one rebalancer run sees of the region
 * @min: channel_min_size in blocks
 * @cap: the size no channel of ours grows beyond in this run
 * @reserve: bytes of the data area kept free for new connections
 * @urgent: shrink every idle channel of ours now, not after idle_shrink_ms
 * @compact: a busy channel is below @cap: move idle minimum channels of
 *	ours down, so that free space merges into gaps it can grow into
 * @tries: how many more moves this run may try (each takes the control
 *	lock, whether it finds a lower gap or not)
 */
struct ivshm_rebal_view {
	u32 min;
	u32 cap;
	u32 reserve;
	bool urgent;
	bool compact;
	unsigned int tries;
};

/* Compaction tries at most this many moves of our channels per run. */
#define IVSHM_MOVE_TRIES_PER_RUN	4

/* Reads the channel table once: a channel whose head_touch or tail moved
 * within the last idle_shrink_ms is busy (a shorter window would count a
 * stream that merely missed one run as idle).  The fair share of each busy
 * channel larger than the minimum is what the data area, less the reserve
 * and every other channel, leaves to each of them.  Values from the
 * region only bound our own growth, so a hostile guest can only make us
 * more modest.  Datagram channels have a fixed size: they count as other
 * channels, busy or not, and do not ask for compaction.
 */
static void ivshm_rebalance_view(struct ivshm_dev *dev,
				 struct ivshm_rebal_view *v)
{
	u32 data = dev->data_end - IVSHM_DATA_OFFSET;
	u32 max = READ_ONCE(channel_max_size);
	unsigned long window = msecs_to_jiffies(READ_ONCE(idle_shrink_ms));
	struct ivshm_chan_seen *seen = dev->rebalance_seen;
	u32 i, busy = 0, smallest_busy = U32_MAX;
	u64 other = 0, left;

	v->min = ivshm_min_channel();
	v->reserve = data / 16;
	v->tries = IVSHM_MOVE_TRIES_PER_RUN;
	for (i = 0; i < IVSHM_MAX_CHANNELS; i++) {
		struct ivshm_channel *ch = ivshm_chan(dev, i);
		u32 off, size, sig;
		bool busy_now, fixed;

		if (ivshm_rd32(&ch->alloc_state) != IVSHM_CHAN_ALLOCATED)
			continue;
		smp_rmb();	/* alloc_state before the entry's fields */
		off = ivshm_rd32(&ch->buff_offset);
		size = ivshm_rd32(&ch->buff_size);
		if (!ivshm_chan_geometry(dev, off, size))
			continue;
		sig = ivshm_rd32(&ch->head_touch) + (u32)ivshm_rd64(&ch->tail);
		if (sig != seen[i].sig) {
			seen[i].sig = sig;
			seen[i].moved = jiffies;
		}
		fixed = (ivshm_rd16(&ch->sock_type) & IVSHM_SOCK_TYPE_MASK) ==
			SOCK_DGRAM;
		busy_now = !fixed &&
			   time_before(jiffies, seen[i].moved + window);
		if (busy_now)
			smallest_busy = min(smallest_busy, size);
		if (busy_now && size > v->min)
			busy++;
		else
			other += size;
	}
	left = data - v->reserve;
	left -= min(other, left);
	if (busy)
		left = div_u64(left, busy);
	/* Multiples of the minimum: a channel shrunk from the share leaves
	 * room for whole minimum channels, not slivers nothing can use.
	 */
	v->cap = max_t(u32, rounddown((u32)min_t(u64, left, SZ_1G), v->min),
		       v->min);
	if (max)
		v->cap = min(v->cap, max_t(u32, rounddown(max, v->min),
					   v->min));
	v->compact = smallest_busy < v->cap;
}

/* Grows, shrinks or moves one of our channels.  Under lock_sock(). */
static void ivshm_rebalance_sock(struct ivshm_sock *vsk,
				 struct ivshm_rebal_view *v)
{
	struct ivshm_dev *dev = vsk->dev;
	bool full = vsk->tx_full || vsk->tx_need;
	bool moved = vsk->tx.pos != vsk->rebal_pos;
	u32 size = vsk->tx.size, offset;
	unsigned long idle;
	u64 gen;

	vsk->tx_full = 0;
	if (moved) {
		vsk->rebal_pos = vsk->tx.pos;
		vsk->tx_active = jiffies;
	}
	if (vsk->resize.size) {
		ivshm_resize_try(vsk);	/* the sender may be idle now */
		return;
	}
	/* A size the user asked for with SO_SNDBUF stays. */
	if (vsk->sk.sk_userlocks & SOCK_SNDBUF_LOCK)
		return;
	if (full && size < v->cap) {
		ivshm_resize_plan(vsk, v->cap, v->reserve);
		ivshm_resize_try(vsk);
		return;
	}
	/* Busy well above the share (grown while fewer were busy): back to
	 * the share once the ring drains, unless a waiting send needs more.
	 */
	if ((full || moved) && size > v->cap + v->cap / 4 &&
	    v->cap >= vsk->tx_need) {
		ivshm_resize_plan(vsk, v->cap, 0);
		ivshm_resize_try(vsk);
		return;
	}
	idle = vsk->tx_active + msecs_to_jiffies(READ_ONCE(idle_shrink_ms));
	if (full || moved || (!v->urgent && time_before(jiffies, idle)))
		return;
	/* Compaction: an idle channel at the minimum moves to the lowest
	 * gap below it, unless the table has not changed since it last
	 * found none.  The generation is read once, here: the test and the
	 * record after the try use the same value.
	 */
	gen = ivshm_rd64(&dev->hdr->alloc_generation);
	if (size <= v->min &&
	    (!v->compact || !v->tries || vsk->move_gen == gen))
		return;
	/* Only an empty ring shrinks or moves, at once: nothing waits. */
	if (ivshm_ring_room(dev, &vsk->tx) != size)
		return;
	if (size > v->min) {
		ivshm_resize_plan(vsk, v->min, 0);
		ivshm_resize_try(vsk);
		return;
	}
	v->tries--;
	offset = vsk->tx.offset;
	ivshm_resize_plan(vsk, size, 0);
	vsk->resize.move = true;
	ivshm_resize_try(vsk);
	/* Again only once the table changed, other than by this move (it
	 * went to the lowest gap: none lower is left).  A value a guest
	 * writes there costs at most IVSHM_MOVE_TRIES_PER_RUN tries a run,
	 * or moves not made: an optimisation lost, nothing else.
	 */
	vsk->move_gen = gen + (vsk->tx.offset != offset);
}

/**
 * ivshm_rebalance() - one run of the rebalancer of a device
 * @dev: the device
 *
 * Run by the device's rebalance work: on its timer, after every
 * rebalance_doorbells doorbells, and when a new connection finds the
 * region full.  Grows our channels that their senders found full, up to
 * the fair share, and shrinks our idle ones to channel_min_size; only our
 * own connected stream and seqpacket channels, each under its socket
 * lock.  Sockets that are not connected are not locked: a connect() or a
 * request being answered may wait for this run while holding theirs.
 */
void ivshm_rebalance(struct ivshm_dev *dev)
{
	struct ivshm_sock *vsk, *tmp;
	struct ivshm_rebal_view v;
	LIST_HEAD(scan);

	v.urgent = xchg(&dev->rebalance_urgent, false);
	ivshm_rebalance_view(dev, &v);

	spin_lock_bh(&dev->socks_lock);
	list_for_each_entry(vsk, &dev->socks, dev_node) {
		if (vsk->sk.sk_type == SOCK_DGRAM ||
		    READ_ONCE(vsk->sk.sk_state) != TCP_ESTABLISHED)
			continue;
		sock_hold(&vsk->sk);
		list_add_tail(&vsk->rebal_node, &scan);
	}
	spin_unlock_bh(&dev->socks_lock);

	list_for_each_entry_safe(vsk, tmp, &scan, rebal_node) {
		struct sock *sk = &vsk->sk;

		list_del(&vsk->rebal_node);
		if (READ_ONCE(sk->sk_state) == TCP_ESTABLISHED) {
			lock_sock(sk);
			if (sk->sk_state == TCP_ESTABLISHED && vsk->dev == dev &&
			    vsk->tx_state == IVSHM_SEND_OPEN)
				ivshm_rebalance_sock(vsk, &v);
			release_sock(sk);
		}
		sock_put(sk);
	}

	WRITE_ONCE(dev->last_rebalance, jiffies ?: 1);
	atomic64_inc(&dev->stats.rebalances);
	if (v.urgent) {
		atomic_inc(&dev->rebalance_shrinks);
		wake_up_all(&dev->rebalance_wq);
	}
}

/* ---- data path ---- */

/* Why a send cannot go on, or 0. */
static int ivshm_send_check(struct ivshm_sock *vsk)
{
	struct sock *sk = &vsk->sk;

	if (vsk->reset_err)
		return -vsk->reset_err;
	if (sk->sk_err)
		return sock_error(sk);
	if (sk->sk_shutdown & SEND_SHUTDOWN)
		return -EPIPE;
	if (sk->sk_state != TCP_ESTABLISHED || !vsk->dev)
		return -ENOTCONN;
	return 0;
}

/* Free bytes on tx; a reset by the peer resets us (negative errno). */
static s64 ivshm_tx_space(struct ivshm_sock *vsk)
{
	s64 space;

	ivshm_resize_try(vsk);
	space = ivshm_tx_free(vsk);

	if (space == -EPIPE && ivshm_rx_state(vsk) == IVSHM_SEND_RESET)
		space = -ECONNRESET;	/* it reset us, not just left */
	if (space == -ECONNRESET)
		ivshm_reset(vsk, ECONNRESET);
	return space;
}

/* Waits until the tx ring has @need bytes free.  Returns the free bytes,
 * or a negative errno (EAGAIN when the send timeout is spent).
 */
static s64 ivshm_tx_wait(struct ivshm_sock *vsk, u32 need, long *timeo,
			 struct wait_queue_entry *wait)
{
	s64 space;
	int err;

	for (;;) {
		err = ivshm_send_check(vsk);
		if (err)
			return err;
		space = ivshm_tx_space(vsk);
		if (space < 0 || space >= need)
			break;
		/* Found full: the rebalancer grows busy channels. */
		vsk->tx_full++;
		if (*timeo && ivshm_busy_tx(vsk, need))
			continue;
		ivshm_want_space(vsk, true);
		if (ivshm_tx_free(vsk) >= need)
			continue;
		/* The rebalancer must not shrink the ring below @need. */
		vsk->tx_need = need;
		err = ivshm_wait_ring(vsk, wait, timeo, false,
				      ivshm_rd64(&ivshm_tx_chan(vsk)->tail));
		vsk->tx_need = 0;
		if (err)
			return err;
	}
	if (space > 0 && vsk->want_space)
		ivshm_want_space(vsk, false);
	return space;
}

/* Publishes @bytes written at our head; rings if the receiver waits. */
static void ivshm_tx_publish(struct ivshm_sock *vsk, u32 bytes, s64 space)
{
	struct ivshm_channel *ch = ivshm_tx_chan(vsk);

	smp_wmb();	/* data before head */
	vsk->tx.pos += bytes;
	ivshm_wr64(&ch->head, vsk->tx.pos);
	ivshm_wr32(&ch->head_touch, ++vsk->tx_touch);
	ivshm_wr32(&ch->data_size, vsk->tx.size - space + bytes);
	smp_mb();	/* head before the receiver's wait flag */
	if (ivshm_rd32(&ch->recv_waiting))
		ivshm_ring_doorbell(vsk->dev, vsk->peer);
	else
		atomic64_inc(&vsk->dev->stats.doorbells_suppressed);
}

/* After a send: ask for a doorbell if the ring is full (poll() users). */
static void ivshm_send_done(struct ivshm_sock *vsk, struct msghdr *msg,
			    int err, bool sent)
{
	struct sock *sk = &vsk->sk;

	if (vsk->dev && sk->sk_state == TCP_ESTABLISHED &&
	    ivshm_tx_free(vsk) == 0)
		ivshm_want_space(vsk, true);
	if (err == -EPIPE && !(msg->msg_flags & MSG_NOSIGNAL) && !sent)
		send_sig(SIGPIPE, current, 0);
}

/* Protected: the bytes a sealed record of @len takes. */
static u32 ivshm_sec_rec_bytes(u32 len)
{
	return IVSHM_SEC_OVERHEAD + round_up(len, IVSHM_REC_ALIGN);
}

/* Protected send: seals up to @left bytes of @iter as one record (as many
 * as @space and the record limit allow) and writes it to the ring.  The
 * record carries @end_flags (SOCK_SEQPACKET: IVSHM_REC_*) when it holds
 * all @left bytes.  Returns the payload bytes sent, or a negative errno.
 */
static ssize_t ivshm_sec_put(struct ivshm_sock *vsk, struct iov_iter *iter,
			     size_t left, s64 space, u32 end_flags)
{
	struct ivshm_sec *sec = vsk->sec;
	struct ivshm_record *rec = (struct ivshm_record *)sec->tx_buf;
	u32 n;
	int err;

	n = min_t(size_t, left, IVSHM_SEC_PAYLOAD_MAX);
	n = min_t(u32, n, round_down(space - IVSHM_SEC_OVERHEAD,
				     IVSHM_REC_ALIGN));
	if (n && copy_from_iter(sec->tx_buf + sizeof(*rec), n, iter) != n)
		return -EFAULT;
	rec->len = cpu_to_le32(n);
	rec->flags = cpu_to_le32(n == left ? end_flags : 0);
	err = ivshm_sec_seal(sec, n);
	if (err) {
		if (n)
			iov_iter_revert(iter, n);
		return err;
	}
	ivshm_ring_copy_in(vsk, vsk->tx.pos, sec->tx_buf,
			   sizeof(*rec) + n + IVSHM_SEC_TAG);
	ivshm_tx_publish(vsk, ivshm_sec_rec_bytes(n), space);
	return n;
}

static int ivshm_stream_sendmsg(struct socket *sock, struct msghdr *msg,
				size_t len)
{
	DEFINE_WAIT_FUNC(wait, woken_wake_function);
	struct sock *sk = sock->sk;
	struct ivshm_sock *vsk = ivshm_sk(sk);
	size_t sent = 0, n;
	long timeo;
	s64 space;
	int err = 0;

	if (msg->msg_flags & MSG_OOB)
		return -EOPNOTSUPP;

	lock_sock(sk);
	timeo = sock_sndtimeo(sk, msg->msg_flags & MSG_DONTWAIT);
	add_wait_queue(sk_sleep(sk), &wait);
	while (sent < len) {
		space = ivshm_tx_wait(vsk, vsk->sec ? IVSHM_SEC_OVERHEAD +
				      IVSHM_REC_ALIGN : 1, &timeo, &wait);
		if (space < 0) {
			err = space;
			break;
		}
		if (vsk->sec) {
			ssize_t put = ivshm_sec_put(vsk, &msg->msg_iter,
						    len - sent, space, 0);

			if (put < 0) {
				err = put;
				break;
			}
			sent += put;
			continue;
		}
		n = min_t(size_t, space, len - sent);
		err = ivshm_ring_write(vsk, vsk->tx.pos, &msg->msg_iter, n);
		if (err)
			break;
		ivshm_tx_publish(vsk, n, space);
		sent += n;
	}
	remove_wait_queue(sk_sleep(sk), &wait);
	ivshm_send_done(vsk, msg, err, sent);
	release_sock(sk);
	return sent ? sent : err;
}

/* SOCK_SEQPACKET: the bytes a record of @len payload bytes takes. */
static u32 ivshm_record_bytes(u32 len)
{
	return sizeof(struct ivshm_record) + round_up(len, IVSHM_REC_ALIGN);
}

/* Writes one record of @len bytes from @iter (NULL: no payload). */
static int ivshm_put_record(struct ivshm_sock *vsk, struct iov_iter *iter,
			    u32 len, u32 flags, s64 space)
{
	u64 pos = vsk->tx.pos;
	int err;

	if (iter && len) {
		err = ivshm_ring_write(vsk, pos + sizeof(struct ivshm_record),
				       iter, len);
		if (err)
			return err;
	}
	ivshm_ring_put_record(vsk, pos, len, flags);
	ivshm_tx_publish(vsk, ivshm_record_bytes(len), space);
	return 0;
}

/* SOCK_SEQPACKET: the ring bytes a record takes besides its payload. */
static u32 ivshm_seq_overhead(struct ivshm_sock *vsk)
{
	return vsk->sec ? IVSHM_SEC_OVERHEAD : sizeof(struct ivshm_record);
}

/* SOCK_SEQPACKET: the ring bytes a whole message of @len takes: one
 * record, or on a protected connection one per IVSHM_SEC_PAYLOAD_MAX
 * bytes (and one for an empty message).
 */
static u64 ivshm_seq_msg_bytes(struct ivshm_sock *vsk, size_t len)
{
	u64 full;

	if (!vsk->sec)
		return ivshm_record_bytes(len);
	full = len / IVSHM_SEC_PAYLOAD_MAX;
	len %= IVSHM_SEC_PAYLOAD_MAX;
	return full * ivshm_sec_rec_bytes(IVSHM_SEC_PAYLOAD_MAX) +
	       (len || !full ? ivshm_sec_rec_bytes(len) : 0);
}

/* SOCK_SEQPACKET: writes the next record of a message, as much of the
 * @left bytes of @iter as *@space allows, with @end_flags if that is all
 * of them (@iter NULL, @left 0: an empty record).  Takes its bytes off
 * *@space.  Returns the payload bytes written, or a negative errno.
 */
static ssize_t ivshm_seq_put(struct ivshm_sock *vsk, struct iov_iter *iter,
			     size_t left, u32 end_flags, s64 *space)
{
	ssize_t n;
	int err;

	if (vsk->sec) {
		n = ivshm_sec_put(vsk, iter, left, *space, end_flags);
		if (n >= 0)
			*space -= ivshm_sec_rec_bytes(n);
		return n;
	}
	n = min_t(size_t, left, round_down(*space - sizeof(struct ivshm_record),
					   IVSHM_REC_ALIGN));
	err = ivshm_put_record(vsk, iter, n, n == left ? end_flags : 0,
			       *space);
	if (err)
		return err;
	*space -= ivshm_record_bytes(n);
	return n;
}

/* SOCK_SEQPACKET send: a message that fits the ring goes as one record
 * (protected: as few as the record limit allows), written only once
 * there is room for all of it (so a non-blocking send is all or
 * nothing).  A larger one is cut into records as room appears; if that
 * is interrupted, the message is abandoned: an ABORT record follows
 * before anything else, and the receiver drops what it has.
 */
static int ivshm_seqpacket_sendmsg(struct socket *sock, struct msghdr *msg,
				   size_t len)
{
	DEFINE_WAIT_FUNC(wait, woken_wake_function);
	struct sock *sk = sock->sk;
	struct ivshm_sock *vsk = ivshm_sk(sk);
	size_t left = len;
	ssize_t put;
	u32 ovh;
	u64 whole;
	long timeo;
	s64 space;
	int err = 0;

	if (msg->msg_flags & MSG_OOB)
		return -EOPNOTSUPP;
	if (len > INT_MAX)
		return -EMSGSIZE;

	lock_sock(sk);
	timeo = sock_sndtimeo(sk, msg->msg_flags & MSG_DONTWAIT);
	add_wait_queue(sk_sleep(sk), &wait);
	err = ivshm_send_check(vsk);
	if (err)
		goto out;
	ovh = ivshm_seq_overhead(vsk);
	if (vsk->tx_msg_open) {
		space = ivshm_tx_wait(vsk, ovh, &timeo, &wait);
		if (space < 0) {
			err = space;
			goto out;
		}
		put = ivshm_seq_put(vsk, NULL, 0, IVSHM_REC_ABORT, &space);
		if (put < 0) {
			err = put;
			goto out;
		}
		vsk->tx_msg_open = false;
	}
	whole = ivshm_seq_msg_bytes(vsk, len);
	if (whole <= vsk->tx.size) {
		space = ivshm_tx_wait(vsk, whole, &timeo, &wait);
		if (space < 0) {
			err = space;
			goto out;
		}
		/* The room is there: only a failed seal stops it midway. */
		do {
			put = ivshm_seq_put(vsk, &msg->msg_iter, left,
					    IVSHM_REC_EOR, &space);
			if (put < 0) {
				err = put;
				vsk->tx_msg_open = left != len;
				goto out;
			}
			left -= put;
		} while (left);
		goto out;
	}
	if (!timeo) {
		/* Could never go in one piece without waiting. */
		err = -EMSGSIZE;
		goto out;
	}
	while (left) {
		space = ivshm_tx_wait(vsk, ovh + IVSHM_REC_ALIGN, &timeo,
				      &wait);
		if (space < 0) {
			err = space;
			break;
		}
		put = ivshm_seq_put(vsk, &msg->msg_iter, left, IVSHM_REC_EOR,
				    &space);
		if (put < 0) {
			err = put;
			break;
		}
		left -= put;
		vsk->tx_msg_open = left != 0;
	}
out:
	remove_wait_queue(sk_sleep(sk), &wait);
	ivshm_send_done(vsk, msg, err, false);
	release_sock(sk);
	return err ? err : len;
}

/* Consumes @bytes at our tail; rings if the sender waits for room. */
static void ivshm_rx_consume(struct ivshm_sock *vsk, u32 bytes)
{
	struct ivshm_channel *ch = ivshm_rx_chan(vsk);

	smp_mb();	/* data read before tail */
	vsk->rx.pos += bytes;
	ivshm_wr64(&ch->tail, vsk->rx.pos);
	smp_mb();	/* tail before the wait flag */
	if (ivshm_rd16(&ch->send_waiting))
		ivshm_ring_doorbell(vsk->dev, vsk->peer);
}

/* Why a receive cannot go on, or 0 (not connected: 1 for EOF). */
static int ivshm_recv_check(struct ivshm_sock *vsk)
{
	struct sock *sk = &vsk->sk;

	if (sk->sk_state == TCP_ESTABLISHED)
		return 0;
	if (vsk->reset_err)
		return -vsk->reset_err;
	if (sk->sk_err)
		return sock_error(sk);
	if (sk->sk_state == TCP_CLOSE && (sk->sk_shutdown & RCV_SHUTDOWN))
		return 1;
	return -ENOTCONN;
}

/* Protected receive: opens the record at our tail into the session's
 * buffer; its header may have no flags but @allowed (SOCK_SEQPACKET:
 * IVSHM_REC_FLAGS).  Returns 0, -ECONNRESET for an impossible header, or
 * -EBADMSG when the record fails authentication (counted).
 */
static int ivshm_sec_pull(struct ivshm_sock *vsk, s64 avail, u32 allowed)
{
	struct ivshm_sec *sec = vsk->sec;
	struct ivshm_record *rec = (struct ivshm_record *)sec->rx_buf;
	u32 len, flags;
	int err;

	ivshm_ring_get_record(vsk, vsk->rx.pos, &len, &flags);
	if ((flags & ~allowed) || len > IVSHM_SEC_PAYLOAD_MAX ||
	    ivshm_sec_rec_bytes(len) > avail) {
		ivshm_note_bad(vsk->dev, "record", vsk->rx.index);
		return -ECONNRESET;
	}
	ivshm_ring_copy_out(vsk, vsk->rx.pos, sec->rx_buf,
			    sizeof(*rec) + len + IVSHM_SEC_TAG);
	/* The header authenticated is the one validated. */
	rec->len = cpu_to_le32(len);
	rec->flags = cpu_to_le32(flags);
	ivshm_rx_consume(vsk, ivshm_sec_rec_bytes(len));
	err = ivshm_sec_open(sec, len);
	if (err) {
		if (err == -EBADMSG) {
			atomic64_inc(&vsk->dev->stats.auth_failures);
			ivshm_note_bad(vsk->dev, "record tag", vsk->rx.index);
		}
		return -EBADMSG;
	}
	sec->rx_off = sizeof(*rec);
	sec->rx_len = len;
	sec->rx_flags = flags;
	return 0;
}

/* Protected SOCK_STREAM receive, under lock_sock() with @wait added:
 * plaintext is served from the last record opened; the next record is
 * opened when it is used up.  MSG_PEEK sees at most one record.
 */
static int ivshm_sec_recv(struct ivshm_sock *vsk, struct msghdr *msg,
			  size_t len, int flags, struct wait_queue_entry *wait)
{
	struct ivshm_sec *sec = vsk->sec;
	struct sock *sk = &vsk->sk;
	bool peek = flags & MSG_PEEK;
	size_t copied = 0, target, n, off;
	long timeo;
	s64 avail;
	u32 state;
	int err = 0;

	target = sock_rcvlowat(sk, flags & MSG_WAITALL, len);
	timeo = sock_rcvtimeo(sk, flags & MSG_DONTWAIT);
	while (copied < len) {
		if (vsk->reset_err || sk->sk_err) {
			if (!copied)
				err = vsk->reset_err ? -vsk->reset_err :
				      sock_error(sk);
			break;
		}
		if (!vsk->dev)
			break;
		off = peek ? copied : 0;
		if (sec->rx_len > off) {
			n = min_t(size_t, sec->rx_len - off, len - copied);
			if (copy_to_iter(sec->rx_buf + sec->rx_off + off, n,
					 &msg->msg_iter) != n) {
				if (!copied)
					err = -EFAULT;
				break;
			}
			copied += n;
			if (!peek) {
				sec->rx_off += n;
				sec->rx_len -= n;
			}
			if (copied >= target)
				break;
			continue;
		}
		if (peek && copied)
			break;
		state = ivshm_rx_state(vsk);
		avail = ivshm_rx_avail(vsk);
		if (avail < 0 || state == IVSHM_SEND_RESET) {
			ivshm_reset(vsk, ECONNRESET);
			if (!copied)
				err = -ECONNRESET;
			break;
		}
		if (avail > 0) {
			if (vsk->want_data)
				ivshm_want_data(vsk, false);
			err = ivshm_sec_pull(vsk, avail, 0);
			if (err) {
				/* Nothing of a record that failed is kept. */
				ivshm_reset(vsk, -err);
				if (copied)
					err = 0;
				break;
			}
			continue;
		}
		if (state == IVSHM_SEND_SHUTDOWN || copied >= target ||
		    (sk->sk_shutdown & RCV_SHUTDOWN))
			break;
		if (timeo && ivshm_busy_rx(vsk, 0, state))
			continue;
		ivshm_want_data(vsk, true);
		if (ivshm_rx_avail(vsk) > 0)
			continue;
		err = ivshm_wait_ring(vsk, wait, &timeo, true, vsk->rx.pos);
		if (err) {
			if (copied)
				err = 0;
			break;
		}
	}
	return copied ? copied : err;
}

/* Plaintext bytes readable on a protected stream: what is left of the
 * last record opened, plus the payload of the records in the ring.
 */
static s64 ivshm_sec_inq(struct ivshm_sock *vsk)
{
	s64 avail = ivshm_rx_avail(vsk), bytes = vsk->sec->rx_len;
	u64 pos = vsk->rx.pos, end;
	u32 rlen, rflags;

	if (avail <= 0)
		return avail < 0 ? avail : bytes;
	end = pos + avail;
	while (end - pos >= IVSHM_SEC_OVERHEAD) {
		ivshm_ring_get_record(vsk, pos, &rlen, &rflags);
		if (rlen > IVSHM_SEC_PAYLOAD_MAX ||
		    ivshm_sec_rec_bytes(rlen) > end - pos)
			break;
		bytes += rlen;
		pos += ivshm_sec_rec_bytes(rlen);
	}
	return bytes;
}

/* SIOCOUTQ on a protected stream: the payload of our records the peer
 * has not taken out of the ring yet (it may hold more in its buffer).
 * Walks our own headers from the peer's tail; informational, so a tail
 * off a record boundary only gives a wrong (bounded) count.
 */
static s64 ivshm_sec_outq(struct ivshm_sock *vsk)
{
	struct ivshm_record rec;
	void *base = vsk->dev->shm + vsk->tx.offset;
	u64 pos = ivshm_rd64(&ivshm_tx_chan(vsk)->tail);
	s64 bytes = 0;
	u32 len;

	if (pos > vsk->tx.pos || vsk->tx.pos - pos > vsk->tx.size)
		return 0;
	while (vsk->tx.pos - pos >= IVSHM_SEC_OVERHEAD) {
		memcpy(&rec, base + ivshm_ring_off(&vsk->tx, pos), sizeof(rec));
		len = le32_to_cpu(rec.len);
		if (len > IVSHM_SEC_PAYLOAD_MAX ||
		    ivshm_sec_rec_bytes(len) > vsk->tx.pos - pos)
			break;
		bytes += len;
		pos += ivshm_sec_rec_bytes(len);
	}
	return bytes;
}

static int ivshm_stream_recvmsg(struct socket *sock, struct msghdr *msg,
				size_t len, int flags)
{
	DEFINE_WAIT_FUNC(wait, woken_wake_function);
	struct sock *sk = sock->sk;
	struct ivshm_sock *vsk = ivshm_sk(sk);
	bool peek = flags & MSG_PEEK;
	size_t copied = 0, target;
	long timeo;
	s64 avail;
	u32 state;
	int err = 0;

	if (flags & MSG_OOB)
		return -EOPNOTSUPP;

	lock_sock(sk);
	err = ivshm_recv_check(vsk);
	if (err) {
		err = err > 0 ? 0 : err;
		goto out;
	}
	if (vsk->sec) {
		add_wait_queue(sk_sleep(sk), &wait);
		err = ivshm_sec_recv(vsk, msg, len, flags, &wait);
		remove_wait_queue(sk_sleep(sk), &wait);
		if (vsk->dev && sk->sk_state == TCP_ESTABLISHED)
			ivshm_want_data(vsk, true);
		release_sock(sk);
		return err;
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
			if (!peek)
				ivshm_rx_consume(vsk, n);
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
		err = ivshm_wait_ring(vsk, &wait, &timeo, true,
				      vsk->rx.pos + (peek ? copied : 0));
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

/* Reads the record at our tail, which must be complete (a sender
 * publishes whole records).  Returns false for an impossible one.
 */
static bool ivshm_next_record(struct ivshm_sock *vsk, s64 avail, u32 *len,
			      u32 *flags)
{
	ivshm_ring_get_record(vsk, vsk->rx.pos, len, flags);
	if ((*flags & ~IVSHM_REC_FLAGS) ||
	    *len > vsk->rx.size - sizeof(struct ivshm_record) ||
	    ivshm_record_bytes(*len) > avail) {
		ivshm_note_bad(vsk->dev, "record", vsk->rx.index);
		return false;
	}
	return true;
}

/* SOCK_SEQPACKET: the record at our tail; on a protected connection it
 * is opened into the session's buffer and held there until consumed.
 * Returns 0, or the negative errno to reset the connection with.
 */
static int ivshm_seq_next(struct ivshm_sock *vsk, s64 avail, u32 *len,
			  u32 *flags)
{
	struct ivshm_sec *sec = vsk->sec;
	int err;

	if (!sec)
		return ivshm_next_record(vsk, avail, len, flags) ? 0 :
		       -ECONNRESET;
	if (!sec->rx_held) {
		err = ivshm_sec_pull(vsk, avail, IVSHM_REC_FLAGS);
		if (err)
			return err;
		sec->rx_held = true;
	}
	*len = sec->rx_len;
	*flags = sec->rx_flags;
	return 0;
}

/* SOCK_SEQPACKET: copies the first @n payload bytes of the record at our
 * tail (ivshm_seq_next()) into @iter.
 */
static int ivshm_seq_read(struct ivshm_sock *vsk, struct iov_iter *iter,
			  size_t n)
{
	struct ivshm_sec *sec = vsk->sec;

	if (!sec)
		return ivshm_ring_read(vsk, vsk->rx.pos +
				       sizeof(struct ivshm_record), iter, n);
	if (copy_to_iter(sec->rx_buf + sec->rx_off, n, iter) != n)
		return -EFAULT;
	return 0;
}

/* SOCK_SEQPACKET: done with the record at our tail, of @len bytes. */
static void ivshm_seq_consume(struct ivshm_sock *vsk, u32 len)
{
	if (vsk->sec) {
		/* Its ring bytes went when it was opened. */
		vsk->sec->rx_held = false;
		vsk->sec->rx_len = 0;
		return;
	}
	ivshm_rx_consume(vsk, ivshm_record_bytes(len));
}

/* SOCK_SEQPACKET receive: one message per call, MSG_EOR when its end was
 * reached, MSG_TRUNC when it did not fit (the rest is dropped).  A message
 * larger than the ring arrives in records and is copied as they come.
 * With MSG_TRUNC in @flags the message's full length is returned.
 */
static int ivshm_seqpacket_recvmsg(struct socket *sock, struct msghdr *msg,
				   size_t len, int flags)
{
	DEFINE_WAIT_FUNC(wait, woken_wake_function);
	struct sock *sk = sock->sk;
	struct ivshm_sock *vsk = ivshm_sk(sk);
	bool peek = flags & MSG_PEEK;
	size_t copied = 0, msglen = 0, n;
	bool eor = false, trunc = false;
	u32 rlen, rflags, state;
	long timeo;
	s64 avail;
	int err;

	if (flags & MSG_OOB)
		return -EOPNOTSUPP;

	lock_sock(sk);
	err = ivshm_recv_check(vsk);
	if (err) {
		err = err > 0 ? 0 : err;
		goto out;
	}
	timeo = sock_rcvtimeo(sk, flags & MSG_DONTWAIT);
	add_wait_queue(sk_sleep(sk), &wait);
	for (;;) {
		if (vsk->reset_err || sk->sk_err) {
			err = vsk->reset_err ? -vsk->reset_err : sock_error(sk);
			break;
		}
		if (!vsk->dev)
			break;
		state = ivshm_rx_state(vsk);
		avail = ivshm_rx_avail(vsk);
		if (avail < 0 || state == IVSHM_SEND_RESET) {
			ivshm_reset(vsk, ECONNRESET);
			err = -ECONNRESET;
			break;
		}
		if (avail >= ivshm_seq_overhead(vsk) ||
		    (vsk->sec && vsk->sec->rx_held)) {
			err = ivshm_seq_next(vsk, avail, &rlen, &rflags);
			if (err) {
				/* No part of a message cut by a bad record
				 * is returned as one.
				 */
				ivshm_reset(vsk, -err);
				copied = 0;
				msglen = 0;
				break;
			}
			if (vsk->want_data)
				ivshm_want_data(vsk, false);
			if (rflags & IVSHM_REC_ABORT) {
				/* The sender gave up on this message. */
				ivshm_seq_consume(vsk, 0);
				iov_iter_revert(&msg->msg_iter, copied);
				copied = 0;
				msglen = 0;
				trunc = false;
				vsk->rx_discard = false;
				/* A sender can abort records as fast as we
				 * drop them: let others run meanwhile.
				 */
				cond_resched();
				continue;
			}
			n = 0;
			if (!vsk->rx_discard) {
				n = min_t(size_t, rlen, len - copied);
				err = ivshm_seq_read(vsk, &msg->msg_iter, n);
				if (err)
					break;	/* nothing consumed */
				copied += n;
				msglen += rlen;
				trunc |= n < rlen;
			}
			if (peek) {
				eor = rflags & IVSHM_REC_EOR;
				break;
			}
			ivshm_seq_consume(vsk, rlen);
			if (rflags & IVSHM_REC_EOR) {
				if (vsk->rx_discard) {
					vsk->rx_discard = false;
					continue;	/* now the next message */
				}
				eor = true;
				break;
			}
			continue;
		}
		if (state == IVSHM_SEND_SHUTDOWN ||
		    (sk->sk_shutdown & RCV_SHUTDOWN))
			break;
		if (timeo && ivshm_busy_rx(vsk, 0, state))
			continue;
		ivshm_want_data(vsk, true);
		if (ivshm_rx_avail(vsk) > 0)
			continue;
		err = ivshm_wait_ring(vsk, &wait, &timeo, true, vsk->rx.pos);
		if (err)
			break;
	}
	remove_wait_queue(sk_sleep(sk), &wait);
	if (vsk->dev && sk->sk_state == TCP_ESTABLISHED)
		ivshm_want_data(vsk, true);
	/* Cut short after MSG_TRUNC: the rest of the message is dropped.
	 * Cut short otherwise: the rest comes with the next recv().
	 */
	if (!peek && trunc && !eor)
		vsk->rx_discard = true;
	if (eor || copied || msglen) {
		if (eor)
			msg->msg_flags |= MSG_EOR;
		if (trunc)
			msg->msg_flags |= MSG_TRUNC;
		err = (flags & MSG_TRUNC) ? msglen : copied;
	}
out:
	release_sock(sk);
	return err;
}

/* Bytes of the next message present in a SOCK_SEQPACKET ring (and, on a
 * protected connection, in the record held open; the headers in the
 * ring are not authenticated yet: informational).
 */
static s64 ivshm_seqpacket_inq(struct ivshm_sock *vsk)
{
	struct ivshm_sec *sec = vsk->sec;
	const u32 ovh = ivshm_seq_overhead(vsk);
	s64 avail = ivshm_rx_avail(vsk), bytes = 0;
	u64 pos = vsk->rx.pos, end;
	u32 rlen, rflags, rbytes;

	if (sec && sec->rx_held) {
		if (!(sec->rx_flags & IVSHM_REC_ABORT))
			bytes = sec->rx_len;
		if (sec->rx_flags & IVSHM_REC_EOR)
			return bytes;
	}
	if (avail <= 0)
		return avail < 0 ? avail : bytes;
	end = pos + avail;
	/* Bounded: each record takes at least a header. */
	while (end - pos >= ovh) {
		ivshm_ring_get_record(vsk, pos, &rlen, &rflags);
		if (rlen > vsk->rx.size)
			break;
		rbytes = sec ? ivshm_sec_rec_bytes(rlen) :
			 ivshm_record_bytes(rlen);
		if (rbytes > end - pos)
			break;
		if (rflags & IVSHM_REC_ABORT)
			bytes = 0;
		else
			bytes += rlen;
		pos += rbytes;
		if (rflags & IVSHM_REC_EOR)
			break;
	}
	return bytes;
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
		if (avail > 0 && avail >= sock_rcvlowat(sk, 0, INT_MAX))
			mask |= EPOLLIN | EPOLLRDNORM;
		if (vsk->sec && (vsk->sec->rx_len || vsk->sec->rx_held))
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
	if (sk->sk_type == SOCK_DGRAM) {
		if (sock->state != SS_CONNECTED) {
			err = -ENOTCONN;
			goto out;
		}
		sk->sk_shutdown |= mode;
		sk->sk_state_change(sk);
		goto out;
	}
	if (sk->sk_state == TCP_LISTEN) {
		/* As in TCP: SHUT_RD stops listening, SHUT_WR does nothing. */
		if (mode & RCV_SHUTDOWN) {
			ivshm_stop_listening(vsk);
			sk->sk_state_change(sk);
		}
		goto out;
	}
	if (sk->sk_state != TCP_ESTABLISHED) {
		err = -ENOTCONN;
		goto out;
	}
	sk->sk_shutdown |= mode;
	if (mode & SEND_SHUTDOWN)
		ivshm_send_eof(vsk);
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
	case IOCTL_IVSHMEM_RESOLVE_IPV4:
	case IOCTL_IVSHMEM_PEER_IPV4:
		return ivshm_addr_ioctl(cmd, (void __user *)arg);
	case IOCTL_IVSHMEM_SET_KEY:
		return ivshm_sec_key_ioctl((void __user *)arg);
	case SIOCINQ:
	case SIOCOUTQ:
		if (sk->sk_type == SOCK_DGRAM) {
			struct sk_buff *skb;

			/* The next datagram's size; nothing waits to go out. */
			spin_lock_bh(&sk->sk_receive_queue.lock);
			skb = skb_peek(&sk->sk_receive_queue);
			if (skb && cmd == SIOCINQ)
				n = skb->len;
			spin_unlock_bh(&sk->sk_receive_queue.lock);
			return put_user((int)n, uarg);
		}
		lock_sock(sk);
		if (sk->sk_state == TCP_LISTEN) {
			release_sock(sk);
			return -EINVAL;
		}
		if (sk->sk_state == TCP_ESTABLISHED && vsk->dev) {
			if (cmd == SIOCOUTQ && vsk->sec)
				n = vsk->tx.size - ivshm_sec_outq(vsk);
			else if (cmd == SIOCOUTQ)
				n = ivshm_ring_room(vsk->dev, &vsk->tx);
			else if (sk->sk_type == SOCK_SEQPACKET)
				n = ivshm_seqpacket_inq(vsk);
			else if (vsk->sec)
				n = ivshm_sec_inq(vsk);
			else
				n = ivshm_rx_avail(vsk);
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

/* Options at our level (the family number, as for AF_VSOCK).  Connection
 * options do not apply to datagram sockets: ENOPROTOOPT, like any option
 * a socket does not have.
 */
static int ivshm_setsockopt(struct socket *sock, int level, int optname,
			    sockptr_t optval, unsigned int optlen)
{
	struct sock *sk = sock->sk;
	int val, err = 0;
	u64 ms;

	/* Of the options, only the security policy is a datagram socket's. */
	if (level != family ||
	    (sk->sk_type == SOCK_DGRAM && optname != IVSHMEM_SECURITY))
		return -ENOPROTOOPT;
	switch (optname) {
	case IVSHMEM_CONNECT_TIMEOUT_MS:
		if (optlen < sizeof(ms))
			return -EINVAL;
		if (copy_from_sockptr(&ms, optval, sizeof(ms)))
			return -EFAULT;
		if (!ms || ms > UINT_MAX)
			return -EINVAL;
		lock_sock(sk);
		ivshm_sk(sk)->connect_timeout_ms = ms;
		release_sock(sk);
		return 0;
	case IVSHMEM_SECURITY:
		if (optlen < sizeof(val))
			return -EINVAL;
		if (copy_from_sockptr(&val, optval, sizeof(val)))
			return -EFAULT;
		if (val < IVSHMEM_SECURITY_OFF || val > IVSHMEM_SECURITY_REQUIRE)
			return -EINVAL;
		lock_sock(sk);
		if (sk->sk_state == TCP_CLOSE || sk->sk_state == TCP_LISTEN)
			WRITE_ONCE(ivshm_sk(sk)->sec_policy, val);
		else
			err = -EISCONN;
		release_sock(sk);
		return err;
	default:
		return -ENOPROTOOPT;
	}
}

static int ivshm_getsockopt(struct socket *sock, int level, int optname,
			    char __user *optval, int __user *optlen)
{
	struct sock *sk = sock->sk;
	struct ivshm_sock *vsk = ivshm_sk(sk);
	struct ivshmem_peer_info info;
	const void *val;
	int len, size, ival;
	u64 ms;

	/* Of the options, only the security policy is a datagram socket's. */
	if (level != family ||
	    (sk->sk_type == SOCK_DGRAM && optname != IVSHMEM_SECURITY))
		return -ENOPROTOOPT;
	if (get_user(len, optlen))
		return -EFAULT;
	switch (optname) {
	case IVSHMEM_CONNECT_TIMEOUT_MS:
		ms = READ_ONCE(vsk->connect_timeout_ms);
		val = &ms;
		size = sizeof(ms);
		break;
	case IVSHMEM_PEER_INFO:
		memset(&info, 0, sizeof(info));
		lock_sock(sk);
		if (sk->sk_state != TCP_ESTABLISHED) {
			release_sock(sk);
			return -ENOTCONN;
		}
		info.peer = vsk->remote.sivshm_peer;
		info.pid = vsk->peer_pid;
		info.port = vsk->remote.sivshm_port;
		info.region = vsk->remote.sivshm_region;
		release_sock(sk);
		val = &info;
		size = sizeof(info);
		break;
	case IVSHMEM_SECURITY:
		ival = READ_ONCE(vsk->sec_policy);
		val = &ival;
		size = sizeof(ival);
		break;
	case IVSHMEM_PROTECTED:
		lock_sock(sk);
		if (sk->sk_state != TCP_ESTABLISHED) {
			release_sock(sk);
			return -ENOTCONN;
		}
		ival = !!vsk->sec;
		release_sock(sk);
		val = &ival;
		size = sizeof(ival);
		break;
	default:
		return -ENOPROTOOPT;
	}
	if (len < size)
		return -EINVAL;
	if (copy_to_user(optval, val, size) || put_user(size, optlen))
		return -EFAULT;
	return 0;
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

/* ---- datagrams ---- */

/* Where a received datagram came from, kept in skb->cb. */
struct ivshm_dgram_cb {
	u32 peer;
	u32 port;
	u16 region;
};

static struct ivshm_dgram_cb *ivshm_dgram_cb(struct sk_buff *skb)
{
	BUILD_BUG_ON(sizeof(struct ivshm_dgram_cb) > sizeof(skb->cb));
	return (struct ivshm_dgram_cb *)skb->cb;
}

/* The datagram socket on @port of region @index that takes datagrams
 * from @src_peer:@src_port, with a reference; NULL if there is none.
 */
static struct sock *ivshm_find_dgram(u32 port, unsigned int index,
				     u32 src_peer, u32 src_port)
{
	struct sock *found = NULL;
	struct ivshm_sock *vsk;

	spin_lock_bh(&ivshm_bind_lock);
	hlist_for_each_entry(vsk, ivshm_bind_bucket(port), bind_node) {
		if (vsk->local.sivshm_port != port ||
		    vsk->sk.sk_type != SOCK_DGRAM)
			continue;
		if (vsk->local.sivshm_region != IVSHMEM_REGION_ANY &&
		    vsk->local.sivshm_region != index)
			break;
		if (vsk->dgram_connected &&
		    (vsk->remote.sivshm_peer != src_peer ||
		     vsk->remote.sivshm_port != src_port ||
		     vsk->remote.sivshm_region != index))
			break;
		found = &vsk->sk;
		sock_hold(found);
		break;
	}
	spin_unlock_bh(&ivshm_bind_lock);
	return found;
}

/**
 * ivshm_dgram_deliver() - hand a received datagram to its socket
 * @dev: the region it came over
 * @src_peer: the sending guest
 * @src_port: the sending socket's port
 * @dst_port: the destination port
 * @skb: the payload; consumed
 *
 * Without a socket for it, or with that socket's receive buffer full, the
 * datagram is dropped and counted; so is one from another guest (never
 * protected) to a socket whose policy is require.
 */
void ivshm_dgram_deliver(struct ivshm_dev *dev, u32 src_peer, u32 src_port,
			 u32 dst_port, struct sk_buff *skb)
{
	struct ivshm_dgram_cb *cb = ivshm_dgram_cb(skb);
	struct sock *sk;

	sk = ivshm_find_dgram(dst_port, dev->index, src_peer, src_port);
	if (sk && src_peer != dev->self &&
	    READ_ONCE(ivshm_sk(sk)->sec_policy) == IVSHMEM_SECURITY_REQUIRE) {
		sock_put(sk);
		sk = NULL;
	}
	if (!sk) {
		atomic64_inc(&dev->stats.dgram_dropped_no_socket);
		kfree_skb(skb);
		return;
	}
	cb->peer = src_peer;
	cb->port = src_port;
	cb->region = dev->index;
	if (sock_queue_rcv_skb(sk, skb) < 0) {
		atomic64_inc(&dev->stats.dgram_dropped_rcvbuf);
		kfree_skb(skb);
	}
	sock_put(sk);
}

/* A datagram to our own guest: straight into the receiving socket. */
static int ivshm_dgram_local(struct ivshm_dev *dev, u32 src_port,
			     u32 dst_port, struct msghdr *msg, size_t len)
{
	struct sk_buff *skb = alloc_skb(len, GFP_KERNEL);

	if (!skb)
		return -ENOBUFS;
	if (!copy_from_iter_full(skb_put(skb, len), len, &msg->msg_iter)) {
		kfree_skb(skb);
		return -EFAULT;
	}
	atomic64_inc(&dev->stats.dgram_sent);
	atomic64_inc(&dev->stats.dgram_received);
	ivshm_dgram_deliver(dev, dev->self, src_port, dst_port, skb);
	return 0;
}

/* Checks a datagram destination; fills @dst. */
static int ivshm_dgram_dest(struct sockaddr *uaddr, int len,
			    struct sockaddr_ivshmem *dst)
{
	struct sockaddr_ivshmem *addr;
	int err;

	err = ivshm_check_addr(uaddr, len, &addr);
	if (err)
		return err;
	if (addr->sivshm_port == IVSHMEM_PORT_ANY ||
	    addr->sivshm_peer == IVSHMEM_PEER_ANY)
		return -EINVAL;
	*dst = *addr;
	return 0;
}

static int ivshm_dgram_sendmsg(struct socket *sock, struct msghdr *msg,
			       size_t len)
{
	struct sock *sk = sock->sk;
	struct ivshm_sock *vsk = ivshm_sk(sk);
	struct sockaddr_ivshmem dst;
	struct ivshm_dev *dev;
	u32 src_port;
	long timeo;
	int err;

	if (msg->msg_flags & MSG_OOB)
		return -EOPNOTSUPP;
	if (msg->msg_name) {
		err = ivshm_dgram_dest(msg->msg_name, msg->msg_namelen, &dst);
		if (err)
			return err;
	}
	if (len > IVSHMEM_DGRAM_MAX)
		return -EMSGSIZE;

	lock_sock(sk);
	err = 0;
	if (!msg->msg_name) {
		if (vsk->dgram_connected)
			dst = vsk->remote;
		else
			err = -EDESTADDRREQ;
	}
	if (!err && (sk->sk_shutdown & SEND_SHUTDOWN))
		err = -EPIPE;
	if (!err && !vsk->bound)
		err = ivshm_bind_port(vsk, IVSHMEM_PORT_ANY);
	src_port = vsk->local.sivshm_port;
	release_sock(sk);
	if (err)
		return err;
	timeo = sock_sndtimeo(sk, msg->msg_flags & MSG_DONTWAIT);

	mutex_lock(&ivshm_devices_mutex);
	dev = ivshm_dev_get_by_index(dst.sivshm_region);
	if (!dev) {
		mutex_unlock(&ivshm_devices_mutex);
		return -ENETUNREACH;
	}
	if (dst.sivshm_peer == dev->self) {
		err = ivshm_dgram_local(dev, src_port, dst.sivshm_port, msg,
					len);
		mutex_unlock(&ivshm_devices_mutex);
		return err ? err : len;
	}
	if (dst.sivshm_peer >= IVSHM_MAX_PEERS) {
		mutex_unlock(&ivshm_devices_mutex);
		return -EHOSTUNREACH;
	}
	/* Datagrams to other guests are never protected: security=require
	 * forbids them (those within the guest never touch the region).
	 */
	if (READ_ONCE(vsk->sec_policy) == IVSHMEM_SECURITY_REQUIRE) {
		mutex_unlock(&ivshm_devices_mutex);
		return -EPROTONOSUPPORT;
	}
	/* Holding the device's datagram users keeps it here. */
	ivshm_dgram_hold(dev);
	mutex_unlock(&ivshm_devices_mutex);
	err = ivshm_dgram_xmit(dev, dst.sivshm_peer, src_port,
			       dst.sivshm_port, &msg->msg_iter, len, &timeo);
	ivshm_dgram_unhold(dev);
	if (err == -ERESTARTSYS)
		err = sock_intr_errno(timeo);
	return err ? err : len;
}

static int ivshm_dgram_recvmsg(struct socket *sock, struct msghdr *msg,
			       size_t len, int flags)
{
	struct sock *sk = sock->sk;
	struct ivshm_dgram_cb *cb;
	struct sk_buff *skb;
	size_t copied;
	int err;

	if (flags & MSG_OOB)
		return -EOPNOTSUPP;
	skb = skb_recv_datagram(sk, flags, &err);
	if (!skb)
		return err;
	copied = min_t(size_t, skb->len, len);
	if (copied < skb->len)
		msg->msg_flags |= MSG_TRUNC;
	err = skb_copy_datagram_msg(skb, 0, msg, copied);
	if (!err) {
		cb = ivshm_dgram_cb(skb);
		if (msg->msg_name) {
			DECLARE_SOCKADDR(struct sockaddr_ivshmem *, addr,
					 msg->msg_name);

			ivshm_init_addr(addr);
			addr->sivshm_port = cb->port;
			addr->sivshm_peer = cb->peer;
			addr->sivshm_region = cb->region;
			msg->msg_namelen = sizeof(*addr);
		}
		err = (flags & MSG_TRUNC) ? skb->len : copied;
	}
	skb_free_datagram(sk, skb);
	return err;
}

/* connect() on a datagram socket: sets (or, with AF_UNSPEC, clears) the
 * default destination, which is then the only source accepted.
 */
static int ivshm_dgram_connect(struct socket *sock, struct sockaddr *uaddr,
			       int len, int flags)
{
	struct sock *sk = sock->sk;
	struct ivshm_sock *vsk = ivshm_sk(sk);
	struct sockaddr_ivshmem dst;
	struct ivshm_dev *dev;
	int err;

	if (len >= (int)sizeof(sa_family_t) && uaddr->sa_family == AF_UNSPEC) {
		lock_sock(sk);
		spin_lock_bh(&ivshm_bind_lock);
		vsk->dgram_connected = false;
		ivshm_init_addr(&vsk->remote);
		spin_unlock_bh(&ivshm_bind_lock);
		sock->state = SS_UNCONNECTED;
		sk->sk_state = TCP_CLOSE;
		release_sock(sk);
		return 0;
	}
	err = ivshm_dgram_dest(uaddr, len, &dst);
	if (err)
		return err;
	mutex_lock(&ivshm_devices_mutex);
	dev = ivshm_dev_get_by_index(dst.sivshm_region);
	if (!dev)
		err = -ENETUNREACH;
	else if (dst.sivshm_peer != dev->self &&
		 !ivshm_peer_active(dev, dst.sivshm_peer, NULL))
		err = -EHOSTUNREACH;
	else if (dst.sivshm_peer != dev->self &&
		 READ_ONCE(vsk->sec_policy) == IVSHMEM_SECURITY_REQUIRE)
		err = -EPROTONOSUPPORT;	/* see ivshm_dgram_sendmsg() */
	else
		dst.sivshm_region = dev->index;
	mutex_unlock(&ivshm_devices_mutex);
	if (err)
		return err;

	lock_sock(sk);
	if (!vsk->bound)
		err = ivshm_bind_port(vsk, IVSHMEM_PORT_ANY);
	if (!err) {
		spin_lock_bh(&ivshm_bind_lock);
		vsk->remote = dst;
		vsk->dgram_connected = true;
		spin_unlock_bh(&ivshm_bind_lock);
		sock->state = SS_CONNECTED;
		sk->sk_state = TCP_ESTABLISHED;
	}
	release_sock(sk);
	return err;
}

static const struct proto_ops ivshm_dgram_ops_template = {
	.owner = THIS_MODULE,
	.release = ivshm_release,
	.bind = ivshm_bind,
	.connect = ivshm_dgram_connect,
	.socketpair = sock_no_socketpair,
	.accept = sock_no_accept,
	.getname = ivshm_getname,
	.poll = datagram_poll,
	.ioctl = ivshm_ioctl,
	.listen = sock_no_listen,
	.shutdown = ivshm_shutdown,
	.setsockopt = ivshm_setsockopt,
	.getsockopt = ivshm_getsockopt,
	.sendmsg = ivshm_dgram_sendmsg,
	.recvmsg = ivshm_dgram_recvmsg,
	.mmap = sock_no_mmap,
	.sendpage = sock_no_sendpage,
};

static const struct proto_ops ivshm_seqpacket_ops_template = {
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
	.sendmsg = ivshm_seqpacket_sendmsg,
	.recvmsg = ivshm_seqpacket_recvmsg,
	.mmap = sock_no_mmap,
	.sendpage = sock_no_sendpage,
};

/* ---- sock_diag (used by af_ivshmem_diag) ---- */

/**
 * ivshm_family() - the address family number the module registered
 *
 * Return: the value of the ``family`` module parameter.
 */
int ivshm_family(void)
{
	return family;
}
EXPORT_SYMBOL_GPL(ivshm_family);

/**
 * ivshm_diag_next() - walk every AF_IVSHMEM socket, for a sock_diag dump
 * @prev: the socket the previous call returned, whose reference this call
 *	drops; or NULL to start from @pos
 * @pos: in: with @prev NULL, the first position to return; out: the
 *	position after the socket returned
 *
 * Sockets are listed in creation order, each at a position that is never
 * reused, so a dump can stop anywhere and resume from a saved @pos in a
 * later call: sockets gone in between are skipped, new ones come last.
 * Sockets being destroyed are skipped.  Process context: the caller may
 * sleep between calls (e.g. in lock_sock()), as it holds a reference on
 * the socket and no lock.
 *
 * Return: the next socket, with a reference the caller drops with
 * sock_put() unless it passes the socket back as @prev; NULL at the end.
 */
struct sock *ivshm_diag_next(struct sock *prev, unsigned long *pos)
{
	struct sock *found = NULL;
	struct ivshm_sock *vsk;

	spin_lock_bh(&ivshm_all_lock);
	/* @prev is held, so it is still on the list. */
	if (prev)
		vsk = list_next_entry(ivshm_sk(prev), all_node);
	else
		vsk = list_first_entry(&ivshm_all_socks, struct ivshm_sock,
				       all_node);
	list_for_each_entry_from(vsk, &ivshm_all_socks, all_node) {
		if (vsk->diag_pos < *pos ||
		    !refcount_inc_not_zero(&vsk->sk.sk_refcnt))
			continue;
		found = &vsk->sk;
		*pos = vsk->diag_pos + 1;
		break;
	}
	spin_unlock_bh(&ivshm_all_lock);
	/* The last reference: the destructor takes ivshm_all_lock. */
	if (prev)
		sock_put(prev);
	return found;
}
EXPORT_SYMBOL_GPL(ivshm_diag_next);

/* Bytes from @tail to @head in a ring of @size.  @head or @tail comes
 * from the region: anything beyond the ring is shown as a full ring.
 */
static u32 ivshm_diag_ring_bytes(u64 head, u64 tail, u32 size)
{
	return min_t(u64, head - tail, size);
}

/* Payload bytes queued on a datagram socket. */
static u32 ivshm_diag_dgram_bytes(struct sock *sk)
{
	struct sk_buff_head *q = &sk->sk_receive_queue;
	struct sk_buff *skb;
	unsigned long flags;
	u64 bytes = 0;

	spin_lock_irqsave(&q->lock, flags);
	skb_queue_walk(q, skb)
		bytes += skb->len;
	spin_unlock_irqrestore(&q->lock, flags);
	return min_t(u64, bytes, U32_MAX);
}

/* The state shown for a connected stream or seqpacket socket, from which
 * directions are shut down.  Under lock_sock(), attached to a device.
 */
static u8 ivshm_diag_conn_state(struct ivshm_sock *vsk)
{
	u32 peer = ivshm_rx_state(vsk);
	bool ours = vsk->sk.sk_shutdown & SEND_SHUTDOWN;

	if (peer == IVSHM_SEND_RESET)
		return TCP_CLOSE;	/* ended: the event work resets us */
	if (peer == IVSHM_SEND_SHUTDOWN)
		return ours ? TCP_CLOSING : TCP_CLOSE_WAIT;
	return ours ? TCP_FIN_WAIT2 : TCP_ESTABLISHED;
}

/* Fills @msg and @chans for a stream or seqpacket socket that has
 * channels.  Under lock_sock(), attached to a device.
 */
static void ivshm_diag_fill_conn(struct ivshm_sock *vsk,
				 struct ivshmem_diag_msg *msg,
				 struct ivshmem_diag_channels *chans)
{
	struct ivshm_dev *dev = vsk->dev;
	u64 head, tail;

	msg->idiag_remote_peer = vsk->remote.sivshm_peer;
	msg->idiag_remote_port = vsk->remote.sivshm_port;
	tail = ivshm_rd64(&ivshm_tx_chan(vsk)->tail);
	msg->idiag_wqueue = ivshm_diag_ring_bytes(vsk->tx.pos, tail,
						  vsk->tx.size);
	chans->tx_index = vsk->tx.index;
	chans->tx_generation = vsk->tx.generation;
	chans->tx_offset = vsk->tx.offset;
	chans->tx_size = vsk->tx.size;
	if (vsk->sk.sk_state != TCP_ESTABLISHED) {
		msg->idiag_state = vsk->sk.sk_state;	/* TCP_SYN_SENT */
		return;
	}
	msg->idiag_state = ivshm_diag_conn_state(vsk);
	msg->idiag_peer_pid = vsk->peer_pid;
	head = ivshm_rd64(&ivshm_chan(dev, vsk->rx.index)->head);
	msg->idiag_rqueue = ivshm_diag_ring_bytes(head, vsk->rx.pos,
						  vsk->rx.size);
	chans->rx_index = vsk->rx.index;
	chans->rx_generation = vsk->rx.generation;
	chans->rx_offset = vsk->rx.offset;
	chans->rx_size = vsk->rx.size;
}

/**
 * ivshm_diag_fill() - describe a socket for sock_diag
 * @sk: an AF_IVSHMEM socket the caller holds a reference on
 * @msg: filled, but for the fields that belong to the request rather than
 *	to the protocol: idiag_family, idiag_ino, idiag_uid and idiag_cookie
 *	are left zero
 * @chans: the socket's channels; both indices are
 *	%IVSHMEM_DIAG_NO_CHANNEL for a socket without any
 *
 * Takes the socket lock, so the channels are stable and mapped: may
 * sleep.  Values from the region (ring positions, the peer's sender
 * state) are read once and clamped.  struct ivshm_sock stays private to
 * this file: af_ivshmem_diag only sees the uapi structures.
 *
 * Return: 0, or -ENOENT for a socket that is neither bound nor connected
 * (not listed).
 */
int ivshm_diag_fill(struct sock *sk, struct ivshmem_diag_msg *msg,
		    struct ivshmem_diag_channels *chans)
{
	struct ivshm_sock *vsk = ivshm_sk(sk);
	bool conn;

	memset(msg, 0, sizeof(*msg));
	memset(chans, 0, sizeof(*chans));
	chans->tx_index = IVSHMEM_DIAG_NO_CHANNEL;
	chans->rx_index = IVSHMEM_DIAG_NO_CHANNEL;

	lock_sock(sk);
	if (sk->sk_type == SOCK_DGRAM)
		conn = vsk->dgram_connected;
	else
		conn = vsk->dev && (sk->sk_state == TCP_ESTABLISHED ||
				    sk->sk_state == TCP_SYN_SENT);
	if (!vsk->bound && !conn) {
		release_sock(sk);
		return -ENOENT;
	}
	msg->idiag_type = sk->sk_type;
	msg->idiag_shutdown = sk->sk_shutdown & SHUTDOWN_MASK;
	msg->idiag_region = vsk->local.sivshm_region;
	if (vsk->sec)
		msg->idiag_flags |= IVSHMEM_DIAG_F_SECURE;
	if (vsk->reset_err)
		msg->idiag_flags |= IVSHMEM_DIAG_F_RESET;
	msg->idiag_local_peer = vsk->local.sivshm_peer;
	msg->idiag_local_port = vsk->local.sivshm_port;
	msg->idiag_remote_peer = IVSHMEM_PEER_ANY;
	msg->idiag_remote_port = IVSHMEM_PORT_ANY;

	if (sk->sk_type == SOCK_DGRAM) {
		msg->idiag_state = conn ? TCP_ESTABLISHED : TCP_CLOSE;
		if (conn) {
			msg->idiag_remote_peer = vsk->remote.sivshm_peer;
			msg->idiag_remote_port = vsk->remote.sivshm_port;
		}
		msg->idiag_rqueue = ivshm_diag_dgram_bytes(sk);
	} else if (sk->sk_state == TCP_LISTEN) {
		msg->idiag_state = TCP_LISTEN;
		msg->idiag_rqueue = READ_ONCE(sk->sk_ack_backlog);
		msg->idiag_wqueue = READ_ONCE(sk->sk_max_ack_backlog);
	} else if (conn) {
		ivshm_diag_fill_conn(vsk, msg, chans);
	} else {
		msg->idiag_state = TCP_CLOSE;
	}
	release_sock(sk);
	return 0;
}
EXPORT_SYMBOL_GPL(ivshm_diag_fill);

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
	case SOCK_SEQPACKET:
		sock->ops = ivshm_seqpacket_ops;
		break;
	case SOCK_DGRAM:
		sock->ops = ivshm_dgram_ops;
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

/* A writable copy of a const ops template, given the run-time family. */
static const struct proto_ops *ivshm_ops_copy(const struct proto_ops *tmpl)
{
	void *ops = kmemdup(tmpl, sizeof(*tmpl), GFP_KERNEL);

	if (ops)
		*(int *)(ops + offsetof(typeof(*tmpl), family)) = family;
	return ops;
}

static void ivshm_ops_free(void)
{
	kfree(ivshm_stream_ops);
	kfree(ivshm_seqpacket_ops);
	kfree(ivshm_dgram_ops);
	ivshm_stream_ops = NULL;
	ivshm_seqpacket_ops = NULL;
	ivshm_dgram_ops = NULL;
}

int ivshm_sock_init(void)
{
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
	if (ivshm_dgram_channel_size < ivshm_dgram_min_channel() ||
	    !IS_ALIGNED(ivshm_dgram_channel_size, IVSHM_BLOCK_SIZE)) {
		pr_err("af_ivshmem: dgram_channel_size must be a multiple of %u, at least %u\n",
		       IVSHM_BLOCK_SIZE, ivshm_dgram_min_channel());
		return -EINVAL;
	}
	ivshm_stream_ops = ivshm_ops_copy(&ivshm_stream_ops_template);
	ivshm_seqpacket_ops = ivshm_ops_copy(&ivshm_seqpacket_ops_template);
	ivshm_dgram_ops = ivshm_ops_copy(&ivshm_dgram_ops_template);
	if (!ivshm_stream_ops || !ivshm_seqpacket_ops || !ivshm_dgram_ops) {
		err = -ENOMEM;
		goto free_ops;
	}
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
	ivshm_ops_free();
	return err;
}

void ivshm_sock_exit(void)
{
	sock_unregister(family);
	proto_unregister(&ivshm_proto);
	ivshm_ops_free();
	ivshm_sec_exit();
}
