// SPDX-License-Identifier: GPL-2.0
/*
 * ivshmem_resize - exact checks of the rebalancing policy on connections
 * of one guest to itself, for selftests/rebalance.sh.  Channel offsets and
 * sizes come from sock_diag (af_ivshmem_diag); the data carries a
 * position pattern checked byte by byte, so a lost, repeated or reordered
 * byte is found.  Expects a module loaded with channel_size=65536, a
 * region with nothing else in it, idle_shrink_ms large (no idle shrinking
 * during the test) and a short rebalance_interval_ms.
 *
 *   ivshmem_resize share DATA_BYTES
 *	(module freshly loaded, channel_max_size=0) one connection sends
 *	alone and grows to the fair share of one busy channel; then three
 *	more connections send and the first, now more than 1.25 times the
 *	share of four busy channels, is shrunk back to exactly that share,
 *	keeping its offset.
 *   ivshmem_resize dgram-share DATA_BYTES PEER
 *	(module freshly loaded, dgram_idle_ms large) a datagram to PEER
 *	opens a datagram channel at the bottom of the empty region; then one
 *	stream connection sends alone and grows to the share of one busy
 *	channel, the datagram channel counted as space taken, not as a
 *	busy channel (its size is fixed).
 *   ivshmem_resize place
 *	with six 64 KiB channels laid out in a row and the first two freed:
 *	the last one grows to 128 KiB in place although the hole below
 *	holds it; then the third grows to 192 KiB into the lowest gap that
 *	holds it, the hole with its own old space counted as free (offset
 *	of the first).
 *   ivshmem_resize compact
 *	with six 64 KiB channels laid out in a row and the first two freed,
 *	the four left shrink to channel_min_size in place (idle_shrink_ms
 *	set short); once one of them is busy, the three idle ones move down,
 *	one after the other, to the bottom of the hole (compaction), and
 *	both connections still carry their data intact.
 * Each step prints "NAME: ok" or "NAME: FAIL why"; exits 1 on a failure.
 */
#include <glob.h>
#include <stdbool.h>
#include <stdio.h>
#include <sys/stat.h>
#include <time.h>

#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <linux/ivshmem_diag.h>

#include "ivshmem_util.h"

#define KIB		1024U
#define CHAN		(64 * KIB)	/* channel_size the module is loaded with */
#define PORT		7100
#define PARAMS		"/sys/module/af_ivshmem/parameters/"
#define STATS		"/sys/bus/pci/drivers/af_ivshmem/*/stats/"

static int failed;
static unsigned char buf[256 * KIB];

/* One direction of a connection and how far its pattern got. */
struct dir {
	int tx, rx;
	uint64_t sent, rcvd;
	bool bad;
};

struct geom {
	uint32_t off, size;
};

static unsigned char pattern(uint64_t pos)
{
	return (unsigned char)((uint32_t)(pos * 2654435761U) >> 24 ^ pos >> 16);
}

static uint32_t get_param(const char *name)
{
	char path[128];
	unsigned long value;
	FILE *f;

	snprintf(path, sizeof(path), PARAMS "%s", name);
	f = fopen(path, "r");
	if (!f || fscanf(f, "%lu", &value) != 1 || !value) {
		printf("setup: FAIL cannot read %s\n", name);
		exit(1);
	}
	fclose(f);
	return (uint32_t)value;
}

static void set_param(const char *name, unsigned long value)
{
	char path[128];
	FILE *f;

	snprintf(path, sizeof(path), PARAMS "%s", name);
	f = fopen(path, "w");
	if (!f || fprintf(f, "%lu\n", value) < 0 || fclose(f)) {
		printf("setup: FAIL cannot set %s\n", name);
		exit(1);
	}
}

/* The device's counter @name (one device), or -1. */
static long long counter(const char *name)
{
	char pat[128];
	long long v = -1;
	glob_t g;
	FILE *f;

	snprintf(pat, sizeof(pat), STATS "%s", name);
	if (glob(pat, 0, NULL, &g) || g.gl_pathc != 1)
		goto out;
	f = fopen(g.gl_pathv[0], "r");
	if (f) {
		if (fscanf(f, "%lld", &v) != 1)
			v = -1;
		fclose(f);
	}
out:
	globfree(&g);
	return v;
}

/* Waits until a whole rebalancer run started after the call has ended
 * (10 s at most).
 */
