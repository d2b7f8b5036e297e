// SPDX-License-Identifier: GPL-2.0
/*
 * AF_IVSHMEM conformance suite: SOCK_DGRAM cases.
 *
 * A UDP programmer's expectations: bind/sendto/recvfrom with the sender's
 * address, boundaries kept, truncation with MSG_TRUNC, connect() as a
 * default destination and a receive filter, drops counted.
 *
 * Ports: the server end uses ctx->port + 0..7, the client end
 * ctx->port + 8..15, so both ends can bind in one guest.
 *
 * A datagram is handed to the receiving guest asynchronously: that
 * sendto() returned (and the control message "SENT" arrived) does not mean
 * it is queued yet, so receivers block or poll instead of MSG_DONTWAIT.
 */
#include <fcntl.h>
#include <glob.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/time.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <linux/sockios.h>

#include "conformance.h"

#define SRV(ctx, i)	((ctx)->port + (i))
#define CLI(ctx, i)	((ctx)->port + 8 + (i))

#define STATS_GLOB	"/sys/bus/pci/drivers/af_ivshmem/*/stats/"

static int dg_socket(struct conf_ctx *ctx)
{
	return (int)CHECK_OK(socket(ctx->family, SOCK_DGRAM, 0));
}

static int dg_bound(struct conf_ctx *ctx, uint32_t port)
{
	return conf_listen(ctx, SOCK_DGRAM, port, 0);
}

static ssize_t dg_sendto(struct conf_ctx *ctx, int fd, uint32_t port,
			 const void *buf, size_t len, int flags)
{
	struct sockaddr_ivshmem to = conf_addr(ctx, ctx->peer, port);

	return sendto(fd, buf, len, flags, (struct sockaddr *)&to, sizeof(to));
}

/* Sends @len bytes of pattern @seed to the other end's @port. */
static void send_dgram(struct conf_ctx *ctx, int fd, uint32_t port,
		       size_t len, uint64_t seed)
{
	char *buf = malloc(len ? len : 1);

	CHECK(buf);
	fill_pattern(buf, len, seed, 0);
	if (port == IVSHMEM_PORT_ANY)	/* connected: send() */
		CHECK_EQ(CHECK_OK(send(fd, buf, len, 0)), (long long)len);
	else
		CHECK_EQ(CHECK_OK(dg_sendto(ctx, fd, port, buf, len, 0)),
			 (long long)len);
	free(buf);
}

struct dg_msg {
	ssize_t n;
	int flags;		/* msg_flags */
	socklen_t alen;
	struct sockaddr_ivshmem from;
};

static void dg_recv(int fd, void *buf, size_t len, int flags,
		    struct dg_msg *m)
{
	struct iovec iov = { .iov_base = buf, .iov_len = len };
	struct msghdr msg = {
		.msg_name = &m->from, .msg_namelen = sizeof(m->from),
		.msg_iov = &iov, .msg_iovlen = 1,
	};

	memset(&m->from, 0xa5, sizeof(m->from));
	m->n = CHECK_OK(recvmsg(fd, &msg, flags));
	m->flags = msg.msg_flags;
	m->alen = msg.msg_namelen;
}

/* The source address of a datagram from the other end's @port. */
static void check_from(struct conf_ctx *ctx, const struct dg_msg *m,
		       uint32_t port)
{
	CHECK_EQ(m->alen, sizeof(struct sockaddr_ivshmem));
	CHECK_EQ(m->from.sivshm_family, ctx->family);
	CHECK_EQ(m->from.sivshm_reserved1, 0);
	CHECK_EQ(m->from.sivshm_port, port);
	CHECK_EQ(m->from.sivshm_peer, ctx->peer);
	CHECK_EQ(m->from.sivshm_region, 0);
	CHECK_EQ(m->from.sivshm_flags, 0);
}

/* Receives one datagram: exactly @len bytes of pattern @seed from the
 * other end's @port.
 */
static void expect_dgram(struct conf_ctx *ctx, int fd, size_t len,
			 uint64_t seed, uint32_t port)
{
	size_t cap = len + 4096;
	char *buf = malloc(cap);
	struct dg_msg m;

	CHECK(buf);
	dg_recv(fd, buf, cap, 0, &m);
	if (m.n != (ssize_t)len)
		conf_fail("received %zd bytes, expected %zu", m.n, len);
	CHECK(!(m.flags & MSG_TRUNC));
	CHECK(check_pattern(buf, len, seed, 0));
	check_from(ctx, &m, port);
	free(buf);
}

/* Nothing (more) arrives within @ms milliseconds. */
static void expect_no_dgram(int fd, int ms)
{
	struct pollfd pfd = { .fd = fd, .events = POLLIN };
	char c;

	CHECK_EQ(CHECK_OK(poll(&pfd, 1, ms)), 0);
	CHECK_ERR(recv(fd, &c, 1, MSG_DONTWAIT), EAGAIN);
}

static void wait_readable(int fd)
{
	struct pollfd pfd = { .fd = fd, .events = POLLIN };

	CHECK_EQ(CHECK_OK(poll(&pfd, 1, 10000)), 1);
	CHECK(pfd.revents & POLLIN);
}

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* ------------------------------------------------------------------ */

static void addr_client(struct conf_ctx *ctx)
{
	int fd = dg_bound(ctx, CLI(ctx, 0));

	ctl_expect(ctx, "BOUND");
	send_dgram(ctx, fd, SRV(ctx, 0), 100, 1);
	ctl_expect(ctx, "DONE");
	close(fd);
}

static void addr_server(struct conf_ctx *ctx)
{
	int fd = dg_bound(ctx, SRV(ctx, 0));

	ctl_send(ctx, "BOUND");
	expect_dgram(ctx, fd, 100, 1, CLI(ctx, 0));
	ctl_send(ctx, "DONE");
	close(fd);
}

/* ------------------------------------------------------------------ */

