// SPDX-License-Identifier: GPL-2.0
/*
 * AF_IVSHMEM socket tests (kselftest harness).
 *
 * Run inside a guest with the module loaded and ivshmem_peerd running in
 * this guest and, for the "remote" variants, in another guest whose peer
 * id is in $IVSHMEM_REMOTE_PEER.  $IVSHMEM_BULK_MIB sets the bulk transfer
 * size (default 256).
 */
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <linux/sockios.h>

#include "ivshmem_util.h"
#include "kselftest_harness.h"

#define CHUNK	(64 * 1024)
#define ABI_MAX_PEERS	64	/* peer ids of shared-memory ABI v1 */

static int fam;

static int ivs_socket(void)
{
	fam = ivshmem_family();
	return fam < 0 ? -1 : socket(fam, SOCK_STREAM, 0);
}

static int ivs_connect(int fd, uint32_t peer, uint32_t port)
{
	struct sockaddr_ivshmem addr;

	ivshmem_addr(&addr, peer, port);
	return connect(fd, (struct sockaddr *)&addr, sizeof(addr));
}

/* A connected socket to @peer:@port, or -1. */
static int ivs_dial(uint32_t peer, uint32_t port)
{
	int fd = ivs_socket();

	if (fd >= 0 && ivs_connect(fd, peer, port)) {
		close(fd);
		return -1;
	}
	return fd;
}

/* A listening socket on @port (any peer), or -1. */
static int ivs_listen(uint32_t port)
{
	struct sockaddr_ivshmem addr;
	int fd = ivs_socket();

	ivshmem_addr(&addr, IVSHMEM_PEER_ANY, port);
	if (fd < 0 || bind(fd, (struct sockaddr *)&addr, sizeof(addr)) ||
	    listen(fd, 8)) {
		if (fd >= 0)
			close(fd);
		return -1;
	}
	return fd;
}

/* A fresh port for tests that listen themselves. */
static uint32_t test_port(void)
{
	return 20000 + getpid() % 20000;
}

FIXTURE(peer) {
	uint32_t peer;
	uint32_t self;
};

FIXTURE_VARIANT(peer) {
	int remote;
};

FIXTURE_VARIANT_ADD(peer, local) {
	.remote = 0,
};

FIXTURE_VARIANT_ADD(peer, remote) {
	.remote = 1,
};

FIXTURE_SETUP(peer)
{
	const char *env = getenv("IVSHMEM_REMOTE_PEER");
	long me = ivshmem_local_peer();

	ASSERT_GE(me, 0) TH_LOG("local peer id: %s", strerror(errno));
	self->self = me;
	self->peer = self->self;
	if (variant->remote) {
		if (!env)
			SKIP(return, "IVSHMEM_REMOTE_PEER not set");
		self->peer = strtoul(env, NULL, 0);
	}
}

FIXTURE_TEARDOWN(peer)
{
}

TEST_F(peer, echo)
{
	static const char msg[] = "hello over ivshmem";
	char buf[sizeof(msg)];
	int fd = ivs_dial(self->peer, PEERD_PORT_ECHO);

	ASSERT_GE(fd, 0) TH_LOG("connect: %s", strerror(errno));
	ASSERT_EQ(sizeof(msg), write_full(fd, msg, sizeof(msg)));
	ASSERT_EQ(sizeof(msg), read_full(fd, buf, sizeof(buf)));
	ASSERT_EQ(0, memcmp(msg, buf, sizeof(msg)));
	ASSERT_EQ(0, shutdown(fd, SHUT_WR));
	ASSERT_EQ(0, recv(fd, buf, sizeof(buf), 0));
	close(fd);
}

