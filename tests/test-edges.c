/*
 * test-edges.c - hostile clients (issue 9): the socket, names and payloads, odd but valid traffic,
 * against a real mbxd.
 *
 * The socket cases start mbxd on paths prepared by hand and check what it
 * leaves there: the mode, owner and group it gives the socket, and what it
 * refuses (with a message naming the path and the reason, and a non-zero
 * exit) instead of following or removing.  The stopped-caller cases freeze
 * a helper inside a timed call (SIGSTOP) until the daemon has ended that
 * call, then let it go.
 */
#include <errno.h>
#include <stdbool.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/sockios.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <check.h>

#include "harness.h"
#include "proto.h"
#include "raw.h"
#include "suites.h"
#include "users.h"

/*
 * The socket
 */

/* The other mbxd's log (harness_run_mbxd() appends to it). */
static void
other_log(const struct harness *h, char *path, size_t len)
{
	snprintf(path, len, "%s/other.log", h->dir);
}

/*
 * Runs one more mbxd with -s sock (after the harness's own -s: the last
 * one counts) and asserts that it refused to start: a non-zero exit, and
 * a message naming sock and containing reason.
 */
static void
refused(const struct harness *h, const char *sock, const char *reason)
{
	const char *extra[] = { "-s", sock, NULL };
	char log[HARNESS_PATH_MAX], *text;
	int st;

	other_log(h, log, sizeof(log));
	unlink(log);
	st = harness_run_mbxd(h, extra);
	text = harness_read_file(log, NULL);
	ck_assert_msg(st != -1, "mbxd on %s kept running", sock);
	ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) != 0, "mbxd on %s: "
	    "wait status %#x, expected a refusal; its log:\n%s", sock, st,
	    text);
	ck_assert_msg(strstr(text, sock) != NULL && strstr(text, reason) !=
	    NULL, "mbxd on %s: the message does not name the path and \"%s\""
	    ":\n%s", sock, reason, text);
	free(text);
}

/* Binds a socket at path and closes it: a dead socket file. */
static void
dead_socket(const char *path)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	ck_assert_int_ge(fd, 0);
	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", path);
	ck_assert_int_eq(bind(fd, (struct sockaddr *)&sun, sizeof(sun)), 0);
	close(fd);
}

static void
write_text(const char *path, const char *text)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);

	ck_assert_msg(fd >= 0, "%s: %s", path, strerror(errno));
	ck_assert(write(fd, text, strlen(text)) == (ssize_t)strlen(text));
	close(fd);
}

static void
expect_text(const char *path, const char *text)
{
	char *got = harness_read_file(path, NULL);

	ck_assert_msg(strcmp(got, text) == 0, "%s now holds \"%s\", not \"%s\"",
	    path, got, text);
	free(got);
}

/*
 * A symlink, a regular file or a directory at the socket path is neither
 * followed nor removed: mbxd refuses to start and says why.  A symlink to
 * a dead socket is no dead socket either.
 */
