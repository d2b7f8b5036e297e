// SPDX-License-Identifier: GPL-2.0
/*
 * Test for ivshmem-server: starts the server and talks to it like QEMU's
 * ivshmem-doorbell device would.  Output is TAP.
 *
 * Usage: test_ivshmem_server PATH_TO_IVSHMEM_SERVER
 */
#define _GNU_SOURCE

#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
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
#include <sys/wait.h>

#define NTESTS		28
#define TIMEOUT_MS	5000	/* every wait for the server is bounded */
#define QUIET_MS	300	/* "nothing more is coming" */
#define NV		2	/* vectors used by the main server */
#define SHM_SIZE	(1 << 20)
#define MAX_ID		8

struct client {
	int sock;
	int id;
	int shm;
	int own[NV];
	int peer[MAX_ID][NV];	/* eventfds of other peers, by peer ID */
};

struct msg {
	int64_t val;
	int fd;
};

static const char *server;
static char dir[64], sock_path[100], shm_path[128], pid_path[128];
static char log_path[128];
static int test_no, failures;

static void diag(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void diag(const char *fmt, ...)
{
	va_list ap;

	printf("# ");
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
}

static bool report(bool ok, const char *name)
{
	test_no++;
	printf("%s %d - %s\n", ok ? "ok" : "not ok", test_no, name);
	if (!ok)
		failures++;
	fflush(stdout);
	return ok;
}

static void sleep_ms(int ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

static void close_fd(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

static void client_init(struct client *c)
{
	int i, v;

	c->sock = -1;
	c->id = -1;
	c->shm = -1;
	for (v = 0; v < NV; v++)
		c->own[v] = -1;
	for (i = 0; i < MAX_ID; i++)
		for (v = 0; v < NV; v++)
			c->peer[i][v] = -1;
}

static void client_close(struct client *c)
{
	int i, v;

	close_fd(&c->sock);
	close_fd(&c->shm);
	for (v = 0; v < NV; v++)
		close_fd(&c->own[v]);
	for (i = 0; i < MAX_ID; i++)
		for (v = 0; v < NV; v++)
			close_fd(&c->peer[i][v]);
	client_init(c);
}

/* Start the server with the given arguments; stderr goes to the log. */
static pid_t start_server(const char *const *args)
{
	const char *argv[32];
	pid_t pid;
	int i, fd;

	argv[0] = server;
	for (i = 0; args[i] && i < 30; i++)
		argv[i + 1] = args[i];
	argv[i + 1] = NULL;
	fflush(stdout);
	pid = fork();
	if (pid < 0) {
		diag("fork: %s", strerror(errno));
		return -1;
	}
	if (pid == 0) {
		fd = open(log_path, O_WRONLY | O_CREAT | O_APPEND, 0644);
		if (fd >= 0) {
			dup2(fd, STDERR_FILENO);
			dup2(fd, STDOUT_FILENO);
			close(fd);
		}
		execv(server, (char *const *)argv);
		_exit(127);
	}
	return pid;
}

/* Wait for a child to exit; returns its wait status or -1 on timeout. */
static int wait_exit(pid_t pid, int timeout_ms)
{
	int status, waited = 0;
	pid_t r;

	for (;;) {
		r = waitpid(pid, &status, WNOHANG);
		if (r == pid)
			return status;
		if (r < 0) {
			diag("waitpid: %s", strerror(errno));
			return -1;
		}
		if (waited >= timeout_ms) {
			diag("process %d did not exit in time, killing it",
			     (int)pid);
			kill(pid, SIGKILL);
			waitpid(pid, &status, 0);
			return -1;
		}
		sleep_ms(10);
		waited += 10;
	}
}

static bool exited_with(int status, int code)
{
	if (status == -1)
		return false;
	if (WIFEXITED(status) && WEXITSTATUS(status) == code)
		return true;
	if (WIFEXITED(status))
		diag("exit status %d, expected %d", WEXITSTATUS(status), code);
	else if (WIFSIGNALED(status))
		diag("killed by signal %d, expected exit %d",
		     WTERMSIG(status), code);
	return false;
}

static bool run_expect_exit(const char *const *args, int code)
{
	pid_t pid = start_server(args);

	if (pid < 0)
		return false;
	return exited_with(wait_exit(pid, TIMEOUT_MS), code);
}

static bool alive(pid_t pid)
{
	int status;

	return pid > 0 && waitpid(pid, &status, WNOHANG) == 0;
}

/* Wait until the pid file exists and holds @pid (0: any); returns the pid. */
static long wait_pid_file(const char *path, pid_t pid)
{
	char buf[32];
	ssize_t n;
	long val;
	int fd, waited;

	for (waited = 0; waited < TIMEOUT_MS; waited += 10) {
		fd = open(path, O_RDONLY);
		if (fd >= 0) {
			n = read(fd, buf, sizeof(buf) - 1);
			close(fd);
			if (n > 0) {
				buf[n] = '\0';
				val = strtol(buf, NULL, 10);
				if (pid && val != pid)
					diag("pid file has %ld, expected %d",
					     val, (int)pid);
				return val;
			}
		}
		if (pid && !alive(pid)) {
			diag("server exited before writing its pid file");
			return -1;
		}
		sleep_ms(10);
	}
	diag("timeout waiting for pid file %s", path);
	return -1;
}

static int connect_to(const char *path)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	int fd;

	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", path);
	if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0) {
		diag("connect(%s): %s", path, strerror(errno));
		close(fd);
		return -1;
	}
	return fd;
}

static bool wait_readable(int fd, int timeout_ms)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	int r;

	do {
		r = poll(&p, 1, timeout_ms);
	} while (r < 0 && errno == EINTR);
	return r > 0;
}

