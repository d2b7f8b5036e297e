// SPDX-License-Identifier: GPL-2.0
/*
 * ivss_test: ivss's parsing and printing, without the kernel.
 *
 * Includes tools/ivss/ivss.c (without its main()), builds the byte images
 * of the netlink replies af_ivshmem_diag and the "ivshmem" generic netlink
 * family would send, runs them through the same callbacks ivss uses on
 * real replies, and compares the text and JSON printed with what is
 * expected; every JSON output is also checked with `python3 -m json.tool`
 * when python3 is there.  TAP output; exit status 1 if a case failed.
 *
 *   make ivss-test
 */
#define IVSS_NO_MAIN
#include "../tools/ivss/ivss.c"

#include <sys/stat.h>
#include <sys/wait.h>

#define FAM	25

static int ntest, nfail;

static void ok(bool cond, const char *name)
{
	ntest++;
	if (!cond)
		nfail++;
	printf("%sok %d - %s\n", cond ? "" : "not ", ntest, name);
}

/* @s as TAP comment lines. */
static void print_comment(const char *s)
{
	fputs("# ", stdout);
	for (; *s; s++) {
		putchar(*s);
		if (*s == '\n' && s[1])
			fputs("# ", stdout);
	}
	putchar('\n');
}

/* Compares @got with @want; on a difference shows both as TAP comments. */
static void check_str(const char *got, const char *want, const char *name)
{
	bool same = !strcmp(got, want);

	ok(same, name);
	if (!same) {
		printf("# want:\n");
		print_comment(want);
		printf("# got:\n");
		print_comment(got);
	}
}

/* python3 -m json.tool accepts @s; a skip if there is no python3. */
static void check_json_valid(const char *s, const char *name)
{
	char label[128];
	FILE *p;
	int st;

	snprintf(label, sizeof(label), "%s: valid JSON", name);
	if (system("command -v python3 >/dev/null 2>&1")) {
		ntest++;
		printf("ok %d - %s # SKIP no python3\n", ntest, label);
		return;
	}
	p = popen("python3 -m json.tool >/dev/null", "w");
	if (!p) {
		ok(false, label);
		return;
	}
	fputs(s, p);
	st = pclose(p);
	ok(st != -1 && WIFEXITED(st) && WEXITSTATUS(st) == 0, label);
}

/* ------------------------------------------------------------------ */
/* Building replies                                                    */

static char buf[65536] __attribute__((aligned(8)));
static size_t used;

static struct nlmsghdr *msg_start(uint16_t type, size_t extra)
{
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf + used);

	nlh->nlmsg_type = type;
	nlh->nlmsg_flags = NLM_F_MULTI;
	mnl_nlmsg_put_extra_header(nlh, extra);
	return nlh;
}

static void msg_end(struct nlmsghdr *nlh)
{
	used += nlh->nlmsg_len;
}

static void put_done(int err)
{
	struct nlmsghdr *nlh = msg_start(NLMSG_DONE, sizeof(int));

	memcpy(mnl_nlmsg_get_payload(nlh), &err, sizeof(err));
	msg_end(nlh);
}

struct fake_sock {
	uint8_t type, state, shutdown;
	uint16_t region, flags;
	uint32_t lpeer, lport, rpeer, rport, ino, uid, rq, wq, ppid;
	uint64_t cookie;
	const struct ivshmem_diag_channels *ch;
	const uint32_t *mem;
	size_t nmem;
};

static void put_sock(const struct fake_sock *f)
{
	struct nlmsghdr *nlh = msg_start(SOCK_DIAG_BY_FAMILY,
					 sizeof(struct ivshmem_diag_msg));
	struct ivshmem_diag_msg *m = mnl_nlmsg_get_payload(nlh);

	m->idiag_family = FAM;
	m->idiag_type = f->type;
	m->idiag_state = f->state;
	m->idiag_shutdown = f->shutdown;
	m->idiag_region = f->region;
	m->idiag_flags = f->flags;
	m->idiag_local_peer = f->lpeer;
	m->idiag_local_port = f->lport;
	m->idiag_remote_peer = f->rpeer;
	m->idiag_remote_port = f->rport;
	m->idiag_ino = f->ino;
	m->idiag_uid = f->uid;
	m->idiag_rqueue = f->rq;
	m->idiag_wqueue = f->wq;
	m->idiag_peer_pid = f->ppid;
	m->idiag_cookie[0] = (uint32_t)f->cookie;
	m->idiag_cookie[1] = (uint32_t)(f->cookie >> 32);
	if (f->ch)
		mnl_attr_put(nlh, IVSHMEM_DIAG_CHANNELS, sizeof(*f->ch), f->ch);
	if (f->mem)
		mnl_attr_put(nlh, IVSHMEM_DIAG_MEMINFO,
			     f->nmem * sizeof(uint32_t), f->mem);
	msg_end(nlh);
}

#define ANY	IVSHMEM_PEER_ANY

static const struct ivshmem_diag_channels est_ch = {
	.tx_index = 3, .tx_generation = 7, .tx_offset = 1048576,
	.tx_size = 65536,
	.rx_index = 4, .rx_generation = 2, .rx_offset = 1114112,
	.rx_size = 65536,
};

