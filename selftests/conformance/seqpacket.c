// SPDX-License-Identifier: GPL-2.0
/*
 * AF_IVSHMEM conformance suite: SOCK_SEQPACKET cases.
 *
 * Connection setup is that of SOCK_STREAM; what differs is that every
 * send() is one message, delivered whole (MSG_EOR) or truncated
 * (MSG_TRUNC, the rest discarded), never merged with its neighbours.
 */
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <sys/uio.h>
#include <unistd.h>
#include <linux/sockios.h>

#include "conformance.h"

/* The channel a sender gets with SO_SNDBUF 16384 set before connect(). */
#define SMALL_CHANNEL	16384

static int sp_socket(struct conf_ctx *ctx)
{
	return (int)CHECK_OK(socket(ctx->family, SOCK_SEQPACKET, 0));
}

/* A SEQPACKET socket with SO_SNDBUF @sndbuf, connected to ctx->port. */
static int sp_connect_sndbuf(struct conf_ctx *ctx, int sndbuf)
{
	struct sockaddr_ivshmem addr = conf_addr(ctx, ctx->peer, ctx->port);
	int fd = sp_socket(ctx);

	ctl_expect(ctx, "LISTENING");
	CHECK_OK(setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sndbuf,
			    sizeof(sndbuf)));
	CHECK_OK(connect(fd, (struct sockaddr *)&addr, sizeof(addr)));
	return fd;
}

/* recvmsg() into one buffer; *@mflags gets msg_flags. */
static ssize_t recv_flags(int fd, void *buf, size_t len, int flags,
			  int *mflags)
{
	struct iovec iov = { .iov_base = buf, .iov_len = len };
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1 };
	ssize_t n;

	msg.msg_flags = 0;
	n = recvmsg(fd, &msg, flags);
	*mflags = msg.msg_flags;
	return n;
}

/* Receives one message that must be exactly @len bytes of pattern @seed,
 * with MSG_EOR and without MSG_TRUNC.
 */
static void expect_msg(int fd, size_t len, uint64_t seed)
{
	size_t cap = len + 4096;
	char *buf = malloc(cap);
	int mflags;

	CHECK(buf);
	CHECK_EQ(CHECK_OK(recv_flags(fd, buf, cap, 0, &mflags)), (long long)len);
	CHECK(mflags & MSG_EOR);
	CHECK(!(mflags & MSG_TRUNC));
	CHECK(check_pattern(buf, len, seed, 0));
	free(buf);
}

static void send_msg(int fd, size_t len, uint64_t seed, int flags)
{
	char *buf = malloc(len ? len : 1);

	CHECK(buf);
	fill_pattern(buf, len, seed, 0);
	CHECK_EQ(CHECK_OK(send(fd, buf, len, flags)), (long long)len);
	free(buf);
}

static void expect_nothing_queued(int fd)
{
	char c;

	CHECK_ERR(recv(fd, &c, 1, MSG_DONTWAIT), EAGAIN);
}

/* ------------------------------------------------------------------ */

static void boundaries_client(struct conf_ctx *ctx)
{
	int fd = conf_connect_one(ctx, SOCK_SEQPACKET);

	send_msg(fd, 100, 1, 0);
	send_msg(fd, 200, 2, 0);
	ctl_send(ctx, "SENT");
	ctl_expect(ctx, "DONE");
	close(fd);
}

static void boundaries_server(struct conf_ctx *ctx)
{
	int fd = conf_accept_one(ctx, SOCK_SEQPACKET);

	ctl_expect(ctx, "SENT");
	/* Both are queued: a larger buffer still gets only the first. */
	expect_msg(fd, 100, 1);
	expect_msg(fd, 200, 2);
	expect_nothing_queued(fd);
	ctl_send(ctx, "DONE");
	close(fd);
}

/* ------------------------------------------------------------------ */

static void two_msgs_client(struct conf_ctx *ctx)
{
	int fd = conf_connect_one(ctx, SOCK_SEQPACKET);

	send_msg(fd, 100, 11, 0);
	send_msg(fd, 50, 12, 0);
	ctl_send(ctx, "SENT");
	ctl_expect(ctx, "DONE");
	close(fd);
}

