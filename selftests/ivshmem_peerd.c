// SPDX-License-Identifier: GPL-2.0
/*
 * ivshmem_peerd: the far end for the AF_IVSHMEM test suite.  Listens on
 * the service ports of ivshmem_util.h and serves each connection in a child
 * process.  Prints "ready" once every port listens.
 */
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>

#include "ivshmem_util.h"

#define CHUNK	(64 * 1024)

static const uint32_t ports[] = {
	PEERD_PORT_ECHO, PEERD_PORT_BULK, PEERD_PORT_BYE, PEERD_PORT_SINK,
	PEERD_PORT_WHOAMI,
};

static void serve_echo(int fd)
{
	const char *busy = getenv("PEERD_BUSY_POLL_US");
	static char buf[CHUNK];
	ssize_t n;

	if (busy) {
		int us = atoi(busy);

		setsockopt(fd, SOL_SOCKET, SO_BUSY_POLL, &us, sizeof(us));
	}
	while ((n = recv(fd, buf, sizeof(buf), 0)) > 0)
		if (write_full(fd, buf, n) != n)
			break;
}

struct bulk_tx {
	int fd;
	uint64_t size;
	int err;
};

static void *bulk_sender(void *arg)
{
	struct bulk_tx *tx = arg;
	static char buf[CHUNK];
	struct stream s;
	uint64_t left = tx->size;

	stream_init(&s, BULK_SEED_FROM_PEER);
	while (left) {
		size_t n = left < CHUNK ? left : CHUNK;

		stream_fill(&s, buf, n);
		if (write_full(tx->fd, buf, n) != (ssize_t)n) {
			tx->err = errno;
			break;
		}
		left -= n;
	}
	return NULL;
}

/*
 * Receives u64 size, then sends and receives size bytes at once; after
 * both, sends the checksum of what it received and a mismatch count.
 */
static void serve_bulk(int fd)
{
	static char buf[CHUNK];
	struct bulk_tx tx = { .fd = fd };
	uint64_t size, left, reply[2];
	struct stream s;
	pthread_t thr;
	ssize_t n;

	if (read_full(fd, &size, sizeof(size)) != sizeof(size) || size % 8)
		return;
	tx.size = size;
	if (pthread_create(&thr, NULL, bulk_sender, &tx))
		return;
	stream_init(&s, BULK_SEED_TO_PEER);
	reply[1] = 0;
	for (left = size; left; left -= n) {
		n = read_full(fd, buf, left < CHUNK ? left : CHUNK);
		if (n <= 0)
			break;
		if (stream_verify(&s, buf, n) >= 0) {
			reply[1]++;
			break;
		}
	}
	pthread_join(thr, NULL);
	reply[0] = left ? 0 : s.sum;
	if (left)
		reply[1]++;
	write_full(fd, reply, sizeof(reply));
}

static void serve_sink(int fd)
{
	static char buf[CHUNK];
	struct stream s;
	uint64_t reply[2];
	ssize_t n;

	stream_init(&s, 0);
	while ((n = read_full(fd, buf, sizeof(buf))) > 0)
		stream_sum(&s, buf, n);
	reply[0] = s.bytes;
	reply[1] = s.sum;
	write_full(fd, reply, sizeof(reply));
}

static void serve(uint32_t port, int fd)
{
	switch (port) {
	case PEERD_PORT_ECHO:
		serve_echo(fd);
		break;
	case PEERD_PORT_BULK:
		serve_bulk(fd);
		break;
	case PEERD_PORT_BYE:
		write_full(fd, PEERD_BYE, strlen(PEERD_BYE));
		break;
	case PEERD_PORT_SINK:
		serve_sink(fd);
		break;
	case PEERD_PORT_WHOAMI: {
		char name[256] = "";

		gethostname(name, sizeof(name) - 1);
		strcat(name, "\n");
		write_full(fd, name, strlen(name));
		break;
	}
	}
	close(fd);
}

/* A TCP echo service on PEERD_PORT_ECHO too, for comparisons. */
static int tcp_listener(void)
{
	struct sockaddr_in in = {
		.sin_family = AF_INET,
		.sin_port = htons(PEERD_PORT_ECHO),
	};
	int one = 1, fd = socket(AF_INET, SOCK_STREAM, 0);

	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (fd < 0 || bind(fd, (struct sockaddr *)&in, sizeof(in)) ||
	    listen(fd, 16)) {
		if (fd >= 0)
			close(fd);
		return -1;
	}
	return fd;
}

int main(void)
{
	struct pollfd pfd[sizeof(ports) / sizeof(ports[0]) + 1];
	unsigned int i, nports = sizeof(ports) / sizeof(ports[0]);
	int fam = ivshmem_family();

	if (fam < 0) {
		perror("ivshmem_peerd: module not loaded");
		return 1;
	}
	signal(SIGCHLD, SIG_IGN);
	signal(SIGPIPE, SIG_IGN);
	for (i = 0; i < nports; i++) {
		struct sockaddr_ivshmem addr;

		ivshmem_addr(&addr, IVSHMEM_PEER_ANY, ports[i]);
		pfd[i].fd = socket(fam, SOCK_STREAM, 0);
		pfd[i].events = POLLIN;
		if (pfd[i].fd < 0 ||
		    bind(pfd[i].fd, (struct sockaddr *)&addr, sizeof(addr)) ||
		    listen(pfd[i].fd, 16)) {
			fprintf(stderr, "ivshmem_peerd: port %u: %s\n", ports[i],
				strerror(errno));
			return 1;
		}
	}
	/* The last slot: TCP echo (absent without a network: fd -1). */
	pfd[nports].fd = tcp_listener();
	pfd[nports].events = POLLIN;
	printf("ready\n");
	fflush(stdout);

	for (;;) {
		if (poll(pfd, nports + 1, -1) < 0) {
			if (errno == EINTR)
				continue;
			perror("poll");
			return 1;
		}
		for (i = 0; i <= nports; i++) {
			int fd, one = 1;

			if (!(pfd[i].revents & POLLIN))
				continue;
			fd = accept(pfd[i].fd, NULL, NULL);
			if (fd < 0)
				continue;
			if (i == nports)
				setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one,
					   sizeof(one));
			if (fork() == 0) {
				unsigned int j;

				for (j = 0; j <= nports; j++)
					close(pfd[j].fd);
				serve(i < nports ? ports[i] : PEERD_PORT_ECHO,
				      fd);
				_exit(0);
			}
			close(fd);
		}
	}
}
