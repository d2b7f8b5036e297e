// SPDX-License-Identifier: GPL-2.0
/*
 * ivshmem_soak: the guest side of the soak test (selftests/soak.sh).
 *
 *   ivshmem_soak server [-P PORT]
 *	echo service: SOCK_STREAM on PORT, SOCK_SEQPACKET on PORT+1,
 *	SOCK_DGRAM on PORT+2 (default 6000), a thread per connection; every
 *	message's checksum is verified before it is echoed.
 *   ivshmem_soak client [-P PORT] -p PEER[,PEER...] [-t SECONDS] [-s SEED]
 *	opens connections of every type to random peers, sends checksummed
 *	messages of random sizes and verifies every echo byte for byte,
 *	closes, and starts over until the time is up or SIGTERM.
 *   ivshmem_soak giveup -p PEER [-P PORT] [-t COUNT]
 *	COUNT stream connects to PEER with a connect timeout of 1 to 20 ms,
 *	each closed at once: many give up while the peer is answering.
 *   ivshmem_soak id
 *	prints this guest's peer id on the first region.
 *   ivshmem_soak fill -p PEER [-P PORT] [-t HOLD_S]
 *	opens stream connections to PEER until one fails (the region is
 *	full) or 2000 are open, holds them HOLD_S seconds, closes them.
 *
 * A message is a header (magic, length, sequence number, FNV-1a checksum
 * of the payload) and its payload.  The client and the server print one
 * summary line on exit:
 *   soak-client conns=N complete=N bytes=N corrupt=N errors=... causes
 * An error is counted by its errno name; "eof" is a connection the peer
 * closed early (only after the harness killed it).  A checksum mismatch,
 * a short message, or an echo that differs is "corrupt": it never
 * happens in a correct run.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "../tools/lib/ivshmem.h"

#define MAGIC		0x534f414bu	/* "SOAK" */
#define MSG_MAX		(48 * 1024)
#define DGRAM_MAX	8192

struct hdr {
	uint32_t magic;
	uint32_t len;
	uint32_t seq;
	uint32_t sum;
};

static unsigned int port = 6000;
static atomic_ulong corrupt, conns, complete, bytes, errs[160], eofs;
static volatile sig_atomic_t stop;

static uint32_t fnv1a(const unsigned char *p, size_t n)
{
	uint32_t h = 2166136261u;

	while (n--) {
		h ^= *p++;
		h *= 16777619u;
	}
	return h;
}

static void count_err(int e)
{
	if (e > 0 && e < 160)
		atomic_fetch_add(&errs[e], 1);
}

static void report(const char *who)
{
	int e;

	printf("%s conns=%lu complete=%lu bytes=%lu corrupt=%lu eof=%lu errors:",
	       who, atomic_load(&conns), atomic_load(&complete),
	       atomic_load(&bytes), atomic_load(&corrupt), atomic_load(&eofs));
	for (e = 1; e < 160; e++)
		if (atomic_load(&errs[e]))
			printf(" %s=%lu", strerrorname_np(e), atomic_load(&errs[e]));
	printf("\n");
	fflush(stdout);
}

static void on_term(int sig)
{
	(void)sig;
	stop = 1;
}

/* Reads exactly @n bytes of a stream: 1, 0 at EOF, -1 on error. */
static int read_full(int fd, void *p, size_t n)
{
	size_t got = 0;
	ssize_t r;

	while (got < n) {
		r = recv(fd, (char *)p + got, n - got, 0);
		if (r == 0)
			return 0;
		if (r < 0) {
			if (errno == EINTR && !stop)
				continue;
			return -1;
		}
		got += (size_t)r;
	}
	return 1;
}

static int send_full(int fd, const void *p, size_t n)
{
	size_t done = 0;
	ssize_t r;

	while (done < n) {
		r = send(fd, (const char *)p + done, n - done, MSG_NOSIGNAL);
		if (r < 0) {
			if (errno == EINTR && !stop)
				continue;
			return -1;
		}
		done += (size_t)r;
	}
	return 0;
}

static void set_timeout(int fd, int sec)
{
	struct timeval tv = { .tv_sec = sec };

	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
}

/* Checks a message (header and payload); returns its total length or 0. */
static size_t msg_ok(const unsigned char *m, size_t n)
{
	struct hdr h;

	if (n < sizeof(h))
		return 0;
	memcpy(&h, m, sizeof(h));
	if (h.magic != MAGIC || h.len > MSG_MAX || sizeof(h) + h.len != n)
		return 0;
	return fnv1a(m + sizeof(h), h.len) == h.sum ? n : 0;
}