static void wait_runs(void)
{
	long long start = counter("rebalances"), now;
	int i;

	for (i = 0; i < 1000; i++) {
		now = counter("rebalances");
		if (start < 0 || now < 0) {
			printf("setup: FAIL no rebalances counter\n");
			exit(1);
		}
		if (now >= start + 2)
			return;
		sleep_ms(10);
	}
}

/* The tx channel of socket @fd (rx if @rx) from sock_diag. */
static struct geom geometry(int fd, bool rx)
{
	struct {
		struct nlmsghdr nlh;
		struct ivshmem_diag_req r;
	} req = {
		.nlh.nlmsg_len = sizeof(req),
		.nlh.nlmsg_type = SOCK_DIAG_BY_FAMILY,
		.nlh.nlmsg_flags = NLM_F_REQUEST,
		.r.idiag_show = IVSHMEM_SHOW_CHANNELS,
		.r.idiag_cookie = { IVSHMEM_DIAG_NOCOOKIE, IVSHMEM_DIAG_NOCOOKIE },
	};
	char reply[8192] __attribute__((aligned(8)));
	struct nlmsghdr *nlh = (struct nlmsghdr *)reply;
	struct geom g = { 0, 0 };
	struct stat st;
	ssize_t len;
	int nl;

	if (fstat(fd, &st))
		return g;
	req.r.sdiag_family = (uint8_t)ivshmem_family();
	req.r.idiag_ino = (uint32_t)st.st_ino;
	nl = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
	if (nl < 0 || send(nl, &req, sizeof(req), 0) != sizeof(req))
		goto out;
	len = recv(nl, reply, sizeof(reply), 0);
	if (len < (ssize_t)NLMSG_LENGTH(sizeof(struct ivshmem_diag_msg)) ||
	    nlh->nlmsg_type != SOCK_DIAG_BY_FAMILY)
		goto out;
	{
		char *p = (char *)NLMSG_DATA(nlh) +
			  NLMSG_ALIGN(sizeof(struct ivshmem_diag_msg));
		char *end = reply + (len < nlh->nlmsg_len ? len : nlh->nlmsg_len);

		while (p + NLA_HDRLEN <= end) {
			struct nlattr *a = (struct nlattr *)p;
			struct ivshmem_diag_channels ch;

			if (a->nla_len < NLA_HDRLEN || p + a->nla_len > end)
				break;
			if (a->nla_type == IVSHMEM_DIAG_CHANNELS &&
			    a->nla_len >= NLA_HDRLEN + sizeof(ch)) {
				memcpy(&ch, p + NLA_HDRLEN, sizeof(ch));
				g.off = rx ? ch.rx_offset : ch.tx_offset;
				g.size = rx ? ch.rx_size : ch.tx_size;
			}
			p += NLA_ALIGN(a->nla_len);
		}
	}
out:
	if (nl >= 0)
		close(nl);
	return g;
}

/* The geometry of @fd's tx channel once it differs from @old (5 s). */
static struct geom wait_change(int fd, struct geom old)
{
	struct geom g;
	int i;

	for (i = 0; i < 500; i++) {
		g = geometry(fd, false);
		if (g.off != old.off || g.size != old.size)
			break;
		sleep_ms(10);
	}
	return g;
}

/* Sends up to @max pattern bytes without waiting; returns how many. */
static uint64_t send_some(struct dir *d, uint64_t max)
{
	uint64_t done = 0;

	while (done < max) {
		size_t len = max - done < sizeof(buf) ? max - done : sizeof(buf);
		ssize_t n;
		size_t i;

		for (i = 0; i < len; i++)
			buf[i] = pattern(d->sent + i);
		n = send(d->tx, buf, len, MSG_DONTWAIT | MSG_NOSIGNAL);
		if (n <= 0)
			break;
		d->sent += n;
		done += n;
	}
	return done;
}

/* Reads and checks everything readable now; returns how many bytes. */
static uint64_t drain(struct dir *d)
{
	uint64_t done = 0;
	ssize_t n, i;

	while ((n = recv(d->rx, buf, sizeof(buf), MSG_DONTWAIT)) > 0) {
		for (i = 0; i < n; i++)
			if (buf[i] != pattern(d->rcvd + i))
				d->bad = true;
		d->rcvd += n;
		done += n;
	}
	return done;
}

/* Fills the tx ring until a send finds it full: the rebalancer then
 * decides a growth.  After its runs, empties the ring so that the switch
 * can happen, and returns the geometry it switched to.
 */
