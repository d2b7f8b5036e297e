// SPDX-License-Identifier: GPL-2.0
/*
 * ivss: list AF_IVSHMEM sockets, like ss(8), and show the fabric (regions,
 * peers, channels and counters) of the af_ivshmem module.
 *
 *   ivss [-alnepmtSdjH] [FILTER]          sockets, from sock_diag
 *   ivss fabric [-jH] [region N] [peers|channels|stats]
 *
 * See man/ivss.8.  The contract with the kernel is
 * include/uapi/linux/ivshmem_diag.h.
 *
 * The code has three layers, kept apart so that the middle and last can be
 * tested without the kernel:
 *
 *  - netlink I/O: ivss_nl_dump() sends one request and feeds every reply
 *    buffer to ivss_cb_run();
 *  - parsing: ivss_cb_run() runs libmnl's callback loop over a buffer of
 *    netlink messages with diag_msg_cb() (sockets) or fabric_msg_cb()
 *    (the generic netlink family), which validate the messages and their
 *    attributes and fill struct ivss_socks or struct ivss_fabric; errors
 *    (NLMSG_ERROR, or NLMSG_DONE carrying one) set errno and keep the
 *    extended ack message, if any;
 *  - printing: print_socks() and print_fabric() write text or JSON to a
 *    FILE.
 *
 * Test mode: selftests/ivss_test.c defines IVSS_NO_MAIN and includes this
 * file, builds the byte images of the replies the kernel would send, runs
 * them through ivss_cb_run() and compares what print_socks() and
 * print_fabric() write with the expected text and JSON (`make ivss-test`,
 * TAP output).
 */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <netinet/tcp.h>	/* TCP_ESTABLISHED ... TCP_CLOSING */
#include <linux/genetlink.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <libmnl/libmnl.h>

#include <linux/ivshmem_diag.h>
#include "../lib/ivshmem.h"

#define ARRAY_SIZE(a)	(sizeof(a) / sizeof((a)[0]))

#define IVSS_BUFSZ	32768	/* a dump part is at most 32 KiB */
#define IVSS_REQSZ	512	/* our requests are small */

/* The peer slot flag for doorbells (IVSHM_PEER_F_DOORBELL in the ABI). */
#define IVSS_PEER_F_DOORBELL	0x1

/* Every TCP_* state the kernel may report, as bits. */
#define SB(s)		(1U << (s))
#define ST_ALL		(SB(TCP_ESTABLISHED) | SB(TCP_SYN_SENT) | \
			 SB(TCP_SYN_RECV) | SB(TCP_FIN_WAIT1) | \
			 SB(TCP_FIN_WAIT2) | SB(TCP_TIME_WAIT) | \
			 SB(TCP_CLOSE) | SB(TCP_CLOSE_WAIT) | \
			 SB(TCP_LAST_ACK) | SB(TCP_LISTEN) | SB(TCP_CLOSING))
#define ST_CONNECTED	(ST_ALL & ~(SB(TCP_LISTEN) | SB(TCP_CLOSE)))
#define TYPES_ALL	((1U << SOCK_STREAM) | (1U << SOCK_SEQPACKET) | \
			 (1U << SOCK_DGRAM))

/* A filter value that is not set. */
#define NOCOND		(-1LL)

static const char *prog = "ivss";

/* ------------------------------------------------------------------ */
/* Options and filters                                                 */

struct ivss_opts {
	uint32_t states;	/* SB(TCP_*) */
	uint32_t types;		/* 1 << SOCK_* */
	bool listen_rule;	/* -l: TCP_CLOSE only for datagram sockets */
	bool extended, processes, memory, json, no_header;
	long long sport, dport;	/* NOCOND, or the value */
	long long src_peer, src_port, dst_peer, dst_port, region;
};

static void opts_init(struct ivss_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->states = ST_CONNECTED;
	o->types = TYPES_ALL;
	o->sport = NOCOND;
	o->dport = NOCOND;
	o->src_peer = NOCOND;
	o->src_port = NOCOND;
	o->dst_peer = NOCOND;
	o->dst_port = NOCOND;
	o->region = NOCOND;
}

/* ss's state names; "close" also as "closed" and "unconnected". */
static const struct {
	const char *name;
	uint32_t mask;
} state_names[] = {
	{ "all", ST_ALL },
	{ "connected", ST_CONNECTED },
	{ "synchronized", ST_CONNECTED & ~SB(TCP_SYN_SENT) },
	{ "established", SB(TCP_ESTABLISHED) },
	{ "syn-sent", SB(TCP_SYN_SENT) },
	{ "syn-recv", SB(TCP_SYN_RECV) },
	{ "fin-wait-1", SB(TCP_FIN_WAIT1) },
	{ "fin-wait-2", SB(TCP_FIN_WAIT2) },
	{ "time-wait", SB(TCP_TIME_WAIT) },
	{ "close", SB(TCP_CLOSE) },
	{ "closed", SB(TCP_CLOSE) },
	{ "unconnected", SB(TCP_CLOSE) },
	{ "close-wait", SB(TCP_CLOSE_WAIT) },
	{ "last-ack", SB(TCP_LAST_ACK) },
	{ "listening", SB(TCP_LISTEN) },
	{ "listen", SB(TCP_LISTEN) },
	{ "closing", SB(TCP_CLOSING) },
};

static int parse_state(const char *s, uint32_t *mask)
{
	size_t i;

	for (i = 0; i < ARRAY_SIZE(state_names); i++) {
		if (!strcasecmp(s, state_names[i].name)) {
			*mask = state_names[i].mask;
			return 0;
		}
	}
	return -1;
}

/* A u32, or "*" for the wildcard (returned as NOCOND). */
static int parse_u32(const char *s, long long *v)
{
	unsigned long long n;
	char *end;

	if (!strcmp(s, "*")) {
		*v = NOCOND;
		return 0;
	}
	if (!isdigit((unsigned char)*s))
		return -1;
	errno = 0;
	n = strtoull(s, &end, 0);
	if (errno || *end || n > UINT32_MAX)
		return -1;
	*v = (long long)n;
	return 0;
}

/* PEER[:PORT], either may be "*". */
static int parse_addr(const char *s, long long *peer, long long *port)
{
	char buf[64], *colon;

	if (strlen(s) >= sizeof(buf))
		return -1;
	strcpy(buf, s);
	colon = strchr(buf, ':');
	*port = NOCOND;
	if (colon) {
		*colon = '\0';
		if (parse_u32(colon + 1, port))
			return -1;
	}
	return parse_u32(buf, peer);
}

static bool is_key(const char *s)
{
	static const char * const keys[] = {
		"state", "exclude", "excl", "sport", "dport", "src", "dst",
		"region",
	};
	size_t i;

	for (i = 0; i < ARRAY_SIZE(keys); i++)
		if (!strcmp(s, keys[i]))
			return true;
	return false;
}

static bool is_op(const char *s)
{
	return !strcmp(s, "=") || !strcmp(s, "==") || !strcmp(s, "eq");
}

/*
 * The filter: a sequence of conditions, all of which must hold.
 *   state STATE, exclude STATE      (repeatable)
 *   sport [OP] [:]PORT, dport [OP] [:]PORT
 *   src [OP] PEER[:PORT], dst [OP] PEER[:PORT]
 *   region [OP] N
 * OP is "=", "==" or "eq"; "and" between conditions is accepted.
 * Returns 0, or -1 after printing what is wrong.
 */
static int parse_filter(struct ivss_opts *o, int argc, char **argv)
{
	uint32_t incl = 0, excl = 0, m;
	bool state_given = false;
	int i;

	for (i = 0; i < argc; i++) {
		const char *k = argv[i], *v;

		if (!strcmp(k, "and") || !strcmp(k, "&&"))
			continue;
		if (!is_key(k)) {
			fprintf(stderr, "%s: filter: unknown condition \"%s\"\n",
				prog, k);
			return -1;
		}
		if (i + 1 < argc && is_op(argv[i + 1]) &&
		    strcmp(k, "state") && strcmp(k, "exclude") &&
		    strcmp(k, "excl"))
			i++;
		if (i + 1 >= argc) {
			fprintf(stderr, "%s: filter: \"%s\" needs a value\n",
				prog, k);
			return -1;
		}
		v = argv[++i];
		if (!strcmp(k, "state") || !strcmp(k, "exclude") ||
		    !strcmp(k, "excl")) {
			if (parse_state(v, &m)) {
				fprintf(stderr, "%s: filter: unknown state \"%s\"\n",
					prog, v);
				return -1;
			}
			if (k[0] == 's') {
				state_given = true;
				incl |= m;
			} else {
				excl |= m;
			}
			continue;
		}
		if (!strcmp(k, "sport") || !strcmp(k, "dport")) {
			long long *p = k[0] == 's' ? &o->sport : &o->dport;

			if (parse_u32(v[0] == ':' ? v + 1 : v, p))
				goto bad;
		} else if (!strcmp(k, "src")) {
			if (parse_addr(v, &o->src_peer, &o->src_port))
				goto bad;
		} else if (!strcmp(k, "dst")) {
			if (parse_addr(v, &o->dst_peer, &o->dst_port))
				goto bad;
		} else if (parse_u32(v, &o->region)) {
			goto bad;
		}
		continue;
bad:
		fprintf(stderr, "%s: filter: bad value \"%s\" for %s\n",
			prog, v, k);
		return -1;
	}
	if (state_given) {
		o->states = incl;
		o->listen_rule = false;
	}
	o->states &= ~excl;
	return 0;
}