START_TEST(test_socket_path_not_socket)
{
	struct harness h;
	char path[HARNESS_PATH_MAX], target[HARNESS_PATH_MAX];
	char dead[HARNESS_PATH_MAX], link[HARNESS_PATH_MAX];
	struct stat st;
	ssize_t n;

	harness_init(&h);
	snprintf(path, sizeof(path), "%s/file.sock", h.dir);
	write_text(path, "keep me\n");
	refused(&h, path, "regular file");
	expect_text(path, "keep me\n");

	snprintf(path, sizeof(path), "%s/dir.sock", h.dir);
	ck_assert(mkdir(path, 0755) == 0);
	snprintf(target, sizeof(target), "%s/dir.sock/inside", h.dir);
	write_text(target, "inside\n");
	refused(&h, path, "directory");
	ck_assert(lstat(path, &st) == 0 && S_ISDIR(st.st_mode));
	expect_text(target, "inside\n");

	/* To a file: not followed (the file stays as it was). */
	snprintf(target, sizeof(target), "%s/target", h.dir);
	write_text(target, "target\n");
	snprintf(path, sizeof(path), "%s/link.sock", h.dir);
	ck_assert(symlink(target, path) == 0);
	refused(&h, path, "symbolic link");
	expect_text(target, "target\n");
	ck_assert(lstat(path, &st) == 0 && S_ISLNK(st.st_mode));

	/* To a dead socket: not replaced through the link. */
	snprintf(dead, sizeof(dead), "%s/dead", h.dir);
	dead_socket(dead);
	snprintf(link, sizeof(link), "%s/deadlink.sock", h.dir);
	ck_assert(symlink(dead, link) == 0);
	refused(&h, link, "symbolic link");
	ck_assert(lstat(dead, &st) == 0 && S_ISSOCK(st.st_mode));
	ck_assert(lstat(link, &st) == 0 && S_ISLNK(st.st_mode));
	n = readlink(link, path, sizeof(path) - 1);
	ck_assert(n > 0);
	path[n] = '\0';
	ck_assert_str_eq(path, dead);

	/* Dangling. */
	snprintf(path, sizeof(path), "%s/dangling.sock", h.dir);
	snprintf(target, sizeof(target), "%s/nothing-here", h.dir);
	ck_assert(symlink(target, path) == 0);
	refused(&h, path, "symbolic link");
	ck_assert(lstat(target, &st) == -1 && errno == ENOENT);
	harness_cleanup(&h);
}
END_TEST

/*
 * A live socket is refused (another mbxd runs there) and keeps its file;
 * a dead one is replaced by a new socket (another inode).  The daemon that
 * stops unlinks its own socket, never one made after it.
 */
START_TEST(test_socket_live_and_dead)
{
	struct harness h, h2;
	struct stat st, st2;
	mbx_t *c;

	harness_start(&h, NULL);
	ck_assert(lstat(h.sock, &st) == 0 && S_ISSOCK(st.st_mode));
	refused(&h, h.sock, "another mbxd");
	ck_assert(lstat(h.sock, &st2) == 0);
	ck_assert_msg(st2.st_ino == st.st_ino && st2.st_dev == st.st_dev,
	    "the live socket was replaced (inode %lu, now %lu)",
	    (unsigned long)st.st_ino, (unsigned long)st2.st_ino);
	c = harness_open(&h);
	mbx_close(c);
	harness_stop(&h);

	harness_init(&h);
	dead_socket(h.sock);
	ck_assert(lstat(h.sock, &st) == 0 && S_ISSOCK(st.st_mode));
	harness_launch(&h, NULL);
	/* A new socket (the inode number itself may be reused). */
	ck_assert(lstat(h.sock, &st2) == 0 && S_ISSOCK(st2.st_mode));
	c = harness_open(&h);
	mbx_close(c);

	/*
	 * Someone replaces the daemon's socket file (an operator, another
	 * mbxd that found it stale): the daemon that stops leaves it alone.
	 */
	ck_assert(unlink(h.sock) == 0);
	dead_socket(h.sock);
	ck_assert(lstat(h.sock, &st) == 0);
	h2 = h;
	ck_assert_int_eq(harness_terminate(&h), 0);
	ck_assert_msg(lstat(h.sock, &st2) == 0 && st2.st_ino == st.st_ino,
	    "the stopping daemon removed a socket file it did not make");
	harness_cleanup(&h2);
}
END_TEST

/*
 * The socket's directory: one that its group or every user may write to
 * (sticky or not), one that another user owns or that is a symlink, is
 * refused and left as it was.  One that is missing is created with mode
 * 0755 whatever the umask, so that other users can reach the socket.
 */
