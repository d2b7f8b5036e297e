// SPDX-License-Identifier: GPL-2.0
/*
 * AF_IVSHMEM conformance suite: the framework.
 *
 *   ivshmem_conformance --mode=server|client --control-host HOST
 *	--control-port N --peer PEER_ID [--port-base N] [--timeout-factor N]
 *	[--list] [--only SUBSTRING] [--skip SUBSTRING]
 *
 * The server listens on the control port, the client connects to it
 * twice (and retries for a minute, so the server may start a little
 * later): the first connection is the parents', the second the cases'
 * (ctx->ctl); a parent never reads the cases' connection while a child
 * runs, so a child can never take a parent's line.  The client drives:
 * for each selected case it sends "CASE n" and waits for the server's
 * "CASE n"; then both parents write "SYNC n" on the cases' connection and
 * read it until the other's "SYNC n", which drops whatever a dead case
 * left there (its partner died before reading it).  Then each end forks a
 * child that runs its part of the case (in its own process group, stdout
 * and stderr into a pipe, with alarm(timeout)).  When the server's child
 * is gone (and all it forked killed) the server sends "STATUS n code len"
 * and the child's output (len bytes); the client prints the TAP line and
 * answers "RESULT n ok|fail".  So a failed, crashed or hung case costs
 * only its own TAP line.
 *
 * The server follows the client's choice of cases (its own --only and
 * --skip apply to --list only).  Exit status: 0 iff every case passed.
 */
#include <fcntl.h>
#include <getopt.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "conformance.h"

#define CONF_CHILD_OUTPUT_MAX	(64 * 1024)
#define CONF_CONTROL_SLACK	30	/* s beyond a case's own timeout */

static const char *side = "?";

/* ---------------------------------------------------------------- */
/* Failing.                                                          */

void conf_fail_at(const char *file, int line, const char *fmt, ...)
{
	const char *base = strrchr(file, '/');
	va_list ap;

	fflush(stdout);
	fprintf(stderr, "# %s: %s:%d: ", side, base ? base + 1 : file, line);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	fflush(stderr);
	exit(1);
}

void conf_skip(const char *fmt, ...)
{
	va_list ap;

	fflush(stdout);
	fprintf(stderr, "# %s: SKIP ", side);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	fflush(stderr);
	exit(CONF_SKIP_STATUS);
}

/* ---------------------------------------------------------------- */
/* Control connection.                                               */

