// SPDX-License-Identifier: GPL-2.0
/*
 * ivshmem_fuzz: a seeded, time-bounded syscall fuzzer for the AF_IVSHMEM
 * socket API, in the spirit of syzkaller's descriptions: random sequences
 * of socket, bind, listen, connect (blocking and not), accept/accept4,
 * send/sendto/sendmsg, recv/recvfrom/recvmsg with random flags, lengths
 * and iovec counts, setsockopt/getsockopt on SOL_SOCKET and the family's
 * level with random lengths and values, ioctl, shutdown, poll, epoll,
 * dup and close, on a small pool of descriptors and random addresses
 * (families, lengths, ports, peers, regions).
 *
 *   ivshmem_fuzz [-s SEED] [-t SECONDS] [-n CALLS] [-w WATCHDOG_S]
 *                [-p PEERS] [-P PORT_BASE] [-v]
 *
 * Every call's result is checked: an errno outside the set allowed for
 * that call, a return value out of range, or a call that does not return
 * within the watchdog fails the run (exit 1) with the seed, the call
 * number and the last calls made.  Prints "ok seed=S calls=N ..." on
 * success.  The same seed replays the same sequence of calls (-v prints
 * them, -n stops after CALLS): the choices depend on earlier results
 * (which descriptors are open), so a replay is exact in one guest and
 * may drift when another guest's fuzzer is the peer.  A forked child
 * (op_fork) makes calls of its own on the shared descriptors.
 * Blocking calls are bounded by SO_RCVTIMEO/SO_SNDTIMEO (re-applied after
 * every setsockopt) and IVSHMEM_CONNECT_TIMEOUT_MS.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <linux/sockios.h>

#include "../tools/lib/ivshmem.h"

#define NFDS		12
#define BUF_MAX		(256 * 1024)
#define NPORTS		8
#define HISTORY		24

static uint64_t rng_state;
static unsigned long long ncalls;
static unsigned long long nerr[160];
static int fam;
static unsigned int npeers = 4;
static unsigned int port_base = 41000;
static int verbose;
static unsigned long long seed;
static char history[HISTORY][160];
static volatile sig_atomic_t in_call;
static char cur[160];
static char *buf;

struct slot {
	int fd;		/* -1: empty */
	int type;
};

static struct slot pool[NFDS];

