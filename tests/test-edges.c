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
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <check.h>

#include "harness.h"
#include "proto.h"
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

/* The whole text of path (malloc'd, NUL-terminated); "" when missing. */
static char *
slurp(const char *path)
{
	FILE *f = fopen(path, "r");
	char *text = calloc(1, 65536);
	size_t n = 0;

	ck_assert(text != NULL);
	if (f != NULL) {
		n = fread(text, 1, 65535, f);
		fclose(f);
	}
	text[n] = '\0';
	return text;
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
	text = slurp(log);
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
	char *got = slurp(path);

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
		text = slurp(config);
		ck_assert_msg(st != -1 && WIFEXITED(st) && WEXITSTATUS(st) != 0 &&
		    strstr(text, "mode") != NULL, "socket mode %s: wait status "
		    "%#x, log:\n%s", bad[i], st, text);
		free(text);
	}
	harness_cleanup(&h);
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
	return s;
}