static void write_full_or_fail(int fd, const void *buf, size_t len)
{
	const char *p = buf;

	while (len) {
		ssize_t n = write(fd, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			conf_fail("control write: %s", n ? strerror(errno) : "0");
		p += n;
		len -= n;
	}
}

void ctl_send(struct conf_ctx *ctx, const char *line)
{
	size_t len = strlen(line);
	char *buf = malloc(len + 1);

	if (!buf)
		conf_fail("out of memory");
	memcpy(buf, line, len);
	buf[len] = '\n';
	write_full_or_fail(ctx->ctl, buf, len + 1);
	free(buf);
}

/*
 * Reads one line (without '\n') into @buf, a byte at a time so that
 * nothing beyond the line is taken from the shared connection.
 * @timeout_ms < 0: no limit.  Returns 0, or -1 (errno ETIMEDOUT, or EOF
 * as ECONNRESET, or the read's error).
 */
static int ctl_read_line(int fd, char *buf, size_t size, int timeout_ms)
{
	struct timespec start, now;
	size_t len = 0;

	clock_gettime(CLOCK_MONOTONIC, &start);
	for (;;) {
		char c;
		ssize_t n;

		if (timeout_ms >= 0) {
			struct pollfd pfd = { .fd = fd, .events = POLLIN };
			long left;

			clock_gettime(CLOCK_MONOTONIC, &now);
			left = timeout_ms -
			       ((now.tv_sec - start.tv_sec) * 1000 +
				(now.tv_nsec - start.tv_nsec) / 1000000);
			if (left < 0)
				left = 0;
			n = poll(&pfd, 1, left);
			if (n < 0 && errno == EINTR)
				continue;
			if (n == 0) {
				errno = ETIMEDOUT;
				return -1;
			}
		}
		n = read(fd, &c, 1);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -1;
		if (n == 0) {
			errno = ECONNRESET;
			return -1;
		}
		if (c == '\n') {
			buf[len] = '\0';
			return 0;
		}
		if (len + 1 < size)
			buf[len++] = c;
	}
}

void ctl_expect(struct conf_ctx *ctx, const char *line)
{
	char buf[512];

	if (ctl_read_line(ctx->ctl, buf, sizeof(buf), -1))
		conf_fail("control read (expecting \"%s\"): %s", line,
			  strerror(errno));
	if (strcmp(buf, line))
		conf_fail("control: got \"%s\", expected \"%s\"", buf, line);
}

void ctl_send_u64(struct conf_ctx *ctx, uint64_t value)
{
	char buf[32];

	snprintf(buf, sizeof(buf), "%llu", (unsigned long long)value);
	ctl_send(ctx, buf);
}

uint64_t ctl_recv_u64(struct conf_ctx *ctx)
{
	char buf[512], *end;
	unsigned long long v;

	if (ctl_read_line(ctx->ctl, buf, sizeof(buf), -1))
		conf_fail("control read (expecting a number): %s",
			  strerror(errno));
	errno = 0;
	v = strtoull(buf, &end, 10);
	if (!buf[0] || *end || errno)
		conf_fail("control: got \"%s\", expected a number", buf);
	return v;
}

/* ---------------------------------------------------------------- */
/* Sockets.                                                          */

struct sockaddr_ivshmem conf_addr(struct conf_ctx *ctx, uint32_t peer,
				  uint32_t port)
{
	struct sockaddr_ivshmem addr;

	memset(&addr, 0, sizeof(addr));
	addr.sivshm_family = (sa_family_t)ctx->family;
	addr.sivshm_peer = peer;
	addr.sivshm_port = port;
	addr.sivshm_region = IVSHMEM_REGION_ANY;
	return addr;
}

int conf_listen(struct conf_ctx *ctx, int type, uint32_t port, int backlog)
{
	struct sockaddr_ivshmem addr = conf_addr(ctx, IVSHMEM_PEER_ANY, port);
	int fd = socket(ctx->family, type, 0);

	if (fd < 0)
		conf_fail("socket(type %d): %s", type, strerror(errno));
	if (bind(fd, (struct sockaddr *)&addr, sizeof(addr)))
		conf_fail("bind(port %u): %s", port, strerror(errno));
	if (type != SOCK_DGRAM && listen(fd, backlog))
		conf_fail("listen(port %u): %s", port, strerror(errno));
	return fd;
}

int conf_connect(struct conf_ctx *ctx, int type, uint32_t port)
{
	struct sockaddr_ivshmem addr = conf_addr(ctx, ctx->peer, port);
	int fd = socket(ctx->family, type, 0);

	if (fd < 0)
		conf_fail("socket(type %d): %s", type, strerror(errno));
	if (connect(fd, (struct sockaddr *)&addr, sizeof(addr)))
		conf_fail("connect(peer %u port %u): %s", ctx->peer, port,
			  strerror(errno));
	return fd;
}

int conf_accept_one(struct conf_ctx *ctx, int type)
{
	int lfd = conf_listen(ctx, type, ctx->port, 16);
	int fd;

	ctl_send(ctx, "LISTENING");
	fd = accept(lfd, NULL, NULL);
	if (fd < 0)
		conf_fail("accept(port %u): %s", ctx->port, strerror(errno));
	close(lfd);
	return fd;
}

int conf_connect_one(struct conf_ctx *ctx, int type)
{
	ctl_expect(ctx, "LISTENING");
	return conf_connect(ctx, type, ctx->port);
}

void send_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;
	size_t done = 0;

	while (done < len) {
		ssize_t n = send(fd, p + done, len - done, MSG_NOSIGNAL);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			conf_fail("send after %zu of %zu bytes: %s", done, len,
				  strerror(errno));
		if (n == 0)
			conf_fail("send returned 0 after %zu of %zu bytes",
				  done, len);
		done += n;
	}
}