START_TEST(test_socket_dir)
{
	static const struct { mode_t mode; const char *reason; } bad[] = {
		{ 0777, "writable by every user" },
		{ 01777, "writable by every user" },
		{ 0775, "writable by its group" },
		{ 0757, "writable by every user" },
	};
	struct harness h;
	char dir[HARNESS_DIR_MAX + 16], sock[HARNESS_PATH_MAX];
	struct stat st;
	mode_t old;
	mbx_t *c;

	harness_init(&h);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		snprintf(dir, sizeof(dir), "%s/d%zu", h.dir, i);
		ck_assert(mkdir(dir, 0700) == 0 && chmod(dir, bad[i].mode) == 0);
		snprintf(sock, sizeof(sock), "%s/mbxd.sock", dir);
		refused(&h, sock, bad[i].reason);
		ck_assert(lstat(dir, &st) == 0 &&
		    (st.st_mode & 07777) == bad[i].mode);
		ck_assert(lstat(sock, &st) == -1 && errno == ENOENT);
	}
	/* A symlink to a good directory. */
	snprintf(dir, sizeof(dir), "%s/good", h.dir);
	ck_assert(mkdir(dir, 0755) == 0);
	snprintf(dir, sizeof(dir), "%s/link", h.dir);
	ck_assert(symlink("good", dir) == 0);
	snprintf(sock, sizeof(sock), "%s/mbxd.sock", dir);
	refused(&h, sock, "not a directory");
	snprintf(sock, sizeof(sock), "%s/good/mbxd.sock", h.dir);
	ck_assert(lstat(sock, &st) == -1 && errno == ENOENT);
	if (is_root()) {
		snprintf(dir, sizeof(dir), "%s/theirs", h.dir);
		ck_assert(mkdir(dir, 0755) == 0 &&
		    chown(dir, OTHER.uid, OTHER.gid) == 0);
		snprintf(sock, sizeof(sock), "%s/mbxd.sock", dir);
		refused(&h, sock, "belongs to another user");
	} else {
		skip("edges: socket_dir", "a directory of another user needs "
		    "root");
	}

	/* Missing: made 0755 under a umask of 077, reachable by others. */
	snprintf(dir, sizeof(dir), "%s/made", h.dir);
	snprintf(h.sock, sizeof(h.sock), "%s/mbxd.sock", dir);
	if (is_root()) {
		char parent[HARNESS_DIR_MAX], *slash;

		/* As daemon_start() does: the way there is traversable. */
		snprintf(parent, sizeof(parent), "%s", h.dir);
		slash = strrchr(parent, '/');
		ck_assert(slash != NULL && slash != parent);
		*slash = '\0';
		if (strcmp(parent, "/tmp") != 0)
			ck_assert(chmod(parent, 0711) == 0);
		ck_assert(chmod(h.dir, 0711) == 0);
	}
	old = umask(077);
	harness_launch(&h, NULL);
	umask(old);
	ck_assert(lstat(dir, &st) == 0 && S_ISDIR(st.st_mode));
	ck_assert_msg((st.st_mode & 07777) == 0755, "mbxd made its directory "
	    "with mode %04o", (unsigned)(st.st_mode & 07777));
	ck_assert(lstat(h.sock, &st) == 0 && (st.st_mode & 0777) == 0666);
	if (is_root()) {
		c = open_as(&h, &OTHER);
		mbx_close(c);
	}
	harness_stop(&h);
}
END_TEST

/*
 * The socket gets the configured mode, owner and group; a user whom they
 * leave out gets EACCES at connect, the others connect.
 */