/* ------------------------------------------------------------------ */
/* Netlink: the callback loop and the I/O                              */

/**
 * struct ivss_dump - what the callbacks of one request share
 * @extack: the extended ack message of an error, or ""
 * @priv: the data callback's own state
 */
struct ivss_dump {
	char extack[256];
	void *priv;
};

static int extack_attr_cb(const struct nlattr *a, void *data)
{
	struct ivss_dump *d = data;

	if (mnl_attr_get_type(a) == NLMSGERR_ATTR_MSG &&
	    mnl_attr_validate(a, MNL_TYPE_NUL_STRING) == 0)
		snprintf(d->extack, sizeof(d->extack), "%s",
			 mnl_attr_get_str(a));
	return MNL_CB_OK;
}

static void get_extack(const struct nlmsghdr *nlh, size_t off,
		       struct ivss_dump *d)
{
	if (!(nlh->nlmsg_flags & NLM_F_ACK_TLVS) ||
	    off > mnl_nlmsg_get_payload_len(nlh))
		return;
	mnl_attr_parse(nlh, off, extack_attr_cb, d);
}

static int ctl_error_cb(const struct nlmsghdr *nlh, void *data)
{
	const struct nlmsgerr *e = mnl_nlmsg_get_payload(nlh);
	size_t off = sizeof(*e);

	if (mnl_nlmsg_get_payload_len(nlh) < sizeof(*e)) {
		errno = EBADMSG;
		return MNL_CB_ERROR;
	}
	if (e->error == 0)
		return MNL_CB_STOP;	/* an ack */
	if (!(nlh->nlmsg_flags & NLM_F_CAPPED) &&
	    e->msg.nlmsg_len >= sizeof(struct nlmsghdr))
		off += e->msg.nlmsg_len - sizeof(struct nlmsghdr);
	get_extack(nlh, off, data);
	errno = e->error < 0 ? -e->error : e->error;
	return MNL_CB_ERROR;
}

/* NLMSG_DONE ends a dump; an error during the dump comes in it. */
static int ctl_done_cb(const struct nlmsghdr *nlh, void *data)
{
	int err;

	if (mnl_nlmsg_get_payload_len(nlh) < sizeof(int))
		return MNL_CB_STOP;
	memcpy(&err, mnl_nlmsg_get_payload(nlh), sizeof(err));
	if (err >= 0)
		return MNL_CB_STOP;
	get_extack(nlh, sizeof(int), data);
	errno = -err;
	return MNL_CB_ERROR;
}

static mnl_cb_t ctl_cbs[NLMSG_MIN_TYPE] = {
	[NLMSG_ERROR] = ctl_error_cb,
	[NLMSG_DONE] = ctl_done_cb,
};

/*
 * Runs @cb on every data message in @buf.  Returns MNL_CB_OK (more to
 * come), MNL_CB_STOP (done) or MNL_CB_ERROR with errno set.
 */
static int ivss_cb_run(const void *buf, size_t len, unsigned int seq,
		       unsigned int portid, mnl_cb_t cb, struct ivss_dump *d)
{
	return mnl_cb_run2(buf, len, seq, portid, cb, d, ctl_cbs, NLMSG_MIN_TYPE);
}

/*
 * Sends @req on a new socket of netlink @bus and runs ivss_cb_run() on
 * the replies until the end.  Returns 0, or -1 with errno set.
 */
static int ivss_nl_dump(int bus, struct nlmsghdr *req, mnl_cb_t cb,
			struct ivss_dump *d)
{
	static char buf[IVSS_BUFSZ];
	struct mnl_socket *nl;
	unsigned int portid, seq;
	int one = 1, ret = -1, err;
	ssize_t n;

	nl = mnl_socket_open(bus);
	if (!nl)
		return -1;
	/* Older kernels lack extended acks; errors come without a message. */
	mnl_socket_setsockopt(nl, NETLINK_EXT_ACK, &one, sizeof(one));
	if (mnl_socket_bind(nl, 0, MNL_SOCKET_AUTOPID) < 0)
		goto out;
	portid = mnl_socket_get_portid(nl);
	seq = (unsigned int)time(NULL);
	req->nlmsg_seq = seq;
	if (mnl_socket_sendto(nl, req, req->nlmsg_len) < 0)
		goto out;
	do {
		n = mnl_socket_recvfrom(nl, buf, sizeof(buf));
		if (n < 0) {
			if (errno == EINTR)
				continue;
			goto out;
		}
		ret = ivss_cb_run(buf, (size_t)n, seq, portid, cb, d);
	} while (ret > MNL_CB_STOP);
	ret = ret == MNL_CB_STOP ? 0 : -1;
out:
	err = errno;
	mnl_socket_close(nl);
	errno = err;
	return ret;
}

static const char *errname(int err)
{
	const char *s = strerrorname_np(err);

	return s ? s : "?";
}

/* "ivss: WHAT: ERRNAME (description)[: extack]" */
static int fail(const char *what, const struct ivss_dump *d)
{
	int err = errno;

	fprintf(stderr, "%s: %s: %s (%s)%s%s\n", prog, what, errname(err),
		strerror(err), d && d->extack[0] ? ": " : "",
		d ? d->extack : "");
	return 1;
}

/* ------------------------------------------------------------------ */
/* Sockets: parsing                                                    */

struct ivss_user {
	char name[32];
	int pid;
	int fd;
};

struct ivss_sock {
	struct ivshmem_diag_msg m;
	bool has_chan;
	struct ivshmem_diag_channels ch;
	unsigned int nmem;	/* valid entries of @mem */
	uint32_t mem[SK_MEMINFO_VARS];
	struct ivss_user *users;
	size_t nusers;
};

struct ivss_socks {
	const struct ivss_opts *o;
	struct ivss_sock *v;
	size_t n, cap;
};

static void *xrealloc(void *p, size_t n)
{
	p = realloc(p, n ? n : 1);
	if (!p) {
		fprintf(stderr, "%s: out of memory\n", prog);
		exit(1);
	}
	return p;
}

static int diag_attr_cb(const struct nlattr *a, void *data)
{
	struct ivss_sock *s = data;
	size_t len = mnl_attr_get_payload_len(a);

	switch (mnl_attr_get_type(a)) {
	case IVSHMEM_DIAG_CHANNELS:
		/* A longer one is a newer kernel's: use what we know. */
		if (len < sizeof(s->ch)) {
			errno = EBADMSG;
			return MNL_CB_ERROR;
		}
		memcpy(&s->ch, mnl_attr_get_payload(a), sizeof(s->ch));
		s->has_chan = true;
		break;
	case IVSHMEM_DIAG_MEMINFO:
		len /= sizeof(uint32_t);
		if (len <= SK_MEMINFO_SNDBUF) {
			errno = EBADMSG;
			return MNL_CB_ERROR;
		}
		if (len > SK_MEMINFO_VARS)
			len = SK_MEMINFO_VARS;
		memcpy(s->mem, mnl_attr_get_payload(a), len * sizeof(uint32_t));
		s->nmem = (unsigned int)len;
		break;
	default:
		break;		/* unknown: a newer kernel's */
	}
	return MNL_CB_OK;
}

static bool cond(long long want, uint32_t have)
{
	return want == NOCOND || (uint32_t)want == have;
}

static bool sock_match(const struct ivss_opts *o, const struct ivshmem_diag_msg *m)
{
	if (m->idiag_type >= 32 || !(o->types & (1U << m->idiag_type)))
		return false;
	if (m->idiag_state >= 32 || !(o->states & SB(m->idiag_state)))
		return false;
	if (o->listen_rule && m->idiag_state == TCP_CLOSE &&
	    m->idiag_type != SOCK_DGRAM)
		return false;
	return cond(o->sport, m->idiag_local_port) &&
	       cond(o->dport, m->idiag_remote_port) &&
	       cond(o->src_peer, m->idiag_local_peer) &&
	       cond(o->src_port, m->idiag_local_port) &&
	       cond(o->dst_peer, m->idiag_remote_peer) &&
	       cond(o->dst_port, m->idiag_remote_port) &&
	       cond(o->region, m->idiag_region);
}