void recv_all(int fd, void *buf, size_t len)
{
	char *p = buf;
	size_t done = 0;

	while (done < len) {
		ssize_t n = recv(fd, p + done, len - done, 0);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			conf_fail("recv after %zu of %zu bytes: %s", done, len,
				  strerror(errno));
		if (n == 0)
			conf_fail("EOF after %zu of %zu bytes", done, len);
		done += n;
	}
}

static inline uint8_t pattern_byte(uint64_t seed, uint64_t pos)
{
	uint64_t x = (pos + (seed << 1)) * 0x9e3779b97f4a7c15ULL;

	return (uint8_t)((x >> 56) ^ (x >> 29) ^ seed);
}

void fill_pattern(void *buf, size_t len, uint64_t seed, uint64_t offset)
{
	uint8_t *p = buf;
	size_t i;

	for (i = 0; i < len; i++)
		p[i] = pattern_byte(seed, offset + i);
}

bool check_pattern(const void *buf, size_t len, uint64_t seed,
		   uint64_t offset)
{
	const uint8_t *p = buf;
	size_t i;

	for (i = 0; i < len; i++) {
		if (p[i] != pattern_byte(seed, offset + i)) {
			fprintf(stderr,
				"# %s: pattern %#llx: byte %llu is %#x, expected %#x\n",
				side, (unsigned long long)seed,
				(unsigned long long)(offset + i), p[i],
				pattern_byte(seed, offset + i));
			return false;
		}
	}
	return true;
}

/* ---------------------------------------------------------------- */
/* The run.                                                          */

struct opts {
	bool server;
	const char *host;
	unsigned int control_port;
	long peer;
	unsigned int port_base;
	unsigned int timeout_factor;
	bool list;
	const char *only[16];
	int n_only;
	const char *skip[16];
	int n_skip;
};

static const struct conf_case **all_cases;
static int n_cases;

static void collect_cases(void)
{
	const struct conf_case *tables[] = {
		conf_stream_cases, conf_seqpacket_cases, conf_dgram_cases,
	};
	size_t t;
	int i;

	for (t = 0; t < sizeof(tables) / sizeof(tables[0]); t++)
		for (i = 0; tables[t][i].name; i++)
			n_cases++;
	all_cases = calloc(n_cases + 1, sizeof(*all_cases));
	if (!all_cases) {
		perror("calloc");
		exit(2);
	}
	n_cases = 0;
	for (t = 0; t < sizeof(tables) / sizeof(tables[0]); t++)
		for (i = 0; tables[t][i].name; i++)
			all_cases[n_cases++] = &tables[t][i];
}

static bool selected(const struct opts *o, const char *name)
{
	bool want = !o->n_only;
	int i;

	for (i = 0; i < o->n_only; i++)
		if (strstr(name, o->only[i]))
			want = true;
	for (i = 0; i < o->n_skip; i++)
		if (strstr(name, o->skip[i]))
			want = false;
	return want;
}

static void usage(const char *prog)
{
	fprintf(stderr,
		"usage: %s --mode=server|client --control-host HOST --control-port N\n"
		"          --peer PEER_ID [--port-base N] [--timeout-factor N]\n"
		"          [--list] [--only SUBSTRING]... [--skip SUBSTRING]...\n",
		prog);
	exit(2);
}