static const struct ivshmem_diag_channels half_ch = {
	.tx_index = IVSHMEM_DIAG_NO_CHANNEL,
	.rx_index = 9, .rx_generation = 1, .rx_offset = 2097152,
	.rx_size = 16384,
};

static const uint32_t dgram_mem[SK_MEMINFO_VARS] = {
	768, 212992, 0, 212992, 0, 0, 0, 0, 2,
};

/* The four sockets: a listener, an established stream socket with
 * unread data, a half-closed seqpacket socket and an unconnected
 * datagram socket; then NLMSG_DONE.
 */
static void build_socks(void)
{
	const struct fake_sock s[] = {
		{ .type = SOCK_STREAM, .state = TCP_LISTEN, .lpeer = ANY,
		  .lport = 4000, .rpeer = ANY, .rport = ANY, .ino = 1001,
		  .uid = 0, .rq = 0, .wq = 16, .cookie = 0x11 },
		{ .type = SOCK_STREAM, .state = TCP_ESTABLISHED, .lpeer = 1,
		  .lport = 4000, .rpeer = 0, .rport = 49152, .ino = 1002,
		  .uid = 1000, .rq = 5, .wq = 0, .ppid = 4242,
		  .flags = IVSHMEM_DIAG_F_SECURE, .cookie = 0x100000012ULL,
		  .ch = &est_ch },
		{ .type = SOCK_SEQPACKET, .state = TCP_FIN_WAIT2,
		  .shutdown = 2, .region = 1, .lpeer = 2, .lport = 49153,
		  .rpeer = 0, .rport = 7000, .ino = 1003, .uid = 1000,
		  .rq = 0, .wq = 120, .ppid = 77, .cookie = 0x13,
		  .ch = &half_ch },
		{ .type = SOCK_DGRAM, .state = TCP_CLOSE, .lpeer = 1,
		  .lport = 5000, .rpeer = ANY, .rport = ANY, .ino = 1004,
		  .uid = 0, .rq = 768, .cookie = 0x14, .mem = dgram_mem,
		  .nmem = SK_MEMINFO_VARS },
	};
	size_t i;

	used = 0;
	for (i = 0; i < sizeof(s) / sizeof(s[0]); i++)
		put_sock(&s[i]);
	put_done(0);
}

/* Runs the replies in buf through diag_msg_cb(), prints with @o. */
static char *run_socks(struct ivss_opts *o, int *ret, int *err,
		       void (*fixup)(struct ivss_socks *))
{
	struct ivss_socks l = { .o = o };
	struct ivss_dump d = { .priv = &l };
	char *out = NULL;
	size_t len = 0;
	FILE *f;

	errno = 0;
	*ret = ivss_cb_run(buf, used, 0, 0, diag_msg_cb, &d);
	*err = errno;
	if (fixup)
		fixup(&l);
	f = open_memstream(&out, &len);
	print_socks(f, &l);
	fclose(f);
	socks_free(&l);
	return out;
}

static char *socks_with(const char *args, void (*fixup)(struct ivss_socks *))
{
	struct ivss_opts o;
	char *argv[16], copy[256], *tok, *sp;
	int argc = 0, ret, err;
	char *out;

	opts_init(&o);
	snprintf(copy, sizeof(copy), "%s", args);
	for (tok = strtok_r(copy, " ", &sp); tok; tok = strtok_r(NULL, " ", &sp)) {
		if (!strcmp(tok, "-a")) {
			o.states = ST_ALL;
		} else if (!strcmp(tok, "-l")) {
			o.states = SB(TCP_LISTEN) | SB(TCP_CLOSE);
			o.listen_rule = true;
		} else if (!strcmp(tok, "-e")) {
			o.extended = true;
		} else if (!strcmp(tok, "-m")) {
			o.memory = true;
		} else if (!strcmp(tok, "-p")) {
			o.processes = true;
		} else if (!strcmp(tok, "-j")) {
			o.json = true;
		} else if (!strcmp(tok, "-H")) {
			o.no_header = true;
		} else if (!strcmp(tok, "-d")) {
			o.types = 1U << SOCK_DGRAM;
		} else {
			argv[argc++] = tok;
		}
	}
	if (parse_filter(&o, argc, argv))
		return strdup("<bad filter>");
	out = run_socks(&o, &ret, &err, fixup);
	if (ret != MNL_CB_STOP) {
		free(out);
		return strdup("<parse error>");
	}
	return out;
}

static void expect_socks(const char *args, const char *want, const char *name)
{
	char *got = socks_with(args, NULL);

	check_str(got, want, name);
	if (strstr(args, "-j"))
		check_json_valid(got, name);
	free(got);
}

static void fake_users(struct ivss_socks *l)
{
	size_t i;

	for (i = 0; i < l->n; i++) {
		if (l->v[i].m.idiag_ino == 1002) {
			add_user(&l->v[i], "server", 300, 4);
			add_user(&l->v[i], "wor\"ker", 301, 4);
		}
	}
}

#define HDR "Netid State      Recv-Q Send-Q Local Address:Port Peer Address:Port Process\n"