static struct geom grow(struct dir *d, const char *name)
{
	struct geom old = geometry(d->tx, false), g;

	if (!send_some(d, ~0ULL) || errno != EAGAIN) {
		printf("%s: FAIL the ring did not fill\n", name);
		failed = 1;
	}
	wait_runs();
	drain(d);
	g = wait_change(d->tx, old);
	drain(d);
	return g;
}

/* Sends @total bytes through @d in steps of half the ring, never
 * filling it (a full ring would ask for growth), checks them, and that
 * the receiver sees the geometry @want.
 */
static void check_data(struct dir *d, struct geom want, uint64_t total,
		       const char *name)
{
	uint64_t goal = d->sent + total;
	struct geom rx;
	int idle = 0;

	while (d->rcvd < goal && idle < 500) {
		uint64_t step = goal - d->sent < want.size / 2 ?
				goal - d->sent : want.size / 2;
		uint64_t moved = send_some(d, step) + drain(d);

		if (!moved) {
			idle++;
			sleep_ms(10);
		}
	}
	rx = geometry(d->rx, true);
	if (d->bad || d->rcvd != goal || d->sent != goal)
		printf("%s: FAIL data sent=%llu received=%llu bad=%d\n", name,
		       (unsigned long long)d->sent,
		       (unsigned long long)d->rcvd, d->bad);
	else if (rx.off != want.off || rx.size != want.size)
		printf("%s: FAIL the receiver sees offset %#x size %u\n", name,
		       rx.off, rx.size);
	else
		return;
	failed = 1;
}

static void expect(const char *name, struct geom got, struct geom want,
		   uint32_t base)
{
	if (got.off == want.off && got.size == want.size) {
		printf("%s: ok\n", name);
		return;
	}
	printf("%s: FAIL offset +%d size %u, want +%d size %u\n", name,
	       (int)(got.off - base), got.size, (int)(want.off - base),
	       want.size);
	failed = 1;
}

static int listener(unsigned int port)
{
	struct sockaddr_ivshmem addr;
	int fd = socket(ivshmem_family(), SOCK_STREAM, 0);

	ivshmem_addr(&addr, IVSHMEM_PEER_ANY, port);
	if (fd < 0 || bind(fd, (struct sockaddr *)&addr, sizeof(addr)) ||
	    listen(fd, 16)) {
		printf("setup: FAIL listen: %s\n", strerror(errno));
		exit(1);
	}
	return fd;
}

/* A connection to ourselves: @c the connecting end, @s the accepted. */
static void pair(int lfd, unsigned int port, int *c, int *s)
{
	struct sockaddr_ivshmem addr;
	long self = ivshmem_local_peer();

	*c = socket(ivshmem_family(), SOCK_STREAM, 0);
	ivshmem_addr(&addr, (uint32_t)self, port);
	if (self < 0 || *c < 0 ||
	    connect(*c, (struct sockaddr *)&addr, sizeof(addr))) {
		printf("setup: FAIL connect: %s\n", strerror(errno));
		exit(1);
	}
	*s = accept(lfd, NULL, NULL);
	if (*s < 0) {
		printf("setup: FAIL accept: %s\n", strerror(errno));
		exit(1);
	}
}

/* The fair share, in whole multiples of channel_min_size as the
 * rebalancer picks sizes.
 */
static uint32_t share(uint64_t data, uint64_t other, unsigned int busy)
{
	uint32_t unit = get_param("channel_min_size");

	return (uint32_t)((data - data / 16 - other) / busy) / unit * unit;
}

/* A new connection to ourselves on @lfd's port (PORT) sends alone: its
 * channel grows to the share of one busy channel, with @taken bytes of
 * the region's data area in other channels.  The accepted end's channel
 * follows it and never sends (not busy); the old ring is too small a
 * gap, so the growth goes above both.  Checks the growth and data
 * through it under @name; sets @want to the new geometry and returns
 * the channel's first offset.
 */
static uint32_t grow_alone(struct dir *a, int lfd, uint64_t data,
			   uint64_t taken, const char *name, struct geom *want)
{
	char what[128];
	uint32_t base;
	struct geom g;

	pair(lfd, PORT, &a->tx, &a->rx);
	base = geometry(a->tx, false).off;
	g = grow(a, name);
	want->off = base + 2 * CHAN;
	want->size = share(data, taken, 1);
	snprintf(what, sizeof(what),
		 "%s: grows to the share of one busy channel", name);
	expect(what, g, *want, base);
	check_data(a, *want, 1 << 20, name);
	return base;
}