/*
 * Receive one protocol message.  Returns 1 on success, 0 on EOF, -1 on
 * timeout or error.  *fd is -1 when no descriptor came with the message.
 */
static int recv_msg(int sock, int64_t *val, int *fd, int timeout_ms)
{
	union {
		struct cmsghdr hdr;
		char buf[CMSG_SPACE(4 * sizeof(int))];
	} cbuf;
	unsigned char data[8];
	size_t got = 0;
	struct iovec iov;
	struct msghdr msg;
	struct cmsghdr *cmsg;
	int nfds, i, fds[4];
	uint64_t le;
	ssize_t n;

	*fd = -1;
	while (got < sizeof(data)) {
		if (!wait_readable(sock, timeout_ms)) {
			if (got)
				diag("timeout inside a message");
			return -1;
		}
		iov.iov_base = data + got;
		iov.iov_len = sizeof(data) - got;
		memset(&msg, 0, sizeof(msg));
		msg.msg_iov = &iov;
		msg.msg_iovlen = 1;
		msg.msg_control = cbuf.buf;
		msg.msg_controllen = sizeof(cbuf.buf);
		n = recvmsg(sock, &msg, MSG_CMSG_CLOEXEC);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == ECONNRESET && !got)
				return 0;
			diag("recvmsg: %s", strerror(errno));
			return -1;
		}
		if (n == 0) {
			if (got)
				diag("EOF inside a message");
			return got ? -1 : 0;
		}
		for (cmsg = CMSG_FIRSTHDR(&msg); cmsg;
		     cmsg = CMSG_NXTHDR(&msg, cmsg)) {
			if (cmsg->cmsg_level != SOL_SOCKET ||
			    cmsg->cmsg_type != SCM_RIGHTS)
				continue;
			nfds = (cmsg->cmsg_len - CMSG_LEN(0)) / sizeof(int);
			memcpy(fds, CMSG_DATA(cmsg), nfds * sizeof(int));
			for (i = 0; i < nfds; i++) {
				if (*fd < 0) {
					*fd = fds[i];
					continue;
				}
				diag("more than one fd in a message");
				close(fds[i]);
				close_fd(fd);
				return -1;
			}
		}
		if (msg.msg_flags & MSG_CTRUNC) {
			diag("control data truncated");
			close_fd(fd);
			return -1;
		}
		got += n;
	}
	memcpy(&le, data, sizeof(le));
	*val = (int64_t)le64toh(le);
	return 1;
}