START_TEST(test_socket_perms)
{
	char config[256];
	struct harness h;
	struct stat st;
	mbx_t *c;

	if (!is_root()) {
		skip("edges: socket_perms", "other users need root");
		return;
	}
	snprintf(config, sizeof(config), "{ \"socket\": { \"mode\": \"0660\", "
	    "\"owner\": %u, \"group\": %u } }", (unsigned)OWNER.uid,
	    (unsigned)G_MBOX);
	daemon_start(&h, config);
	ck_assert(lstat(h.sock, &st) == 0 && S_ISSOCK(st.st_mode));
	ck_assert_msg((st.st_mode & 07777) == 0660 && st.st_uid == OWNER.uid &&
	    st.st_gid == G_MBOX, "socket: mode %04o owner %u group %u",
	    (unsigned)(st.st_mode & 07777), (unsigned)st.st_uid,
	    (unsigned)st.st_gid);
	c = open_as(&h, &OWNER);
	mbx_close(c);
	c = open_as(&h, &GROUPMATE);
	mbx_close(c);
	errno = 0;
	ck_assert_ptr_null(try_open_as(&h, &OTHER));
	ck_assert_msg(errno == EACCES, "a user outside the socket's owner and "
	    "group: %s, expected EACCES", harness_errname(errno));
	harness_stop(&h);

	/* Owner only; the group is the daemon's. */
	daemon_start(&h, "{ \"socket\": { \"mode\": \"0600\", \"owner\": "
	    "65534 } }");
	ck_assert(lstat(h.sock, &st) == 0);
	ck_assert_msg((st.st_mode & 07777) == 0600 && st.st_uid == 65534 &&
	    st.st_gid == getegid(), "socket: mode %04o owner %u group %u",
	    (unsigned)(st.st_mode & 07777), (unsigned)st.st_uid,
	    (unsigned)st.st_gid);
	c = open_as(&h, &OWNER);
	mbx_close(c);
	errno = 0;
	ck_assert_ptr_null(try_open_as(&h, &GROUPMATE));
	ck_assert_int_eq(errno, EACCES);
	harness_stop(&h);

	/* The default: everyone may connect. */
	daemon_start(&h, NULL);
	ck_assert(lstat(h.sock, &st) == 0);
	ck_assert_uint_eq(st.st_mode & 07777, 0666);
	ck_assert_uint_eq(st.st_uid, geteuid());
	c = open_as(&h, &OTHER);
	mbx_close(c);
	harness_stop(&h);
}
END_TEST

/* A socket mode is an octal string of digits, nothing else. */
START_TEST(test_socket_mode_strings)
{
	static const char *const bad[] = { "\" 0660\"", "\"+660\"",
	    "\"-0\"", "\"0660 \"", "\"0800\"", "\"01777\"", "\"\"", "660" };
	struct harness h;
	char config[128], path[HARNESS_PATH_MAX], *text;
	const char *extra[] = { "-c", path, "--check-config", NULL };
	int st;

	harness_init(&h);
	snprintf(path, sizeof(path), "%s/mbxd.json", h.dir);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		FILE *f = fopen(path, "w");

		ck_assert(f != NULL);
		snprintf(config, sizeof(config), "{ \"socket\": { \"mode\": "
		    "%s } }", bad[i]);
		ck_assert(fputs(config, f) >= 0 && fclose(f) == 0);
		other_log(&h, config, sizeof(config));
		unlink(config);
		st = harness_run_mbxd(&h, extra);
		text = harness_read_file(config, NULL);
		ck_assert_msg(st != -1 && WIFEXITED(st) && WEXITSTATUS(st) != 0 &&
		    strstr(text, "mode") != NULL, "socket mode %s: wait status "
		    "%#x, log:\n%s", bad[i], st, text);
		free(text);
	}
	harness_cleanup(&h);
}
END_TEST

/*
 * A caller stopped inside a timed call
 */

#define STOPPED_TIMEOUT_MS	300

struct stopped_call {
	const char	*name;		/* the mailbox */
	bool		 recv;		/* a receive, else a send */
	int		 flags;		/* of the send */
};

/*
 * The helper: one timed call on its own connection, which must end in
 * ETIMEDOUT; then (a receive) it stays connected, bound, until "go"
 * arrives in "hold", so that the test can see what it holds.
 */
static int
child_timed_call(const struct harness *h, void *arg)
{
	const struct stopped_call *sc = arg;
	char buf[64];
	mbx_t *c = mbx_open(h->sock);
	ssize_t r;

	CHILD_REQUIRE(c != NULL);
	if (sc->recv) {
		CHILD_REQUIRE(mbx_bind(c, sc->name, MBX_BIND_EXCLUSIVE) == 0);
		CHILD_REQUIRE(mbx_bind(c, "hold", MBX_BIND_EXCLUSIVE) == 0);
	}
	harness_report(1);
	if (sc->recv)
		r = mbx_recv(c, sc->name, buf, sizeof(buf), NULL,
		    STOPPED_TIMEOUT_MS);
	else
		r = mbx_send(c, sc->name, "late", 4, sc->flags,
		    STOPPED_TIMEOUT_MS);
	CHILD_REQUIRE(r == -1 && errno == ETIMEDOUT);
	harness_report(2);
	if (sc->recv) {
		r = mbx_recv(c, "hold", buf, sizeof(buf), NULL, -1);
		CHILD_REQUIRE(r == 2 && memcmp(buf, "go", 2) == 0);
	}
	mbx_close(c);
	return 0;
}

