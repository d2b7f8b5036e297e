/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Helpers shared by the AF_IVSHMEM test suite (ivshmem_test.c) and its
 * test peer (ivshmem_peerd.c): the peer's service ports, a deterministic
 * data stream and its checksum, and full-length I/O.
 */
#ifndef _IVSHMEM_UTIL_H
#define _IVSHMEM_UTIL_H

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "../tools/lib/ivshmem.h"

/* Milliseconds on the monotonic clock. */
static inline uint64_t monotonic_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Sleeps @ms milliseconds, signals or not. */
static inline void sleep_ms(unsigned int ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts))
		;
}

/*
 * Waits until @path exists (a test script's "go"), looking every 50 ms,
 * for up to @timeout_ms, or for ever if 0.  Returns 0, or -ETIMEDOUT.
 */
static inline int wait_for_file(const char *path, unsigned int timeout_ms)
{
	uint64_t end = monotonic_ms() + timeout_ms;

	while (access(path, F_OK)) {
		if (timeout_ms && monotonic_ms() >= end)
			return -ETIMEDOUT;
		sleep_ms(50);
	}
	return 0;
}

/* Services of ivshmem_peerd, one per port. */
#define PEERD_PORT_ECHO		5000	/* echoes until EOF, then closes */
#define PEERD_PORT_BULK		5001	/* u64 size, then both ways at once */
#define PEERD_PORT_BYE		5002	/* sends PEERD_BYE and closes */
#define PEERD_PORT_SINK		5003	/* reads to EOF, replies count+sum */
#define PEERD_PORT_WHOAMI	5004	/* sends its host name and closes */
#define PEERD_PORT_UNUSED	5999	/* nobody listens here */

#define PEERD_BYE		"bye\n"

/* Seeds of the two directions of a bulk transfer. */
#define BULK_SEED_TO_PEER	0x1234567890abcdefULL
#define BULK_SEED_FROM_PEER	0xfedcba0987654321ULL

/**
 * struct stream - a reproducible byte stream (xorshift64*) and a running
 * checksum (FNV-1a over 64-bit words) of the bytes that went through it
 */
struct stream {
	uint64_t state;
	uint64_t sum;
	uint64_t bytes;
};

static inline void stream_init(struct stream *s, uint64_t seed)
{
	s->state = seed;
	s->sum = 0xcbf29ce484222325ULL;
	s->bytes = 0;
}

static inline uint64_t stream_word(struct stream *s)
{
	s->state ^= s->state >> 12;
	s->state ^= s->state << 25;
	s->state ^= s->state >> 27;
	return s->state * 0x2545f4914f6cdd1dULL;
}

/* Lengths are multiples of 8 so that words never straddle two calls. */
static inline void stream_fill(struct stream *s, void *buf, size_t len)
{
	uint64_t *w = buf;
	size_t i;

	for (i = 0; i < len / 8; i++) {
		w[i] = stream_word(s);
		s->sum = (s->sum ^ w[i]) * 0x100000001b3ULL;
	}
	s->bytes += len;
}

/* Checks @buf against the stream; returns the offset of a mismatch or -1. */
static inline long stream_verify(struct stream *s, const void *buf,
				 size_t len)
{
	const uint64_t *w = buf;
	size_t i;

	for (i = 0; i < len / 8; i++) {
		uint64_t want = stream_word(s);

		if (w[i] != want)
			return (long)(i * 8);
		s->sum = (s->sum ^ want) * 0x100000001b3ULL;
	}
	s->bytes += len;
	return -1;
}

/* Sums bytes that are not compared against a stream. */
static inline void stream_sum(struct stream *s, const void *buf, size_t len)
{
	const uint64_t *w = buf;
	size_t i;

	for (i = 0; i < len / 8; i++)
		s->sum = (s->sum ^ w[i]) * 0x100000001b3ULL;
	s->bytes += len;
}

