// SPDX-License-Identifier: GPL-2.0
/*
 * AF_IVSHMEM conformance suite: SOCK_STREAM cases.
 *
 * Each case pins one behaviour a TCP or AF_VSOCK user relies on: an errno,
 * a byte count, the bytes themselves, a poll mask.  Ports: the server end
 * binds ctx->port + 0..7, the client end ctx->port + 8..15, so that both
 * ends can share one guest.
 */
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/select.h>
#include <sys/sendfile.h>
#include <sys/time.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <linux/sockios.h>

#include "conformance.h"

#define CLIENT_PORT(ctx, k)	((ctx)->port + 8 + (k))
#define SMALL_CHANNEL		16384
#define POLL_ALL		(POLLIN | POLLOUT | POLLRDHUP | POLLPRI)

/* ---------------------------------------------------------------- */
/* Helpers.                                                          */

static int st_socket(struct conf_ctx *ctx)
{
	return (int)CHECK_OK(socket(ctx->family, SOCK_STREAM, 0));
}

static int st_bind(struct conf_ctx *ctx, int fd, uint32_t peer, uint32_t port)
{
	struct sockaddr_ivshmem addr = conf_addr(ctx, peer, port);

	return bind(fd, (struct sockaddr *)&addr, sizeof(addr));
}

static int st_connect_to(struct conf_ctx *ctx, int fd, uint32_t peer,
			 uint32_t port)
{
	struct sockaddr_ivshmem addr = conf_addr(ctx, peer, port);

	return connect(fd, (struct sockaddr *)&addr, sizeof(addr));
}

