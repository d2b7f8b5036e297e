// SPDX-License-Identifier: GPL-2.0
/*
 * ivshmem_churn - channel allocation under churn and exhaustion, against
 * ivshmem_peerd, for selftests/rebalance.sh.
 *
 *   ivshmem_churn cycles PEER COUNT
 *	COUNT times: connect to the peer's "bye" port, read the greeting,
 *	close.  Prints "ok cycles=COUNT", or "error at N: connect=E
 *	read=E" and exits 1.
 *   ivshmem_churn scatter PEER COUNT
 *	opens COUNT echo connections, closes every other one, opens
 *	COUNT / 2 again, checks every connection echoes, then closes them
 *	all in reverse order: free space ends fragmented and then whole.
 *	Prints "ok open=COUNT".
 *   ivshmem_churn fill PEER MAX WAIT_MS [GO_FILE]
 *	opens echo connections until connect() fails (or MAX are open);
 *	prints "filled N errno=E", checks that every connection still echoes
 *	("echo ok N"), then retries one more connection every 200 ms while
 *	it fails with ENOBUFS, for up to WAIT_MS ("after wait: connect=E":
 *	idle channels shrink on the rebalancer's timer, whose pace a loaded
 *	host stretches), checks all again and closes them.  With GO_FILE,
 *	it prints "holding" after that line and keeps every connection open
 *	until GO_FILE exists (up to 600 s), for a look at the full region.
 */
#include <stdbool.h>
#include <stdio.h>

#include "ivshmem_util.h"

#define ECHO_BYTES	64

static const char *errname(int err)
{
	return err ? strerrorname_np(err) : "0";
}

/* Returns a connected socket, or -errno. */
static int dial(unsigned int peer, unsigned int port)
{
	struct sockaddr_ivshmem addr;
	int fd = socket(ivshmem_family(), SOCK_STREAM, 0);

	if (fd < 0)
		return -errno;
	ivshmem_addr(&addr, peer, port);
	if (connect(fd, (struct sockaddr *)&addr, sizeof(addr))) {
		int err = errno;

		close(fd);
		return -err;
	}
	return fd;
}

/* One round trip of a pattern that names the connection. */
static bool echoes(int fd, unsigned int id);

/* An echo connection the server has accepted (it answered a round trip:
 * a client that only connects would fill the server's accept backlog,
 * which refuses at once), or -errno; -EPROTO if it does not echo.
 */
static int dial_echo(unsigned int peer, unsigned int id)
{
	int fd = dial(peer, PEERD_PORT_ECHO);

	if (fd >= 0 && !echoes(fd, id)) {
		close(fd);
		return -EPROTO;
	}
	return fd;
}

static bool echoes(int fd, unsigned int id)
{
	unsigned char out[ECHO_BYTES], in[ECHO_BYTES];
	unsigned int i;

	for (i = 0; i < ECHO_BYTES; i++)
		out[i] = (unsigned char)(id * 31 + i);
	return write_full(fd, out, sizeof(out)) == sizeof(out) &&
	       read_full(fd, in, sizeof(in)) == sizeof(in) &&
	       !memcmp(in, out, sizeof(in));
}

static int all_echo(const int *fds, unsigned int n)
{
	unsigned int i, good = 0;

	for (i = 0; i < n; i++)
		if (fds[i] >= 0 && echoes(fds[i], i))
			good++;
	return good;
}

static int cycles(unsigned int peer, unsigned int count)
{
	char buf[sizeof(PEERD_BYE)];
	unsigned int i;

	for (i = 0; i < count; i++) {
		int fd = dial(peer, PEERD_PORT_BYE);
		ssize_t got;

		if (fd < 0) {
			printf("error at %u: connect=%s read=0\n", i,
			       errname(-fd));
			return 1;
		}
		got = read_full(fd, buf, strlen(PEERD_BYE));
		close(fd);
		if (got != (ssize_t)strlen(PEERD_BYE)) {
			printf("error at %u: connect=0 read=%s\n", i,
			       got < 0 ? errname(errno) : "short");
			return 1;
		}
	}
	printf("ok cycles=%u\n", count);
	return 0;
}

static int scatter(unsigned int peer, unsigned int count)
{
	unsigned int i, n = 0, open = 0;
	int *fds = calloc(count + count / 2, sizeof(int));

	if (!fds)
		return 1;
	for (i = 0; i < count; i++, n++)
		fds[n] = dial_echo(peer, n);
	for (i = 0; i < count; i += 2) {
		if (fds[i] >= 0)
			close(fds[i]);
		fds[i] = -1;
	}
	for (i = 0; i < count / 2; i++, n++)
		fds[n] = dial_echo(peer, n);
	for (i = 0; i < n; i++)
		if (fds[i] >= 0)
			open++;
	if (open != count || all_echo(fds, n) != (int)count) {
		printf("error: open=%u echo=%d\n", open, all_echo(fds, n));
		return 1;
	}
	while (n--)
		if (fds[n] >= 0)
			close(fds[n]);
	printf("ok open=%u\n", count);
	return 0;
}

/* Connects until something other than ENOBUFS, or wait_ms have passed. */
static int dial_echo_patiently(unsigned int peer, unsigned int id,
			       unsigned int wait_ms)
{
	uint64_t end = monotonic_ms() + wait_ms;
	int fd;

	for (;;) {
		fd = dial_echo(peer, id);
		if (fd != -ENOBUFS || monotonic_ms() >= end)
			return fd;
		sleep_ms(200);
	}
}

static int fill(unsigned int peer, unsigned int max, unsigned int wait_ms,
		const char *go)
{
	int *fds = calloc(max + 1, sizeof(int));
	unsigned int n = 0;
	int fd = 0;

	if (!fds)
		return 1;
	while (n < max) {
		fd = dial_echo(peer, n);
		if (fd < 0)
			break;
		fds[n++] = fd;
	}
	printf("filled %u errno=%s\n", n, errname(fd < 0 ? -fd : 0));
	printf("echo ok %d\n", all_echo(fds, n));
	fflush(stdout);
	fd = dial_echo_patiently(peer, n, wait_ms);
	printf("after wait: connect=%s\n", errname(fd < 0 ? -fd : 0));
	if (fd >= 0)
		fds[n++] = fd;
	if (go) {
		printf("holding\n");
		fflush(stdout);
		if (wait_for_file(go, 600 * 1000))
			printf("no %s after 600 s\n", go);
	}
	printf("echo ok %d\n", all_echo(fds, n));
	while (n--)
		close(fds[n]);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc == 4 && !strcmp(argv[1], "cycles"))
		return cycles(strtoul(argv[2], NULL, 0), strtoul(argv[3], NULL, 0));
	if (argc == 4 && !strcmp(argv[1], "scatter"))
		return scatter(strtoul(argv[2], NULL, 0), strtoul(argv[3], NULL, 0));
	if ((argc == 5 || argc == 6) && !strcmp(argv[1], "fill"))
		return fill(strtoul(argv[2], NULL, 0), strtoul(argv[3], NULL, 0),
			    strtoul(argv[4], NULL, 0), argc == 6 ? argv[5] : NULL);
	fprintf(stderr, "usage: ivshmem_churn cycles|scatter PEER COUNT\n"
		"       ivshmem_churn fill PEER MAX WAIT_MS [GO_FILE]\n");
	return 2;
}