static inline ssize_t write_full(int fd, const void *buf, size_t len)
{
	const char *p = buf;
	size_t done = 0;

	while (done < len) {
		ssize_t n = send(fd, p + done, len - done, MSG_NOSIGNAL);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n;
		done += n;
	}
	return done;
}

/* Reads exactly @len bytes; returns fewer only at EOF, -1 on error. */
static inline ssize_t read_full(int fd, void *buf, size_t len)
{
	char *p = buf;
	size_t done = 0;

	while (done < len) {
		ssize_t n = recv(fd, p + done, len - done, 0);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -1;
		if (n == 0)
			break;
		done += n;
	}
	return done;
}

#define BULK_CHUNK	(64 * 1024)

/**
 * struct bulk_result - outcome of bulk_client()
 * @size: bytes each way
 * @received: bytes received and verified
 * @mismatch: offset of the first wrong byte received, or -1
 * @send_err: errno of a failed send, or 0
 * @recv_err: errno of a failed receive (or ECONNABORTED for early EOF)
 * @sent_sum: checksum of what we sent
 * @peer_sum: checksum the peer computed of what it received
 * @peer_bad: the peer's count of corrupted or missing data (0 is good)
 */
struct bulk_result {
	uint64_t size;
	uint64_t received;
	long mismatch;
	int send_err;
	int recv_err;
	uint64_t sent_sum;
	uint64_t peer_sum;
	uint64_t peer_bad;
};

struct bulk_sender {
	int fd;
	struct bulk_result *r;
};

static inline void *bulk_send_thread(void *arg)
{
	struct bulk_sender *b = arg;
	static char buf[BULK_CHUNK];
	struct stream s;
	uint64_t left;

	stream_init(&s, BULK_SEED_TO_PEER);
	for (left = b->r->size; left; left -= BULK_CHUNK) {
		stream_fill(&s, buf, BULK_CHUNK);
		if (write_full(b->fd, buf, BULK_CHUNK) != BULK_CHUNK) {
			b->r->send_err = errno ? errno : EPIPE;
			break;
		}
	}
	b->r->sent_sum = s.sum;
	return NULL;
}

/*
 * The client of ivshmem_peerd's bulk service: @size bytes (a multiple of
 * BULK_CHUNK) each way at once, every byte received checked against the
 * peer's stream, then the peer's checksum of what we sent.
 */
static inline void bulk_client(int fd, uint64_t size, struct bulk_result *r)
{
	static char buf[BULK_CHUNK];
	struct bulk_sender b = { .fd = fd, .r = r };
	uint64_t reply[2];
	struct stream s;
	pthread_t thr;
	ssize_t n;

	memset(r, 0, sizeof(*r));
	r->size = size;
	r->mismatch = -1;
	if (write_full(fd, &size, sizeof(size)) != sizeof(size)) {
		r->send_err = errno;
		return;
	}
	if (pthread_create(&thr, NULL, bulk_send_thread, &b)) {
		r->send_err = EAGAIN;
		return;
	}
	stream_init(&s, BULK_SEED_FROM_PEER);
	while (r->received < size) {
		long bad;

		n = read_full(fd, buf, BULK_CHUNK);
		if (n != BULK_CHUNK) {
			r->recv_err = n < 0 ? errno : ECONNABORTED;
			break;
		}
		bad = stream_verify(&s, buf, BULK_CHUNK);
		if (bad >= 0) {
			r->mismatch = r->received + bad;
			break;
		}
		r->received += BULK_CHUNK;
	}
	pthread_join(thr, NULL);
	if (r->received == size && !r->send_err) {
		if (read_full(fd, reply, sizeof(reply)) == sizeof(reply)) {
			r->peer_sum = reply[0];
			r->peer_bad = reply[1];
		} else {
			r->recv_err = errno ? errno : ECONNABORTED;
		}
	}
}

#endif /* _IVSHMEM_UTIL_H */
