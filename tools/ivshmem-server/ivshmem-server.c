// SPDX-License-Identifier: GPL-2.0
/*
 * ivshmem-server - host side server for QEMU's ivshmem-doorbell device.
 *
 * Implements the ivshmem server protocol described in QEMU's
 * docs/specs/ivshmem-spec.rst: every message is a little-endian signed
 * 64-bit integer, optionally carrying one file descriptor (SCM_RIGHTS).
 *
 * A new client receives: the protocol version (0), its own peer ID, the
 * shared memory fd (value -1), the eventfds of every other peer (value =
 * that peer's ID, one message per vector) and finally its own eventfds.
 * Every other peer is then told about the newcomer's eventfds.  When a
 * peer goes away, the remaining peers receive its ID without an fd.
 */
#define _GNU_SOURCE

#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#define PROG			"ivshmem-server"
#define PROTOCOL_VERSION	0
#define MAX_VECTORS		64
#define MAX_PEERS		65536	/* peer IDs are 16 bit */
#define DEFAULT_SHM_SIZE	(4ULL << 20)
#define DEFAULT_PEERS		64
/* a client whose pending output does not drain within this time is dropped */
#define SEND_TIMEOUT_MS		10000
/* upper bound of queued messages per client */
#define MAX_QUEUED		(1 << 16)

struct qmsg {
	int64_t val;
	int fd;			/* owned (dup'ed) fd or -1 */
};

struct peer {
	bool used;
	bool failed;		/* to be dropped at the next reap */
	bool announced;		/* other peers know about it */
	int sock;
	int efd[MAX_VECTORS];
	char reason[128];
	/* messages that could not be sent yet (socket buffer full) */
	struct qmsg *q;
	size_t qhead, qlen, qcap;
	int64_t deadline;	/* ms, valid while the queue is not empty */
};

static struct {
	const char *sock_path;
	const char *shm_name;
	const char *shm_path;
	const char *pid_file;
	uint64_t shm_size;
	unsigned int vectors;
	unsigned int max_peers;
	bool foreground;
	bool verbose;
} opt = {
	.shm_size = DEFAULT_SHM_SIZE,
	.vectors = 1,
	.max_peers = DEFAULT_PEERS,
};

static struct peer *peers;
static unsigned int next_id;	/* where the search for a free id starts */
static int shm_fd = -1;
static int listen_fd = -1;
static int sig_pipe[2] = { -1, -1 };
static bool sock_created;

static void logmsg(const char *fmt, ...)
	__attribute__((format(printf, 1, 2)));

static void logmsg(const char *fmt, ...)
{
	char buf[512];
	va_list ap;
	int n;

	n = snprintf(buf, sizeof(buf), PROG ": ");
	va_start(ap, fmt);
	vsnprintf(buf + n, sizeof(buf) - n - 1, fmt, ap);
	va_end(ap);
	strcat(buf, "\n");
	/* one write() per line so lines from several processes don't mix */
	if (write(STDERR_FILENO, buf, strlen(buf)) < 0) {
		/* nothing sensible to do */
	}
}

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: " PROG " -S SOCKET (-M SHM_NAME | -m SHM_PATH) [options]\n"
		"  -S SOCKET UNIX socket path to listen on\n"
		"  -M NAME   create the POSIX shared memory object NAME\n"
		"  -m PATH   use the (created, truncated) regular file PATH\n"
		"  -l SIZE   memory size, power of two, K/M/G suffix (default 4M)\n"
		"  -n N      interrupt vectors per peer, 1..%d (default 1)\n"
		"  -c N      maximum number of peers, 1..%d (default %d)\n"
		"  -F        stay in the foreground (default: daemonize)\n"
		"  -p FILE   write the pid to FILE once listening\n"
		"  -v        verbose: log every connect and disconnect\n"
		"  -h        show this help\n",
		MAX_VECTORS, MAX_PEERS, DEFAULT_PEERS);
}