/*
 * Starts the helper, lets it park its call in the daemon, stops it, and
 * returns once the daemon has passed the call's deadline: a timed receive
 * of the test's own, started later with the same timeout, has ended (the
 * daemon keeps one ordered set of deadlines).
 */
static void
stop_inside(const struct harness *h, mbx_t *c, struct harness_child *ch,
    struct stopped_call *sc)
{
	int64_t deadline;
	mbx_t *timer;
	char s = 0;

	harness_child_start(ch, h, child_timed_call, sc);
	ck_assert_int_eq(harness_child_read(ch), 1);
	harness_wait_blocked(c, ch);
	ck_assert(kill(ch->pid, SIGSTOP) == 0);
	deadline = harness_now_ms() + HARNESS_WAIT_MS;
	for (int i = 0; i < 100000 && harness_now_ms() < deadline; i++) {
		s = harness_proc_state(ch->pid);
		if (s == 'T' || s == 't')
			break;
		poll(NULL, 0, 1);
	}
	ck_assert_msg(s == 'T' || s == 't', "the helper did not stop (state "
	    "%c)", s != 0 ? s : '-');
	/* On a connection of its own: c may be bound, with messages. */
	timer = harness_open(h);
	ASSERT_ERR(mbx_recv(timer, NULL, NULL, 0, NULL, STOPPED_TIMEOUT_MS),
	    ETIMEDOUT);
	mbx_close(timer);
}

/* Continues the helper and checks that its call ended in ETIMEDOUT. */
static void
continue_late(struct harness_child *ch)
{
	ck_assert(kill(ch->pid, SIGCONT) == 0);
	ck_assert_msg(harness_child_read(ch) == 2, "the stopped call did not "
	    "end in ETIMEDOUT (the helper's message is on stderr)");
}

static void
create_cap(mbx_t *c, const char *name, long capacity)
{
	struct mbx_attr a;

	mbx_attr_init(&a);
	a.capacity = capacity;
	ASSERT_OK(mbx_create(c, name, &a));
}

/*
 * A receive: the message sent after the deadline stays queued, not in
 * flight to the stopped receiver (a purge, which leaves in-flight
 * messages, takes it).
 */
START_TEST(test_stopped_recv)
{
	struct stopped_call sc = { "q", true, 0 };
	struct harness_child ch;
	struct harness h;
	mbx_t *c;

	harness_start(&h, NULL);
	c = harness_open(&h);
	create_cap(c, "q", 8);
	create_cap(c, "hold", 8);
	stop_inside(&h, c, &ch, &sc);
	ASSERT_OK(mbx_send(c, "q", "after", 5, 0, 0));
	continue_late(&ch);
	ck_assert_int_eq(harness_mailbox_int(c, "q", "queued"), 1);
	ASSERT_OK(mbx_purge(c, "q"));
	ck_assert_msg(harness_mailbox_int(c, "q", "queued") == 0, "the "
	    "message sent after the deadline went to the stopped receiver");
	ck_assert_int_eq(harness_mailbox_int(c, "q", "received"), 0);
	ASSERT_OK(mbx_send(c, "hold", "go", 2, 0, 0));
	ck_assert_int_eq(harness_child_join(&ch), 0);
	mbx_close(c);
	harness_stop(&h);
}
END_TEST

/*
 * A send into a full mailbox: room made after the deadline does not let
 * the message in.
 */