static void test_socks(void)
{
	char *got;

	build_socks();
	expect_socks("",
		HDR
		"i_str ESTAB      5      0      1:4000             0:49152\n"
		"i_seq FIN-WAIT-2 0      120    2:49153            0:7000\n",
		"default: connected sockets only");
	expect_socks("-a",
		HDR
		"i_str LISTEN     0      16     *:4000             *:*\n"
		"i_str ESTAB      5      0      1:4000             0:49152\n"
		"i_seq FIN-WAIT-2 0      120    2:49153            0:7000\n"
		"i_dgr UNCONN     768    0      1:5000             *:*\n",
		"-a: all sockets");
	expect_socks("-l -H",
		"i_str LISTEN     0      16     *:4000             *:*\n"
		"i_dgr UNCONN     768    0      1:5000             *:*\n",
		"-l -H: listening and unconnected datagram, no header");
	expect_socks("-a -e -H",
		"i_str LISTEN     0      16     *:4000             *:*               ino:1001 uid:0 sk:11 region:0\n"
		"i_str ESTAB      5      0      1:4000             0:49152           ino:1002 uid:1000 sk:100000012 region:0 secure peer_pid:4242 tx:3:1048576:65536 rx:4:1114112:65536\n"
		"i_seq FIN-WAIT-2 0      120    2:49153            0:7000            ino:1003 uid:1000 sk:13 region:1 shutdown:wr peer_pid:77 tx:- rx:9:2097152:16384\n"
		"i_dgr UNCONN     768    0      1:5000             *:*               ino:1004 uid:0 sk:14 region:0\n",
		"-a -e: extended");
	expect_socks("-d -m -a -H",
		"i_dgr UNCONN     768    0      1:5000             *:*\n"
		"\tskmem:(r768,rb212992,t0,tb212992,f0,w0,o0,bl0,d2)\n",
		"-d -m: datagram sockets and memory");
	expect_socks("-a sport = :4000",
		HDR
		"i_str LISTEN     0      16     *:4000             *:*\n"
		"i_str ESTAB      5      0      1:4000             0:49152\n",
		"filter sport = :4000");
	expect_socks("dport 7000",
		HDR
		"i_seq FIN-WAIT-2 0      120    2:49153            0:7000\n",
		"filter dport 7000");
	expect_socks("-H src 1 and dst 0:*",
		"i_str ESTAB      5      0      1:4000             0:49152\n",
		"filter src 1 and dst 0:*");
	expect_socks("-H state listening state close",
		"i_str LISTEN     0      16     *:4000             *:*\n"
		"i_dgr UNCONN     768    0      1:5000             *:*\n",
		"filter state listening state close");
	expect_socks("-H -a exclude connected region = 0",
		"i_str LISTEN     0      16     *:4000             *:*\n"
		"i_dgr UNCONN     768    0      1:5000             *:*\n",
		"filter exclude connected region = 0");
	expect_socks("state fin-wait-2 sport = 4000", HDR,
		     "filter matching nothing: header only");

	got = socks_with("-p -H", fake_users);
	check_str(got,
		"i_str ESTAB      5      0      1:4000             0:49152           users:((\"server\",pid=300,fd=4),(\"wor\"ker\",pid=301,fd=4))\n"
		"i_seq FIN-WAIT-2 0      120    2:49153            0:7000\n",
		"-p: users");
	free(got);

	expect_socks("-a -j",
		"[\n"
		"{\"netid\":\"i_str\",\"state\":\"LISTEN\",\"recv_q\":0,\"send_q\":16,\"local\":{\"peer\":null,\"port\":4000,\"region\":0},\"peer\":{\"peer\":null,\"port\":null},\"inode\":1001,\"uid\":0,\"cookie\":17,\"peer_pid\":null,\"secure\":false,\"reset\":false,\"shutdown\":0},\n"
		"{\"netid\":\"i_str\",\"state\":\"ESTAB\",\"recv_q\":5,\"send_q\":0,\"local\":{\"peer\":1,\"port\":4000,\"region\":0},\"peer\":{\"peer\":0,\"port\":49152},\"inode\":1002,\"uid\":1000,\"cookie\":4294967314,\"peer_pid\":4242,\"secure\":true,\"reset\":false,\"shutdown\":0,\"channels\":{\"tx\":{\"index\":3,\"generation\":7,\"offset\":1048576,\"size\":65536},\"rx\":{\"index\":4,\"generation\":2,\"offset\":1114112,\"size\":65536}}},\n"
		"{\"netid\":\"i_seq\",\"state\":\"FIN-WAIT-2\",\"recv_q\":0,\"send_q\":120,\"local\":{\"peer\":2,\"port\":49153,\"region\":1},\"peer\":{\"peer\":0,\"port\":7000},\"inode\":1003,\"uid\":1000,\"cookie\":19,\"peer_pid\":77,\"secure\":false,\"reset\":false,\"shutdown\":2,\"channels\":{\"tx\":null,\"rx\":{\"index\":9,\"generation\":1,\"offset\":2097152,\"size\":16384}}},\n"
		"{\"netid\":\"i_dgr\",\"state\":\"UNCONN\",\"recv_q\":768,\"send_q\":0,\"local\":{\"peer\":1,\"port\":5000,\"region\":0},\"peer\":{\"peer\":null,\"port\":null},\"inode\":1004,\"uid\":0,\"cookie\":20,\"peer_pid\":null,\"secure\":false,\"reset\":false,\"shutdown\":0}\n"
		"]\n",
		"-a -j: JSON");
	expect_socks("-d -a -j -m",
		"[\n"
		"{\"netid\":\"i_dgr\",\"state\":\"UNCONN\",\"recv_q\":768,\"send_q\":0,\"local\":{\"peer\":1,\"port\":5000,\"region\":0},\"peer\":{\"peer\":null,\"port\":null},\"inode\":1004,\"uid\":0,\"cookie\":20,\"peer_pid\":null,\"secure\":false,\"reset\":false,\"shutdown\":0,\"skmem\":{\"rmem_alloc\":768,\"rcvbuf\":212992,\"wmem_alloc\":0,\"sndbuf\":212992,\"fwd_alloc\":0,\"wmem_queued\":0,\"optmem\":0,\"backlog\":0,\"drops\":2}}\n"
		"]\n",
		"-d -j -m: JSON with skmem");
	got = socks_with("-j -p", fake_users);
	check_str(got,
		"[\n"
		"{\"netid\":\"i_str\",\"state\":\"ESTAB\",\"recv_q\":5,\"send_q\":0,\"local\":{\"peer\":1,\"port\":4000,\"region\":0},\"peer\":{\"peer\":0,\"port\":49152},\"inode\":1002,\"uid\":1000,\"cookie\":4294967314,\"peer_pid\":4242,\"secure\":true,\"reset\":false,\"shutdown\":0,\"channels\":{\"tx\":{\"index\":3,\"generation\":7,\"offset\":1048576,\"size\":65536},\"rx\":{\"index\":4,\"generation\":2,\"offset\":1114112,\"size\":65536}},\"users\":[{\"name\":\"server\",\"pid\":300,\"fd\":4},{\"name\":\"wor\\\"ker\",\"pid\":301,\"fd\":4}]},\n"
		"{\"netid\":\"i_seq\",\"state\":\"FIN-WAIT-2\",\"recv_q\":0,\"send_q\":120,\"local\":{\"peer\":2,\"port\":49153,\"region\":1},\"peer\":{\"peer\":0,\"port\":7000},\"inode\":1003,\"uid\":1000,\"cookie\":19,\"peer_pid\":77,\"secure\":false,\"reset\":false,\"shutdown\":2,\"channels\":{\"tx\":null,\"rx\":{\"index\":9,\"generation\":1,\"offset\":2097152,\"size\":16384}},\"users\":[]}\n"
		"]\n",
		"-j -p: JSON with users");
	check_json_valid(got, "-j -p: JSON with users");
	free(got);
	expect_socks("-j state syn-sent", "[]\n", "-j, nothing: empty array");
	check_json_valid("[]\n", "empty array");
}

