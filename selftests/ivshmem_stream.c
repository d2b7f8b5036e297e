// SPDX-License-Identifier: GPL-2.0
/*
 * ivshmem_stream: one verified bulk transfer with ivshmem_peerd, for
 * tests that drive several guests from a script.
 *
 *   ivshmem_stream [-r REGION] [-p PORT] [-w FILE] PEER MIB
 *
 * -p binds the socket to local port PORT first (tests that pick
 * connections by port).  -w: once connected, waits until FILE exists
 * before the transfer (tests that need a connection set up, and idle,
 * before something else starts).
 * Prints "ok bytes=N" and exits 0, or "error connect=E send=E recv=E
 * mismatch=OFFSET peer_bad=N after N bytes" (E: errno names, or 0) and
 * exits 1.
 */
#include <stdio.h>
#include <time.h>

#include "ivshmem_util.h"

static const char *errname(int err)
{
	return err ? strerrorname_np(err) : "0";
}

int main(int argc, char **argv)
{
	unsigned int region = IVSHMEM_REGION_ANY, port = IVSHMEM_PORT_ANY;
	const char *go = NULL;
	struct sockaddr_ivshmem addr;
	struct bulk_result r = { .mismatch = -1 };
	int fd, connect_err = 0;

	while (argc >= 5 && (!strcmp(argv[1], "-r") || !strcmp(argv[1], "-p") ||
			     !strcmp(argv[1], "-w"))) {
		if (argv[1][1] == 'r')
			region = strtoul(argv[2], NULL, 0);
		else if (argv[1][1] == 'p')
			port = strtoul(argv[2], NULL, 0);
		else
			go = argv[2];
		argv += 2;
		argc -= 2;
	}
	if (argc != 3) {
		fprintf(stderr, "usage: ivshmem_stream [-r REGION] [-p PORT] [-w FILE] PEER MIB\n");
		return 2;
	}
	fd = socket(ivshmem_family(), SOCK_STREAM, 0);
	if (fd >= 0 && port != IVSHMEM_PORT_ANY) {
		ivshmem_addr(&addr, IVSHMEM_PEER_ANY, port);
		addr.sivshm_region = region;
		if (bind(fd, (struct sockaddr *)&addr, sizeof(addr)))
			connect_err = errno;
	}
	ivshmem_addr(&addr, strtoul(argv[1], NULL, 0), PEERD_PORT_BULK);
	addr.sivshm_region = region;
	if (connect_err || fd < 0 ||
	    connect(fd, (struct sockaddr *)&addr, sizeof(addr))) {
		connect_err = connect_err ? connect_err : errno;
	} else {
		if (go)
			wait_for_file(go, 0);
		bulk_client(fd, strtoull(argv[2], NULL, 0) << 20, &r);
	}

	if (!connect_err && !r.send_err && !r.recv_err && r.mismatch < 0 &&
	    !r.peer_bad && r.received == r.size && r.peer_sum == r.sent_sum) {
		printf("ok bytes=%llu\n", (unsigned long long)r.received);
		return 0;
	}
	printf("error connect=%s send=%s recv=%s mismatch=%ld peer_bad=%llu after %llu bytes\n",
	       errname(connect_err), errname(r.send_err), errname(r.recv_err),
	       r.mismatch, (unsigned long long)r.peer_bad,
	       (unsigned long long)r.received);
	return 1;
}