/* Expect a message with value @val, with an fd iff @want_fd. */
static bool expect_msg(int sock, int64_t val, bool want_fd, int *fd,
		       const char *what)
{
	int64_t got;
	int r, f;

	r = recv_msg(sock, &got, &f, TIMEOUT_MS);
	if (r != 1) {
		diag("%s: %s", what, r ? "no message (timeout/error)" : "EOF");
		return false;
	}
	if (got != val || (f >= 0) != want_fd) {
		diag("%s: got value %lld %s fd, expected %lld %s fd", what,
		     (long long)got, f >= 0 ? "with" : "without",
		     (long long)val, want_fd ? "with" : "without");
		if (f >= 0)
			close(f);
		return false;
	}
	if (fd)
		*fd = f;
	else if (f >= 0)
		close(f);
	return true;
}

static bool expect_nothing(int sock, const char *what)
{
	char c;
	ssize_t n;

	if (!wait_readable(sock, QUIET_MS))
		return true;
	n = recv(sock, &c, 1, MSG_DONTWAIT | MSG_PEEK);
	diag("%s: unexpected %s", what, n > 0 ? "message" : "EOF/error");
	return false;
}

static bool expect_eof(int sock, const char *what)
{
	int64_t val;
	int fd, r;

	/* messages sent before the drop may still be queued: skip them */
	for (;;) {
		r = recv_msg(sock, &val, &fd, TIMEOUT_MS);
		if (r == 0)
			return true;
		if (r < 0) {
			diag("%s: no EOF", what);
			return false;
		}
		close_fd(&fd);
	}
}

static off_t fd_size(int fd)
{
	struct stat st;

	if (fstat(fd, &st) < 0)
		return -1;
	return st.st_size;
}

/*
 * Connect a new client and run the handshake, expecting ID @id and the
 * already connected peers @others (ascending order, as the server keeps).
 */
static bool client_connect(struct client *c, int id, const int *others,
			   int n_others, off_t shm_size, int nv)
{
	char what[64];
	int i, v;

	client_init(c);
	c->sock = connect_to(sock_path);
	if (c->sock < 0)
		return false;
	if (!expect_msg(c->sock, 0, false, NULL, "protocol version"))
		return false;
	if (!expect_msg(c->sock, id, false, NULL, "own peer ID"))
		return false;
	c->id = id;
	if (!expect_msg(c->sock, -1, true, &c->shm, "shared memory fd"))
		return false;
	if (fd_size(c->shm) != shm_size) {
		diag("shm size %lld, expected %lld",
		     (long long)fd_size(c->shm), (long long)shm_size);
		return false;
	}
	for (i = 0; i < n_others; i++) {
		for (v = 0; v < nv; v++) {
			snprintf(what, sizeof(what), "peer %d vector %d",
				 others[i], v);
			if (!expect_msg(c->sock, others[i], true,
					&c->peer[others[i]][v], what))
				return false;
		}
	}
	for (v = 0; v < nv; v++) {
		snprintf(what, sizeof(what), "own vector %d", v);
		if (!expect_msg(c->sock, id, true, &c->own[v], what))
			return false;
	}
	return true;
}

static bool recv_announce(struct client *c, int id)
{
	char what[64];
	int v;

	for (v = 0; v < NV; v++) {
		snprintf(what, sizeof(what), "peer %d: announce of %d vec %d",
			 c->id, id, v);
		close_fd(&c->peer[id][v]);
		if (!expect_msg(c->sock, id, true, &c->peer[id][v], what))
			return false;
	}
	return true;
}

static bool recv_leave(struct client *c, int id)
{
	char what[64];
	int v;

	snprintf(what, sizeof(what), "peer %d: %d left", c->id, id);
	for (v = 0; v < NV; v++)
		close_fd(&c->peer[id][v]);
	return expect_msg(c->sock, id, false, NULL, what);
}