/* Errors: NLMSG_ERROR with an extended ack, NLMSG_DONE with an error,
 * and malformed messages.
 */
static void test_errors(void)
{
	struct ivss_opts o;
	struct nlmsghdr *nlh;
	struct nlmsgerr *e;
	int ret, err;
	char *out;

	opts_init(&o);

	/* What the kernel sends for a family without a sock_diag handler. */
	used = 0;
	nlh = msg_start(NLMSG_ERROR, sizeof(*e));
	nlh->nlmsg_flags = NLM_F_CAPPED | NLM_F_ACK_TLVS;
	e = mnl_nlmsg_get_payload(nlh);
	e->error = -ENOENT;
	e->msg.nlmsg_len = 40;
	e->msg.nlmsg_type = SOCK_DIAG_BY_FAMILY;
	mnl_attr_put_strz(nlh, NLMSGERR_ATTR_MSG, "no handler");
	msg_end(nlh);
	{
		struct ivss_socks l = { .o = &o };
		struct ivss_dump d = { .priv = &l };

		ret = ivss_cb_run(buf, used, 0, 0, diag_msg_cb, &d);
		err = errno;
		ok(ret == MNL_CB_ERROR && err == ENOENT,
		   "NLMSG_ERROR -ENOENT: error, errno ENOENT");
		check_str(d.extack, "no handler", "NLMSG_ERROR: extended ack message");
		socks_free(&l);
	}

	/* An error in the middle of a dump comes in NLMSG_DONE. */
	build_socks();
	used -= NLMSG_ALIGN(sizeof(struct nlmsghdr) + sizeof(int));
	put_done(-EIO);
	out = run_socks(&o, &ret, &err, NULL);
	ok(ret == MNL_CB_ERROR && err == EIO, "NLMSG_DONE -EIO: error, errno EIO");
	free(out);

	/* A channels attribute too short. */
	used = 0;
	nlh = msg_start(SOCK_DIAG_BY_FAMILY, sizeof(struct ivshmem_diag_msg));
	((struct ivshmem_diag_msg *)mnl_nlmsg_get_payload(nlh))->idiag_state =
		TCP_ESTABLISHED;
	mnl_attr_put_u32(nlh, IVSHMEM_DIAG_CHANNELS, 3);
	msg_end(nlh);
	put_done(0);
	out = run_socks(&o, &ret, &err, NULL);
	ok(ret == MNL_CB_ERROR && err == EBADMSG,
	   "short IVSHMEM_DIAG_CHANNELS: EBADMSG");
	free(out);

	/* A message shorter than struct ivshmem_diag_msg. */
	used = 0;
	nlh = msg_start(SOCK_DIAG_BY_FAMILY, 16);
	msg_end(nlh);
	out = run_socks(&o, &ret, &err, NULL);
	ok(ret == MNL_CB_ERROR && err == EBADMSG, "short ivshmem_diag_msg: EBADMSG");
	free(out);

	/* Unknown attributes (a newer kernel's) are skipped. */
	used = 0;
	nlh = msg_start(SOCK_DIAG_BY_FAMILY, sizeof(struct ivshmem_diag_msg));
	((struct ivshmem_diag_msg *)mnl_nlmsg_get_payload(nlh))->idiag_state =
		TCP_ESTABLISHED;
	((struct ivshmem_diag_msg *)mnl_nlmsg_get_payload(nlh))->idiag_type =
		SOCK_STREAM;
	mnl_attr_put_u64(nlh, IVSHMEM_DIAG_MAX + 5, 1);
	msg_end(nlh);
	put_done(0);
	o.no_header = true;
	out = run_socks(&o, &ret, &err, NULL);
	ok(ret == MNL_CB_STOP, "unknown attribute: skipped");
	check_str(out, "i_str ESTAB      0      0      0:0                0:0\n",
		  "unknown attribute: socket listed");
	free(out);
}