static void autobind_client(struct conf_ctx *ctx)
{
	int fd = dg_socket(ctx);
	struct sockaddr_ivshmem me;
	socklen_t len = sizeof(me);

	ctl_expect(ctx, "BOUND");
	send_dgram(ctx, fd, SRV(ctx, 0), 64, 2);
	CHECK_OK(getsockname(fd, (struct sockaddr *)&me, &len));
	CHECK_EQ(len, sizeof(me));
	CHECK_EQ(me.sivshm_family, ctx->family);
	CHECK(me.sivshm_port >= IVSHMEM_EPHEMERAL_FIRST &&
	      me.sivshm_port <= IVSHMEM_EPHEMERAL_LAST);
	ctl_send_u64(ctx, me.sivshm_port);
	/* The port stays: a second datagram comes from it as well. */
	send_dgram(ctx, fd, SRV(ctx, 0), 65, 3);
	ctl_expect(ctx, "DONE");
	close(fd);
}

static void autobind_server(struct conf_ctx *ctx)
{
	int fd = dg_bound(ctx, SRV(ctx, 0));
	uint32_t port;

	ctl_send(ctx, "BOUND");
	port = (uint32_t)ctl_recv_u64(ctx);
	expect_dgram(ctx, fd, 64, 2, port);
	expect_dgram(ctx, fd, 65, 3, port);
	ctl_send(ctx, "DONE");
	close(fd);
}

/* ------------------------------------------------------------------ */

static void bounds_client(struct conf_ctx *ctx)
{
	int fd = dg_bound(ctx, CLI(ctx, 0));

	ctl_expect(ctx, "BOUND");
	send_dgram(ctx, fd, SRV(ctx, 0), 1, 11);
	send_dgram(ctx, fd, SRV(ctx, 0), 1000, 12);
	send_dgram(ctx, fd, SRV(ctx, 0), IVSHMEM_DGRAM_MAX, 13);
	ctl_expect(ctx, "DONE");
	close(fd);
}

static void bounds_server(struct conf_ctx *ctx)
{
	int fd = dg_bound(ctx, SRV(ctx, 0));

	ctl_send(ctx, "BOUND");
	/* Buffers of len + 4096: a merged datagram would show. */
	expect_dgram(ctx, fd, 1, 11, CLI(ctx, 0));
	expect_dgram(ctx, fd, 1000, 12, CLI(ctx, 0));
	expect_dgram(ctx, fd, IVSHMEM_DGRAM_MAX, 13, CLI(ctx, 0));
	expect_no_dgram(fd, 200);
	ctl_send(ctx, "DONE");
	close(fd);
}

/* ------------------------------------------------------------------ */

static void max_client(struct conf_ctx *ctx)
{
	int fd = dg_bound(ctx, CLI(ctx, 0));
	char *buf = malloc(IVSHMEM_DGRAM_MAX + 1);

	CHECK(buf);
	fill_pattern(buf, IVSHMEM_DGRAM_MAX + 1, 21, 0);
	ctl_expect(ctx, "BOUND");
	CHECK_ERR(dg_sendto(ctx, fd, SRV(ctx, 0), buf, IVSHMEM_DGRAM_MAX + 1,
			    0), EMSGSIZE);
	CHECK_EQ(CHECK_OK(dg_sendto(ctx, fd, SRV(ctx, 0), buf,
				    IVSHMEM_DGRAM_MAX, 0)), IVSHMEM_DGRAM_MAX);
	send_dgram(ctx, fd, SRV(ctx, 0), 1, 22);
	ctl_expect(ctx, "DONE");
	free(buf);
	close(fd);
}

static void max_server(struct conf_ctx *ctx)
{
	int fd = dg_bound(ctx, SRV(ctx, 0));

	ctl_send(ctx, "BOUND");
	expect_dgram(ctx, fd, IVSHMEM_DGRAM_MAX, 21, CLI(ctx, 0));
	expect_dgram(ctx, fd, 1, 22, CLI(ctx, 0));
	ctl_send(ctx, "DONE");
	close(fd);
}

/* ------------------------------------------------------------------ */

static void two_client(struct conf_ctx *ctx)
{
	int fd = dg_bound(ctx, CLI(ctx, 0));

	ctl_expect(ctx, "BOUND");
	send_dgram(ctx, fd, SRV(ctx, 0), 100, 31);
	send_dgram(ctx, fd, SRV(ctx, 0), 50, 32);
	ctl_expect(ctx, "DONE");
	close(fd);
}

static void trunc_common(struct conf_ctx *ctx, int flags, long long ret)
{
	int fd = dg_bound(ctx, SRV(ctx, 0));
	char buf[10];
	struct dg_msg m;

	ctl_send(ctx, "BOUND");
	dg_recv(fd, buf, sizeof(buf), flags, &m);
	CHECK_EQ(m.n, ret);
	CHECK(m.flags & MSG_TRUNC);
	CHECK(check_pattern(buf, sizeof(buf), 31, 0));
	check_from(ctx, &m, CLI(ctx, 0));
	/* The other 90 bytes are gone: the next recv is the next datagram. */
	expect_dgram(ctx, fd, 50, 32, CLI(ctx, 0));
	expect_no_dgram(fd, 200);
	ctl_send(ctx, "DONE");
	close(fd);
}

static void trunc_server(struct conf_ctx *ctx)
{
	trunc_common(ctx, 0, 10);
}

static void trunc_flag_server(struct conf_ctx *ctx)
{
	trunc_common(ctx, MSG_TRUNC, 100);
}

/* ------------------------------------------------------------------ */

static void zero_client(struct conf_ctx *ctx)
{
	int fd = dg_bound(ctx, CLI(ctx, 0));

	ctl_expect(ctx, "BOUND");
	CHECK_EQ(CHECK_OK(dg_sendto(ctx, fd, SRV(ctx, 0), "", 0, 0)), 0);
	send_dgram(ctx, fd, SRV(ctx, 0), 3, 41);
	ctl_expect(ctx, "DONE");
	close(fd);
}

static void zero_server(struct conf_ctx *ctx)
{
	int fd = dg_bound(ctx, SRV(ctx, 0));

	ctl_send(ctx, "BOUND");
	expect_dgram(ctx, fd, 0, 0, CLI(ctx, 0));
	expect_dgram(ctx, fd, 3, 41, CLI(ctx, 0));
	ctl_send(ctx, "DONE");
	close(fd);
}