static void __attribute__((noreturn)) bad_usage(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, PROG ": ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\n");
	usage(stderr);
	exit(2);
}

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static bool parse_size(const char *s, uint64_t *out)
{
	unsigned long long v;
	unsigned int shift = 0;
	char *end;

	if (*s < '0' || *s > '9')
		return false;
	errno = 0;
	v = strtoull(s, &end, 0);
	if (errno || end == s)
		return false;
	switch (*end) {
	case '\0':
		break;
	case 'k': case 'K':
		shift = 10;
		break;
	case 'm': case 'M':
		shift = 20;
		break;
	case 'g': case 'G':
		shift = 30;
		break;
	default:
		return false;
	}
	/* optional "B" or "iB" after the suffix, as in 4MB or 4MiB */
	if (*end && end[1] && strcmp(end + 1, "B") && strcmp(end + 1, "iB"))
		return false;
	if (shift && v > (ULLONG_MAX >> shift))
		return false;
	*out = (uint64_t)v << shift;
	return true;
}

static bool parse_uint(const char *s, unsigned int min, unsigned int max,
		       unsigned int *out)
{
	unsigned long v;
	char *end;

	if (*s < '0' || *s > '9')
		return false;
	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || *end || v < min || v > max)
		return false;
	*out = v;
	return true;
}

static void parse_args(int argc, char **argv)
{
	struct sockaddr_un sun_dummy;
	int c;

	opterr = 0;
	while ((c = getopt(argc, argv, ":S:M:m:l:n:c:Fp:vh")) != -1) {
		switch (c) {
		case 'S':
			opt.sock_path = optarg;
			break;
		case 'M':
			opt.shm_name = optarg;
			break;
		case 'm':
			opt.shm_path = optarg;
			break;
		case 'l':
			if (!parse_size(optarg, &opt.shm_size))
				bad_usage("invalid size '%s'", optarg);
			if (!opt.shm_size ||
			    (opt.shm_size & (opt.shm_size - 1)))
				bad_usage("size '%s' is not a power of two",
					  optarg);
			if (opt.shm_size > (uint64_t)INT64_MAX ||
			    (off_t)opt.shm_size < 0)
				bad_usage("size '%s' is too large", optarg);
			break;
		case 'n':
			if (!parse_uint(optarg, 1, MAX_VECTORS, &opt.vectors))
				bad_usage("invalid number of vectors '%s' (1..%d)",
					  optarg, MAX_VECTORS);
			break;
		case 'c':
			if (!parse_uint(optarg, 1, MAX_PEERS, &opt.max_peers))
				bad_usage("invalid number of peers '%s' (1..%d)",
					  optarg, MAX_PEERS);
			break;
		case 'F':
			opt.foreground = true;
			break;
		case 'p':
			opt.pid_file = optarg;
			break;
		case 'v':
			opt.verbose = true;
			break;
		case 'h':
			usage(stdout);
			exit(0);
		case ':':
			bad_usage("option -%c needs an argument", optopt);
		default:
			bad_usage("unknown option -%c", optopt);
		}
	}
	if (optind < argc)
		bad_usage("unexpected argument '%s'", argv[optind]);
	if (!opt.sock_path)
		bad_usage("missing -S SOCKET_PATH");
	if (!opt.shm_name == !opt.shm_path)
		bad_usage("exactly one of -M SHM_NAME or -m SHM_PATH is needed");
	if (strlen(opt.sock_path) >= sizeof(sun_dummy.sun_path))
		bad_usage("socket path '%s' is too long", opt.sock_path);
}