/* ------------------------------------------------------------------ */
/* Fabric                                                              */

static struct nlmsghdr *genl_start(uint8_t cmd, uint32_t region)
{
	struct nlmsghdr *nlh = msg_start(0x20, sizeof(struct genlmsghdr));
	struct genlmsghdr *g = mnl_nlmsg_get_payload(nlh);

	g->cmd = cmd;
	g->version = IVSHMEM_GENL_VERSION;
	mnl_attr_put_u32(nlh, IVSHMEM_A_REGION, region);
	return nlh;
}

static void put_peer(uint32_t region, uint32_t id, uint64_t epoch,
		     uint64_t hb, uint32_t flags, uint8_t alive, bool self)
{
	struct nlmsghdr *nlh = genl_start(IVSHMEM_CMD_GET_PEER, region);

	mnl_attr_put_u32(nlh, IVSHMEM_A_PEER_ID, id);
	mnl_attr_put_u64(nlh, IVSHMEM_A_PEER_EPOCH, epoch);
	mnl_attr_put_u64(nlh, IVSHMEM_A_PEER_HEARTBEAT, hb);
	mnl_attr_put_u32(nlh, IVSHMEM_A_PEER_FLAGS, flags);
	mnl_attr_put_u8(nlh, IVSHMEM_A_PEER_ALIVE, alive);
	if (self)
		mnl_attr_put(nlh, IVSHMEM_A_PEER_SELF, 0, NULL);
	msg_end(nlh);
}

/* Region 0 (doorbell, two peers, two channels, some counters) and region
 * 2 (polling, reported by its region message only), the way three dumps
 * would bring them, then NLMSG_DONE.
 */