TEST_F(peer, names)
{
	struct sockaddr_ivshmem addr;
	socklen_t len = sizeof(addr);
	int fd = ivs_dial(self->peer, PEERD_PORT_ECHO);

	ASSERT_GE(fd, 0);
	ASSERT_EQ(0, getpeername(fd, (struct sockaddr *)&addr, &len));
	ASSERT_EQ(sizeof(addr), len);
	ASSERT_EQ(fam, addr.sivshm_family);
	ASSERT_EQ(self->peer, addr.sivshm_peer);
	ASSERT_EQ(PEERD_PORT_ECHO, addr.sivshm_port);
	ASSERT_EQ(0, addr.sivshm_region);
	len = sizeof(addr);
	ASSERT_EQ(0, getsockname(fd, (struct sockaddr *)&addr, &len));
	ASSERT_EQ(self->self, addr.sivshm_peer);
	ASSERT_GE(addr.sivshm_port, IVSHMEM_EPHEMERAL_FIRST);
	ASSERT_LE(addr.sivshm_port, IVSHMEM_EPHEMERAL_LAST);
	close(fd);
}

TEST_F(peer, unbound_port_refused)
{
	int fd = ivs_socket();

	ASSERT_GE(fd, 0);
	ASSERT_EQ(-1, ivs_connect(fd, self->peer, PEERD_PORT_UNUSED));
	ASSERT_EQ(ECONNREFUSED, errno);
	/* The socket can try again after a refusal. */
	ASSERT_EQ(0, ivs_connect(fd, self->peer, PEERD_PORT_ECHO));
	close(fd);
}

TEST_F(peer, close_gives_eof)
{
	char buf[16];
	int fd = ivs_dial(self->peer, PEERD_PORT_BYE);

	ASSERT_GE(fd, 0);
	ASSERT_EQ(strlen(PEERD_BYE), read_full(fd, buf, sizeof(buf)));
	ASSERT_EQ(0, memcmp(buf, PEERD_BYE, strlen(PEERD_BYE)));
	ASSERT_EQ(0, recv(fd, buf, sizeof(buf), 0));
	ASSERT_EQ(0, recv(fd, buf, sizeof(buf), 0));
	close(fd);
}

static volatile sig_atomic_t sigpipes;

static void on_sigpipe(int sig)
{
	sigpipes++;
}

TEST_F(peer, send_after_peer_close_epipe)
{
	char buf[16];
	int fd = ivs_dial(self->peer, PEERD_PORT_BYE);

	ASSERT_GE(fd, 0);
	ASSERT_EQ(strlen(PEERD_BYE), read_full(fd, buf, sizeof(buf)));
	ASSERT_EQ(-1, send(fd, "x", 1, MSG_NOSIGNAL));
	ASSERT_EQ(EPIPE, errno);
	ASSERT_EQ(0, sigpipes);
	signal(SIGPIPE, on_sigpipe);
	ASSERT_EQ(-1, send(fd, "x", 1, 0));
	ASSERT_EQ(EPIPE, errno);
	ASSERT_EQ(1, sigpipes);
	close(fd);
}

TEST_F(peer, half_close_sink)
{
	static char buf[CHUNK];
	const uint64_t total = 1 << 20;
	uint64_t reply[2];
	struct stream s;
	uint64_t left;
	int fd = ivs_dial(self->peer, PEERD_PORT_SINK);

	ASSERT_GE(fd, 0);
	stream_init(&s, 42);
	for (left = total; left; left -= CHUNK) {
		stream_fill(&s, buf, CHUNK);
		ASSERT_EQ(CHUNK, write_full(fd, buf, CHUNK));
	}
	ASSERT_EQ(0, shutdown(fd, SHUT_WR));
	ASSERT_EQ(-1, send(fd, "x", 1, MSG_NOSIGNAL));
	ASSERT_EQ(EPIPE, errno);
	ASSERT_EQ(sizeof(reply), read_full(fd, reply, sizeof(reply)));
	ASSERT_EQ(total, reply[0]);
	ASSERT_EQ(s.sum, reply[1]);
	ASSERT_EQ(0, recv(fd, buf, 1, 0));
	close(fd);
}