static double mono(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void msleep(unsigned int ms)
{
	usleep(ms * 1000);
}

static const char *mask_str(int m)
{
	static char buf[128];

	snprintf(buf, sizeof(buf), "%#x:%s%s%s%s%s%s%s", m,
		 m & POLLIN ? " IN" : "", m & POLLPRI ? " PRI" : "",
		 m & POLLOUT ? " OUT" : "", m & POLLRDHUP ? " RDHUP" : "",
		 m & POLLERR ? " ERR" : "", m & POLLHUP ? " HUP" : "",
		 m & POLLNVAL ? " NVAL" : "");
	return buf;
}

/* revents for POLL_ALL after waiting up to @timeout_ms. */
static int poll_mask(int fd, int timeout_ms)
{
	struct pollfd pfd = { .fd = fd, .events = POLL_ALL };
	int n = (int)CHECK_OK(poll(&pfd, 1, timeout_ms));

	return n ? pfd.revents : 0;
}

/* Polls until every bit of @bits is set (up to 5 s); returns the mask. */
static int poll_until(int fd, int bits)
{
	double end = mono() + 5;
	int m;

	for (;;) {
		m = poll_mask(fd, 0);
		if ((m & bits) == bits || mono() > end)
			return m;
		msleep(10);
	}
}

#define CHECK_MASK(m, want) \
	do { int _m = (m), _w = (want); if (_m != _w) { \
		char _got[128]; \
		snprintf(_got, sizeof(_got), "%s", mask_str(_m)); \
		conf_fail("poll mask %s, expected %s", _got, mask_str(_w)); \
	} } while (0)

/* Sends 4096-byte pieces with MSG_DONTWAIT until EAGAIN; the total. */
static size_t fill_dontwait(int fd)
{
	static char buf[4096];
	size_t total = 0;

	for (;;) {
		ssize_t n = send(fd, buf, sizeof(buf), MSG_DONTWAIT);

		if (n < 0) {
			if (errno != EAGAIN)
				conf_fail("send after %zu bytes: %s", total,
					  strerror(errno));
			return total;
		}
		total += n;
		if (total > 256 * 1024 * 1024)
			conf_fail("send never fills the channel");
	}
}

static long sysfs_param(const char *name, long fallback)
{
	char path[128];
	long v = fallback;
	FILE *f;

	snprintf(path, sizeof(path), "/sys/module/af_ivshmem/parameters/%s",
		 name);
	f = fopen(path, "r");
	if (!f)
		return fallback;
	if (fscanf(f, "%ld", &v) != 1)
		v = fallback;
	fclose(f);
	return v;
}

static int getsockopt_int(int fd, int level, int name)
{
	socklen_t len = sizeof(int);
	int v = -1;

	CHECK_OK(getsockopt(fd, level, name, &v, &len));
	CHECK_EQ(len, sizeof(int));
	return v;
}

static void setsockopt_int(int fd, int level, int name, int v)
{
	CHECK_OK(setsockopt(fd, level, name, &v, sizeof(v)));
}

static struct sockaddr_ivshmem sockname(int fd)
{
	struct sockaddr_ivshmem a;
	socklen_t len = sizeof(a);

	memset(&a, 0xa5, sizeof(a));
	CHECK_OK(getsockname(fd, (struct sockaddr *)&a, &len));
	CHECK_EQ(len, sizeof(a));
	return a;
}

static struct sockaddr_ivshmem peername(int fd)
{
	struct sockaddr_ivshmem a;
	socklen_t len = sizeof(a);

	memset(&a, 0xa5, sizeof(a));
	CHECK_OK(getpeername(fd, (struct sockaddr *)&a, &len));
	CHECK_EQ(len, sizeof(a));
	return a;
}

static int ioctl_int(int fd, unsigned long req)
{
	int v = -1;

	CHECK_OK(ioctl(fd, req, &v));
	return v;
}

static void set_timeo(int fd, int name, unsigned int ms)
{
	struct timeval tv = { .tv_sec = ms / 1000,
			      .tv_usec = (ms % 1000) * 1000 };

	CHECK_OK(setsockopt(fd, SOL_SOCKET, name, &tv, sizeof(tv)));
}

/* Sends @len bytes of pattern @seed in pieces. */
static void send_pattern(int fd, size_t len, uint64_t seed)
{
	static char buf[65536];
	size_t off = 0;

	while (off < len) {
		size_t n = len - off < sizeof(buf) ? len - off : sizeof(buf);

		fill_pattern(buf, n, seed, off);
		send_all(fd, buf, n);
		off += n;
	}
}

/* Receives and checks @len bytes of pattern @seed. */
static void recv_pattern(int fd, size_t len, uint64_t seed)
{
	static char buf[65536];
	size_t off = 0;

	while (off < len) {
		size_t n = len - off < sizeof(buf) ? len - off : sizeof(buf);

		recv_all(fd, buf, n);
		if (!check_pattern(buf, n, seed, off))
			conf_fail("wrong bytes in [%zu, %zu)", off, off + n);
		off += n;
	}
}

/* recv() must find nothing and no EOF right now. */
static void expect_empty(int fd)
{
	char c;

	CHECK_ERR(recv(fd, &c, 1, MSG_DONTWAIT), EAGAIN);
}

static void expect_eof(int fd)
{
	char c;

	CHECK_EQ(recv(fd, &c, 1, 0), 0);
}

/* The usual server: accept one connection, then wait for the client. */
static void srv_accept_wait_done(struct conf_ctx *ctx)
{
	int fd = conf_accept_one(ctx, SOCK_STREAM);

	ctl_expect(ctx, "DONE");
	close(fd);
}

/* ---------------------------------------------------------------- */
/* socket()                                                          */

static void c_socket_protocols(struct conf_ctx *ctx)
{
	close((int)CHECK_OK(socket(ctx->family, SOCK_STREAM, 0)));
	close((int)CHECK_OK(socket(ctx->family, SOCK_STREAM, ctx->family)));
}

static void c_socket_bad_protocol(struct conf_ctx *ctx)
{
	CHECK_ERR(socket(ctx->family, SOCK_STREAM, IPPROTO_TCP),
		  EPROTONOSUPPORT);
}

static void c_socket_raw(struct conf_ctx *ctx)
{
	CHECK_ERR(socket(ctx->family, SOCK_RAW, 0), ESOCKTNOSUPPORT);
}

/* ---------------------------------------------------------------- */
/* bind()                                                            */

static void c_bind_short(struct conf_ctx *ctx)
{
	struct sockaddr_ivshmem a = conf_addr(ctx, IVSHMEM_PEER_ANY,
					      CLIENT_PORT(ctx, 0));
	int fd = st_socket(ctx);

	CHECK_ERR(bind(fd, (struct sockaddr *)&a, sizeof(a) - 1), EINVAL);
}

static void c_bind_family(struct conf_ctx *ctx)
{
	struct sockaddr_ivshmem a = conf_addr(ctx, IVSHMEM_PEER_ANY,
					      CLIENT_PORT(ctx, 0));
	int fd = st_socket(ctx);

	a.sivshm_family = AF_INET;
	CHECK_ERR(bind(fd, (struct sockaddr *)&a, sizeof(a)), EAFNOSUPPORT);
}

static void c_bind_reserved1(struct conf_ctx *ctx)
{
	struct sockaddr_ivshmem a = conf_addr(ctx, IVSHMEM_PEER_ANY,
					      CLIENT_PORT(ctx, 0));
	int fd = st_socket(ctx);

	a.sivshm_reserved1 = 1;
	CHECK_ERR(bind(fd, (struct sockaddr *)&a, sizeof(a)), EINVAL);
}

static void c_bind_flags(struct conf_ctx *ctx)
{
	struct sockaddr_ivshmem a = conf_addr(ctx, IVSHMEM_PEER_ANY,
					      CLIENT_PORT(ctx, 0));
	int fd = st_socket(ctx);

	a.sivshm_flags = 1;
	CHECK_ERR(bind(fd, (struct sockaddr *)&a, sizeof(a)), EINVAL);
}

static void c_bind_twice(struct conf_ctx *ctx)
{
	int fd = st_socket(ctx);

	CHECK_OK(st_bind(ctx, fd, IVSHMEM_PEER_ANY, CLIENT_PORT(ctx, 0)));
	CHECK_ERR(st_bind(ctx, fd, IVSHMEM_PEER_ANY, CLIENT_PORT(ctx, 1)),
		  EINVAL);
}

static void c_bind_in_use(struct conf_ctx *ctx)
{
	int a = st_socket(ctx), b = st_socket(ctx);

	CHECK_OK(st_bind(ctx, a, IVSHMEM_PEER_ANY, CLIENT_PORT(ctx, 0)));
	CHECK_ERR(st_bind(ctx, b, IVSHMEM_PEER_ANY, CLIENT_PORT(ctx, 0)),
		  EADDRINUSE);
}

static void c_bind_per_type(struct conf_ctx *ctx)
{
	int s = st_socket(ctx);
	int d = (int)CHECK_OK(socket(ctx->family, SOCK_DGRAM, 0));

	CHECK_OK(st_bind(ctx, s, IVSHMEM_PEER_ANY, CLIENT_PORT(ctx, 0)));
	CHECK_OK(st_bind(ctx, d, IVSHMEM_PEER_ANY, CLIENT_PORT(ctx, 0)));
}

static void c_bind_privileged_user(struct conf_ctx *ctx)
{
	int fd;

	if (getuid() != 0)
		conf_skip("not root");
	CHECK_OK(setgid(65534));
	CHECK_OK(setuid(65534));
	fd = st_socket(ctx);
	CHECK_ERR(st_bind(ctx, fd, IVSHMEM_PEER_ANY, 1000), EACCES);
}

static void c_bind_privileged_root(struct conf_ctx *ctx)
{
	int fd = st_socket(ctx);

	if (getuid() != 0)
		conf_skip("not root");
	CHECK_OK(st_bind(ctx, fd, IVSHMEM_PEER_ANY, 1001));
	CHECK_EQ(sockname(fd).sivshm_port, 1001);
}

static void c_bind_ephemeral(struct conf_ctx *ctx)
{
	int fd = st_socket(ctx);
	uint32_t port;

	CHECK_OK(st_bind(ctx, fd, IVSHMEM_PEER_ANY, IVSHMEM_PORT_ANY));
	port = sockname(fd).sivshm_port;
	if (port < IVSHMEM_EPHEMERAL_FIRST || port > IVSHMEM_EPHEMERAL_LAST)
		conf_fail("ephemeral port %u outside [%u, %u]", port,
			  IVSHMEM_EPHEMERAL_FIRST, IVSHMEM_EPHEMERAL_LAST);
}

static void c_bind_other_peer(struct conf_ctx *ctx)
{
	int fd = st_socket(ctx);

	CHECK_ERR(st_bind(ctx, fd, ctx->self + 1, CLIENT_PORT(ctx, 0)),
		  EADDRNOTAVAIL);
}

static void c_bind_own_peer(struct conf_ctx *ctx)
{
	struct sockaddr_ivshmem a = conf_addr(ctx, ctx->self,
					      CLIENT_PORT(ctx, 0));
	int fd = st_socket(ctx);

	a.sivshm_region = 0;
	CHECK_OK(bind(fd, (struct sockaddr *)&a, sizeof(a)));
}

static void c_bind_no_region(struct conf_ctx *ctx)
{
	struct sockaddr_ivshmem a = conf_addr(ctx, IVSHMEM_PEER_ANY,
					      CLIENT_PORT(ctx, 0));
	int fd = st_socket(ctx);

	a.sivshm_region = 5;
	CHECK_ERR(bind(fd, (struct sockaddr *)&a, sizeof(a)), EADDRNOTAVAIL);
}

/* ---------------------------------------------------------------- */
/* getsockname() / getpeername()                                     */

static void c_getsockname_bound(struct conf_ctx *ctx)
{
	int fd = st_socket(ctx);
	struct sockaddr_ivshmem a;

	CHECK_OK(st_bind(ctx, fd, IVSHMEM_PEER_ANY, CLIENT_PORT(ctx, 0)));
	a = sockname(fd);
	CHECK_EQ(a.sivshm_family, ctx->family);
	CHECK_EQ(a.sivshm_port, CLIENT_PORT(ctx, 0));
	CHECK_EQ(a.sivshm_peer, IVSHMEM_PEER_ANY);
	CHECK_EQ(a.sivshm_region, IVSHMEM_REGION_ANY);
	CHECK_EQ(a.sivshm_reserved1, 0);
	CHECK_EQ(a.sivshm_flags, 0);
}

static void c_getsockname_connected(struct conf_ctx *ctx)
{
	int fd = conf_connect_one(ctx, SOCK_STREAM);
	struct sockaddr_ivshmem a = sockname(fd);

	CHECK_EQ(a.sivshm_family, ctx->family);
	CHECK_EQ(a.sivshm_peer, ctx->self);
	CHECK_EQ(a.sivshm_region, 0);
	ctl_send(ctx, "DONE");
}

static void c_getpeername_unconnected(struct conf_ctx *ctx)
{
	struct sockaddr_ivshmem a;
	socklen_t len = sizeof(a);
	int fd = st_socket(ctx);

	CHECK_ERR(getpeername(fd, (struct sockaddr *)&a, &len), ENOTCONN);
}

static void c_getpeername_connected(struct conf_ctx *ctx)
{
	int fd = conf_connect_one(ctx, SOCK_STREAM);
	struct sockaddr_ivshmem a = peername(fd);

	CHECK_EQ(a.sivshm_family, ctx->family);
	CHECK_EQ(a.sivshm_peer, ctx->peer);
	CHECK_EQ(a.sivshm_port, ctx->port);
	CHECK_EQ(a.sivshm_region, 0);
	ctl_send_u64(ctx, sockname(fd).sivshm_port);
	ctl_expect(ctx, "DONE");
}

static void s_getpeername_connected(struct conf_ctx *ctx)
{
	int fd = conf_accept_one(ctx, SOCK_STREAM);
	uint64_t port = ctl_recv_u64(ctx);
	struct sockaddr_ivshmem a = peername(fd);

	CHECK_EQ(a.sivshm_family, ctx->family);
	CHECK_EQ(a.sivshm_peer, ctx->peer);
	CHECK_EQ(a.sivshm_port, port);
	CHECK_EQ(a.sivshm_region, 0);
	ctl_send(ctx, "DONE");
}

static void c_done_after_connect(struct conf_ctx *ctx)
{
	int fd = conf_connect_one(ctx, SOCK_STREAM);

	ctl_expect(ctx, "DONE");
	close(fd);
}

static void s_getsockname_accepted(struct conf_ctx *ctx)
{
	int fd = conf_accept_one(ctx, SOCK_STREAM);
	struct sockaddr_ivshmem a = sockname(fd);

	CHECK_EQ(a.sivshm_port, ctx->port);
	CHECK_EQ(a.sivshm_peer, ctx->self);
	CHECK_EQ(a.sivshm_region, 0);
	ctl_send(ctx, "DONE");
}

/* ---------------------------------------------------------------- */
/* connect()                                                         */

static void c_connect_port_any(struct conf_ctx *ctx)
{
	int fd = st_socket(ctx);

	CHECK_ERR(st_connect_to(ctx, fd, ctx->peer, IVSHMEM_PORT_ANY), EINVAL);
}

static void c_connect_peer_any(struct conf_ctx *ctx)
{
	int fd = st_socket(ctx);

	CHECK_ERR(st_connect_to(ctx, fd, IVSHMEM_PEER_ANY, ctx->port), EINVAL);
}

static void c_connect_refused(struct conf_ctx *ctx)
{
	int fd = st_socket(ctx);

	CHECK_ERR(st_connect_to(ctx, fd, ctx->peer, ctx->port + 1),
		  ECONNREFUSED);
}

static void c_connect_no_host(struct conf_ctx *ctx)
{
	int fd = st_socket(ctx);

	CHECK_ERR(st_connect_to(ctx, fd, 60, ctx->port), EHOSTUNREACH);
}

static void c_connect_no_region(struct conf_ctx *ctx)
{
	struct sockaddr_ivshmem a = conf_addr(ctx, ctx->peer, ctx->port);
	int fd = st_socket(ctx);

	a.sivshm_region = 7;
	CHECK_ERR(connect(fd, (struct sockaddr *)&a, sizeof(a)), ENETUNREACH);
}

static void c_connect_isconn(struct conf_ctx *ctx)
{
	int fd = conf_connect_one(ctx, SOCK_STREAM);

	CHECK_ERR(st_connect_to(ctx, fd, ctx->peer, ctx->port), EISCONN);
	ctl_send(ctx, "DONE");
}

static void c_connect_listener(struct conf_ctx *ctx)
{
	int fd = conf_listen(ctx, SOCK_STREAM, CLIENT_PORT(ctx, 0), 1);

	CHECK_ERR(st_connect_to(ctx, fd, ctx->peer, ctx->port), EINVAL);
}

static void c_connect_short(struct conf_ctx *ctx)
{
	struct sockaddr_ivshmem a = conf_addr(ctx, ctx->peer, ctx->port);
	int fd = st_socket(ctx);

	CHECK_ERR(connect(fd, (struct sockaddr *)&a, sizeof(a) - 1), EINVAL);
}

static void c_connect_family(struct conf_ctx *ctx)
{
	struct sockaddr_ivshmem a = conf_addr(ctx, ctx->peer, ctx->port);
	int fd = st_socket(ctx);

	a.sivshm_family = AF_INET;
	CHECK_ERR(connect(fd, (struct sockaddr *)&a, sizeof(a)), EAFNOSUPPORT);
}

static void c_connect_autobind(struct conf_ctx *ctx)
{
	int fd = conf_connect_one(ctx, SOCK_STREAM);
	uint32_t port = sockname(fd).sivshm_port;

	if (port < IVSHMEM_EPHEMERAL_FIRST || port > IVSHMEM_EPHEMERAL_LAST)
		conf_fail("auto-bound port %u outside [%u, %u]", port,
			  IVSHMEM_EPHEMERAL_FIRST, IVSHMEM_EPHEMERAL_LAST);
	ctl_send(ctx, "DONE");
}

static void c_connect_nonblock(struct conf_ctx *ctx)
{
	int fd = st_socket(ctx);

	ctl_expect(ctx, "LISTENING");
	CHECK_OK(fcntl(fd, F_SETFL, O_NONBLOCK));
	CHECK_ERR(st_connect_to(ctx, fd, ctx->peer, ctx->port), EINPROGRESS);
	CHECK_MASK(poll_until(fd, POLLOUT), POLLOUT);
	CHECK_EQ(getsockopt_int(fd, SOL_SOCKET, SO_ERROR), 0);
	CHECK_ERR(st_connect_to(ctx, fd, ctx->peer, ctx->port), EISCONN);
	ctl_send(ctx, "DONE");
}

static void c_connect_nonblock_refused_poll(struct conf_ctx *ctx)
{
	int fd = st_socket(ctx);

	CHECK_OK(fcntl(fd, F_SETFL, O_NONBLOCK));
	CHECK_ERR(st_connect_to(ctx, fd, ctx->peer, ctx->port + 1),
		  EINPROGRESS);
	/* As TCP: the refused socket is readable, writable, hung up. */
	CHECK_MASK(poll_until(fd, POLLERR),
		   POLLIN | POLLOUT | POLLRDHUP | POLLERR | POLLHUP);
}

static void c_connect_nonblock_refused_soerror(struct conf_ctx *ctx)
{
	int fd = st_socket(ctx);

	CHECK_OK(fcntl(fd, F_SETFL, O_NONBLOCK));
	CHECK_ERR(st_connect_to(ctx, fd, ctx->peer, ctx->port + 1),
		  EINPROGRESS);
	poll_until(fd, POLLERR);
	CHECK_EQ(getsockopt_int(fd, SOL_SOCKET, SO_ERROR), ECONNREFUSED);
	CHECK_EQ(getsockopt_int(fd, SOL_SOCKET, SO_ERROR), 0);
}

static void c_connect_after_refused(struct conf_ctx *ctx)
{
	int fd = st_socket(ctx);
	char c = 'x';

	CHECK_ERR(st_connect_to(ctx, fd, ctx->peer, ctx->port), ECONNREFUSED);
	ctl_send(ctx, "REFUSED");
	ctl_expect(ctx, "LISTENING");
	CHECK_OK(st_connect_to(ctx, fd, ctx->peer, ctx->port));
	send_all(fd, &c, 1);
	ctl_expect(ctx, "DONE");
}

static void s_connect_after_refused(struct conf_ctx *ctx)
{
	int fd;
	char c;

	ctl_expect(ctx, "REFUSED");
	fd = conf_accept_one(ctx, SOCK_STREAM);
	recv_all(fd, &c, 1);
	CHECK_EQ(c, 'x');
	ctl_send(ctx, "DONE");
}

/* ---------------------------------------------------------------- */
/* IVSHMEM_CONNECT_TIMEOUT_MS                                        */

static uint64_t get_ct(int fam, int fd)
{
	socklen_t len = sizeof(uint64_t);
	uint64_t v = 0;

	CHECK_OK(getsockopt(fd, fam, IVSHMEM_CONNECT_TIMEOUT_MS, &v, &len));
	CHECK_EQ(len, sizeof(uint64_t));
	return v;
}

static void set_ct(int fam, int fd, uint64_t v)
{
	CHECK_OK(setsockopt(fd, fam, IVSHMEM_CONNECT_TIMEOUT_MS, &v,
			    sizeof(v)));
}

static void c_ct_default(struct conf_ctx *ctx)
{
	int fd = st_socket(ctx);

	CHECK_EQ(get_ct(ctx->family, fd),
		 sysfs_param("connect_timeout_ms", 5000));
	CHECK_EQ(get_ct(ctx->family, fd), 5000);
}

static void c_ct_set(struct conf_ctx *ctx)
{
	int fd = st_socket(ctx);

	set_ct(ctx->family, fd, 1500);
	CHECK_EQ(get_ct(ctx->family, fd), 1500);
}

static void c_ct_zero(struct conf_ctx *ctx)
{
	uint64_t v = 0;
	int fd = st_socket(ctx);

	CHECK_ERR(setsockopt(fd, ctx->family, IVSHMEM_CONNECT_TIMEOUT_MS, &v,
			     sizeof(v)), EINVAL);
}

static void c_ct_set_short(struct conf_ctx *ctx)
{
	uint32_t v = 1500;
	int fd = st_socket(ctx);

	CHECK_ERR(setsockopt(fd, ctx->family, IVSHMEM_CONNECT_TIMEOUT_MS, &v,
			     sizeof(v)), EINVAL);
}

static void c_ct_get_short(struct conf_ctx *ctx)
{
	uint32_t v = 0;
	socklen_t len = sizeof(v);
	int fd = st_socket(ctx);

	CHECK_ERR(getsockopt(fd, ctx->family, IVSHMEM_CONNECT_TIMEOUT_MS, &v,
			     &len), EINVAL);
}

static void s_ct_inherited(struct conf_ctx *ctx)
{
	int lfd = st_socket(ctx), fd;

	CHECK_OK(st_bind(ctx, lfd, IVSHMEM_PEER_ANY, ctx->port));
	set_ct(ctx->family, lfd, 1500);
	CHECK_OK(listen(lfd, 4));
	ctl_send(ctx, "LISTENING");
	fd = (int)CHECK_OK(accept(lfd, NULL, NULL));
	CHECK_EQ(get_ct(ctx->family, fd), 1500);
	ctl_send(ctx, "DONE");
}

/* ---------------------------------------------------------------- */
/* IVSHMEM_PEER_INFO                                                 */

static struct ivshmem_peer_info get_pi(int fam, int fd)
{
	struct ivshmem_peer_info pi;
	socklen_t len = sizeof(pi);

	memset(&pi, 0xa5, sizeof(pi));
	CHECK_OK(getsockopt(fd, fam, IVSHMEM_PEER_INFO, &pi, &len));
	CHECK_EQ(len, sizeof(pi));
	return pi;
}

static void c_pi_unconnected(struct conf_ctx *ctx)
{
	struct ivshmem_peer_info pi;
	socklen_t len = sizeof(pi);
	int fd = st_socket(ctx);

	CHECK_ERR(getsockopt(fd, ctx->family, IVSHMEM_PEER_INFO, &pi, &len),
		  ENOTCONN);
}

static void c_pi_set(struct conf_ctx *ctx)
{
	struct ivshmem_peer_info pi;
	int fd = st_socket(ctx);

	memset(&pi, 0, sizeof(pi));
	CHECK_ERR(setsockopt(fd, ctx->family, IVSHMEM_PEER_INFO, &pi,
			     sizeof(pi)), ENOPROTOOPT);
}

static void c_pi_both(struct conf_ctx *ctx)
{
	int fd = conf_connect_one(ctx, SOCK_STREAM);
	uint64_t srv_pid = ctl_recv_u64(ctx);
	struct ivshmem_peer_info pi = get_pi(ctx->family, fd);

	ctl_send_u64(ctx, getpid());
	ctl_send_u64(ctx, sockname(fd).sivshm_port);
	CHECK_EQ(pi.peer, ctx->peer);
	CHECK_EQ(pi.port, ctx->port);
	CHECK_EQ(pi.region, 0);
	CHECK_EQ(pi.reserved, 0);
	CHECK_EQ(pi.pid, srv_pid);
	ctl_expect(ctx, "DONE");
}

static void s_pi_both(struct conf_ctx *ctx)
{
	int fd = conf_accept_one(ctx, SOCK_STREAM);
	struct ivshmem_peer_info pi;
	uint64_t cli_pid, cli_port;

	ctl_send_u64(ctx, getpid());
	cli_pid = ctl_recv_u64(ctx);
	cli_port = ctl_recv_u64(ctx);
	pi = get_pi(ctx->family, fd);
	ctl_send(ctx, "DONE");
	CHECK_EQ(pi.peer, ctx->peer);
	CHECK_EQ(pi.port, cli_port);
	CHECK_EQ(pi.region, 0);
	CHECK_EQ(pi.reserved, 0);
	CHECK_EQ(pi.pid, cli_pid);
}

/* The listener is created here, the connection accepted by a child. */
static void s_pi_listener_pid(struct conf_ctx *ctx)
{
	int lfd = conf_listen(ctx, SOCK_STREAM, ctx->port, 4), status;
	pid_t pid;

	pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		int fd = (int)CHECK_OK(accept(lfd, NULL, NULL));

		ctl_expect(ctx, "DONE");
		close(fd);
		exit(0);
	}
	ctl_send(ctx, "LISTENING");
	ctl_send_u64(ctx, getpid());
	CHECK_EQ(waitpid(pid, &status, 0), pid);
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

static void c_pi_listener_pid(struct conf_ctx *ctx)
{
	int fd = conf_connect_one(ctx, SOCK_STREAM);
	uint64_t lpid = ctl_recv_u64(ctx);
	struct ivshmem_peer_info pi = get_pi(ctx->family, fd);

	ctl_send(ctx, "DONE");
	CHECK_EQ(pi.pid, lpid);
}

static void c_pi_short(struct conf_ctx *ctx)
{
	int fd = conf_connect_one(ctx, SOCK_STREAM);
	struct ivshmem_peer_info pi;
	socklen_t len = sizeof(pi) - 1;

	CHECK_ERR(getsockopt(fd, ctx->family, IVSHMEM_PEER_INFO, &pi, &len),
		  EINVAL);
	ctl_send(ctx, "DONE");
}

/* ---------------------------------------------------------------- */
/* Other options.                                                    */

static void c_opt_unknown(struct conf_ctx *ctx)
{
	int fd = st_socket(ctx), v = 1;
	socklen_t len = sizeof(v);

	CHECK_ERR(setsockopt(fd, ctx->family, 99, &v, sizeof(v)), ENOPROTOOPT);
	CHECK_ERR(getsockopt(fd, ctx->family, 99, &v, &len), ENOPROTOOPT);
}

static void c_opt_tcp_level(struct conf_ctx *ctx)
{
	int fd = st_socket(ctx), v = 1;
	socklen_t len = sizeof(v);

	CHECK_ERR(setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &v, sizeof(v)),
		  ENOPROTOOPT);
	CHECK_ERR(getsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &v, &len),
		  ENOPROTOOPT);
}