static void build_fabric(void)
{
	struct nlmsghdr *nlh;
	struct nlattr *nest;

	used = 0;
	/* A channel before its region's message: any order works. */
	nlh = genl_start(IVSHMEM_CMD_GET_CHANNEL, 0);
	mnl_attr_put_u32(nlh, IVSHMEM_A_CHAN_INDEX, 3);
	mnl_attr_put_u32(nlh, IVSHMEM_A_CHAN_GENERATION, 7);
	mnl_attr_put_u32(nlh, IVSHMEM_A_CHAN_SENDER, 1);
	mnl_attr_put_u32(nlh, IVSHMEM_A_CHAN_RECEIVER, 0);
	mnl_attr_put_u32(nlh, IVSHMEM_A_CHAN_TYPE, SOCK_STREAM);
	mnl_attr_put_u32(nlh, IVSHMEM_A_CHAN_SRC_PORT, 49152);
	mnl_attr_put_u32(nlh, IVSHMEM_A_CHAN_DST_PORT, 4000);
	mnl_attr_put_u32(nlh, IVSHMEM_A_CHAN_OFFSET, 1048576);
	mnl_attr_put_u32(nlh, IVSHMEM_A_CHAN_SIZE, 65536);
	mnl_attr_put_u32(nlh, IVSHMEM_A_CHAN_FILL, 16384);
	mnl_attr_put_u32(nlh, IVSHMEM_A_CHAN_SENDER_STATE, IVSHMEM_CHAN_SEND_OPEN);
	mnl_attr_put_u32(nlh, IVSHMEM_A_CHAN_RECEIVER_STATE,
			 IVSHMEM_CHAN_RECV_ACCEPTED);
	mnl_attr_put_u32(nlh, IVSHMEM_A_CHAN_SENDER_PID, 4242);
	msg_end(nlh);

	nlh = genl_start(IVSHMEM_CMD_GET_REGION, 2);
	mnl_attr_put_u32(nlh, IVSHMEM_A_SELF, 0);
	mnl_attr_put_u8(nlh, IVSHMEM_A_DOORBELL, 0);
	mnl_attr_put_u64(nlh, IVSHMEM_A_REGION_SIZE, 4194304);
	mnl_attr_put_u64(nlh, IVSHMEM_A_DATA_BYTES, 3145728);
	mnl_attr_put_u64(nlh, IVSHMEM_A_FREE_BYTES, 3145728);
	mnl_attr_put_u32(nlh, IVSHMEM_A_ACTIVE_CHANNELS, 0);
	mnl_attr_put_u32(nlh, IVSHMEM_A_MAX_CHANNELS, 64);
	msg_end(nlh);

	nlh = genl_start(IVSHMEM_CMD_GET_REGION, 0);
	mnl_attr_put_u32(nlh, IVSHMEM_A_SELF, 1);
	mnl_attr_put_u8(nlh, IVSHMEM_A_DOORBELL, 1);
	mnl_attr_put_u64(nlh, IVSHMEM_A_REGION_SIZE, 67108864);
	mnl_attr_put_u64(nlh, IVSHMEM_A_DATA_BYTES, 66060288);
	mnl_attr_put_u64(nlh, IVSHMEM_A_FREE_BYTES, 65929216);
	mnl_attr_put_u32(nlh, IVSHMEM_A_ACTIVE_CHANNELS, 2);
	mnl_attr_put_u32(nlh, IVSHMEM_A_MAX_CHANNELS, 1024);
	nest = mnl_attr_nest_start(nlh, IVSHMEM_A_STATS);
	mnl_attr_put_u64(nlh, IVSHMEM_STAT_DOORBELLS_SENT, 12);
	mnl_attr_put_u64(nlh, IVSHMEM_STAT_DGRAM_DROPPED_RCVBUF, 3);
	mnl_attr_put_u64(nlh, 50, 9);	/* a newer kernel's counter */
	mnl_attr_nest_end(nlh, nest);
	msg_end(nlh);

	put_peer(0, 0, 1, 5231, IVSS_PEER_F_DOORBELL, 1, false);
	put_peer(0, 1, 2, 5230, IVSS_PEER_F_DOORBELL, 1, true);
	put_peer(0, 2, 1, 17, 0, 0, false);

	/* A datagram channel: no destination port, reply to channel 3. */
	nlh = genl_start(IVSHMEM_CMD_GET_CHANNEL, 0);
	mnl_attr_put_u32(nlh, IVSHMEM_A_CHAN_INDEX, 5);
	mnl_attr_put_u32(nlh, IVSHMEM_A_CHAN_GENERATION, 1);
	mnl_attr_put_u32(nlh, IVSHMEM_A_CHAN_SENDER, 0);
	mnl_attr_put_u32(nlh, IVSHMEM_A_CHAN_RECEIVER, 1);
	mnl_attr_put_u32(nlh, IVSHMEM_A_CHAN_TYPE, SOCK_DGRAM);
	mnl_attr_put_u32(nlh, IVSHMEM_A_CHAN_SRC_PORT, 5001);
	mnl_attr_put_u32(nlh, IVSHMEM_A_CHAN_DST_PORT, IVSHMEM_PORT_ANY);
	mnl_attr_put_u32(nlh, IVSHMEM_A_CHAN_OFFSET, 1114112);
	mnl_attr_put_u32(nlh, IVSHMEM_A_CHAN_SIZE, 16384);
	mnl_attr_put_u32(nlh, IVSHMEM_A_CHAN_FILL, 0);
	mnl_attr_put_u32(nlh, IVSHMEM_A_CHAN_SENDER_STATE, 9);
	mnl_attr_put_u32(nlh, IVSHMEM_A_CHAN_RECEIVER_STATE,
			 IVSHMEM_CHAN_RECV_NONE);
	mnl_attr_put_u32(nlh, IVSHMEM_A_CHAN_PEER_CHANNEL, 3);
	msg_end(nlh);
	put_done(0);
}

static char *run_fabric(unsigned int parts, bool json, bool no_header,
			int *ret)
{
	struct ivss_fabric f = { .parts = parts, .json = json,
				 .no_header = no_header };
	struct ivss_dump d = { .priv = &f };
	char *out = NULL;
	size_t len = 0;
	FILE *s;

	*ret = ivss_cb_run(buf, used, 0, 0, fabric_msg_cb, &d);
	s = open_memstream(&out, &len);
	print_fabric(s, &f);
	fclose(s);
	fabric_free(&f);
	return out;
}

static void expect_fabric(unsigned int parts, bool json, bool no_header,
			  const char *want, const char *name)
{
	int ret;
	char *got = run_fabric(parts, json, no_header, &ret);

	char label[128];

	snprintf(label, sizeof(label), "%s: parsed", name);
	ok(ret == MNL_CB_STOP, label);
	check_str(got, want, name);
	if (json)
		check_json_valid(got, name);
	free(got);
}