static void trunc_server(struct conf_ctx *ctx)
{
	int fd = conf_accept_one(ctx, SOCK_SEQPACKET);
	char buf[10];
	int mflags;

	ctl_expect(ctx, "SENT");
	CHECK_EQ(CHECK_OK(recv_flags(fd, buf, sizeof(buf), 0, &mflags)), 10);
	CHECK(mflags & MSG_TRUNC);
	CHECK(check_pattern(buf, sizeof(buf), 11, 0));
	/* The other 90 bytes are gone: the next recv is the next message. */
	expect_msg(fd, 50, 12);
	expect_nothing_queued(fd);
	ctl_send(ctx, "DONE");
	close(fd);
}

static void trunc_flag_server(struct conf_ctx *ctx)
{
	int fd = conf_accept_one(ctx, SOCK_SEQPACKET);
	char buf[10];
	int mflags;

	ctl_expect(ctx, "SENT");
	CHECK_EQ(CHECK_OK(recv_flags(fd, buf, sizeof(buf), MSG_TRUNC,
				     &mflags)), 100);
	CHECK(mflags & MSG_TRUNC);
	CHECK(check_pattern(buf, sizeof(buf), 11, 0));
	expect_msg(fd, 50, 12);
	expect_nothing_queued(fd);
	ctl_send(ctx, "DONE");
	close(fd);
}

/* ------------------------------------------------------------------ */

#define BIG_MSG		(1024 * 1024)

static void big_client(struct conf_ctx *ctx)
{
	int fd = sp_connect_sndbuf(ctx, SMALL_CHANNEL);

	send_msg(fd, BIG_MSG, 21, 0);
	ctl_expect(ctx, "DONE");
	close(fd);
}

static void big_server(struct conf_ctx *ctx)
{
	int fd = conf_accept_one(ctx, SOCK_SEQPACKET);
	size_t cap = 2 * BIG_MSG;
	char *buf = malloc(cap);
	int mflags;

	CHECK(buf);
	/* One recv, started before the message is complete. */
	CHECK_EQ(CHECK_OK(recv_flags(fd, buf, cap, 0, &mflags)), BIG_MSG);
	CHECK(mflags & MSG_EOR);
	CHECK(!(mflags & MSG_TRUNC));
	CHECK(check_pattern(buf, BIG_MSG, 21, 0));
	free(buf);
	ctl_send(ctx, "DONE");
	close(fd);
}

/* ------------------------------------------------------------------ */

static void zero_client(struct conf_ctx *ctx)
{
	int fd = conf_connect_one(ctx, SOCK_SEQPACKET);

	CHECK_EQ(CHECK_OK(send(fd, "", 0, 0)), 0);
	send_msg(fd, 5, 31, 0);
	ctl_expect(ctx, "GOT");
	close(fd);
}

static void zero_server(struct conf_ctx *ctx)
{
	int fd = conf_accept_one(ctx, SOCK_SEQPACKET);
	char buf[64];
	int mflags;

	CHECK_EQ(CHECK_OK(recv_flags(fd, buf, sizeof(buf), 0, &mflags)), 0);
	CHECK(mflags & MSG_EOR);
	expect_msg(fd, 5, 31);
	ctl_send(ctx, "GOT");
	/* Now the peer closes: 0 again, but without MSG_EOR. */
	CHECK_EQ(CHECK_OK(recv_flags(fd, buf, sizeof(buf), 0, &mflags)), 0);
	CHECK(!(mflags & MSG_EOR));
	close(fd);
}

/* ------------------------------------------------------------------ */

static void peek_client(struct conf_ctx *ctx)
{
	int fd = conf_connect_one(ctx, SOCK_SEQPACKET);

	send_msg(fd, 50, 41, 0);
	send_msg(fd, 7, 42, 0);
	ctl_expect(ctx, "DONE");
	close(fd);
}

static void peek_server(struct conf_ctx *ctx)
{
	int fd = conf_accept_one(ctx, SOCK_SEQPACKET);
	char buf[256];
	int mflags;

	memset(buf, 0, sizeof(buf));
	CHECK_EQ(CHECK_OK(recv_flags(fd, buf, sizeof(buf), MSG_PEEK,
				     &mflags)), 50);
	CHECK(check_pattern(buf, 50, 41, 0));
	memset(buf, 0, sizeof(buf));
	CHECK_EQ(CHECK_OK(recv_flags(fd, buf, sizeof(buf), MSG_PEEK,
				     &mflags)), 50);
	CHECK(check_pattern(buf, 50, 41, 0));
	expect_msg(fd, 50, 41);
	expect_msg(fd, 7, 42);
	ctl_send(ctx, "DONE");
	close(fd);
}