static void parse_opts(int argc, char **argv, struct opts *o)
{
	static const struct option longopts[] = {
		{ "mode", required_argument, NULL, 'm' },
		{ "control-host", required_argument, NULL, 'h' },
		{ "control-port", required_argument, NULL, 'p' },
		{ "peer", required_argument, NULL, 'P' },
		{ "port-base", required_argument, NULL, 'b' },
		{ "timeout-factor", required_argument, NULL, 't' },
		{ "list", no_argument, NULL, 'l' },
		{ "only", required_argument, NULL, 'o' },
		{ "skip", required_argument, NULL, 's' },
		{ "help", no_argument, NULL, '?' },
		{ NULL, 0, NULL, 0 },
	};
	const char *mode = NULL;
	int c;

	memset(o, 0, sizeof(*o));
	o->peer = -1;
	o->port_base = 20000;
	o->timeout_factor = 1;
	while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (c) {
		case 'm':
			mode = optarg;
			break;
		case 'h':
			o->host = optarg;
			break;
		case 'p':
			o->control_port = strtoul(optarg, NULL, 0);
			break;
		case 'P':
			o->peer = strtol(optarg, NULL, 0);
			break;
		case 'b':
			o->port_base = strtoul(optarg, NULL, 0);
			break;
		case 't':
			o->timeout_factor = strtoul(optarg, NULL, 0);
			if (!o->timeout_factor)
				o->timeout_factor = 1;
			break;
		case 'l':
			o->list = true;
			break;
		case 'o':
			if (o->n_only < 16)
				o->only[o->n_only++] = optarg;
			break;
		case 's':
			if (o->n_skip < 16)
				o->skip[o->n_skip++] = optarg;
			break;
		default:
			usage(argv[0]);
		}
	}
	if (o->list)
		return;
	if (!mode || (strcmp(mode, "server") && strcmp(mode, "client")) ||
	    !o->control_port || o->peer < 0 || optind != argc)
		usage(argv[0]);
	if (!o->host)
		o->host = "127.0.0.1";
	o->server = !strcmp(mode, "server");
}

static int control_open(const struct opts *o, int *case_fd)
{
	struct addrinfo hints = {
		.ai_family = AF_INET,
		.ai_socktype = SOCK_STREAM,
	}, *ai;
	char port[16];
	int fd, one = 1, err, i, k;

	snprintf(port, sizeof(port), "%u", o->control_port);
	if (o->server)
		hints.ai_flags = AI_PASSIVE;
	err = getaddrinfo(o->server ? NULL : o->host, port, &hints, &ai);
	if (err) {
		fprintf(stderr, "control: %s: %s\n", o->host, gai_strerror(err));
		exit(2);
	}
	if (o->server) {
		int lfd = socket(AF_INET, SOCK_STREAM, 0);

		if (lfd < 0 ||
		    setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one,
			       sizeof(one)) ||
		    bind(lfd, ai->ai_addr, ai->ai_addrlen) || listen(lfd, 1)) {
			perror("control listen");
			exit(2);
		}
		fd = accept(lfd, NULL, NULL);
		*case_fd = accept(lfd, NULL, NULL);
		if (fd < 0 || *case_fd < 0) {
			perror("control accept");
			exit(2);
		}
		close(lfd);
	} else {
		/* The server may still be starting: retry for a minute. */
		for (k = 0; k < 2; k++) {
			for (i = 0;; i++) {
				fd = socket(AF_INET, SOCK_STREAM, 0);
				if (fd < 0) {
					perror("socket");
					exit(2);
				}
				if (!connect(fd, ai->ai_addr, ai->ai_addrlen))
					break;
				if (i == 600) {
					perror("control connect");
					exit(2);
				}
				close(fd);
				usleep(100000);
			}
			if (k == 0)
				*case_fd = fd;
		}
		/* The first connection is the parents' one. */
		i = fd;
		fd = *case_fd;
		*case_fd = i;
	}
	freeaddrinfo(ai);
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	setsockopt(*case_fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	return fd;
}

/* Reads lines until one starts with @prefix (skipping anything else).
 * Returns 0 with the line in @buf, or -1.
 */
static int ctl_wait_for(int fd, const char *prefix, char *buf, size_t size,
			int timeout_ms)
{
	for (;;) {
		if (ctl_read_line(fd, buf, size, timeout_ms))
			return -1;
		if (!strncmp(buf, prefix, strlen(prefix)))
			return 0;
	}
}