TEST_F(peer, nonblocking_connect)
{
	struct pollfd pfd;
	socklen_t len = sizeof(int);
	int fd = ivs_socket(), err = -1;
	char buf[4];

	ASSERT_GE(fd, 0);
	ASSERT_EQ(0, fcntl(fd, F_SETFL, O_NONBLOCK));
	ASSERT_EQ(-1, ivs_connect(fd, self->peer, PEERD_PORT_ECHO));
	ASSERT_EQ(EINPROGRESS, errno);
	pfd.fd = fd;
	pfd.events = POLLOUT;
	ASSERT_EQ(1, poll(&pfd, 1, 20000));
	ASSERT_TRUE(pfd.revents & POLLOUT);
	ASSERT_EQ(0, getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len));
	ASSERT_EQ(0, err);
	ASSERT_EQ(-1, recv(fd, buf, sizeof(buf), 0));
	ASSERT_EQ(EAGAIN, errno);
	ASSERT_EQ(3, send(fd, "abc", 3, 0));
	pfd.events = POLLIN;
	ASSERT_EQ(1, poll(&pfd, 1, 20000));
	ASSERT_EQ(3, recv(fd, buf, sizeof(buf), 0));
	ASSERT_EQ(0, memcmp(buf, "abc", 3));
	close(fd);
}

TEST_F(peer, epoll_edge_triggered)
{
	struct epoll_event ev = { .events = EPOLLIN | EPOLLET }, out;
	char buf[64];
	int i, ep, fd = ivs_dial(self->peer, PEERD_PORT_ECHO);

	ASSERT_GE(fd, 0);
	ep = epoll_create1(0);
	ASSERT_GE(ep, 0);
	ASSERT_EQ(0, epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev));
	/* Nothing to read yet. */
	ASSERT_EQ(0, epoll_wait(ep, &out, 1, 0));
	for (i = 0; i < 3; i++) {
		ASSERT_EQ(5, send(fd, "ping", 5, 0));
		ASSERT_EQ(1, epoll_wait(ep, &out, 1, 20000));
		ASSERT_TRUE(out.events & EPOLLIN);
		ASSERT_EQ(5, read_full(fd, buf, 5));
		ASSERT_EQ(0, strcmp(buf, "ping"));
	}
	ASSERT_EQ(0, shutdown(fd, SHUT_WR));
	ASSERT_EQ(1, epoll_wait(ep, &out, 1, 20000));
	ASSERT_TRUE(out.events & EPOLLIN);
	ASSERT_EQ(0, recv(fd, buf, sizeof(buf), 0));
	close(ep);
	close(fd);
}

/* Edge-triggered epoll over many sockets misses no data. */
TEST_F(peer, epoll_many_sockets_edge_triggered)
{
	enum { NSOCK = 16, ROUNDS = 40 };
	struct epoll_event ev, out[NSOCK];
	uint64_t sent[NSOCK] = { 0 }, got[NSOCK] = { 0 }, want = 0, have = 0;
	static char buf[4096];
	int fds[NSOCK], ep, i, r, n;

	ep = epoll_create1(0);
	ASSERT_GE(ep, 0);
	for (i = 0; i < NSOCK; i++) {
		fds[i] = ivs_dial(self->peer, PEERD_PORT_ECHO);
		ASSERT_GE(fds[i], 0);
		ASSERT_EQ(0, fcntl(fds[i], F_SETFL, O_NONBLOCK));
		ev.events = EPOLLIN | EPOLLET;
		ev.data.u32 = i;
		ASSERT_EQ(0, epoll_ctl(ep, EPOLL_CTL_ADD, fds[i], &ev));
	}
	for (r = 0; r < ROUNDS; r++) {
		for (i = 0; i < NSOCK; i++) {
			size_t len = (r * 37 + i * 101) % 3000 + 1;

			ASSERT_EQ(len, send(fds[i], buf, len, 0));
			sent[i] += len;
			want += len;
		}
		/* Drain whatever is ready, as an edge-triggered server does. */
		while (have < want) {
			n = epoll_wait(ep, out, NSOCK, 10000);
			ASSERT_GT(n, 0) TH_LOG("round %d: %llu of %llu bytes back",
					       r, (unsigned long long)have,
					       (unsigned long long)want);
			for (i = 0; i < n; i++) {
				int k = out[i].data.u32;
				ssize_t m;

				while ((m = recv(fds[k], buf, sizeof(buf), 0)) > 0) {
					got[k] += m;
					have += m;
				}
				ASSERT_EQ(-1, m);
				ASSERT_EQ(EAGAIN, errno);
			}
		}
	}
	for (i = 0; i < NSOCK; i++) {
		ASSERT_EQ(sent[i], got[i]);
		close(fds[i]);
	}
	close(ep);
}