/* ------------------------------------------------------------------ */

static void dontwait_client(struct conf_ctx *ctx)
{
	int fd = conf_connect_one(ctx, SOCK_SEQPACKET);

	ctl_expect(ctx, "EMPTY");
	send_msg(fd, 20, 51, 0);
	ctl_expect(ctx, "DONE");
	close(fd);
}

static void dontwait_server(struct conf_ctx *ctx)
{
	int fd = conf_accept_one(ctx, SOCK_SEQPACKET);
	struct pollfd pfd = { .fd = fd, .events = POLLIN };
	char c;

	CHECK_ERR(recv(fd, &c, 1, MSG_DONTWAIT), EAGAIN);
	/* O_NONBLOCK does the same. */
	CHECK_OK(fcntl(fd, F_SETFL, O_NONBLOCK));
	CHECK_ERR(recv(fd, &c, 1, 0), EAGAIN);
	CHECK_OK(fcntl(fd, F_SETFL, 0));
	ctl_send(ctx, "EMPTY");
	CHECK_EQ(CHECK_OK(poll(&pfd, 1, 10000)), 1);
	expect_msg(fd, 20, 51);
	ctl_send(ctx, "DONE");
	close(fd);
}

/* ------------------------------------------------------------------ */

#define FIT_MSG	10000	/* one fits a 16 KiB channel, two do not */

static void nb_full_client(struct conf_ctx *ctx)
{
	int fd = sp_connect_sndbuf(ctx, SMALL_CHANNEL);
	char *buf = malloc(FIT_MSG);

	CHECK(buf);
	send_msg(fd, FIT_MSG, 61, MSG_DONTWAIT);
	fill_pattern(buf, FIT_MSG, 62, 0);
	CHECK_ERR(send(fd, buf, FIT_MSG, MSG_DONTWAIT), EAGAIN);
	ctl_send(ctx, "SENT");
	/* Once the receiver drained the first, the second fits. */
	ctl_expect(ctx, "DRAINED");
	send_msg(fd, FIT_MSG, 63, 0);
	ctl_expect(ctx, "DONE");
	free(buf);
	close(fd);
}

static void nb_full_server(struct conf_ctx *ctx)
{
	int fd = conf_accept_one(ctx, SOCK_SEQPACKET);

	ctl_expect(ctx, "SENT");
	expect_msg(fd, FIT_MSG, 61);
	/* Nothing of the refused message was delivered. */
	expect_nothing_queued(fd);
	ctl_send(ctx, "DRAINED");
	expect_msg(fd, FIT_MSG, 63);
	expect_nothing_queued(fd);
	ctl_send(ctx, "DONE");
	close(fd);
}

/* ------------------------------------------------------------------ */

static void nb_huge_client(struct conf_ctx *ctx)
{
	int fd = sp_connect_sndbuf(ctx, SMALL_CHANNEL);
	char *buf = malloc(BIG_MSG);

	CHECK(buf);
	fill_pattern(buf, BIG_MSG, 71, 0);
	/* The channel is empty: it is the size that is refused. */
	CHECK_ERR(send(fd, buf, SMALL_CHANNEL + 1, MSG_DONTWAIT), EMSGSIZE);
	CHECK_ERR(send(fd, buf, BIG_MSG, MSG_DONTWAIT), EMSGSIZE);
	send_msg(fd, 9, 72, 0);
	ctl_expect(ctx, "DONE");
	free(buf);
	close(fd);
}

static void nb_huge_server(struct conf_ctx *ctx)
{
	int fd = conf_accept_one(ctx, SOCK_SEQPACKET);

	expect_msg(fd, 9, 72);
	expect_nothing_queued(fd);
	ctl_send(ctx, "DONE");
	close(fd);
}

/* ------------------------------------------------------------------ */

#define MANY_MSGS	1000
#define MANY_MAX	3000
#define MANY_SEED	0x5eed5eedULL