/* ------------------------------------------------------------------ */

static void nodest_client(struct conf_ctx *ctx)
{
	int fd = dg_socket(ctx);

	CHECK_ERR(send(fd, "x", 1, 0), EDESTADDRREQ);
	close(fd);
	fd = dg_bound(ctx, CLI(ctx, 0));
	CHECK_ERR(send(fd, "x", 1, 0), EDESTADDRREQ);
	CHECK_ERR(sendto(fd, "x", 1, 0, NULL, 0), EDESTADDRREQ);
	close(fd);
}

static void addrlen_client(struct conf_ctx *ctx)
{
	struct sockaddr_ivshmem to = conf_addr(ctx, ctx->peer, SRV(ctx, 0));
	int fd = dg_bound(ctx, CLI(ctx, 0));

	CHECK_ERR(sendto(fd, "x", 1, 0, (struct sockaddr *)&to,
			 sizeof(to) - 1), EINVAL);
	CHECK_ERR(sendto(fd, "x", 1, 0, (struct sockaddr *)&to,
			 sizeof(sa_family_t)), EINVAL);
	close(fd);
}

static void family_client(struct conf_ctx *ctx)
{
	struct sockaddr_ivshmem to = conf_addr(ctx, ctx->peer, SRV(ctx, 0));
	int fd = dg_bound(ctx, CLI(ctx, 0));

	to.sivshm_family = AF_INET;
	CHECK_ERR(sendto(fd, "x", 1, 0, (struct sockaddr *)&to, sizeof(to)),
		  EAFNOSUPPORT);
	close(fd);
}

static void wildcard_client(struct conf_ctx *ctx)
{
	struct sockaddr_ivshmem to = conf_addr(ctx, IVSHMEM_PEER_ANY,
					       SRV(ctx, 0));
	int fd = dg_bound(ctx, CLI(ctx, 0));

	CHECK_ERR(sendto(fd, "x", 1, 0, (struct sockaddr *)&to, sizeof(to)),
		  EINVAL);
	to = conf_addr(ctx, ctx->peer, IVSHMEM_PORT_ANY);
	CHECK_ERR(sendto(fd, "x", 1, 0, (struct sockaddr *)&to, sizeof(to)),
		  EINVAL);
	close(fd);
}

static void nopeer_client(struct conf_ctx *ctx)
{
	struct sockaddr_ivshmem to = conf_addr(ctx, 60, SRV(ctx, 0));
	int fd = dg_bound(ctx, CLI(ctx, 0));

	CHECK_ERR(sendto(fd, "x", 1, 0, (struct sockaddr *)&to, sizeof(to)),
		  EHOSTUNREACH);
	close(fd);
}

/* ------------------------------------------------------------------ */

static void connect_client(struct conf_ctx *ctx)
{
	struct sockaddr_ivshmem to = conf_addr(ctx, ctx->peer, SRV(ctx, 0));
	struct sockaddr_ivshmem a;
	socklen_t len = sizeof(a);
	int fd = dg_bound(ctx, CLI(ctx, 0));

	CHECK_ERR(getpeername(fd, (struct sockaddr *)&a, &len), ENOTCONN);
	CHECK_OK(connect(fd, (struct sockaddr *)&to, sizeof(to)));
	len = sizeof(a);
	CHECK_OK(getpeername(fd, (struct sockaddr *)&a, &len));
	CHECK_EQ(len, sizeof(a));
	CHECK_EQ(a.sivshm_family, ctx->family);
	CHECK_EQ(a.sivshm_peer, ctx->peer);
	CHECK_EQ(a.sivshm_port, SRV(ctx, 0));
	CHECK_EQ(a.sivshm_region, 0);
	ctl_expect(ctx, "BOUND");
	send_dgram(ctx, fd, IVSHMEM_PORT_ANY, 20, 51);
	CHECK_EQ(CHECK_OK(write(fd, "w", 1)), 1);
	ctl_expect(ctx, "DONE");
	close(fd);
}

static void connect_server(struct conf_ctx *ctx)
{
	int fd = dg_bound(ctx, SRV(ctx, 0));
	char c = 0;
	struct dg_msg m;

	ctl_send(ctx, "BOUND");
	expect_dgram(ctx, fd, 20, 51, CLI(ctx, 0));
	dg_recv(fd, &c, 1, 0, &m);
	CHECK_EQ(m.n, 1);
	CHECK_EQ(c, 'w');
	check_from(ctx, &m, CLI(ctx, 0));
	ctl_send(ctx, "DONE");
	close(fd);
}

/* ------------------------------------------------------------------ */

static void filter_client(struct conf_ctx *ctx)
{
	int a = dg_bound(ctx, CLI(ctx, 0));
	int b = dg_bound(ctx, CLI(ctx, 1));

	ctl_expect(ctx, "CONNECTED");
	send_dgram(ctx, b, SRV(ctx, 0), 30, 61);
	send_dgram(ctx, a, SRV(ctx, 0), 31, 62);
	send_dgram(ctx, b, SRV(ctx, 0), 32, 63);
	send_dgram(ctx, a, SRV(ctx, 0), 33, 64);
	ctl_expect(ctx, "DONE");
	close(a);
	close(b);
}

static void filter_server(struct conf_ctx *ctx)
{
	struct sockaddr_ivshmem to = conf_addr(ctx, ctx->peer, CLI(ctx, 0));
	int fd = dg_bound(ctx, SRV(ctx, 0));

	CHECK_OK(connect(fd, (struct sockaddr *)&to, sizeof(to)));
	ctl_send(ctx, "CONNECTED");
	expect_dgram(ctx, fd, 31, 62, CLI(ctx, 0));
	expect_dgram(ctx, fd, 33, 64, CLI(ctx, 0));
	expect_no_dgram(fd, 300);
	ctl_send(ctx, "DONE");
	close(fd);
}

/* ------------------------------------------------------------------ */