/* Closed connections give their channels back: far more connections
 * than the region has room for at once, one after another.  Not the
 * harness's default 30 s: in one guest on the checker kernel (KASAN,
 * lockdep) under TCG on a busy host, 200 connects took longer.
 */
TEST_F_TIMEOUT(peer, channels_are_reused, 600)
{
	char c;
	int i;

	for (i = 0; i < 200; i++) {
		int fd = ivs_dial(self->peer, PEERD_PORT_ECHO);

		ASSERT_GE(fd, 0) TH_LOG("connection %d: %s", i, strerror(errno));
		ASSERT_EQ(1, send(fd, "x", 1, 0));
		ASSERT_EQ(1, recv(fd, &c, 1, 0));
		ASSERT_EQ(0, shutdown(fd, SHUT_WR));
		ASSERT_EQ(0, recv(fd, &c, 1, 0));
		close(fd);
	}
}

struct blocked_read {
	int fd;
	ssize_t n;
	char c;
};

static void *blocked_read_thread(void *arg)
{
	struct blocked_read *r = arg;

	r->n = recv(r->fd, &r->c, 1, 0);
	return NULL;
}

/* Two tasks blocked in recv() on one socket (in doorbell mode both on
 * the device's sleepers through one entry): each gets one of the two
 * bytes echoed.
 */
TEST_F(peer, two_readers_block_on_one_socket)
{
	struct blocked_read r[2];
	pthread_t thr[2];
	int i, fd = ivs_dial(self->peer, PEERD_PORT_ECHO);

	ASSERT_GE(fd, 0);
	for (i = 0; i < 2; i++) {
		r[i].fd = fd;
		r[i].n = -2;
		ASSERT_EQ(0, pthread_create(&thr[i], NULL, blocked_read_thread,
					    &r[i]));
	}
	usleep(300000);		/* both asleep, most likely */
	ASSERT_EQ(1, send(fd, "a", 1, 0));
	usleep(300000);
	ASSERT_EQ(1, send(fd, "b", 1, 0));
	for (i = 0; i < 2; i++)
		pthread_join(thr[i], NULL);
	ASSERT_EQ(1, r[0].n);
	ASSERT_EQ(1, r[1].n);
	ASSERT_EQ('a' + 'b', r[0].c + r[1].c);
	ASSERT_NE(r[0].c, r[1].c);
	close(fd);
}

/* size bytes each way at once, verified byte for byte and by checksum. */
TEST_F_TIMEOUT(peer, bulk_both_directions, 1200)
{
	const char *env = getenv("IVSHMEM_BULK_MIB");
	struct bulk_result r;
	int fd = ivs_dial(self->peer, PEERD_PORT_BULK);

	ASSERT_GE(fd, 0);
	bulk_client(fd, (env ? atoll(env) : 256) << 20, &r);
	ASSERT_EQ(0, r.send_err) TH_LOG("send: %s", strerror(r.send_err));
	ASSERT_EQ(0, r.recv_err) TH_LOG("recv: %s", strerror(r.recv_err));
	ASSERT_EQ(-1, r.mismatch) TH_LOG("mismatch at byte %ld", r.mismatch);
	ASSERT_EQ(r.size, r.received);
	ASSERT_EQ(0, r.peer_bad) TH_LOG("peer saw corrupted data");
	ASSERT_EQ(r.sent_sum, r.peer_sum);
	close(fd);
}