static uint64_t prng_next(uint64_t *s)
{
	/* xorshift64* */
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return *s * 0x2545f4914f6cdd1dULL;
}

static void many_client(struct conf_ctx *ctx)
{
	int fd = conf_connect_one(ctx, SOCK_SEQPACKET);
	uint64_t s = MANY_SEED;
	char *buf = malloc(MANY_MAX);
	int i;

	CHECK(buf);
	for (i = 0; i < MANY_MSGS; i++) {
		size_t len = 1 + prng_next(&s) % MANY_MAX;

		fill_pattern(buf, len, 1000 + i, 0);
		CHECK_EQ(CHECK_OK(send(fd, buf, len, 0)), (long long)len);
	}
	ctl_expect(ctx, "DONE");
	free(buf);
	close(fd);
}

static void many_server(struct conf_ctx *ctx)
{
	int fd = conf_accept_one(ctx, SOCK_SEQPACKET);
	uint64_t s = MANY_SEED;
	char *buf = malloc(2 * MANY_MAX);
	int i, mflags;

	CHECK(buf);
	for (i = 0; i < MANY_MSGS; i++) {
		size_t len = 1 + prng_next(&s) % MANY_MAX;
		ssize_t n = recv_flags(fd, buf, 2 * MANY_MAX, 0, &mflags);

		if (n != (ssize_t)len || !(mflags & MSG_EOR) ||
		    !check_pattern(buf, len, 1000 + i, 0))
			conf_fail("message %d: %zd bytes (%s), flags %#x, expected %zu bytes with MSG_EOR%s",
				  i, n, n < 0 ? strerror(errno) : "ok",
				  mflags, len,
				  n == (ssize_t)len ? ", contents differ" : "");
	}
	expect_nothing_queued(fd);
	ctl_send(ctx, "DONE");
	free(buf);
	close(fd);
}

/* ------------------------------------------------------------------ */

static void inq_client(struct conf_ctx *ctx)
{
	int fd = conf_connect_one(ctx, SOCK_SEQPACKET);

	ctl_expect(ctx, "EMPTY");
	send_msg(fd, 300, 81, 0);
	send_msg(fd, 100, 82, 0);
	ctl_send(ctx, "SENT");
	ctl_expect(ctx, "DONE");
	close(fd);
}

static void inq_server(struct conf_ctx *ctx)
{
	int fd = conf_accept_one(ctx, SOCK_SEQPACKET);
	int inq = -1;

	CHECK_OK(ioctl(fd, SIOCINQ, &inq));
	CHECK_EQ(inq, 0);
	ctl_send(ctx, "EMPTY");
	ctl_expect(ctx, "SENT");
	CHECK_OK(ioctl(fd, SIOCINQ, &inq));
	CHECK_EQ(inq, 300);
	expect_msg(fd, 300, 81);
	CHECK_OK(ioctl(fd, SIOCINQ, &inq));
	CHECK_EQ(inq, 100);
	expect_msg(fd, 100, 82);
	CHECK_OK(ioctl(fd, SIOCINQ, &inq));
	CHECK_EQ(inq, 0);
	ctl_send(ctx, "DONE");
	close(fd);
}

/* ------------------------------------------------------------------ */

static void close_client(struct conf_ctx *ctx)
{
	int fd = conf_connect_one(ctx, SOCK_SEQPACKET);

	send_msg(fd, 100, 91, 0);
	close(fd);
	ctl_send(ctx, "CLOSED");
}

static void close_server(struct conf_ctx *ctx)
{
	int fd = conf_accept_one(ctx, SOCK_SEQPACKET);
	char buf[256];
	int mflags;

	ctl_expect(ctx, "CLOSED");
	/* What was sent before close() is still delivered, then EOF. */
	expect_msg(fd, 100, 91);
	CHECK_EQ(CHECK_OK(recv_flags(fd, buf, sizeof(buf), 0, &mflags)), 0);
	CHECK(!(mflags & MSG_EOR));
	CHECK_EQ(CHECK_OK(recv_flags(fd, buf, sizeof(buf), 0, &mflags)), 0);
	close(fd);
}