static uint64_t rnd64(void)
{
	/* splitmix64 */
	uint64_t z = (rng_state += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static unsigned int rnd(unsigned int n)
{
	return n ? (unsigned int)(rnd64() % n) : 0;
}

static bool chance(unsigned int pct)
{
	return rnd(100) < pct;
}

static void dump_history(void)
{
	unsigned long long i, first;

	first = ncalls > HISTORY ? ncalls - HISTORY : 0;
	fprintf(stderr, "# last calls:\n");
	for (i = first; i < ncalls; i++)
		fprintf(stderr, "#   %llu %s\n", i, history[i % HISTORY]);
}

static void on_alarm(int sig)
{
	static const char msg[] = "FAIL hang: a call did not return within the watchdog\n";

	(void)sig;
	if (write(2, msg, sizeof(msg) - 1) < 0)
		_exit(3);
	fprintf(stderr, "FAIL seed=%llu call=%llu hung: %s\n", seed, ncalls, cur);
	dump_history();
	_exit(1);
}

static unsigned int watchdog_s = 20;

static void begin(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(cur, sizeof(cur), fmt, ap);
	va_end(ap);
	snprintf(history[ncalls % HISTORY], sizeof(history[0]), "%s", cur);
	if (verbose)
		fprintf(stderr, "%llu %s\n", ncalls, cur);
	in_call = 1;
	alarm(watchdog_s);
}

/*
 * Ends a call: @ok is the set of errnos allowed for it (0-terminated).
 * Errnos every call on a socket may return: a descriptor closed by the
 * fuzzer, out of memory, a signal.
 */
static void end(long ret, const int *ok)
{
	int e = errno;

	alarm(0);
	in_call = 0;
	ncalls++;
	if (ret >= 0)
		return;
	if (e >= 0 && e < 160)
		nerr[e]++;
	if (e == EBADF || e == ENOMEM || e == ENOBUFS || e == EINTR)
		return;
	for (; *ok; ok++)
		if (*ok == e)
			return;
	fprintf(stderr, "FAIL seed=%llu call=%llu: %s: unexpected errno %d (%s)\n",
		seed, ncalls - 1, cur, e, strerror(e));
	dump_history();
	exit(1);
}

static void fail_value(const char *why)
{
	fprintf(stderr, "FAIL seed=%llu call=%llu: %s: %s\n", seed, ncalls - 1,
		cur, why);
	dump_history();
	exit(1);
}

/* Errnos of the data path on a connection that may be gone or never was. */
#define CONN_ERRS EPIPE, ECONNRESET, ENOTCONN, EAGAIN, EDESTADDRREQ, \
	ECONNREFUSED, ETIMEDOUT, ESHUTDOWN, EOPNOTSUPP, EINVAL, EMSGSIZE, \
	ECONNABORTED, EHOSTUNREACH, ENETUNREACH, ENODEV, ENOSPC, EAFNOSUPPORT, \
	EADDRNOTAVAIL, EISCONN

static const int ok_socket[] = { EINVAL, ESOCKTNOSUPPORT, EPROTONOSUPPORT,
	EPROTOTYPE, EMFILE, ENFILE, EAFNOSUPPORT, 0 };
static const int ok_bind[] = { EINVAL, EADDRINUSE, EADDRNOTAVAIL,
	EAFNOSUPPORT, EACCES, ENODEV, EOPNOTSUPP, EISCONN, 0 };
static const int ok_listen[] = { EINVAL, EOPNOTSUPP, EADDRINUSE, EISCONN,
	EDESTADDRREQ, ENODEV, 0 };
static const int ok_connect[] = { EINVAL, EISCONN, EALREADY, EINPROGRESS,
	ECONNREFUSED, ETIMEDOUT, ECONNRESET, EADDRNOTAVAIL, EAFNOSUPPORT,
	ENETUNREACH, EHOSTUNREACH, ENODEV, EOPNOTSUPP, EAGAIN, ENOSPC,
	EADDRINUSE, ECONNABORTED, EPIPE, EACCES, 0 };
static const int ok_accept[] = { EINVAL, EAGAIN, EOPNOTSUPP, ECONNABORTED,
	EMFILE, ENFILE, ECONNRESET, ENOTCONN, ENODEV, 0 };
static const int ok_io[] = { CONN_ERRS, 0 };
static const int ok_sockopt[] = { EINVAL, ENOPROTOOPT, EOPNOTSUPP, ENOTCONN,
	EPERM, EDOM, ENODEV, EISCONN, 0 };
static const int ok_ioctl[] = { EINVAL, ENOTTY, EOPNOTSUPP,
	ENODEV, ENOTCONN, ENOENT, ENXIO, 0 };
static const int ok_shutdown[] = { EINVAL, ENOTCONN, 0 };
static const int ok_none[] = { 0 };

static int pick_type(void)
{
	static const int types[] = { SOCK_STREAM, SOCK_SEQPACKET, SOCK_DGRAM };

	if (chance(3))
		return (int)rnd(12);	/* SOCK_RAW, SOCK_RDM, junk */
	return types[rnd(3)];
}

static int slot_any(void)
{
	return (int)rnd(NFDS);
}

static int fd_of(int s)
{
	/* a closed descriptor now and then: EBADF */
	return pool[s].fd;
}

static void set_timeouts(int fd)
{
	struct timeval tv = { .tv_sec = 0, .tv_usec = 200000 };
	uint64_t ms = 300;

	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	setsockopt(fd, fam, IVSHMEM_CONNECT_TIMEOUT_MS, &ms, sizeof(ms));
}

static void put_fd(int fd, int type)
{
	int s = slot_any();

	if (pool[s].fd >= 0)
		close(pool[s].fd);
	pool[s].fd = fd;
	pool[s].type = type;
	set_timeouts(fd);
}

/* A random address: mostly plausible, sometimes junk. */
static socklen_t rand_addr(struct sockaddr_storage *ss, bool for_bind)
{
	struct sockaddr_ivshmem *a = (struct sockaddr_ivshmem *)ss;
	socklen_t len = sizeof(*a);

	memset(ss, 0, sizeof(*ss));
	a->sivshm_family = (sa_family_t)fam;
	a->sivshm_port = port_base + rnd(NPORTS);
	if (for_bind)
		a->sivshm_peer = chance(70) ? IVSHMEM_PEER_ANY : rnd(npeers);
	else
		a->sivshm_peer = rnd(npeers);
	a->sivshm_region = chance(80) ? IVSHMEM_REGION_ANY : (uint16_t)rnd(3);
	if (chance(10))
		a->sivshm_port = chance(50) ? IVSHMEM_PORT_ANY : (uint32_t)rnd64();
	if (chance(5))
		a->sivshm_peer = (uint32_t)rnd64();
	if (chance(5))
		a->sivshm_flags = (uint16_t)rnd64();
	if (chance(5))
		a->sivshm_reserved1 = (uint16_t)rnd64();
	if (chance(5))
		a->sivshm_family = chance(50) ? AF_UNIX : (sa_family_t)rnd(64);
	if (chance(7))
		len = rnd(sizeof(*ss) + 1);
	return len;
}

static size_t rand_len(void)
{
	switch (rnd(6)) {
	case 0:
		return 0;
	case 1:
		return 1;
	case 2:
		return rnd(64);
	case 3:
		return rnd(4096);
	case 4:
		return rnd(BUF_MAX);
	default:
		return chance(50) ? 65507 + rnd(3) : BUF_MAX;
	}
}

static int rand_msg_flags(bool send)
{
	static const int f[] = { MSG_PEEK, MSG_DONTWAIT, MSG_TRUNC, MSG_WAITALL,
		MSG_OOB, MSG_NOSIGNAL, MSG_EOR, MSG_MORE, MSG_CMSG_CLOEXEC,
		MSG_ERRQUEUE, MSG_CONFIRM, MSG_DONTROUTE };
	int flags = MSG_NOSIGNAL, i;

	for (i = 0; i < 3; i++)
		if (chance(30))
			flags |= f[rnd(sizeof(f) / sizeof(f[0]))];
	/* A blocking MSG_WAITALL recv is still bounded by SO_RCVTIMEO. */
	if (chance(2))
		flags |= 1 << rnd(31);
	(void)send;
	return flags;
}

#define IOV_HUGE	1100	/* past UIO_MAXIOV (1024) */
static struct iovec iov_huge[IOV_HUGE];

static int build_iov(struct iovec *iov, int max)
{
	int n = (int)rnd((unsigned int)max + 1), i;

	if (chance(2)) {
		/* many tiny iovecs, sometimes more than the kernel takes */
		n = 1000 + (int)rnd(IOV_HUGE - 1000 + 1);
		for (i = 0; i < n; i++) {
			iov_huge[i].iov_base = buf + i;
			iov_huge[i].iov_len = rnd(3);
		}
		return -n;
	}
	size_t off = 0;

	for (i = 0; i < n; i++) {
		size_t l = rand_len() / (size_t)(n ? n : 1);

		if (off + l > BUF_MAX)
			l = 0;
		iov[i].iov_base = buf + off;
		iov[i].iov_len = l;
		off += l;
	}
	return n;
}

static void set_iov(struct msghdr *mh, struct iovec *iov, int n)
{
	mh->msg_iov = n < 0 ? iov_huge : iov;
	mh->msg_iovlen = (size_t)(n < 0 ? -n : n);
}

static size_t iov_total(const struct iovec *iov, int n)
{
	size_t t = 0;
	int i;

	for (i = 0; i < n; i++)
		t += iov[i].iov_len;
	return t;
}

static void op_socket(void)
{
	int type = pick_type(), proto = chance(90) ? 0 : (int)rnd(300);
	int extra = chance(30) ? SOCK_NONBLOCK : 0;
	int fd;

	if (chance(20))
		extra |= SOCK_CLOEXEC;
	begin("socket(%d, %d|%#x, %d)", fam, type, extra, proto);
	fd = socket(fam, type | extra, proto);
	end(fd, ok_socket);
	if (fd >= 0)
		put_fd(fd, type);
}

static void op_bind(void)
{
	struct sockaddr_storage ss;
	int s = slot_any();
	socklen_t len = rand_addr(&ss, true);

	begin("bind(%d, port %u peer %u len %u)", fd_of(s),
	      ((struct sockaddr_ivshmem *)&ss)->sivshm_port,
	      ((struct sockaddr_ivshmem *)&ss)->sivshm_peer, len);
	end(bind(fd_of(s), (struct sockaddr *)&ss, len), ok_bind);
}

static void op_listen(void)
{
	int s = slot_any(), backlog = chance(80) ? (int)rnd(8) : (int)rnd64();

	begin("listen(%d, %d)", fd_of(s), backlog);
	end(listen(fd_of(s), backlog), ok_listen);
}

static void op_connect(void)
{
	struct sockaddr_storage ss;
	int s = slot_any(), fd = fd_of(s), nb = chance(40);
	socklen_t len = rand_addr(&ss, false);
	int fl;

	if (chance(3)) {
		/* AF_UNSPEC: disconnect a datagram socket */
		memset(&ss, 0, sizeof(ss));
		len = sizeof(struct sockaddr);
	}
	if (fd >= 0 && nb) {
		fl = fcntl(fd, F_GETFL);
		if (fl >= 0)
			fcntl(fd, F_SETFL, fl | O_NONBLOCK);
	}
	begin("connect(%d, family %u port %u peer %u len %u)%s", fd,
	      ((struct sockaddr_ivshmem *)&ss)->sivshm_family,
	      ((struct sockaddr_ivshmem *)&ss)->sivshm_port,
	      ((struct sockaddr_ivshmem *)&ss)->sivshm_peer, len,
	      nb ? " nonblocking" : "");
	end(connect(fd, (struct sockaddr *)&ss, len), ok_connect);
	if (fd >= 0 && nb && chance(50)) {
		fl = fcntl(fd, F_GETFL);
		if (fl >= 0)
			fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
	}
}

static void op_accept(void)
{
	struct sockaddr_storage ss;
	socklen_t len = chance(80) ? sizeof(ss) : rnd(sizeof(ss));
	int s = slot_any(), fd = fd_of(s), nfd, flags = 0;
	bool four = chance(50), addr = chance(70);

	if (four && chance(50))
		flags |= SOCK_NONBLOCK;
	if (four && chance(30))
		flags |= SOCK_CLOEXEC;
	if (four && chance(3))
		flags |= 1 << rnd(31);
	begin("accept%s(%d, addr %d len %u, %#x)", four ? "4" : "", fd, addr,
	      len, flags);
	if (four)
		nfd = accept4(fd, addr ? (struct sockaddr *)&ss : NULL,
			      addr ? &len : NULL, flags);
	else
		nfd = accept(fd, addr ? (struct sockaddr *)&ss : NULL,
			     addr ? &len : NULL);
	end(nfd, ok_accept);
	if (nfd >= 0)
		put_fd(nfd, pool[s].type);
}

static void op_send(void)
{
	struct sockaddr_storage ss;
	struct iovec iov[8];
	struct msghdr mh;
	int s = slot_any(), fd = fd_of(s), flags = rand_msg_flags(true);
	size_t len = rand_len();
	socklen_t alen;
	ssize_t r;
	char cbuf[64];

	switch (rnd(3)) {
	case 0:
		begin("send(%d, %zu, %#x)", fd, len, flags);
		r = send(fd, buf, len, flags);
		end(r, ok_io);
		break;
	case 1:
		alen = rand_addr(&ss, false);
		begin("sendto(%d, %zu, %#x, port %u peer %u len %u)", fd, len,
		      flags, ((struct sockaddr_ivshmem *)&ss)->sivshm_port,
		      ((struct sockaddr_ivshmem *)&ss)->sivshm_peer, alen);
		r = sendto(fd, buf, len, flags, chance(80) ?
			   (struct sockaddr *)&ss : NULL, alen);
		end(r, ok_io);
		break;
	default:
		memset(&mh, 0, sizeof(mh));
		set_iov(&mh, iov, build_iov(iov, 8));
		len = iov_total(mh.msg_iov, (int)mh.msg_iovlen);
		if (chance(30)) {
			alen = rand_addr(&ss, false);
			mh.msg_name = &ss;
			mh.msg_namelen = alen;
		}
		if (chance(10)) {
			struct cmsghdr *c = (struct cmsghdr *)cbuf;

			memset(cbuf, 0, sizeof(cbuf));
			c->cmsg_len = CMSG_LEN(4);
			c->cmsg_level = chance(50) ? SOL_SOCKET : (int)rnd(300);
			c->cmsg_type = (int)rnd(64);
			mh.msg_control = cbuf;
			mh.msg_controllen = CMSG_SPACE(4);
		}
		begin("sendmsg(%d, %zu iov %zu, %#x, name %u, control %zu)", fd,
		      len, (size_t)mh.msg_iovlen, flags, mh.msg_namelen,
		      (size_t)mh.msg_controllen);
		r = sendmsg(fd, &mh, flags);
		end(r, ok_io);
		break;
	}
	if (r >= 0 && (size_t)r > len)
		fail_value("sent more than asked");
}

static void op_recv(void)
{
	struct sockaddr_storage ss;
	struct iovec iov[8];
	struct msghdr mh;
	int s = slot_any(), fd = fd_of(s), flags = rand_msg_flags(false);
	size_t len = rand_len();
	socklen_t alen = chance(80) ? sizeof(ss) : rnd(sizeof(ss));
	ssize_t r;
	char cbuf[128];

	switch (rnd(3)) {
	case 0:
		begin("recv(%d, %zu, %#x)", fd, len, flags);
		r = recv(fd, buf, len, flags);
		end(r, ok_io);
		break;
	case 1:
		begin("recvfrom(%d, %zu, %#x, alen %u)", fd, len, flags, alen);
		r = recvfrom(fd, buf, len, flags, (struct sockaddr *)&ss, &alen);
		end(r, ok_io);
		if (r >= 0 && alen > sizeof(ss))
			fail_value("address length grew past the buffer");
		break;
	default:
		memset(&mh, 0, sizeof(mh));
		set_iov(&mh, iov, build_iov(iov, 8));
		len = iov_total(mh.msg_iov, (int)mh.msg_iovlen);
		mh.msg_name = chance(70) ? &ss : NULL;
		mh.msg_namelen = mh.msg_name ? alen : 0;
		if (chance(30)) {
			mh.msg_control = cbuf;
			mh.msg_controllen = rnd(sizeof(cbuf));
		}
		begin("recvmsg(%d, %zu iov %zu, %#x)", fd, len,
		      (size_t)mh.msg_iovlen, flags);
		r = recvmsg(fd, &mh, flags);
		end(r, ok_io);
		if (r >= 0 && mh.msg_controllen > sizeof(cbuf))
			fail_value("control length grew past the buffer");
		break;
	}
	/* MSG_TRUNC on a message socket returns the real length. */
	if (r >= 0 && (size_t)r > len && !(flags & MSG_TRUNC))
		fail_value("received more than the buffer");
	if (r > (ssize_t)IVSHMEM_DGRAM_MAX + BUF_MAX)
		fail_value("absurd length");
}

static void op_sockopt(void)
{
	static const int sol[] = { SO_DEBUG, SO_REUSEADDR, SO_TYPE, SO_ERROR,
		SO_DONTROUTE, SO_BROADCAST, SO_SNDBUF, SO_RCVBUF, SO_KEEPALIVE,
		SO_OOBINLINE, SO_LINGER, SO_RCVLOWAT, SO_SNDLOWAT, SO_RCVTIMEO,
		SO_SNDTIMEO, SO_PASSCRED, SO_PEERCRED, SO_ACCEPTCONN, SO_PROTOCOL,
		SO_DOMAIN, SO_PEEK_OFF, SO_BUSY_POLL, SO_MARK, SO_PRIORITY,
		SO_TIMESTAMP, SO_RCVBUFFORCE, SO_SNDBUFFORCE, SO_ZEROCOPY,
		SO_INCOMING_CPU, SO_COOKIE, SO_PEERNAME, SO_BINDTODEVICE };
	unsigned char val[64];
	int s = slot_any(), fd = fd_of(s), level, name, set = chance(50);
	socklen_t len;
	long r;

	for (size_t i = 0; i < sizeof(val); i++)
		val[i] = (unsigned char)rnd64();
	if (chance(50)) {
		/* sane small values most of the time */
		memset(val, 0, sizeof(val));
		val[0] = (unsigned char)rnd(4);
	}
	switch (rnd(3)) {
	case 0:
		level = SOL_SOCKET;
		name = sol[rnd(sizeof(sol) / sizeof(sol[0]))];
		break;
	case 1:
		level = fam;
		name = (int)rnd(5);
		break;
	default:
		level = chance(50) ? (int)rnd(300) : fam;
		name = (int)rnd64() % 64;
		break;
	}
	switch (rnd(4)) {
	case 0:
		len = 4;
		break;
	case 1:
		len = 8;
		break;
	case 2:
		len = rnd(sizeof(val) + 1);
		break;
	default:
		len = sizeof(struct ivshmem_peer_info);
		break;
	}
	if (set) {
		begin("setsockopt(%d, %d, %d, len %u)", fd, level, name, len);
		r = setsockopt(fd, level, name, val, len);
		end(r, ok_sockopt);
		if (fd >= 0)
			set_timeouts(fd);
	} else {
		socklen_t in = len;

		begin("getsockopt(%d, %d, %d, len %u)", fd, level, name, len);
		r = getsockopt(fd, level, name, val, &len);
		end(r, ok_sockopt);
		if (r == 0 && len > in && !(level == SOL_SOCKET))
			fail_value("option length grew past the buffer");
	}
}

static void op_ioctl(void)
{
	static const unsigned long cmds[] = { FIONREAD, SIOCOUTQ, SIOCOUTQNSD,
		IOCTL_IVSHMEM_GET_LOCAL_PEER, IOCTL_IVSHMEM_RESOLVE_IPV4,
		IOCTL_IVSHMEM_PEER_IPV4, FIONBIO, SIOCGSTAMP_OLD, SIOCATMARK,
		FIOASYNC };
	unsigned char val[64] = { 0 };
	int s = slot_any(), fd = fd_of(s);
	unsigned long cmd = chance(90) ? cmds[rnd(sizeof(cmds) / sizeof(cmds[0]))] :
		_IOC(rnd(4), 'v', 0xe0 + rnd(16), rnd(64));
	long r;

	if (chance(50))
		for (size_t i = 0; i < sizeof(val); i++)
			val[i] = (unsigned char)rnd64();
	if (cmd == FIONBIO || cmd == FIOASYNC)
		memset(val, 0, sizeof(val));
	begin("ioctl(%d, %#lx)", fd, cmd);
	r = ioctl(fd, cmd, val);
	end(r, ok_ioctl);
}

static void op_shutdown(void)
{
	int s = slot_any(), how = chance(90) ? (int)rnd(3) : (int)rnd(100);

	begin("shutdown(%d, %d)", fd_of(s), how);
	end(shutdown(fd_of(s), how), ok_shutdown);
}

static void op_poll(void)
{
	struct pollfd p[NFDS];
	int i, n = 0, r;

	for (i = 0; i < NFDS; i++) {
		if (pool[i].fd < 0 || chance(50))
			continue;
		p[n].fd = pool[i].fd;
		p[n].events = (short)(chance(80) ? POLLIN | POLLOUT | POLLPRI |
				      POLLRDHUP : rnd64());
		p[n].revents = 0;
		n++;
	}
	begin("poll(%d fds, %d ms)", n, 20);
	r = poll(p, (nfds_t)n, (int)rnd(30));
	end(r, ok_none);
	if (r > n)
		fail_value("poll counted more descriptors than it was given");
}

static void op_epoll(void)
{
	struct epoll_event ev[NFDS];
	int ep, i, r;

	begin("epoll_create1");
	ep = epoll_create1(0);
	end(ep, ok_none);
	if (ep < 0)
		return;
	for (i = 0; i < NFDS; i++) {
		struct epoll_event e = { .events = EPOLLIN | EPOLLOUT | EPOLLRDHUP };

		if (pool[i].fd < 0 || chance(40))
			continue;
		if (chance(30))
			e.events |= EPOLLET;
		if (chance(10))
			e.events |= EPOLLONESHOT;
		begin("epoll_ctl(ADD %d)", pool[i].fd);
		end(epoll_ctl(ep, EPOLL_CTL_ADD, pool[i].fd, &e), ok_none);
	}
	begin("epoll_wait");
	r = epoll_wait(ep, ev, NFDS, (int)rnd(30));
	end(r, ok_none);
	/* A socket closed with the epoll set open: epoll must cope. */
	if (chance(20)) {
		int s = slot_any();

		if (pool[s].fd >= 0) {
			close(pool[s].fd);
			pool[s].fd = -1;
		}
		begin("epoll_wait after close");
		end(epoll_wait(ep, ev, NFDS, 0), ok_none);
	}
	close(ep);
}

static void op_close(void)
{
	int s = slot_any();

	if (pool[s].fd < 0)
		return;
	begin("close(%d)", pool[s].fd);
	end(close(pool[s].fd), ok_none);
	pool[s].fd = -1;
}

static void op_dup(void)
{
	int s = slot_any(), fd;

	if (pool[s].fd < 0)
		return;
	begin("dup(%d)", pool[s].fd);
	fd = dup(pool[s].fd);
	end(fd, ok_none);
	if (fd >= 0)
		put_fd(fd, pool[s].type);
}

static void op_names(void)
{
	struct sockaddr_storage ss;
	socklen_t len = chance(80) ? sizeof(ss) : rnd(sizeof(ss));
	int s = slot_any(), peer = chance(50);
	static const int ok[] = { ENOTCONN, EINVAL, EOPNOTSUPP, 0 };

	begin("get%sname(%d, len %u)", peer ? "peer" : "sock", fd_of(s), len);
	if (peer)
		end(getpeername(fd_of(s), (struct sockaddr *)&ss, &len), ok);
	else
		end(getsockname(fd_of(s), (struct sockaddr *)&ss, &len), ok);
}

/* A connection the plausible way, so that the data path is reached often. */
static void op_pair(void)
{
	static const int types[] = { SOCK_STREAM, SOCK_SEQPACKET, SOCK_DGRAM };
	struct sockaddr_ivshmem a;
	int type = types[rnd(3)];
	int l, c;
	long self = ivshmem_local_peer();

	if (self < 0)
		return;
	ivshmem_addr(&a, IVSHMEM_PEER_ANY, port_base + rnd(NPORTS));
	begin("pair: socket(%d)", type);
	l = socket(fam, type, 0);
	end(l, ok_socket);
	if (l < 0)
		return;
	put_fd(l, type);
	begin("pair: bind(%d, port %u)", l, a.sivshm_port);
	end(bind(l, (struct sockaddr *)&a, sizeof(a)), ok_bind);
	if (type != SOCK_DGRAM) {
		begin("pair: listen(%d)", l);
		end(listen(l, 4), ok_listen);
	}
	begin("pair: socket(%d)", type);
	c = socket(fam, type, 0);
	end(c, ok_socket);
	if (c < 0)
		return;
	put_fd(c, type);
	a.sivshm_peer = chance(60) ? (uint32_t)self : rnd(npeers);
	begin("pair: connect(%d, peer %u port %u)", c, a.sivshm_peer,
	      a.sivshm_port);
	end(connect(c, (struct sockaddr *)&a, sizeof(a)), ok_connect);
}

static void (*const *ops_tab)(void);
static unsigned int ops_n;

/*
 * A child shares the pool (fork): it makes a few calls of its own on the
 * same sockets, then exits, closing its copies.  Its sequence comes from
 * the parent's generator, so a seed still replays it.
 */
static void op_fork(void)
{
	unsigned int i, n = 5 + rnd(20);
	uint64_t child_seed = rnd64();
	int st;
	pid_t pid;

	fflush(stdout);
	fflush(stderr);
	begin("fork (%u calls)", n);
	pid = fork();
	if (pid == 0) {
		rng_state = child_seed;
		for (i = 0; i < n; i++)
			ops_tab[rnd(ops_n)]();
		_exit(0);
	}
	end(pid, ok_none);
	if (pid < 0)
		return;
	alarm(watchdog_s * 2);
	if (waitpid(pid, &st, 0) < 0 || !WIFEXITED(st) || WEXITSTATUS(st)) {
		alarm(0);
		fail_value("the forked child failed (see above)");
	}
	alarm(0);
}

int main(int argc, char **argv)
{
	static void (*const ops[])(void) = { op_socket, op_socket, op_bind,
		op_listen, op_connect, op_accept, op_accept, op_send, op_send,
		op_send, op_recv, op_recv, op_recv, op_sockopt, op_sockopt,
		op_ioctl, op_shutdown, op_poll, op_epoll, op_close, op_dup,
		op_names, op_pair, op_pair, op_fork };
	struct sigaction sa = { .sa_handler = on_alarm };
	unsigned int seconds = 30;
	unsigned long long max_calls = ~0ULL;
	struct timespec t0, t;
	int opt, i, e;

	seed = (unsigned long long)time(NULL) ^ ((unsigned long long)getpid() << 20);
	while ((opt = getopt(argc, argv, "s:t:n:w:p:P:v")) != -1) {
		switch (opt) {
		case 's':
			seed = strtoull(optarg, NULL, 0);
			break;
		case 't':
			seconds = (unsigned int)strtoul(optarg, NULL, 0);
			break;
		case 'n':
			max_calls = strtoull(optarg, NULL, 0);
			break;
		case 'w':
			watchdog_s = (unsigned int)strtoul(optarg, NULL, 0);
			break;
		case 'p':
			npeers = (unsigned int)strtoul(optarg, NULL, 0);
			break;
		case 'P':
			port_base = (unsigned int)strtoul(optarg, NULL, 0);
			break;
		case 'v':
			verbose = 1;
			break;
		default:
			fprintf(stderr,
				"usage: %s [-s SEED] [-t SECONDS] [-n CALLS] [-w WATCHDOG_S] [-p PEERS] [-P PORT_BASE] [-v]\n",
				argv[0]);
			return 2;
		}
	}
	ops_tab = ops;
	ops_n = sizeof(ops) / sizeof(ops[0]) - 1;	/* a child does not fork */
	rng_state = seed;
	printf("# ivshmem_fuzz seed=%llu (replay: -s %llu)\n", seed, seed);
	fflush(stdout);
	fam = ivshmem_family();
	if (fam < 0) {
		perror("ivshmem_family");
		return 2;
	}
	sigaction(SIGALRM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	buf = calloc(1, BUF_MAX);
	if (!buf)
		return 2;
	for (i = 0; i < BUF_MAX; i++)
		buf[i] = (char)i;
	for (i = 0; i < NFDS; i++)
		pool[i].fd = -1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (;;) {
		clock_gettime(CLOCK_MONOTONIC, &t);
		if (t.tv_sec - t0.tv_sec >= (time_t)seconds || ncalls >= max_calls)
			break;
		ops[rnd(sizeof(ops) / sizeof(ops[0]))]();
		/* Now and then, start over: every socket closed at once. */
		if (chance(1))
			for (i = 0; i < NFDS; i++)
				if (pool[i].fd >= 0) {
					close(pool[i].fd);
					pool[i].fd = -1;
				}
	}
	for (i = 0; i < NFDS; i++)
		if (pool[i].fd >= 0)
			close(pool[i].fd);
	printf("ok seed=%llu calls=%llu", seed, ncalls);
	for (e = 1; e < 160; e++)
		if (nerr[e])
			printf(" %s=%llu", strerrorname_np(e) ? strerrorname_np(e) : "?",
			       nerr[e]);
	printf("\n");
	return 0;
}