TEST(local_connect_accept)
{
	struct sockaddr_ivshmem cli, acc;
	socklen_t len = sizeof(cli);
	int lfd = ivs_listen(test_port()), cfd, afd;
	char buf[8];

	ASSERT_GE(lfd, 0);
	cfd = ivs_dial(ivshmem_local_peer(), test_port());
	ASSERT_GE(cfd, 0);
	len = sizeof(acc);
	afd = accept(lfd, (struct sockaddr *)&acc, &len);
	ASSERT_GE(afd, 0);
	ASSERT_EQ(sizeof(acc), len);
	len = sizeof(cli);
	ASSERT_EQ(0, getsockname(cfd, (struct sockaddr *)&cli, &len));
	ASSERT_EQ(cli.sivshm_port, acc.sivshm_port);
	ASSERT_EQ(cli.sivshm_peer, acc.sivshm_peer);
	ASSERT_EQ(4, send(cfd, "ping", 4, 0));
	ASSERT_EQ(4, read_full(afd, buf, 4));
	ASSERT_EQ(0, memcmp(buf, "ping", 4));
	ASSERT_EQ(4, send(afd, "pong", 4, 0));
	ASSERT_EQ(4, read_full(cfd, buf, 4));
	ASSERT_EQ(0, memcmp(buf, "pong", 4));
	close(afd);
	ASSERT_EQ(0, recv(cfd, buf, sizeof(buf), 0));
	close(cfd);
	close(lfd);
}

/* A connected pair inside this guest: *cfd connects, *afd is accepted. */
static int local_pair(uint32_t port, int *cfd, int *afd)
{
	int lfd = ivs_listen(port);

	*cfd = *afd = -1;
	if (lfd < 0)
		return -1;
	*cfd = ivs_dial(ivshmem_local_peer(), port);
	if (*cfd >= 0)
		*afd = accept(lfd, NULL, NULL);
	close(lfd);
	return *cfd >= 0 && *afd >= 0 ? 0 : -1;
}

/* Regression: close() after connecting again following a reset crashed. */
TEST(reconnect_after_reset)
{
	uint32_t port = test_port() + 10;
	int lfd = ivs_listen(port), cfd, afd;
	char buf[8];

	ASSERT_GE(lfd, 0);
	cfd = ivs_dial(ivshmem_local_peer(), port);
	ASSERT_GE(cfd, 0);
	/* Closing the listener resets the connection it never accepted. */
	close(lfd);
	ASSERT_EQ(-1, recv(cfd, buf, sizeof(buf), 0));
	ASSERT_EQ(ECONNRESET, errno);
	/* Readers and writers alike keep getting the reset. */
	ASSERT_EQ(-1, recv(cfd, buf, sizeof(buf), 0));
	ASSERT_EQ(ECONNRESET, errno);
	ASSERT_EQ(-1, send(cfd, "x", 1, MSG_NOSIGNAL));
	ASSERT_EQ(ECONNRESET, errno);

	lfd = ivs_listen(port + 1);
	ASSERT_GE(lfd, 0);
	ASSERT_EQ(0, ivs_connect(cfd, ivshmem_local_peer(), port + 1));
	afd = accept(lfd, NULL, NULL);
	ASSERT_GE(afd, 0);
	ASSERT_EQ(2, send(cfd, "ok", 2, 0));
	ASSERT_EQ(2, read_full(afd, buf, 2));
	ASSERT_EQ(0, memcmp(buf, "ok", 2));
	close(cfd);
	ASSERT_EQ(0, recv(afd, buf, sizeof(buf), 0));
	close(afd);
	close(lfd);
}