/* ---------------------------------------------------------------- */
/* listen() / accept()                                               */

static void c_listen_autobind(struct conf_ctx *ctx)
{
	int fd = st_socket(ctx);
	uint32_t port;

	CHECK_OK(listen(fd, 1));
	port = sockname(fd).sivshm_port;
	if (port < IVSHMEM_EPHEMERAL_FIRST || port > IVSHMEM_EPHEMERAL_LAST)
		conf_fail("auto-bound port %u outside [%u, %u]", port,
			  IVSHMEM_EPHEMERAL_FIRST, IVSHMEM_EPHEMERAL_LAST);
}

static void c_listen_connected(struct conf_ctx *ctx)
{
	int fd = conf_connect_one(ctx, SOCK_STREAM);

	CHECK_ERR(listen(fd, 1), EINVAL);
	ctl_send(ctx, "DONE");
}

static void c_accept_not_listening(struct conf_ctx *ctx)
{
	int fd = st_socket(ctx);

	CHECK_OK(st_bind(ctx, fd, IVSHMEM_PEER_ANY, CLIENT_PORT(ctx, 0)));
	CHECK_ERR(accept(fd, NULL, NULL), EINVAL);
}

static void c_accept_nonblock_empty(struct conf_ctx *ctx)
{
	int fd = conf_listen(ctx, SOCK_STREAM, CLIENT_PORT(ctx, 0), 1);

	CHECK_OK(fcntl(fd, F_SETFL, O_NONBLOCK));
	CHECK_ERR(accept(fd, NULL, NULL), EAGAIN);
}

static void s_accept4_flags(struct conf_ctx *ctx)
{
	int lfd = conf_listen(ctx, SOCK_STREAM, ctx->port, 4), fd;

	ctl_send(ctx, "LISTENING");
	fd = (int)CHECK_OK(accept4(lfd, NULL, NULL,
				   SOCK_NONBLOCK | SOCK_CLOEXEC));
	CHECK(fcntl(fd, F_GETFL) & O_NONBLOCK);
	CHECK(fcntl(fd, F_GETFD) & FD_CLOEXEC);
	expect_empty(fd);
	ctl_send(ctx, "DONE");
}

static void s_backlog(struct conf_ctx *ctx)
{
	int lfd = conf_listen(ctx, SOCK_STREAM, ctx->port, 1);

	ctl_send(ctx, "LISTENING");
	ctl_expect(ctx, "DONE");
	close(lfd);
}

static void c_backlog(struct conf_ctx *ctx)
{
	int a = st_socket(ctx), b = st_socket(ctx), c = st_socket(ctx);

	ctl_expect(ctx, "LISTENING");
	CHECK_OK(st_connect_to(ctx, a, ctx->peer, ctx->port));
	CHECK_OK(st_connect_to(ctx, b, ctx->peer, ctx->port));
	CHECK_ERR(st_connect_to(ctx, c, ctx->peer, ctx->port), ECONNREFUSED);
	ctl_send(ctx, "DONE");
}

static void s_backlog_after_accept(struct conf_ctx *ctx)
{
	int lfd = conf_listen(ctx, SOCK_STREAM, ctx->port, 1);

	ctl_send(ctx, "LISTENING");
	ctl_expect(ctx, "FULL");
	close((int)CHECK_OK(accept(lfd, NULL, NULL)));
	ctl_send(ctx, "ACCEPTED");
	ctl_expect(ctx, "DONE");
}

static void c_backlog_after_accept(struct conf_ctx *ctx)
{
	int a = st_socket(ctx), b = st_socket(ctx), c = st_socket(ctx);
	int d = st_socket(ctx);

	ctl_expect(ctx, "LISTENING");
	CHECK_OK(st_connect_to(ctx, a, ctx->peer, ctx->port));
	CHECK_OK(st_connect_to(ctx, b, ctx->peer, ctx->port));
	if (st_connect_to(ctx, c, ctx->peer, ctx->port) == 0)
		conf_fail("third connect to a backlog of 1 succeeded");
	ctl_send(ctx, "FULL");
	ctl_expect(ctx, "ACCEPTED");
	CHECK_OK(st_connect_to(ctx, d, ctx->peer, ctx->port));
	ctl_send(ctx, "DONE");
}

/* ---------------------------------------------------------------- */
/* shutdown()                                                        */

static void c_shutdown_bad_how(struct conf_ctx *ctx)
{
	int fd = conf_connect_one(ctx, SOCK_STREAM);

	CHECK_ERR(shutdown(fd, 3), EINVAL);
	ctl_send(ctx, "DONE");
}

static void c_shutdown_unconnected(struct conf_ctx *ctx)
{
	int fd = st_socket(ctx);

	CHECK_ERR(shutdown(fd, SHUT_WR), ENOTCONN);
}

static void c_shut_wr_data_then_eof(struct conf_ctx *ctx)
{
	int fd = conf_connect_one(ctx, SOCK_STREAM);

	send_pattern(fd, 5000, 11);
	CHECK_OK(shutdown(fd, SHUT_WR));
	ctl_expect(ctx, "DONE");
}