START_TEST(test_stopped_send_full)
{
	struct stopped_call sc = { "full", false, 0 };
	struct harness_child ch;
	struct harness h;
	char buf[16];
	mbx_t *c;

	harness_start(&h, NULL);
	c = harness_open(&h);
	create_cap(c, "full", 1);
	ASSERT_OK(mbx_send(c, "full", "first", 5, 0, 0));
	ASSERT_OK(mbx_bind(c, "full", MBX_BIND_EXCLUSIVE));
	stop_inside(&h, c, &ch, &sc);
	ck_assert_int_eq(mbx_recv(c, "full", buf, sizeof(buf), NULL, 0), 5);
	continue_late(&ch);
	ck_assert_int_eq(harness_child_join(&ch), 0);
	ck_assert_int_eq(harness_mailbox_int(c, "full", "queued"), 0);
	ck_assert_int_eq(harness_mailbox_int(c, "full", "sent"), 1);
	ASSERT_ERR(mbx_recv(c, "full", buf, sizeof(buf), NULL, 0), EAGAIN);
	mbx_close(c);
	harness_stop(&h);
}
END_TEST

/*
 * A synchronous send and a rendezvous send: a receiver that comes after
 * the deadline finds nothing.
 */
START_TEST(test_stopped_send_waiting)
{
	struct stopped_call sync = { "sync", false, MBX_SYNC };
	struct stopped_call rdv = { "rdv", false, 0 };
	struct harness_child ch;
	struct harness h;
	char buf[16];
	mbx_t *c;

	harness_start(&h, NULL);
	c = harness_open(&h);
	create_cap(c, "sync", 8);
	create_cap(c, "rdv", 0);
	ASSERT_OK(mbx_bind(c, "sync", MBX_BIND_EXCLUSIVE));
	ASSERT_OK(mbx_bind(c, "rdv", MBX_BIND_EXCLUSIVE));

	stop_inside(&h, c, &ch, &sync);
	ASSERT_ERR(mbx_recv(c, "sync", buf, sizeof(buf), NULL, 0), EAGAIN);
	continue_late(&ch);
	ck_assert_int_eq(harness_child_join(&ch), 0);
	ck_assert_int_eq(harness_mailbox_int(c, "sync", "queued"), 0);

	stop_inside(&h, c, &ch, &rdv);
	ASSERT_ERR(mbx_recv(c, "rdv", buf, sizeof(buf), NULL, 0), EAGAIN);
	continue_late(&ch);
	ck_assert_int_eq(harness_child_join(&ch), 0);
	ck_assert_int_eq(harness_mailbox_int(c, "rdv", "queued"), 0);
	ck_assert_int_eq(harness_mailbox_int(c, "sync", "received"), 0);
	ck_assert_int_eq(harness_mailbox_int(c, "rdv", "received"), 0);
	mbx_close(c);
	harness_stop(&h);
}
END_TEST

/*
 * Odd but valid traffic
 */

/*
 * Writes buf one byte per write(), and after each waits (bounded) until
 * the daemon has read it (SIOCOUTQ: nothing of ours left unread), so that
 * each byte reaches the daemon's decoder alone.
 */
static void
write_bytewise(int fd, const uint8_t *buf, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		int64_t deadline = harness_now_ms() + HARNESS_WAIT_MS;
		int left = 1;

		ck_assert_msg(send(fd, buf + i, 1, MSG_NOSIGNAL) == 1,
		    "write byte %zu: %s", i, strerror(errno));
		for (int k = 0; k < 100000 && left > 0; k++) {
			ck_assert(ioctl(fd, SIOCOUTQ, &left) == 0);
			if (left == 0)
				break;
			ck_assert_msg(harness_now_ms() < deadline, "the daemon "
			    "did not read byte %zu of %zu", i, len);
			poll(NULL, 0, k < 100 ? 0 : 1);
		}
	}
}

/*
 * Every request of a session, the handshake included, written one byte
 * per write(): each is answered, in order, as if it came whole.
 */