struct conn {
	int fd;
	int type;
};

static void *serve_conn(void *arg)
{
	struct conn *c = arg;
	unsigned char *m = malloc(sizeof(struct hdr) + MSG_MAX);
	struct hdr h;
	ssize_t r;
	int rc;

	atomic_fetch_add(&conns, 1);
	set_timeout(c->fd, 60);
	while (m && !stop) {
		if (c->type == SOCK_SEQPACKET) {
			r = recv(c->fd, m, sizeof(h) + MSG_MAX + 1, MSG_TRUNC);
			if (r <= 0) {
				if (r < 0)
					count_err(errno);
				break;
			}
			if (!msg_ok(m, (size_t)r)) {
				atomic_fetch_add(&corrupt, 1);
				fprintf(stderr, "CORRUPT seqpacket message of %zd bytes\n", r);
				break;
			}
		} else {
			rc = read_full(c->fd, &h, sizeof(h));
			if (rc <= 0) {
				if (rc < 0)
					count_err(errno);
				break;
			}
			memcpy(m, &h, sizeof(h));
			if (h.magic != MAGIC || h.len > MSG_MAX) {
				atomic_fetch_add(&corrupt, 1);
				fprintf(stderr, "CORRUPT stream header\n");
				break;
			}
			rc = read_full(c->fd, m + sizeof(h), h.len);
			if (rc <= 0) {
				/* the client died mid-message: its loss */
				if (rc < 0)
					count_err(errno);
				else
					atomic_fetch_add(&eofs, 1);
				break;
			}
			r = (ssize_t)(sizeof(h) + h.len);
			if (!msg_ok(m, (size_t)r)) {
				atomic_fetch_add(&corrupt, 1);
				fprintf(stderr, "CORRUPT stream payload\n");
				break;
			}
		}
		atomic_fetch_add(&bytes, (unsigned long)r);
		if (send_full(c->fd, m, (size_t)r) < 0) {
			count_err(errno);
			break;
		}
	}
	close(c->fd);
	free(m);
	free(c);
	return NULL;
}

static void *serve_listener(void *arg)
{
	int type = (int)(intptr_t)arg, l, fd;
	struct sockaddr_ivshmem a;
	pthread_attr_t attr;
	pthread_t t;
	struct conn *c;

	/* thousands of connections during a fill: small stacks */
	pthread_attr_init(&attr);
	pthread_attr_setstacksize(&attr, 128 * 1024);

	ivshmem_addr(&a, IVSHMEM_PEER_ANY,
		     port + (type == SOCK_STREAM ? 0 : 1));
	l = socket(ivshmem_family(), type, 0);
	if (l < 0 || bind(l, (struct sockaddr *)&a, sizeof(a)) < 0 ||
	    listen(l, 64) < 0) {
		perror("soak server: listener");
		exit(2);
	}
	for (;;) {
		fd = accept(l, NULL, NULL);
		if (fd < 0) {
			count_err(errno);
			usleep(10000);	/* EMFILE: no busy loop */
			continue;
		}
		c = malloc(sizeof(*c));
		if (!c) {
			close(fd);
			continue;
		}
		c->fd = fd;
		c->type = type;
		if (pthread_create(&t, &attr, serve_conn, c)) {
			close(fd);
			free(c);
			continue;
		}
		pthread_detach(t);
	}
	return NULL;
}

static void *serve_dgram(void *arg)
{
	unsigned char m[sizeof(struct hdr) + DGRAM_MAX + 1];
	struct sockaddr_ivshmem a, from;
	socklen_t fl;
	ssize_t r;
	int fd;

	(void)arg;
	ivshmem_addr(&a, IVSHMEM_PEER_ANY, port + 2);
	fd = socket(ivshmem_family(), SOCK_DGRAM, 0);
	if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0) {
		perror("soak server: dgram");
		exit(2);
	}
	for (;;) {
		fl = sizeof(from);
		r = recvfrom(fd, m, sizeof(m), MSG_TRUNC,
			     (struct sockaddr *)&from, &fl);
		if (r < 0) {
			count_err(errno);
			continue;
		}
		if (!msg_ok(m, (size_t)r)) {
			atomic_fetch_add(&corrupt, 1);
			fprintf(stderr, "CORRUPT datagram of %zd bytes\n", r);
			continue;
		}
		atomic_fetch_add(&bytes, (unsigned long)r);
		if (sendto(fd, m, (size_t)r, 0, (struct sockaddr *)&from, fl) < 0)
			count_err(errno);
	}
	return NULL;
}