static void s_shut_wr_data_then_eof(struct conf_ctx *ctx)
{
	int fd = conf_accept_one(ctx, SOCK_STREAM);

	recv_pattern(fd, 5000, 11);
	expect_eof(fd);
	ctl_send(ctx, "DONE");
}

static volatile sig_atomic_t sigpipes;

static void on_sigpipe(int sig)
{
	(void)sig;
	sigpipes++;
}

static void c_shut_wr_sigpipe(struct conf_ctx *ctx)
{
	int fd = conf_connect_one(ctx, SOCK_STREAM);
	char c = 'x';

	signal(SIGPIPE, on_sigpipe);
	CHECK_OK(shutdown(fd, SHUT_WR));
	CHECK_ERR(send(fd, &c, 1, 0), EPIPE);
	CHECK_EQ(sigpipes, 1);
	ctl_send(ctx, "DONE");
}

static void c_shut_wr_nosignal(struct conf_ctx *ctx)
{
	int fd = conf_connect_one(ctx, SOCK_STREAM);
	char c = 'x';

	signal(SIGPIPE, on_sigpipe);
	CHECK_OK(shutdown(fd, SHUT_WR));
	CHECK_ERR(send(fd, &c, 1, MSG_NOSIGNAL), EPIPE);
	CHECK_EQ(sigpipes, 0);
	ctl_send(ctx, "DONE");
}

static void c_shut_rd(struct conf_ctx *ctx)
{
	int fd = conf_connect_one(ctx, SOCK_STREAM);
	double t0;
	char c;

	CHECK_OK(shutdown(fd, SHUT_RD));
	set_timeo(fd, SO_RCVTIMEO, 3000);
	t0 = mono();
	CHECK_EQ(recv(fd, &c, 1, 0), 0);
	if (mono() - t0 > 2)	/* SO_RCVTIMEO would end it at 3 */
		conf_fail("recv after SHUT_RD took %.2f s", mono() - t0);
	ctl_send(ctx, "DONE");
}

static void s_shut_listener_wakes_accept(struct conf_ctx *ctx)
{
	int lfd = conf_listen(ctx, SOCK_STREAM, ctx->port, 4), status;
	pid_t pid = fork();

	CHECK(pid >= 0);
	if (pid == 0) {
		CHECK_ERR(accept(lfd, NULL, NULL), EINVAL);
		exit(0);
	}
	msleep(300);	/* the child is blocked in accept() */
	CHECK_EQ(shutdown(lfd, SHUT_RDWR), 0);
	CHECK_EQ(waitpid(pid, &status, 0), pid);
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

static void s_shut_listener_refuses(struct conf_ctx *ctx)
{
	int lfd = conf_listen(ctx, SOCK_STREAM, ctx->port, 4);

	CHECK_EQ(shutdown(lfd, SHUT_RDWR), 0);
	ctl_send(ctx, "SHUT");
	ctl_expect(ctx, "DONE");
}

static void c_shut_listener_refuses(struct conf_ctx *ctx)
{
	int fd = st_socket(ctx);

	ctl_expect(ctx, "SHUT");
	CHECK_ERR(st_connect_to(ctx, fd, ctx->peer, ctx->port), ECONNREFUSED);
	ctl_send(ctx, "DONE");
}

/* ---------------------------------------------------------------- */
/* close()                                                           */

static void c_close_data_then_eof(struct conf_ctx *ctx)
{
	int fd = conf_connect_one(ctx, SOCK_STREAM);

	send_pattern(fd, 3000, 12);
	close(fd);
	ctl_send(ctx, "CLOSED");
	ctl_expect(ctx, "DONE");
}

static void s_close_data_then_eof(struct conf_ctx *ctx)
{
	int fd = conf_accept_one(ctx, SOCK_STREAM);

	ctl_expect(ctx, "CLOSED");
	recv_pattern(fd, 3000, 12);
	expect_eof(fd);
	ctl_send(ctx, "DONE");
}

static void c_close_unread_resets(struct conf_ctx *ctx)
{
	int fd = conf_connect_one(ctx, SOCK_STREAM);
	char c;

	send_pattern(fd, 100, 13);
	ctl_send(ctx, "SENT");
	ctl_expect(ctx, "CLOSED");
	CHECK_ERR(recv(fd, &c, 1, 0), ECONNRESET);
}

static void s_close_unread_resets(struct conf_ctx *ctx)
{
	int fd = conf_accept_one(ctx, SOCK_STREAM);

	ctl_expect(ctx, "SENT");
	poll_until(fd, POLLIN);	/* arrived, and stays unread */
	close(fd);
	ctl_send(ctx, "CLOSED");
}

static void c_linger_zero(struct conf_ctx *ctx)
{
	int fd = conf_connect_one(ctx, SOCK_STREAM);
	struct linger l = { .l_onoff = 1, .l_linger = 0 };

	CHECK_OK(setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof(l)));
	close(fd);
	ctl_send(ctx, "CLOSED");
	ctl_expect(ctx, "DONE");
}

static void s_linger_zero(struct conf_ctx *ctx)
{
	int fd = conf_accept_one(ctx, SOCK_STREAM);
	char c;

	ctl_expect(ctx, "CLOSED");
	CHECK_ERR(recv(fd, &c, 1, 0), ECONNRESET);
	ctl_send(ctx, "DONE");
}

#define LINGER_TOTAL	(1024 * 1024)
#define LINGER_TAIL	(32 * 1024)
#define LINGER_DELAY_MS	600

/* The closer: send 1 MiB, close with SO_LINGER {1, 10}. */
static void c_linger_waits(struct conf_ctx *ctx)
{
	int fd = conf_connect_one(ctx, SOCK_STREAM);
	struct linger l = { .l_onoff = 1, .l_linger = 10 };
	double t0, took;

	CHECK_OK(setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof(l)));
	send_pattern(fd, LINGER_TOTAL, 14);
	/* Only the tail, at most LINGER_TAIL bytes, is still unread. */
	ctl_send(ctx, "CLOSING");
	t0 = mono();
	CHECK_EQ(close(fd), 0);
	took = mono() - t0;
	ctl_expect(ctx, "DONE");
	if (took < LINGER_DELAY_MS / 1000.0)
		conf_fail("close returned after %.3f s, before the peer read the last byte (it waited %d ms first)",
			  took, LINGER_DELAY_MS);
}

static void s_linger_waits(struct conf_ctx *ctx)
{
	int fd = conf_accept_one(ctx, SOCK_STREAM);
	static char buf[65536];
	size_t off = 0;

	/* Slowly, all but the tail. */
	while (off < LINGER_TOTAL - LINGER_TAIL) {
		size_t n = LINGER_TOTAL - LINGER_TAIL - off;

		if (n > sizeof(buf))
			n = sizeof(buf);
		recv_all(fd, buf, n);
		if (!check_pattern(buf, n, 14, off))
			conf_fail("wrong bytes at %zu", off);
		off += n;
		msleep(5);
	}
	ctl_expect(ctx, "CLOSING");
	msleep(LINGER_DELAY_MS);
	recv_all(fd, buf, LINGER_TAIL);
	if (!check_pattern(buf, LINGER_TAIL, 14, off))
		conf_fail("wrong bytes in the tail");
	expect_eof(fd);
	ctl_send(ctx, "DONE");
}

static void c_close_dup(struct conf_ctx *ctx)
{
	int fd = conf_connect_one(ctx, SOCK_STREAM);
	int fd2 = (int)CHECK_OK(dup(fd));

	close(fd);
	ctl_send(ctx, "CLOSED_ONE");
	ctl_expect(ctx, "STILL_OPEN");
	send_pattern(fd2, 1000, 15);
	close(fd2);
	ctl_expect(ctx, "DONE");
}

static void s_close_dup(struct conf_ctx *ctx)
{
	int fd = conf_accept_one(ctx, SOCK_STREAM);

	ctl_expect(ctx, "CLOSED_ONE");
	msleep(200);
	expect_empty(fd);
	ctl_send(ctx, "STILL_OPEN");
	recv_pattern(fd, 1000, 15);
	expect_eof(fd);
	ctl_send(ctx, "DONE");
}

static void c_fork_share(struct conf_ctx *ctx)
{
	int fd = conf_connect_one(ctx, SOCK_STREAM), status;
	pid_t pid = fork();

	CHECK(pid >= 0);
	if (pid == 0) {
		send_pattern(fd, 1000, 16);
		close(fd);
		exit(0);
	}
	recv_pattern(fd, 1000, 17);
	CHECK_EQ(waitpid(pid, &status, 0), pid);
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	ctl_send(ctx, "CHILD_CLOSED");
	ctl_expect(ctx, "STILL_OPEN");
	close(fd);
	ctl_send(ctx, "CLOSED");
	ctl_expect(ctx, "DONE");
}

static void s_fork_share(struct conf_ctx *ctx)
{
	int fd = conf_accept_one(ctx, SOCK_STREAM);

	send_pattern(fd, 1000, 17);
	recv_pattern(fd, 1000, 16);
	ctl_expect(ctx, "CHILD_CLOSED");
	msleep(200);
	expect_empty(fd);
	ctl_send(ctx, "STILL_OPEN");
	ctl_expect(ctx, "CLOSED");
	expect_eof(fd);
	ctl_send(ctx, "DONE");
}

/* ---------------------------------------------------------------- */
/* recv()/send() flags and timeouts                                   */

/* Server part of several cases: send 100 bytes, say "SENT". */
static void s_send100(struct conf_ctx *ctx)
{
	int fd = conf_accept_one(ctx, SOCK_STREAM);

	send_pattern(fd, 100, 18);
	ctl_send(ctx, "SENT");
	ctl_expect(ctx, "DONE");
}

static void c_peek(struct conf_ctx *ctx)
{
	int fd = conf_connect_one(ctx, SOCK_STREAM);
	char a[100], b[100];

	ctl_expect(ctx, "SENT");
	CHECK_EQ(recv(fd, a, sizeof(a), MSG_PEEK), 100);
	CHECK_EQ(recv(fd, b, sizeof(b), 0), 100);
	CHECK(!memcmp(a, b, sizeof(a)));
	CHECK(check_pattern(b, sizeof(b), 18, 0));
	expect_empty(fd);
	ctl_send(ctx, "DONE");
}

static void c_peek_empty(struct conf_ctx *ctx)
{
	int fd = conf_connect_one(ctx, SOCK_STREAM);
	char c;

	CHECK_ERR(recv(fd, &c, 1, MSG_PEEK | MSG_DONTWAIT), EAGAIN);
	ctl_send(ctx, "DONE");
}

static void c_dontwait_empty(struct conf_ctx *ctx)
{
	int fd = conf_connect_one(ctx, SOCK_STREAM);
	char c;

	CHECK_ERR(recv(fd, &c, 1, MSG_DONTWAIT), EAGAIN);
	ctl_send(ctx, "DONE");
}

static void c_waitall(struct conf_ctx *ctx)
{
	int fd = conf_connect_one(ctx, SOCK_STREAM);
	char buf[4000];

	set_timeo(fd, SO_RCVTIMEO, 10000);
	CHECK_EQ(recv(fd, buf, sizeof(buf), MSG_WAITALL), 4000);
	CHECK(check_pattern(buf, sizeof(buf), 19, 0));
	ctl_send(ctx, "DONE");
}

static void s_waitall(struct conf_ctx *ctx)
{
	int fd = conf_accept_one(ctx, SOCK_STREAM);
	char buf[4000];
	int i;

	fill_pattern(buf, sizeof(buf), 19, 0);
	for (i = 0; i < 4; i++) {
		msleep(100);
		send_all(fd, buf + i * 1000, 1000);
	}
	ctl_expect(ctx, "DONE");
}

