// SPDX-License-Identifier: GPL-2.0
/*
 * ivshmem-perf: a socket benchmark for AF_IVSHMEM and, with the same code
 * paths, TCP, AF_UNIX and AF_VSOCK, so that transports are measured side
 * by side.
 *
 *   ivshmem-perf server [-T TRANSPORT] [-l ADDR]
 *   ivshmem-perf client [-T TRANSPORT] -a ADDR [-m TESTS] [-s SIZES]
 *                [-P STREAMS] [-n BYTES | -t SECONDS] [-r ROUNDS]
 *                [-k CONNECTIONS] [-c] [-b USEC] [--security MODE] [-j]
 *   ivshmem-perf memcpy [-s SIZES] [-n BYTES | -t SECONDS] [-j]
 *
 * Every test runs over its own connections.  A connection starts with a
 * hello naming the test; the server answers with what it counted (bytes,
 * a hash of them and pattern mismatches for a stream, rounds for
 * ping-pong), so that a result is only reported for bytes the server
 * received.  An "info" connection returns the server's CPU time and the
 * number of connect-test connections it accepted.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <netdb.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <linux/vm_sockets.h>
#include <time.h>
#include <unistd.h>

#include "../lib/ivshmem.h"

#ifndef __noreturn
#define __noreturn __attribute__((noreturn))
#endif

#define PERF_MAGIC	0x69767066u	/* "ivpf" */
#define DEFAULT_PORT	5100
#define DEFAULT_UNIX	"/tmp/ivshmem-perf.sock"
#define MAX_SIZES	32
#define MAX_STREAMS	64

enum { T_STREAM = 1, T_PINGPONG, T_CONNECT, T_INFO };
enum { F_CHECK = 1 };
enum { TR_IVSHMEM, TR_TCP, TR_UNIX, TR_VSOCK };
static const char *const tr_names[] = { "ivshmem", "tcp", "unix", "vsock" };
/* cf.security when --security is not given: the module's policy applies. */
#define SEC_DEFAULT	(-1)

struct hello {
	uint32_t magic;
	uint32_t type;
	uint32_t msg_size;
	uint32_t flags;
	uint64_t bytes;		/* stream: bytes to come, 0 = until EOF */
	uint64_t rounds;	/* ping-pong round trips */
	uint64_t seed;		/* stream pattern seed */
	uint32_t busy_poll_us;
	uint32_t security;
};

struct stream_reply {
	uint64_t bytes;
	uint64_t hash;
	uint64_t mismatches;
	uint64_t first_bad;
};

struct info_reply {
	uint64_t cpu_us;
	uint64_t connects;
};

struct conf {
	int transport;
	union {
		struct sockaddr_storage ss;
		struct sockaddr sa;
	} addr;
	socklen_t addrlen;
	const char *addr_str;
	int busy_poll_us;
	int security;
	bool check;
};

static struct conf cf = { .transport = TR_IVSHMEM, .security = SEC_DEFAULT };

static void die(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fputs("ivshmem-perf: ", stderr);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(1);
}

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static uint64_t cpu_us(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return (uint64_t)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000 +
		ru.ru_utime.tv_usec + ru.ru_stime.tv_usec;
}

/* The stream pattern: byte @off of a stream with @seed. */
static uint64_t mix(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ull;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}

static void pattern_fill(unsigned char *p, size_t len, uint64_t off, uint64_t seed)
{
	uint64_t w = mix(seed ^ (off >> 3));
	size_t i;

	for (i = 0; i < len; i++, off++) {
		if (!(off & 7))
			w = mix(seed ^ (off >> 3));
		p[i] = (unsigned char)(w >> ((off & 7) * 8));
	}
}

/* Mismatches of @p against the pattern; the first one's offset in *@bad. */
static uint64_t pattern_check(const unsigned char *p, size_t len, uint64_t off,
			      uint64_t seed, uint64_t *bad)
{
	uint64_t w = mix(seed ^ (off >> 3)), n = 0;
	size_t i;

	for (i = 0; i < len; i++, off++) {
		if (!(off & 7))
			w = mix(seed ^ (off >> 3));
		if (p[i] != (unsigned char)(w >> ((off & 7) * 8))) {
			if (!n)
				*bad = off;
			n++;
		}
	}
	return n;
}