/* Regression: MSG_PEEK | MSG_WAITALL short of data spun forever. */
TEST(peek_waitall_times_out)
{
	struct timeval tv = { .tv_sec = 1 };
	char buf[16];
	int cfd, afd;

	ASSERT_EQ(0, local_pair(test_port() + 20, &cfd, &afd));
	ASSERT_EQ(3, send(afd, "abc", 3, 0));
	ASSERT_EQ(0, setsockopt(cfd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)));
	ASSERT_EQ(3, recv(cfd, buf, sizeof(buf), MSG_PEEK | MSG_WAITALL));
	ASSERT_EQ(3, recv(cfd, buf, sizeof(buf), 0));
	ASSERT_EQ(0, memcmp(buf, "abc", 3));
	close(cfd);
	close(afd);
}

TEST(shut_rd_returns_queued_data)
{
	char buf[16];
	int cfd, afd;

	ASSERT_EQ(0, local_pair(test_port() + 30, &cfd, &afd));
	ASSERT_EQ(3, send(afd, "abc", 3, 0));
	usleep(200000);
	ASSERT_EQ(0, shutdown(cfd, SHUT_RD));
	ASSERT_EQ(3, recv(cfd, buf, sizeof(buf), 0));
	ASSERT_EQ(0, recv(cfd, buf, sizeof(buf), 0));
	close(cfd);
	close(afd);
}

TEST(poll_after_shut_wr)
{
	struct pollfd pfd;
	int cfd, afd;

	ASSERT_EQ(0, local_pair(test_port() + 40, &cfd, &afd));
	ASSERT_EQ(0, shutdown(cfd, SHUT_WR));
	pfd.fd = cfd;
	pfd.events = POLLIN | POLLOUT | POLLRDHUP;
	ASSERT_EQ(1, poll(&pfd, 1, 1000));
	/* Writable (a write fails at once), not readable, not hung up. */
	ASSERT_EQ(POLLOUT, pfd.revents);
	pfd.fd = afd;
	ASSERT_EQ(1, poll(&pfd, 1, 5000));
	ASSERT_EQ(POLLIN | POLLOUT | POLLRDHUP, pfd.revents);
	close(cfd);
	close(afd);
}

TEST(queue_lengths)
{
	int cfd, afd, n = -1;

	ASSERT_EQ(0, local_pair(test_port() + 50, &cfd, &afd));
	ASSERT_EQ(0, ioctl(cfd, SIOCOUTQ, &n));
	ASSERT_EQ(0, n);
	ASSERT_EQ(5, send(cfd, "hello", 5, 0));
	ASSERT_EQ(0, ioctl(cfd, SIOCOUTQ, &n));
	ASSERT_EQ(5, n);
	ASSERT_EQ(0, ioctl(afd, SIOCINQ, &n));
	ASSERT_EQ(5, n);
	ASSERT_EQ(2, recv(afd, (char[2]){ 0 }, 2, 0));
	ASSERT_EQ(0, ioctl(afd, SIOCINQ, &n));
	ASSERT_EQ(3, n);
	ASSERT_EQ(0, ioctl(cfd, SIOCOUTQ, &n));
	ASSERT_EQ(3, n);
	close(cfd);
	close(afd);
}

TEST(accept_nonblocking_empty)
{
	int lfd = ivs_listen(test_port());

	ASSERT_GE(lfd, 0);
	ASSERT_EQ(0, fcntl(lfd, F_SETFL, O_NONBLOCK));
	ASSERT_EQ(-1, accept(lfd, NULL, NULL));
	ASSERT_EQ(EAGAIN, errno);
	close(lfd);
}