START_TEST(test_bytewise_frames)
{
	struct proto_writer w;
	struct body_reply_sendv sv;
	struct body_msg m;
	struct harness h;
	uint8_t *body;
	uint32_t flags;
	size_t at, len;
	mbx_t *c;
	int fd;

	harness_start(&h, NULL);
	c = harness_open(&h);
	fd = harness_raw_connect(&h);
	proto_writer_init(&w);

	raw_put_hello(&w, 1);
	raw_put_create(&w, 2, "bytes", 5, 8, 1024, 0600);
	raw_put_bind(&w, 3, "bytes", 5, MBX_BIND_EXCLUSIVE);
	raw_put_send(&w, 4, 0, "bytes", 5, 0, "one", 3);
	raw_put_send(&w, 5, 0, "bytes", 5, 0, "", 0);
	at = proto_frame_begin(&w);			/* SENDV "two", "three" */
	body_sendv_put(&w, &(struct body_sendv){ .count = 2 });
	body_sendv_item_put(&w, &(struct body_sendv_item){
	    .name = { "bytes", 5 }, .payload = { "two", 3 } });
	body_sendv_item_put(&w, &(struct body_sendv_item){
	    .name = { "bytes", 5 }, .payload = { "three", 5 } });
	proto_frame_end(&w, at, PROTO_SENDV, 6, 0, 0);
	raw_put_list(&w, PROTO_LIST, 7, NULL, 0);
	raw_put_recv(&w, 8, "bytes", 5, 0, 1024, 1, 1024);
	ck_assert(!proto_writer_failed(&w));
	write_bytewise(fd, w.buf, w.len);

	ck_assert_int_eq(raw_expect_status(fd, 1), PROTO_OK);
	for (uint32_t id = 2; id <= 5; id++)
		ck_assert_int_eq(raw_expect_status(fd, id), PROTO_OK);
	raw_expect(fd, PROTO_REPLY, 6, &flags, &body, &len);
	ck_assert(body_reply_sendv_get(body, len, flags, &sv));
	ck_assert_int_eq(sv.status, PROTO_OK);
	ck_assert_int_eq(sv.enqueued, 2);
	free(body);
	ck_assert_int_eq(raw_expect_status(fd, 7), PROTO_OK);
	raw_expect(fd, PROTO_MSG, 8, &flags, &body, &len);
	ck_assert(body_msg_get(body, len, flags, &m));
	ck_assert(m.mailbox.len == 5 && memcmp(m.mailbox.ptr, "bytes", 5) == 0);
	ck_assert(m.payload.len == 3 && memcmp(m.payload.ptr, "one", 3) == 0);
	free(body);
	ck_assert_int_eq(harness_mailbox_int(c, "bytes", "queued"), 4);

	/* The acknowledgement and the rest of the session, byte by byte. */
	proto_writer_free(&w);
	proto_writer_init(&w);
	raw_put_ack(&w, 9, PROTO_ACK_REPLY, &m.msg_id, 1);
	raw_put_name(&w, PROTO_PURGE, 10, "bytes", 5);
	raw_put_name(&w, PROTO_DESTROY, 11, "bytes", 5);
	ck_assert(!proto_writer_failed(&w));
	write_bytewise(fd, w.buf, w.len);
	for (uint32_t id = 9; id <= 11; id++)
		ck_assert_int_eq(raw_expect_status(fd, id), PROTO_OK);
	proto_writer_free(&w);
	ck_assert_ptr_null(harness_mailbox(c, "bytes"));
	close(fd);
	mbx_close(c);
	harness_stop(&h);
}
END_TEST

/*
 * A zero-copy SEND written one byte per write(), its memfd riding with
 * the first byte as the protocol says: accepted, bound to that frame,
 * and handed to the receiver intact.
 */