/* One busy channel grows to its share, then is shrunk back to the share
 * of four.
 */
static void test_share(uint64_t data)
{
	struct dir a = { 0 }, more[3] = { 0 };
	struct geom g, want;
	uint32_t base;
	int lfd = listener(PORT), i;

	set_param("channel_max_size", 0);
	base = grow_alone(&a, lfd, data, CHAN, "alone", &want);
	/* Runs that see it sent since the last run see one busy channel. */
	wait_runs();

	/* Three more connections, each sending a little: four busy. */
	for (i = 0; i < 3; i++) {
		pair(lfd, PORT, &more[i].tx, &more[i].rx);
		send_some(&more[i], 4 * KIB);
	}
	wait_runs();
	send_some(&a, 4 * KIB);		/* busy, and far above the share */
	wait_runs();
	drain(&a);
	g = wait_change(a.tx, want);
	want.size = share(data, 4 * CHAN, 4);
	expect("four busy: the first is shrunk back to the share of four",
	       g, want, base);
	check_data(&a, want, 1 << 20, "four busy");
	for (i = 0; i < 3; i++) {
		drain(&more[i]);
		if (more[i].bad || more[i].rcvd != 4 * KIB) {
			printf("four busy: FAIL data on connection %d\n", i);
			failed = 1;
		}
		close(more[i].tx);
		close(more[i].rx);
	}
	close(a.tx);
	close(a.rx);
	close(lfd);
}

/* With a datagram channel to @peer open and just used, one busy stream
 * channel still grows to the share of one busy channel: a datagram
 * channel has a fixed size, so it counts only as space taken, never as a
 * busy channel.  (A datagram to ourselves takes no channel.)
 */
static void test_dgram_share(uint64_t data, uint32_t peer)
{
	uint32_t dgram = get_param("dgram_channel_size");
	struct sockaddr_ivshmem addr;
	struct dir a = { 0 };
	struct geom want;
	int lfd, d;

	set_param("channel_max_size", 0);
	/* First, in the empty region: the channel takes its bottom. */
	d = socket(ivshmem_family(), SOCK_DGRAM, 0);
	ivshmem_addr(&addr, peer, PORT + 2);
	if (d < 0 || sendto(d, "d", 1, 0, (struct sockaddr *)&addr,
			    sizeof(addr)) != 1) {
		printf("setup: FAIL datagram to peer %u: %s\n", peer,
		       strerror(errno));
		exit(1);
	}
	lfd = listener(PORT);
	grow_alone(&a, lfd, data, CHAN + dgram, "datagram channel open", &want);
	close(a.tx);
	close(a.rx);
	close(lfd);
	close(d);
}

/* Three connections to ourselves on @port: six CHAN channels in a row
 * from the returned offset (checked: "layout: ok"); then the first is
 * closed, leaving a hole of two channels there.
 */
static uint32_t row(int lfd, unsigned int port, int c[3], int s[3])
{
	uint32_t base;
	struct geom g;
	int i;

	for (i = 0; i < 3; i++)
		pair(lfd, port, &c[i], &s[i]);
	base = geometry(c[0], false).off;
	for (i = 0; i < 6; i++) {
		g = geometry(i & 1 ? s[i / 2] : c[i / 2], false);
		if (g.off != base + i * CHAN || g.size != CHAN) {
			printf("layout: FAIL channel %d at +%d size %u\n", i,
			       (int)(g.off - base), g.size);
			exit(1);
		}
	}
	printf("layout: ok\n");
	close(c[0]);
	close(s[0]);
	wait_runs();
	return base;
}