/* One struct ivshmem_diag_msg and its attributes. */
static int diag_msg_cb(const struct nlmsghdr *nlh, void *data)
{
	struct ivss_dump *d = data;
	struct ivss_socks *l = d->priv;
	struct ivss_sock s;

	if (nlh->nlmsg_type != SOCK_DIAG_BY_FAMILY)
		return MNL_CB_OK;
	if (mnl_nlmsg_get_payload_len(nlh) < sizeof(s.m)) {
		errno = EBADMSG;
		return MNL_CB_ERROR;
	}
	memset(&s, 0, sizeof(s));
	memcpy(&s.m, mnl_nlmsg_get_payload(nlh), sizeof(s.m));
	if (mnl_attr_parse(nlh, sizeof(s.m), diag_attr_cb, &s) < 0)
		return MNL_CB_ERROR;
	/* The kernel filters by type and state too; an older one may not. */
	if (!sock_match(l->o, &s.m))
		return MNL_CB_OK;
	if (l->n == l->cap) {
		l->cap = l->cap ? 2 * l->cap : 16;
		l->v = xrealloc(l->v, l->cap * sizeof(*l->v));
	}
	l->v[l->n++] = s;
	return MNL_CB_OK;
}

static void socks_free(struct ivss_socks *l)
{
	size_t i;

	for (i = 0; i < l->n; i++)
		free(l->v[i].users);
	free(l->v);
	l->v = NULL;
	l->n = 0;
	l->cap = 0;
}

/* ------------------------------------------------------------------ */
/* Sockets: owners, from /proc/PID/fd, as ss -p finds them             */

static int cmp_ino(const void *a, const void *b)
{
	const struct ivss_sock *x = *(struct ivss_sock * const *)a;
	const struct ivss_sock *y = *(struct ivss_sock * const *)b;

	return x->m.idiag_ino < y->m.idiag_ino ? -1 :
	       x->m.idiag_ino > y->m.idiag_ino;
}

static void add_user(struct ivss_sock *s, const char *comm, int pid, int fd)
{
	struct ivss_user *u;

	s->users = xrealloc(s->users, (s->nusers + 1) * sizeof(*s->users));
	u = &s->users[s->nusers++];
	snprintf(u->name, sizeof(u->name), "%s", comm);
	u->pid = pid;
	u->fd = fd;
}

static void read_comm(int pid, char *comm, size_t size)
{
	char path[64];
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/comm", pid);
	comm[0] = '\0';
	f = fopen(path, "r");
	if (!f)
		return;
	if (fgets(comm, (int)size, f))
		comm[strcspn(comm, "\n")] = '\0';
	fclose(f);
}

/* Processes we may not look into are skipped, as ss does. */
static void find_users(struct ivss_socks *l)
{
	struct ivss_sock **idx, key_s, *key = &key_s, **hit;
	struct dirent *pe, *fe;
	DIR *proc, *fds;
	size_t i;

	if (!l->n)
		return;
	idx = xrealloc(NULL, l->n * sizeof(*idx));
	for (i = 0; i < l->n; i++)
		idx[i] = &l->v[i];
	qsort(idx, l->n, sizeof(*idx), cmp_ino);
	proc = opendir("/proc");
	if (!proc)
		goto out;
	while ((pe = readdir(proc))) {
		char path[64], comm[32] = "", link[64];
		int pid;

		if (!isdigit((unsigned char)pe->d_name[0]))
			continue;
		pid = atoi(pe->d_name);
		snprintf(path, sizeof(path), "/proc/%d/fd", pid);
		fds = opendir(path);
		if (!fds)
			continue;
		while ((fe = readdir(fds))) {
			unsigned int ino;
			ssize_t n;

			if (!isdigit((unsigned char)fe->d_name[0]))
				continue;
			n = readlinkat(dirfd(fds), fe->d_name, link,
				       sizeof(link) - 1);
			if (n <= 0)
				continue;
			link[n] = '\0';
			if (sscanf(link, "socket:[%u]", &ino) != 1)
				continue;
			key_s.m.idiag_ino = ino;
			hit = bsearch(&key, idx, l->n, sizeof(*idx), cmp_ino);
			if (!hit)
				continue;
			if (!comm[0])
				read_comm(pid, comm, sizeof(comm));
			add_user(*hit, comm, pid, atoi(fe->d_name));
		}
		closedir(fds);
	}
	closedir(proc);
out:
	free(idx);
}

/* ------------------------------------------------------------------ */
/* JSON writer                                                         */

/**
 * struct jw - a small JSON writer
 * @f: output
 * @depth: open containers
 * @nl_depth: elements of containers at this depth start on a new line
 * @first: per depth: no element written yet
 */
struct jw {
	FILE *f;
	int depth;
	int nl_depth;
	bool first[16];
};

static void jw_sep(struct jw *j, const char *key)
{
	if (j->depth) {
		if (!j->first[j->depth])
			fputc(',', j->f);
		if (j->depth == j->nl_depth)
			fputc('\n', j->f);
		j->first[j->depth] = false;
	}
	if (key)
		fprintf(j->f, "\"%s\":", key);
}

static void jw_open(struct jw *j, const char *key, char c)
{
	jw_sep(j, key);
	fputc(c, j->f);
	j->first[++j->depth] = true;
}

static void jw_close(struct jw *j, char c)
{
	if (j->depth == j->nl_depth && !j->first[j->depth])
		fputc('\n', j->f);
	j->depth--;
	fputc(c, j->f);
}

static void jw_uint(struct jw *j, const char *key, uint64_t v)
{
	jw_sep(j, key);
	fprintf(j->f, "%" PRIu64, v);
}

static void jw_bool(struct jw *j, const char *key, bool v)
{
	jw_sep(j, key);
	fputs(v ? "true" : "false", j->f);
}

static void jw_null(struct jw *j, const char *key)
{
	jw_sep(j, key);
	fputs("null", j->f);
}

/* Bytes above 0x7f are written as \u00XX: always valid JSON. */
static void jw_str(struct jw *j, const char *key, const char *s)
{
	jw_sep(j, key);
	fputc('"', j->f);
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '"' || c == '\\')
			fprintf(j->f, "\\%c", c);
		else if (c < 0x20 || c > 0x7e)
			fprintf(j->f, "\\u%04x", c);
		else
			fputc(c, j->f);
	}
	fputc('"', j->f);
}

/* A u32 that may be the wildcard ~0: null then. */
static void jw_u32_any(struct jw *j, const char *key, uint32_t v)
{
	if (v == IVSHMEM_PORT_ANY)
		jw_null(j, key);
	else
		jw_uint(j, key, v);
}

/* ------------------------------------------------------------------ */
/* Sockets: printing                                                   */

static const char *netid_name(unsigned int type)
{
	switch (type) {
	case SOCK_STREAM:
		return "i_str";
	case SOCK_SEQPACKET:
		return "i_seq";
	case SOCK_DGRAM:
		return "i_dgr";
	default:
		return "?";
	}
}

static const char *state_name(unsigned int state)
{
	static const char * const names[] = {
		[TCP_ESTABLISHED] = "ESTAB",
		[TCP_SYN_SENT] = "SYN-SENT",
		[TCP_SYN_RECV] = "SYN-RECV",
		[TCP_FIN_WAIT1] = "FIN-WAIT-1",
		[TCP_FIN_WAIT2] = "FIN-WAIT-2",
		[TCP_TIME_WAIT] = "TIME-WAIT",
		[TCP_CLOSE] = "UNCONN",
		[TCP_CLOSE_WAIT] = "CLOSE-WAIT",
		[TCP_LAST_ACK] = "LAST-ACK",
		[TCP_LISTEN] = "LISTEN",
		[TCP_CLOSING] = "CLOSING",
	};

	if (state < ARRAY_SIZE(names) && names[state])
		return names[state];
	return "UNKNOWN";
}

static const char *shutdown_name(unsigned int bits)
{
	static const char * const names[] = { "", "rd", "wr", "rdwr" };

	return names[bits & 3];
}

/* "N" or "*" for the wildcard ~0 (peer or port). */
static char *fmt_id(char *buf, size_t size, uint32_t v)
{
	if (v == IVSHMEM_PORT_ANY)
		snprintf(buf, size, "*");
	else
		snprintf(buf, size, "%u", v);
	return buf;
}

static void fmt_addr(char *buf, size_t size, uint32_t peer, uint32_t port)
{
	char p[16], q[16];

	snprintf(buf, size, "%s:%s", fmt_id(p, sizeof(p), peer),
		 fmt_id(q, sizeof(q), port));
}

static uint64_t sock_cookie(const struct ivshmem_diag_msg *m)
{
	return (uint64_t)m->idiag_cookie[1] << 32 | m->idiag_cookie[0];
}

static void print_users_text(FILE *out, const struct ivss_sock *s)
{
	size_t i;

	fputs("users:(", out);
	for (i = 0; i < s->nusers; i++)
		fprintf(out, "%s(\"%s\",pid=%d,fd=%d)", i ? "," : "",
			s->users[i].name, s->users[i].pid, s->users[i].fd);
	fputc(')', out);
}