static int create_shm(void)
{
	struct stat st;
	int fd;

	if (opt.shm_name) {
		if (shm_unlink(opt.shm_name) < 0 && errno != ENOENT) {
			logmsg("cannot unlink stale shm '%s': %s",
			       opt.shm_name, strerror(errno));
			return -1;
		}
		fd = shm_open(opt.shm_name, O_RDWR | O_CREAT | O_EXCL, 0600);
		if (fd < 0) {
			logmsg("shm_open('%s'): %s", opt.shm_name,
			       strerror(errno));
			return -1;
		}
	} else {
		fd = open(opt.shm_path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
		if (fd < 0) {
			logmsg("open('%s'): %s", opt.shm_path,
			       strerror(errno));
			return -1;
		}
		if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
			logmsg("'%s' is not a regular file", opt.shm_path);
			goto err;
		}
		/* zero the contents of an existing file */
		if (ftruncate(fd, 0) < 0) {
			logmsg("ftruncate('%s', 0): %s", opt.shm_path,
			       strerror(errno));
			goto err;
		}
	}
	if (ftruncate(fd, (off_t)opt.shm_size) < 0) {
		logmsg("cannot resize shared memory to %llu bytes: %s",
		       (unsigned long long)opt.shm_size, strerror(errno));
		goto err;
	}
	return fd;
err:
	close(fd);
	if (opt.shm_name)
		shm_unlink(opt.shm_name);
	return -1;
}

static int create_socket(void)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	struct stat st;
	int fd;

	strcpy(sun.sun_path, opt.sock_path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		logmsg("socket: %s", strerror(errno));
		return -1;
	}
	/* remove a stale socket left by a previous run */
	if (lstat(opt.sock_path, &st) == 0 && S_ISSOCK(st.st_mode))
		unlink(opt.sock_path);
	if (bind(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0) {
		logmsg("bind('%s'): %s", opt.sock_path, strerror(errno));
		close(fd);
		return -1;
	}
	sock_created = true;
	if (listen(fd, 16) < 0) {
		logmsg("listen: %s", strerror(errno));
		close(fd);
		return -1;
	}
	return fd;
}

static int write_pid_file(pid_t pid)
{
	char tmp[PATH_MAX];
	char buf[32];
	int fd, n;

	if (snprintf(tmp, sizeof(tmp), "%s.tmp.%ld", opt.pid_file,
		     (long)getpid()) >= (int)sizeof(tmp)) {
		logmsg("pid file path too long");
		return -1;
	}
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0) {
		logmsg("open('%s'): %s", tmp, strerror(errno));
		return -1;
	}
	n = snprintf(buf, sizeof(buf), "%ld\n", (long)pid);
	if (write(fd, buf, n) != n || close(fd) < 0) {
		logmsg("cannot write '%s'", tmp);
		unlink(tmp);
		return -1;
	}
	/* rename so that readers never see a partial file */
	if (rename(tmp, opt.pid_file) < 0) {
		logmsg("rename('%s'): %s", opt.pid_file, strerror(errno));
		unlink(tmp);
		return -1;
	}
	return 0;
}

static void on_signal(int sig)
{
	int saved = errno;
	char c = (char)sig;

	if (write(sig_pipe[1], &c, 1) < 0) {
		/* pipe full: a wakeup is already pending */
	}
	errno = saved;
}

static int setup_signals(void)
{
	struct sigaction sa;

	if (pipe2(sig_pipe, O_NONBLOCK | O_CLOEXEC) < 0) {
		logmsg("pipe: %s", strerror(errno));
		return -1;
	}
	memset(&sa, 0, sizeof(sa));
	sigemptyset(&sa.sa_mask);
	sa.sa_handler = SIG_IGN;
	sigaction(SIGPIPE, &sa, NULL);
	sa.sa_handler = on_signal;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	return 0;
}

/* Raise the fd limit: every peer holds one eventfd per vector. */
static void raise_nofile(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
}