static void shutwr_client(struct conf_ctx *ctx)
{
	int fd = conf_connect_one(ctx, SOCK_SEQPACKET);

	send_msg(fd, 100, 92, 0);
	CHECK_OK(shutdown(fd, SHUT_WR));
	ctl_send(ctx, "SHUT");
	/* The other direction still works. */
	expect_msg(fd, 33, 93);
	ctl_send(ctx, "DONE");
	close(fd);
}

static void shutwr_server(struct conf_ctx *ctx)
{
	int fd = conf_accept_one(ctx, SOCK_SEQPACKET);
	char buf[256];
	int mflags;

	ctl_expect(ctx, "SHUT");
	expect_msg(fd, 100, 92);
	CHECK_EQ(CHECK_OK(recv_flags(fd, buf, sizeof(buf), 0, &mflags)), 0);
	CHECK(!(mflags & MSG_EOR));
	send_msg(fd, 33, 93, 0);
	ctl_expect(ctx, "DONE");
	close(fd);
}

/* ------------------------------------------------------------------ */

static void iov_client(struct conf_ctx *ctx)
{
	int fd = conf_connect_one(ctx, SOCK_SEQPACKET);
	char all[60];
	struct iovec iov[3] = {
		{ .iov_base = all, .iov_len = 10 },
		{ .iov_base = all + 10, .iov_len = 20 },
		{ .iov_base = all + 30, .iov_len = 30 },
	};
	struct msghdr msg = { .msg_iov = iov, .msg_iovlen = 3 };

	fill_pattern(all, sizeof(all), 101, 0);
	CHECK_EQ(CHECK_OK(sendmsg(fd, &msg, 0)), 60);
	send_msg(fd, 7, 102, 0);
	ctl_send(ctx, "SENT");
	ctl_expect(ctx, "DONE");
	close(fd);
}

static void iov_server(struct conf_ctx *ctx)
{
	int fd = conf_accept_one(ctx, SOCK_SEQPACKET);

	ctl_expect(ctx, "SENT");
	expect_msg(fd, 60, 101);
	expect_msg(fd, 7, 102);
	ctl_send(ctx, "DONE");
	close(fd);
}

/* ------------------------------------------------------------------ */

static void get_info(struct conf_ctx *ctx, int fd,
		     struct ivshmem_peer_info *info)
{
	socklen_t len = sizeof(*info);

	memset(info, 0xa5, sizeof(*info));
	CHECK_OK(getsockopt(fd, ctx->family, IVSHMEM_PEER_INFO, info, &len));
	CHECK_EQ(len, sizeof(*info));
	CHECK_EQ(info->region, 0);
	CHECK_EQ(info->reserved, 0);
}

static void info_client(struct conf_ctx *ctx)
{
	int fd = conf_connect_one(ctx, SOCK_SEQPACKET);
	struct sockaddr_ivshmem me;
	socklen_t len = sizeof(me);
	struct ivshmem_peer_info info;
	uint64_t server_pid;

	CHECK_OK(getsockname(fd, (struct sockaddr *)&me, &len));
	ctl_send_u64(ctx, me.sivshm_port);
	ctl_send_u64(ctx, (uint64_t)getpid());
	server_pid = ctl_recv_u64(ctx);

	get_info(ctx, fd, &info);
	CHECK_EQ(info.peer, ctx->peer);
	CHECK_EQ(info.port, ctx->port);
	CHECK_EQ(info.pid, server_pid);
	ctl_send(ctx, "DONE");
	ctl_expect(ctx, "DONE");
	close(fd);
}

static void info_server(struct conf_ctx *ctx)
{
	int fd = conf_accept_one(ctx, SOCK_SEQPACKET);
	struct ivshmem_peer_info info;
	uint64_t port, pid;

	port = ctl_recv_u64(ctx);
	pid = ctl_recv_u64(ctx);
	/* conf_accept_one() created the listener in this process. */
	ctl_send_u64(ctx, (uint64_t)getpid());

	get_info(ctx, fd, &info);
	CHECK_EQ(info.peer, ctx->peer);
	CHECK_EQ(info.port, port);
	CHECK_EQ(info.pid, pid);
	ctl_expect(ctx, "DONE");
	ctl_send(ctx, "DONE");
	close(fd);
}

/* ------------------------------------------------------------------ */

