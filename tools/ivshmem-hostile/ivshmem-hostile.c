// SPDX-License-Identifier: GPL-2.0
/*
 * ivshmem-hostile: a hostile peer for testing AF_IVSHMEM's hardening.
 *
 * Runs on the host against the memory file of a lab region and plays a
 * guest kernel that writes anything anywhere: it scribbles seeded,
 * reproducible values over the control section, a peer slot, selected
 * channel table entries and their rings, and rings every peer's doorbell
 * as fast as it can through the region's ivshmem server, for a bounded
 * time.  See ivshmem-hostile --help and Documentation/networking/
 * af_ivshmem.rst ("Security").
 *
 * The offsets below are the shared-memory ABI (version 2) as documented;
 * this tool keeps its own copy on purpose: it must be able to write what
 * the module would never write.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#define ARRAY_SIZE(a)		(sizeof(a) / sizeof((a)[0]))

#define MAGIC			0x4d485349
#define BLOCK			4096
#define MAX_PEERS		64
#define MAX_CHANNELS		4096
#define PEER_TABLE		4096
#define CHAN_TABLE		8192
#define CHAN_SIZE		128
#define DATA_OFFSET		(CHAN_TABLE + MAX_CHANNELS * CHAN_SIZE)

/* Control section. */
#define H_MAGIC			0
#define H_ABI			4
#define H_REGION_SIZE		8
#define H_FORMAT_STATE		44
#define H_CONTROL_LOCK		48
#define H_FREE_START		56
#define H_NUM_ACTIVE		60
#define H_ALLOC_GEN		64
#define H_SIZE			72

/* Peer slot. */
#define P_STATE			0
#define P_FLAGS			4
#define P_EPOCH			8
#define P_HEARTBEAT		16
#define P_REQUEST_SEQ		24
#define P_IPV4_COUNT		28
#define P_IPV4			32
#define P_SIZE			64

/* Channel entry. */
#define C_ALLOC_STATE		0
#define C_GENERATION		4
#define C_HEAD			8
#define C_SENDER_VM		16
#define C_RECEIVER_VM		18
#define C_SENDER_PID		20
#define C_BUFF_OFFSET		24
#define C_BUFF_SIZE		28
#define C_SRC_PORT		32
#define C_DST_PORT		36
#define C_SOCK_TYPE		40
#define C_SEND_WAITING		42
#define C_PEER_CHANNEL		44
#define C_PEER_GENERATION	48
#define C_SENDER_STATE		52
#define C_DATA_SIZE		56
#define C_HEAD_TOUCH		60
#define C_TAIL			64
#define C_RECEIVER_STATE	72
#define C_REPLY_CHANNEL		76
#define C_REPLY_GENERATION	80
#define C_RECV_WAITING		84
#define C_RESERVED		88

#define SEND_RESET		4

enum mode { MODE_CRAFTED, MODE_RANDOM, MODE_RING_DATA };

struct target {
	uint32_t index;
	/* What the entry looked like after our last write: if another
	 * guest reallocates it, it is not our target any more.
	 */
	uint32_t alloc_state, generation, src_port, dst_port;
	uint16_t sender;
	bool dropped;
	unsigned long writes;
};

static uint8_t *shm;
static uint64_t shm_size;
static uint64_t rng_state;
static bool verbose;

static uint64_t rnd(void)
{
	/* xorshift64*: reproducible from the seed */
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * 0x2545f4914f6cdd1dULL;
}

static uint32_t rnd_below(uint32_t n)
{
	return n ? (uint32_t)(rnd() % n) : 0;
}

static uint16_t rd16(uint64_t off)
{
	return __atomic_load_n((uint16_t *)(shm + off), __ATOMIC_RELAXED);
}

static uint32_t rd32(uint64_t off)
{
	return __atomic_load_n((uint32_t *)(shm + off), __ATOMIC_RELAXED);
}

static uint64_t rd64(uint64_t off)
{
	return __atomic_load_n((uint64_t *)(shm + off), __ATOMIC_RELAXED);
}

static void wr16(uint64_t off, uint16_t v)
{
	__atomic_store_n((uint16_t *)(shm + off), v, __ATOMIC_SEQ_CST);
}

static void wr32(uint64_t off, uint32_t v)
{
	__atomic_store_n((uint32_t *)(shm + off), v, __ATOMIC_SEQ_CST);
}