/* Growth in place, and growth into the lowest gap. */
static void test_place(void)
{
	int lfd = listener(PORT + 1), c[3], s[3], i;
	struct dir d2 = { 0 }, d3 = { 0 };
	struct geom g, want;
	uint32_t base;

	set_param("channel_max_size", 128 * KIB);
	base = row(lfd, PORT + 1, c, s);

	/* The last channel (s[2], the accepted end of the third) has free
	 * blocks above it: it grows there, not into the lower hole.
	 */
	d3.tx = s[2];
	d3.rx = c[2];
	g = grow(&d3, "in place");
	want.off = base + 5 * CHAN;
	want.size = 128 * KIB;
	expect("in place: 64 KiB -> 128 KiB at the same offset", g, want, base);
	check_data(&d3, want, 4 * (uint64_t)want.size, "in place");

	/* c[1] is boxed in by s[1]; the hole below it and its own old space
	 * make the lowest gap of 192 KiB.
	 */
	set_param("channel_max_size", 192 * KIB);
	d2.tx = c[1];
	d2.rx = s[1];
	g = grow(&d2, "gap");
	want.off = base;
	want.size = 192 * KIB;
	expect("gap: 64 KiB -> 192 KiB in the lowest gap, over its old ring",
	       g, want, base);
	check_data(&d2, want, 4 * (uint64_t)want.size, "gap");
	for (i = 1; i < 3; i++) {
		close(c[i]);
		close(s[i]);
	}
	close(lfd);
}

/* Idle minimum channels move down once another channel is busy. */
static void test_compact(void)
{
	int lfd = listener(PORT + 2), c[3], s[3], i, ok = 0;
	uint32_t min = get_param("channel_min_size"), base;
	struct dir d1 = { 0 }, d2 = { 0 };
	long long moved;
	struct geom g;

	set_param("channel_max_size", 0);
	base = row(lfd, PORT + 2, c, s);
	/* All four idle: each shrinks in place to the minimum. */
	set_param("idle_shrink_ms", 100);
	for (i = 2; i < 6; i++) {
		int fd = i & 1 ? s[i / 2] : c[i / 2];

		g = wait_change(fd, (struct geom){ base + i * CHAN, CHAN });
		if (g.off != base + i * CHAN || g.size != min) {
			printf("shrink: FAIL channel %d at +%d size %u\n", i,
			       (int)(g.off - base), g.size);
			failed = 1;
		}
	}
	printf("shrink: %s\n", failed ? "FAIL" : "ok");
	wait_runs();
	moved = counter("channels_moved");

	/* c[2] sends: it is busy and below the share, so the idle three go
	 * down to the lowest gaps, base, base + min and base + 2 * min, in
	 * the order the rebalancer meets them.
	 */
	d2.tx = c[2];
	d2.rx = s[2];
	for (i = 0; i < 500 && counter("channels_moved") < moved + 3; i++) {
		send_some(&d2, 4 * min);	/* fills it: found full */
		sleep_ms(10);
		drain(&d2);
	}
	/* Its growth switches once the ring is empty. */
	wait_runs();
	for (i = 0; i < 3; i++) {
		g = geometry(i == 0 ? c[1] : s[i], false);
		if (g.size == min && g.off >= base && g.off < base + 3 * min &&
		    !((g.off - base) % min))
			ok |= 1 << ((g.off - base) / min);
	}
	if (ok == 7 && counter("channels_moved") == moved + 3)
		printf("compact: ok\n");
	else {
		printf("compact: FAIL offsets taken %#x, channels_moved +%lld\n",
		       ok, counter("channels_moved") - moved);
		failed = 1;
	}
	/* Both directions of a moved connection, and the busy one. */
	d1.tx = c[1];
	d1.rx = s[1];
	check_data(&d1, geometry(c[1], false), 1 << 20, "moved c1");
	d1 = (struct dir){ .tx = s[1], .rx = c[1] };
	check_data(&d1, geometry(s[1], false), 1 << 20, "moved s1");
	check_data(&d2, geometry(c[2], false), 1 << 20, "busy c2");
	printf("data: %s\n", failed ? "FAIL" : "ok");
	set_param("idle_shrink_ms", 600000);
	for (i = 1; i < 3; i++) {
		close(c[i]);
		close(s[i]);
	}
	close(lfd);
}

int main(int argc, char **argv)
{
	if (argc == 3 && !strcmp(argv[1], "share")) {
		test_share(strtoull(argv[2], NULL, 0));
	} else if (argc == 4 && !strcmp(argv[1], "dgram-share")) {
		test_dgram_share(strtoull(argv[2], NULL, 0),
				 (uint32_t)strtoul(argv[3], NULL, 0));
	} else if (argc == 2 && !strcmp(argv[1], "place")) {
		test_place();
	} else if (argc == 2 && !strcmp(argv[1], "compact")) {
		test_compact();
	} else {
		fprintf(stderr, "usage: ivshmem_resize share DATA_BYTES | dgram-share DATA_BYTES PEER | place | compact\n");
		return 2;
	}
	return failed;
}
