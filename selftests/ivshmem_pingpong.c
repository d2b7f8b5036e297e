// SPDX-License-Identifier: GPL-2.0
/*
 * ivshmem_pingpong: 1-byte ping-pong with ivshmem_peerd's echo service,
 * over AF_IVSHMEM or, for comparison, TCP.
 *
 *   ivshmem_pingpong [-r REGION] [-b BUSY_US] [-t IPV4] [-w SECONDS] PEER COUNT
 *
 * -b sets SO_BUSY_POLL on the socket; -t uses TCP to IPV4 port 5000
 * instead (PEER is then ignored); -w is the watchdog: if no round trip
 * completes for that long (default 10 s), it prints "stall" and exits 1.
 * Prints "ok COUNT round trips p50=X p99=Y max=Z us" and exits 0.
 */
#include <arpa/inet.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdatomic.h>
#include <stdio.h>
#include <time.h>

#include "ivshmem_util.h"

static atomic_ulong done;
static unsigned int watchdog_s = 10;

static void *watchdog(void *arg)
{
	unsigned long last = ~0UL;
	unsigned int still = 0;

	(void)arg;
	for (;;) {
		unsigned long now;

		sleep(1);
		now = atomic_load(&done);
		still = now == last ? still + 1 : 0;
		last = now;
		if (still >= watchdog_s) {
			printf("stall: no progress for %u s after %lu round trips\n",
			       watchdog_s, now);
			fflush(stdout);
			_exit(1);
		}
	}
	return NULL;
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000000ULL + ts.tv_nsec;
}

int main(int argc, char **argv)
{
	unsigned int region = IVSHMEM_REGION_ANY, busy = 0;
	const char *tcp = NULL;
	unsigned long i, count;
	uint32_t *lat;
	pthread_t thr;
	int fd, c;

	while ((c = getopt(argc, argv, "r:b:t:w:")) != -1) {
		switch (c) {
		case 'r':
			region = strtoul(optarg, NULL, 0);
			break;
		case 'b':
			busy = strtoul(optarg, NULL, 0);
			break;
		case 't':
			tcp = optarg;
			break;
		case 'w':
			watchdog_s = strtoul(optarg, NULL, 0);
			break;
		default:
			return 2;
		}
	}
	if (argc - optind != 2) {
		fprintf(stderr, "usage: ivshmem_pingpong [-r REGION] [-b BUSY_US] [-t IPV4] [-w S] PEER COUNT\n");
		return 2;
	}
	count = strtoul(argv[optind + 1], NULL, 0);
	lat = calloc(count ? count : 1, sizeof(*lat));
	if (!lat)
		return 1;

	if (tcp) {
		struct sockaddr_in in = {
			.sin_family = AF_INET,
			.sin_port = htons(PEERD_PORT_ECHO),
		};
		int one = 1;

		inet_pton(AF_INET, tcp, &in.sin_addr);
		fd = socket(AF_INET, SOCK_STREAM, 0);
		if (fd < 0 || connect(fd, (struct sockaddr *)&in, sizeof(in))) {
			perror("tcp connect");
			return 1;
		}
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	} else {
		struct sockaddr_ivshmem addr;

		ivshmem_addr(&addr, strtoul(argv[optind], NULL, 0),
			     PEERD_PORT_ECHO);
		addr.sivshm_region = region;
		fd = socket(ivshmem_family(), SOCK_STREAM, 0);
		if (fd < 0 || connect(fd, (struct sockaddr *)&addr, sizeof(addr))) {
			perror("connect");
			return 1;
		}
	}
	if (busy && setsockopt(fd, SOL_SOCKET, SO_BUSY_POLL, &busy,
			       sizeof(busy))) {
		perror("SO_BUSY_POLL");
		return 1;
	}
	pthread_create(&thr, NULL, watchdog, NULL);
	for (i = 0; i < count; i++) {
		uint64_t t0 = now_ns();
		char b = (char)i;

		if (send(fd, &b, 1, 0) != 1 || read_full(fd, &b, 1) != 1 ||
		    b != (char)i) {
			printf("error after %lu round trips: %s\n", i,
			       strerror(errno));
			return 1;
		}
		lat[i] = (uint32_t)((now_ns() - t0) / 1000);
		atomic_store(&done, i + 1);
	}
	qsort(lat, count, sizeof(*lat), cmp_u32);
	printf("ok %lu round trips p50=%u p99=%u max=%u us\n", count,
	       count ? lat[count / 2] : 0, count ? lat[count * 99 / 100] : 0,
	       count ? lat[count - 1] : 0);
	return 0;
}