static void wr64(uint64_t off, uint64_t v)
{
	__atomic_store_n((uint64_t *)(shm + off), v, __ATOMIC_SEQ_CST);
}

static uint64_t chan(uint32_t i)
{
	return CHAN_TABLE + (uint64_t)i * CHAN_SIZE;
}

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* A value that looks like a 32-bit field gone mad. */
static uint32_t wild32(void)
{
	static const uint32_t v[] = { 0, 1, 2, 3, 4, 5, 7, 0xff, 0xffff,
		0x10000, 0x7fffffff, 0x80000000, 0xfffffffe, 0xffffffff,
		MAX_CHANNELS, MAX_CHANNELS + 1, MAX_PEERS, BLOCK - 1, BLOCK + 8 };

	return rnd_below(2) ? v[rnd_below(ARRAY_SIZE(v))] :
			      (uint32_t)rnd();
}

static uint64_t wild64(void)
{
	static const uint64_t v[] = { 0, 1, ~0ULL, 1ULL << 63, 1ULL << 32,
				      (1ULL << 32) - 1 };

	return rnd_below(2) ? v[rnd_below(ARRAY_SIZE(v))] : rnd();
}

/* An invalid ring geometry: each of these fails the module's checks. */
static void bad_geometry(uint32_t *off, uint32_t *size)
{
	*off = DATA_OFFSET;
	*size = 16 * BLOCK;
	switch (rnd_below(6)) {
	case 0:
		*off = DATA_OFFSET + 1 + rnd_below(BLOCK - 1);
		break;
	case 1:
		*off = (uint32_t)shm_size + BLOCK * rnd_below(16);
		break;
	case 2:
		*off = BLOCK * rnd_below(DATA_OFFSET / BLOCK);
		break;
	case 3:
		*size = 0;
		break;
	case 4:
		*size = BLOCK * (1 + rnd_below(16)) + 1 + rnd_below(BLOCK - 1);
		break;
	default:	/* runs past the region's end */
		*off = (uint32_t)shm_size - BLOCK;
		*size = 2 * BLOCK;
		break;
	}
}

/* Crafted: every value here is one the module must detect (reset the
 * connection) or that cannot change the data a reader gets.  Without
 * encryption, an in-range head or tail move or a valid other geometry is
 * indistinguishable from the sender's own: those are in --mode random.
 */
static void crafted_chan(struct target *t)
{
	uint64_t c = chan(t->index);
	uint32_t off, size;

	switch (rnd_below(12)) {
	case 0:
		t->generation += 1 + rnd_below(1000);
		wr32(c + C_GENERATION, t->generation);
		break;
	case 1:
		t->alloc_state = rnd_below(2) ? 0 : 2 + rnd_below(100);
		wr32(c + C_ALLOC_STATE, t->alloc_state);
		break;
	case 2:	/* head jumps more than any ring ahead */
		wr64(c + C_HEAD, rd64(c + C_HEAD) + (1ULL << 40) + rnd_below(1 << 30));
		break;
	case 3:	/* head behind the reader's tail */
		wr64(c + C_HEAD, rd64(c + C_TAIL) - 1 - rnd_below(1 << 20));
		break;
	case 4:	/* tail far beyond head */
		wr64(c + C_TAIL, rd64(c + C_HEAD) + (1ULL << 40) + rnd_below(1 << 30));
		break;
	case 5:
		bad_geometry(&off, &size);
		wr32(c + C_BUFF_OFFSET, off);
		wr32(c + C_BUFF_SIZE, size);
		break;
	case 6:
		wr32(c + C_SENDER_STATE, rnd_below(2) ? SEND_RESET :
			 5 + rnd_below(1000));
		break;
	case 7:
		wr32(c + C_RECV_WAITING, wild32());
		wr16(c + C_SEND_WAITING, (uint16_t)wild32());
		break;
	case 8:
		wr32(c + C_HEAD_TOUCH, wild32());
		wr32(c + C_DATA_SIZE, wild32());
		wr32(c + C_SENDER_PID, wild32());
		break;
	case 9:
		wr64(c + C_RESERVED + 8 * rnd_below(5), wild64());
		break;
	case 10:
		wr32(c + C_REPLY_CHANNEL, wild32());
		wr32(c + C_REPLY_GENERATION, wild32());
		break;
	default:
		wr32(c + C_PEER_CHANNEL, wild32());
		break;
	}
}