TEST(bad_addresses)
{
	struct sockaddr_ivshmem addr;
	struct sockaddr_in in = { .sin_family = AF_INET };
	int fd = ivs_socket();

	ASSERT_GE(fd, 0);
	ivshmem_addr(&addr, ivshmem_local_peer(), PEERD_PORT_ECHO);
	/* Too short. */
	ASSERT_EQ(-1, connect(fd, (struct sockaddr *)&addr, 8));
	ASSERT_EQ(EINVAL, errno);
	ASSERT_EQ(-1, bind(fd, (struct sockaddr *)&addr, 8));
	ASSERT_EQ(EINVAL, errno);
	/* Another family. */
	ASSERT_EQ(-1, connect(fd, (struct sockaddr *)&in, sizeof(in)));
	ASSERT_EQ(EAFNOSUPPORT, errno);
	/* Not user memory. */
	ASSERT_EQ(-1, connect(fd, (struct sockaddr *)8, sizeof(addr)));
	ASSERT_EQ(EFAULT, errno);
	/* Reserved fields. */
	addr.sivshm_flags = 1;
	ASSERT_EQ(-1, connect(fd, (struct sockaddr *)&addr, sizeof(addr)));
	ASSERT_EQ(EINVAL, errno);
	/* Wildcards are not a destination. */
	ivshmem_addr(&addr, IVSHMEM_PEER_ANY, PEERD_PORT_ECHO);
	ASSERT_EQ(-1, connect(fd, (struct sockaddr *)&addr, sizeof(addr)));
	ASSERT_EQ(EINVAL, errno);
	ivshmem_addr(&addr, ivshmem_local_peer(), IVSHMEM_PORT_ANY);
	ASSERT_EQ(-1, connect(fd, (struct sockaddr *)&addr, sizeof(addr)));
	ASSERT_EQ(EINVAL, errno);
	/* Peers that do not exist. */
	ASSERT_EQ(-1, ivs_connect(fd, ABI_MAX_PEERS - 1,
				  PEERD_PORT_ECHO));
	ASSERT_EQ(EHOSTUNREACH, errno);
	ASSERT_EQ(-1, ivs_connect(fd, 100000, PEERD_PORT_ECHO));
	ASSERT_EQ(EHOSTUNREACH, errno);
	close(fd);
}

TEST(bind_rules)
{
	struct sockaddr_ivshmem addr;
	uint32_t port = test_port() + 1;
	int a = ivs_socket(), b = ivs_socket();

	ASSERT_GE(a, 0);
	ASSERT_GE(b, 0);
	ivshmem_addr(&addr, IVSHMEM_PEER_ANY, port);
	ASSERT_EQ(0, bind(a, (struct sockaddr *)&addr, sizeof(addr)));
	ASSERT_EQ(-1, bind(a, (struct sockaddr *)&addr, sizeof(addr)));
	ASSERT_EQ(EINVAL, errno);
	ASSERT_EQ(-1, bind(b, (struct sockaddr *)&addr, sizeof(addr)));
	ASSERT_EQ(EADDRINUSE, errno);
	/* Only our own peer id is a local address. */
	ivshmem_addr(&addr, ivshmem_local_peer() + 1, port + 1);
	ASSERT_EQ(-1, bind(b, (struct sockaddr *)&addr, sizeof(addr)));
	ASSERT_EQ(EADDRNOTAVAIL, errno);
	ivshmem_addr(&addr, ivshmem_local_peer(), port + 1);
	ASSERT_EQ(0, bind(b, (struct sockaddr *)&addr, sizeof(addr)));
	close(a);
	/* A closed socket's port is free again. */
	a = ivs_socket();
	ivshmem_addr(&addr, IVSHMEM_PEER_ANY, port);
	ASSERT_EQ(0, bind(a, (struct sockaddr *)&addr, sizeof(addr)));
	close(a);
	close(b);
}

TEST(unconnected_io)
{
	char buf[4];
	int fd = ivs_socket();

	ASSERT_GE(fd, 0);
	ASSERT_EQ(-1, send(fd, "x", 1, MSG_NOSIGNAL));
	ASSERT_EQ(ENOTCONN, errno);
	ASSERT_EQ(-1, recv(fd, buf, sizeof(buf), 0));
	ASSERT_EQ(ENOTCONN, errno);
	ASSERT_EQ(-1, shutdown(fd, SHUT_WR));
	ASSERT_EQ(ENOTCONN, errno);
	ASSERT_EQ(-1, shutdown(fd, 7));
	ASSERT_EQ(EINVAL, errno);
	close(fd);
}

