/* SPDX-License-Identifier: GPL-2.0 */
/*
 * AF_IVSHMEM conformance suite: shared definitions.
 *
 * Modelled on tools/testing/vsock/vsock_test.c: the same binary runs as a
 * server and as a client, in one guest (both ends inside one guest) or in
 * two guests (across the region), and both walk the same table of small
 * named cases.  The two ends talk over a TCP control connection to agree
 * on what happens when ("LISTENING", "SENT", ...).
 *
 * Each case runs in a forked child on each side, with an alarm, so a case
 * that fails, hangs or crashes costs only its own TAP line.  The client
 * prints the TAP stream; a case passes only if both ends passed.
 */
#ifndef _IVSHMEM_CONFORMANCE_H
#define _IVSHMEM_CONFORMANCE_H

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>

#include "../../tools/lib/ivshmem.h"

/**
 * struct conf_ctx - what a case knows about its run
 * @family: the AF_IVSHMEM family number (also the option level)
 * @self: this guest's peer id on region 0
 * @peer: the other end's peer id (== @self when both ends share a guest)
 * @port: a port reserved for this case (the same on both ends); a case
 *	that needs more uses @port + 1 ... @port + CONF_PORTS_PER_CASE - 1
 * @ctl: the control connection to the other end (a TCP socket)
 * @local: true when both ends run in the same guest
 * @client: true on the client end
 */
struct conf_ctx {
	int family;
	uint32_t self;
	uint32_t peer;
	uint32_t port;
	int ctl;
	bool local;
	bool client;
};

#define CONF_PORTS_PER_CASE	16

/**
 * struct conf_case - one behaviour, pinned by a client and a server part
 * @name: what the case shows, as it appears in the TAP line
 * @run_client: the client end (NULL: nothing to do there)
 * @run_server: the server end (NULL: nothing to do there)
 * @timeout: seconds before the case is failed (0: CONF_DEFAULT_TIMEOUT)
 */
struct conf_case {
	const char *name;
	void (*run_client)(struct conf_ctx *ctx);
	void (*run_server)(struct conf_ctx *ctx);
	unsigned int timeout;
};

#define CONF_DEFAULT_TIMEOUT	30

/* The case tables, one per file, each ending with an all-zero entry. */
extern const struct conf_case conf_stream_cases[];
extern const struct conf_case conf_seqpacket_cases[];
extern const struct conf_case conf_dgram_cases[];

/*
 * Failing: conf_fail() prints "# <side>: <message>" to stderr (the client
 * shows it as a TAP diagnostic) and ends the case's child with status 1.
 * The CHECK macros fail with the file, line and the failed expression.
 */
void __attribute__((noreturn, format(printf, 3, 4)))
conf_fail_at(const char *file, int line, const char *fmt, ...);
#define conf_fail(...) conf_fail_at(__FILE__, __LINE__, __VA_ARGS__)

/*
 * conf_skip(): the case does not apply here (prints "# <side>: SKIP <why>"
 * and ends the child with CONF_SKIP_STATUS).  The case is reported as
 * "ok N name # SKIP" unless the other end failed.
 */
#define CONF_SKIP_STATUS	77
void __attribute__((noreturn, format(printf, 1, 2)))
conf_skip(const char *fmt, ...);

/* CHECK(cond): fails the case if !cond. */
#define CHECK(cond) \
	do { if (!(cond)) conf_fail("CHECK(%s) failed", #cond); } while (0)
/* CHECK_EQ(a, b): compares two integers, printing both on failure. */
#define CHECK_EQ(a, b) \
	do { long long _a = (a), _b = (b); if (_a != _b) \
		conf_fail("%s == %lld, expected %s == %lld", #a, _a, #b, _b); \
	} while (0)
/* CHECK_ERR(call, err): call must return -1 with errno == err. */
#define CHECK_ERR(call, err) \
	do { long long _r; errno = 0; _r = (call); \
		if (_r != -1 || errno != (err)) \
			conf_fail("%s returned %lld errno %d (%s), expected -1 %s", \
				  #call, _r, errno, strerror(errno), #err); \
	} while (0)
/* CHECK_OK(call): call must return >= 0; returns its value. */
#define CHECK_OK(call) \
	({ long long _r; errno = 0; _r = (call); \
		if (_r < 0) conf_fail("%s failed: %s", #call, strerror(errno)); \
		_r; })

/* Control connection: one line (without '\n') each way. */
void ctl_send(struct conf_ctx *ctx, const char *line);
void ctl_expect(struct conf_ctx *ctx, const char *line);	/* fails if not */
void ctl_send_u64(struct conf_ctx *ctx, uint64_t value);
uint64_t ctl_recv_u64(struct conf_ctx *ctx);

/* Sockets. */
struct sockaddr_ivshmem conf_addr(struct conf_ctx *ctx, uint32_t peer,
				  uint32_t port);
/* A socket of @type bound to @port (any peer), listening (not for
 * SOCK_DGRAM) with @backlog.
 */
int conf_listen(struct conf_ctx *ctx, int type, uint32_t port, int backlog);
/* A socket of @type connected to the other end's @port. */
int conf_connect(struct conf_ctx *ctx, int type, uint32_t port);
/* The server end's usual start: listen on ctx->port, say "LISTENING",
 * accept one connection; the client end's: expect "LISTENING", connect.
 */
int conf_accept_one(struct conf_ctx *ctx, int type);
int conf_connect_one(struct conf_ctx *ctx, int type);

/* Full-length I/O that fails the case on error or short transfer. */
void send_all(int fd, const void *buf, size_t len);
void recv_all(int fd, void *buf, size_t len);
/* Pattern helpers: byte i of a stream seeded with @seed. */
void fill_pattern(void *buf, size_t len, uint64_t seed, uint64_t offset);
bool check_pattern(const void *buf, size_t len, uint64_t seed,
		   uint64_t offset);

#endif /* _IVSHMEM_CONFORMANCE_H */
