/*
 * users.c - identities for the tests that run as root, counted skips, and
 * a daemon that other users can reach (see users.h).
 */
#include <errno.h>
#include <grp.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <check.h>

#include "harness.h"
#include "users.h"

const struct ident OWNER = { "owner", 65534, 65534, G_MBOX };
const struct ident GROUPMATE = { "groupmate", 65533, 65533, G_MBOX };
const struct ident OTHER = { "other", 65532, 65532, (gid_t)-1 };
const struct ident ADMIN_MEMBER = { "admin-group member", 65531,
    65531, G_ADMIN };
const struct ident ROOT = { "root", 0, 0, (gid_t)-1 };

bool
is_root(void)
{
	return geteuid() == 0;
}

bool
wrapped(void)
{
	const char *w = getenv("MBX_TEST_WRAPPER");

	return w != NULL && *w != '\0';
}

/* A latency bound: generous, and more so under valgrind. */
int
bound_ms(int ms)
{
	return wrapped() ? ms * 5 : ms;
}

/* A count of iterations, smaller under valgrind. */
int
scaled(int n)
{
	return wrapped() ? (n + 3) / 4 : n;
}

void
skip(const char *test, const char *why)
{
	const char *dir = getenv("MBX_TEST_TMPDIR");
	const char *ci = getenv("CI");
	char path[HARNESS_PATH_MAX];
	FILE *f;

	fprintf(stderr, "skipped: %s: %s\n", test, why);
	if (dir != NULL && *dir != '\0') {
		snprintf(path, sizeof(path), "%s/" USERS_SKIP_FILE, dir);
		if ((f = fopen(path, "a")) != NULL) {
			fprintf(f, "%s: %s\n", test, why);
			fclose(f);
		}
	}
	/* CI runs as root with every tool installed: nothing may be left out. */
	ck_assert_msg(ci == NULL || strcmp(ci, "true") != 0,
	    "%s: skipped under CI=true: %s", test, why);
}

/*
 * Effective identity switches of the test process (root only).  The real
 * and saved uid stay 0, so root can always come back.
 */
void
become(const struct ident *id)
{
	gid_t groups[1];
	size_t n = 0;

	if (id->uid == 0)
		return;
	if (id->group != (gid_t)-1)
		groups[n++] = id->group;
	ck_assert_msg(setgroups(n, groups) == 0, "setgroups: %s",
	    strerror(errno));
	ck_assert_msg(setegid(id->gid) == 0, "setegid: %s", strerror(errno));
	ck_assert_msg(seteuid(id->uid) == 0, "seteuid: %s", strerror(errno));
}

void
become_root(void)
{
	gid_t root = 0;

	ck_assert_msg(seteuid(0) == 0, "seteuid(0): %s", strerror(errno));
	ck_assert_msg(setegid(0) == 0, "setegid(0): %s", strerror(errno));
	ck_assert_msg(setgroups(1, &root) == 0, "setgroups: %s",
	    strerror(errno));
}

/* mbx_open() as id (as ourselves when not root); NULL with errno. */
mbx_t *
try_open_as(const struct harness *h, const struct ident *id)
{
	mbx_t *c;
	int err;

	if (!is_root() || id->uid == 0)
		return mbx_open(h->sock);
	become(id);
	c = mbx_open(h->sock);
	err = errno;
	become_root();
	errno = err;
	return c;
}

mbx_t *
open_as(const struct harness *h, const struct ident *id)
{
	mbx_t *c = try_open_as(h, id);

	ck_assert_msg(c != NULL, "mbx_open as %s: %s", id->what,
	    harness_errname(errno));
	return c;
}

/* A raw connection (no handshake) as id. */
int
raw_connect_as(const struct harness *h, const struct ident *id)
{
	int fd;

	if (!is_root() || id->uid == 0)
		return harness_raw_connect(h);
	become(id);
	fd = harness_raw_connect(h);
	become_root();
	return fd;
}

/* In a helper: become id for good (nothing when not root). */
bool
drop_to(const struct ident *id)
{
	gid_t groups[1] = { id->group };

	if (!is_root() || id->uid == 0)
		return true;
	return setgroups(id->group != (gid_t)-1 ? 1 : 0, groups) == 0 &&
	    setgid(id->gid) == 0 && setuid(id->uid) == 0;
}

/*
 * When root, the directories on the way to the harness's directory become
 * traversable (not listable, not writable) by the other users.
 */
void
share_dirs(const struct harness *h)
{
	char parent[HARNESS_DIR_MAX], *slash;

	if (!is_root())
		return;
	snprintf(parent, sizeof(parent), "%s", h->dir);
	slash = strrchr(parent, '/');
	if (slash != NULL && slash != parent) {
		*slash = '\0';
		/* The runner's directory under /tmp; never /tmp. */
		if (strcmp(parent, "/tmp") != 0)
			ck_assert(chmod(parent, 0711) == 0);
	}
	ck_assert(chmod(h->dir, 0711) == 0);
}

/* A daemon with an optional configuration (JSON text), for all users. */
void
daemon_start(struct harness *h, const char *config)
{
	const char *extra[3] = { NULL };
	char path[HARNESS_PATH_MAX];

	harness_init(h);
	share_dirs(h);
	if (config != NULL) {
		FILE *f;

		snprintf(path, sizeof(path), "%s/mbxd.json", h->dir);
		f = fopen(path, "w");
		ck_assert_msg(f != NULL, "%s: %s", path, strerror(errno));
		ck_assert(fputs(config, f) >= 0);
		ck_assert(fclose(f) == 0);
		extra[0] = "-c";
		extra[1] = path;
	}
	harness_launch(h, extra);
}

/*
 * For the tests that bound mbxd's memory (RSS): an ASan build keeps freed
 * blocks in quarantine (256 MiB by default), which would count as growth.
 * Call before start(): the daemon inherits the environment.
 */
void
no_quarantine(void)
{
	const char *old = getenv("ASAN_OPTIONS");
	char opts[1024];

	snprintf(opts, sizeof(opts), "%s%squarantine_size_mb=0",
	    old != NULL ? old : "", old != NULL && *old != '\0' ? ":" : "");
	ck_assert(setenv("ASAN_OPTIONS", opts, 1) == 0);
}

