// SPDX-License-Identifier: GPL-2.0
/*
 * libivshmem-preload.so: moves an unmodified program's TCP connections to
 * AF_IVSHMEM when the destination is a guest on the IVSHMEM fabric.
 * Loaded by ivshmem-run(1) through LD_PRELOAD.
 *
 * Every AF_INET/AF_INET6 SOCK_STREAM socket the program creates is
 * remembered.  connect() to an address that resolves to a peer (the
 * IVSHMEM_HOSTS file, then the addresses the guests publish in their peer
 * slots) connects an AF_IVSHMEM socket to that peer, same port, and puts
 * it in place of the TCP socket (dup3: same descriptor number, same
 * O_NONBLOCK and FD_CLOEXEC).  When that fails the TCP socket connects as
 * usual.  listen() on a TCP socket also listens on AF_IVSHMEM at the same
 * port; the program's descriptor becomes an epoll instance holding both
 * listeners, so that poll/select/epoll on it wake for either kind, and
 * accept() takes whichever is ready.  Sockets on AF_IVSHMEM keep a "TCP
 * persona": getsockname/getpeername answer AF_INET(6) addresses, and TCP,
 * IP and unknown socket-level options are remembered and answered.
 */
#include <arpa/inet.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <linux/af_ivshmem.h>

#define MAX_FDS		65536
#define MAX_OPTS	32
#define OPT_LEN		64
#define MAX_HOSTS	256
#define HIDDEN_FD_MIN	512	/* hidden listener descriptors start here */
#define TCP_INFO_LEN	232	/* Linux 6.1's struct tcp_info */
#define IVS_MSS		65483

enum kind { K_TCP, K_CONN, K_LISTEN };

struct opt {
	int level, name;
	socklen_t len;
	char val[OPT_LEN];
};

/* What we know of one descriptor. */
struct persona {
	enum kind kind;
	dev_t dev;		/* identity of the socket (K_TCP, K_CONN), or */
	ino_t ino;		/* of the hidden TCP listener (K_LISTEN) */
	int family;		/* AF_INET or AF_INET6 */
	struct sockaddr_storage local, remote;	/* K_CONN */
	int tcp_fd, ivs_fd;	/* K_LISTEN: the hidden listeners */
	int nopts;
	struct opt opts[MAX_OPTS];
};

struct host {
	int family;
	unsigned char addr[16];
	uint32_t peer;
	uint16_t region;
};

static struct persona *table[MAX_FDS];
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_once_t hosts_once = PTHREAD_ONCE_INIT;
static struct host hosts[MAX_HOSTS];
static int nhosts;
static int debug = -1, no_kernel = -1;

/* The next definition of @name (libc's), looked up once. */
static void *next_sym(void **slot, const char *name)
{
	void *f = __atomic_load_n(slot, __ATOMIC_RELAXED);

	if (!f) {
		f = dlsym(RTLD_NEXT, name);
		__atomic_store_n(slot, f, __ATOMIC_RELAXED);
	}
	return f;
}

#define REAL(f) ((__typeof__(real_##f))next_sym((void **)&real_##f, #f))
static int (*real_socket)(int, int, int);
static int (*real_connect)(int, const struct sockaddr *, socklen_t);
static int (*real_bind)(int, const struct sockaddr *, socklen_t);
static int (*real_listen)(int, int);
static int (*real_accept)(int, struct sockaddr *, socklen_t *);
static int (*real_accept4)(int, struct sockaddr *, socklen_t *, int);
static int (*real_getsockname)(int, struct sockaddr *, socklen_t *);
static int (*real_getpeername)(int, struct sockaddr *, socklen_t *);
static int (*real_getsockopt)(int, int, int, void *, socklen_t *);
static int (*real_setsockopt)(int, int, int, const void *, socklen_t);
static int (*real_shutdown)(int, int);
static int (*real_close)(int);
static int (*real_dup2)(int, int);
static int (*real_dup3)(int, int, int);