START_TEST(test_bytewise_memfd)
{
	static const char payload[] = "sealed";
	union proto_fd_control ctl;
	struct proto_writer w;
	struct body_msg m;
	struct msghdr mh = { 0 };
	struct iovec iov;
	struct harness h;
	uint8_t *body;
	uint16_t type;
	uint32_t id, flags;
	size_t len;
	char got[sizeof(payload)];
	int fd, mfd, passed;
	mbx_t *c;

	harness_start(&h, NULL);
	c = harness_open(&h);
	create_cap(c, "zc", 8);
	fd = harness_raw_connect(&h);
	harness_raw_hello(fd);

	mfd = memfd_create("bytewise", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	ck_assert(mfd >= 0);
	ck_assert(ftruncate(mfd, PROTO_SHARED_HEADER + sizeof(payload)) == 0);
	ck_assert(pwrite(mfd, payload, sizeof(payload), PROTO_SHARED_HEADER) ==
	    (ssize_t)sizeof(payload));
	ck_assert(fcntl(mfd, F_ADD_SEALS, F_SEAL_WRITE | F_SEAL_GROW |
	    F_SEAL_SHRINK | F_SEAL_SEAL) == 0);

	proto_writer_init(&w);
	raw_put_send_fd(&w, 2, 0, "zc", 2, 0, sizeof(payload));
	raw_put_bind(&w, 3, "zc", 2, MBX_BIND_EXCLUSIVE);
	raw_put_recv(&w, 4, "zc", 2, 0, 1024, 1, 1024);
	ck_assert(!proto_writer_failed(&w));
	/* The first byte with the descriptor, then the rest alone. */
	iov.iov_base = w.buf;
	iov.iov_len = 1;
	mh.msg_iov = &iov;
	mh.msg_iovlen = 1;
	proto_attach_fd(&mh, &ctl, mfd);
	ck_assert(sendmsg(fd, &mh, MSG_NOSIGNAL) == 1);
	close(mfd);
	write_bytewise(fd, w.buf + 1, w.len - 1);

	for (uint32_t i = 2; i <= 3; i++)
		ck_assert_int_eq(raw_expect_status(fd, i), PROTO_OK);
	ck_assert_int_eq(harness_raw_read_fd(fd, &type, &id, &flags, &body,
	    &len, &passed), 1);
	ck_assert_msg(type == PROTO_MSG && id == 4, "frame %u for %u", type, id);
	ck_assert(flags & PROTO_MSG_FD);
	ck_assert_int_ge(passed, 0);
	ck_assert(body_msg_get(body, len, flags, &m));
	free(body);
	ck_assert(pread(passed, got, sizeof(got), PROTO_SHARED_HEADER) ==
	    (ssize_t)sizeof(got));
	ck_assert_str_eq(got, payload);
	close(passed);

	proto_writer_free(&w);
	proto_writer_init(&w);
	raw_put_ack(&w, 5, PROTO_ACK_REPLY, &m.msg_id, 1);
	write_bytewise(fd, w.buf, w.len);
	ck_assert_int_eq(raw_expect_status(fd, 5), PROTO_OK);
	proto_writer_free(&w);
	ck_assert_int_eq(harness_mailbox_int(c, "zc", "queued"), 0);
	ck_assert_int_eq(harness_mailbox_int(c, "zc", "received"), 1);
	close(fd);
	mbx_close(c);
	harness_stop(&h);
}
END_TEST

static TCase *
tcase(const char *name)
{
	TCase *tc = tcase_create(name);

	tcase_set_timeout(tc, harness_tcase_timeout());
	return tc;
}

Suite *
edges_suite(void)
{
	Suite *s = suite_create("edges");
	TCase *tc;

	tc = tcase("socket");
	tcase_add_test(tc, test_socket_path_not_socket);
	tcase_add_test(tc, test_socket_live_and_dead);
	tcase_add_test(tc, test_socket_dir);
	tcase_add_test(tc, test_socket_perms);
	tcase_add_test(tc, test_socket_mode_strings);
	suite_add_tcase(s, tc);

	tc = tcase("stopped");
	tcase_add_test(tc, test_stopped_recv);
	tcase_add_test(tc, test_stopped_send_full);
	tcase_add_test(tc, test_stopped_send_waiting);
	suite_add_tcase(s, tc);

	tc = tcase("traffic");
	tcase_add_test(tc, test_bytewise_frames);
	tcase_add_test(tc, test_bytewise_memfd);
	suite_add_tcase(s, tc);
	return s;
}