/* Random: any metadata field, any value. */
static void random_chan(struct target *t)
{
	static const uint8_t f32[] = { C_ALLOC_STATE, C_GENERATION,
		C_SENDER_PID, C_BUFF_OFFSET, C_BUFF_SIZE, C_SRC_PORT,
		C_DST_PORT, C_PEER_CHANNEL, C_PEER_GENERATION,
		C_SENDER_STATE, C_DATA_SIZE, C_HEAD_TOUCH, C_RECEIVER_STATE,
		C_REPLY_CHANNEL, C_REPLY_GENERATION, C_RECV_WAITING };
	static const uint8_t f16[] = { C_SENDER_VM, C_RECEIVER_VM,
				       C_SOCK_TYPE, C_SEND_WAITING };
	uint64_t c = chan(t->index);
	uint8_t f;

	switch (rnd_below(4)) {
	case 0:
		f = f16[rnd_below(ARRAY_SIZE(f16))];
		wr16(c + f, rnd_below(2) ? (uint16_t)wild32() :
			 (uint16_t)rnd_below(MAX_PEERS + 2));
		break;
	case 1:
		wr64(c + (rnd_below(2) ? C_HEAD : C_TAIL),
		     rd64(c + C_HEAD) + rnd_below(1 << 20) - (1 << 19));
		break;
	default:
		f = f32[rnd_below(ARRAY_SIZE(f32))];
		wr32(c + f, rnd_below(4) ? wild32() : rd32(c + f) + 1);
		break;
	}
	/* Follow our own changes of the identity fields. */
	t->alloc_state = rd32(c + C_ALLOC_STATE);
	t->generation = rd32(c + C_GENERATION);
	t->src_port = rd32(c + C_SRC_PORT);
	t->dst_port = rd32(c + C_DST_PORT);
	t->sender = rd16(c + C_SENDER_VM);
}

/* Ring data: random bytes at random places of the ring (as last
 * validated by us; a ring the entry no longer describes is left alone).
 */
static void ring_data(struct target *t)
{
	uint64_t c = chan(t->index);
	uint32_t off = rd32(c + C_BUFF_OFFSET), size = rd32(c + C_BUFF_SIZE);
	uint32_t n, at, i;

	if (off < DATA_OFFSET || off % BLOCK || !size || size % BLOCK ||
	    off >= shm_size || size > shm_size - off)
		return;
	n = 1 + rnd_below(64);
	at = rnd_below(size - n);
	for (i = 0; i < n; i++)
		shm[off + at + i] ^= (uint8_t)(1 + rnd_below(255));
}

/* Whether the entry is still the one we picked (or left by us). */
static bool still_ours(struct target *t)
{
	uint64_t c = chan(t->index);

	if (t->dropped)
		return false;
	if (rd32(c + C_ALLOC_STATE) != t->alloc_state ||
	    rd32(c + C_GENERATION) != t->generation ||
	    rd32(c + C_SRC_PORT) != t->src_port ||
	    rd32(c + C_DST_PORT) != t->dst_port ||
	    rd16(c + C_SENDER_VM) != t->sender) {
		t->dropped = true;
		if (verbose)
			fprintf(stderr, "entry %u changed hands: left alone\n",
				t->index);
		return false;
	}
	return true;
}

static void target_init(struct target *t, uint32_t i)
{
	uint64_t c = chan(i);

	memset(t, 0, sizeof(*t));
	t->index = i;
	t->alloc_state = rd32(c + C_ALLOC_STATE);
	t->generation = rd32(c + C_GENERATION);
	t->src_port = rd32(c + C_SRC_PORT);
	t->dst_port = rd32(c + C_DST_PORT);
	t->sender = rd16(c + C_SENDER_VM);
}

/* Control section: everything but the lock word, which an established
 * connection never depends on.
 */
static void scribble_control(void)
{
	static const uint16_t f32[] = { H_MAGIC, H_ABI, 16, 20, 24, 28, 32,
		36, 40, H_FORMAT_STATE, H_FREE_START, H_NUM_ACTIVE };

	switch (rnd_below(3)) {
	case 0:
		wr64(H_ALLOC_GEN, wild64());
		break;
	case 1:
		wr64(H_REGION_SIZE, wild64());
		break;
	default:
		wr32(f32[rnd_below(ARRAY_SIZE(f32))], wild32());
		break;
	}
}