static void refuse_stream_client(struct conf_ctx *ctx)
{
	struct sockaddr_ivshmem addr = conf_addr(ctx, ctx->peer, ctx->port);
	int fd = (int)CHECK_OK(socket(ctx->family, SOCK_STREAM, 0));

	ctl_expect(ctx, "LISTENING");
	CHECK_ERR(connect(fd, (struct sockaddr *)&addr, sizeof(addr)),
		  ECONNREFUSED);
	close(fd);
	/* The listener is there for its own type. */
	fd = conf_connect(ctx, SOCK_SEQPACKET, ctx->port);
	send_msg(fd, 10, 111, 0);
	ctl_expect(ctx, "DONE");
	close(fd);
}

static void refuse_stream_server(struct conf_ctx *ctx)
{
	int lfd = conf_listen(ctx, SOCK_SEQPACKET, ctx->port, 4);
	int fd;

	ctl_send(ctx, "LISTENING");
	fd = (int)CHECK_OK(accept(lfd, NULL, NULL));
	expect_msg(fd, 10, 111);
	ctl_send(ctx, "DONE");
	close(fd);
	close(lfd);
}

static void refuse_seqpacket_client(struct conf_ctx *ctx)
{
	struct sockaddr_ivshmem addr = conf_addr(ctx, ctx->peer, ctx->port);
	int fd = sp_socket(ctx);
	char c;

	ctl_expect(ctx, "LISTENING");
	CHECK_ERR(connect(fd, (struct sockaddr *)&addr, sizeof(addr)),
		  ECONNREFUSED);
	close(fd);
	fd = conf_connect(ctx, SOCK_STREAM, ctx->port);
	CHECK_EQ(CHECK_OK(send(fd, "x", 1, 0)), 1);
	CHECK_EQ(CHECK_OK(recv(fd, &c, 1, 0)), 0);
	close(fd);
}

static void refuse_seqpacket_server(struct conf_ctx *ctx)
{
	int lfd = conf_listen(ctx, SOCK_STREAM, ctx->port, 4);
	int fd;
	char c;

	ctl_send(ctx, "LISTENING");
	fd = (int)CHECK_OK(accept(lfd, NULL, NULL));
	CHECK_EQ(CHECK_OK(recv(fd, &c, 1, 0)), 1);
	CHECK_EQ(c, 'x');
	close(fd);
	close(lfd);
}

/* ------------------------------------------------------------------ */

static void names_client(struct conf_ctx *ctx)
{
	int fd = conf_connect_one(ctx, SOCK_SEQPACKET);
	struct sockaddr_ivshmem a;
	socklen_t len = sizeof(a);
	int type = 0;
	socklen_t tlen = sizeof(type);

	CHECK_OK(getpeername(fd, (struct sockaddr *)&a, &len));
	CHECK_EQ(len, sizeof(a));
	CHECK_EQ(a.sivshm_family, ctx->family);
	CHECK_EQ(a.sivshm_peer, ctx->peer);
	CHECK_EQ(a.sivshm_port, ctx->port);
	CHECK_EQ(a.sivshm_region, 0);
	len = sizeof(a);
	CHECK_OK(getsockname(fd, (struct sockaddr *)&a, &len));
	CHECK_EQ(a.sivshm_peer, ctx->self);
	CHECK(a.sivshm_port >= IVSHMEM_EPHEMERAL_FIRST &&
	      a.sivshm_port <= IVSHMEM_EPHEMERAL_LAST);
	CHECK_OK(getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &tlen));
	CHECK_EQ(type, SOCK_SEQPACKET);
	ctl_expect(ctx, "DONE");
	close(fd);
}

static void names_server(struct conf_ctx *ctx)
{
	int fd = conf_accept_one(ctx, SOCK_SEQPACKET);
	int type = 0;
	socklen_t tlen = sizeof(type);

	CHECK_OK(getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &tlen));
	CHECK_EQ(type, SOCK_SEQPACKET);
	ctl_send(ctx, "DONE");
	close(fd);
}

/* ------------------------------------------------------------------ */

static void big_trunc_client(struct conf_ctx *ctx)
{
	int fd = sp_connect_sndbuf(ctx, SMALL_CHANNEL);

	send_msg(fd, BIG_MSG, 121, 0);
	send_msg(fd, BIG_MSG, 122, 0);
	send_msg(fd, 40, 123, 0);
	ctl_expect(ctx, "DONE");
	close(fd);
}