static void peer_fail(struct peer *p, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void peer_fail(struct peer *p, const char *fmt, ...)
{
	va_list ap;

	if (p->failed)
		return;
	p->failed = true;
	va_start(ap, fmt);
	vsnprintf(p->reason, sizeof(p->reason), fmt, ap);
	va_end(ap);
}

/* Returns 1 if sent, 0 if the socket is full, -1 on error (errno set). */
static int raw_send(int sock, int64_t val, int fd)
{
	union {
		struct cmsghdr hdr;
		char buf[CMSG_SPACE(sizeof(int))];
	} cbuf;
	int64_t le = (int64_t)htole64((uint64_t)val);
	struct iovec iov = { .iov_base = &le, .iov_len = sizeof(le) };
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1 };
	struct cmsghdr *cmsg;
	ssize_t n;

	if (fd >= 0) {
		memset(&cbuf, 0, sizeof(cbuf));
		msg.msg_control = cbuf.buf;
		msg.msg_controllen = sizeof(cbuf.buf);
		cmsg = CMSG_FIRSTHDR(&msg);
		cmsg->cmsg_level = SOL_SOCKET;
		cmsg->cmsg_type = SCM_RIGHTS;
		cmsg->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(cmsg), &fd, sizeof(int));
	}
	do {
		n = sendmsg(sock, &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
	} while (n < 0 && errno == EINTR);
	if (n == sizeof(le))
		return 1;
	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
		return 0;
	if (n >= 0)
		errno = EIO;	/* short write: the stream is now broken */
	return -1;
}

static void queue_push(struct peer *p, int64_t val, int fd)
{
	struct qmsg *nq;
	size_t ncap;
	int dfd = -1;

	if (p->qhead == p->qlen) {
		p->qhead = 0;
		p->qlen = 0;
		p->deadline = now_ms() + SEND_TIMEOUT_MS;
	}
	if (p->qlen - p->qhead >= MAX_QUEUED) {
		peer_fail(p, "too much pending output");
		return;
	}
	if (p->qlen == p->qcap) {
		if (p->qhead) {
			memmove(p->q, p->q + p->qhead,
				(p->qlen - p->qhead) * sizeof(*p->q));
			p->qlen -= p->qhead;
			p->qhead = 0;
		} else {
			ncap = p->qcap ? p->qcap * 2 : 64;
			nq = realloc(p->q, ncap * sizeof(*nq));
			if (!nq) {
				peer_fail(p, "out of memory");
				return;
			}
			p->q = nq;
			p->qcap = ncap;
		}
	}
	if (fd >= 0) {
		dfd = fcntl(fd, F_DUPFD_CLOEXEC, 0);
		if (dfd < 0) {
			peer_fail(p, "cannot queue fd: %s", strerror(errno));
			return;
		}
	}
	p->q[p->qlen].val = val;
	p->q[p->qlen].fd = dfd;
	p->qlen++;
}

/* A send failed: a closed connection is a normal leave once set up. */
static void send_failed(struct peer *p)
{
	if ((errno == EPIPE || errno == ECONNRESET) && p->announced)
		p->failed = true;
	else if (errno == EPIPE || errno == ECONNRESET)
		peer_fail(p, "disconnected during setup");
	else
		peer_fail(p, "send failed: %s", strerror(errno));
}

static void peer_send(struct peer *p, int64_t val, int fd)
{
	int r;

	if (p->failed)
		return;
	if (p->qhead != p->qlen) {
		queue_push(p, val, fd);
		return;
	}
	r = raw_send(p->sock, val, fd);
	if (r == 0)
		queue_push(p, val, fd);
	else if (r < 0)
		send_failed(p);
}

static void peer_flush(struct peer *p)
{
	struct qmsg *m;
	int r;

	while (!p->failed && p->qhead != p->qlen) {
		m = &p->q[p->qhead];
		r = raw_send(p->sock, m->val, m->fd);
		if (r == 0)
			return;
		if (r < 0) {
			send_failed(p);
			return;
		}
		if (m->fd >= 0)
			close(m->fd);
		p->qhead++;
		p->deadline = now_ms() + SEND_TIMEOUT_MS;
	}
}

static void peer_free(struct peer *p)
{
	unsigned int i;

	close(p->sock);
	for (i = 0; i < opt.vectors; i++)
		close(p->efd[i]);
	for (; p->qhead < p->qlen; p->qhead++)
		if (p->q[p->qhead].fd >= 0)
			close(p->q[p->qhead].fd);
	free(p->q);
	memset(p, 0, sizeof(*p));
}