static void c_oob_send(struct conf_ctx *ctx)
{
	int fd = conf_connect_one(ctx, SOCK_STREAM);
	char c = 'x';

	CHECK_ERR(send(fd, &c, 1, MSG_OOB), EOPNOTSUPP);
	ctl_send(ctx, "DONE");
}

static void c_oob_recv(struct conf_ctx *ctx)
{
	int fd = conf_connect_one(ctx, SOCK_STREAM);
	char c;

	ctl_expect(ctx, "SENT");
	CHECK_ERR(recv(fd, &c, 1, MSG_OOB), EOPNOTSUPP);
	ctl_send(ctx, "DONE");
}

static void c_rcvtimeo(struct conf_ctx *ctx)
{
	int fd = conf_connect_one(ctx, SOCK_STREAM);
	double t0;
	char c;

	set_timeo(fd, SO_RCVTIMEO, 200);
	t0 = mono();
	CHECK_ERR(recv(fd, &c, 1, 0), EAGAIN);
	if (mono() - t0 < 0.15)
		conf_fail("recv gave up after %.3f s", mono() - t0);
	ctl_send(ctx, "DONE");
}

static void c_sndtimeo(struct conf_ctx *ctx)
{
	int fd = conf_connect_one(ctx, SOCK_STREAM);
	char buf[4096] = { 0 };
	double t0;

	fill_dontwait(fd);
	set_timeo(fd, SO_SNDTIMEO, 200);
	t0 = mono();
	CHECK_ERR(send(fd, buf, sizeof(buf), 0), EAGAIN);
	if (mono() - t0 < 0.15)
		conf_fail("send gave up after %.3f s", mono() - t0);
	ctl_send(ctx, "DONE");
}

static void c_rcvlowat_poll(struct conf_ctx *ctx)
{
	int fd = conf_connect_one(ctx, SOCK_STREAM);
	char buf[2000];

	setsockopt_int(fd, SOL_SOCKET, SO_RCVLOWAT, 1000);
	ctl_expect(ctx, "SENT");
	CHECK_EQ(ioctl_int(fd, SIOCINQ), 500);
	{
		struct pollfd pfd = { .fd = fd, .events = POLLIN };

		CHECK_EQ(poll(&pfd, 1, 100), 0);
	}
	ctl_send(ctx, "MORE");
	ctl_expect(ctx, "SENT");
	{
		struct pollfd pfd = { .fd = fd, .events = POLLIN };

		CHECK_EQ(poll(&pfd, 1, 5000), 1);
		CHECK_EQ(pfd.revents, POLLIN);
	}
	set_timeo(fd, SO_RCVTIMEO, 5000);
	CHECK_EQ(recv(fd, buf, sizeof(buf), 0), 1000);
	CHECK(check_pattern(buf, 1000, 20, 0));
	ctl_send(ctx, "DONE");
}

static void s_rcvlowat_poll(struct conf_ctx *ctx)
{
	int fd = conf_accept_one(ctx, SOCK_STREAM);
	char buf[1000];

	fill_pattern(buf, sizeof(buf), 20, 0);
	send_all(fd, buf, 500);
	ctl_send(ctx, "SENT");
	ctl_expect(ctx, "MORE");
	send_all(fd, buf + 500, 500);
	ctl_send(ctx, "SENT");
	ctl_expect(ctx, "DONE");
}

static void c_rcvlowat_recv(struct conf_ctx *ctx)
{
	int fd = conf_connect_one(ctx, SOCK_STREAM);
	char buf[2000];
	double t0, took;

	setsockopt_int(fd, SOL_SOCKET, SO_RCVLOWAT, 1000);
	set_timeo(fd, SO_RCVTIMEO, 5000);	/* safety */
	ctl_expect(ctx, "SENT");
	ctl_send(ctx, "MORE");	/* the server sends 500 more in 300 ms */
	t0 = mono();
	CHECK_EQ(recv(fd, buf, sizeof(buf), 0), 1000);
	took = mono() - t0;
	CHECK(check_pattern(buf, 1000, 20, 0));
	if (took < 0.25)
		conf_fail("recv returned after %.3f s, before 1000 bytes were there",
			  took);
	ctl_send(ctx, "DONE");
}

static void s_rcvlowat_recv(struct conf_ctx *ctx)
{
	int fd = conf_accept_one(ctx, SOCK_STREAM);
	char buf[1000];

	fill_pattern(buf, sizeof(buf), 20, 0);
	send_all(fd, buf, 500);
	ctl_send(ctx, "SENT");
	ctl_expect(ctx, "MORE");
	msleep(300);
	send_all(fd, buf + 500, 500);
	ctl_expect(ctx, "DONE");
}

/* ---------------------------------------------------------------- */
/* SO_SNDBUF / SO_RCVBUF: the channel sizes                           */

static int connect_small(struct conf_ctx *ctx)
{
	int fd = st_socket(ctx);

	setsockopt_int(fd, SOL_SOCKET, SO_SNDBUF, SMALL_CHANNEL);
	ctl_expect(ctx, "LISTENING");
	CHECK_OK(st_connect_to(ctx, fd, ctx->peer, ctx->port));
	return fd;
}

static void c_sndbuf_reads_twice(struct conf_ctx *ctx)
{
	int fd = connect_small(ctx);

	CHECK_EQ(getsockopt_int(fd, SOL_SOCKET, SO_SNDBUF), 2 * SMALL_CHANNEL);
	ctl_send(ctx, "DONE");
}

static void c_sndbuf_fill(struct conf_ctx *ctx)
{
	int fd = connect_small(ctx);

	CHECK_EQ(fill_dontwait(fd), SMALL_CHANNEL);
	ctl_send(ctx, "DONE");
}

static void c_sndbuf_outq(struct conf_ctx *ctx)
{
	int fd = connect_small(ctx);

	CHECK_EQ(fill_dontwait(fd), SMALL_CHANNEL);
	CHECK_EQ(ioctl_int(fd, SIOCOUTQ), SMALL_CHANNEL);
	ctl_send(ctx, "DONE");
}

static void c_sndbuf_peer(struct conf_ctx *ctx)
{
	int fd = connect_small(ctx);

	CHECK_EQ(fill_dontwait(fd), SMALL_CHANNEL);
	ctl_send(ctx, "FILLED");
	ctl_expect(ctx, "DONE");
}

static void s_sndbuf_peer(struct conf_ctx *ctx)
{
	int fd = conf_accept_one(ctx, SOCK_STREAM);

	ctl_expect(ctx, "FILLED");
	CHECK_EQ(ioctl_int(fd, SIOCINQ), SMALL_CHANNEL);
	CHECK_EQ(getsockopt_int(fd, SOL_SOCKET, SO_RCVBUF), 2 * SMALL_CHANNEL);
	ctl_send(ctx, "DONE");
}

static void c_sndbuf_default(struct conf_ctx *ctx)
{
	int fd = conf_connect_one(ctx, SOCK_STREAM);
	long cs = sysfs_param("channel_size", -1);

	CHECK(cs > 0);
	CHECK_EQ(getsockopt_int(fd, SOL_SOCKET, SO_SNDBUF), 2 * cs);
	ctl_send(ctx, "DONE");
}

static void c_sndbuf_default_fill(struct conf_ctx *ctx)
{
	int fd = conf_connect_one(ctx, SOCK_STREAM);
	long cs = sysfs_param("channel_size", -1);

	CHECK(cs > 0);
	CHECK_EQ(fill_dontwait(fd), cs);
	ctl_send(ctx, "DONE");
}

static void s_sndbuf_listener(struct conf_ctx *ctx)
{
	int lfd = st_socket(ctx), fd;

	CHECK_OK(st_bind(ctx, lfd, IVSHMEM_PEER_ANY, ctx->port));
	setsockopt_int(lfd, SOL_SOCKET, SO_SNDBUF, SMALL_CHANNEL);
	CHECK_OK(listen(lfd, 4));
	ctl_send(ctx, "LISTENING");
	fd = (int)CHECK_OK(accept(lfd, NULL, NULL));
	CHECK_EQ(getsockopt_int(fd, SOL_SOCKET, SO_SNDBUF), 2 * SMALL_CHANNEL);
	CHECK_EQ(fill_dontwait(fd), SMALL_CHANNEL);
	ctl_send(ctx, "FILLED");
	ctl_expect(ctx, "DONE");
}

static void c_sndbuf_listener(struct conf_ctx *ctx)
{
	int fd = conf_connect_one(ctx, SOCK_STREAM);

	ctl_expect(ctx, "FILLED");
	CHECK_EQ(ioctl_int(fd, SIOCINQ), SMALL_CHANNEL);
	ctl_send(ctx, "DONE");
}

/* ---------------------------------------------------------------- */
/* SIOCINQ / SIOCOUTQ                                                 */

static void c_siocinq(struct conf_ctx *ctx)
{
	int fd = conf_connect_one(ctx, SOCK_STREAM);
	char buf[600];

	fill_pattern(buf, sizeof(buf), 21, 0);
	send_all(fd, buf, 100);
	send_all(fd, buf + 100, 200);
	send_all(fd, buf + 300, 300);
	ctl_send(ctx, "SENT");
	ctl_expect(ctx, "DONE");
}

static void s_siocinq(struct conf_ctx *ctx)
{
	int fd = conf_accept_one(ctx, SOCK_STREAM);
	char buf[100];

	ctl_expect(ctx, "SENT");
	CHECK_EQ(ioctl_int(fd, SIOCINQ), 600);
	recv_all(fd, buf, 100);
	CHECK_EQ(ioctl_int(fd, SIOCINQ), 500);
	ctl_send(ctx, "DONE");
}

static void c_siocoutq(struct conf_ctx *ctx)
{
	int fd = conf_connect_one(ctx, SOCK_STREAM);

	CHECK_EQ(ioctl_int(fd, SIOCOUTQ), 0);
	send_pattern(fd, 3000, 22);
	CHECK_EQ(ioctl_int(fd, SIOCOUTQ), 3000);
	ctl_send(ctx, "SENT");
	ctl_expect(ctx, "READ");
	CHECK_EQ(ioctl_int(fd, SIOCOUTQ), 2000);
	ctl_send(ctx, "DONE");
}

static void s_siocoutq(struct conf_ctx *ctx)
{
	int fd = conf_accept_one(ctx, SOCK_STREAM);

	ctl_expect(ctx, "SENT");
	recv_pattern(fd, 1000, 22);
	ctl_send(ctx, "READ");
	ctl_expect(ctx, "DONE");
}

static void c_siocinq_listener(struct conf_ctx *ctx)
{
	int fd = conf_listen(ctx, SOCK_STREAM, CLIENT_PORT(ctx, 0), 1), v;

	CHECK_ERR(ioctl(fd, SIOCINQ, &v), EINVAL);
}

/* ---------------------------------------------------------------- */
/* iovecs and bad buffers                                             */

#define SG_SEND_IOVS	64
#define SG_TOTAL	(SG_SEND_IOVS * (SG_SEND_IOVS - 1) / 2 * 7 + SG_SEND_IOVS)

static void c_sendmsg_iovs(struct conf_ctx *ctx)
{
	int fd = conf_connect_one(ctx, SOCK_STREAM);
	struct iovec iov[SG_SEND_IOVS];
	struct msghdr msg = { .msg_iov = iov, .msg_iovlen = SG_SEND_IOVS };
	char *buf = malloc(SG_TOTAL);
	size_t off = 0;
	int i;

	CHECK(buf);
	fill_pattern(buf, SG_TOTAL, 23, 0);
	for (i = 0; i < SG_SEND_IOVS; i++) {
		iov[i].iov_base = buf + off;
		iov[i].iov_len = i * 7 + 1;
		off += iov[i].iov_len;
	}
	CHECK_EQ(off, SG_TOTAL);
	CHECK_EQ(sendmsg(fd, &msg, 0), SG_TOTAL);
	ctl_send(ctx, "SENT");
	ctl_expect(ctx, "DONE");
}