static void print_chan_text(FILE *out, const char *dir, uint32_t index,
			    uint32_t offset, uint32_t size)
{
	if (index == IVSHMEM_DIAG_NO_CHANNEL)
		fprintf(out, " %s:-", dir);
	else
		fprintf(out, " %s:%u:%u:%u", dir, index, offset, size);
}

static void print_extended_text(FILE *out, const struct ivss_sock *s)
{
	const struct ivshmem_diag_msg *m = &s->m;

	fprintf(out, " ino:%u uid:%u sk:%" PRIx64 " region:%u", m->idiag_ino,
		m->idiag_uid, sock_cookie(m), m->idiag_region);
	if (m->idiag_shutdown & 3)
		fprintf(out, " shutdown:%s", shutdown_name(m->idiag_shutdown));
	if (m->idiag_flags & IVSHMEM_DIAG_F_SECURE)
		fputs(" secure", out);
	if (m->idiag_flags & IVSHMEM_DIAG_F_RESET)
		fputs(" reset", out);
	if (m->idiag_peer_pid)
		fprintf(out, " peer_pid:%u", m->idiag_peer_pid);
	if (s->has_chan) {
		print_chan_text(out, "tx", s->ch.tx_index, s->ch.tx_offset,
				s->ch.tx_size);
		print_chan_text(out, "rx", s->ch.rx_index, s->ch.rx_offset,
				s->ch.rx_size);
	}
}

/* As ss prints it: skmem:(r0,rb212992,t0,tb212992,f0,w0,o0,bl0,d0) */
static void print_skmem_text(FILE *out, const struct ivss_sock *s)
{
	static const char * const tags[SK_MEMINFO_VARS] = {
		"r", "rb", "t", "tb", "f", "w", "o", "bl", "d",
	};
	unsigned int i;

	fputs("\n\tskmem:(", out);
	for (i = 0; i < s->nmem; i++)
		fprintf(out, "%s%s%u", i ? "," : "", tags[i], s->mem[i]);
	fputc(')', out);
}

static void print_socks_text(FILE *out, const struct ivss_socks *l)
{
	const struct ivss_opts *o = l->o;
	int wl = (int)strlen("Local Address:Port");
	int wp = (int)strlen("Peer Address:Port");
	char a[48];
	size_t i;

	for (i = 0; i < l->n; i++) {
		const struct ivshmem_diag_msg *m = &l->v[i].m;

		fmt_addr(a, sizeof(a), m->idiag_local_peer, m->idiag_local_port);
		if ((int)strlen(a) > wl)
			wl = (int)strlen(a);
		fmt_addr(a, sizeof(a), m->idiag_remote_peer,
			 m->idiag_remote_port);
		if ((int)strlen(a) > wp)
			wp = (int)strlen(a);
	}
	if (!o->no_header)
		fprintf(out, "%-5s %-10s %-6s %-6s %-*s %-*s Process\n",
			"Netid", "State", "Recv-Q", "Send-Q", wl,
			"Local Address:Port", wp, "Peer Address:Port");
	for (i = 0; i < l->n; i++) {
		const struct ivss_sock *s = &l->v[i];
		const struct ivshmem_diag_msg *m = &s->m;
		bool more = (o->processes && s->nusers) || o->extended;
		char p[48];

		fmt_addr(a, sizeof(a), m->idiag_local_peer, m->idiag_local_port);
		fmt_addr(p, sizeof(p), m->idiag_remote_peer,
			 m->idiag_remote_port);
		fprintf(out, "%-5s %-10s %-6u %-6u %-*s %-*s",
			netid_name(m->idiag_type), state_name(m->idiag_state),
			m->idiag_rqueue, m->idiag_wqueue, wl, a,
			more ? wp : 0, p);
		if (o->processes && s->nusers) {
			fputc(' ', out);
			print_users_text(out, s);
		}
		if (o->extended)
			print_extended_text(out, s);
		if (o->memory && s->nmem)
			print_skmem_text(out, s);
		fputc('\n', out);
	}
}

static void print_chan_json(struct jw *j, const char *dir, uint32_t index,
			    uint32_t gen, uint32_t offset, uint32_t size)
{
	if (index == IVSHMEM_DIAG_NO_CHANNEL) {
		jw_null(j, dir);
		return;
	}
	jw_open(j, dir, '{');
	jw_uint(j, "index", index);
	jw_uint(j, "generation", gen);
	jw_uint(j, "offset", offset);
	jw_uint(j, "size", size);
	jw_close(j, '}');
}

static void print_sock_json(struct jw *j, const struct ivss_opts *o,
			    const struct ivss_sock *s)
{
	static const char * const mem_names[SK_MEMINFO_VARS] = {
		"rmem_alloc", "rcvbuf", "wmem_alloc", "sndbuf", "fwd_alloc",
		"wmem_queued", "optmem", "backlog", "drops",
	};
	const struct ivshmem_diag_msg *m = &s->m;
	size_t i;

	jw_open(j, NULL, '{');
	jw_str(j, "netid", netid_name(m->idiag_type));
	jw_str(j, "state", state_name(m->idiag_state));
	jw_uint(j, "recv_q", m->idiag_rqueue);
	jw_uint(j, "send_q", m->idiag_wqueue);
	jw_open(j, "local", '{');
	jw_u32_any(j, "peer", m->idiag_local_peer);
	jw_u32_any(j, "port", m->idiag_local_port);
	jw_uint(j, "region", m->idiag_region);
	jw_close(j, '}');
	jw_open(j, "peer", '{');
	jw_u32_any(j, "peer", m->idiag_remote_peer);
	jw_u32_any(j, "port", m->idiag_remote_port);
	jw_close(j, '}');
	jw_uint(j, "inode", m->idiag_ino);
	jw_uint(j, "uid", m->idiag_uid);
	jw_uint(j, "cookie", sock_cookie(m));
	if (m->idiag_peer_pid)
		jw_uint(j, "peer_pid", m->idiag_peer_pid);
	else
		jw_null(j, "peer_pid");
	jw_bool(j, "secure", m->idiag_flags & IVSHMEM_DIAG_F_SECURE);
	jw_bool(j, "reset", m->idiag_flags & IVSHMEM_DIAG_F_RESET);
	jw_uint(j, "shutdown", m->idiag_shutdown & 3);
	if (s->has_chan) {
		jw_open(j, "channels", '{');
		print_chan_json(j, "tx", s->ch.tx_index, s->ch.tx_generation,
				s->ch.tx_offset, s->ch.tx_size);
		print_chan_json(j, "rx", s->ch.rx_index, s->ch.rx_generation,
				s->ch.rx_offset, s->ch.rx_size);
		jw_close(j, '}');
	}
	if (o->memory && s->nmem) {
		jw_open(j, "skmem", '{');
		for (i = 0; i < s->nmem; i++)
			jw_uint(j, mem_names[i], s->mem[i]);
		jw_close(j, '}');
	}
	if (o->processes) {
		jw_open(j, "users", '[');
		for (i = 0; i < s->nusers; i++) {
			jw_open(j, NULL, '{');
			jw_str(j, "name", s->users[i].name);
			jw_uint(j, "pid", (uint64_t)s->users[i].pid);
			jw_uint(j, "fd", (uint64_t)s->users[i].fd);
			jw_close(j, '}');
		}
		jw_close(j, ']');
	}
	jw_close(j, '}');
}

static void print_socks(FILE *out, const struct ivss_socks *l)
{
	struct jw j = { .f = out, .nl_depth = 1 };
	size_t i;

	if (!l->o->json) {
		print_socks_text(out, l);
		return;
	}
	jw_open(&j, NULL, '[');
	for (i = 0; i < l->n; i++)
		print_sock_json(&j, l->o, &l->v[i]);
	jw_close(&j, ']');
	fputc('\n', out);
}

/* ------------------------------------------------------------------ */
/* Fabric: parsing                                                     */

#define IVSS_NATTR	(IVSHMEM_A_MAX + 1)
#define IVSS_NSTAT	64	/* counters kept; unknown ones up to this */

_Static_assert(IVSS_NATTR <= 64, "attribute bitmap too small");
_Static_assert(IVSHMEM_STAT_MAX < IVSS_NSTAT, "stat bitmap too small");

/* One message's attributes: values by type, and which were present. */
struct ivss_rec {
	uint64_t v[IVSS_NATTR];
	uint64_t have;
};

#define HAS(r, a)	(((r)->have >> (a)) & 1)

struct ivss_region {
	uint32_t index;
	bool has_info;
	struct ivss_rec info;
	uint64_t stats[IVSS_NSTAT];
	uint64_t stats_have;
	struct ivss_rec *peers;
	size_t npeers;
	struct ivss_rec *chans;
	size_t nchans;
};

/* What to show: the region line always, these parts when asked. */
#define PART_PEERS	0x1
#define PART_CHANNELS	0x2
#define PART_STATS	0x4
#define PART_ALL	(PART_PEERS | PART_CHANNELS | PART_STATS)