static void test_fabric(void)
{
	struct nlmsghdr *nlh;
	int ret;
	char *out;

	build_fabric();
	expect_fabric(PART_ALL, false, false,
		"region 0: self 1, doorbell, size 67108864, data 66060288, free 65929216, channels 2/1024\n"
		"  Peer   Epoch        Heartbeat    State  Flags\n"
		"  0      1            5231         alive  doorbell\n"
		"  1*     2            5230         alive  doorbell\n"
		"  2      1            17           dead   -\n"
		"  Chan  Gen   Snd->Rcv  Type      Ports         Offset    Size     Fill     Fill% Sender     Receiver  Pid\n"
		"  3     7     1->0      stream    49152->4000   1048576   65536    16384    25%   open       accepted  4242\n"
		"  5     1     0->1      dgram     5001->*       1114112   16384    0        0%    9          none      -\n"
		"  Counter                  Value\n"
		"  doorbells_sent           12\n"
		"  dgram_dropped_rcvbuf     3\n"
		"  stat_50                  9\n"
		"\n"
		"region 2: self 0, polling, size 4194304, data 3145728, free 3145728, channels 0/64\n"
		"  Peer   Epoch        Heartbeat    State  Flags\n"
		"  Chan  Gen   Snd->Rcv  Type      Ports         Offset    Size     Fill     Fill% Sender     Receiver  Pid\n",
		"fabric: text");
	expect_fabric(PART_PEERS, false, true,
		"region 0: self 1, doorbell, size 67108864, data 66060288, free 65929216, channels 2/1024\n"
		"  0      1            5231         alive  doorbell\n"
		"  1*     2            5230         alive  doorbell\n"
		"  2      1            17           dead   -\n"
		"\n"
		"region 2: self 0, polling, size 4194304, data 3145728, free 3145728, channels 0/64\n",
		"fabric peers -H: text");
	expect_fabric(PART_ALL, true, false,
		"{\"regions\":[\n"
		"{\"region\":0,\"self\":1,\"mode\":\"doorbell\",\"region_size\":67108864,\"data_bytes\":66060288,\"free_bytes\":65929216,\"active_channels\":2,\"max_channels\":1024,"
		"\"peers\":[{\"id\":0,\"epoch\":1,\"heartbeat\":5231,\"alive\":true,\"self\":false,\"flags\":1,\"doorbell\":true},"
		"{\"id\":1,\"epoch\":2,\"heartbeat\":5230,\"alive\":true,\"self\":true,\"flags\":1,\"doorbell\":true},"
		"{\"id\":2,\"epoch\":1,\"heartbeat\":17,\"alive\":false,\"self\":false,\"flags\":0,\"doorbell\":false}],"
		"\"channels\":[{\"index\":3,\"generation\":7,\"sender\":1,\"receiver\":0,\"type\":\"stream\",\"src_port\":49152,\"dst_port\":4000,\"offset\":1048576,\"size\":65536,\"fill\":16384,\"fill_pct\":25,\"sender_state\":\"open\",\"receiver_state\":\"accepted\",\"sender_pid\":4242},"
		"{\"index\":5,\"generation\":1,\"sender\":0,\"receiver\":1,\"type\":\"dgram\",\"src_port\":5001,\"dst_port\":null,\"offset\":1114112,\"size\":16384,\"fill\":0,\"fill_pct\":0,\"sender_state\":\"9\",\"receiver_state\":\"none\",\"peer_channel\":3}],"
		"\"stats\":{\"doorbells_sent\":12,\"dgram_dropped_rcvbuf\":3,\"stat_50\":9}},\n"
		"{\"region\":2,\"self\":0,\"mode\":\"polling\",\"region_size\":4194304,\"data_bytes\":3145728,\"free_bytes\":3145728,\"active_channels\":0,\"max_channels\":64,\"peers\":[],\"channels\":[],\"stats\":{}}\n"
		"]}\n",
		"fabric -j: JSON");
	expect_fabric(PART_STATS, true, false,
		"{\"regions\":[\n"
		"{\"region\":0,\"self\":1,\"mode\":\"doorbell\",\"region_size\":67108864,\"data_bytes\":66060288,\"free_bytes\":65929216,\"active_channels\":2,\"max_channels\":1024,\"stats\":{\"doorbells_sent\":12,\"dgram_dropped_rcvbuf\":3,\"stat_50\":9}},\n"
		"{\"region\":2,\"self\":0,\"mode\":\"polling\",\"region_size\":4194304,\"data_bytes\":3145728,\"free_bytes\":3145728,\"active_channels\":0,\"max_channels\":64,\"stats\":{}}\n"
		"]}\n",
		"fabric stats -j: JSON");

	used = 0;
	put_done(0);
	expect_fabric(PART_ALL, true, false, "{\"regions\":[]}\n",
		      "fabric -j, no regions");

	/* A message without IVSHMEM_A_REGION, and one with a wrong size. */
	used = 0;
	nlh = msg_start(0x20, sizeof(struct genlmsghdr));
	((struct genlmsghdr *)mnl_nlmsg_get_payload(nlh))->cmd =
		IVSHMEM_CMD_GET_PEER;
	mnl_attr_put_u32(nlh, IVSHMEM_A_PEER_ID, 1);
	msg_end(nlh);
	put_done(0);
	out = run_fabric(PART_ALL, false, false, &ret);
	ok(ret == MNL_CB_ERROR && errno == EBADMSG, "fabric: no region: EBADMSG");
	free(out);

	used = 0;
	nlh = genl_start(IVSHMEM_CMD_GET_REGION, 0);
	mnl_attr_put_u32(nlh, IVSHMEM_A_REGION_SIZE, 1);
	msg_end(nlh);
	put_done(0);
	out = run_fabric(PART_ALL, false, false, &ret);
	ok(ret == MNL_CB_ERROR && errno == EBADMSG,
	   "fabric: u32 for a u64 attribute: EBADMSG");
	free(out);
}