static int server(void)
{
	pthread_t t;

	pthread_create(&t, NULL, serve_listener, (void *)(intptr_t)SOCK_STREAM);
	pthread_create(&t, NULL, serve_listener, (void *)(intptr_t)SOCK_SEQPACKET);
	pthread_create(&t, NULL, serve_dgram, NULL);
	printf("ready\n");
	fflush(stdout);
	while (!stop)
		pause();
	report("soak-server");
	return atomic_load(&corrupt) ? 1 : 0;
}

static uint64_t rng;

static uint32_t rnd(uint32_t n)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return n ? (uint32_t)(rng % n) : 0;
}

static void fill_msg(unsigned char *m, uint32_t len, uint32_t seq)
{
	struct hdr h = { .magic = MAGIC, .len = len, .seq = seq };
	uint32_t i;

	for (i = 0; i < len; i++)
		m[sizeof(h) + i] = (unsigned char)rnd(256);
	h.sum = fnv1a(m + sizeof(h), len);
	memcpy(m, &h, sizeof(h));
}

/* One connection's life; returns false on corruption. */
static bool client_conn(uint32_t peer, int type, unsigned char *out,
			unsigned char *in)
{
	struct sockaddr_ivshmem a;
	uint32_t n = 1 + rnd(16), i, len;
	size_t tot;
	ssize_t r;
	int fd, rc;

	ivshmem_addr(&a, peer, port + (type == SOCK_STREAM ? 0 :
				       type == SOCK_SEQPACKET ? 1 : 2));
	atomic_fetch_add(&conns, 1);
	fd = socket(ivshmem_family(), type, 0);
	if (fd < 0) {
		count_err(errno);
		return true;
	}
	set_timeout(fd, type == SOCK_DGRAM ? 2 : 20);
	if (connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0) {
		count_err(errno);
		close(fd);
		usleep(20000);	/* a peer gone: no busy loop */
		return true;
	}
	for (i = 0; i < n && !stop; i++) {
		len = rnd(type == SOCK_DGRAM ? DGRAM_MAX : MSG_MAX);
		tot = sizeof(struct hdr) + len;
		fill_msg(out, len, i);
		if (type == SOCK_DGRAM) {
			if (send(fd, out, tot, 0) < 0)
				goto err;
			r = recv(fd, in, sizeof(struct hdr) + DGRAM_MAX + 1, MSG_TRUNC);
			if (r < 0) {
				/* a datagram may be dropped: not corruption */
				if (errno == EAGAIN)
					errno = ETIME;
				goto err;
			}
		} else if (type == SOCK_SEQPACKET) {
			if (send(fd, out, tot, MSG_NOSIGNAL) < 0)
				goto err;
			r = recv(fd, in, sizeof(struct hdr) + MSG_MAX + 1, MSG_TRUNC);
			if (r < 0)
				goto err;
			if (r == 0)
				goto eof;
		} else {
			if (send_full(fd, out, tot) < 0)
				goto err;
			rc = read_full(fd, in, tot);
			if (rc < 0)
				goto err;
			if (rc == 0)
				goto eof;
			r = (ssize_t)tot;
		}
		if ((size_t)r != tot || memcmp(in, out, tot)) {
			atomic_fetch_add(&corrupt, 1);
			fprintf(stderr, "CORRUPT echo on %s to peer %u: %zd of %zu bytes\n",
				type == SOCK_DGRAM ? "dgram" : type == SOCK_STREAM ?
				"stream" : "seqpacket", peer, r, tot);
			close(fd);
			return false;
		}
		atomic_fetch_add(&bytes, tot);
	}
	close(fd);
	atomic_fetch_add(&complete, 1);
	return true;
eof:
	atomic_fetch_add(&eofs, 1);
	close(fd);
	return true;
err:
	if (!(stop && errno == EINTR))	/* the end of the run */
		count_err(errno);
	close(fd);
	return true;
}

static int client(const char *peers, unsigned int seconds, uint64_t seed)
{
	static const int types[] = { SOCK_STREAM, SOCK_SEQPACKET, SOCK_DGRAM };
	unsigned char *out = malloc(sizeof(struct hdr) + MSG_MAX + 1);
	unsigned char *in = malloc(sizeof(struct hdr) + MSG_MAX + 1);
	uint32_t plist[64], np = 0;
	char *s = strdup(peers), *tok, *save;
	time_t end = time(NULL) + seconds;

	for (tok = strtok_r(s, ",", &save); tok && np < 64;
	     tok = strtok_r(NULL, ",", &save))
		plist[np++] = (uint32_t)strtoul(tok, NULL, 0);
	if (!np || !out || !in)
		return 2;
	rng = seed | 1;
	while (!stop && time(NULL) < end)
		client_conn(plist[rnd(np)], types[rnd(3)], out, in);
	report("soak-client");
	return atomic_load(&corrupt) ? 1 : 0;
}

