// SPDX-License-Identifier: GPL-2.0
/*
 * ivshmem-nc: netcat for AF_IVSHMEM.
 *
 *   ivshmem-nc [-r REGION] [-w MS] PEER PORT   connect, then relay
 *   ivshmem-nc -l [-r REGION] PORT             accept one connection, relay
 *
 * Standard input goes to the socket (then SHUT_WR at its end) and the
 * socket to standard output, until both directions are done.  Errors are
 * printed as "ivshmem-nc: WHAT: ERRNAME (message)" and exit with status 1,
 * so scripts can check the exact errno.  -q: no "connected" / "accepted"
 * line on standard error.  -w MS: give up connecting after MS
 * milliseconds (IVSHMEM_CONNECT_TIMEOUT_MS).  -s off|prefer|require:
 * the socket's IVSHMEM_SECURITY.  -P: print "protected 0|1" on standard
 * error once connected (IVSHMEM_PROTECTED).
 */
#include <getopt.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>

#include "../lib/ivshmem.h"

static int quiet;

static int fail(const char *what)
{
	int err = errno;

	fprintf(stderr, "ivshmem-nc: %s: %s (%s)\n", what,
		strerrorname_np(err) ? strerrorname_np(err) : "?",
		strerror(err));
	return 1;
}

static int relay(int fd)
{
	struct pollfd pfd[2] = {
		{ .fd = STDIN_FILENO, .events = POLLIN },
		{ .fd = fd, .events = POLLIN },
	};
	static char buf[64 * 1024];
	int in_open = 1, sock_open = 1;

	while (in_open || sock_open) {
		ssize_t n;

		pfd[0].fd = in_open ? STDIN_FILENO : -1;
		pfd[1].fd = sock_open ? fd : -1;
		if (poll(pfd, 2, -1) < 0)
			return fail("poll");
		if (pfd[0].revents) {
			n = read(STDIN_FILENO, buf, sizeof(buf));
			if (n < 0)
				return fail("read stdin");
			if (n == 0) {
				in_open = 0;
				if (shutdown(fd, SHUT_WR))
					return fail("shutdown");
			} else {
				char *p = buf;

				while (n > 0) {
					ssize_t w = send(fd, p, n, MSG_NOSIGNAL);

					if (w < 0)
						return fail("send");
					p += w;
					n -= w;
				}
			}
		}
		if (pfd[1].revents) {
			n = recv(fd, buf, sizeof(buf), 0);
			if (n < 0)
				return fail("recv");
			if (n == 0) {
				sock_open = 0;
			} else if (fwrite(buf, 1, n, stdout) != (size_t)n ||
				   fflush(stdout)) {
				return fail("write stdout");
			}
		}
	}
	return 0;
}

static void usage(void)
{
	fprintf(stderr,
		"usage: ivshmem-nc [-qP] [-s POLICY] [-r REGION] [-w MS] PEER PORT\n"
		"       ivshmem-nc [-qP] [-s POLICY] -l [-r REGION] PORT\n");
	exit(2);
}

int main(int argc, char **argv)
{
	unsigned int region = IVSHMEM_REGION_ANY;
	struct sockaddr_ivshmem addr;
	socklen_t len = sizeof(addr);
	int listen_mode = 0, fd, c, security = -1, show_prot = 0, prot;
	socklen_t plen = sizeof(prot);
	uint64_t timeout_ms = 0;

	while ((c = getopt(argc, argv, "lqr:w:s:P")) != -1) {
		switch (c) {
		case 's':
			security = ivshmem_security_parse(optarg);
			if (security < 0)
				usage();
			break;
		case 'P':
			show_prot = 1;
			break;
		case 'l':
			listen_mode = 1;
			break;
		case 'q':
			quiet = 1;
			break;
		case 'r':
			region = strtoul(optarg, NULL, 0);
			break;
		case 'w':
			timeout_ms = strtoull(optarg, NULL, 0);
			break;
		default:
			usage();
		}
	}
	if (argc - optind != (listen_mode ? 1 : 2))
		usage();
	if (ivshmem_family() < 0)
		return fail("af_ivshmem module");
	fd = socket(ivshmem_family(), SOCK_STREAM, 0);
	if (fd < 0)
		return fail("socket");
	if (security >= 0 &&
	    setsockopt(fd, ivshmem_family(), IVSHMEM_SECURITY, &security,
		       sizeof(security)))
		return fail("setsockopt IVSHMEM_SECURITY");

	if (listen_mode) {
		int lfd = fd;

		ivshmem_addr(&addr, IVSHMEM_PEER_ANY, strtoul(argv[optind], NULL, 0));
		addr.sivshm_region = region;
		if (bind(lfd, (struct sockaddr *)&addr, sizeof(addr)))
			return fail("bind");
		if (listen(lfd, 1))
			return fail("listen");
		fd = accept(lfd, (struct sockaddr *)&addr, &len);
		if (fd < 0)
			return fail("accept");
		close(lfd);
		if (!quiet)
			fprintf(stderr, "accepted peer %u port %u region %u\n",
				addr.sivshm_peer, addr.sivshm_port,
				addr.sivshm_region);
	} else {
		ivshmem_addr(&addr, strtoul(argv[optind], NULL, 0),
			     strtoul(argv[optind + 1], NULL, 0));
		addr.sivshm_region = region;
		if (timeout_ms &&
		    setsockopt(fd, ivshmem_family(), IVSHMEM_CONNECT_TIMEOUT_MS,
			       &timeout_ms, sizeof(timeout_ms)))
			return fail("setsockopt");
		if (connect(fd, (struct sockaddr *)&addr, sizeof(addr)))
			return fail("connect");
		if (!quiet && !getpeername(fd, (struct sockaddr *)&addr, &len))
			fprintf(stderr, "connected to peer %u port %u region %u\n",
				addr.sivshm_peer, addr.sivshm_port,
				addr.sivshm_region);
	}
	if (show_prot) {
		if (getsockopt(fd, ivshmem_family(), IVSHMEM_PROTECTED, &prot,
			       &plen))
			return fail("getsockopt IVSHMEM_PROTECTED");
		fprintf(stderr, "protected %d\n", prot);
	}
	return relay(fd);
}