static void dissolve(int fd)
{
	struct sockaddr_ivshmem a;
	struct sockaddr unspec;
	socklen_t len = sizeof(a);

	memset(&unspec, 0, sizeof(unspec));
	unspec.sa_family = AF_UNSPEC;
	CHECK_OK(connect(fd, &unspec, sizeof(unspec)));
	CHECK_ERR(getpeername(fd, (struct sockaddr *)&a, &len), ENOTCONN);
	CHECK_ERR(send(fd, "x", 1, 0), EDESTADDRREQ);
}

static void unspec_client(struct conf_ctx *ctx)
{
	struct sockaddr_ivshmem to = conf_addr(ctx, ctx->peer, SRV(ctx, 0));
	int a = dg_bound(ctx, CLI(ctx, 0));
	int b = dg_bound(ctx, CLI(ctx, 1));

	CHECK_OK(connect(a, (struct sockaddr *)&to, sizeof(to)));
	dissolve(a);
	ctl_expect(ctx, "DISSOLVED");
	/* The server's socket takes datagrams from anyone again ... */
	send_dgram(ctx, b, SRV(ctx, 0), 40, 71);
	ctl_expect(ctx, "GOT");
	/* ... and ours still sends with an explicit address. */
	send_dgram(ctx, a, SRV(ctx, 0), 41, 72);
	ctl_expect(ctx, "DONE");
	close(a);
	close(b);
}

static void unspec_server(struct conf_ctx *ctx)
{
	struct sockaddr_ivshmem to = conf_addr(ctx, ctx->peer, CLI(ctx, 5));
	int fd = dg_bound(ctx, SRV(ctx, 0));

	CHECK_OK(connect(fd, (struct sockaddr *)&to, sizeof(to)));
	dissolve(fd);
	ctl_send(ctx, "DISSOLVED");
	expect_dgram(ctx, fd, 40, 71, CLI(ctx, 1));
	ctl_send(ctx, "GOT");
	expect_dgram(ctx, fd, 41, 72, CLI(ctx, 0));
	ctl_send(ctx, "DONE");
	close(fd);
}

/* ------------------------------------------------------------------ */

#define DROPS	5

static uint64_t read_stat(const char *name);

/* The receiving guest's dgram_dropped_no_socket counter. */
static uint64_t read_dropped(void)
{
	return read_stat("dgram_dropped_no_socket");
}

static void drop_client(struct conf_ctx *ctx)
{
	int fd = dg_bound(ctx, CLI(ctx, 0));
	int i;

	ctl_expect(ctx, "BOUND");
	for (i = 0; i < DROPS; i++)
		send_dgram(ctx, fd, SRV(ctx, 3), 20, 80 + i);
	send_dgram(ctx, fd, SRV(ctx, 0), 21, 89);
	ctl_expect(ctx, "DONE");
	close(fd);
}

static void drop_server(struct conf_ctx *ctx)
{
	uint64_t before = read_dropped(), after;
	uint64_t deadline;
	int fd = dg_bound(ctx, SRV(ctx, 0));

	ctl_send(ctx, "BOUND");
	/* Only the datagram for the bound port, none of the others. */
	expect_dgram(ctx, fd, 21, 89, CLI(ctx, 0));
	/* The counter may trail the delivery a little. */
	deadline = now_ms() + 2000;
	while ((after = read_dropped()) < before + DROPS && now_ms() < deadline)
		usleep(20000);
	CHECK_EQ(after - before, DROPS);
	expect_no_dgram(fd, 200);
	CHECK_EQ(read_dropped() - before, DROPS);
	ctl_send(ctx, "DONE");
	close(fd);
}

/* ------------------------------------------------------------------ */

static void peek_client(struct conf_ctx *ctx)
{
	int fd = dg_bound(ctx, CLI(ctx, 0));

	ctl_expect(ctx, "BOUND");
	send_dgram(ctx, fd, SRV(ctx, 0), 40, 91);
	send_dgram(ctx, fd, SRV(ctx, 0), 8, 92);
	ctl_expect(ctx, "DONE");
	close(fd);
}

static void peek_server(struct conf_ctx *ctx)
{
	int fd = dg_bound(ctx, SRV(ctx, 0));
	char buf[256];
	struct dg_msg m;
	int i;

	ctl_send(ctx, "BOUND");
	for (i = 0; i < 2; i++) {
		memset(buf, 0, sizeof(buf));
		dg_recv(fd, buf, sizeof(buf), MSG_PEEK, &m);
		CHECK_EQ(m.n, 40);
		CHECK(check_pattern(buf, 40, 91, 0));
		check_from(ctx, &m, CLI(ctx, 0));
	}
	expect_dgram(ctx, fd, 40, 91, CLI(ctx, 0));
	expect_dgram(ctx, fd, 8, 92, CLI(ctx, 0));
	ctl_send(ctx, "DONE");
	close(fd);
}

/* ------------------------------------------------------------------ */

static void dontwait_client(struct conf_ctx *ctx)
{
	int fd = dg_bound(ctx, CLI(ctx, 0));
	char c;

	CHECK_ERR(recv(fd, &c, 1, MSG_DONTWAIT), EAGAIN);
	CHECK_ERR(recvfrom(fd, &c, 1, MSG_DONTWAIT, NULL, NULL), EAGAIN);
	CHECK_OK(fcntl(fd, F_SETFL, O_NONBLOCK));
	CHECK_ERR(recv(fd, &c, 1, 0), EAGAIN);
	close(fd);
}

static void rcvtimeo_client(struct conf_ctx *ctx)
{
	int fd = dg_bound(ctx, CLI(ctx, 0));
	struct timeval tv = { .tv_sec = 0, .tv_usec = 200000 };
	uint64_t t0, dt;
	char c;

	CHECK_OK(setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)));
	t0 = now_ms();
	CHECK_ERR(recv(fd, &c, 1, 0), EAGAIN);
	dt = now_ms() - t0;
	if (dt < 150 || dt > 5000)
		conf_fail("recv timed out after %llu ms, expected about 200",
			  (unsigned long long)dt);
	close(fd);
}