static void scribble_peer(uint32_t p)
{
	uint64_t s = PEER_TABLE + (uint64_t)p * P_SIZE;

	switch (rnd_below(7)) {
	case 0:
		wr32(s + P_STATE, rnd_below(2) ? 1 : wild32());
		break;
	case 1:
		wr64(s + P_EPOCH, wild64());
		break;
	case 2:
		wr64(s + P_HEARTBEAT, rnd());
		break;
	case 3:
		wr32(s + P_IPV4_COUNT, wild32());
		break;
	case 4:
		wr32(s + P_IPV4 + 4 * rnd_below(8), (uint32_t)rnd());
		break;
	case 5:
		wr32(s + P_FLAGS, wild32());
		break;
	default:
		break;
	}
	/* Always: a new "request" to make every guest scan its table. */
	wr32(s + P_REQUEST_SEQ, rd32(s + P_REQUEST_SEQ) + 1);
}

/* ---- doorbells: a QEMU-like client of the ivshmem server ---- */

#define MAX_FDS	(MAX_PEERS * 4)

struct bells {
	int sock;
	int fds[MAX_FDS];
	int nfds;
	int64_t self;
	unsigned long rung;
};

/* One server message: a little-endian int64 and maybe a file descriptor. */
static int recv_msg(int sock, int64_t *val, int *fd)
{
	char ctl[CMSG_SPACE(sizeof(int))];
	struct iovec iov = { .iov_base = val, .iov_len = sizeof(*val) };
	struct msghdr msg = {
		.msg_iov = &iov, .msg_iovlen = 1,
		.msg_control = ctl, .msg_controllen = sizeof(ctl),
	};
	struct cmsghdr *cm;
	ssize_t n;

	*fd = -1;
	n = recvmsg(sock, &msg, MSG_CMSG_CLOEXEC);
	if (n != sizeof(*val))
		return -1;
	for (cm = CMSG_FIRSTHDR(&msg); cm; cm = CMSG_NXTHDR(&msg, cm))
		if (cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_RIGHTS)
			memcpy(fd, CMSG_DATA(cm), sizeof(int));
	return 0;
}

/* Connects as QEMU does: version, our id, the memory, then each peer's
 * eventfds (ours last).  Keeps every other peer's eventfds.
 */