static void s_recvmsg_iovs(struct conf_ctx *ctx)
{
	static const size_t lens[7] = { 1, 100, 999, 2048, 3000, 4000, 0 };
	int fd = conf_accept_one(ctx, SOCK_STREAM);
	struct iovec iov[7];
	struct msghdr msg = { .msg_iov = iov, .msg_iovlen = 7 };
	char *buf = malloc(SG_TOTAL);
	size_t off = 0;
	int i;

	CHECK(buf);
	for (i = 0; i < 7; i++) {
		iov[i].iov_base = buf + off;
		iov[i].iov_len = lens[i] ? lens[i] : SG_TOTAL - off;
		off += iov[i].iov_len;
	}
	ctl_expect(ctx, "SENT");
	CHECK_EQ(recvmsg(fd, &msg, 0), SG_TOTAL);
	CHECK(check_pattern(buf, SG_TOTAL, 23, 0));
	ctl_send(ctx, "DONE");
}

static void c_writev(struct conf_ctx *ctx)
{
	static const size_t lens[5] = { 3, 4093, 1, 8192, 11 };
	int fd = conf_connect_one(ctx, SOCK_STREAM);
	char buf[3 + 4093 + 1 + 8192 + 11];
	struct iovec iov[5];
	size_t off = 0;
	int i;

	fill_pattern(buf, sizeof(buf), 24, 0);
	for (i = 0; i < 5; i++) {
		iov[i].iov_base = buf + off;
		iov[i].iov_len = lens[i];
		off += lens[i];
	}
	CHECK_EQ(writev(fd, iov, 5), sizeof(buf));
	ctl_send(ctx, "SENT");
	ctl_expect(ctx, "DONE");
}

static void s_readv(struct conf_ctx *ctx)
{
	static const size_t lens[3] = { 5000, 7, 3 + 4093 + 1 + 8192 + 11 - 5007 };
	int fd = conf_accept_one(ctx, SOCK_STREAM);
	char buf[3 + 4093 + 1 + 8192 + 11];
	struct iovec iov[3];
	size_t off = 0;
	int i;

	for (i = 0; i < 3; i++) {
		iov[i].iov_base = buf + off;
		iov[i].iov_len = lens[i];
		off += lens[i];
	}
	ctl_expect(ctx, "SENT");
	CHECK_EQ(readv(fd, iov, 3), sizeof(buf));
	CHECK(check_pattern(buf, sizeof(buf), 24, 0));
	ctl_send(ctx, "DONE");
}

static void c_send_null(struct conf_ctx *ctx)
{
	int fd = conf_connect_one(ctx, SOCK_STREAM);
	void *volatile null = NULL;

	CHECK_ERR(send(fd, null, 100, 0), EFAULT);
	ctl_send(ctx, "DONE");
}

static void c_recv_efault(struct conf_ctx *ctx)
{
	int fd = conf_connect_one(ctx, SOCK_STREAM);
	char *bad, good[100];

	bad = mmap(NULL, 4096, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	CHECK(bad != MAP_FAILED);
	CHECK_OK(munmap(bad, 4096));
	ctl_expect(ctx, "SENT");
	CHECK_ERR(recv(fd, bad, 100, 0), EFAULT);
	CHECK_EQ(recv(fd, good, sizeof(good), MSG_DONTWAIT), 100);
	CHECK(check_pattern(good, sizeof(good), 18, 0));
	ctl_send(ctx, "DONE");
}

/* ---------------------------------------------------------------- */
/* sendfile / splice                                                  */

#define SENDFILE_LEN	(1024 * 1024)

static void c_sendfile(struct conf_ctx *ctx)
{
	int fd = conf_connect_one(ctx, SOCK_STREAM);
	char tmpl[] = "/tmp/ivshmem-conf-XXXXXX";
	int ffd = (int)CHECK_OK(mkstemp(tmpl));
	static char buf[65536];
	off_t off = 0;
	size_t i;

	unlink(tmpl);
	for (i = 0; i < SENDFILE_LEN; i += sizeof(buf)) {
		fill_pattern(buf, sizeof(buf), 25, i);
		CHECK_EQ(write(ffd, buf, sizeof(buf)), sizeof(buf));
	}
	while (off < SENDFILE_LEN) {
		ssize_t n = sendfile(fd, ffd, &off, SENDFILE_LEN - off);

		if (n <= 0)
			conf_fail("sendfile at %lld: %s", (long long)off,
				  n ? strerror(errno) : "returned 0");
	}
	ctl_expect(ctx, "DONE");
}

static void s_recv_1mib(struct conf_ctx *ctx)
{
	int fd = conf_accept_one(ctx, SOCK_STREAM);

	recv_pattern(fd, SENDFILE_LEN, 25);
	ctl_send(ctx, "DONE");
}

#define SPLICE_LEN	(256 * 1024)

static void c_splice_from_socket(struct conf_ctx *ctx)
{
	int fd = conf_connect_one(ctx, SOCK_STREAM), p[2];
	static char buf[65536];
	size_t off = 0;

	CHECK_OK(pipe(p));
	while (off < SPLICE_LEN) {
		ssize_t n = splice(fd, NULL, p[1], NULL, 65536, 0);

		if (n <= 0)
			conf_fail("splice at %zu: %s", off,
				  n ? strerror(errno) : "returned 0");
		CHECK_EQ(read(p[0], buf, n), n);
		if (!check_pattern(buf, n, 26, off))
			conf_fail("wrong bytes at %zu", off);
		off += n;
	}
	CHECK_EQ(off, SPLICE_LEN);
	ctl_send(ctx, "DONE");
}

static void s_send_splice(struct conf_ctx *ctx)
{
	int fd = conf_accept_one(ctx, SOCK_STREAM);

	send_pattern(fd, SPLICE_LEN, 26);
	ctl_expect(ctx, "DONE");
}

static void c_splice_to_socket(struct conf_ctx *ctx)
{
	int fd = conf_connect_one(ctx, SOCK_STREAM), p[2];
	static char buf[16384];
	size_t off = 0;

	CHECK_OK(pipe(p));
	while (off < SPLICE_LEN) {
		size_t in = 0;

		fill_pattern(buf, sizeof(buf), 27, off);
		CHECK_EQ(write(p[1], buf, sizeof(buf)), sizeof(buf));
		while (in < sizeof(buf)) {
			ssize_t n = splice(p[0], NULL, fd, NULL,
					   sizeof(buf) - in, 0);

			if (n <= 0)
				conf_fail("splice at %zu: %s", off + in,
					  n ? strerror(errno) : "returned 0");
			in += n;
		}
		off += sizeof(buf);
	}
	ctl_expect(ctx, "DONE");
}

static void s_recv_splice(struct conf_ctx *ctx)
{
	int fd = conf_accept_one(ctx, SOCK_STREAM);

	recv_pattern(fd, SPLICE_LEN, 27);
	ctl_send(ctx, "DONE");
}

/* ---------------------------------------------------------------- */
/* Bulk                                                               */

#define BIG_LEN	(64 * 1024 * 1024)

static void c_send_64mib(struct conf_ctx *ctx)
{
	int fd = conf_connect_one(ctx, SOCK_STREAM);
	char *buf = malloc(BIG_LEN);

	CHECK(buf);
	fill_pattern(buf, BIG_LEN, 28, 0);
	CHECK_EQ(send(fd, buf, BIG_LEN, 0), BIG_LEN);
	ctl_expect(ctx, "DONE");
}

static void s_recv_64mib(struct conf_ctx *ctx)
{
	int fd = conf_accept_one(ctx, SOCK_STREAM);

	recv_pattern(fd, BIG_LEN, 28);
	ctl_send(ctx, "DONE");
}

/* ---------------------------------------------------------------- */
/* poll / select / epoll                                              */

static void c_poll_new(struct conf_ctx *ctx)
{
	int fd = st_socket(ctx);

	CHECK_MASK(poll_mask(fd, 0), POLLOUT | POLLHUP);
}

static void c_poll_idle(struct conf_ctx *ctx)
{
	int fd = conf_connect_one(ctx, SOCK_STREAM);

	CHECK_MASK(poll_mask(fd, 0), POLLOUT);
	ctl_send(ctx, "DONE");
}

static void c_poll_data(struct conf_ctx *ctx)
{
	int fd = conf_connect_one(ctx, SOCK_STREAM);

	ctl_expect(ctx, "SENT");
	CHECK_MASK(poll_until(fd, POLLIN), POLLIN | POLLOUT);
	ctl_send(ctx, "DONE");
}

static void s_shut_wr_wait(struct conf_ctx *ctx)
{
	int fd = conf_accept_one(ctx, SOCK_STREAM);

	CHECK_OK(shutdown(fd, SHUT_WR));
	ctl_send(ctx, "SHUT");
	ctl_expect(ctx, "DONE");
}

static void c_poll_peer_shut_wr(struct conf_ctx *ctx)
{
	int fd = conf_connect_one(ctx, SOCK_STREAM);

	ctl_expect(ctx, "SHUT");
	CHECK_MASK(poll_until(fd, POLLRDHUP), POLLIN | POLLRDHUP | POLLOUT);
	ctl_send(ctx, "DONE");
}

static void c_poll_both_shut_wr(struct conf_ctx *ctx)
{
	int fd = conf_connect_one(ctx, SOCK_STREAM);

	ctl_expect(ctx, "SHUT");
	poll_until(fd, POLLRDHUP);
	CHECK_OK(shutdown(fd, SHUT_WR));
	CHECK_MASK(poll_until(fd, POLLHUP),
		   POLLIN | POLLRDHUP | POLLOUT | POLLHUP);
	ctl_send(ctx, "DONE");
}

static void c_poll_reset(struct conf_ctx *ctx)
{
	int fd = conf_connect_one(ctx, SOCK_STREAM);

	send_pattern(fd, 100, 13);
	ctl_send(ctx, "SENT");
	ctl_expect(ctx, "CLOSED");
	CHECK_MASK(poll_until(fd, POLLERR),
		   POLLIN | POLLOUT | POLLRDHUP | POLLERR | POLLHUP);
}

static void s_poll_listener(struct conf_ctx *ctx)
{
	int lfd = conf_listen(ctx, SOCK_STREAM, ctx->port, 4);

	ctl_send(ctx, "LISTENING");
	ctl_expect(ctx, "CONNECTED");
	CHECK_MASK(poll_mask(lfd, 5000), POLLIN);
	close((int)CHECK_OK(accept(lfd, NULL, NULL)));
	ctl_send(ctx, "DONE");
}

static void c_poll_listener(struct conf_ctx *ctx)
{
	int fd = conf_connect_one(ctx, SOCK_STREAM);

	ctl_send(ctx, "CONNECTED");
	ctl_expect(ctx, "DONE");
	close(fd);
}

static void select_rw(int fd, bool *r, bool *w)
{
	struct timeval tv = { 0, 0 };
	fd_set rs, ws;

	FD_ZERO(&rs);
	FD_ZERO(&ws);
	FD_SET(fd, &rs);
	FD_SET(fd, &ws);
	CHECK_OK(select(fd + 1, &rs, &ws, NULL, &tv));
	*r = FD_ISSET(fd, &rs);
	*w = FD_ISSET(fd, &ws);
}

static void c_select(struct conf_ctx *ctx)
{
	int fd = conf_connect_one(ctx, SOCK_STREAM);
	bool r, w;

	select_rw(fd, &r, &w);
	CHECK(!r);
	CHECK(w);
	ctl_send(ctx, "IDLE_OK");
	ctl_expect(ctx, "SENT");
	poll_until(fd, POLLIN);
	select_rw(fd, &r, &w);
	CHECK(r);
	CHECK(w);
	ctl_send(ctx, "DONE");
}

static void s_select(struct conf_ctx *ctx)
{
	int fd = conf_accept_one(ctx, SOCK_STREAM);

	ctl_expect(ctx, "IDLE_OK");
	send_pattern(fd, 100, 18);
	ctl_send(ctx, "SENT");
	ctl_expect(ctx, "DONE");
}

static void c_epoll_et(struct conf_ctx *ctx)
{
	int fd = conf_connect_one(ctx, SOCK_STREAM);
	int ep = (int)CHECK_OK(epoll_create1(0));
	struct epoll_event ev = { .events = EPOLLIN | EPOLLET }, out[4];
	char buf[200];

	CHECK_OK(epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev));
	CHECK_EQ(epoll_wait(ep, out, 4, 0), 0);
	ctl_send(ctx, "GO");
	ctl_expect(ctx, "SENT");
	CHECK_EQ(epoll_wait(ep, out, 4, 5000), 1);
	CHECK_EQ(out[0].events, EPOLLIN);
	CHECK_EQ(epoll_wait(ep, out, 4, 0), 0);
	ctl_send(ctx, "GO");
	ctl_expect(ctx, "SENT");
	CHECK_EQ(epoll_wait(ep, out, 4, 5000), 1);
	CHECK_EQ(out[0].events, EPOLLIN);
	recv_all(fd, buf, 200);
	CHECK_EQ(epoll_wait(ep, out, 4, 0), 0);
	ctl_send(ctx, "DONE");
}