static int ctl_write_line(int fd, const char *line)
{
	size_t len = strlen(line);
	const char *p = line;

	while (len) {
		ssize_t n = write(fd, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		p += n;
		len -= n;
	}
	return 0;
}

/*
 * The barrier on the cases' connection before case @idx: both ends write
 * "SYNC idx" and read until the other's, dropping a dead case's leftovers
 * (a line cut short by a killed child included: the suffix counts).
 */
static int case_sync(int fd, int idx)
{
	char want[32], line[512];
	size_t wl, ll;

	snprintf(want, sizeof(want), "SYNC %d", idx);
	snprintf(line, sizeof(line), "%s\n", want);
	if (ctl_write_line(fd, line))
		return -1;
	wl = strlen(want);
	for (;;) {
		if (ctl_read_line(fd, line, sizeof(line), 60000))
			return -1;
		ll = strlen(line);
		if (ll >= wl && !strcmp(line + ll - wl, want))
			return 0;
	}
}

struct outcome {
	int code;		/* 0 pass, 1 fail, CONF_SKIP_STATUS skip */
	char *output;		/* what the child printed, NUL-terminated */
	size_t len;
};

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void out_append(struct outcome *out, const char *buf, size_t n)
{
	if (out->len + n > CONF_CHILD_OUTPUT_MAX)
		n = CONF_CHILD_OUTPUT_MAX - out->len;
	memcpy(out->output + out->len, buf, n);
	out->len += n;
	out->output[out->len] = '\0';
}

static void out_printf(struct outcome *out, const char *fmt, ...)
{
	char buf[512];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (n > (int)sizeof(buf) - 1)
		n = sizeof(buf) - 1;
	if (n > 0)
		out_append(out, buf, n);
}

#define CONF_STOPPED	3	/* outcome: stopped, the other end failed */

/*
 * What a parent watches on the parents' connection while its child runs:
 * the server waits for the client's "ABORT n" (the client's part
 * failed), the client for the server's "STATUS n ..." (and stops its own
 * child if the server's part failed).  Either way the survivor does not
 * sit out its timeout.
 */
struct watch {
	int fd;			/* -1: nothing to watch */
	int idx;
	bool client;
	bool got_status;	/* client: @theirs is filled */
	struct outcome *theirs;
};

static bool code_ok(int code)
{
	return code == 0 || code == CONF_SKIP_STATUS;
}

/* Client: reads the rest of a "STATUS n code len" line's message. */
static int read_status(int fd, int idx, const char *line,
		       struct outcome *theirs)
{
	char want[64];
	int code, len, n;

	snprintf(want, sizeof(want), "STATUS %d ", idx);
	if (strncmp(line, want, strlen(want)) ||
	    sscanf(line + strlen(want), "%d %d", &code, &len) != 2 ||
	    len < 0 || len > CONF_CHILD_OUTPUT_MAX) {
		errno = EPROTO;
		return -1;
	}
	for (n = 0; n < len;) {
		ssize_t r = read(fd, theirs->output + n, len - n);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return -1;
		n += r;
	}
	theirs->output[len] = '\0';
	theirs->len = len;
	theirs->code = code;
	return 0;
}

/* Something arrived on the parents' connection: true to stop the child. */
static bool watch_event(struct watch *w)
{
	char line[512], want[64];

	if (ctl_read_line(w->fd, line, sizeof(line), 10000)) {
		w->fd = -1;	/* the run ends after this case anyway */
		return false;
	}
	if (!w->client) {
		snprintf(want, sizeof(want), "ABORT %d", w->idx);
		return !strcmp(line, want);
	}
	if (read_status(w->fd, w->idx, line, w->theirs))
		return false;	/* not ours: skipped */
	w->got_status = true;
	w->fd = -1;
	return !code_ok(w->theirs->code);
}

/* Runs one end of @c in a child; fills @out. */
static void run_child(const struct conf_case *c, struct conf_ctx *ctx,
		      unsigned int timeout, struct outcome *out,
		      struct watch *w)
{
	void (*fn)(struct conf_ctx *ctx) =
		ctx->client ? c->run_client : c->run_server;
	int pipefd[2], status = 0;
	bool exited = false, killed = false, stopped = false;
	double deadline;
	pid_t pid;

	out->code = 0;
	out->len = 0;
	out->output[0] = '\0';
	if (!fn)
		return;
	if (pipe2(pipefd, O_CLOEXEC)) {
		out->code = 1;
		out_printf(out, "# %s: pipe: %s\n", side, strerror(errno));
		return;
	}
	fflush(stdout);
	fflush(stderr);
	pid = fork();
	if (pid < 0) {
		out->code = 1;
		out_printf(out, "# %s: fork: %s\n", side, strerror(errno));
		close(pipefd[0]);
		close(pipefd[1]);
		return;
	}
	if (pid == 0) {
		setpgid(0, 0);
		dup2(pipefd[1], STDOUT_FILENO);
		dup2(pipefd[1], STDERR_FILENO);
		signal(SIGPIPE, SIG_IGN);
		signal(SIGALRM, SIG_DFL);
		alarm(timeout);
		fn(ctx);
		fflush(stdout);
		fflush(stderr);
		exit(0);
	}
	setpgid(pid, pid);
	close(pipefd[1]);
	fcntl(pipefd[0], F_SETFL, O_NONBLOCK);
	deadline = now_s() + timeout + 10;
	for (;;) {
		struct pollfd pfd[2] = {
			{ .fd = pipefd[0], .events = POLLIN },
			{ .fd = w->fd, .events = POLLIN },
		};
		char buf[4096];
		ssize_t n;

		if (poll(pfd, w->fd >= 0 ? 2 : 1, 50) > 0) {
			if (pfd[0].revents)
				while ((n = read(pipefd[0], buf,
						 sizeof(buf))) > 0)
					out_append(out, buf, n);
			if (w->fd >= 0 && pfd[1].revents && watch_event(w)) {
				kill(-pid, SIGKILL);
				stopped = true;
				if (waitpid(pid, &status, 0) == pid)
					exited = true;
				while ((n = read(pipefd[0], buf,
						 sizeof(buf))) > 0)
					out_append(out, buf, n);
				break;
			}
		}
		if (!exited && waitpid(pid, &status, WNOHANG) == pid) {
			exited = true;
			/* Whatever the case left behind goes too. */
			kill(-pid, SIGKILL);
			/* Let the last writes reach the pipe. */
			usleep(20000);
			while ((n = read(pipefd[0], buf, sizeof(buf))) > 0)
				out_append(out, buf, n);
			break;
		}
		if (now_s() > deadline) {
			/* Stuck where SIGALRM does not reach (e.g. D state). */
			kill(-pid, SIGKILL);
			killed = true;
			if (waitpid(pid, &status, 0) == pid)
				exited = true;
			break;
		}
	}
	close(pipefd[0]);
	if (stopped) {
		out->code = CONF_STOPPED;
		out_printf(out, "# %s: stopped: the other end failed\n",
			   side);
	} else if (killed) {
		out->code = 1;
		out_printf(out, "# %s: hung, killed after %u s\n", side,
			   timeout + 10);
	} else if (WIFEXITED(status)) {
		out->code = WEXITSTATUS(status);
		if (out->code != 0 && out->code != CONF_SKIP_STATUS)
			out->code = 1;
		if (out->code == 1 && !out->len)
			out_printf(out, "# %s: exit status %d\n", side,
				   WEXITSTATUS(status));
	} else if (WIFSIGNALED(status)) {
		out->code = 1;
		if (WTERMSIG(status) == SIGALRM)
			out_printf(out, "# %s: timed out after %u s\n", side,
				   timeout);
		else
			out_printf(out, "# %s: killed by signal %d (%s)\n",
				   side, WTERMSIG(status),
				   strsignal(WTERMSIG(status)));
	}
}

/* Prints @text as TAP diagnostics: each line starts with '#'. */
static void print_diag(const char *text)
{
	while (*text) {
		const char *nl = strchr(text, '\n');
		int len = nl ? nl - text : (int)strlen(text);

		if (len)
			printf("%s%.*s\n", text[0] == '#' ? "" : "# ",
			       len, text);
		text += len + (nl ? 1 : 0);
	}
}

static void case_ctx(struct conf_ctx *ctx, const struct opts *o, int fam,
		     uint32_t self, int ctl, int idx)
{
	ctx->family = fam;
	ctx->self = self;
	ctx->peer = o->peer;
	ctx->port = o->port_base + idx * CONF_PORTS_PER_CASE;
	ctx->ctl = ctl;
	ctx->local = (uint32_t)o->peer == self;
	ctx->client = !o->server;
}

static unsigned int case_timeout(const struct conf_case *c,
				 const struct opts *o)
{
	return (c->timeout ? c->timeout : CONF_DEFAULT_TIMEOUT) *
	       o->timeout_factor;
}

static int run_client(const struct opts *o, int fam, uint32_t self, int ctl,
		      int case_fd)
{
	struct outcome mine, theirs;
	struct watch watch = { .client = true, .theirs = &theirs };
	int i, n_sel = 0, tap = 0, failed = 0;
	char line[512];

	mine.output = malloc(CONF_CHILD_OUTPUT_MAX + 1);
	theirs.output = malloc(CONF_CHILD_OUTPUT_MAX + 1);
	if (!mine.output || !theirs.output)
		return 2;
	for (i = 0; i < n_cases; i++)
		n_sel += selected(o, all_cases[i]->name);
	snprintf(line, sizeof(line), "HELLO %d\n", n_cases);
	if (ctl_write_line(ctl, line) ||
	    ctl_wait_for(ctl, "HELLO ", line, sizeof(line), 60000)) {
		printf("Bail out! control connection: %s\n", strerror(errno));
		return 1;
	}
	if (atoi(line + 6) != n_cases) {
		printf("Bail out! the server has %d cases, we have %d\n",
		       atoi(line + 6), n_cases);
		return 1;
	}
	printf("TAP version 13\n1..%d\n", n_sel);
	printf("# client: peer %u, remote peer %ld (%s), family %d\n",
	       self, o->peer, (uint32_t)o->peer == self ? "same guest" :
	       "another guest", fam);
	fflush(stdout);

	for (i = 0; i < n_cases; i++) {
		const struct conf_case *c = all_cases[i];
		unsigned int timeout = case_timeout(c, o);
		struct conf_ctx ctx;
		char want[64];
		bool ok;

		if (!selected(o, c->name))
			continue;
		tap++;
		snprintf(want, sizeof(want), "CASE %d", i);
		snprintf(line, sizeof(line), "CASE %d\n", i);
		if (ctl_write_line(ctl, line) ||
		    ctl_wait_for(ctl, want, line, sizeof(line), 60000) ||
		    strcmp(line, want) || case_sync(case_fd, i)) {
			printf("not ok %d %s\n# control connection lost before the case: %s\n",
			       tap, c->name, strerror(errno));
			printf("Bail out! control connection lost\n");
			return 1;
		}
		case_ctx(&ctx, o, fam, self, case_fd, i);
		watch.fd = ctl;
		watch.idx = i;
		watch.got_status = false;
		run_child(c, &ctx, timeout, &mine, &watch);
		if (!watch.got_status) {
			if (!code_ok(mine.code)) {
				snprintf(line, sizeof(line), "ABORT %d\n", i);
				ctl_write_line(ctl, line);
			}
			snprintf(want, sizeof(want), "STATUS %d ", i);
			if (ctl_wait_for(ctl, want, line, sizeof(line),
					 (timeout + CONF_CONTROL_SLACK) * 1000) ||
			    read_status(ctl, i, line, &theirs)) {
				printf("not ok %d %s\n", tap, c->name);
				print_diag(mine.output);
				printf("# no status from the server: %s\n",
				       strerror(errno));
				printf("Bail out! control connection lost\n");
				return 1;
			}
		}

		ok = code_ok(mine.code) && code_ok(theirs.code);
		if (!ok)
			failed++;
		if (ok && (mine.code == CONF_SKIP_STATUS ||
			   theirs.code == CONF_SKIP_STATUS))
			printf("ok %d %s # SKIP\n", tap, c->name);
		else
			printf("%s %d %s\n", ok ? "ok" : "not ok", tap,
			       c->name);
		print_diag(mine.output);
		print_diag(theirs.output);
		fflush(stdout);
		snprintf(line, sizeof(line), "RESULT %d %s\n", i,
			 ok ? "ok" : "fail");
		if (ctl_write_line(ctl, line)) {
			printf("Bail out! control connection lost\n");
			return 1;
		}
	}
	ctl_write_line(ctl, "DONE\n");
	printf("# %d of %d failed\n", failed, n_sel);
	return failed ? 1 : 0;
}

static int run_server(const struct opts *o, int fam, uint32_t self, int ctl,
		      int case_fd)
{
	struct outcome mine;
	struct watch watch = { .client = false };
	int failed = 0, ran = 0;
	char line[512];

	mine.output = malloc(CONF_CHILD_OUTPUT_MAX + 1);
	if (!mine.output)
		return 2;
	if (ctl_wait_for(ctl, "HELLO ", line, sizeof(line), 60000)) {
		fprintf(stderr, "control: no HELLO: %s\n", strerror(errno));
		return 1;
	}
	snprintf(line, sizeof(line), "HELLO %d\n", n_cases);
	if (ctl_write_line(ctl, line))
		return 1;
	printf("# server: peer %u, remote peer %ld, family %d, %d cases\n",
	       self, o->peer, fam, n_cases);
	fflush(stdout);

	for (;;) {
		const struct conf_case *c;
		struct conf_ctx ctx;
		char want[64];
		int i;

		/* Generous: the client may be busy with its own child. */
		if (ctl_read_line(ctl, line, sizeof(line), 3600 * 1000)) {
			fprintf(stderr, "control: %s\n", strerror(errno));
			return 1;
		}
		if (!strcmp(line, "DONE"))
			break;
		if (strncmp(line, "CASE ", 5))
			continue;
		i = atoi(line + 5);
		if (i < 0 || i >= n_cases) {
			fprintf(stderr, "control: no case %d\n", i);
			return 1;
		}
		c = all_cases[i];
		snprintf(line, sizeof(line), "CASE %d\n", i);
		if (ctl_write_line(ctl, line) || case_sync(case_fd, i)) {
			fprintf(stderr, "control: case %d: no sync: %s\n", i,
				strerror(errno));
			return 1;
		}
		case_ctx(&ctx, o, fam, self, case_fd, i);
		watch.fd = ctl;
		watch.idx = i;
		run_child(c, &ctx, case_timeout(c, o), &mine, &watch);
		snprintf(line, sizeof(line), "STATUS %d %d %zu\n", i,
			 mine.code, mine.len);
		if (ctl_write_line(ctl, line))
			return 1;
		write_full_or_fail(ctl, mine.output, mine.len);
		snprintf(want, sizeof(want), "RESULT %d ", i);
		if (ctl_wait_for(ctl, want, line, sizeof(line), 600 * 1000)) {
			fprintf(stderr, "control: no result: %s\n",
				strerror(errno));
			return 1;
		}
		ran++;
		if (strcmp(line + strlen(want), "ok")) {
			failed++;
			printf("not ok %d %s\n", i, c->name);
			print_diag(mine.output);
		} else {
			printf("ok %d %s\n", i, c->name);
		}
		fflush(stdout);
	}
	printf("# server: %d of %d failed\n", failed, ran);
	return failed ? 1 : 0;
}

int main(int argc, char **argv)
{
	struct opts o;
	long self;
	int fam, ctl, case_fd = -1, i;

	setvbuf(stdout, NULL, _IOLBF, 0);
	parse_opts(argc, argv, &o);
	collect_cases();
	if (o.list) {
		for (i = 0; i < n_cases; i++)
			if (selected(&o, all_cases[i]->name))
				printf("%d\t%s\n", i, all_cases[i]->name);
		return 0;
	}
	side = o.server ? "server" : "client";
	signal(SIGPIPE, SIG_IGN);
	fam = ivshmem_family();
	self = ivshmem_local_peer();
	if (fam < 0 || self < 0) {
		if (!o.server)
			printf("TAP version 13\n1..0 # SKIP AF_IVSHMEM: %s\n",
			       strerror(errno));
		fprintf(stderr, "AF_IVSHMEM not usable: %s\n",
			strerror(errno));
		return 1;
	}
	ctl = control_open(&o, &case_fd);
	return o.server ? run_server(&o, fam, self, ctl, case_fd) :
			  run_client(&o, fam, self, ctl, case_fd);
}