static int bells_connect(struct bells *b, const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int64_t v;
	int fd, i;
	struct timeval tv = { .tv_sec = 0, .tv_usec = 300000 };

	memset(b, 0, sizeof(*b));
	b->sock = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	if (b->sock < 0 || connect(b->sock, (struct sockaddr *)&sa, sizeof(sa))) {
		perror("ivshmem-hostile: server socket");
		return -1;
	}
	if (recv_msg(b->sock, &v, &fd) || v != 0 ||
	    recv_msg(b->sock, &b->self, &fd) ||
	    recv_msg(b->sock, &v, &fd) || fd < 0) {
		fprintf(stderr, "ivshmem-hostile: unexpected server greeting\n");
		return -1;
	}
	close(fd);
	/* Then the peers' eventfds, until the server goes quiet. */
	setsockopt(b->sock, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	for (i = 0; i < MAX_FDS * 2; i++) {
		if (recv_msg(b->sock, &v, &fd))
			break;
		if (fd < 0)
			continue;
		if (v == b->self || b->nfds == MAX_FDS) {
			close(fd);
			continue;
		}
		/* Never block on a peer that stopped reading. */
		fcntl(fd, F_SETFL, O_NONBLOCK);
		b->fds[b->nfds++] = fd;
	}
	return 0;
}

static void bells_ring(struct bells *b, unsigned int rounds)
{
	uint64_t one = 1;
	unsigned int r;
	int i;

	for (r = 0; r < rounds; r++)
		for (i = 0; i < b->nfds; i++)
			if (write(b->fds[i], &one, sizeof(one)) == sizeof(one))
				b->rung++;
}

/* ---- main ---- */

static void list_table(void)
{
	uint32_t i;

	printf("magic=%#x lock=%#llx active=%u\n", rd32(H_MAGIC),
	       (unsigned long long)rd64(H_CONTROL_LOCK), rd32(H_NUM_ACTIVE));
	for (i = 0; i < MAX_PEERS; i++) {
		uint64_t s = PEER_TABLE + (uint64_t)i * P_SIZE;

		if (rd32(s + P_STATE))
			printf("peer %u state=%u epoch=%llu heartbeat=%llu\n", i,
			       rd32(s + P_STATE),
			       (unsigned long long)rd64(s + P_EPOCH),
			       (unsigned long long)rd64(s + P_HEARTBEAT));
	}
	for (i = 0; i < MAX_CHANNELS; i++) {
		uint64_t c = chan(i);

		if (rd32(c + C_ALLOC_STATE) != 1)
			continue;
		printf("chan %u gen=%u %u->%u port %u->%u type=%u off=%u size=%u head=%llu tail=%llu state=%u/%u\n",
		       i, rd32(c + C_GENERATION), rd16(c + C_SENDER_VM),
		       rd16(c + C_RECEIVER_VM), rd32(c + C_SRC_PORT),
		       rd32(c + C_DST_PORT), rd16(c + C_SOCK_TYPE),
		       rd32(c + C_BUFF_OFFSET), rd32(c + C_BUFF_SIZE),
		       (unsigned long long)rd64(c + C_HEAD),
		       (unsigned long long)rd64(c + C_TAIL),
		       rd32(c + C_SENDER_STATE), rd32(c + C_RECEIVER_STATE));
	}
}

static bool want[MAX_CHANNELS];
static uint32_t ports[64], owners[MAX_PEERS];
static unsigned int nports, nowners;

/* The allocated entries that match the targets given; returns how many. */
static unsigned int select_targets(struct target *targets)
{
	unsigned int n = 0, k;
	uint32_t i;

	for (i = 0; i < MAX_CHANNELS; i++) {
		uint64_t ch = chan(i);
		bool pick = want[i];

		if (rd32(ch + C_ALLOC_STATE) != 1)
			continue;
		for (k = 0; k < nports; k++)
			pick |= rd32(ch + C_SRC_PORT) == ports[k] ||
				rd32(ch + C_DST_PORT) == ports[k];
		for (k = 0; k < nowners; k++)
			pick |= rd16(ch + C_SENDER_VM) == owners[k];
		if (pick)
			target_init(&targets[n++], i);
	}
	return n;
}

/* Until the head of one of the @n targets moves, or time @end. */
static void wait_for_traffic(const struct target *targets, unsigned int n,
			     double end)
{
	static uint64_t heads[MAX_CHANNELS];
	unsigned int k;

	for (k = 0; k < n; k++)
		heads[k] = rd64(chan(targets[k].index) + C_HEAD);
	/* Tests start the traffic once they see this line. */
	printf("waiting for traffic on %u target entries\n", n);
	fflush(stdout);
	while (now() < end) {
		for (k = 0; k < n; k++)
			if (rd64(chan(targets[k].index) + C_HEAD) != heads[k])
				return;
		usleep(1000);
	}
}

static void usage(FILE *f)
{
	fprintf(f,
"usage: ivshmem-hostile -m SHM_FILE [options] [targets]\n"
"\n"
"Plays a hostile guest kernel on an AF_IVSHMEM region, from the host: for\n"
"a bounded time it scribbles seeded values over the selected parts of the\n"
"region and rings doorbells, then prints a summary.  For test labs only.\n"
"\n"
"  -m, --shm FILE        the region's memory file (tools/vm/lab shm REGION)\n"
"  -S, --server SOCKET   the region's ivshmem server socket (for --storm)\n"
"  -s, --seed N          random seed (default 1): runs are reproducible\n"
"  -t, --time SECONDS    how long to run (default 5)\n"
"  -n, --count N         at most N scribbles in all (default: no limit)\n"
"  -w, --wait N          first wait until N target entries exist (or until\n"
"                        --wait-max SECONDS, default 30, have passed)\n"
"      --wait-traffic    then also wait (within --wait-max) until the head\n"
"                        of a target entry moves: data flows\n"
"  -i, --interval USEC   pause between scribble rounds (default 2000)\n"
"      --mode MODE       crafted (default): channel values the module must\n"
"                        detect, or harmless ones; random: any field, any\n"
"                        value (also undetectable in-range moves); ring-data:\n"
"                        flip bytes in the targets' rings (for encryption)\n"
"  -l, --list            print the allocated channel entries and exit\n"
"  -v, --verbose\n"
"\n"
"targets (any number):\n"
"  -c, --chan INDEX      channel table entry INDEX\n"
"  -p, --port PORT       every allocated entry with PORT as source or\n"
"                        destination port (both directions of a connection)\n"
"  -o, --owner PEER      every allocated entry whose sender is PEER\n"
"      --control         the control section, except the lock word\n"
"      --lock            garbage in the control lock word, once\n"
"      --peer-slot ID    the peer slot ID (meant for a peer that does not\n"
"                        exist), and its request_seq on every round\n"
"      --storm           ring every peer's doorbell in a loop (needs -S)\n"
"      --restore-control put the control section back as it was at start\n"
"      --rescan          choose the targets again before every round (any\n"
"                        matching entry, whoever allocated it since: fuzzing)\n"
"\n"
"Targets are chosen at start (unless --rescan).  An entry another guest\n"
"frees or reallocates meanwhile is left alone from then on.  Output:\n"
"with --wait-traffic, \"waiting for traffic on N target entries\" once the\n"
"targets are chosen; \"attacking N target entries\" when the attack starts,\n"
"one line per target\n"
"entry at the end, \"touched INDEX src=PORT dst=PORT writes=N\", then\n"
"\"scribbles=N rung=N\".\n");
}

int main(int argc, char **argv)
{
	enum { O_MODE = 256, O_CONTROL, O_LOCK, O_PEER_SLOT, O_STORM,
	       O_RESTORE, O_RESCAN, O_WAIT_MAX, O_WAIT_TRAFFIC };
	static const struct option opts[] = {
		{ "shm", required_argument, NULL, 'm' },
		{ "server", required_argument, NULL, 'S' },
		{ "seed", required_argument, NULL, 's' },
		{ "time", required_argument, NULL, 't' },
		{ "count", required_argument, NULL, 'n' },
		{ "wait", required_argument, NULL, 'w' },
		{ "wait-max", required_argument, NULL, O_WAIT_MAX },
		{ "wait-traffic", no_argument, NULL, O_WAIT_TRAFFIC },
		{ "interval", required_argument, NULL, 'i' },
		{ "mode", required_argument, NULL, O_MODE },
		{ "list", no_argument, NULL, 'l' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "chan", required_argument, NULL, 'c' },
		{ "port", required_argument, NULL, 'p' },
		{ "owner", required_argument, NULL, 'o' },
		{ "control", no_argument, NULL, O_CONTROL },
		{ "lock", no_argument, NULL, O_LOCK },
		{ "peer-slot", required_argument, NULL, O_PEER_SLOT },
		{ "storm", no_argument, NULL, O_STORM },
		{ "restore-control", no_argument, NULL, O_RESTORE },
		{ "rescan", no_argument, NULL, O_RESCAN },
		{ "help", no_argument, NULL, 'h' },
		{ }
	};
	const char *shm_path = NULL, *server = NULL;
	static struct target targets[MAX_CHANNELS];
	unsigned int ntargets = 0, wait_for = 0;
	unsigned long seed = 1, count = 0, interval = 2000, scribbles = 0;
	double seconds = 5, wait_max = 30, end, next, t0;
	bool list = false, control = false, lock = false, storm = false;
	bool restore = false, rescan = false, wait_traffic = false;
	int peer_slot = -1, c, fd;
	enum mode mode = MODE_CRAFTED;
	uint8_t saved_hdr[H_SIZE];
	struct bells bells = { .nfds = 0 };
	struct stat st;
	uint32_t i, k;

	while ((c = getopt_long(argc, argv, "m:S:s:t:n:w:i:lvc:p:o:h", opts,
				NULL)) != -1) {
		switch (c) {
		case 'm':
			shm_path = optarg;
			break;
		case 'S':
			server = optarg;
			break;
		case 's':
			seed = strtoul(optarg, NULL, 0);
			break;
		case 't':
			seconds = strtod(optarg, NULL);
			break;
		case 'n':
			count = strtoul(optarg, NULL, 0);
			break;
		case 'w':
			wait_for = strtoul(optarg, NULL, 0);
			break;
		case O_WAIT_MAX:
			wait_max = atof(optarg);
			break;
		case O_WAIT_TRAFFIC:
			wait_traffic = true;
			break;
		case 'i':
			interval = strtoul(optarg, NULL, 0);
			break;
		case 'l':
			list = true;
			break;
		case 'v':
			verbose = true;
			break;
		case 'c':
			i = strtoul(optarg, NULL, 0);
			if (i < MAX_CHANNELS)
				want[i] = true;
			break;
		case 'p':
			if (nports < 64)
				ports[nports++] = strtoul(optarg, NULL, 0);
			break;
		case 'o':
			if (nowners < MAX_PEERS)
				owners[nowners++] = strtoul(optarg, NULL, 0);
			break;
		case O_MODE:
			if (!strcmp(optarg, "crafted")) {
				mode = MODE_CRAFTED;
			} else if (!strcmp(optarg, "random")) {
				mode = MODE_RANDOM;
			} else if (!strcmp(optarg, "ring-data")) {
				mode = MODE_RING_DATA;
			} else {
				usage(stderr);
				return 2;
			}
			break;
		case O_CONTROL:
			control = true;
			break;
		case O_LOCK:
			lock = true;
			break;
		case O_PEER_SLOT:
			peer_slot = atoi(optarg);
			if (peer_slot < 0 || peer_slot >= MAX_PEERS) {
				fprintf(stderr, "ivshmem-hostile: peer slot 0..63\n");
				return 2;
			}
			break;
		case O_STORM:
			storm = true;
			break;
		case O_RESTORE:
			restore = true;
			break;
		case O_RESCAN:
			rescan = true;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (!shm_path || optind != argc || (storm && !server)) {
		usage(stderr);
		return 2;
	}
	fd = open(shm_path, O_RDWR | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &st)) {
		perror(shm_path);
		return 1;
	}
	shm_size = st.st_size;
	if (shm_size < DATA_OFFSET + BLOCK) {
		fprintf(stderr, "ivshmem-hostile: %s is too small\n", shm_path);
		return 1;
	}
	shm = mmap(NULL, shm_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (shm == MAP_FAILED) {
		perror("mmap");
		return 1;
	}
	if (rd32(H_MAGIC) != MAGIC) {
		fprintf(stderr, "ivshmem-hostile: region not formatted\n");
		return 1;
	}
	if (list) {
		list_table();
		return 0;
	}
	rng_state = seed * 0x9e3779b97f4a7c15ULL + 1;
	memcpy(saved_hdr, shm, H_SIZE);

	/* With --wait, until that many targets are there (or --wait-max). */
	end = now() + wait_max;
	while ((ntargets = select_targets(targets)) < wait_for && now() < end)
		usleep(20000);
	if (wait_traffic)
		wait_for_traffic(targets, ntargets, end);
	if (storm && bells_connect(&bells, server))
		return 1;
	if (verbose)
		fprintf(stderr, "%u target entries, %d doorbell fds\n",
			ntargets, bells.nfds);
	/* Tests wait for this line to know the attack is on. */
	printf("attacking %u target entries\n", ntargets);
	fflush(stdout);

	if (lock)
		wr64(H_CONTROL_LOCK, rnd() | 1);
	end = now() + seconds;
	next = now();
	while ((t0 = now()) < end) {
		if (storm)
			bells_ring(&bells, 64);
		if (t0 < next || (count && scribbles >= count)) {
			if (!storm)
				usleep(interval ? interval : 1000);
			continue;
		}
		next = t0 + interval / 1e6;
		if (rescan)
			ntargets = select_targets(targets);
		for (k = 0; k < ntargets; k++) {
			struct target *t = &targets[k];

			if (!still_ours(t))
				continue;
			if (mode == MODE_CRAFTED)
				crafted_chan(t);
			else if (mode == MODE_RANDOM)
				random_chan(t);
			else
				ring_data(t);
			t->writes++;
			scribbles++;
		}
		if (control) {
			scribble_control();
			scribbles++;
		}
		if (peer_slot >= 0) {
			scribble_peer(peer_slot);
			scribbles++;
		}
	}
	if (restore) {
		/* The lock word and usage fields are live: leave them. */
		memcpy(shm, saved_hdr, H_CONTROL_LOCK);
	}
	for (k = 0; k < ntargets; k++)
		printf("touched %u src=%u dst=%u writes=%lu\n",
		       targets[k].index, targets[k].src_port,
		       targets[k].dst_port, targets[k].writes);
	printf("scribbles=%lu rung=%lu\n", scribbles, bells.rung);
	return 0;
}