/* ------------------------------------------------------------------ */

static void one_client(struct conf_ctx *ctx)
{
	int fd = dg_bound(ctx, CLI(ctx, 0));

	ctl_expect(ctx, "BOUND");
	send_dgram(ctx, fd, SRV(ctx, 0), 77, 101);
	ctl_expect(ctx, "DONE");
	close(fd);
}

static void poll_server(struct conf_ctx *ctx)
{
	int fd = dg_bound(ctx, SRV(ctx, 0));
	struct pollfd pfd = { .fd = fd, .events = POLLIN | POLLOUT };

	CHECK_EQ(CHECK_OK(poll(&pfd, 1, 0)), 1);
	CHECK_EQ(pfd.revents, POLLOUT);
	ctl_send(ctx, "BOUND");
	wait_readable(fd);
	pfd.revents = 0;
	CHECK_EQ(CHECK_OK(poll(&pfd, 1, 0)), 1);
	CHECK_EQ(pfd.revents, POLLIN | POLLOUT);
	expect_dgram(ctx, fd, 77, 101, CLI(ctx, 0));
	pfd.revents = 0;
	CHECK_EQ(CHECK_OK(poll(&pfd, 1, 0)), 1);
	CHECK_EQ(pfd.revents, POLLOUT);
	ctl_send(ctx, "DONE");
	close(fd);
}

/* ------------------------------------------------------------------ */

#define EPOLL_ROUNDS	3

static void epoll_client(struct conf_ctx *ctx)
{
	int fd = dg_bound(ctx, CLI(ctx, 0));
	int i;

	for (i = 0; i < EPOLL_ROUNDS; i++) {
		ctl_expect(ctx, "READY");
		send_dgram(ctx, fd, SRV(ctx, 0), 10 + i, 110 + i);
	}
	ctl_expect(ctx, "DONE");
	close(fd);
}

static void epoll_server(struct conf_ctx *ctx)
{
	int fd = dg_bound(ctx, SRV(ctx, 0));
	int ep = (int)CHECK_OK(epoll_create1(0));
	struct epoll_event ev = { .events = EPOLLIN | EPOLLET };
	struct epoll_event out[4];
	int i;

	ev.data.fd = fd;
	CHECK_OK(epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev));
	CHECK_EQ(CHECK_OK(epoll_wait(ep, out, 4, 0)), 0);
	for (i = 0; i < EPOLL_ROUNDS; i++) {
		ctl_send(ctx, "READY");
		CHECK_EQ(CHECK_OK(epoll_wait(ep, out, 4, 10000)), 1);
		CHECK_EQ(out[0].data.fd, fd);
		CHECK(out[0].events & EPOLLIN);
		/* Drain. */
		expect_dgram(ctx, fd, 10 + i, 110 + i, CLI(ctx, 0));
		{
			char c;

			CHECK_ERR(recv(fd, &c, 1, MSG_DONTWAIT), EAGAIN);
		}
		CHECK_EQ(CHECK_OK(epoll_wait(ep, out, 4, 0)), 0);
	}
	usleep(100000);
	CHECK_EQ(CHECK_OK(epoll_wait(ep, out, 4, 0)), 0);
	ctl_send(ctx, "DONE");
	close(ep);
	close(fd);
}

/* ------------------------------------------------------------------ */

static void inq_client(struct conf_ctx *ctx)
{
	int fd = dg_bound(ctx, CLI(ctx, 0));

	ctl_expect(ctx, "BOUND");
	send_dgram(ctx, fd, SRV(ctx, 0), 300, 121);
	send_dgram(ctx, fd, SRV(ctx, 0), 100, 122);
	ctl_expect(ctx, "DONE");
	close(fd);
}

static int inq(int fd)
{
	int n = -1;

	CHECK_OK(ioctl(fd, SIOCINQ, &n));
	return n;
}

static void inq_server(struct conf_ctx *ctx)
{
	int fd = dg_bound(ctx, SRV(ctx, 0));

	CHECK_EQ(inq(fd), 0);
	ctl_send(ctx, "BOUND");
	wait_readable(fd);
	CHECK_EQ(inq(fd), 300);
	expect_dgram(ctx, fd, 300, 121, CLI(ctx, 0));
	wait_readable(fd);
	CHECK_EQ(inq(fd), 100);
	expect_dgram(ctx, fd, 100, 122, CLI(ctx, 0));
	CHECK_EQ(inq(fd), 0);
	ctl_send(ctx, "DONE");
	close(fd);
}

/* ------------------------------------------------------------------ */

static void listen_client(struct conf_ctx *ctx)
{
	int fd = dg_bound(ctx, CLI(ctx, 0));

	CHECK_ERR(listen(fd, 4), EOPNOTSUPP);
	CHECK_ERR(accept(fd, NULL, NULL), EOPNOTSUPP);
	close(fd);
	fd = dg_socket(ctx);
	CHECK_ERR(listen(fd, 4), EOPNOTSUPP);
	close(fd);
}

static void sockopt_client(struct conf_ctx *ctx)
{
	struct sockaddr_ivshmem to = conf_addr(ctx, ctx->peer, SRV(ctx, 0));
	int fd = dg_socket(ctx);
	uint64_t ms = 1000;
	socklen_t len = sizeof(ms);
	struct ivshmem_peer_info info;
	socklen_t ilen = sizeof(info);

	CHECK_ERR(setsockopt(fd, ctx->family, IVSHMEM_CONNECT_TIMEOUT_MS, &ms,
			     sizeof(ms)), ENOPROTOOPT);
	CHECK_ERR(getsockopt(fd, ctx->family, IVSHMEM_CONNECT_TIMEOUT_MS, &ms,
			     &len), ENOPROTOOPT);
	/* Not ENOTCONN: connected, it is still no option of this type. */
	CHECK_OK(connect(fd, (struct sockaddr *)&to, sizeof(to)));
	CHECK_ERR(getsockopt(fd, ctx->family, IVSHMEM_PEER_INFO, &info,
			     &ilen), ENOPROTOOPT);
	close(fd);
}