static void s_epoll_et(struct conf_ctx *ctx)
{
	int fd = conf_accept_one(ctx, SOCK_STREAM);

	ctl_expect(ctx, "GO");
	send_pattern(fd, 100, 29);
	ctl_send(ctx, "SENT");
	ctl_expect(ctx, "GO");
	send_pattern(fd, 100, 29);
	ctl_send(ctx, "SENT");
	ctl_expect(ctx, "DONE");
}

static void c_epoll_lt(struct conf_ctx *ctx)
{
	int fd = conf_connect_one(ctx, SOCK_STREAM);
	int ep = (int)CHECK_OK(epoll_create1(0));
	struct epoll_event ev = { .events = EPOLLIN }, out[4];
	char buf[100];

	CHECK_OK(epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev));
	ctl_expect(ctx, "SENT");
	CHECK_EQ(epoll_wait(ep, out, 4, 5000), 1);
	CHECK_EQ(out[0].events, EPOLLIN);
	CHECK_EQ(epoll_wait(ep, out, 4, 0), 1);
	CHECK_EQ(epoll_wait(ep, out, 4, 0), 1);
	recv_all(fd, buf, 50);
	CHECK_EQ(epoll_wait(ep, out, 4, 0), 1);
	CHECK_EQ(out[0].events, EPOLLIN);
	recv_all(fd, buf, 50);
	CHECK_EQ(epoll_wait(ep, out, 4, 0), 0);
	ctl_send(ctx, "DONE");
}

/* ---------------------------------------------------------------- */
/* Scale                                                              */

#define SCALE_N		1000
#define SCALE_CHANNEL	4096
#define SCALE_MAGIC	0x5ca1ab1e00000000ULL

static void raise_nofile(void)
{
	struct rlimit rl = { 4096, 4096 };

	CHECK_OK(setrlimit(RLIMIT_NOFILE, &rl));
}

static uint64_t scale_reply(uint64_t v)
{
	return ~v ^ 0x0123456789abcdefULL;
}

static void c_scale(struct conf_ctx *ctx)
{
	static int fds[SCALE_N];
	int i;

	raise_nofile();
	ctl_expect(ctx, "LISTENING");
	for (i = 0; i < SCALE_N; i++) {
		fds[i] = st_socket(ctx);
		setsockopt_int(fds[i], SOL_SOCKET, SO_SNDBUF, SCALE_CHANNEL);
		if (st_connect_to(ctx, fds[i], ctx->peer, ctx->port))
			conf_fail("connect %d of %d: %s", i + 1, SCALE_N,
				  strerror(errno));
	}
	for (i = 0; i < SCALE_N; i++) {
		uint64_t v = SCALE_MAGIC + i;

		send_all(fds[i], &v, sizeof(v));
	}
	for (i = 0; i < SCALE_N; i++) {
		uint64_t v;

		recv_all(fds[i], &v, sizeof(v));
		if (v != scale_reply(SCALE_MAGIC + i))
			conf_fail("connection %d: reply %#llx, expected %#llx",
				  i, (unsigned long long)v,
				  (unsigned long long)scale_reply(SCALE_MAGIC + i));
	}
	for (i = 0; i < SCALE_N; i++)
		close(fds[i]);
	ctl_send(ctx, "CLOSED");
	ctl_expect(ctx, "DONE");
}

static void s_scale(struct conf_ctx *ctx)
{
	static int fds[SCALE_N];
	static bool seen[SCALE_N];
	int lfd, i;

	raise_nofile();
	lfd = st_socket(ctx);
	CHECK_OK(st_bind(ctx, lfd, IVSHMEM_PEER_ANY, ctx->port));
	setsockopt_int(lfd, SOL_SOCKET, SO_SNDBUF, SCALE_CHANNEL);
	CHECK_OK(listen(lfd, 1024));
	ctl_send(ctx, "LISTENING");
	for (i = 0; i < SCALE_N; i++) {
		fds[i] = accept(lfd, NULL, NULL);
		if (fds[i] < 0)
			conf_fail("accept %d of %d: %s", i + 1, SCALE_N,
				  strerror(errno));
	}
	for (i = 0; i < SCALE_N; i++) {
		uint64_t v, r;

		recv_all(fds[i], &v, sizeof(v));
		if (v < SCALE_MAGIC || v >= SCALE_MAGIC + SCALE_N ||
		    seen[v - SCALE_MAGIC])
			conf_fail("connection %d: value %#llx unexpected", i,
				  (unsigned long long)v);
		seen[v - SCALE_MAGIC] = true;
		r = scale_reply(v);
		send_all(fds[i], &r, sizeof(r));
	}
	ctl_expect(ctx, "CLOSED");
	for (i = 0; i < SCALE_N; i++) {
		expect_eof(fds[i]);
		close(fds[i]);
	}
	ctl_send(ctx, "DONE");
}

/* ---------------------------------------------------------------- */
/* Wrong state                                                        */

static void c_send_unconnected(struct conf_ctx *ctx)
{
	int fd = st_socket(ctx);
	char c = 'x';

	CHECK_ERR(send(fd, &c, 1, MSG_NOSIGNAL), ENOTCONN);
}

static void c_recv_unconnected(struct conf_ctx *ctx)
{
	int fd = st_socket(ctx);
	char c;

	CHECK_ERR(recv(fd, &c, 1, MSG_DONTWAIT), ENOTCONN);
}

static void c_recv_listener(struct conf_ctx *ctx)
{
	int fd = conf_listen(ctx, SOCK_STREAM, CLIENT_PORT(ctx, 0), 1);
	char c;

	CHECK_ERR(recv(fd, &c, 1, MSG_DONTWAIT), ENOTCONN);
}

static void c_send_listener(struct conf_ctx *ctx)
{
	int fd = conf_listen(ctx, SOCK_STREAM, CLIENT_PORT(ctx, 0), 1);
	char c = 'x';

	CHECK_ERR(send(fd, &c, 1, MSG_NOSIGNAL), ENOTCONN);
}

/* ---------------------------------------------------------------- */

#define ONLY_CLIENT(name, fn) { name, fn, NULL, 0 }
#define CONNECTED(name, fn) { name, fn, srv_accept_wait_done, 0 }