struct ivss_fabric {
	unsigned int parts;
	bool json, no_header;
	struct ivss_region *r;
	size_t n;
};

static const enum mnl_attr_data_type fabric_types[IVSS_NATTR] = {
	[IVSHMEM_A_REGION] = MNL_TYPE_U32,
	[IVSHMEM_A_SELF] = MNL_TYPE_U32,
	[IVSHMEM_A_DOORBELL] = MNL_TYPE_U8,
	[IVSHMEM_A_REGION_SIZE] = MNL_TYPE_U64,
	[IVSHMEM_A_DATA_BYTES] = MNL_TYPE_U64,
	[IVSHMEM_A_FREE_BYTES] = MNL_TYPE_U64,
	[IVSHMEM_A_ACTIVE_CHANNELS] = MNL_TYPE_U32,
	[IVSHMEM_A_MAX_CHANNELS] = MNL_TYPE_U32,
	[IVSHMEM_A_LAST_REBALANCE_MS] = MNL_TYPE_U64,
	[IVSHMEM_A_STATS] = MNL_TYPE_NESTED,
	[IVSHMEM_A_PEER_ID] = MNL_TYPE_U32,
	[IVSHMEM_A_PEER_EPOCH] = MNL_TYPE_U64,
	[IVSHMEM_A_PEER_HEARTBEAT] = MNL_TYPE_U64,
	[IVSHMEM_A_PEER_FLAGS] = MNL_TYPE_U32,
	[IVSHMEM_A_PEER_ALIVE] = MNL_TYPE_U8,
	[IVSHMEM_A_PEER_SELF] = MNL_TYPE_FLAG,
	[IVSHMEM_A_CHAN_INDEX] = MNL_TYPE_U32,
	[IVSHMEM_A_CHAN_GENERATION] = MNL_TYPE_U32,
	[IVSHMEM_A_CHAN_SENDER] = MNL_TYPE_U32,
	[IVSHMEM_A_CHAN_RECEIVER] = MNL_TYPE_U32,
	[IVSHMEM_A_CHAN_TYPE] = MNL_TYPE_U32,
	[IVSHMEM_A_CHAN_SRC_PORT] = MNL_TYPE_U32,
	[IVSHMEM_A_CHAN_DST_PORT] = MNL_TYPE_U32,
	[IVSHMEM_A_CHAN_OFFSET] = MNL_TYPE_U32,
	[IVSHMEM_A_CHAN_SIZE] = MNL_TYPE_U32,
	[IVSHMEM_A_CHAN_FILL] = MNL_TYPE_U32,
	[IVSHMEM_A_CHAN_SENDER_STATE] = MNL_TYPE_U32,
	[IVSHMEM_A_CHAN_RECEIVER_STATE] = MNL_TYPE_U32,
	[IVSHMEM_A_CHAN_SENDER_PID] = MNL_TYPE_U32,
	[IVSHMEM_A_CHAN_PEER_CHANNEL] = MNL_TYPE_U32,
};

struct fabric_parse {
	struct ivss_rec rec;
	uint64_t stats[IVSS_NSTAT];
	uint64_t stats_have;
};

static int stat_attr_cb(const struct nlattr *a, void *data)
{
	struct fabric_parse *p = data;
	unsigned int t = mnl_attr_get_type(a);

	if (t <= IVSHMEM_STAT_PAD || t >= IVSS_NSTAT)
		return MNL_CB_OK;
	if (mnl_attr_validate(a, MNL_TYPE_U64) < 0) {
		errno = EBADMSG;
		return MNL_CB_ERROR;
	}
	p->stats[t] = mnl_attr_get_u64(a);
	p->stats_have |= 1ULL << t;
	return MNL_CB_OK;
}

static int fabric_attr_cb(const struct nlattr *a, void *data)
{
	struct fabric_parse *p = data;
	unsigned int t = mnl_attr_get_type(a);
	enum mnl_attr_data_type type;

	if (t >= IVSS_NATTR || fabric_types[t] == MNL_TYPE_UNSPEC)
		return MNL_CB_OK;	/* padding, or a newer kernel's */
	type = fabric_types[t];
	if (mnl_attr_validate(a, type) < 0) {
		errno = EBADMSG;
		return MNL_CB_ERROR;
	}
	switch (type) {
	case MNL_TYPE_U8:
		p->rec.v[t] = mnl_attr_get_u8(a);
		break;
	case MNL_TYPE_U32:
		p->rec.v[t] = mnl_attr_get_u32(a);
		break;
	case MNL_TYPE_U64:
		p->rec.v[t] = mnl_attr_get_u64(a);
		break;
	case MNL_TYPE_FLAG:
		p->rec.v[t] = 1;
		break;
	case MNL_TYPE_NESTED:
		if (mnl_attr_parse_nested(a, stat_attr_cb, p) < 0)
			return MNL_CB_ERROR;
		break;
	default:
		break;
	}
	p->rec.have |= 1ULL << t;
	return MNL_CB_OK;
}

/* The region with @index, added in order if new. */
static struct ivss_region *fabric_region(struct ivss_fabric *f, uint32_t index)
{
	size_t i;

	for (i = 0; i < f->n && f->r[i].index <= index; i++)
		if (f->r[i].index == index)
			return &f->r[i];
	f->r = xrealloc(f->r, (f->n + 1) * sizeof(*f->r));
	memmove(&f->r[i + 1], &f->r[i], (f->n - i) * sizeof(*f->r));
	f->n++;
	memset(&f->r[i], 0, sizeof(f->r[i]));
	f->r[i].index = index;
	return &f->r[i];
}

static void rec_push(struct ivss_rec **v, size_t *n, const struct ivss_rec *r)
{
	*v = xrealloc(*v, (*n + 1) * sizeof(**v));
	(*v)[(*n)++] = *r;
}

/* One message of the "ivshmem" generic netlink family. */
static int fabric_msg_cb(const struct nlmsghdr *nlh, void *data)
{
	struct ivss_dump *d = data;
	struct ivss_fabric *f = d->priv;
	const struct genlmsghdr *g = mnl_nlmsg_get_payload(nlh);
	struct ivss_region *r;
	struct fabric_parse *p;

	if (mnl_nlmsg_get_payload_len(nlh) < sizeof(*g)) {
		errno = EBADMSG;
		return MNL_CB_ERROR;
	}
	p = calloc(1, sizeof(*p));
	if (!p)
		return MNL_CB_ERROR;
	if (mnl_attr_parse(nlh, sizeof(*g), fabric_attr_cb, p) < 0)
		goto err;
	if (!HAS(&p->rec, IVSHMEM_A_REGION)) {
		errno = EBADMSG;
		goto err;
	}
	r = fabric_region(f, (uint32_t)p->rec.v[IVSHMEM_A_REGION]);
	switch (g->cmd) {
	case IVSHMEM_CMD_GET_REGION:
		r->has_info = true;
		r->info = p->rec;
		memcpy(r->stats, p->stats, sizeof(r->stats));
		r->stats_have = p->stats_have;
		break;
	case IVSHMEM_CMD_GET_PEER:
		rec_push(&r->peers, &r->npeers, &p->rec);
		break;
	case IVSHMEM_CMD_GET_CHANNEL:
		rec_push(&r->chans, &r->nchans, &p->rec);
		break;
	default:
		break;
	}
	free(p);
	return MNL_CB_OK;
err:
	free(p);
	return MNL_CB_ERROR;
}

static void fabric_free(struct ivss_fabric *f)
{
	size_t i;

	for (i = 0; i < f->n; i++) {
		free(f->r[i].peers);
		free(f->r[i].chans);
	}
	free(f->r);
	f->r = NULL;
	f->n = 0;
}

/* ------------------------------------------------------------------ */
/* Fabric: printing                                                    */