static void oob_client(struct conf_ctx *ctx)
{
	int fd = dg_bound(ctx, CLI(ctx, 0));
	char c;

	CHECK_ERR(dg_sendto(ctx, fd, SRV(ctx, 0), "x", 1, MSG_OOB),
		  EOPNOTSUPP);
	CHECK_ERR(recv(fd, &c, 1, MSG_OOB | MSG_DONTWAIT), EOPNOTSUPP);
	close(fd);
}

/* ------------------------------------------------------------------ */

static void inuse_client(struct conf_ctx *ctx)
{
	struct sockaddr_ivshmem addr = conf_addr(ctx, IVSHMEM_PEER_ANY,
						 CLI(ctx, 0));
	int a = dg_bound(ctx, CLI(ctx, 0));
	int b = dg_socket(ctx);
	int s = (int)CHECK_OK(socket(ctx->family, SOCK_STREAM, 0));
	int q = (int)CHECK_OK(socket(ctx->family, SOCK_SEQPACKET, 0));

	CHECK_ERR(bind(b, (struct sockaddr *)&addr, sizeof(addr)), EADDRINUSE);
	CHECK_OK(bind(s, (struct sockaddr *)&addr, sizeof(addr)));
	CHECK_OK(bind(q, (struct sockaddr *)&addr, sizeof(addr)));
	/* Free again once the first is closed. */
	close(a);
	CHECK_OK(bind(b, (struct sockaddr *)&addr, sizeof(addr)));
	close(b);
	close(s);
	close(q);
}

/* ------------------------------------------------------------------ */

#define MANY		2000
#define MANY_LEN	512
#define MANY_RCVBUF	(4 * 1024 * 1024)

/* Sends @count datagrams of @len bytes (at most MANY_LEN) to the server:
 * datagram i starts with i, then the pattern of seed @seed + i.
 */
static void send_numbered(struct conf_ctx *ctx, int fd, uint32_t count,
			  size_t len, uint32_t seed)
{
	char buf[MANY_LEN];
	uint32_t i;

	for (i = 0; i < count; i++) {
		fill_pattern(buf, len, seed + i, 0);
		memcpy(buf, &i, sizeof(i));
		CHECK_EQ(CHECK_OK(dg_sendto(ctx, fd, SRV(ctx, 0), buf, len,
					    0)), (ssize_t)len);
	}
}

/* Receives what send_numbered() sent, in order, from the client. */
static void recv_numbered(struct conf_ctx *ctx, int fd, uint32_t count,
			  size_t len, uint32_t seed)
{
	char buf[2 * MANY_LEN];
	uint32_t i, no;
	struct dg_msg m;

	for (i = 0; i < count; i++) {
		dg_recv(fd, buf, sizeof(buf), 0, &m);
		memcpy(&no, buf, sizeof(no));
		if (m.n != (ssize_t)len || no != i ||
		    !check_pattern(buf + 4, len - 4, seed + i, 4))
			conf_fail("datagram %u: %zd bytes, number %u, expected %zu bytes numbered %u%s",
				  i, m.n, no, len, i,
				  m.n == (ssize_t)len && no == i ?
				  ", contents differ" : "");
		check_from(ctx, &m, CLI(ctx, 0));
	}
}

static void many_client(struct conf_ctx *ctx)
{
	int fd = dg_bound(ctx, CLI(ctx, 0));

	ctl_expect(ctx, "BOUND");
	send_numbered(ctx, fd, MANY, MANY_LEN, 1000);
	ctl_expect(ctx, "DONE");
	close(fd);
}

/* A datagram socket bound to the server port with a receive buffer of
 * @rcvbuf bytes: past net.core.rmem_max if we may (root in the lab), else
 * as far as SO_RCVBUF goes.
 */
static int dg_big_server(struct conf_ctx *ctx, int rcvbuf)
{
	int fd = dg_socket(ctx);
	struct sockaddr_ivshmem addr = conf_addr(ctx, IVSHMEM_PEER_ANY,
						 SRV(ctx, 0));

	if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &rcvbuf,
		       sizeof(rcvbuf)))
		CHECK_OK(setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf,
				    sizeof(rcvbuf)));
	CHECK_OK(bind(fd, (struct sockaddr *)&addr, sizeof(addr)));
	return fd;
}

static void many_server(struct conf_ctx *ctx)
{
	int fd = dg_big_server(ctx, MANY_RCVBUF);

	ctl_send(ctx, "BOUND");
	recv_numbered(ctx, fd, MANY, MANY_LEN, 1000);
	expect_no_dgram(fd, 200);
	ctl_send(ctx, "DONE");
	close(fd);
}

/* ------------------------------------------------------------------ */

/* 10,000 small datagrams fill the channel; the largest one after them
 * needs more room than one pass of the receiver frees (256 datagrams),
 * so its blocking sender must be woken again until it has the room.
 */
#define SMALL		10000
#define SMALL_LEN	16
#define BIG_SEED	77

static void small_big_client(struct conf_ctx *ctx)
{
	int fd = dg_bound(ctx, CLI(ctx, 0));
	static char big[IVSHMEM_DGRAM_MAX];

	ctl_expect(ctx, "BOUND");
	send_numbered(ctx, fd, SMALL, SMALL_LEN, 3000);
	fill_pattern(big, sizeof(big), BIG_SEED, 0);
	CHECK_EQ(CHECK_OK(dg_sendto(ctx, fd, SRV(ctx, 0), big, sizeof(big),
				    0)), IVSHMEM_DGRAM_MAX);
	ctl_expect(ctx, "DONE");
	close(fd);
}