/*
 * IVSHMEM_SECURITY: set on an unconnected socket or a listener, checked
 * values and lengths, EISCONN once connected (the fuzzer's finding: the
 * errno is part of the ABI), and a refused set leaves the policy alone.
 */
TEST(security_option_rules)
{
	uint32_t port = test_port() + 20;
	int fd = ivs_socket(), lfd, cfd, afd, val;
	socklen_t len = sizeof(val);

	ASSERT_GE(fd, 0);
	val = IVSHMEM_SECURITY_REQUIRE + 1;
	ASSERT_EQ(-1, setsockopt(fd, fam, IVSHMEM_SECURITY, &val, sizeof(val)));
	ASSERT_EQ(EINVAL, errno);
	val = IVSHMEM_SECURITY_OFF;
	ASSERT_EQ(-1, setsockopt(fd, fam, IVSHMEM_SECURITY, &val, 2));
	ASSERT_EQ(EINVAL, errno);
	ASSERT_EQ(0, setsockopt(fd, fam, IVSHMEM_SECURITY, &val, sizeof(val)));
	val = -1;
	ASSERT_EQ(0, getsockopt(fd, fam, IVSHMEM_SECURITY, &val, &len));
	ASSERT_EQ(sizeof(val), len);
	ASSERT_EQ(IVSHMEM_SECURITY_OFF, val);
	close(fd);

	lfd = ivs_listen(port);
	ASSERT_GE(lfd, 0);
	val = IVSHMEM_SECURITY_OFF;
	ASSERT_EQ(0, setsockopt(lfd, fam, IVSHMEM_SECURITY, &val, sizeof(val)));
	cfd = ivs_socket();
	ASSERT_GE(cfd, 0);
	ASSERT_EQ(0, setsockopt(cfd, fam, IVSHMEM_SECURITY, &val, sizeof(val)));
	ASSERT_EQ(0, ivs_connect(cfd, ivshmem_local_peer(), port));
	afd = accept(lfd, NULL, NULL);
	ASSERT_GE(afd, 0);
	val = -1;
	ASSERT_EQ(0, getsockopt(afd, fam, IVSHMEM_SECURITY, &val, &len));
	ASSERT_EQ(IVSHMEM_SECURITY_OFF, val);
	val = IVSHMEM_SECURITY_REQUIRE;
	ASSERT_EQ(-1, setsockopt(cfd, fam, IVSHMEM_SECURITY, &val, sizeof(val)));
	ASSERT_EQ(EISCONN, errno);
	ASSERT_EQ(-1, setsockopt(afd, fam, IVSHMEM_SECURITY, &val, sizeof(val)));
	ASSERT_EQ(EISCONN, errno);
	ASSERT_EQ(0, getsockopt(cfd, fam, IVSHMEM_SECURITY, &val, &len));
	ASSERT_EQ(IVSHMEM_SECURITY_OFF, val);
	ASSERT_EQ(0, getsockopt(cfd, fam, IVSHMEM_PROTECTED, &val, &len));
	ASSERT_EQ(0, val);
	close(afd);
	close(cfd);
	close(lfd);
}

TEST(socket_types)
{
	ASSERT_GE(ivshmem_family(), 0);
	ASSERT_EQ(-1, socket(ivshmem_family(), SOCK_RAW, 0));
	ASSERT_EQ(ESOCKTNOSUPPORT, errno);
	ASSERT_EQ(-1, socket(ivshmem_family(), SOCK_STREAM, 99));
	ASSERT_EQ(EPROTONOSUPPORT, errno);
}

TEST(local_peer_id)
{
	const char *env = getenv("IVSHMEM_LOCAL_PEER");
	long self = ivshmem_local_peer();

	ASSERT_GE(self, 0);
	if (!env)
		SKIP(return, "IVSHMEM_LOCAL_PEER not set");
	ASSERT_EQ(strtol(env, NULL, 0), self);
}

TEST_HARNESS_MAIN