static const char * const stat_names[IVSHMEM_STAT_MAX + 1] = {
	[IVSHMEM_STAT_DOORBELLS_SENT] = "doorbells_sent",
	[IVSHMEM_STAT_DOORBELLS_RECEIVED] = "doorbells_received",
	[IVSHMEM_STAT_DOORBELLS_SUPPRESSED] = "doorbells_suppressed",
	[IVSHMEM_STAT_VALIDATION_FAILURES] = "validation_failures",
	[IVSHMEM_STAT_LOCK_STEALS] = "lock_steals",
	[IVSHMEM_STAT_CONNECTS_REFUSED] = "connects_refused",
	[IVSHMEM_STAT_PEERS_DECLARED_DEAD] = "peers_declared_dead",
	[IVSHMEM_STAT_CHANNELS_RECLAIMED] = "channels_reclaimed",
	[IVSHMEM_STAT_DGRAM_SENT] = "dgram_sent",
	[IVSHMEM_STAT_DGRAM_RECEIVED] = "dgram_received",
	[IVSHMEM_STAT_DGRAM_DROPPED_NO_SOCKET] = "dgram_dropped_no_socket",
	[IVSHMEM_STAT_DGRAM_DROPPED_RCVBUF] = "dgram_dropped_rcvbuf",
	[IVSHMEM_STAT_REQUEST_SCANS] = "request_scans",
	[IVSHMEM_STAT_RESETS_SENT] = "resets_sent",
	[IVSHMEM_STAT_RESETS_RECEIVED] = "resets_received",
	[IVSHMEM_STAT_RESETS_PEER_DEAD] = "resets_peer_dead",
	[IVSHMEM_STAT_RESETS_DEVICE_GONE] = "resets_device_gone",
	[IVSHMEM_STAT_CHANNELS_ALLOCATED] = "channels_allocated",
	[IVSHMEM_STAT_CHANNELS_FREED] = "channels_freed",
	[IVSHMEM_STAT_REBALANCES] = "rebalances",
	[IVSHMEM_STAT_CHANNELS_GROWN] = "channels_grown",
	[IVSHMEM_STAT_CHANNELS_SHRUNK] = "channels_shrunk",
	[IVSHMEM_STAT_RESIZES_ABORTED] = "resizes_aborted",
	[IVSHMEM_STAT_DOORBELLS_LIMITED] = "doorbells_limited",
	[IVSHMEM_STAT_AUTH_FAILURES] = "auth_failures",
	[IVSHMEM_STAT_DOORBELL_WAKES] = "doorbell_wakes",
	[IVSHMEM_STAT_CHANNELS_MOVED] = "channels_moved",
};

/* A counter's name; "stat_N" for one this ivss does not know. */
static const char *stat_name(unsigned int t, char *buf, size_t size)
{
	if (t <= IVSHMEM_STAT_MAX && stat_names[t])
		return stat_names[t];
	snprintf(buf, size, "stat_%u", t);
	return buf;
}

/* Names from a table, or the number for an unknown value. */
static const char *enum_name(const char * const *names, size_t n,
			     uint64_t v, char *buf, size_t size)
{
	if (v < n && names[v])
		return names[v];
	snprintf(buf, size, "%" PRIu64, v);
	return buf;
}

static const char * const send_states[] = {
	[IVSHMEM_CHAN_SEND_NONE] = "none",
	[IVSHMEM_CHAN_SEND_CONNECTING] = "connecting",
	[IVSHMEM_CHAN_SEND_OPEN] = "open",
	[IVSHMEM_CHAN_SEND_SHUTDOWN] = "shutdown",
	[IVSHMEM_CHAN_SEND_RESET] = "reset",
};

static const char * const recv_states[] = {
	[IVSHMEM_CHAN_RECV_NONE] = "none",
	[IVSHMEM_CHAN_RECV_ACCEPTED] = "accepted",
	[IVSHMEM_CHAN_RECV_REFUSED] = "refused",
	[IVSHMEM_CHAN_RECV_RELEASED] = "released",
	[IVSHMEM_CHAN_RECV_NOBUFS] = "nobufs",
};

/* Type 0: a reservation, the space a channel of the same sender was to
 * be resized into (its peer channel names it).  Only the design
 * document's revision 2 made them; the module now places a resize at its
 * switch and makes none.
 */
static const char * const type_names[] = {
	[0] = "resv",
	[SOCK_STREAM] = "stream",
	[SOCK_DGRAM] = "dgram",
	[SOCK_SEQPACKET] = "seqpacket",
};

/* An attribute's value, "*" for the wildcard if @any, or "-" if absent. */
static const char *rv(const struct ivss_rec *r, unsigned int a, bool any,
		      char *buf, size_t size)
{
	if (!HAS(r, a))
		snprintf(buf, size, "-");
	else if (any && r->v[a] == IVSHMEM_PORT_ANY)
		snprintf(buf, size, "*");
	else
		snprintf(buf, size, "%" PRIu64, r->v[a]);
	return buf;
}

static unsigned int fill_pct(const struct ivss_rec *c)
{
	uint64_t size = c->v[IVSHMEM_A_CHAN_SIZE];

	return size ? (unsigned int)(c->v[IVSHMEM_A_CHAN_FILL] * 100 / size) : 0;
}

static void print_region_text(FILE *out, const struct ivss_fabric *f,
			      const struct ivss_region *r)
{
	const struct ivss_rec *i = &r->info;
	char b[6][24];
	size_t k;

	fprintf(out, "region %u: self %s, %s, size %s, data %s, free %s, channels %s/%s\n",
		r->index, rv(i, IVSHMEM_A_SELF, true, b[0], 24),
		!HAS(i, IVSHMEM_A_DOORBELL) ? "-" :
		i->v[IVSHMEM_A_DOORBELL] ? "doorbell" : "polling",
		rv(i, IVSHMEM_A_REGION_SIZE, false, b[1], 24),
		rv(i, IVSHMEM_A_DATA_BYTES, false, b[2], 24),
		rv(i, IVSHMEM_A_FREE_BYTES, false, b[3], 24),
		rv(i, IVSHMEM_A_ACTIVE_CHANNELS, false, b[4], 24),
		rv(i, IVSHMEM_A_MAX_CHANNELS, false, b[5], 24));
	if (HAS(i, IVSHMEM_A_LAST_REBALANCE_MS))
		fprintf(out, "  last rebalance %s ms ago\n",
			rv(i, IVSHMEM_A_LAST_REBALANCE_MS, false, b[0], 24));

	if (f->parts & PART_PEERS) {
		if (!f->no_header)
			fprintf(out, "  %-6s %-12s %-12s %-6s %s\n", "Peer",
				"Epoch", "Heartbeat", "State", "Flags");
		for (k = 0; k < r->npeers; k++) {
			const struct ivss_rec *p = &r->peers[k];
			uint64_t fl = p->v[IVSHMEM_A_PEER_FLAGS];
			char id[24], fls[40];

			snprintf(id, sizeof(id), "%s%s",
				 rv(p, IVSHMEM_A_PEER_ID, false, b[0], 24),
				 HAS(p, IVSHMEM_A_PEER_SELF) ? "*" : "");
			if (!HAS(p, IVSHMEM_A_PEER_FLAGS))
				snprintf(fls, sizeof(fls), "-");
			else if (fl == IVSS_PEER_F_DOORBELL)
				snprintf(fls, sizeof(fls), "doorbell");
			else if (fl & IVSS_PEER_F_DOORBELL)
				snprintf(fls, sizeof(fls), "doorbell,0x%" PRIx64,
					 fl & ~(uint64_t)IVSS_PEER_F_DOORBELL);
			else if (fl)
				snprintf(fls, sizeof(fls), "0x%" PRIx64, fl);
			else
				snprintf(fls, sizeof(fls), "-");
			fprintf(out, "  %-6s %-12s %-12s %-6s %s\n", id,
				rv(p, IVSHMEM_A_PEER_EPOCH, false, b[1], 24),
				rv(p, IVSHMEM_A_PEER_HEARTBEAT, false, b[2], 24),
				!HAS(p, IVSHMEM_A_PEER_ALIVE) ? "-" :
				p->v[IVSHMEM_A_PEER_ALIVE] ? "alive" : "dead",
				fls);
		}
	}

	if (f->parts & PART_CHANNELS) {
		if (!f->no_header)
			fprintf(out, "  %-5s %-5s %-9s %-9s %-13s %-9s %-8s %-8s %-5s %-10s %-9s %s\n",
				"Chan", "Gen", "Snd->Rcv", "Type", "Ports",
				"Offset", "Size", "Fill", "Fill%", "Sender",
				"Receiver", "Pid");
		for (k = 0; k < r->nchans; k++) {
			const struct ivss_rec *c = &r->chans[k];
			char sr[32], ports[32], pct[8], t[3][24];

			snprintf(sr, sizeof(sr), "%s->%s",
				 rv(c, IVSHMEM_A_CHAN_SENDER, true, b[0], 24),
				 rv(c, IVSHMEM_A_CHAN_RECEIVER, true, b[1], 24));
			snprintf(ports, sizeof(ports), "%s->%s",
				 rv(c, IVSHMEM_A_CHAN_SRC_PORT, true, b[0], 24),
				 rv(c, IVSHMEM_A_CHAN_DST_PORT, true, b[1], 24));
			if (HAS(c, IVSHMEM_A_CHAN_FILL) &&
			    HAS(c, IVSHMEM_A_CHAN_SIZE))
				snprintf(pct, sizeof(pct), "%u%%", fill_pct(c));
			else
				snprintf(pct, sizeof(pct), "-");
			fprintf(out, "  %-5s %-5s %-9s %-9s %-13s %-9s %-8s %-8s %-5s %-10s %-9s %s\n",
				rv(c, IVSHMEM_A_CHAN_INDEX, false, b[0], 24),
				rv(c, IVSHMEM_A_CHAN_GENERATION, false, b[1], 24),
				sr,
				!HAS(c, IVSHMEM_A_CHAN_TYPE) ? "-" :
				enum_name(type_names, ARRAY_SIZE(type_names),
					  c->v[IVSHMEM_A_CHAN_TYPE], t[0], 24),
				ports,
				rv(c, IVSHMEM_A_CHAN_OFFSET, false, b[2], 24),
				rv(c, IVSHMEM_A_CHAN_SIZE, false, b[3], 24),
				rv(c, IVSHMEM_A_CHAN_FILL, false, b[4], 24),
				pct,
				!HAS(c, IVSHMEM_A_CHAN_SENDER_STATE) ? "-" :
				enum_name(send_states, ARRAY_SIZE(send_states),
					  c->v[IVSHMEM_A_CHAN_SENDER_STATE],
					  t[1], 24),
				!HAS(c, IVSHMEM_A_CHAN_RECEIVER_STATE) ? "-" :
				enum_name(recv_states, ARRAY_SIZE(recv_states),
					  c->v[IVSHMEM_A_CHAN_RECEIVER_STATE],
					  t[2], 24),
				rv(c, IVSHMEM_A_CHAN_SENDER_PID, false, b[5], 24));
		}
	}

	if ((f->parts & PART_STATS) && r->stats_have) {
		if (!f->no_header)
			fprintf(out, "  %-24s %s\n", "Counter", "Value");
		for (k = 0; k < IVSS_NSTAT; k++)
			if ((r->stats_have >> k) & 1)
				fprintf(out, "  %-24s %" PRIu64 "\n",
					stat_name((unsigned int)k, b[0], 24),
					r->stats[k]);
	}
}

