// SPDX-License-Identifier: GPL-2.0
/*
 * ivshmem-demo: a message and a timed bulk transfer over AF_IVSHMEM.
 *
 *   ivshmem-demo server [PORT]          serve one client, then exit
 *   ivshmem-demo client PEER [PORT] [MIB] [MESSAGE]
 *
 * The client sends a line of text, which the server prints, then MIB MiB
 * of data; the server replies with the byte count it received, and the
 * client prints the throughput.
 */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "../lib/ivshmem.h"

#define DEMO_PORT	4000
#define CHUNK		(256 * 1024)

static int fail(const char *what)
{
	fprintf(stderr, "ivshmem-demo: %s: %s\n", what, strerror(errno));
	return 1;
}

static int io_full(int fd, void *buf, size_t len, int out)
{
	char *p = buf;

	while (len) {
		ssize_t n = out ? send(fd, p, len, MSG_NOSIGNAL) :
				  recv(fd, p, len, 0);

		if (n <= 0)
			return -1;
		p += n;
		len -= n;
	}
	return 0;
}

static int server(uint32_t port)
{
	static char buf[CHUNK];
	struct sockaddr_ivshmem addr;
	socklen_t alen = sizeof(addr);
	uint64_t total = 0;
	uint32_t len;
	int lfd, fd;
	ssize_t n;

	lfd = socket(ivshmem_family(), SOCK_STREAM, 0);
	if (lfd < 0)
		return fail("socket");
	ivshmem_addr(&addr, IVSHMEM_PEER_ANY, port);
	if (bind(lfd, (struct sockaddr *)&addr, sizeof(addr)) ||
	    listen(lfd, 1))
		return fail("bind/listen");
	printf("guest peer %ld: listening on AF_IVSHMEM port %u\n",
	       ivshmem_local_peer(), port);
	fflush(stdout);
	fd = accept(lfd, (struct sockaddr *)&addr, &alen);
	if (fd < 0)
		return fail("accept");
	if (io_full(fd, &len, sizeof(len), 0) || len >= sizeof(buf) ||
	    io_full(fd, buf, len, 0))
		return fail("reading the message");
	buf[len] = 0;
	printf("guest peer %ld: received from peer %u: \"%s\"\n",
	       ivshmem_local_peer(), addr.sivshm_peer, buf);
	while ((n = recv(fd, buf, sizeof(buf), 0)) > 0)
		total += n;
	if (n < 0)
		return fail("recv");
	if (io_full(fd, &total, sizeof(total), 1))
		return fail("reply");
	printf("guest peer %ld: received %llu bytes of bulk data\n",
	       ivshmem_local_peer(), (unsigned long long)total);
	close(fd);
	close(lfd);
	return 0;
}

static int client(uint32_t peer, uint32_t port, uint64_t mib,
		  const char *msg)
{
	static char buf[CHUNK];
	struct sockaddr_ivshmem addr;
	struct timespec t0, t1;
	uint64_t left = mib << 20, got = 0;
	uint32_t len = strlen(msg);
	double secs;
	int fd;

	fd = socket(ivshmem_family(), SOCK_STREAM, 0);
	if (fd < 0)
		return fail("socket");
	ivshmem_addr(&addr, peer, port);
	if (connect(fd, (struct sockaddr *)&addr, sizeof(addr)))
		return fail("connect");
	printf("guest peer %ld: connected to peer %u port %u, sending \"%s\"\n",
	       ivshmem_local_peer(), peer, port, msg);
	if (io_full(fd, &len, sizeof(len), 1) || io_full(fd, (void *)msg, len, 1))
		return fail("send");
	memset(buf, 0x5a, sizeof(buf));
	clock_gettime(CLOCK_MONOTONIC, &t0);
	while (left) {
		size_t n = left < sizeof(buf) ? left : sizeof(buf);

		if (io_full(fd, buf, n, 1))
			return fail("bulk send");
		left -= n;
	}
	shutdown(fd, SHUT_WR);
	if (io_full(fd, &got, sizeof(got), 0))
		return fail("reply");
	clock_gettime(CLOCK_MONOTONIC, &t1);
	secs = (t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9;
	printf("guest peer %ld: sent %llu MiB in %.2f s: %.0f Mbit/s (peer confirmed %llu bytes)\n",
	       ivshmem_local_peer(), (unsigned long long)mib, secs,
	       (mib << 20) * 8 / secs / 1e6, (unsigned long long)got);
	close(fd);
	return got == mib << 20 ? 0 : 1;
}

int main(int argc, char **argv)
{
	if (ivshmem_family() < 0)
		return fail("af_ivshmem module not loaded");
	if (argc >= 2 && !strcmp(argv[1], "server"))
		return server(argc > 2 ? atoi(argv[2]) : DEMO_PORT);
	if (argc >= 3 && !strcmp(argv[1], "client"))
		return client(strtoul(argv[2], NULL, 0),
			      argc > 3 ? atoi(argv[3]) : DEMO_PORT,
			      argc > 4 ? strtoull(argv[4], NULL, 0) : 64,
			      argc > 5 ? argv[5] : "Hello from guest 1");
	fprintf(stderr,
		"usage: ivshmem-demo server [PORT]\n"
		"       ivshmem-demo client PEER [PORT] [MIB] [MESSAGE]\n");
	return 2;
}
