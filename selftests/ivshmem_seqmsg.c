// SPDX-License-Identifier: GPL-2.0
/*
 * ivshmem_seqmsg: SOCK_SEQPACKET messages with their lengths and
 * checksums, for selftests/security.sh.
 *
 *   ivshmem_seqmsg [-s POLICY] [-b SNDBUF] [-p PATTERN] [-z MS] PEER PORT LEN...
 *	connects, prints "protected 0|1", sends one message of each LEN
 *	(bytes of a per-message sequence, or PATTERN repeated), printing
 *	"LEN SUM" for each, waits MS milliseconds and closes.
 *   ivshmem_seqmsg -l [-s POLICY] [-c BUF] [-n N] [-d MS] [-g FILE] PORT
 *	accepts one connection, prints "protected 0|1", then prints
 *	"LEN SUM" for each message received into a BUF-byte buffer (default
 *	4 MiB), with " trunc" when MSG_TRUNC was set and " noeor" when
 *	MSG_EOR was not; after the first N messages, waits MS milliseconds
 *	and then until FILE exists.
 *	Ends at EOF, or prints "recv: ERRNAME" and exits 1.
 *
 * SUM is FNV-1a (64 bits) over the bytes delivered.  Errors are printed
 * as "WHAT: ERRNAME" with exit status 1.
 */
#include <getopt.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ivshmem_util.h"

static int fail(const char *what)
{
	int err = errno;

	printf("%s: %s\n", what,
	       strerrorname_np(err) ? strerrorname_np(err) : "?");
	return 1;
}

static uint64_t fnv(const unsigned char *p, size_t n)
{
	uint64_t h = 0xcbf29ce484222325ULL;

	while (n--)
		h = (h ^ *p++) * 0x100000001b3ULL;
	return h;
}

static void fill(unsigned char *buf, size_t len, unsigned int msg,
		 const char *pattern)
{
	uint32_t x = 0x9e3779b9u * (msg + 1);
	size_t i, plen = pattern ? strlen(pattern) : 0;

	for (i = 0; i < len; i++) {
		if (plen) {
			buf[i] = pattern[i % plen];
			continue;
		}
		x ^= x << 13;
		x ^= x >> 17;
		x ^= x << 5;
		buf[i] = x;
	}
}

static void usage(void)
{
	fprintf(stderr,
		"usage: ivshmem_seqmsg [-s POLICY] [-b SNDBUF] [-p PATTERN] [-z MS] PEER PORT LEN...\n"
		"       ivshmem_seqmsg -l [-s POLICY] [-c BUF] [-n N] [-d MS] [-g FILE] PORT\n");
	exit(2);
}

static int protected(int fd)
{
	socklen_t plen = sizeof(int);
	int prot = -1;

	if (getsockopt(fd, ivshmem_family(), IVSHMEM_PROTECTED, &prot, &plen))
		return fail("getsockopt IVSHMEM_PROTECTED");
	printf("protected %d\n", prot);
	fflush(stdout);
	return 0;
}

static int receive(int fd, size_t bufsize, long first, long delay,
		   const char *go)
{
	unsigned char *buf = malloc(bufsize ? bufsize : 1);
	long count = 0;

	if (!buf)
		return fail("malloc");
	for (;;) {
		struct iovec iov = { buf, bufsize };
		struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1 };
		ssize_t n;

		if (count == first) {
			if (delay > 0)
				sleep_ms(delay);
			if (go)
				wait_for_file(go, 0);
		}
		n = recvmsg(fd, &msg, 0);
		if (n < 0)
			return fail("recv");
		if (n == 0 && !(msg.msg_flags & MSG_EOR))
			return 0;	/* EOF */
		printf("%zd %016llx%s%s\n", n,
		       (unsigned long long)fnv(buf, n),
		       msg.msg_flags & MSG_TRUNC ? " trunc" : "",
		       msg.msg_flags & MSG_EOR ? "" : " noeor");
		fflush(stdout);
		count++;
	}
}

int main(int argc, char **argv)
{
	struct sockaddr_ivshmem addr;
	const char *pattern = NULL, *go = NULL;
	long first = -1, delay = 0, linger = 0;
	size_t bufsize = 4 << 20;
	int listen_mode = 0, security = -1, sndbuf = 0;
	int c, fd, i;

	while ((c = getopt(argc, argv, "lb:c:d:g:n:p:s:z:")) != -1) {
		switch (c) {
		case 'l':
			listen_mode = 1;
			break;
		case 'b':
			sndbuf = atoi(optarg);
			break;
		case 'c':
			bufsize = strtoul(optarg, NULL, 0);
			break;
		case 'd':
			delay = atol(optarg);
			break;
		case 'g':
			go = optarg;
			break;
		case 'n':
			first = atol(optarg);
			break;
		case 'p':
			pattern = optarg;
			break;
		case 's':
			security = ivshmem_security_parse(optarg);
			if (security < 0)
				usage();
			break;
		case 'z':
			linger = atol(optarg);
			break;
		default:
			usage();
		}
	}
	if (argc - optind < (listen_mode ? 1 : 3))
		usage();
	fd = socket(ivshmem_family(), SOCK_SEQPACKET, 0);
	if (fd < 0)
		return fail("socket");
	if (security >= 0 &&
	    setsockopt(fd, ivshmem_family(), IVSHMEM_SECURITY, &security,
		       sizeof(security)))
		return fail("setsockopt IVSHMEM_SECURITY");
	if (sndbuf &&
	    setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf)))
		return fail("setsockopt SO_SNDBUF");
	if (listen_mode) {
		int lfd = fd;

		ivshmem_addr(&addr, IVSHMEM_PEER_ANY, atoi(argv[optind]));
		if (bind(lfd, (struct sockaddr *)&addr, sizeof(addr)))
			return fail("bind");
		if (listen(lfd, 1))
			return fail("listen");
		fd = accept(lfd, NULL, NULL);
		if (fd < 0)
			return fail("accept");
		close(lfd);
		if (protected(fd))
			return 1;
		return receive(fd, bufsize, first, delay, go);
	}
	ivshmem_addr(&addr, atoi(argv[optind]), atoi(argv[optind + 1]));
	if (connect(fd, (struct sockaddr *)&addr, sizeof(addr)))
		return fail("connect");
	if (protected(fd))
		return 1;
	for (i = optind + 2; i < argc; i++) {
		size_t len = strtoul(argv[i], NULL, 0);
		unsigned char *buf = malloc(len ? len : 1);
		ssize_t n;

		if (!buf)
			return fail("malloc");
		fill(buf, len, i - optind - 2, pattern);
		n = send(fd, buf, len, MSG_NOSIGNAL);
		if (n < 0)
			return fail("send");
		printf("%zd %016llx\n", n, (unsigned long long)fnv(buf, len));
		fflush(stdout);
		free(buf);
	}
	if (linger > 0)
		sleep_ms(linger);
	close(fd);
	return 0;
}