static void big_trunc_server(struct conf_ctx *ctx)
{
	int fd = conf_accept_one(ctx, SOCK_SEQPACKET);
	char buf[1000];
	int mflags;

	/* Most of each message is not even in the channel yet. */
	CHECK_EQ(CHECK_OK(recv_flags(fd, buf, sizeof(buf), 0, &mflags)),
		 sizeof(buf));
	CHECK(mflags & MSG_TRUNC);
	CHECK(check_pattern(buf, sizeof(buf), 121, 0));
	CHECK_EQ(CHECK_OK(recv_flags(fd, buf, sizeof(buf), MSG_TRUNC,
				     &mflags)), BIG_MSG);
	CHECK(mflags & MSG_TRUNC);
	CHECK(check_pattern(buf, sizeof(buf), 122, 0));
	expect_msg(fd, 40, 123);
	expect_nothing_queued(fd);
	ctl_send(ctx, "DONE");
	close(fd);
}

/* ------------------------------------------------------------------ */

static void peek_short_server(struct conf_ctx *ctx)
{
	int fd = conf_accept_one(ctx, SOCK_SEQPACKET);
	char buf[10];
	int mflags;

	CHECK_EQ(CHECK_OK(recv_flags(fd, buf, sizeof(buf), MSG_PEEK,
				     &mflags)), 10);
	CHECK(mflags & MSG_TRUNC);
	CHECK(check_pattern(buf, sizeof(buf), 41, 0));
	/* Nothing was discarded: the whole message is still there. */
	expect_msg(fd, 50, 41);
	expect_msg(fd, 7, 42);
	ctl_send(ctx, "DONE");
	close(fd);
}

/* ------------------------------------------------------------------ */

static void epipe_client(struct conf_ctx *ctx)
{
	int fd = conf_connect_one(ctx, SOCK_SEQPACKET);
	char c;

	CHECK_EQ(CHECK_OK(recv(fd, &c, 1, 0)), 0);
	CHECK_ERR(send(fd, "x", 1, MSG_NOSIGNAL), EPIPE);
	close(fd);
}

static void epipe_server(struct conf_ctx *ctx)
{
	close(conf_accept_one(ctx, SOCK_SEQPACKET));
}

/* ------------------------------------------------------------------ */

static void scatter_client(struct conf_ctx *ctx)
{
	int fd = conf_connect_one(ctx, SOCK_SEQPACKET);

	send_msg(fd, 60, 131, 0);
	send_msg(fd, 5, 132, 0);
	ctl_expect(ctx, "DONE");
	close(fd);
}

static void scatter_server(struct conf_ctx *ctx)
{
	int fd = conf_accept_one(ctx, SOCK_SEQPACKET);
	char all[100];
	struct iovec iov[2] = {
		{ .iov_base = all, .iov_len = 30 },
		{ .iov_base = all + 30, .iov_len = 70 },
	};
	struct msghdr msg = { .msg_iov = iov, .msg_iovlen = 2 };

	CHECK_EQ(CHECK_OK(recvmsg(fd, &msg, 0)), 60);
	CHECK(msg.msg_flags & MSG_EOR);
	CHECK(!(msg.msg_flags & MSG_TRUNC));
	CHECK(check_pattern(all, 60, 131, 0));
	expect_msg(fd, 5, 132);
	ctl_send(ctx, "DONE");
	close(fd);
}

/* ------------------------------------------------------------------ */

/* A large send cut short by SO_SNDTIMEO is abandoned: the records that
 * went out are dropped by the receiver (ABORT record), the next message
 * arrives alone.
 */
static void abandon_client(struct conf_ctx *ctx)
{
	int fd = sp_connect_sndbuf(ctx, SMALL_CHANNEL);
	struct timeval tv = { .tv_usec = 300 * 1000 };
	char *buf = malloc(BIG_MSG);

	CHECK(buf);
	fill_pattern(buf, BIG_MSG, 41, 0);
	CHECK_OK(setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)));
	/* The peer does not read: one ring's worth goes out, then time out. */
	CHECK_ERR(send(fd, buf, BIG_MSG, 0), EAGAIN);
	tv.tv_usec = 0;
	CHECK_OK(setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)));
	ctl_send(ctx, "ABANDONED");
	send_msg(fd, 100, 42, 0);
	ctl_expect(ctx, "DONE");
	free(buf);
	close(fd);
}