/* Ring @from's doorbell of peer @to, vector @v; check only that rings. */
static bool doorbell(struct client *from, struct client *to, int v)
{
	uint64_t one = 1, val = 0;
	int w;

	if (from->peer[to->id][v] < 0 || to->own[v] < 0) {
		diag("missing eventfd");
		return false;
	}
	if (write(from->peer[to->id][v], &one, sizeof(one)) != sizeof(one)) {
		diag("eventfd write: %s", strerror(errno));
		return false;
	}
	if (!wait_readable(to->own[v], TIMEOUT_MS)) {
		diag("peer %d vector %d: doorbell did not arrive", to->id, v);
		return false;
	}
	for (w = 0; w < NV; w++) {
		if (w != v && wait_readable(to->own[w], 0)) {
			diag("peer %d: vector %d rang instead of only %d",
			     to->id, w, v);
			return false;
		}
	}
	if (read(to->own[v], &val, sizeof(val)) != sizeof(val) || val != 1) {
		diag("eventfd read gave %llu", (unsigned long long)val);
		return false;
	}
	return true;
}

static bool doorbells(struct client *from, struct client *to)
{
	int v;

	for (v = 0; v < NV; v++)
		if (!doorbell(from, to, v))
			return false;
	return true;
}

/* Read messages until the socket stays quiet; returns the count. */
static int drain(int sock, struct msg *m, int max)
{
	int n = 0;

	while (n < max && recv_msg(sock, &m[n].val, &m[n].fd, QUIET_MS) == 1)
		n++;
	return n;
}

/*
 * After a client connected and closed right away, @c may have seen its
 * announce and leave (ID @id) before the real announce of the next
 * client with the same ID.  Accept exactly those two shapes.
 */
/*
 * Announcement of peer @id, possibly preceded by a transient client that
 * was announced (NV messages with fds) and left (one without) under an id
 * of its own.
 */
static bool recv_announce_after_transient(struct client *c, int id)
{
	struct msg m[3 * NV + 2];
	int n, i, first = -1, v;
	bool ok = true;

	n = drain(c->sock, m, 3 * NV + 2);
	if (n == NV)
		first = 0;
	else if (n == 2 * NV + 1 && m[NV].fd < 0 && m[NV].val != id)
		first = NV + 1;
	for (i = 0; first >= 0 && i < n; i++) {
		long long want = i < first ? m[NV].val : id;
		bool want_fd = i != NV || first == 0;

		if (m[i].val != want || (m[i].fd >= 0) != want_fd)
			ok = false;
	}
	if (first < 0 || !ok) {
		diag("peer %d: unexpected sequence of %d messages", c->id, n);
		for (i = 0; i < n; i++)
			diag("  value %lld %s fd", (long long)m[i].val,
			     m[i].fd >= 0 ? "with" : "without");
		ok = false;
	}
	for (i = 0; i < n; i++) {
		if (ok && i >= first) {
			v = i - first;
			close_fd(&c->peer[id][v]);
			c->peer[id][v] = m[i].fd;
		} else {
			close_fd(&m[i].fd);
		}
	}
	return ok;
}

static bool check_shared(struct client *a, struct client *b)
{
	const char text[] = "ivshmem test pattern";
	char *pa, *pb;
	bool ok;

	if (a->shm < 0 || b->shm < 0)
		return false;
	pa = mmap(NULL, SHM_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED,
		  a->shm, 0);
	pb = mmap(NULL, SHM_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED,
		  b->shm, 0);
	if (pa == MAP_FAILED || pb == MAP_FAILED) {
		diag("mmap: %s", strerror(errno));
		ok = false;
		goto out;
	}
	ok = pb[0] == 0 && pb[SHM_SIZE - 1] == 0;
	if (!ok)
		diag("shared memory not zeroed");
	memcpy(pa + 4096, text, sizeof(text));
	pa[SHM_SIZE - 1] = 0x5a;
	if (memcmp(pb + 4096, text, sizeof(text)) || pb[SHM_SIZE - 1] != 0x5a) {
		diag("write through one mapping not seen in the other");
		ok = false;
	}
out:
	if (pa != MAP_FAILED)
		munmap(pa, SHM_SIZE);
	if (pb != MAP_FAILED)
		munmap(pb, SHM_SIZE);
	return ok;
}