#define FNV_INIT 0xcbf29ce484222325ull
static uint64_t fnv(uint64_t h, const unsigned char *p, size_t len)
{
	while (len--)
		h = (h ^ *p++) * 0x100000001b3ull;
	return h;
}

static int family_of(int tr)
{
	switch (tr) {
	case TR_IVSHMEM: {
		int fam = ivshmem_family();

		if (fam < 0)
			die("AF_IVSHMEM: %s (is the module loaded?)", strerror(errno));
		return fam;
	}
	case TR_TCP:
		return AF_INET;
	case TR_UNIX:
		return AF_UNIX;
	default:
		return AF_VSOCK;
	}
}

/* Parses @s for the transport; @listen: the server's form. */
static void parse_addr(const char *s, bool listen)
{
	char host[256], *colon;
	unsigned long a, b;

	memset(&cf.addr, 0, sizeof(cf.addr));
	cf.addr_str = s;
	switch (cf.transport) {
	case TR_UNIX: {
		struct sockaddr_un *un = (struct sockaddr_un *)&cf.addr.ss;

		if (strlen(s) >= sizeof(un->sun_path))
			die("UNIX path too long: %s", s);
		un->sun_family = AF_UNIX;
		strcpy(un->sun_path, s);
		cf.addrlen = sizeof(*un);
		return;
	}
	case TR_TCP: {
		struct sockaddr_in *in = (struct sockaddr_in *)&cf.addr.ss;
		struct addrinfo hints = { .ai_family = AF_INET }, *ai;

		snprintf(host, sizeof(host), "%s", s);
		colon = strrchr(host, ':');
		if (!colon && !listen)
			die("TCP address: HOST:PORT, not %s", s);
		in->sin_family = AF_INET;
		cf.addrlen = sizeof(*in);
		if (!colon) {
			in->sin_port = htons(atoi(host));
			return;
		}
		*colon = 0;
		in->sin_port = htons(atoi(colon + 1));
		if (!*host)
			return;
		if (getaddrinfo(host, NULL, &hints, &ai))
			die("cannot resolve %s", host);
		in->sin_addr = ((struct sockaddr_in *)ai->ai_addr)->sin_addr;
		freeaddrinfo(ai);
		return;
	}
	default:
		break;
	}
	/* ivshmem PEER:PORT, vsock CID:PORT; a server may give PORT alone. */
	colon = strchr(s, ':');
	if (colon) {
		a = strtoul(s, NULL, 0);
		if (!strncmp(s, "any:", 4))
			a = (unsigned long)-1;
		b = strtoul(colon + 1, NULL, 0);
	} else if (listen) {
		a = (unsigned long)-1;
		b = strtoul(s, NULL, 0);
	} else {
		die("%s address: %s:PORT, not %s", tr_names[cf.transport],
		    cf.transport == TR_VSOCK ? "CID" : "PEER", s);
	}
	if (cf.transport == TR_IVSHMEM) {
		struct sockaddr_ivshmem *iv = (struct sockaddr_ivshmem *)&cf.addr.ss;

		ivshmem_addr(iv, a == (unsigned long)-1 ? IVSHMEM_PEER_ANY : a, b);
		cf.addrlen = sizeof(*iv);
	} else {
		struct sockaddr_vm *vm = (struct sockaddr_vm *)&cf.addr.ss;

		vm->svm_family = AF_VSOCK;
		vm->svm_cid = a == (unsigned long)-1 ? VMADDR_CID_ANY : a;
		vm->svm_port = b;
		cf.addrlen = sizeof(*vm);
	}
}

/* Socket options every data socket gets: busy polling and security. */
static void sock_opts(int fd, int busy_poll_us, int security)
{
	int one = 1;

	if (cf.transport == TR_TCP)
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (busy_poll_us > 0 &&
	    setsockopt(fd, SOL_SOCKET, SO_BUSY_POLL, &busy_poll_us,
		       sizeof(busy_poll_us)))
		die("SO_BUSY_POLL %d: %s", busy_poll_us, strerror(errno));
	if (cf.transport != TR_IVSHMEM || security == SEC_DEFAULT)
		return;
	if (setsockopt(fd, family_of(TR_IVSHMEM), IVSHMEM_SECURITY, &security,
		       sizeof(security)))
		die("IVSHMEM_SECURITY %s: %s", ivshmem_security_name(security),
		    strerror(errno));
}