static void test_parse(void)
{
	struct ivss_opts o;
	char *bad1[] = { "sport", "=" };
	char *bad2[] = { "state", "nosuch" };
	char *bad3[] = { "src", "x:1" };
	char *bad4[] = { "frobnicate", "1" };
	char *good[] = { "sport", "eq", ":0x10", "dst", "*:7", "state",
			 "established", "exclude", "syn-sent" };

	opts_init(&o);
	fprintf(stderr, "# the next four messages are expected:\n");
	ok(parse_filter(&o, 2, bad1) < 0, "filter: sport without a value");
	ok(parse_filter(&o, 2, bad2) < 0, "filter: unknown state");
	ok(parse_filter(&o, 2, bad3) < 0, "filter: bad peer");
	ok(parse_filter(&o, 2, bad4) < 0, "filter: unknown condition");
	opts_init(&o);
	ok(parse_filter(&o, 9, good) == 0 && o.sport == 16 &&
	   o.dst_peer == NOCOND && o.dst_port == 7 &&
	   o.states == SB(TCP_ESTABLISHED), "filter: sport eq, dst *:7, state");
}


/* find_users() finds this process in /proc, as ivss -p does. */
static void test_users(void)
{
	struct ivss_opts o;
	struct ivss_socks l = { .o = &o };
	struct ivss_sock s;
	char comm[32];
	struct stat st;
	int sv[2];

	opts_init(&o);
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) || fstat(sv[1], &st)) {
		ok(false, "find_users: socketpair");
		return;
	}
	memset(&s, 0, sizeof(s));
	s.m.idiag_ino = (uint32_t)st.st_ino;
	l.v = xrealloc(NULL, sizeof(s));
	l.v[0] = s;
	l.n = 1;
	find_users(&l);
	read_comm(getpid(), comm, sizeof(comm));
	ok(l.v[0].nusers == 1 && l.v[0].users[0].pid == getpid() &&
	   l.v[0].users[0].fd == sv[1] && !strcmp(l.v[0].users[0].name, comm),
	   "find_users: this process, its fd and its name");
	socks_free(&l);
	close(sv[0]);
	close(sv[1]);
}

/* The real netlink I/O, against the host kernel: no sock_diag handler
 * for family 25 without af_ivshmem_diag, and the generic netlink
 * controller's own family.  Skipped where netlink is not allowed.
 */
static void test_netlink(void)
{
	struct ivshmem_diag_req *r;
	struct ivss_opts o;
	struct ivss_socks l = { .o = &o };
	struct ivss_dump d = { .priv = &l };
	char req[IVSS_REQSZ] __attribute__((aligned(8)));
	struct nlmsghdr *nlh;
	struct mnl_socket *nl;
	int ret, id;

	nl = mnl_socket_open(NETLINK_SOCK_DIAG);
	if (!nl) {
		ntest++;
		printf("ok %d - netlink # SKIP %s\n", ntest, strerror(errno));
		return;
	}
	mnl_socket_close(nl);
	opts_init(&o);
	nlh = mnl_nlmsg_put_header(req);
	nlh->nlmsg_type = SOCK_DIAG_BY_FAMILY;
	nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
	r = mnl_nlmsg_put_extra_header(nlh, sizeof(*r));
	r->sdiag_family = FAM;
	ret = ivss_nl_dump(NETLINK_SOCK_DIAG, nlh, diag_msg_cb, &d);
	if (ret < 0 && errno == ENOENT) {
		ok(true, "sock_diag family 25 on the host: ENOENT");
	} else {
		ntest++;
		printf("ok %d - sock_diag family 25 on the host # SKIP a handler is registered (%d)\n",
		       ntest, ret);
	}
	socks_free(&l);
	errno = ENOENT;
	fail("fail() prints", NULL);
	memset(&d, 0, sizeof(d));
	id = genl_family_id("nlctrl", &d);
	ok(id == GENL_ID_CTRL, "generic netlink: nlctrl resolves to GENL_ID_CTRL");
	id = genl_family_id("ivss-nosuch", &d);
	ok(id < 0 && errno == ENOENT,
	   "generic netlink: an unknown family is ENOENT");
}

int main(void)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	prog = "# ivss";	/* its messages read as TAP comments */
	test_socks();
	test_errors();
	test_fabric();
	test_parse();
	test_users();
	test_netlink();
	printf("1..%d\n", ntest);
	if (nfail)
		printf("# %d of %d failed\n", nfail, ntest);
	return nfail ? 1 : 0;
}