static bool file_has_pattern(const char *path)
{
	const char text[] = "ivshmem test pattern";
	char buf[sizeof(text)];
	bool ok;
	int fd;

	fd = open(path, O_RDONLY);
	if (fd < 0) {
		diag("open(%s): %s", path, strerror(errno));
		return false;
	}
	ok = fd_size(fd) == SHM_SIZE &&
	     pread(fd, buf, sizeof(buf), 4096) == sizeof(buf) &&
	     !memcmp(buf, text, sizeof(text));
	close(fd);
	if (!ok)
		diag("%s does not hold the shared memory contents", path);
	return ok;
}

static bool log_has(const char *needle)
{
	char buf[16384];
	ssize_t n;
	int fd;

	fd = open(log_path, O_RDONLY);
	if (fd < 0)
		return false;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n < 0)
		return false;
	buf[n] = '\0';
	if (strstr(buf, needle))
		return true;
	diag("log lacks \"%s\"", needle);
	return false;
}

static void dump_log(void)
{
	char line[512];
	FILE *f;

	f = fopen(log_path, "r");
	if (!f)
		return;
	diag("server log:");
	while (fgets(line, sizeof(line), f)) {
		line[strcspn(line, "\n")] = '\0';
		diag("  %s", line);
	}
	fclose(f);
}

static bool stop_server(pid_t pid)
{
	if (pid <= 0)
		return false;
	if (kill(pid, SIGTERM) < 0) {
		diag("kill: %s", strerror(errno));
		return false;
	}
	return exited_with(wait_exit(pid, TIMEOUT_MS), 0);
}

static bool path_exists(const char *path)
{
	struct stat st;

	return lstat(path, &st) == 0;
}