const struct conf_case conf_stream_cases[] = {
	ONLY_CLIENT("stream socket: protocol 0 and protocol = family are accepted",
		    c_socket_protocols),
	ONLY_CLIENT("stream socket: another protocol fails with EPROTONOSUPPORT",
		    c_socket_bad_protocol),
	ONLY_CLIENT("stream socket: SOCK_RAW fails with ESOCKTNOSUPPORT", c_socket_raw),

	ONLY_CLIENT("stream bind: addrlen below sizeof(sockaddr_ivshmem) fails with EINVAL",
		    c_bind_short),
	ONLY_CLIENT("stream bind: a wrong sa_family fails with EAFNOSUPPORT",
		    c_bind_family),
	ONLY_CLIENT("stream bind: nonzero sivshm_reserved1 fails with EINVAL",
		    c_bind_reserved1),
	ONLY_CLIENT("stream bind: nonzero sivshm_flags fails with EINVAL",
		    c_bind_flags),
	ONLY_CLIENT("stream bind: binding a bound socket again fails with EINVAL",
		    c_bind_twice),
	ONLY_CLIENT("stream bind: second bind of a port fails with EADDRINUSE",
		    c_bind_in_use),
	ONLY_CLIENT("stream bind: a STREAM and a DGRAM socket may bind the same port",
		    c_bind_per_type),
	ONLY_CLIENT("stream bind: a port below 1024 without CAP_NET_BIND_SERVICE fails with EACCES",
		    c_bind_privileged_user),
	ONLY_CLIENT("stream bind: a port below 1024 as root succeeds",
		    c_bind_privileged_root),
	ONLY_CLIENT("stream bind: PORT_ANY picks an ephemeral port shown by getsockname",
		    c_bind_ephemeral),
	ONLY_CLIENT("stream bind: another peer's id fails with EADDRNOTAVAIL",
		    c_bind_other_peer),
	ONLY_CLIENT("stream bind: the own peer id on region 0 is accepted",
		    c_bind_own_peer),
	ONLY_CLIENT("stream bind: an absent region (5) fails with EADDRNOTAVAIL",
		    c_bind_no_region),

	ONLY_CLIENT("stream getsockname: a bound socket shows family, port, PEER_ANY, REGION_ANY, 16 bytes",
		    c_getsockname_bound),
	CONNECTED("stream getsockname: a connected socket shows its own peer id and region 0",
		  c_getsockname_connected),
	ONLY_CLIENT("stream getpeername: an unconnected socket fails with ENOTCONN",
		    c_getpeername_unconnected),
	{ "stream getpeername: both ends see the other's peer id, port and region 0",
	  c_getpeername_connected, s_getpeername_connected, 0 },
	{ "stream getsockname: an accepted socket has the listener's port",
	  c_done_after_connect, s_getsockname_accepted, 0 },

	ONLY_CLIENT("stream connect: PORT_ANY in the address fails with EINVAL",
		    c_connect_port_any),
	ONLY_CLIENT("stream connect: PEER_ANY in the address fails with EINVAL",
		    c_connect_peer_any),
	ONLY_CLIENT("stream connect: a port without listener fails with ECONNREFUSED",
		    c_connect_refused),
	ONLY_CLIENT("stream connect: a nonexistent peer id (60) fails with EHOSTUNREACH",
		    c_connect_no_host),
	ONLY_CLIENT("stream connect: region 7 fails with ENETUNREACH",
		    c_connect_no_region),
	CONNECTED("stream connect: a connected socket fails with EISCONN",
		  c_connect_isconn),
	ONLY_CLIENT("stream connect: a listening socket fails with EINVAL",
		    c_connect_listener),
	ONLY_CLIENT("stream connect: a short addrlen fails with EINVAL",
		    c_connect_short),
	ONLY_CLIENT("stream connect: a wrong sa_family fails with EAFNOSUPPORT",
		    c_connect_family),
	CONNECTED("stream connect: an unbound socket is auto-bound to an ephemeral port",
		  c_connect_autobind),
	CONNECTED("stream connect: O_NONBLOCK gives EINPROGRESS, then POLLOUT, SO_ERROR 0 and EISCONN",
		  c_connect_nonblock),
	ONLY_CLIENT("stream connect: O_NONBLOCK refused: poll gives POLLIN|POLLOUT|POLLRDHUP|POLLERR|POLLHUP",
		    c_connect_nonblock_refused_poll),
	ONLY_CLIENT("stream connect: O_NONBLOCK refused: SO_ERROR is ECONNREFUSED once, then 0",
		    c_connect_nonblock_refused_soerror),
	{ "stream connect: a socket may connect again after ECONNREFUSED",
	  c_connect_after_refused, s_connect_after_refused, 0 },

	ONLY_CLIENT("stream IVSHMEM_CONNECT_TIMEOUT_MS: a new socket reads the module default 5000",
		    c_ct_default),
	ONLY_CLIENT("stream IVSHMEM_CONNECT_TIMEOUT_MS: 1500 set reads back 1500",
		    c_ct_set),
	ONLY_CLIENT("stream IVSHMEM_CONNECT_TIMEOUT_MS: 0 fails with EINVAL", c_ct_zero),
	ONLY_CLIENT("stream IVSHMEM_CONNECT_TIMEOUT_MS: setsockopt with optlen 4 fails with EINVAL",
		    c_ct_set_short),
	ONLY_CLIENT("stream IVSHMEM_CONNECT_TIMEOUT_MS: getsockopt with optlen 4 fails with EINVAL",
		    c_ct_get_short),
	{ "stream IVSHMEM_CONNECT_TIMEOUT_MS: an accepted socket inherits the listener's value",
	  c_done_after_connect, s_ct_inherited, 0 },

	ONLY_CLIENT("stream IVSHMEM_PEER_INFO: an unconnected socket fails with ENOTCONN",
		    c_pi_unconnected),
	ONLY_CLIENT("stream IVSHMEM_PEER_INFO: setsockopt fails with ENOPROTOOPT",
		    c_pi_set),
	{ "stream IVSHMEM_PEER_INFO: both ends see the other's peer id, port, region 0 and pid",
	  c_pi_both, s_pi_both, 0 },
	{ "stream IVSHMEM_PEER_INFO: the pid of an accepted socket is the listener creator's",
	  c_pi_listener_pid, s_pi_listener_pid, 0 },
	CONNECTED("stream IVSHMEM_PEER_INFO: a short optlen fails with EINVAL",
		  c_pi_short),

	ONLY_CLIENT("stream options: unknown option 99 at the family level fails with ENOPROTOOPT",
		    c_opt_unknown),
	ONLY_CLIENT("stream options: TCP_NODELAY at level IPPROTO_TCP fails with ENOPROTOOPT",
		    c_opt_tcp_level),

	ONLY_CLIENT("stream listen: an unbound socket is auto-bound to an ephemeral port",
		    c_listen_autobind),
	CONNECTED("stream listen: a connected socket fails with EINVAL",
		  c_listen_connected),
	ONLY_CLIENT("stream accept: a bound, non-listening socket fails with EINVAL",
		    c_accept_not_listening),
	ONLY_CLIENT("stream accept: non-blocking with an empty queue fails with EAGAIN",
		    c_accept_nonblock_empty),
	{ "stream accept4: SOCK_NONBLOCK|SOCK_CLOEXEC give O_NONBLOCK and FD_CLOEXEC",
	  c_done_after_connect, s_accept4_flags, 0 },
	{ "stream listen: backlog 1 queues two connects and refuses the third with ECONNREFUSED",
	  c_backlog, s_backlog, 0 },
	{ "stream listen: after an accept from a full backlog a new connect succeeds",
	  c_backlog_after_accept, s_backlog_after_accept, 0 },

	CONNECTED("stream shutdown: how = 3 fails with EINVAL", c_shutdown_bad_how),
	ONLY_CLIENT("stream shutdown: an unconnected socket fails with ENOTCONN",
		    c_shutdown_unconnected),
	{ "stream shutdown: after SHUT_WR the peer reads all data sent before, then EOF",
	  c_shut_wr_data_then_eof, s_shut_wr_data_then_eof, 0 },
	CONNECTED("stream shutdown: send after SHUT_WR fails with EPIPE and raises SIGPIPE",
		  c_shut_wr_sigpipe),
	CONNECTED("stream shutdown: send after SHUT_WR with MSG_NOSIGNAL fails with EPIPE, no SIGPIPE",
		  c_shut_wr_nosignal),
	CONNECTED("stream shutdown: recv after SHUT_RD returns 0 at once",
		  c_shut_rd),
	{ "stream shutdown: SHUT_RDWR on a listener returns 0 and a blocked accept fails with EINVAL",
	  NULL, s_shut_listener_wakes_accept, 0 },
	{ "stream shutdown: after SHUT_RDWR on a listener connects fail with ECONNREFUSED",
	  c_shut_listener_refuses, s_shut_listener_refuses, 0 },

	{ "stream close: the peer reads the remaining data, then EOF",
	  c_close_data_then_eof, s_close_data_then_eof, 0 },
	{ "stream close: closing with unread data makes the peer's recv fail with ECONNRESET",
	  c_close_unread_resets, s_close_unread_resets, 0 },
	{ "stream close: SO_LINGER {1, 0} makes the peer's recv fail with ECONNRESET",
	  c_linger_zero, s_linger_zero, 0 },
	{ "stream close: SO_LINGER {1, 10} blocks until the peer has read the last byte",
	  c_linger_waits, s_linger_waits, 60 },
	{ "stream close: closing a dup'ed fd leaves the connection open",
	  c_close_dup, s_close_dup, 0 },
	{ "stream fork: a child sends, the parent receives; EOF only after both closed",
	  c_fork_share, s_fork_share, 0 },

	{ "stream recv: MSG_PEEK returns the data without consuming it",
	  c_peek, s_send100, 0 },
	CONNECTED("stream recv: MSG_PEEK|MSG_DONTWAIT on an empty socket fails with EAGAIN",
		  c_peek_empty),
	{ "stream recv: MSG_WAITALL returns the full 4000 bytes sent in four pieces",
	  c_waitall, s_waitall, 0 },
	CONNECTED("stream recv: MSG_DONTWAIT on an empty socket fails with EAGAIN",
		  c_dontwait_empty),
	CONNECTED("stream send: MSG_OOB fails with EOPNOTSUPP", c_oob_send),
	{ "stream recv: MSG_OOB fails with EOPNOTSUPP", c_oob_recv, s_send100, 0 },
	CONNECTED("stream recv: SO_RCVTIMEO 200 ms on an empty socket fails with EAGAIN after >= 150 ms",
		  c_rcvtimeo),
	CONNECTED("stream send: SO_SNDTIMEO 200 ms on a full channel fails with EAGAIN after >= 150 ms",
		  c_sndtimeo),
	{ "stream SO_RCVLOWAT 1000: poll reports POLLIN only once 1000 bytes are pending",
	  c_rcvlowat_poll, s_rcvlowat_poll, 0 },
	{ "stream SO_RCVLOWAT 1000: a blocking recv waits until 1000 bytes are pending",
	  c_rcvlowat_recv, s_rcvlowat_recv, 0 },

	CONNECTED("stream SO_SNDBUF 16384 before connect: SO_SNDBUF reads 32768 after connect",
		  c_sndbuf_reads_twice),
	CONNECTED("stream SO_SNDBUF 16384 before connect: MSG_DONTWAIT sends take exactly 16384 bytes, then EAGAIN",
		  c_sndbuf_fill),
	CONNECTED("stream SO_SNDBUF 16384 before connect: SIOCOUTQ reads 16384 on the full channel",
		  c_sndbuf_outq),
	{ "stream SO_SNDBUF 16384 before connect: the peer's SIOCINQ reads 16384 and SO_RCVBUF 32768",
	  c_sndbuf_peer, s_sndbuf_peer, 0 },
	CONNECTED("stream SO_SNDBUF: unset, it reads twice the channel_size parameter",
		  c_sndbuf_default),
	CONNECTED("stream SO_SNDBUF: unset, MSG_DONTWAIT sends take exactly channel_size bytes",
		  c_sndbuf_default_fill),
	{ "stream SO_SNDBUF 16384 on a listener sizes the accepted sockets' send channels",
	  c_sndbuf_listener, s_sndbuf_listener, 0 },

	{ "stream ioctl: SIOCINQ counts exactly the bytes pending",
	  c_siocinq, s_siocinq, 0 },
	{ "stream ioctl: SIOCOUTQ counts exactly the bytes the peer has not read",
	  c_siocoutq, s_siocoutq, 0 },
	ONLY_CLIENT("stream ioctl: SIOCINQ on a listener fails with EINVAL",
		    c_siocinq_listener),

	{ "stream sendmsg: 64 iovecs arrive byte-exact in a recvmsg with 7 iovecs",
	  c_sendmsg_iovs, s_recvmsg_iovs, 0 },
	{ "stream writev: 5 iovecs arrive byte-exact in a readv with 3 iovecs",
	  c_writev, s_readv, 0 },
	CONNECTED("stream send: a NULL buffer with len 100 fails with EFAULT",
		  c_send_null),
	{ "stream recv: an unmapped buffer fails with EFAULT and loses no data",
	  c_recv_efault, s_send100, 0 },

	{ "stream sendfile: a 1 MiB file arrives byte-exact",
	  c_sendfile, s_recv_1mib, 60 },
	{ "stream splice: from the socket into a pipe, 256 KiB byte-exact",
	  c_splice_from_socket, s_send_splice, 60 },
	{ "stream splice: from a pipe into the socket, 256 KiB byte-exact",
	  c_splice_to_socket, s_recv_splice, 60 },
	{ "stream send: one blocking send of 64 MiB returns 64 MiB and arrives byte-exact",
	  c_send_64mib, s_recv_64mib, 300 },

	ONLY_CLIENT("stream poll: a new socket reports POLLOUT|POLLHUP", c_poll_new),
	CONNECTED("stream poll: a connected idle socket reports POLLOUT",
		  c_poll_idle),
	{ "stream poll: data from the peer gives POLLIN|POLLOUT",
	  c_poll_data, s_send100, 0 },
	{ "stream poll: the peer's SHUT_WR gives POLLIN|POLLRDHUP|POLLOUT",
	  c_poll_peer_shut_wr, s_shut_wr_wait, 0 },
	{ "stream poll: SHUT_WR at both ends gives POLLIN|POLLRDHUP|POLLOUT|POLLHUP",
	  c_poll_both_shut_wr, s_shut_wr_wait, 0 },
	{ "stream poll: a reset by the peer gives POLLIN|POLLOUT|POLLRDHUP|POLLERR|POLLHUP",
	  c_poll_reset, s_close_unread_resets, 0 },
	{ "stream poll: a listener with a pending connection reports POLLIN",
	  c_poll_listener, s_poll_listener, 0 },
	{ "stream select: readable only with data, writable when connected",
	  c_select, s_select, 0 },
	{ "stream epoll: edge-triggered EPOLLIN once per arrival, none after draining",
	  c_epoll_et, s_epoll_et, 0 },
	{ "stream epoll: level-triggered EPOLLIN repeats until drained",
	  c_epoll_lt, s_send100, 0 },

	{ "stream scale: 1000 concurrent connections carry distinct values both ways",
	  c_scale, s_scale, 300 },

	ONLY_CLIENT("stream send: an unconnected socket fails with ENOTCONN",
		    c_send_unconnected),
	ONLY_CLIENT("stream recv: an unconnected socket fails with ENOTCONN",
		    c_recv_unconnected),
	ONLY_CLIENT("stream recv: a listener fails with ENOTCONN",
		    c_recv_listener),
	ONLY_CLIENT("stream send: a listener fails with ENOTCONN",
		    c_send_listener),
	{ 0 },
};