static void small_big_server(struct conf_ctx *ctx)
{
	int fd = dg_big_server(ctx, 4 * MANY_RCVBUF);
	static char buf[IVSHMEM_DGRAM_MAX + 1];
	struct dg_msg m;

	ctl_send(ctx, "BOUND");
	recv_numbered(ctx, fd, SMALL, SMALL_LEN, 3000);
	dg_recv(fd, buf, sizeof(buf), 0, &m);
	if (m.n != IVSHMEM_DGRAM_MAX ||
	    !check_pattern(buf, IVSHMEM_DGRAM_MAX, BIG_SEED, 0))
		conf_fail("the last datagram: %zd bytes, expected %d bytes%s",
			  m.n, IVSHMEM_DGRAM_MAX,
			  m.n == IVSHMEM_DGRAM_MAX ? ", contents differ" : "");
	check_from(ctx, &m, CLI(ctx, 0));
	expect_no_dgram(fd, 200);
	ctl_send(ctx, "DONE");
	close(fd);
}

/* ------------------------------------------------------------------ */

static void shutrd_client(struct conf_ctx *ctx)
{
	struct sockaddr_ivshmem to = conf_addr(ctx, ctx->peer, SRV(ctx, 0));
	int fd = dg_bound(ctx, CLI(ctx, 0));
	uint64_t deadline;
	pid_t pid;
	int status;
	char c;

	CHECK_OK(connect(fd, (struct sockaddr *)&to, sizeof(to)));
	pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		/* Blocks until the parent shuts the socket down. */
		ssize_t n = recv(fd, &c, 1, 0);

		_exit(n == 0 ? 0 : n < 0 ? 2 : 3);
	}
	usleep(300000);
	CHECK_OK(shutdown(fd, SHUT_RD));
	deadline = now_ms() + 5000;
	while (!waitpid(pid, &status, WNOHANG)) {
		if (now_ms() > deadline) {
			kill(pid, SIGKILL);
			waitpid(pid, &status, 0);
			conf_fail("a recv blocked before shutdown(SHUT_RD) did not return");
		}
		usleep(10000);
	}
	if (!WIFEXITED(status) || WEXITSTATUS(status))
		conf_fail("the blocked recv %s",
			  WIFEXITED(status) && WEXITSTATUS(status) == 2 ?
			  "failed" : "did not return 0");
	/* And the next one returns 0 at once. */
	CHECK_EQ(CHECK_OK(recv(fd, &c, 1, 0)), 0);
	close(fd);
}

static void shutnc_client(struct conf_ctx *ctx)
{
	int fd = dg_socket(ctx);

	CHECK_ERR(shutdown(fd, SHUT_RD), ENOTCONN);
	close(fd);
	fd = dg_bound(ctx, CLI(ctx, 0));
	CHECK_ERR(shutdown(fd, SHUT_RDWR), ENOTCONN);
	close(fd);
}

/* ------------------------------------------------------------------ */

static uint64_t read_stat(const char *name)
{
	char pattern[256], path[4096];
	unsigned long long v;
	glob_t g;
	FILE *f;

	snprintf(pattern, sizeof(pattern), STATS_GLOB "%s", name);
	if (glob(pattern, 0, NULL, &g) || !g.gl_pathc)
		conf_fail("no %s", pattern);
	snprintf(path, sizeof(path), "%s", g.gl_pathv[0]);
	globfree(&g);
	f = fopen(path, "r");
	if (!f)
		conf_fail("%s: %s", path, strerror(errno));
	if (fscanf(f, "%llu", &v) != 1)
		conf_fail("%s: not a number", path);
	fclose(f);
	return v;
}

static void typed_client(struct conf_ctx *ctx)
{
	int fd = dg_bound(ctx, CLI(ctx, 0));
	int i;

	ctl_expect(ctx, "BOUND");
	for (i = 0; i < DROPS; i++)
		send_dgram(ctx, fd, SRV(ctx, 3), 20, 140 + i);
	send_dgram(ctx, fd, SRV(ctx, 0), 21, 149);
	ctl_expect(ctx, "DONE");
	close(fd);
}

static void typed_server(struct conf_ctx *ctx)
{
	int st = conf_listen(ctx, SOCK_STREAM, SRV(ctx, 3), 4);
	int sq = conf_listen(ctx, SOCK_SEQPACKET, SRV(ctx, 3), 4);
	uint64_t before = read_stat("dgram_dropped_no_socket"), after;
	uint64_t deadline;
	int fd = dg_bound(ctx, SRV(ctx, 0));
	struct pollfd pfd[2] = {
		{ .fd = st, .events = POLLIN },
		{ .fd = sq, .events = POLLIN },
	};

	ctl_send(ctx, "BOUND");
	expect_dgram(ctx, fd, 21, 149, CLI(ctx, 0));
	deadline = now_ms() + 2000;
	while ((after = read_stat("dgram_dropped_no_socket")) <
	       before + DROPS && now_ms() < deadline)
		usleep(20000);
	CHECK_EQ(after - before, DROPS);
	/* The listeners saw nothing. */
	CHECK_EQ(CHECK_OK(poll(pfd, 2, 0)), 0);
	ctl_send(ctx, "DONE");
	close(fd);
	close(st);
	close(sq);
}

/* ------------------------------------------------------------------ */

#define FLOOD		200
#define FLOOD_LEN	1000

static void flood_client(struct conf_ctx *ctx)
{
	int fd = dg_bound(ctx, CLI(ctx, 0));
	char buf[FLOOD_LEN];
	uint32_t i;

	ctl_expect(ctx, "BOUND");
	for (i = 0; i < FLOOD; i++) {
		fill_pattern(buf, sizeof(buf), 2000 + i, 0);
		memcpy(buf, &i, sizeof(i));
		CHECK_EQ(CHECK_OK(dg_sendto(ctx, fd, SRV(ctx, 0), buf,
					    sizeof(buf), 0)), FLOOD_LEN);
	}
	ctl_send(ctx, "SENT");
	ctl_expect(ctx, "DONE");
	close(fd);
}