/* Tests against the main server: -n 2, -c 8, -m file. */
static void main_server_tests(void)
{
	const char *args[] = {
		"-F", "-v", "-S", sock_path, "-m", shm_path, "-l", "1M",
		"-n", "2", "-c", "8", "-p", pid_path, NULL
	};
	struct client a, b, c, d, e, f, g;
	const int ids0[] = { 0 }, ids02[] = { 0, 2 }, ids024[] = { 0, 2, 4 };
	bool ok;
	pid_t pid;
	int v;

	client_init(&a);
	client_init(&b);
	client_init(&c);
	client_init(&d);
	client_init(&e);
	client_init(&f);
	client_init(&g);

	/* a stale -m file must be zeroed and resized */
	v = open(shm_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	if (v >= 0) {
		if (write(v, "stale data", 10) != 10)
			diag("cannot write stale file");
		close(v);
	}

	pid = start_server(args);
	ok = pid > 0 && wait_pid_file(pid_path, pid) == pid &&
	     path_exists(sock_path);
	report(ok, "server starts, pid file written once listening");

	ok = client_connect(&a, 0, NULL, 0, SHM_SIZE, NV) &&
	     expect_nothing(a.sock, "client 0");
	report(ok,
	       "first client: version 0, id 0, shm fd of -l size, own eventfds");

	ok = client_connect(&b, 1, ids0, 1, SHM_SIZE, NV);
	report(ok, "second client: id 1, peer 0's eventfds, then its own");

	ok = recv_announce(&a, 1) && expect_nothing(a.sock, "client 0");
	report(ok, "first client gets the second one's eventfds announced");

	report(doorbells(&a, &b),
	       "eventfds connect peer 0 to peer 1 per vector");
	report(doorbells(&b, &a),
	       "eventfds connect peer 1 to peer 0 per vector");

	report(check_shared(&a, &b),
	       "shm fds of both clients map the same zeroed memory");
	report(file_has_pattern(shm_path), "the -m file is the shared memory");

	client_close(&b);
	ok = recv_leave(&a, 1) && expect_nothing(a.sock, "client 0");
	report(ok, "disconnect of peer 1 is sent as value 1 without fd");

	ok = client_connect(&c, 2, ids0, 1, SHM_SIZE, NV) &&
	     recv_announce(&a, 2) && doorbells(&a, &c) && doorbells(&c, &a);
	report(ok, "a new client gets the next id (2), not the departed 1");

	ok = client_connect(&d, 3, ids02, 2, SHM_SIZE, NV) &&
	     recv_announce(&a, 3) && recv_announce(&c, 3);
	if (ok && write(d.sock, "garbage!", 8) != 8)
		ok = false;
	ok = ok && expect_eof(d.sock, "garbage client");
	report(ok, "a client sending garbage is dropped");

	ok = recv_leave(&a, 3) && recv_leave(&c, 3);
	report(ok, "the others learn that the dropped client left");

	ok = client_connect(&e, 4, ids02, 2, SHM_SIZE, NV) &&
	     recv_announce(&a, 4) && recv_announce(&c, 4) &&
	     doorbells(&e, &a) && doorbells(&c, &e);
	report(ok, "after a drop, new clients are still announced");

	/* connect and close at once */
	f.sock = connect_to(sock_path);
	close_fd(&f.sock);
	sleep_ms(100);
	ok = alive(pid) &&
	     client_connect(&g, 6, ids024, 3, SHM_SIZE, NV) &&
	     recv_announce_after_transient(&a, 6) &&
	     recv_announce_after_transient(&c, 6) &&
	     recv_announce_after_transient(&e, 6) &&
	     doorbells(&a, &g) && doorbells(&g, &e);
	report(ok, "a client closing at once does not disturb the server");

	ok = expect_nothing(a.sock, "client 0") &&
	     expect_nothing(c.sock, "client 1") &&
	     expect_nothing(e.sock, "client 2") &&
	     expect_nothing(g.sock, "client 3");
	report(ok, "no unexpected messages");

	ok = stop_server(pid);
	report(ok, "SIGTERM: exit status 0");

	ok = !path_exists(sock_path) && !path_exists(pid_path) &&
	     path_exists(shm_path);
	report(ok, "SIGTERM: socket and pid file removed, -m file kept");

	ok = expect_eof(a.sock, "client 0 after server exit");
	report(ok, "clients see EOF after server exit");

	ok = log_has("ivshmem-server: peer 1 connected") &&
	     log_has("ivshmem-server: peer 1 left") &&
	     log_has("ivshmem-server: dropping peer 3: unexpected data");
	report(ok, "log lines for connect, leave and drop");

	client_close(&a);
	client_close(&c);
	client_close(&d);
	client_close(&e);
	client_close(&g);
}

/* -M mode, -c 1, -l with K suffix, default of one vector. */
static void shm_name_tests(void)
{
	char name[64];
	const char *args[] = {
		"-F", "-S", sock_path, "-M", name, "-l", "64K", "-c", "1",
		"-p", pid_path, NULL
	};
	struct client a, b;
	bool ok;
	pid_t pid;
	int fd;

	snprintf(name, sizeof(name), "/ivshmem-test-%d", (int)getpid());
	client_init(&a);
	client_init(&b);
	pid = start_server(args);
	ok = pid > 0 && wait_pid_file(pid_path, pid) == pid &&
	     client_connect(&a, 0, NULL, 0, 64 << 10, 1);
	fd = shm_open(name, O_RDONLY, 0);
	if (fd < 0 || fd_size(fd) != 64 << 10) {
		diag("shm object %s missing or wrong size", name);
		ok = false;
	}
	if (fd >= 0)
		close(fd);
	report(ok, "-M creates a POSIX shm object of -l 64K");

	b.sock = connect_to(sock_path);
	ok = b.sock >= 0 && expect_eof(b.sock, "client over -c limit") &&
	     expect_nothing(a.sock, "client 0");
	report(ok, "-c 1: a second client is rejected");

	ok = stop_server(pid);
	fd = shm_open(name, O_RDONLY, 0);
	if (fd >= 0) {
		diag("shm object %s still exists", name);
		close(fd);
		shm_unlink(name);
		ok = false;
	}
	report(ok && !path_exists(sock_path),
	       "-M object and socket removed on SIGTERM");
	client_close(&a);
	client_close(&b);
}

static void daemon_tests(void)
{
	const char *args[] = {
		"-S", sock_path, "-m", shm_path, "-p", pid_path, NULL
	};
	struct client a;
	long dpid;
	bool ok;
	pid_t pid;
	int i;

	client_init(&a);
	unlink(pid_path);
	pid = start_server(args);
	ok = pid > 0 && exited_with(wait_exit(pid, TIMEOUT_MS), 0);
	dpid = ok ? wait_pid_file(pid_path, 0) : -1;
	ok = ok && dpid > 0 && dpid != pid && kill(dpid, 0) == 0 &&
	     client_connect(&a, 0, NULL, 0, 4 << 20, 1);
	report(ok,
	       "daemon mode: parent exits 0, pid file names the daemon, default 4M");

	ok = dpid > 0 && kill(dpid, SIGTERM) == 0;
	for (i = 0; ok && i < TIMEOUT_MS / 10 && kill(dpid, 0) == 0; i++)
		sleep_ms(10);
	ok = ok && kill(dpid, 0) < 0 && !path_exists(sock_path) &&
	     expect_eof(a.sock, "client of daemon");
	if (dpid > 0 && kill(dpid, 0) == 0)
		kill(dpid, SIGKILL);
	report(ok, "daemon terminates on SIGTERM and removes its socket");
	client_close(&a);
}

static void bad_args_tests(void)
{
	const char *npot[] = { "-F", "-S", sock_path, "-m", shm_path,
			       "-l", "3M", NULL };
	const char *unknown[] = { "-F", "-S", sock_path, "-m", shm_path,
				  "-x", NULL };
	const char *no_sock[] = { "-F", "-m", shm_path, NULL };
	const char *both[] = { "-F", "-S", sock_path, "-m", shm_path,
			       "-M", "/x", NULL };
	const char *vectors[] = { "-F", "-S", sock_path, "-m", shm_path,
				  "-n", "65", NULL };

	report(run_expect_exit(npot, 2),
	       "non-power-of-two -l exits with status 2");
	report(run_expect_exit(unknown, 2),
	       "unknown option exits with status 2");
	report(run_expect_exit(no_sock, 2) && run_expect_exit(both, 2) &&
	       run_expect_exit(vectors, 2),
	       "missing -S, both -m and -M, or -n 65 exit with status 2");
	report(!path_exists(sock_path),
	       "no socket left behind by bad invocations");
}

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: %s PATH_TO_IVSHMEM_SERVER\n", argv[0]);
		return 2;
	}
	server = argv[1];
	signal(SIGPIPE, SIG_IGN);

	snprintf(dir, sizeof(dir), "/tmp/ivshmem-test.XXXXXX");
	if (!mkdtemp(dir)) {
		perror("mkdtemp");
		return 1;
	}
	snprintf(sock_path, sizeof(sock_path), "%s/sock", dir);
	snprintf(shm_path, sizeof(shm_path), "%s/shm", dir);
	snprintf(pid_path, sizeof(pid_path), "%s/pid", dir);
	snprintf(log_path, sizeof(log_path), "%s/log", dir);

	printf("TAP version 13\n1..%d\n", NTESTS);
	fflush(stdout);

	main_server_tests();
	shm_name_tests();
	daemon_tests();
	bad_args_tests();

	if (test_no != NTESTS) {
		diag("planned %d tests but ran %d", NTESTS, test_no);
		failures++;
	}
	if (failures)
		dump_log();

	unlink(sock_path);
	unlink(shm_path);
	unlink(pid_path);
	unlink(log_path);
	rmdir(dir);
	return failures ? 1 : 0;
}