/* Remove failed peers, telling the others; repeat since that may fail. */
static void reap_peers(void)
{
	unsigned int id, j;
	bool again = true;
	struct peer *p;

	while (again) {
		again = false;
		for (id = 0; id < opt.max_peers; id++) {
			p = &peers[id];
			if (!p->used || !p->failed)
				continue;
			if (p->reason[0])
				logmsg("dropping peer %u: %s", id, p->reason);
			else if (opt.verbose)
				logmsg("peer %u left", id);
			if (p->announced) {
				for (j = 0; j < opt.max_peers; j++)
					if (j != id && peers[j].used)
						peer_send(&peers[j], id, -1);
			}
			peer_free(p);
			again = true;
		}
	}
}

static void accept_peer(void)
{
	unsigned int id, j, v;
	struct peer *p;
	int sock;

	sock = accept4(listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
	if (sock < 0) {
		if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR &&
		    errno != ECONNABORTED)
			logmsg("accept: %s", strerror(errno));
		return;
	}
	/*
	 * Ids are handed out round robin, never the one that just left:
	 * QEMU's ivshmem device keeps stale state for a departed peer id, and
	 * reusing it at once crashes the other guests' QEMUs.
	 */
	for (j = 0; j < opt.max_peers; j++) {
		id = (next_id + j) % opt.max_peers;
		if (!peers[id].used)
			break;
	}
	if (j == opt.max_peers) {
		logmsg("rejecting client: maximum of %u peers reached",
		       opt.max_peers);
		close(sock);
		return;
	}
	next_id = (id + 1) % opt.max_peers;
	p = &peers[id];
	memset(p, 0, sizeof(*p));
	for (v = 0; v < opt.vectors; v++) {
		p->efd[v] = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
		if (p->efd[v] < 0) {
			logmsg("rejecting client: eventfd: %s",
			       strerror(errno));
			while (v--)
				close(p->efd[v]);
			close(sock);
			return;
		}
	}
	p->sock = sock;
	p->used = true;

	peer_send(p, PROTOCOL_VERSION, -1);
	peer_send(p, id, -1);
	peer_send(p, -1, shm_fd);
	for (j = 0; j < opt.max_peers; j++) {
		if (j == id || !peers[j].used || peers[j].failed)
			continue;
		for (v = 0; v < opt.vectors; v++)
			peer_send(p, j, peers[j].efd[v]);
	}
	for (v = 0; v < opt.vectors; v++)
		peer_send(p, id, p->efd[v]);
	if (p->failed)
		return;		/* never announced; reaped silently */

	if (opt.verbose)
		logmsg("peer %u connected", id);
	for (j = 0; j < opt.max_peers; j++) {
		if (j == id || !peers[j].used)
			continue;
		for (v = 0; v < opt.vectors; v++)
			peer_send(&peers[j], id, p->efd[v]);
	}
	p->announced = true;
}

static void handle_input(struct peer *p)
{
	char buf[256];
	ssize_t n;

	n = recv(p->sock, buf, sizeof(buf), MSG_DONTWAIT);
	if (n > 0) {
		peer_fail(p, "unexpected data from client (%zd bytes)", n);
	} else if (n == 0) {
		p->failed = true;	/* orderly disconnect, no reason */
	} else if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
		if (errno == ECONNRESET)
			p->failed = true;
		else
			peer_fail(p, "recv failed: %s", strerror(errno));
	}
}