static void logf_(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void logf_(const char *fmt, ...)
{
	char buf[512];
	va_list ap;
	int n;

	if (debug < 0) {
		const char *e = getenv("IVSHMEM_RUN_DEBUG");

		debug = e && *e && strcmp(e, "0");
	}
	if (!debug)
		return;
	n = snprintf(buf, sizeof(buf), "ivshmem-run[%d]: ", (int)getpid());
	va_start(ap, fmt);
	n += vsnprintf(buf + n, sizeof(buf) - n - 1, fmt, ap);
	va_end(ap);
	if (n > (int)sizeof(buf) - 2)
		n = sizeof(buf) - 2;
	buf[n++] = '\n';
	if (write(2, buf, n) < 0)
		return;
}

static int ivs_family(void)
{
	static int fam;
	FILE *f;

	if (fam)
		return fam;
	f = fopen(IVSHMEM_FAMILY_SYSFS, "re");
	if (!f)
		return -1;
	if (fscanf(f, "%d", &fam) != 1 || fam <= 0)
		fam = 0;
	fclose(f);
	return fam ? fam : -1;
}

static const char *fmt_addr(const struct sockaddr *sa, char *buf, size_t len)
{
	const void *a = sa->sa_family == AF_INET6 ?
		(const void *)&((const struct sockaddr_in6 *)sa)->sin6_addr :
		(const void *)&((const struct sockaddr_in *)sa)->sin_addr;

	if (!inet_ntop(sa->sa_family, a, buf, len))
		snprintf(buf, len, "?");
	return buf;
}

static socklen_t sa_len(int family)
{
	return family == AF_INET6 ? sizeof(struct sockaddr_in6) :
				    sizeof(struct sockaddr_in);
}

/* The IVSHMEM_HOSTS file: "ADDRESS PEER [REGION]" lines, # comments. */
static void hosts_load(void)
{
	const char *path = getenv("IVSHMEM_HOSTS");
	char line[256];
	FILE *f;

	if (!path || !*path)
		path = "/etc/ivshmem/hosts";
	f = fopen(path, "re");
	if (!f)
		return;
	while (fgets(line, sizeof(line), f) && nhosts < MAX_HOSTS) {
		char ip[64], *hash = strchr(line, '#');
		unsigned long peer, region = IVSHMEM_REGION_ANY;
		struct host *h = &hosts[nhosts];
		int n;

		if (hash)
			*hash = 0;
		n = sscanf(line, "%63s %lu %lu", ip, &peer, &region);
		if (n < 2 || peer >= 0xffffffffUL || region > 0xffff)
			continue;
		if (inet_pton(AF_INET, ip, h->addr) == 1)
			h->family = AF_INET;
		else if (inet_pton(AF_INET6, ip, h->addr) == 1)
			h->family = AF_INET6;
		else
			continue;
		h->peer = peer;
		h->region = region;
		nhosts++;
	}
	fclose(f);
	logf_("%d entries in %s", nhosts, path);
}

/* A throwaway AF_IVSHMEM socket for the ioctls. */
static int ivs_ioctl(unsigned long cmd, struct ivshmem_ipv4_map *map)
{
	int fam = ivs_family(), fd, err, saved;

	if (fam < 0)
		return -1;
	fd = REAL(socket)(fam, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	err = ioctl(fd, cmd, map);
	saved = errno;
	REAL(close)(fd);
	errno = saved;
	return err;
}

/* Which peer serves TCP address @sa?  0 and @peer, @region, or -1. */
static int resolve(const struct sockaddr *sa, socklen_t len, uint32_t *peer,
		   uint16_t *region)
{
	const struct sockaddr_in6 *s6 = (const void *)sa;
	const struct sockaddr_in *s4 = (const void *)sa;
	struct ivshmem_ipv4_map map = { 0 };
	unsigned char addr[16];
	int family, i;

	if (sa->sa_family == AF_INET && len >= sizeof(*s4)) {
		family = AF_INET;
		memcpy(addr, &s4->sin_addr, 4);
	} else if (sa->sa_family == AF_INET6 && len >= sizeof(*s6)) {
		family = AF_INET6;
		memcpy(addr, &s6->sin6_addr, 16);
		if (IN6_IS_ADDR_V4MAPPED(&s6->sin6_addr)) {
			family = AF_INET;
			memcpy(addr, &s6->sin6_addr.s6_addr[12], 4);
		}
	} else {
		return -1;
	}
	pthread_once(&hosts_once, hosts_load);
	for (i = 0; i < nhosts; i++) {
		if (hosts[i].family == family &&
		    !memcmp(hosts[i].addr, addr, family == AF_INET ? 4 : 16)) {
			*peer = hosts[i].peer;
			*region = hosts[i].region;
			return 0;
		}
	}
	if (no_kernel < 0) {
		const char *e = getenv("IVSHMEM_RUN_NO_KERNEL");

		no_kernel = e && *e && strcmp(e, "0");
	}
	if (family != AF_INET || no_kernel || addr[0] == 127)
		return -1;
	memcpy(&map.addr, addr, 4);
	if (ivs_ioctl(IOCTL_IVSHMEM_RESOLVE_IPV4, &map))
		return -1;
	*peer = map.peer;
	*region = map.region;
	return 0;
}

/* The IPv4 address of @peer on @region, into @out (network order). */
static int peer_ipv4(uint32_t peer, uint16_t region, struct in_addr *out)
{
	struct ivshmem_ipv4_map map = { .peer = peer, .region = region };
	int i;

	pthread_once(&hosts_once, hosts_load);
	for (i = 0; i < nhosts; i++) {
		if (hosts[i].family == AF_INET && hosts[i].peer == peer &&
		    (hosts[i].region == region ||
		     hosts[i].region == IVSHMEM_REGION_ANY)) {
			memcpy(out, hosts[i].addr, 4);
			return 0;
		}
	}
	if (ivs_ioctl(IOCTL_IVSHMEM_PEER_IPV4, &map))
		return -1;
	out->s_addr = map.addr;
	return 0;
}

/* Stores an IPv4 address (or its v4-mapped form) and port in @ss. */
static void make_sa(struct sockaddr_storage *ss, int family,
		    struct in_addr a, uint16_t port)
{
	memset(ss, 0, sizeof(*ss));
	if (family == AF_INET6) {
		struct sockaddr_in6 *s6 = (void *)ss;

		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons(port);
		if (a.s_addr) {
			s6->sin6_addr.s6_addr[10] = 0xff;
			s6->sin6_addr.s6_addr[11] = 0xff;
			memcpy(&s6->sin6_addr.s6_addr[12], &a, 4);
		}
	} else {
		struct sockaddr_in *s4 = (void *)ss;

		s4->sin_family = AF_INET;
		s4->sin_port = htons(port);
		s4->sin_addr = a;
	}
}

static bool sa_is_any(const struct sockaddr_storage *ss)
{
	const struct sockaddr_in6 *s6 = (const void *)ss;
	const struct sockaddr_in *s4 = (const void *)ss;

	if (ss->ss_family == AF_INET6)
		return IN6_IS_ADDR_UNSPECIFIED(&s6->sin6_addr);
	return s4->sin_addr.s_addr == htonl(INADDR_ANY);
}

/* The source address TCP would use towards @dst (a UDP socket's route). */
static void source_for(const struct sockaddr_storage *dst,
		       struct sockaddr_storage *out)
{
	socklen_t len = sizeof(*out);
	int fd = REAL(socket)(dst->ss_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);

	memset(out, 0, sizeof(*out));
	out->ss_family = dst->ss_family;
	if (fd < 0)
		return;
	if (REAL(connect)(fd, (const void *)dst, sa_len(dst->ss_family)) ||
	    REAL(getsockname)(fd, (void *)out, &len)) {
		memset(out, 0, sizeof(*out));
		out->ss_family = dst->ss_family;
	}
	REAL(close)(fd);
}

static void set_port(struct sockaddr_storage *ss, uint16_t port)
{
	if (ss->ss_family == AF_INET6)
		((struct sockaddr_in6 *)ss)->sin6_port = htons(port);
	else
		((struct sockaddr_in *)ss)->sin_port = htons(port);
}

static uint16_t get_port(const struct sockaddr_storage *ss)
{
	if (ss->ss_family == AF_INET6)
		return ntohs(((const struct sockaddr_in6 *)ss)->sin6_port);
	return ntohs(((const struct sockaddr_in *)ss)->sin_port);
}

static bool identity(int fd, dev_t *dev, ino_t *ino)
{
	struct stat st;

	if (fstat(fd, &st))
		return false;
	*dev = st.st_dev;
	*ino = st.st_ino;
	return true;
}

/* Forgets @fd; a listener's hidden descriptors are closed.  Under lock. */
static void forget(int fd)
{
	struct persona *p;

	if (fd < 0 || fd >= MAX_FDS || !table[fd])
		return;
	p = table[fd];
	table[fd] = NULL;
	if (p->kind == K_LISTEN) {
		REAL(close)(p->tcp_fd);
		REAL(close)(p->ivs_fd);
	}
	free(p);
}

/*
 * The persona of @fd, or NULL; the lock is held on success.  A persona
 * whose socket is no longer behind @fd (closed in a way we did not see)
 * is dropped.
 */
static struct persona *get(int fd)
{
	struct persona *p;
	dev_t dev;
	ino_t ino;

	if (fd < 0 || fd >= MAX_FDS ||
	    !__atomic_load_n(&table[fd], __ATOMIC_RELAXED))
		return NULL;
	pthread_mutex_lock(&lock);
	p = table[fd];
	if (p && !identity(p->kind == K_LISTEN ? p->tcp_fd : fd, &dev, &ino))
		dev = 0, ino = 0;
	if (p && (p->dev != dev || p->ino != ino)) {
		forget(fd);
		p = NULL;
	}
	if (!p)
		pthread_mutex_unlock(&lock);
	return p;
}

static void put(void)
{
	pthread_mutex_unlock(&lock);
}

static struct opt *opt_find(struct persona *p, int level, int name)
{
	int i;

	for (i = 0; i < p->nopts; i++)
		if (p->opts[i].level == level && p->opts[i].name == name)
			return &p->opts[i];
	return NULL;
}

static void opt_store(struct persona *p, int level, int name,
		      const void *val, socklen_t len)
{
	struct opt *o = opt_find(p, level, name);

	if (!val || len > OPT_LEN)
		return;
	if (!o) {
		if (p->nopts == MAX_OPTS)
			return;
		o = &p->opts[p->nopts++];
		o->level = level;
		o->name = name;
	}
	memset(o->val, 0, OPT_LEN);
	memcpy(o->val, val, len);
	o->len = len;
}

int socket(int domain, int type, int protocol)
{
	int fd = REAL(socket)(domain, type, protocol);
	int base = type & ~(SOCK_NONBLOCK | SOCK_CLOEXEC);
	struct persona *p;

	if (fd < 0 || fd >= MAX_FDS)
		return fd;
	pthread_mutex_lock(&lock);
	forget(fd);
	if ((domain == AF_INET || domain == AF_INET6) &&
	    base == SOCK_STREAM &&
	    (protocol == 0 || protocol == IPPROTO_TCP)) {
		p = calloc(1, sizeof(*p));
		if (p && identity(fd, &p->dev, &p->ino)) {
			p->kind = K_TCP;
			p->family = domain;
			table[fd] = p;
		} else {
			free(p);
		}
	}
	pthread_mutex_unlock(&lock);
	return fd;
}

/* Connects AF_IVSHMEM socket @s to @addr, blocking; 0 or an errno. */
static int ivs_connect(int s, const struct sockaddr_ivshmem *addr)
{
	struct pollfd pfd = { .fd = s, .events = POLLOUT };
	socklen_t len = sizeof(int);
	int err;

	if (!REAL(connect)(s, (const void *)addr, sizeof(*addr)))
		return 0;
	if (errno != EINTR && errno != EINPROGRESS)
		return errno;
	/* Interrupted: the connection goes on; wait for its outcome. */
	do {
		err = poll(&pfd, 1, -1);
	} while (err < 0 && errno == EINTR);
	if (err < 0)
		return errno;
	if (REAL(getsockopt)(s, SOL_SOCKET, SO_ERROR, &err, &len))
		return errno;
	return err;
}

/* Plain TCP from now on: the socket is no longer ours to move. */
static int tcp_connect(int fd, const struct sockaddr *sa, socklen_t len)
{
	pthread_mutex_lock(&lock);
	forget(fd);
	pthread_mutex_unlock(&lock);
	return REAL(connect)(fd, sa, len);
}

int connect(int fd, const struct sockaddr *sa, socklen_t len)
{
	struct sockaddr_ivshmem addr = { 0 };
	struct sockaddr_storage remote, local;
	int fam = ivs_family(), s, fl, fdfl, i, err;
	struct persona *p, copy;
	char buf[INET6_ADDRSTRLEN];
	uint64_t timeout_ms;
	const char *e;
	uint32_t peer;
	uint16_t region;
	dev_t dev;
	ino_t ino;

	if (!sa || len < sizeof(sa_family_t) || fam < 0 ||
	    (sa->sa_family != AF_INET && sa->sa_family != AF_INET6) ||
	    len > sizeof(remote))
		return REAL(connect)(fd, sa, len);
	p = get(fd);
	if (!p)
		return REAL(connect)(fd, sa, len);
	if (p->kind != K_TCP) {
		put();
		return REAL(connect)(fd, sa, len);
	}
	copy = *p;
	put();
	if (resolve(sa, len, &peer, &region)) {
		logf_("connect to %s: not on the fabric, TCP", fmt_addr(sa, buf, sizeof(buf)));
		return tcp_connect(fd, sa, len);
	}
	memset(&remote, 0, sizeof(remote));
	memcpy(&remote, sa, len);

	s = REAL(socket)(fam, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (s < 0)
		return tcp_connect(fd, sa, len);
	e = getenv("IVSHMEM_RUN_CONNECT_TIMEOUT_MS");
	timeout_ms = e && atoll(e) > 0 ? (uint64_t)atoll(e) : 2000;
	REAL(setsockopt)(s, fam, IVSHMEM_CONNECT_TIMEOUT_MS, &timeout_ms,
			 sizeof(timeout_ms));
	for (i = 0; i < copy.nopts; i++)	/* buffer sizes and the like */
		if (copy.opts[i].level == SOL_SOCKET)
			REAL(setsockopt)(s, SOL_SOCKET, copy.opts[i].name,
					 copy.opts[i].val, copy.opts[i].len);
	addr.sivshm_family = fam;
	addr.sivshm_port = get_port(&remote);
	addr.sivshm_peer = peer;
	addr.sivshm_region = region;
	err = ivs_connect(s, &addr);
	if (err) {
		REAL(close)(s);
		logf_("connect to %s port %u: peer %u region %u: %s; TCP",
		      fmt_addr(sa, buf, sizeof(buf)), get_port(&remote), peer,
		      region, strerror(err));
		return tcp_connect(fd, sa, len);
	}

	/* Our side: the address TCP would have used, the AF_IVSHMEM port. */
	source_for(&remote, &local);
	{
		struct sockaddr_ivshmem me;
		socklen_t mlen = sizeof(me);

		if (!REAL(getsockname)(s, (void *)&me, &mlen))
			set_port(&local, me.sivshm_port & 0xffff);
	}
	fl = fcntl(fd, F_GETFL);
	fdfl = fcntl(fd, F_GETFD);
	if (fl >= 0 && (fl & O_NONBLOCK))
		fcntl(s, F_SETFL, fcntl(s, F_GETFL) | O_NONBLOCK);
	pthread_mutex_lock(&lock);
	if (REAL(dup3)(s, fd, fdfl >= 0 && (fdfl & FD_CLOEXEC) ? O_CLOEXEC : 0) < 0) {
		err = errno;
		pthread_mutex_unlock(&lock);
		REAL(close)(s);
		errno = err;
		return -1;
	}
	REAL(close)(s);
	p = table[fd];
	if (p && identity(fd, &dev, &ino)) {
		p->kind = K_CONN;
		p->dev = dev;
		p->ino = ino;
		p->remote = remote;
		p->local = local;
	}
	pthread_mutex_unlock(&lock);
	logf_("connect to %s port %u: AF_IVSHMEM peer %u region %u",
	      fmt_addr(sa, buf, sizeof(buf)), get_port(&remote), peer, region);
	return 0;
}

int listen(int fd, int backlog)
{
	struct sockaddr_ivshmem addr = { 0 };
	struct epoll_event ev = { .events = EPOLLIN };
	int fam = ivs_family(), s = -1, ep = -1, hidden = -1, fl, fdfl, err;
	struct sockaddr_storage me;
	socklen_t len = sizeof(me);
	struct persona *p;
	dev_t dev;
	ino_t ino;

	p = get(fd);
	if (!p)
		return REAL(listen)(fd, backlog);
	if (p->kind == K_LISTEN) {	/* again, for another backlog */
		s = p->ivs_fd;
		hidden = p->tcp_fd;
		put();
		REAL(listen)(s, backlog);
		return REAL(listen)(hidden, backlog);
	}
	if (p->kind != K_TCP) {
		put();
		return REAL(listen)(fd, backlog);
	}
	put();
	if (REAL(listen)(fd, backlog))
		return -1;
	if (fam < 0 || REAL(getsockname)(fd, (void *)&me, &len))
		return 0;
	if ((me.ss_family == AF_INET &&
	     ntohl(((struct sockaddr_in *)&me)->sin_addr.s_addr) >> 24 == 127) ||
	    (me.ss_family == AF_INET6 &&
	     IN6_IS_ADDR_LOOPBACK(&((struct sockaddr_in6 *)&me)->sin6_addr)))
		return 0;	/* loopback only: nothing for other guests */

	s = REAL(socket)(fam, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (s < 0)
		goto fail;
	addr.sivshm_family = fam;
	addr.sivshm_port = get_port(&me);
	addr.sivshm_peer = IVSHMEM_PEER_ANY;
	addr.sivshm_region = IVSHMEM_REGION_ANY;
	if (REAL(bind)(s, (void *)&addr, sizeof(addr)) ||
	    REAL(listen)(s, backlog))
		goto fail;
	fl = fcntl(fd, F_GETFL);
	fdfl = fcntl(fd, F_GETFD);
	hidden = fcntl(fd, F_DUPFD_CLOEXEC, HIDDEN_FD_MIN);
	if (hidden < 0)
		hidden = fcntl(fd, F_DUPFD_CLOEXEC, 3);
	if (hidden < 0 || hidden >= MAX_FDS || fl < 0 || fdfl < 0)
		goto fail;
	ep = epoll_create1(EPOLL_CLOEXEC);
	if (ep < 0)
		goto fail;
	ev.data.fd = hidden;
	if (epoll_ctl(ep, EPOLL_CTL_ADD, hidden, &ev))
		goto fail;
	ev.data.fd = s;
	if (epoll_ctl(ep, EPOLL_CTL_ADD, s, &ev))
		goto fail;
	if (fl & O_NONBLOCK)
		fcntl(ep, F_SETFL, O_NONBLOCK);
	/* The hidden listeners never block: accept() polls them. */
	fcntl(hidden, F_SETFL, fl | O_NONBLOCK);
	pthread_mutex_lock(&lock);
	p = table[fd];
	if (!p || !identity(hidden, &dev, &ino) ||
	    REAL(dup3)(ep, fd, fdfl & FD_CLOEXEC ? O_CLOEXEC : 0) < 0) {
		pthread_mutex_unlock(&lock);
		fcntl(hidden, F_SETFL, fl);
		goto fail;
	}
	p->kind = K_LISTEN;
	p->dev = dev;
	p->ino = ino;
	p->tcp_fd = hidden;
	p->ivs_fd = s;
	p->local = me;
	pthread_mutex_unlock(&lock);
	REAL(close)(ep);
	logf_("listen on port %u: TCP and AF_IVSHMEM", get_port(&me));
	return 0;
fail:
	err = errno;
	logf_("listen on port %u: TCP only (AF_IVSHMEM: %s)", get_port(&me),
	      strerror(err));
	if (s >= 0)
		REAL(close)(s);
	if (ep >= 0)
		REAL(close)(ep);
	if (hidden >= 0)
		REAL(close)(hidden);
	return 0;
}

/* Returns @ss in the caller's buffer, as the kernel does (truncating). */
static void give_addr(const struct sockaddr_storage *ss, struct sockaddr *sa,
		      socklen_t *len)
{
	socklen_t want = sa_len(ss->ss_family);

	if (!sa || !len)
		return;
	memcpy(sa, ss, *len < want ? *len : want);
	*len = want;
}

static int do_accept(int fd, struct sockaddr *sa, socklen_t *len, int flags)
{
	struct pollfd pfd[2] = { { .events = POLLIN }, { .events = POLLIN } };
	struct sockaddr_storage local, remote;
	struct ivshmem_peer_info info;
	socklen_t ilen = sizeof(info);
	struct in_addr peer_addr = { 0 };
	int tcp_fd, ivs_fd, family, c, fam = ivs_family(), fl;
	struct persona *p, *np;
	char buf[INET6_ADDRSTRLEN];

	p = get(fd);
	if (!p || p->kind != K_LISTEN) {
		if (p)
			put();
		return flags ? REAL(accept4)(fd, sa, len, flags) :
			       REAL(accept)(fd, sa, len);
	}
	tcp_fd = p->tcp_fd;
	ivs_fd = p->ivs_fd;
	family = p->family;
	local = p->local;
	put();
	fl = fcntl(fd, F_GETFL);
	for (;;) {
		c = REAL(accept4)(ivs_fd, NULL, NULL, flags);
		if (c >= 0)
			break;
		if (errno != EAGAIN && errno != EWOULDBLOCK &&
		    errno != ECONNABORTED)
			logf_("accept on AF_IVSHMEM: %s", strerror(errno));
		c = REAL(accept4)(tcp_fd, sa, len, flags);
		if (c >= 0 || (errno != EAGAIN && errno != EWOULDBLOCK))
			return c;
		if (fl >= 0 && (fl & O_NONBLOCK)) {
			errno = EAGAIN;
			return -1;
		}
		pfd[0].fd = ivs_fd;
		pfd[1].fd = tcp_fd;
		if (poll(pfd, 2, -1) < 0)
			return -1;
	}

	/* The TCP persona of an AF_IVSHMEM connection. */
	memset(&info, 0, sizeof(info));
	if (!REAL(getsockopt)(c, fam, IVSHMEM_PEER_INFO, &info, &ilen))
		peer_ipv4(info.peer, info.region, &peer_addr);
	make_sa(&remote, family, peer_addr, info.port & 0xffff);
	if (sa_is_any(&local)) {
		uint16_t port = get_port(&local);

		source_for(&remote, &local);
		set_port(&local, port);
	}
	np = calloc(1, sizeof(*np));
	pthread_mutex_lock(&lock);
	if (c < MAX_FDS) {
		forget(c);
		if (np && identity(c, &np->dev, &np->ino)) {
			np->kind = K_CONN;
			np->family = family;
			np->local = local;
			np->remote = remote;
			table[c] = np;
			np = NULL;
		}
	}
	pthread_mutex_unlock(&lock);
	free(np);
	give_addr(&remote, sa, len);
	logf_("accepted from %s port %u over AF_IVSHMEM (peer %u)",
	      fmt_addr((void *)&remote, buf, sizeof(buf)), get_port(&remote),
	      info.peer);
	return c;
}

int accept(int fd, struct sockaddr *sa, socklen_t *len)
{
	return do_accept(fd, sa, len, 0);
}

int accept4(int fd, struct sockaddr *sa, socklen_t *len, int flags)
{
	return do_accept(fd, sa, len, flags);
}

static int name_of(int fd, struct sockaddr *sa, socklen_t *len, bool peer)
{
	struct persona *p = get(fd);
	struct sockaddr_storage ss;
	int tcp_fd;

	if (!p || p->kind == K_TCP) {
		if (p)
			put();
		return peer ? REAL(getpeername)(fd, sa, len) :
			      REAL(getsockname)(fd, sa, len);
	}
	if (p->kind == K_LISTEN) {
		tcp_fd = p->tcp_fd;
		put();
		return peer ? REAL(getpeername)(tcp_fd, sa, len) :
			      REAL(getsockname)(tcp_fd, sa, len);
	}
	ss = peer ? p->remote : p->local;
	put();
	if (!sa || !len) {
		errno = EFAULT;
		return -1;
	}
	give_addr(&ss, sa, len);
	return 0;
}

int getsockname(int fd, struct sockaddr *sa, socklen_t *len)
{
	return name_of(fd, sa, len, false);
}

int getpeername(int fd, struct sockaddr *sa, socklen_t *len)
{
	return name_of(fd, sa, len, true);
}

/* Default answers for options AF_IVSHMEM does not have. */
static int opt_default(int level, int name)
{
	if (level == IPPROTO_TCP) {
		switch (name) {
		case TCP_MAXSEG:
			return IVS_MSS;
		case TCP_KEEPIDLE:
			return 7200;
		case TCP_KEEPINTVL:
			return 75;
		case TCP_KEEPCNT:
			return 9;
		case TCP_SYNCNT:
			return 6;
		case TCP_LINGER2:
			return 60;
		}
	} else if (level == IPPROTO_IP && name == IP_TTL) {
		return 64;
	} else if (level == IPPROTO_IPV6 && name == IPV6_UNICAST_HOPS) {
		return 64;
	}
	return 0;
}

static void fill_tcp_info(char *buf)
{
	struct tcp_info ti = { 0 };

	ti.tcpi_state = TCP_ESTABLISHED;
	ti.tcpi_rto = 200000;
	ti.tcpi_ato = 40000;
	ti.tcpi_snd_mss = IVS_MSS;
	ti.tcpi_rcv_mss = IVS_MSS;
	ti.tcpi_pmtu = 65535;
	ti.tcpi_rcv_ssthresh = 65535;
	ti.tcpi_rtt = 10;
	ti.tcpi_rttvar = 5;
	ti.tcpi_snd_ssthresh = 0x7fffffff;
	ti.tcpi_snd_cwnd = 10;
	ti.tcpi_advmss = IVS_MSS;
	ti.tcpi_reordering = 3;
	ti.tcpi_rcv_space = 65535;
	memset(buf, 0, TCP_INFO_LEN);
	memcpy(buf, &ti, sizeof(ti));
}

int getsockopt(int fd, int level, int name, void *val, socklen_t *len)
{
	struct persona *p = get(fd);
	char buf[TCP_INFO_LEN];
	socklen_t have = sizeof(int);
	int v, tcp_fd, family;
	struct opt *o;

	if (!p || p->kind == K_TCP) {
		if (p)
			put();
		return REAL(getsockopt)(fd, level, name, val, len);
	}
	if (p->kind == K_LISTEN) {
		tcp_fd = p->tcp_fd;
		put();
		return REAL(getsockopt)(tcp_fd, level, name, val, len);
	}
	family = p->family;
	if (!val || !len) {
		put();
		errno = EFAULT;
		return -1;
	}
	if (level == SOL_SOCKET && (name == SO_DOMAIN || name == SO_PROTOCOL)) {
		v = name == SO_DOMAIN ? family : IPPROTO_TCP;
		memcpy(buf, &v, sizeof(v));
	} else if (level == IPPROTO_TCP && name == TCP_INFO) {
		fill_tcp_info(buf);
		have = TCP_INFO_LEN;
	} else if (level == IPPROTO_TCP || level == IPPROTO_IP ||
		   level == IPPROTO_IPV6 ||
		   (level == SOL_SOCKET &&
		    REAL(getsockopt)(fd, level, name, val, len))) {
		o = opt_find(p, level, name);
		if (o) {
			memcpy(buf, o->val, OPT_LEN);
			have = o->len;
		} else if (level == IPPROTO_TCP && name == TCP_CONGESTION) {
			memset(buf, 0, sizeof(buf));
			strcpy(buf, "cubic");
			have = 16;
		} else {
			v = opt_default(level, name);
			memcpy(buf, &v, sizeof(v));
		}
	} else {
		put();
		return 0;	/* SOL_SOCKET that AF_IVSHMEM answered */
	}
	put();
	if (*len < have)
		have = *len;
	memcpy(val, buf, have);
	*len = have;
	return 0;
}

int setsockopt(int fd, int level, int name, const void *val, socklen_t len)
{
	struct persona *p = get(fd);
	int tcp_fd, err;

	if (!p)
		return REAL(setsockopt)(fd, level, name, val, len);
	if (p->kind == K_LISTEN) {
		tcp_fd = p->tcp_fd;
		put();
		return REAL(setsockopt)(tcp_fd, level, name, val, len);
	}
	if (p->kind == K_TCP) {
		/* Remembered for the AF_IVSHMEM socket that may replace it. */
		put();
		err = REAL(setsockopt)(fd, level, name, val, len);
		if (!err) {
			p = get(fd);
			if (p) {
				opt_store(p, level, name, val, len);
				put();
			}
		}
		return err;
	}
	if (level == SOL_SOCKET && !REAL(setsockopt)(fd, level, name, val, len)) {
		opt_store(p, level, name, val, len);
		put();
		return 0;
	}
	if (level == SOL_SOCKET || level == IPPROTO_TCP ||
	    level == IPPROTO_IP || level == IPPROTO_IPV6) {
		opt_store(p, level, name, val, len);
		put();
		return 0;
	}
	put();
	return REAL(setsockopt)(fd, level, name, val, len);
}

int shutdown(int fd, int how)
{
	struct persona *p = get(fd);
	int tcp_fd, ivs_fd;

	if (!p || p->kind != K_LISTEN) {
		if (p)
			put();
		return REAL(shutdown)(fd, how);
	}
	tcp_fd = p->tcp_fd;
	ivs_fd = p->ivs_fd;
	put();
	REAL(shutdown)(ivs_fd, how);
	return REAL(shutdown)(tcp_fd, how);
}

int close(int fd)
{
	if (fd >= 0 && fd < MAX_FDS &&
	    __atomic_load_n(&table[fd], __ATOMIC_RELAXED)) {
		pthread_mutex_lock(&lock);
		forget(fd);
		pthread_mutex_unlock(&lock);
	}
	return REAL(close)(fd);
}

int dup2(int oldfd, int newfd)
{
	if (oldfd != newfd && newfd >= 0 && newfd < MAX_FDS &&
	    __atomic_load_n(&table[newfd], __ATOMIC_RELAXED)) {
		pthread_mutex_lock(&lock);
		forget(newfd);
		pthread_mutex_unlock(&lock);
	}
	return REAL(dup2)(oldfd, newfd);
}

int dup3(int oldfd, int newfd, int flags)
{
	if (oldfd != newfd && newfd >= 0 && newfd < MAX_FDS &&
	    __atomic_load_n(&table[newfd], __ATOMIC_RELAXED)) {
		pthread_mutex_lock(&lock);
		forget(newfd);
		pthread_mutex_unlock(&lock);
	}
	return REAL(dup3)(oldfd, newfd, flags);
}

__attribute__((constructor)) static void preload_init(void)
{
	REAL(socket);
	REAL(connect);
	REAL(bind);
	REAL(listen);
	REAL(accept);
	REAL(accept4);
	REAL(getsockname);
	REAL(getpeername);
	REAL(getsockopt);
	REAL(setsockopt);
	REAL(shutdown);
	REAL(close);
	REAL(dup2);
	REAL(dup3);
}