static void abandon_server(struct conf_ctx *ctx)
{
	int fd = conf_accept_one(ctx, SOCK_SEQPACKET);

	ctl_expect(ctx, "ABANDONED");
	expect_msg(fd, 100, 42);
	expect_nothing_queued(fd);
	ctl_send(ctx, "DONE");
	close(fd);
}

/* ------------------------------------------------------------------ */

const struct conf_case conf_seqpacket_cases[] = {
	{ "seqpacket: sends of 100 and 200 bytes arrive as two messages of 100 and 200 with MSG_EOR",
	  boundaries_client, boundaries_server, 0 },
	{ "seqpacket: a short buffer gets MSG_TRUNC and the rest is discarded",
	  two_msgs_client, trunc_server, 0 },
	{ "seqpacket: recv with the MSG_TRUNC flag returns the full message length",
	  two_msgs_client, trunc_flag_server, 0 },
	{ "seqpacket: a 1 MiB message over a 16 KiB channel arrives whole in one recv with MSG_EOR",
	  big_client, big_server, 180 },
	{ "seqpacket: a zero-length message is 0 bytes with MSG_EOR, EOF is 0 without MSG_EOR",
	  zero_client, zero_server, 0 },
	{ "seqpacket: MSG_PEEK returns the message without consuming it",
	  peek_client, peek_server, 0 },
	{ "seqpacket: recv with MSG_DONTWAIT or O_NONBLOCK and nothing queued fails with EAGAIN",
	  dontwait_client, dontwait_server, 0 },
	{ "seqpacket: a non-blocking send that does not fit the free space fails with EAGAIN, nothing partial arrives",
	  nb_full_client, nb_full_server, 0 },
	{ "seqpacket: a non-blocking send larger than the whole channel fails with EMSGSIZE",
	  nb_huge_client, nb_huge_server, 0 },
	{ "seqpacket: 1000 messages of random sizes 1..3000 arrive in order with exact sizes and contents",
	  many_client, many_server, 180 },
	{ "seqpacket: SIOCINQ is the size of the next message (300, then 100, then 0)",
	  inq_client, inq_server, 0 },
	{ "seqpacket: after the peer closes, queued messages arrive, then recv returns 0",
	  close_client, close_server, 0 },
	{ "seqpacket: after the peer's SHUT_WR recv returns 0 and the other direction still works",
	  shutwr_client, shutwr_server, 0 },
	{ "seqpacket: sendmsg with iovecs of 10+20+30 bytes forms one 60-byte message",
	  iov_client, iov_server, 0 },
	{ "seqpacket: IVSHMEM_PEER_INFO names the peer's id, pid, port and region on both ends",
	  info_client, info_server, 0 },
	{ "seqpacket: a STREAM connect to a SEQPACKET listener's port fails with ECONNREFUSED",
	  refuse_stream_client, refuse_stream_server, 0 },
	{ "seqpacket: a SEQPACKET connect to a STREAM listener's port fails with ECONNREFUSED",
	  refuse_seqpacket_client, refuse_seqpacket_server, 0 },
	{ "seqpacket: getpeername, getsockname and SO_TYPE of a connected socket",
	  names_client, names_server, 0 },
	{ "seqpacket: short buffers on 1 MiB messages over a 16 KiB channel get MSG_TRUNC (full length with the flag), the rest is discarded",
	  big_trunc_client, big_trunc_server, 180 },
	{ "seqpacket: MSG_PEEK with a short buffer gets MSG_TRUNC and leaves the message whole",
	  peek_client, peek_short_server, 0 },
	{ "seqpacket: send after the peer closed fails with EPIPE",
	  epipe_client, epipe_server, 0 },
	{ "seqpacket: recvmsg with iovecs of 30+70 bytes gets one 60-byte message across them",
	  scatter_client, scatter_server, 0 },
	{ "seqpacket: a large send cut short by SO_SNDTIMEO fails with EAGAIN and none of it arrives",
	  abandon_client, abandon_server, 0 },
	{ NULL, NULL, NULL, 0 },
};