/* @a as a JSON member if present; null for the wildcard if @any. */
static void jw_rec(struct jw *j, const char *key, const struct ivss_rec *r,
		   unsigned int a, bool any)
{
	if (!HAS(r, a))
		return;
	if (any && r->v[a] == IVSHMEM_PORT_ANY)
		jw_null(j, key);
	else
		jw_uint(j, key, r->v[a]);
}

static void jw_rec_name(struct jw *j, const char *key, const struct ivss_rec *r,
			unsigned int a, const char * const *names, size_t n)
{
	char buf[24];

	if (HAS(r, a))
		jw_str(j, key, enum_name(names, n, r->v[a], buf, sizeof(buf)));
}

static void print_region_json(struct jw *j, const struct ivss_fabric *f,
			      const struct ivss_region *r)
{
	const struct ivss_rec *i = &r->info;
	char buf[24];
	size_t k;

	jw_open(j, NULL, '{');
	jw_uint(j, "region", r->index);
	jw_rec(j, "self", i, IVSHMEM_A_SELF, true);
	if (HAS(i, IVSHMEM_A_DOORBELL))
		jw_str(j, "mode", i->v[IVSHMEM_A_DOORBELL] ? "doorbell" : "polling");
	jw_rec(j, "region_size", i, IVSHMEM_A_REGION_SIZE, false);
	jw_rec(j, "data_bytes", i, IVSHMEM_A_DATA_BYTES, false);
	jw_rec(j, "free_bytes", i, IVSHMEM_A_FREE_BYTES, false);
	jw_rec(j, "active_channels", i, IVSHMEM_A_ACTIVE_CHANNELS, false);
	jw_rec(j, "max_channels", i, IVSHMEM_A_MAX_CHANNELS, false);
	jw_rec(j, "last_rebalance_ms", i, IVSHMEM_A_LAST_REBALANCE_MS, false);

	if (f->parts & PART_PEERS) {
		jw_open(j, "peers", '[');
		for (k = 0; k < r->npeers; k++) {
			const struct ivss_rec *p = &r->peers[k];

			jw_open(j, NULL, '{');
			jw_rec(j, "id", p, IVSHMEM_A_PEER_ID, false);
			jw_rec(j, "epoch", p, IVSHMEM_A_PEER_EPOCH, false);
			jw_rec(j, "heartbeat", p, IVSHMEM_A_PEER_HEARTBEAT, false);
			if (HAS(p, IVSHMEM_A_PEER_ALIVE))
				jw_bool(j, "alive", p->v[IVSHMEM_A_PEER_ALIVE]);
			jw_bool(j, "self", HAS(p, IVSHMEM_A_PEER_SELF));
			jw_rec(j, "flags", p, IVSHMEM_A_PEER_FLAGS, false);
			if (HAS(p, IVSHMEM_A_PEER_FLAGS))
				jw_bool(j, "doorbell", p->v[IVSHMEM_A_PEER_FLAGS] &
					IVSS_PEER_F_DOORBELL);
			jw_close(j, '}');
		}
		jw_close(j, ']');
	}

	if (f->parts & PART_CHANNELS) {
		jw_open(j, "channels", '[');
		for (k = 0; k < r->nchans; k++) {
			const struct ivss_rec *c = &r->chans[k];

			jw_open(j, NULL, '{');
			jw_rec(j, "index", c, IVSHMEM_A_CHAN_INDEX, false);
			jw_rec(j, "generation", c, IVSHMEM_A_CHAN_GENERATION, false);
			jw_rec(j, "sender", c, IVSHMEM_A_CHAN_SENDER, true);
			jw_rec(j, "receiver", c, IVSHMEM_A_CHAN_RECEIVER, true);
			jw_rec_name(j, "type", c, IVSHMEM_A_CHAN_TYPE,
				    type_names, ARRAY_SIZE(type_names));
			jw_rec(j, "src_port", c, IVSHMEM_A_CHAN_SRC_PORT, true);
			jw_rec(j, "dst_port", c, IVSHMEM_A_CHAN_DST_PORT, true);
			jw_rec(j, "offset", c, IVSHMEM_A_CHAN_OFFSET, false);
			jw_rec(j, "size", c, IVSHMEM_A_CHAN_SIZE, false);
			jw_rec(j, "fill", c, IVSHMEM_A_CHAN_FILL, false);
			if (HAS(c, IVSHMEM_A_CHAN_FILL) &&
			    HAS(c, IVSHMEM_A_CHAN_SIZE))
				jw_uint(j, "fill_pct", fill_pct(c));
			jw_rec_name(j, "sender_state", c,
				    IVSHMEM_A_CHAN_SENDER_STATE,
				    send_states, ARRAY_SIZE(send_states));
			jw_rec_name(j, "receiver_state", c,
				    IVSHMEM_A_CHAN_RECEIVER_STATE,
				    recv_states, ARRAY_SIZE(recv_states));
			jw_rec(j, "sender_pid", c, IVSHMEM_A_CHAN_SENDER_PID, false);
			jw_rec(j, "peer_channel", c, IVSHMEM_A_CHAN_PEER_CHANNEL,
			       true);
			jw_close(j, '}');
		}
		jw_close(j, ']');
	}

	if (f->parts & PART_STATS) {
		jw_open(j, "stats", '{');
		for (k = 0; k < IVSS_NSTAT; k++)
			if ((r->stats_have >> k) & 1)
				jw_uint(j, stat_name((unsigned int)k, buf,
						     sizeof(buf)),
					r->stats[k]);
		jw_close(j, '}');
	}
	jw_close(j, '}');
}

static void print_fabric(FILE *out, const struct ivss_fabric *f)
{
	struct jw j = { .f = out, .nl_depth = 2 };
	size_t i;

	if (!f->json) {
		for (i = 0; i < f->n; i++) {
			if (i)
				fputc('\n', out);
			print_region_text(out, f, &f->r[i]);
		}
		return;
	}
	jw_open(&j, NULL, '{');
	jw_open(&j, "regions", '[');
	for (i = 0; i < f->n; i++)
		print_region_json(&j, f, &f->r[i]);
	jw_close(&j, ']');
	jw_close(&j, '}');
	fputc('\n', out);
}

/* ------------------------------------------------------------------ */
/* Generic netlink family lookup                                       */

static int family_attr_cb(const struct nlattr *a, void *data)
{
	int *id = data;

	if (mnl_attr_get_type(a) == CTRL_ATTR_FAMILY_ID &&
	    mnl_attr_validate(a, MNL_TYPE_U16) == 0)
		*id = mnl_attr_get_u16(a);
	return MNL_CB_OK;
}

static int family_msg_cb(const struct nlmsghdr *nlh, void *data)
{
	struct ivss_dump *d = data;

	mnl_attr_parse(nlh, sizeof(struct genlmsghdr), family_attr_cb, d->priv);
	return MNL_CB_OK;
}

/* The id of generic netlink family @name, or -1 with errno set. */
static int genl_family_id(const char *name, struct ivss_dump *d)
{
	char req[IVSS_REQSZ] __attribute__((aligned(8)));
	struct genlmsghdr *g;
	struct nlmsghdr *nlh;
	int id = -1;

	nlh = mnl_nlmsg_put_header(req);
	nlh->nlmsg_type = GENL_ID_CTRL;
	nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK;
	g = mnl_nlmsg_put_extra_header(nlh, sizeof(*g));
	g->cmd = CTRL_CMD_GETFAMILY;
	g->version = 1;
	mnl_attr_put_strz(nlh, CTRL_ATTR_FAMILY_NAME, name);
	d->priv = &id;
	if (ivss_nl_dump(NETLINK_GENERIC, nlh, family_msg_cb, d) < 0)
		return -1;
	if (id < 0)
		errno = ENOENT;
	return id;
}