static int run(void)
{
	struct pollfd *pfd;
	unsigned int *pid_of;
	unsigned int i, n, id;
	int64_t now, next;
	int timeout, r;
	char c;

	pfd = calloc(opt.max_peers + 2, sizeof(*pfd));
	pid_of = calloc(opt.max_peers + 2, sizeof(*pid_of));
	if (!pfd || !pid_of) {
		logmsg("out of memory");
		return 1;
	}
	for (;;) {
		reap_peers();

		n = 0;
		pfd[n].fd = sig_pipe[0];
		pfd[n++].events = POLLIN;
		pfd[n].fd = listen_fd;
		pfd[n++].events = POLLIN;
		next = -1;
		for (id = 0; id < opt.max_peers; id++) {
			if (!peers[id].used)
				continue;
			pfd[n].fd = peers[id].sock;
			pfd[n].events = POLLIN;
			pfd[n].revents = 0;
			if (peers[id].qhead != peers[id].qlen) {
				pfd[n].events |= POLLOUT;
				if (next < 0 || peers[id].deadline < next)
					next = peers[id].deadline;
			}
			pid_of[n++] = id;
		}
		timeout = -1;
		if (next >= 0) {
			now = now_ms();
			timeout = next <= now ? 0 : (int)(next - now);
		}
		r = poll(pfd, n, timeout);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			logmsg("poll: %s", strerror(errno));
			free(pfd);
			free(pid_of);
			return 1;
		}
		if (pfd[0].revents) {
			while (read(sig_pipe[0], &c, 1) == 1)
				;
			if (opt.verbose)
				logmsg("terminating on signal");
			break;
		}
		for (i = 2; i < n; i++) {
			struct peer *p = &peers[pid_of[i]];

			if (pfd[i].revents & POLLOUT)
				peer_flush(p);
			if (pfd[i].revents & (POLLIN | POLLHUP | POLLERR))
				handle_input(p);
		}
		now = now_ms();
		for (id = 0; id < opt.max_peers; id++) {
			struct peer *p = &peers[id];

			if (p->used && p->qhead != p->qlen &&
			    p->deadline <= now)
				peer_fail(p, "client does not read (timeout)");
		}
		if (pfd[1].revents & POLLIN) {
			/* drop failed peers first so their IDs are reusable */
			reap_peers();
			accept_peer();
		}
	}
	free(pfd);
	free(pid_of);
	return 0;
}

static void cleanup(void)
{
	unsigned int id;

	if (peers) {
		for (id = 0; id < opt.max_peers; id++)
			if (peers[id].used)
				peer_free(&peers[id]);
		free(peers);
	}
	if (listen_fd >= 0)
		close(listen_fd);
	if (sock_created)
		unlink(opt.sock_path);
	if (shm_fd >= 0) {
		close(shm_fd);
		if (opt.shm_name)
			shm_unlink(opt.shm_name);
	}
	if (opt.pid_file)
		unlink(opt.pid_file);
}

static int daemonize(void)
{
	pid_t pid;
	int fd;

	pid = fork();
	if (pid < 0) {
		logmsg("fork: %s", strerror(errno));
		return -1;
	}
	if (pid > 0) {
		/* the pid file exists when the parent returns */
		if (opt.pid_file && write_pid_file(pid) < 0) {
			kill(pid, SIGTERM);
			_exit(1);
		}
		_exit(0);
	}
	setsid();
	fd = open("/dev/null", O_RDWR);
	if (fd >= 0) {
		dup2(fd, STDIN_FILENO);
		dup2(fd, STDOUT_FILENO);
		if (fd > STDERR_FILENO)
			close(fd);
	}
	return 0;
}

int main(int argc, char **argv)
{
	int ret = 1;

	parse_args(argc, argv);
	raise_nofile();
	if (setup_signals() < 0)
		return 1;
	peers = calloc(opt.max_peers, sizeof(*peers));
	if (!peers) {
		logmsg("out of memory");
		return 1;
	}
	shm_fd = create_shm();
	if (shm_fd < 0)
		goto out;
	listen_fd = create_socket();
	if (listen_fd < 0)
		goto out;
	if (!opt.foreground) {
		if (daemonize() < 0)
			goto out;
	} else if (opt.pid_file && write_pid_file(getpid()) < 0) {
		opt.pid_file = NULL;
		goto out;
	}
	if (opt.verbose)
		logmsg("listening on %s, %llu bytes of shared memory, %u vector(s), max %u peers",
		       opt.sock_path, (unsigned long long)opt.shm_size,
		       opt.vectors, opt.max_peers);
	ret = run();
out:
	cleanup();
	return ret;
}