#define FILL_MAX	2000

static int fill(uint32_t peer, unsigned int hold)
{
	struct sockaddr_ivshmem a;
	int fds[FILL_MAX], n = 0, fd, i, e = 0;

	ivshmem_addr(&a, peer, port);
	while (n < FILL_MAX) {
		fd = socket(ivshmem_family(), SOCK_STREAM, 0);
		if (fd < 0) {
			e = errno;
			break;
		}
		set_timeout(fd, 10);
		if (connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0) {
			e = errno;
			close(fd);
			break;
		}
		fds[n++] = fd;
	}
	printf("soak-fill connections=%d stopped_by=%s\n", n,
	       e ? strerrorname_np(e) : "limit");
	fflush(stdout);
	sleep(hold);
	for (i = 0; i < n; i++)
		close(fds[i]);
	return 0;
}

static void on_alarm(int sig)
{
	(void)sig;
}

/* Connects that give up while the peer is answering: a signal (an
 * interval timer of 0.1 to 20 ms) interrupts them, or a 1-20 ms connect
 * timeout ends them.  Whatever the peer allocated for them must come back.
 */
static int giveup(uint32_t peer, unsigned int count)
{
	struct sigaction sa = { .sa_handler = on_alarm };	/* no SA_RESTART */
	struct itimerval it = { 0 };
	struct sockaddr_ivshmem a;
	unsigned int i;
	uint64_t ms;
	int fd;

	sigaction(SIGALRM, &sa, NULL);
	ivshmem_addr(&a, peer, port);
	rng = (uint64_t)time(NULL) | 1;
	for (i = 0; i < count; i++) {
		fd = socket(ivshmem_family(), SOCK_STREAM, 0);
		if (fd < 0)
			return 1;
		ms = 1 + rnd(20);
		setsockopt(fd, ivshmem_family(), IVSHMEM_CONNECT_TIMEOUT_MS,
			   &ms, sizeof(ms));
		it.it_value.tv_usec = 100 + rnd(20000);
		setitimer(ITIMER_REAL, &it, NULL);
		if (!connect(fd, (struct sockaddr *)&a, sizeof(a)))
			atomic_fetch_add(&complete, 1);
		else
			count_err(errno);
		it.it_value.tv_usec = 0;
		setitimer(ITIMER_REAL, &it, NULL);
		atomic_fetch_add(&conns, 1);
		close(fd);
	}
	report("soak-giveup");
	return 0;
}

int main(int argc, char **argv)
{
	struct sigaction sa = { .sa_handler = on_term };
	const char *peers = NULL, *mode = argc > 1 ? argv[1] : "";
	unsigned int seconds = 60;
	uint64_t seed = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 16);
	int opt;

	if (argc < 2)
		goto usage;
	optind = 2;
	while ((opt = getopt(argc, argv, "P:p:t:s:")) != -1) {
		switch (opt) {
		case 'P':
			port = (unsigned int)strtoul(optarg, NULL, 0);
			break;
		case 'p':
			peers = optarg;
			break;
		case 't':
			seconds = (unsigned int)strtoul(optarg, NULL, 0);
			break;
		case 's':
			seed = strtoull(optarg, NULL, 0);
			break;
		default:
			goto usage;
		}
	}
	if (ivshmem_family() < 0) {
		perror("ivshmem_family");
		return 2;
	}
	/* a fill holds up to FILL_MAX connections, the server as many */
	struct rlimit rl = { .rlim_cur = 2 * FILL_MAX + 64, .rlim_max = 2 * FILL_MAX + 64 };

	setrlimit(RLIMIT_NOFILE, &rl);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	if (!strcmp(mode, "server"))
		return server();
	if (!strcmp(mode, "id")) {
		long id = ivshmem_local_peer();

		if (id < 0) {
			perror("ivshmem_local_peer");
			return 1;
		}
		printf("%ld\n", id);
		return 0;
	}
	if (!strcmp(mode, "client") && peers)
		return client(peers, seconds, seed);
	if (!strcmp(mode, "giveup") && peers)
		return giveup((uint32_t)strtoul(peers, NULL, 0), seconds);
	if (!strcmp(mode, "fill") && peers)
		return fill((uint32_t)strtoul(peers, NULL, 0), seconds);
usage:
	fprintf(stderr, "usage: %s server|client|fill|giveup|id [-P PORT] [-p PEERS] [-t S] [-s SEED]\n",
		argv[0]);
	return 2;
}