static void write_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;
	ssize_t n;

	while (len) {
		n = send(fd, p, len, MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			die("send: %s", n ? strerror(errno) : "short");
		p += n;
		len -= n;
	}
}

/* Reads exactly @len bytes; false on EOF before the first byte. */
static bool read_all(int fd, void *buf, size_t len)
{
	char *p = buf;
	size_t got = 0;
	ssize_t n;

	while (got < len) {
		n = recv(fd, p + got, len - got, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			die("recv: %s", strerror(errno));
		if (!n) {
			if (!got)
				return false;
			die("recv: connection closed after %zu of %zu bytes", got, len);
		}
		got += n;
	}
	return true;
}

static void *xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);

	if (!p)
		die("out of memory");
	memset(p, 0, n);
	return p;
}

/* Server */

static uint64_t connects_seen;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;

static void serve_stream(int fd, const struct hello *h)
{
	size_t sz = h->msg_size ? h->msg_size : 65536;
	unsigned char *buf = xmalloc(sz);
	struct stream_reply r = { .hash = FNV_INIT };
	ssize_t n;

	for (;;) {
		n = recv(fd, buf, sz, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			die("stream recv: %s", strerror(errno));
		if (!n)
			break;
		if (h->flags & F_CHECK) {
			r.mismatches += pattern_check(buf, n, r.bytes, h->seed,
						      &r.first_bad);
			r.hash = fnv(r.hash, buf, n);
		}
		r.bytes += n;
	}
	write_all(fd, &r, sizeof(r));
	free(buf);
}

static void serve_pingpong(int fd, const struct hello *h)
{
	unsigned char *buf = xmalloc(h->msg_size);
	uint64_t i;

	for (i = 0; i < h->rounds; i++) {
		if (!read_all(fd, buf, h->msg_size))
			break;
		write_all(fd, buf, h->msg_size);
	}
	write_all(fd, &i, sizeof(i));
	free(buf);
}

static void *serve(void *arg)
{
	int fd = (int)(intptr_t)arg;
	struct info_reply ir;
	struct hello h;

	if (!read_all(fd, &h, sizeof(h)) || h.magic != PERF_MAGIC) {
		close(fd);
		return NULL;
	}
	/* Busy polling as the client asked; security is the listener's and
	 * the module's policy (it cannot change once connected).
	 */
	if (h.type == T_STREAM || h.type == T_PINGPONG)
		sock_opts(fd, h.busy_poll_us, SEC_DEFAULT);
	switch (h.type) {
	case T_STREAM:
		serve_stream(fd, &h);
		break;
	case T_PINGPONG:
		if (h.msg_size)
			serve_pingpong(fd, &h);
		break;
	case T_CONNECT:
		pthread_mutex_lock(&lock);
		connects_seen++;
		pthread_mutex_unlock(&lock);
		break;
	case T_INFO:
		pthread_mutex_lock(&lock);
		ir.connects = connects_seen;
		pthread_mutex_unlock(&lock);
		ir.cpu_us = cpu_us();
		write_all(fd, &ir, sizeof(ir));
		break;
	}
	close(fd);
	return NULL;
}

static void __noreturn run_server(void)
{
	int lfd, fd, one = 1;
	pthread_attr_t attr;
	pthread_t t;

	lfd = socket(family_of(cf.transport), SOCK_STREAM, 0);
	if (lfd < 0)
		die("socket: %s", strerror(errno));
	if (cf.transport == TR_TCP)
		setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (cf.transport == TR_UNIX)
		unlink(((struct sockaddr_un *)&cf.addr.ss)->sun_path);
	if (bind(lfd, &cf.addr.sa, cf.addrlen))
		die("bind %s: %s", cf.addr_str, strerror(errno));
	if (listen(lfd, 1024))
		die("listen: %s", strerror(errno));
	printf("ivshmem-perf: server ready, %s %s\n", tr_names[cf.transport],
	       cf.addr_str);
	fflush(stdout);
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	for (;;) {
		fd = accept(lfd, NULL, NULL);
		if (fd < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			die("accept: %s", strerror(errno));
		}
		if (pthread_create(&t, &attr, serve, (void *)(intptr_t)fd))
			die("pthread_create");
	}
}

/* Client */

/* A connection to the server, with the socket options set first (security
 * only applies before connect()): every one gets --security, a measured one
 * (@measured) busy polling too.
 */
static int dial(bool measured)
{
	int fd = socket(family_of(cf.transport), SOCK_STREAM, 0);

	if (fd < 0)
		die("socket: %s", strerror(errno));
	sock_opts(fd, measured ? cf.busy_poll_us : 0, cf.security);
	if (connect(fd, &cf.addr.sa, cf.addrlen))
		die("connect %s %s: %s", tr_names[cf.transport], cf.addr_str,
		    strerror(errno));
	return fd;
}

static struct info_reply server_info(void)
{
	struct hello h = { .magic = PERF_MAGIC, .type = T_INFO };
	struct info_reply r;
	int fd = dial(false);

	write_all(fd, &h, sizeof(h));
	if (!read_all(fd, &r, sizeof(r)))
		die("info: the server closed the connection");
	close(fd);
	return r;
}

struct stream_job {
	pthread_t thread;
	size_t msg_size;
	uint64_t bytes;		/* to send; 0: until the deadline */
	double deadline;
	uint64_t seed;
	uint64_t sent;
	uint64_t hash;
	struct stream_reply reply;
	pthread_barrier_t *start;
};

static void *stream_thread(void *arg)
{
	struct stream_job *j = arg;
	struct hello h = {
		.magic = PERF_MAGIC, .type = T_STREAM, .msg_size = j->msg_size,
		.flags = cf.check ? F_CHECK : 0, .bytes = j->bytes,
		.seed = j->seed, .busy_poll_us = cf.busy_poll_us,
		.security = cf.security,
	};
	unsigned char *buf = xmalloc(j->msg_size);
	int fd = dial(true);
	size_t len;

	write_all(fd, &h, sizeof(h));
	j->hash = FNV_INIT;
	memset(buf, 0x5a, j->msg_size);
	pthread_barrier_wait(j->start);
	for (;;) {
		len = j->msg_size;
		if (j->bytes) {
			if (j->sent >= j->bytes)
				break;
			if (j->bytes - j->sent < len)
				len = j->bytes - j->sent;
		} else if (now() >= j->deadline) {
			break;
		}
		if (cf.check) {
			pattern_fill(buf, len, j->sent, j->seed);
			j->hash = fnv(j->hash, buf, len);
		}
		write_all(fd, buf, len);
		j->sent += len;
	}
	shutdown(fd, SHUT_WR);
	if (!read_all(fd, &j->reply, sizeof(j->reply)))
		die("stream: no reply from the server");
	close(fd);
	free(buf);
	return NULL;
}

/* JSON and table output */

static FILE *json;	/* the results array, written as we go */
static int json_items;
static bool human = true;

static void jitem(const char *fmt, ...)
{
	va_list ap;

	if (!json)
		return;
	fprintf(json, "%s\n    {", json_items++ ? "," : "");
	va_start(ap, fmt);
	vfprintf(json, fmt, ap);
	va_end(ap);
	fputc('}', json);
}

static double per_byte(uint64_t us, uint64_t bytes)
{
	return bytes ? us * 1000.0 / bytes : 0;
}

static int test_stream(size_t msg_size, int streams, uint64_t bytes, double secs)
{
	struct stream_job *jobs = xmalloc(sizeof(*jobs) * streams);
	uint64_t total = 0, confirmed = 0, bad = 0, c0, c1;
	struct info_reply s0, s1;
	pthread_barrier_t start;
	bool hash_ok = true;
	double t0, t1;
	int i;

	pthread_barrier_init(&start, NULL, streams + 1);
	s0 = server_info();
	c0 = cpu_us();
	for (i = 0; i < streams; i++) {
		jobs[i].msg_size = msg_size;
		jobs[i].bytes = bytes;
		jobs[i].seed = mix(time(NULL) ^ ((uint64_t)getpid() << 16) ^ i);
		jobs[i].start = &start;
	}
	t0 = now();
	for (i = 0; i < streams; i++) {
		jobs[i].deadline = t0 + secs;
		if (pthread_create(&jobs[i].thread, NULL, stream_thread, &jobs[i]))
			die("pthread_create");
	}
	pthread_barrier_wait(&start);
	t0 = now();
	for (i = 0; i < streams; i++)
		pthread_join(jobs[i].thread, NULL);
	t1 = now();
	c1 = cpu_us();
	s1 = server_info();
	for (i = 0; i < streams; i++) {
		total += jobs[i].sent;
		confirmed += jobs[i].reply.bytes;
		bad += jobs[i].reply.mismatches;
		if (cf.check && jobs[i].reply.hash != jobs[i].hash)
			hash_ok = false;
		if (jobs[i].reply.bytes != jobs[i].sent)
			fprintf(stderr, "ivshmem-perf: stream %d: sent %" PRIu64
				" bytes, the server received %" PRIu64 "\n", i,
				jobs[i].sent, jobs[i].reply.bytes);
		if (jobs[i].reply.mismatches)
			fprintf(stderr, "ivshmem-perf: stream %d: %" PRIu64
				" bytes differ from what was sent, the first at %" PRIu64 "\n",
				i, jobs[i].reply.mismatches, jobs[i].reply.first_bad);
	}
	pthread_barrier_destroy(&start);
	free(jobs);
	jitem("\"test\": \"stream\", \"msg_size\": %zu, \"streams\": %d, "
	      "\"bytes\": %" PRIu64 ", \"bytes_received\": %" PRIu64 ", "
	      "\"seconds\": %.6f, \"mbit_s\": %.3f, \"checksum\": %s, "
	      "\"checksum_ok\": %s, \"verified\": %s, "
	      "\"client_cpu_s\": %.6f, \"server_cpu_s\": %.6f, "
	      "\"client_cpu_ns_per_byte\": %.4f, \"server_cpu_ns_per_byte\": %.4f",
	      msg_size, streams, total, confirmed, t1 - t0,
	      confirmed * 8 / (t1 - t0) / 1e6, cf.check ? "true" : "false",
	      cf.check ? (hash_ok && !bad ? "true" : "false") : "null",
	      confirmed == total && hash_ok && !bad ? "true" : "false",
	      (c1 - c0) / 1e6, (s1.cpu_us - s0.cpu_us) / 1e6,
	      per_byte(c1 - c0, confirmed), per_byte(s1.cpu_us - s0.cpu_us, confirmed));
	if (human)
		printf("stream   %8zu B x %2d  %12" PRIu64 " B  %8.3f s  %10.1f Mbit/s"
		       "  cpu/B client %.2f ns server %.2f ns%s\n",
		       msg_size, streams, confirmed, t1 - t0,
		       confirmed * 8 / (t1 - t0) / 1e6,
		       per_byte(c1 - c0, confirmed),
		       per_byte(s1.cpu_us - s0.cpu_us, confirmed),
		       cf.check ? (hash_ok && !bad ? "  checksum ok" : "  CHECKSUM BAD") : "");
	return confirmed == total && hash_ok && !bad ? 0 : 1;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static int test_pingpong(size_t msg_size, uint64_t rounds)
{
	struct hello h = {
		.magic = PERF_MAGIC, .type = T_PINGPONG, .msg_size = msg_size,
		.rounds = rounds, .busy_poll_us = cf.busy_poll_us,
		.security = cf.security,
	};
	unsigned char *buf = xmalloc(msg_size);
	double *rtt = xmalloc(sizeof(double) * rounds), t, sum = 0, t0, t1;
	uint64_t i, echoed = 0, bad = 0, c0, c1;
	struct info_reply s0, s1;
	int fd;

	if (!msg_size || !rounds)
		die("ping-pong needs a size and rounds above 0");
	s0 = server_info();
	fd = dial(true);
	write_all(fd, &h, sizeof(h));
	c0 = cpu_us();
	t0 = now();
	for (i = 0; i < rounds; i++) {
		buf[0] = (unsigned char)i;
		t = now();
		write_all(fd, buf, msg_size);
		if (!read_all(fd, buf, msg_size))
			die("ping-pong: closed after %" PRIu64 " rounds", i);
		rtt[i] = (now() - t) * 1e6;
		sum += rtt[i];
		if (buf[0] != (unsigned char)i)
			bad++;
	}
	t1 = now();
	c1 = cpu_us();
	if (!read_all(fd, &echoed, sizeof(echoed)))
		die("ping-pong: no count from the server");
	close(fd);
	s1 = server_info();
	qsort(rtt, rounds, sizeof(double), cmp_double);
#define PCT(p) rtt[(uint64_t)((rounds - 1) * (p))]
	jitem("\"test\": \"pingpong\", \"msg_size\": %zu, \"rounds\": %" PRIu64
	      ", \"rounds_echoed\": %" PRIu64 ", \"verified\": %s, "
	      "\"seconds\": %.6f, \"rtt_us\": {\"mean\": %.3f, \"min\": %.3f, "
	      "\"p50\": %.3f, \"p99\": %.3f, \"max\": %.3f}, "
	      "\"one_way_us\": {\"mean\": %.3f, \"p50\": %.3f, \"p99\": %.3f}, "
	      "\"client_cpu_s\": %.6f, \"server_cpu_s\": %.6f",
	      msg_size, rounds, echoed, echoed == rounds && !bad ? "true" : "false",
	      t1 - t0, sum / rounds, rtt[0], PCT(0.5), PCT(0.99), rtt[rounds - 1],
	      sum / rounds / 2, PCT(0.5) / 2, PCT(0.99) / 2,
	      (c1 - c0) / 1e6, (s1.cpu_us - s0.cpu_us) / 1e6);
	if (human)
		printf("pingpong %8zu B  %10" PRIu64 " rounds  rtt mean %.1f us  p50 %.1f us"
		       "  p99 %.1f us  max %.1f us\n", msg_size, echoed,
		       sum / rounds, PCT(0.5), PCT(0.99), rtt[rounds - 1]);
#undef PCT
	free(rtt);
	free(buf);
	if (echoed != rounds || bad)
		fprintf(stderr, "ivshmem-perf: ping-pong: %" PRIu64 " of %" PRIu64
			" rounds echoed, %" PRIu64 " wrong\n", echoed, rounds, bad);
	return echoed == rounds && !bad ? 0 : 1;
}

static int test_connect(uint64_t count)
{
	struct hello h = { .magic = PERF_MAGIC, .type = T_CONNECT };
	struct info_reply s0, s1;
	uint64_t i, c0, c1;
	double t0, t1;
	char c;
	int fd;

	s0 = server_info();
	c0 = cpu_us();
	t0 = now();
	for (i = 0; i < count; i++) {
		fd = dial(true);
		write_all(fd, &h, sizeof(h));
		/* The server closes once it has counted us. */
		while (recv(fd, &c, 1, 0) < 0 && errno == EINTR)
			;
		close(fd);
	}
	t1 = now();
	c1 = cpu_us();
	s1 = server_info();
	jitem("\"test\": \"connect\", \"connections\": %" PRIu64
	      ", \"connections_accepted\": %" PRIu64 ", \"verified\": %s, "
	      "\"seconds\": %.6f, \"per_second\": %.3f, "
	      "\"client_cpu_s\": %.6f, \"server_cpu_s\": %.6f",
	      count, s1.connects - s0.connects,
	      s1.connects - s0.connects == count ? "true" : "false",
	      t1 - t0, count / (t1 - t0), (c1 - c0) / 1e6,
	      (s1.cpu_us - s0.cpu_us) / 1e6);
	if (human)
		printf("connect  %10" PRIu64 " connections  %.3f s  %.1f per second\n",
		       s1.connects - s0.connects, t1 - t0, count / (t1 - t0));
	return s1.connects - s0.connects == count ? 0 : 1;
}

/* The copy bound: @msg_size copies into a 4 MiB ring, as a sender into its channel. */
static int test_memcpy(size_t msg_size, uint64_t bytes, double secs)
{
	size_t ring = 4 << 20, off = 0;
	unsigned char *src, *dst;
	uint64_t done = 0;
	double t0, t1;

	if (ring < msg_size)
		ring = msg_size;
	src = xmalloc(msg_size);
	dst = xmalloc(ring);
	memset(src, 0xa5, msg_size);
	t0 = now();
	for (;;) {
		if (bytes ? done >= bytes : now() - t0 >= secs)
			break;
		if (off + msg_size > ring)
			off = 0;
		memcpy(dst + off, src, msg_size);
		__asm__ __volatile__("" : : "r"(dst) : "memory");
		off += msg_size;
		done += msg_size;
	}
	t1 = now();
	jitem("\"test\": \"memcpy\", \"msg_size\": %zu, \"bytes\": %" PRIu64
	      ", \"seconds\": %.6f, \"mbit_s\": %.3f", msg_size, done, t1 - t0,
	      done * 8 / (t1 - t0) / 1e6);
	if (human)
		printf("memcpy   %8zu B  %12" PRIu64 " B  %8.3f s  %10.1f Mbit/s\n",
		       msg_size, done, t1 - t0, done * 8 / (t1 - t0) / 1e6);
	free(src);
	free(dst);
	return 0;
}

static uint64_t parse_size(const char *s)
{
	char *end;
	double v = strtod(s, &end);

	switch (*end) {
	case 'k':
	case 'K':
		v *= 1024;
		end++;
		break;
	case 'm':
	case 'M':
		v *= 1 << 20;
		end++;
		break;
	case 'g':
	case 'G':
		v *= 1 << 30;
		end++;
		break;
	}
	if (end == s || *end || v < 0)
		die("bad size: %s", s);
	return (uint64_t)v;
}

/* Splits a comma-separated list of sizes into @out; returns the count. */
static int parse_list(const char *s, uint64_t *out, int max)
{
	char *copy = strdup(s), *tok, *save;
	int n = 0;

	for (tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		if (n == max)
			die("too many values in %s", s);
		out[n++] = parse_size(tok);
	}
	free(copy);
	if (!n)
		die("empty list");
	return n;
}

static void usage(int status)
{
	fprintf(status ? stderr : stdout,
		"usage: ivshmem-perf server [-T TRANSPORT] [-l ADDR]\n"
		"       ivshmem-perf client [-T TRANSPORT] -a ADDR [-m TESTS] [-s SIZES]\n"
		"                    [-P STREAMS] [-n BYTES | -t SECONDS] [-r ROUNDS]\n"
		"                    [-k CONNECTIONS] [-c] [-b USEC] [--security MODE]\n"
		"                    [-j] [-L LABEL]\n"
		"       ivshmem-perf memcpy [-s SIZES] [-n BYTES | -t SECONDS] [-j]\n"
		"TRANSPORT: ivshmem (PEER:PORT), tcp (HOST:PORT), unix (PATH),\n"
		"vsock (CID:PORT); TESTS: stream,pingpong,connect (default all)\n"
		"MODE: off, prefer, require; see ivshmem-perf(1)\n");
	exit(status);
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "transport", 1, NULL, 'T' }, { "listen", 1, NULL, 'l' },
		{ "address", 1, NULL, 'a' }, { "tests", 1, NULL, 'm' },
		{ "sizes", 1, NULL, 's' }, { "streams", 1, NULL, 'P' },
		{ "bytes", 1, NULL, 'n' }, { "time", 1, NULL, 't' },
		{ "rounds", 1, NULL, 'r' }, { "connections", 1, NULL, 'k' },
		{ "pp-size", 1, NULL, 'S' },
		{ "checksum", 0, NULL, 'c' }, { "busy-poll", 1, NULL, 'b' },
		{ "security", 1, NULL, 'E' }, { "json", 0, NULL, 'j' },
		{ "label", 1, NULL, 'L' }, { "help", 0, NULL, 'h' }, { }
	};
	const char *mode, *addr = NULL, *tests = "stream,pingpong,connect";
	const char *label = "";
	uint64_t sizes[MAX_SIZES], streams[MAX_SIZES], bytes = 0, rounds = 1000;
	uint64_t conns = 100, pp_sizes[MAX_SIZES];
	int nsizes, nstreams = 1, npp = 1, c, i, k, fail = 0;
	bool want_json = false;
	double secs = 0;
	char *jbuf = NULL;
	size_t jlen = 0;

	sizes[0] = 64;
	sizes[1] = 1024;
	sizes[2] = 16384;
	sizes[3] = 65536;
	nsizes = 4;
	streams[0] = 1;
	pp_sizes[0] = 1;
	if (argc < 2)
		usage(1);
	mode = argv[1];
	if (!strcmp(mode, "-h") || !strcmp(mode, "--help"))
		usage(0);
	if (strcmp(mode, "server") && strcmp(mode, "client") && strcmp(mode, "memcpy"))
		usage(1);
	argv++;
	argc--;
	while ((c = getopt_long(argc, argv, "T:l:a:m:s:P:n:t:r:k:S:cb:jL:h",
				opts, NULL)) != -1) {
		switch (c) {
		case 'T':
			for (k = 0; k < 4 && strcmp(optarg, tr_names[k]); k++)
				;
			if (k == 4)
				die("unknown transport %s", optarg);
			cf.transport = k;
			break;
		case 'l':
		case 'a':
			addr = optarg;
			break;
		case 'm':
			tests = optarg;
			break;
		case 's':
			nsizes = parse_list(optarg, sizes, MAX_SIZES);
			break;
		case 'S':
			npp = parse_list(optarg, pp_sizes, MAX_SIZES);
			break;
		case 'P':
			nstreams = parse_list(optarg, streams, MAX_SIZES);
			break;
		case 'n':
			bytes = parse_size(optarg);
			break;
		case 't':
			secs = atof(optarg);
			break;
		case 'r':
			rounds = parse_size(optarg);
			break;
		case 'k':
			conns = parse_size(optarg);
			break;
		case 'c':
			cf.check = true;
			break;
		case 'b':
			cf.busy_poll_us = atoi(optarg);
			break;
		case 'E':
			cf.security = ivshmem_security_parse(optarg);
			if (cf.security < 0)
				die("--security: off, prefer or require, not %s", optarg);
			break;
		case 'j':
			want_json = true;
			break;
		case 'L':
			label = optarg;
			break;
		case 'h':
			usage(0);
			break;
		default:
			usage(1);
		}
	}
	if (optind != argc)
		usage(1);
	for (i = 0; i < nstreams; i++)
		if (!streams[i] || streams[i] > MAX_STREAMS)
			die("streams: 1 to %d", MAX_STREAMS);
	for (i = 0; i < nsizes; i++)
		if (!sizes[i] || sizes[i] > (1 << 30))
			die("message sizes: 1 byte to 1 GiB");
	if (!bytes && secs <= 0)
		secs = 2;
	signal(SIGPIPE, SIG_IGN);

	if (!strcmp(mode, "server")) {
		if (!addr)
			addr = cf.transport == TR_UNIX ? DEFAULT_UNIX :
				cf.transport == TR_TCP ? ":5100" : "5100";
		parse_addr(addr, true);
		run_server();
	}
	if (want_json) {
		json = open_memstream(&jbuf, &jlen);
		human = false;
	}
	if (!strcmp(mode, "memcpy")) {
		for (i = 0; i < nsizes; i++)
			test_memcpy(sizes[i], bytes, secs);
	} else {
		if (!addr)
			die("client: -a ADDR is needed");
		parse_addr(addr, false);
		if (strstr(tests, "stream"))
			for (k = 0; k < nstreams; k++)
				for (i = 0; i < nsizes; i++)
					fail |= test_stream(sizes[i], streams[k], bytes, secs);
		if (strstr(tests, "pingpong"))
			for (i = 0; i < npp; i++)
				fail |= test_pingpong(pp_sizes[i], rounds);
		if (strstr(tests, "connect"))
			fail |= test_connect(conns);
	}
	if (json) {
		fclose(json);
		printf("{\n  \"tool\": \"ivshmem-perf\",\n  \"mode\": \"%s\",\n"
		       "  \"transport\": \"%s\",\n  \"address\": \"%s\",\n"
		       "  \"label\": \"%s\",\n  \"busy_poll_us\": %d,\n"
		       "  \"security\": \"%s\",\n  \"checksum\": %s,\n"
		       "  \"ok\": %s,\n  \"results\": [%s\n  ]\n}\n",
		       mode, !strcmp(mode, "memcpy") ? "none" : tr_names[cf.transport],
		       addr ? addr : "", label, cf.busy_poll_us,
		       cf.security == SEC_DEFAULT ? "default" :
		       ivshmem_security_name(cf.security),
		       cf.check ? "true" : "false", fail ? "false" : "true",
		       jbuf ? jbuf : "");
		free(jbuf);
	}
	return fail;
}
