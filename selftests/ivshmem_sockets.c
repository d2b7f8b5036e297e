// SPDX-License-Identifier: GPL-2.0
/*
 * ivshmem_sockets - holds a known set of AF_IVSHMEM sockets open for the
 * diagnostics test (selftests/diag.sh), which then checks what ivss and
 * the fabric view report about them.
 *
 *   ivshmem_sockets server BASE
 *	stream listener on BASE, seqpacket listener on BASE+1, datagram
 *	socket bound to BASE+2; accepts two stream connections and one
 *	seqpacket connection and never reads from them.
 *   ivshmem_sockets client PEER BASE
 *	stream connection 1: sends STREAM_BYTES; stream connection 2:
 *	shutdown(SHUT_WR); seqpacket connection: one SEQ_BYTES message;
 *	datagram socket: one DGRAM_BYTES datagram to BASE+2.
 *
 * Both print "peer ID" and, for each socket, "NAME PORT", then "ready",
 * and wait until killed.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../tools/lib/ivshmem.h"

#define STREAM_BYTES	1000
#define SEQ_BYTES	64
#define DGRAM_BYTES	100

static void die(const char *what)
{
	fprintf(stderr, "ivshmem_sockets: %s: %s\n", what, strerror(errno));
	exit(1);
}

static int new_socket(int type)
{
	int fd = socket(ivshmem_family(), type, 0);

	if (fd < 0)
		die("socket");
	return fd;
}

static unsigned int local_port(int fd)
{
	struct sockaddr_ivshmem addr;
	socklen_t len = sizeof(addr);

	if (getsockname(fd, (struct sockaddr *)&addr, &len))
		die("getsockname");
	return addr.sivshm_port;
}

static int bound_socket(int type, unsigned int port)
{
	struct sockaddr_ivshmem addr;
	int fd = new_socket(type);

	ivshmem_addr(&addr, IVSHMEM_PEER_ANY, port);
	if (bind(fd, (struct sockaddr *)&addr, sizeof(addr)))
		die("bind");
	return fd;
}

static int connected_socket(int type, unsigned int peer, unsigned int port)
{
	struct sockaddr_ivshmem addr;
	int fd = new_socket(type);

	ivshmem_addr(&addr, peer, port);
	if (connect(fd, (struct sockaddr *)&addr, sizeof(addr)))
		die("connect");
	return fd;
}

static void send_pattern(int fd, size_t len, const struct sockaddr_ivshmem *to)
{
	char buf[STREAM_BYTES];
	ssize_t n;

	memset(buf, 'x', sizeof(buf));
	n = sendto(fd, buf, len, 0, (const struct sockaddr *)to,
		   to ? sizeof(*to) : 0);
	if (n != (ssize_t)len)
		die("send");
}

static void server(unsigned int base)
{
	int stream = bound_socket(SOCK_STREAM, base);
	int seq = bound_socket(SOCK_SEQPACKET, base + 1);
	int dgram = bound_socket(SOCK_DGRAM, base + 2);

	if (listen(stream, 8) || listen(seq, 8))
		die("listen");
	printf("stream_listener %u\nseq_listener %u\ndgram %u\nready\n",
	       local_port(stream), local_port(seq), local_port(dgram));
	fflush(stdout);
	if (accept(stream, NULL, NULL) < 0 || accept(stream, NULL, NULL) < 0 ||
	    accept(seq, NULL, NULL) < 0)
		die("accept");
	printf("accepted\n");
	fflush(stdout);
}

static void client(unsigned int peer, unsigned int base)
{
	int s1 = connected_socket(SOCK_STREAM, peer, base);
	int s2 = connected_socket(SOCK_STREAM, peer, base);
	int seq = connected_socket(SOCK_SEQPACKET, peer, base + 1);
	int dgram = new_socket(SOCK_DGRAM);
	struct sockaddr_ivshmem to;

	send_pattern(s1, STREAM_BYTES, NULL);
	if (shutdown(s2, SHUT_WR))
		die("shutdown");
	send_pattern(seq, SEQ_BYTES, NULL);
	ivshmem_addr(&to, peer, base + 2);
	send_pattern(dgram, DGRAM_BYTES, &to);
	printf("stream_data %u\nstream_halfclosed %u\nseq %u\ndgram %u\nready\n",
	       local_port(s1), local_port(s2), local_port(seq),
	       local_port(dgram));
	fflush(stdout);
}

int main(int argc, char **argv)
{
	long self = ivshmem_local_peer();

	if (self < 0)
		die("local peer");
	printf("peer %ld\n", self);
	if (argc == 3 && !strcmp(argv[1], "server")) {
		server(strtoul(argv[2], NULL, 0));
	} else if (argc == 4 && !strcmp(argv[1], "client")) {
		client(strtoul(argv[2], NULL, 0), strtoul(argv[3], NULL, 0));
	} else {
		fprintf(stderr, "usage: ivshmem_sockets server BASE | client PEER BASE\n");
		return 2;
	}
	for (;;)
		pause();
}