static void flood_server(struct conf_ctx *ctx)
{
	int fd = dg_socket(ctx);
	struct sockaddr_ivshmem addr = conf_addr(ctx, IVSHMEM_PEER_ANY,
						 SRV(ctx, 0));
	int rcvbuf = 4096;	/* the kernel's minimum: a few datagrams */
	uint64_t before, dropped = 0, deadline;
	uint32_t got = 0, no, last = 0;
	char buf[2 * FLOOD_LEN];
	ssize_t n;

	CHECK_OK(setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf,
			    sizeof(rcvbuf)));
	CHECK_OK(bind(fd, (struct sockaddr *)&addr, sizeof(addr)));
	before = read_stat("dgram_dropped_rcvbuf");
	ctl_send(ctx, "BOUND");
	ctl_expect(ctx, "SENT");
	/* Every datagram is either received or counted as dropped. */
	deadline = now_ms() + 10000;
	while (got + dropped < FLOOD && now_ms() < deadline) {
		while ((n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT)) >= 0) {
			memcpy(&no, buf, sizeof(no));
			if (n != FLOOD_LEN || no >= FLOOD ||
			    (got && no <= last) ||
			    !check_pattern(buf + 4, FLOOD_LEN - 4, 2000 + no,
					   4))
				conf_fail("datagram %u received: %zd bytes, number %u after %u",
					  got, n, no, last);
			last = no;
			got++;
		}
		CHECK_EQ(errno, EAGAIN);
		dropped = read_stat("dgram_dropped_rcvbuf") - before;
		usleep(20000);
	}
	if (got + dropped != FLOOD || !dropped)
		conf_fail("%u received + %llu counted in dgram_dropped_rcvbuf, expected %d in all, some dropped",
			  got, (unsigned long long)dropped, FLOOD);
	ctl_send(ctx, "DONE");
	close(fd);
}

/* ------------------------------------------------------------------ */

const struct conf_case conf_dgram_cases[] = {
	{ "dgram: recvfrom returns the bytes and the sender's address (family, bound port, peer id, region 0, addrlen 16)",
	  addr_client, addr_server, 0 },
	{ "dgram: an unbound sender is auto-bound to an ephemeral port, seen by getsockname and recvfrom",
	  autobind_client, autobind_server, 0 },
	{ "dgram: datagrams of 1, 1000 and 65507 bytes arrive as three datagrams of those sizes, in order",
	  bounds_client, bounds_server, 0 },
	{ "dgram: IVSHMEM_DGRAM_MAX (65507) bytes are accepted, 65508 fail with EMSGSIZE",
	  max_client, max_server, 0 },
	{ "dgram: a short buffer gets MSG_TRUNC and the rest is discarded",
	  two_client, trunc_server, 0 },
	{ "dgram: recv with the MSG_TRUNC flag returns the full datagram length",
	  two_client, trunc_flag_server, 0 },
	{ "dgram: a zero-length datagram is delivered with the sender's address",
	  zero_client, zero_server, 0 },
	{ "dgram: send on an unconnected socket fails with EDESTADDRREQ",
	  nodest_client, NULL, 0 },
	{ "dgram: sendto with a short address length fails with EINVAL",
	  addrlen_client, NULL, 0 },
	{ "dgram: sendto with another family fails with EAFNOSUPPORT",
	  family_client, NULL, 0 },
	{ "dgram: sendto PEER_ANY or PORT_ANY fails with EINVAL",
	  wildcard_client, NULL, 0 },
	{ "dgram: sendto a nonexistent peer id (60) fails with EHOSTUNREACH",
	  nopeer_client, NULL, 0 },
	{ "dgram: connect sets the default destination: send works, getpeername returns it",
	  connect_client, connect_server, 0 },
	{ "dgram: a connected socket receives only from its peer address",
	  filter_client, filter_server, 0 },
	{ "dgram: connect to AF_UNSPEC dissolves the association (ENOTCONN, EDESTADDRREQ, any sender again)",
	  unspec_client, unspec_server, 0 },
	{ "dgram: datagrams to an unbound port are dropped and counted in dgram_dropped_no_socket",
	  drop_client, drop_server, 0 },
	{ "dgram: datagrams to a port with only STREAM and SEQPACKET listeners are dropped as unbound",
	  typed_client, typed_server, 0 },
	{ "dgram: with a full receive buffer every datagram is received or counted in dgram_dropped_rcvbuf",
	  flood_client, flood_server, 60 },
	{ "dgram: MSG_PEEK returns the next datagram and its sender without consuming it",
	  peek_client, peek_server, 0 },
	{ "dgram: recv with MSG_DONTWAIT or O_NONBLOCK on an empty socket fails with EAGAIN",
	  dontwait_client, NULL, 0 },
	{ "dgram: SO_RCVTIMEO of 200 ms fails recv with EAGAIN after at least 150 ms",
	  rcvtimeo_client, NULL, 0 },
	{ "dgram: poll is POLLOUT when empty and POLLIN|POLLOUT with a datagram queued",
	  one_client, poll_server, 0 },
	{ "dgram: edge-triggered epoll gives one event per arrival and none after draining",
	  epoll_client, epoll_server, 0 },
	{ "dgram: SIOCINQ is the size of the next datagram (300, then 100, then 0)",
	  inq_client, inq_server, 0 },
	{ "dgram: listen and accept fail with EOPNOTSUPP",
	  listen_client, NULL, 0 },
	{ "dgram: IVSHMEM_CONNECT_TIMEOUT_MS and IVSHMEM_PEER_INFO fail with ENOPROTOOPT",
	  sockopt_client, NULL, 0 },
	{ "dgram: MSG_OOB fails with EOPNOTSUPP",
	  oob_client, NULL, 0 },
	{ "dgram: binding a port bound by another datagram socket fails with EADDRINUSE, STREAM and SEQPACKET may share it",
	  inuse_client, NULL, 0 },
	{ "dgram: 2000 numbered 512-byte datagrams from a blocking sender all arrive in order",
	  many_client, many_server, 240 },
	{ "dgram: a largest datagram after 10000 small ones from a blocking sender arrives whole",
	  small_big_client, small_big_server, 240 },
	{ "dgram: shutdown(SHUT_RD) on a connected socket makes a blocked and the next recv return 0",
	  shutrd_client, NULL, 0 },
	{ "dgram: shutdown on an unconnected socket fails with ENOTCONN",
	  shutnc_client, NULL, 0 },
	{ NULL, NULL, NULL, 0 },
};