#ifndef IVSS_NO_MAIN

/* ------------------------------------------------------------------ */
/* Commands                                                            */

static int cmd_socks(const struct ivss_opts *o)
{
	char req[IVSS_REQSZ] __attribute__((aligned(8))), what[64];
	struct ivss_socks l = { .o = o };
	struct ivss_dump d = { .priv = &l };
	struct ivshmem_diag_req *r;
	struct nlmsghdr *nlh;
	int fam;

	fam = ivshmem_family();
	if (fam < 0) {
		fprintf(stderr, "%s: af_ivshmem not loaded (%s: %s)\n", prog,
			IVSHMEM_FAMILY_SYSFS, errname(errno));
		return 1;
	}
	nlh = mnl_nlmsg_put_header(req);
	nlh->nlmsg_type = SOCK_DIAG_BY_FAMILY;
	nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
	r = mnl_nlmsg_put_extra_header(nlh, sizeof(*r));
	r->sdiag_family = (uint8_t)fam;
	r->idiag_types = (uint16_t)o->types;
	r->idiag_states = o->states;
	r->idiag_show = IVSHMEM_SHOW_CHANNELS |
			(o->memory ? IVSHMEM_SHOW_MEMINFO : 0);
	r->idiag_cookie[0] = IVSHMEM_DIAG_NOCOOKIE;
	r->idiag_cookie[1] = IVSHMEM_DIAG_NOCOOKIE;

	snprintf(what, sizeof(what), "sock_diag for family %d", fam);
	if (ivss_nl_dump(NETLINK_SOCK_DIAG, nlh, diag_msg_cb, &d) < 0) {
		if (errno == ENOENT)
			fprintf(stderr, "%s: af_ivshmem_diag not loaded (%s: ENOENT)\n",
				prog, what);
		else
			fail(what, &d);
		socks_free(&l);
		return 1;
	}
	if (o->processes)
		find_users(&l);
	print_socks(stdout, &l);
	socks_free(&l);
	return 0;
}

static int cmd_fabric(struct ivss_fabric *f, long long region)
{
	static const uint8_t cmds[] = {
		IVSHMEM_CMD_GET_REGION, IVSHMEM_CMD_GET_PEER,
		IVSHMEM_CMD_GET_CHANNEL,
	};
	static const char * const what[] = {
		"fabric regions", "fabric peers", "fabric channels",
	};
	char req[IVSS_REQSZ] __attribute__((aligned(8)));
	struct ivss_dump d = { 0 };
	struct genlmsghdr *g;
	struct nlmsghdr *nlh;
	int id;
	size_t i;

	id = genl_family_id(IVSHMEM_GENL_NAME, &d);
	if (id < 0) {
		if (errno != ENOENT)
			return fail("generic netlink family " IVSHMEM_GENL_NAME, &d);
		if (ivshmem_family() < 0)
			fprintf(stderr, "%s: af_ivshmem not loaded (%s: %s)\n",
				prog, IVSHMEM_FAMILY_SYSFS, errname(errno));
		else
			fprintf(stderr, "%s: af_ivshmem has no fabric interface (generic netlink family %s: ENOENT)\n",
				prog, IVSHMEM_GENL_NAME);
		return 1;
	}
	for (i = 0; i < sizeof(cmds); i++) {
		if ((cmds[i] == IVSHMEM_CMD_GET_PEER && !(f->parts & PART_PEERS)) ||
		    (cmds[i] == IVSHMEM_CMD_GET_CHANNEL &&
		     !(f->parts & PART_CHANNELS)))
			continue;
		nlh = mnl_nlmsg_put_header(req);
		nlh->nlmsg_type = (uint16_t)id;
		nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
		g = mnl_nlmsg_put_extra_header(nlh, sizeof(*g));
		g->cmd = cmds[i];
		g->version = IVSHMEM_GENL_VERSION;
		if (region != NOCOND)
			mnl_attr_put_u32(nlh, IVSHMEM_A_REGION, (uint32_t)region);
		memset(&d, 0, sizeof(d));
		d.priv = f;
		if (ivss_nl_dump(NETLINK_GENERIC, nlh, fabric_msg_cb, &d) < 0) {
			fail(what[i], &d);
			fabric_free(f);
			return 1;
		}
	}
	print_fabric(stdout, f);
	fabric_free(f);
	return 0;
}

static void usage(FILE *out)
{
	fprintf(out,
		"Usage: %s [OPTIONS] [FILTER]\n"
		"       %s fabric [-j] [-H] [region N] [peers] [channels] [stats]\n"
		"Options:\n"
		"  -a, --all          all sockets (default: connected ones)\n"
		"  -l, --listening    listening sockets (and unconnected datagram ones)\n"
		"  -n, --numeric      accepted; addresses are always numeric\n"
		"  -e, --extended     inode, uid, cookie, region, shutdown, flags, channels\n"
		"  -p, --processes    the processes that have each socket open\n"
		"  -m, --memory       socket memory (skmem)\n"
		"  -t, --stream       SOCK_STREAM sockets\n"
		"  -S, --seqpacket    SOCK_SEQPACKET sockets\n"
		"  -d, --dgram        SOCK_DGRAM sockets (default: all three types)\n"
		"  -j, --json         JSON output\n"
		"  -H, --no-header    no header line\n"
		"  -h, --help         this help\n"
		"Filter: conditions, all of which must hold:\n"
		"  state STATE | exclude STATE | sport = :PORT | dport = :PORT |\n"
		"  src PEER[:PORT] | dst PEER[:PORT] | region N   (PEER, PORT may be *)\n"
		"States: established syn-sent fin-wait-2 close-wait closing listening\n"
		"  close (unconnected) connected synchronized all\n",
		prog, prog);
}

static int parse_fabric(int argc, char **argv, struct ivss_fabric *f,
			long long *region)
{
	int i;

	*region = NOCOND;
	f->parts = 0;
	for (i = 0; i < argc; i++) {
		if (!strcmp(argv[i], "peers")) {
			f->parts |= PART_PEERS;
		} else if (!strcmp(argv[i], "channels")) {
			f->parts |= PART_CHANNELS;
		} else if (!strcmp(argv[i], "stats")) {
			f->parts |= PART_STATS;
		} else if (!strcmp(argv[i], "region") && i + 1 < argc) {
			if (parse_u32(argv[++i], region) || *region == NOCOND) {
				fprintf(stderr, "%s: fabric: bad region \"%s\"\n",
					prog, argv[i]);
				return -1;
			}
		} else {
			fprintf(stderr, "%s: fabric: unknown argument \"%s\"\n",
				prog, argv[i]);
			return -1;
		}
	}
	if (!f->parts)
		f->parts = PART_ALL;
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "all", no_argument, NULL, 'a' },
		{ "listening", no_argument, NULL, 'l' },
		{ "numeric", no_argument, NULL, 'n' },
		{ "extended", no_argument, NULL, 'e' },
		{ "processes", no_argument, NULL, 'p' },
		{ "memory", no_argument, NULL, 'm' },
		{ "stream", no_argument, NULL, 't' },
		{ "seqpacket", no_argument, NULL, 'S' },
		{ "dgram", no_argument, NULL, 'd' },
		{ "json", no_argument, NULL, 'j' },
		{ "no-header", no_argument, NULL, 'H' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct ivss_fabric f = { 0 };
	struct ivss_opts o;
	uint32_t types = 0;
	long long region;
	int c;

	opts_init(&o);
	while ((c = getopt_long(argc, argv, "alnepmtSdjHh", longopts,
				NULL)) != -1) {
		switch (c) {
		case 'a':
			o.states = ST_ALL;
			o.listen_rule = false;
			break;
		case 'l':
			o.states = SB(TCP_LISTEN) | SB(TCP_CLOSE);
			o.listen_rule = true;
			break;
		case 'n':
			break;
		case 'e':
			o.extended = true;
			break;
		case 'p':
			o.processes = true;
			break;
		case 'm':
			o.memory = true;
			break;
		case 't':
			types |= 1U << SOCK_STREAM;
			break;
		case 'S':
			types |= 1U << SOCK_SEQPACKET;
			break;
		case 'd':
			types |= 1U << SOCK_DGRAM;
			break;
		case 'j':
			o.json = true;
			break;
		case 'H':
			o.no_header = true;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (types)
		o.types = types;
	argc -= optind;
	argv += optind;

	if (argc && !strcmp(argv[0], "fabric")) {
		if (parse_fabric(argc - 1, argv + 1, &f, &region))
			return 2;
		f.json = o.json;
		f.no_header = o.no_header;
		return cmd_fabric(&f, region);
	}
	if (parse_filter(&o, argc, argv))
		return 2;
	return cmd_socks(&o);
}

#endif /* IVSS_NO_MAIN */
