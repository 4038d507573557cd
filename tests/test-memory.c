/*
 * test-memory.c - hostile clients (issue 9): memory and descriptors a user can make mbxd hold are bounded,
 * against a real mbxd.
 *
 * Most cases speak the protocol raw: a client that never reads is one
 * that writes its requests and leaves the answers in the socket, which
 * libmbx never does.  Per-uid bounds are exercised with the identities of
 * users.h (root is exempt from them); the descriptor cases run mbxd as an
 * unprivileged uid of its own, so that the kernel's count of descriptors
 * in flight (ETOOMANYREFS) applies to it and to it alone.
 */
#include <check.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include "harness.h"
#include "mbxd-proc.h"
#include "proto.h"
#include "raw.h"
#include "suites.h"
#include "users.h"

/* The uid mbxd runs as in the descriptor cases: no test identity. */
#define DAEMON_UID	65520

/* A 255-byte mailbox name, unique for i. */
static void
long_name(char *buf, int i)
{
	int n = snprintf(buf, PROTO_NAME_MAX + 1, "m%05d.", i);

	memset(buf + n, 'x', (size_t)(PROTO_NAME_MAX - n));
	buf[PROTO_NAME_MAX] = '\0';
}

static int
raw_as(const struct harness *h, const struct ident *id)
{
	int fd = id == &ROOT ? harness_raw_connect(h) : raw_connect_as(h, id);

	ck_assert_int_gt(harness_raw_hello(fd), 0);
	return fd;
}

/*
 * Every page of a LIST or CLIENTS view through a raw connection: each
 * REPLY is at most max_frame bytes; returns the whole text, parsed.
 */
static json_t *
raw_view(int fd, uint16_t type, size_t max_frame, size_t *pages)
{
	struct proto_writer w;
	char cursor[PROTO_NAME_MAX + 1];
	size_t cursor_len = 0, total = 0, cap = 0;
	char *text = NULL;
	json_error_t jerr;
	json_t *j;
	bool more = true;

	proto_writer_init(&w);
	*pages = 0;
	for (uint32_t id = 100; more && id < 1000000; id++) {
		uint16_t t;
		uint32_t rid, flags;
		uint8_t *body;
		size_t len;
		struct body_reply_page pg;

		raw_put_list(&w, type, id, cursor, cursor_len);
		raw_flush(fd, &w);
		ck_assert_msg(harness_raw_read(fd, &t, &rid, &flags, &body,
		    &len) == 1, "no answer to page %zu (a frame over "
		    "PROTO_MAX_BODY?)", *pages);
		ck_assert_int_eq(t, PROTO_REPLY);
		ck_assert_msg(len <= max_frame, "page %zu: %zu bytes in one "
		    "REPLY, bound %zu", *pages, len, max_frame);
		ck_assert(body_reply_page_get(body, len, flags, &pg));
		ck_assert_uint_eq(pg.status, PROTO_OK);
		more = pg.more;
		while (total + pg.json.len + 1 > cap) {
			cap = cap > 0 ? 2 * cap : 1 << 20;
			text = realloc(text, cap);
			ck_assert_ptr_nonnull(text);
		}
		memcpy(text + total, pg.json.ptr, pg.json.len);
		total += pg.json.len;
		text[total] = '\0';
		memcpy(cursor, pg.cursor.ptr, pg.cursor.len);
		cursor_len = pg.cursor.len;
		free(body);
		(*pages)++;
	}
	ck_assert(!more);
	proto_writer_free(&w);
	j = json_loads(text, 0, &jerr);
	ck_assert_msg(j != NULL && json_is_array(j), "pages do not make one "
	    "JSON array: %s", jerr.text);
	free(text);
	return j;
}

/* Lines of text. */
static size_t
count_lines(const char *s, size_t len)
{
	size_t n = 0;

	for (size_t i = 0; i < len; i++)
		n += s[i] == '\n';
	return n;
}

/*
 * 4096 mailboxes of 255-byte names, 64 standby clients on each: LIST and
 * CLIENTS come in bounded pages, and mbxctl shows them all.  Before, one
 * CLIENTS reply was ~90 MiB (past PROTO_MAX_BODY: no client could read
 * it) and one LIST reply ~3 MiB, held in the daemon for a client that
 * need not read it.
 */
START_TEST(views_are_paged)
{
	struct harness h;
	struct proto_writer w;
	char name[PROTO_NAME_MAX + 1];
	int nmb = wrapped() ? 512 : 4096;
	enum { NSTANDBY = 64 };
	int ctl, fds[NSTANDBY + 1];
	size_t pages, nstand = 0, nbound = 0;
	struct harness_ctl r;
	json_t *j, *o;
	size_t i;

	daemon_start(&h, NULL);
	proto_writer_init(&w);
	ctl = raw_as(&h, &ROOT);
	for (int k = 0; k < nmb; k++) {
		long_name(name, k);
		raw_put_create(&w, (uint32_t)k + 10, name, strlen(name), -1,
		    1024 * 1024, 0600);
	}
	raw_flush(ctl, &w);
	for (int k = 0; k < nmb; k++)
		ck_assert_uint_eq(raw_status(ctl, (uint32_t)k + 10), PROTO_OK);
	/* One receiver and 64 standbys on every mailbox. */
	for (int c = 0; c <= NSTANDBY; c++) {
		fds[c] = raw_as(&h, &ROOT);
		for (int k = 0; k < nmb; k++) {
			long_name(name, k);
			raw_put_bind(&w, (uint32_t)k + 10, name, strlen(name),
			    c == 0 ? PROTO_BIND_EXCLUSIVE : PROTO_BIND_QUEUE);
		}
		raw_flush(fds[c], &w);
		for (int k = 0; k < nmb; k++)
			ck_assert_uint_eq(raw_status(fds[c], (uint32_t)k + 10),
			    PROTO_OK);
	}
	proto_writer_free(&w);

	/* A page is ADMIN_PAGE_BYTES (64 KiB) and one element more. */
	j = raw_view(ctl, PROTO_LIST, 256 * 1024, &pages);
	ck_assert_uint_eq(json_array_size(j), (size_t)nmb);
	json_array_foreach(j, i, o) {
		long_name(name, (int)i);
		ck_assert_str_eq(json_string_value(json_object_get(o, "name")),
		    name);
		ck_assert_uint_eq(json_array_size(json_object_get(o,
		    "standby")), NSTANDBY);
	}
	ck_assert_uint_gt(pages, 1);
	json_decref(j);
	j = raw_view(ctl, PROTO_CLIENTS, 256 * 1024, &pages);
	json_array_foreach(j, i, o) {
		nstand += json_array_size(json_object_get(o, "standby"));
		nbound += json_array_size(json_object_get(o, "bound"));
	}
	ck_assert_uint_eq(json_array_size(j), NSTANDBY + 2);
	ck_assert_uint_eq(nstand, (size_t)nmb * NSTANDBY);
	ck_assert_uint_eq(nbound, (size_t)nmb);
	json_decref(j);

	/* mbxctl (through mbx_list() and mbx_clients()) shows it all. */
	ck_assert_int_eq(harness_ctl(&h, NULL, &r, "list", NULL), 0);
	ck_assert_msg(r.status == 0, "mbxctl list: %d: %s", r.status, r.err);
	ck_assert_uint_ge(count_lines(r.out, r.out_len), (size_t)nmb);
	harness_ctl_free(&r);
	ck_assert_int_eq(harness_ctl(&h, NULL, &r, "clients", NULL), 0);
	ck_assert_msg(r.status == 0, "mbxctl clients: %d: %s", r.status,
	    r.err);
	ck_assert_uint_ge(count_lines(r.out, r.out_len), NSTANDBY + 2);
	harness_ctl_free(&r);

	for (int c = 0; c <= NSTANDBY; c++)
		close(fds[c]);
	close(ctl);
	harness_stop(&h);
}
END_TEST

/* A cursor the daemon did not write is EINVAL, and the connection stays. */
START_TEST(view_cursor_checked)
{
	struct harness h;
	struct proto_writer w;
	char longc[4096];
	int fd;
	size_t pages;
	json_t *j;

	daemon_start(&h, NULL);
	fd = raw_as(&h, &ROOT);
	proto_writer_init(&w);
	raw_put_list(&w, PROTO_LIST, 5, "bad name!", 9);
	raw_put_list(&w, PROTO_CLIENTS, 6, "12/7/0", 6);
	raw_put_list(&w, PROTO_CLIENTS, 7, "x", 1);
	raw_put_list(&w, PROTO_CLIENTS, 8, "99999/1/3", 9);
	/*
	 * Cursors longer than any the daemon hands out (a str may be 64 KiB):
	 * refused, never copied into its 256-byte buffer (fuzz-live found
	 * that stack overflow).
	 */
	memset(longc, '1', sizeof(longc));
	longc[5] = longc[7] = '/';
	raw_put_list(&w, PROTO_CLIENTS, 9, longc, 256);
	raw_put_list(&w, PROTO_CLIENTS, 10, longc, sizeof(longc));
	raw_put_list(&w, PROTO_LIST, 11, longc + 8, 256);
	raw_flush(fd, &w);
	ck_assert_uint_eq(raw_status(fd, 5), PROTO_EINVAL);
	ck_assert_uint_eq(raw_status(fd, 6), PROTO_EINVAL);
	ck_assert_uint_eq(raw_status(fd, 7), PROTO_EINVAL);
	/* A client gone since the last page: its object is closed. */
	ck_assert_uint_eq(raw_status(fd, 8), PROTO_OK);
	ck_assert_uint_eq(raw_status(fd, 9), PROTO_EINVAL);
	ck_assert_uint_eq(raw_status(fd, 10), PROTO_EINVAL);
	ck_assert_uint_eq(raw_status(fd, 11), PROTO_EINVAL);
	proto_writer_free(&w);
	j = raw_view(fd, PROTO_CLIENTS, 256 * 1024, &pages);
	ck_assert_uint_eq(json_array_size(j), 1);
	ck_assert_uint_eq(pages, 1);
	json_decref(j);
	close(fd);
	harness_stop(&h);
}
END_TEST

/*
 * A RECV asking for an unbounded budget gets at most 1 MiB past its first
 * message: before, 32 messages of 512 KiB (16 MiB) came in one batch,
 * written at once to a client that need not read them.
 */
START_TEST(recv_budget_capped)
{
	struct harness h;
	struct mbx_attr a;
	struct proto_writer w;
	static char big[512 * 1024];
	mbx_t *c;
	int fd, n = 0;
	uint64_t total = 0;
	bool more = true;

	daemon_start(&h, NULL);
	c = harness_open(&h);
	mbx_attr_init(&a);
	a.capacity = MBX_UNBOUNDED;
	a.max_msg = sizeof(big);
	ASSERT_OK(mbx_create(c, "big", &a));
	for (int i = 0; i < 32; i++)
		ASSERT_OK(mbx_send(c, "big", big, sizeof(big), 0, 0));
	fd = raw_as(&h, &ROOT);
	proto_writer_init(&w);
	raw_put_bind(&w, 5, "big", 3, PROTO_BIND_EXCLUSIVE);
	raw_put_recv(&w, 6, "big", 3, 0,
		    UINT64_MAX, 256, UINT64_MAX);
	raw_flush(fd, &w);
	ck_assert_uint_eq(raw_status(fd, 5), PROTO_OK);
	while (more && n < 64) {
		uint16_t type;
		uint32_t id, flags;
		uint8_t *body;
		size_t len;

		ck_assert_int_eq(harness_raw_read(fd, &type, &id, &flags,
		    &body, &len), 1);
		ck_assert_int_eq(type, PROTO_MSG);
		more = (flags & PROTO_MSG_MORE) != 0;
		total += len;
		n++;
		free(body);
	}
	ck_assert_msg(total <= sizeof(big) + 1024 * 1024 + 4096 * (size_t)n,
	    "one RECV batch of %d messages, %llu bytes", n,
	    (unsigned long long)total);
	ck_assert_int_le(n, 3);
	proto_writer_free(&w);
	close(fd);
	mbx_close(c);
	harness_stop(&h);
}
END_TEST

/*
 * A holder of credit that does not read is sent one REVOKE, however many
 * times the owner takes its write bit away and gives it back: before,
 * each CHMOD queued one more for it, without bound.
 */
START_TEST(revoke_once)
{
	struct harness h;
	struct proto_writer w;
	struct mbx_attr a;
	mbx_t *owner;
	int fd, nrevoke = 0, rounds = scaled(2000);

	if (!is_root()) {
		skip("revoke_once", "needs root for a second user");
		return;
	}
	daemon_start(&h, NULL);
	owner = open_as(&h, &OWNER);
	mbx_attr_init(&a);
	a.capacity = MBX_UNBOUNDED;
	a.mode = 0622;
	ASSERT_OK(mbx_create(owner, "rv", &a));
	fd = raw_as(&h, &OTHER);
	proto_writer_init(&w);
	raw_put_send(&w, 5, PROTO_SEND_CREDIT, "rv", 2, 0, "hello", 5);
	raw_flush(fd, &w);
	{
		uint16_t type;
		uint32_t id, flags;
		uint8_t *body;
		size_t len;

		ck_assert_int_eq(harness_raw_read(fd, &type, &id, &flags,
		    &body, &len), 1);
		/* Status and a grant: mailbox id, count, bytes, max_msg. */
		ck_assert_uint_eq(len, 4 + 8 + 4 + 8 + 8);
		free(body);
	}
	for (int i = 0; i < rounds; i++) {
		ASSERT_OK(mbx_chmod(owner, "rv", 0600));
		ASSERT_OK(mbx_chmod(owner, "rv", 0622));
	}
	/* Everything the chmods queued comes before this answer. */
	raw_put_name(&w, PROTO_UNBIND, 6, "rv", 2);
	raw_flush(fd, &w);
	for (int i = 0; i < 2 * rounds + 2; i++) {
		uint16_t type;
		uint32_t id, flags;
		uint8_t *body;
		size_t len;

		ck_assert_int_eq(harness_raw_read(fd, &type, &id, &flags,
		    &body, &len), 1);
		free(body);
		if (type == PROTO_REPLY && id == 6)
			break;
		ck_assert_int_eq(type, PROTO_REVOKE);
		nrevoke++;
	}
	ck_assert_int_eq(nrevoke, 1);
	proto_writer_free(&w);
	close(fd);
	mbx_close(owner);
	harness_stop(&h);
}
END_TEST

/* The "output" of uid's clients in the CLIENTS view, and how many have some. */
static uint64_t
uid_output(mbx_t *c, uid_t uid, int *with)
{
	json_t *j = harness_clients(c), *o;
	uint64_t sum = 0;
	size_t i;

	*with = 0;
	json_array_foreach(j, i, o) {
		json_int_t v = json_integer_value(json_object_get(o, "output"));

		if (json_integer_value(json_object_get(o, "uid")) != uid)
			continue;
		sum += (uint64_t)v;
		*with += v > 0;
	}
	json_decref(j);
	return sum;
}

/*
 * 32 connections of one uid ask for LIST pages and never read: together
 * they hold at most that uid's share (4 MiB here) and an answer each,
 * not 32 times the 4 MiB one connection may hold; each gets every answer
 * once it reads.
 */
START_TEST(output_per_uid)
{
	enum { NCONN = 32, NREQ = 40 };
	const uint64_t share = 4u << 20;
	struct harness h;
	struct proto_writer w;
	char name[PROTO_NAME_MAX + 1];
	int fds[NCONN], with = 0, stable = 0;
	uint64_t sum = 0, last = UINT64_MAX;
	long rss0, grown = 0;
	mbx_t *root;

	if (!is_root()) {
		skip("output_per_uid", "needs root for a second user");
		return;
	}
	no_quarantine();
	daemon_start(&h, "{\"limits\": {\"max_memory\": \"8M\"}}");
	root = harness_open(&h);
	/* Enough mailboxes that a LIST page is full (64 KiB). */
	for (int k = 0; k < 200; k++) {
		long_name(name, k);
		ASSERT_OK(mbx_create(root, name, NULL));
	}
	proto_writer_init(&w);
	for (int i = 0; i < NCONN; i++)
		fds[i] = raw_as(&h, &OTHER);
	rss0 = proc_rss_kib(h.pid);
	ck_assert_int_gt(rss0, 0);
	for (int i = 0; i < NCONN; i++) {
		for (int k = 0; k < NREQ; k++)
			raw_put_list(&w, PROTO_LIST, (uint32_t)k + 10, "", 0);
		raw_flush(fds[i], &w);
	}
	/* Until every connection holds output and the total stays put. */
	for (int t = 0; t < 2000 && stable < 5; t++) {
		long rss = proc_rss_kib(h.pid);

		ck_assert_int_gt(rss, 0);
		grown = rss - rss0;
		ck_assert_msg(grown < 40 * 1024, "mbxd grew by %ld KiB for "
		    "one uid's unread output", grown);
		sum = uid_output(root, OTHER.uid, &with);
		stable = with == NCONN && sum == last ? stable + 1 : 0;
		last = sum;
		(void)poll(NULL, 0, 10);
	}
	ck_assert_msg(stable >= 5, "the uid's output did not settle: %d of "
	    "%d connections hold %llu bytes", with, NCONN,
	    (unsigned long long)sum);
	ck_assert_msg(sum <= share + NCONN * 2 * 64 * 1024, "one uid holds "
	    "%llu bytes of output, its share is %llu", (unsigned long long)sum,
	    (unsigned long long)share);
	ck_assert_uint_ge(sum, share);
	fprintf(stderr, "memory: %d connections of one uid that do not read: "
	    "%llu bytes of output held (share %llu), mbxd RSS +%ld KiB\n",
	    NCONN, (unsigned long long)sum, (unsigned long long)share, grown);
	/* Nothing was dropped: each reads all its answers in order. */
	for (int i = 0; i < NCONN; i++) {
		for (int k = 0; k < NREQ; k++) {
			uint16_t type;
			uint32_t id, flags;
			uint8_t *body;
			size_t len;

			ck_assert_int_eq(harness_raw_read(fds[i], &type, &id,
			    &flags, &body, &len), 1);
			ck_assert_int_eq(type, PROTO_REPLY);
			ck_assert_uint_eq(id, (uint32_t)k + 10);
			free(body);
		}
		close(fds[i]);
	}
	proto_writer_free(&w);
	mbx_close(root);
	harness_stop(&h);
}
END_TEST

/*
 * Parked receives cost their uid's share: with 512 KiB of it, a uid's
 * connections park at most 2048 receives (256 bytes each) between them,
 * then get ENOBUFS; before, 16 x 256 parked with nothing counted.  Root
 * is not held to it.
 */
START_TEST(parked_calls_per_uid)
{
	enum { NCONN = 16, NPARK = 256 };
	struct harness h;
	struct proto_writer w;
	int fds[NCONN], nobufs = 0, parked = 0;
	mbx_t *other, *root;

	if (!is_root()) {
		skip("parked_calls_per_uid", "needs root for a second user");
		return;
	}
	daemon_start(&h, "{\"limits\": {\"max_memory\": \"1M\"}}");
	other = open_as(&h, &OTHER);
	root = harness_open(&h);
	ASSERT_OK(mbx_create(other, "park", NULL));
	proto_writer_init(&w);
	for (int i = 0; i < NCONN; i++) {
		fds[i] = raw_as(&h, &OTHER);
		for (int k = 0; k < NPARK; k++)
			raw_put_recv(&w, (uint32_t)k + 10, "", 0, -1, 1024, 1,
			    0);
		/* Answered at once: everything before it was handled. */
		raw_put_name(&w, PROTO_UNBIND, 5, "park", 4);
		raw_flush(fds[i], &w);
	}
	for (int i = 0; i < NCONN; i++) {
		for (int k = 0; k <= NPARK; k++) {
			uint16_t type;
			uint32_t id, flags, status;
			uint8_t *body;
			size_t len;

			ck_assert_int_eq(harness_raw_read(fds[i], &type, &id,
			    &flags, &body, &len), 1);
			ck_assert_int_eq(type, PROTO_REPLY);
			ck_assert(body_reply_status(body, len, &status));
			free(body);
			if (id == 5) {
				parked += NPARK - (k - 0);
				break;
			}
			ck_assert_uint_eq(status, PROTO_ENOBUFS);
			nobufs++;
		}
	}
	ck_assert_int_gt(nobufs, 0);
	ck_assert_int_le(parked, 512 * 1024 / 256);
	/* The share is full; closing the connections gives it back. */
	ASSERT_ERR(mbx_send(other, "park", "x", 1, 0, 0), ENOBUFS);
	for (int i = 0; i < NCONN; i++)
		close(fds[i]);
	for (int t = 0; t < 2000 && mbx_send(other, "park", "x", 1, 0, 0) != 0;
	    t++) {
		ck_assert_int_eq(errno, ENOBUFS);
		(void)poll(NULL, 0, 5);
	}
	ck_assert_int_eq(harness_mailbox_int(root, "park", "queued"), 1);
	proto_writer_free(&w);
	mbx_close(other);
	mbx_close(root);
	harness_stop(&h);
}
END_TEST

/* The tools that start mbxd as DAEMON_UID with a low RLIMIT_NOFILE. */
static bool
have_tools(const char *test)
{
	if (access("/usr/bin/setpriv", X_OK) == 0 &&
	    access("/usr/bin/prlimit", X_OK) == 0)
		return true;
	skip(test, "needs setpriv(1) and prlimit(1) (util-linux)");
	return false;
}

/*
 * A daemon running as DAEMON_UID, without privileges: the kernel limits
 * its descriptors in flight to its RLIMIT_NOFILE, set here to nofile.
 */
static void
daemon_start_unprivileged(struct harness *h, int nofile)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	const char *old = getenv("MBX_TEST_WRAPPER");
	char wrapper[1024], *saved = old != NULL ? strdup(old) : NULL;
	char parent[HARNESS_DIR_MAX], *slash;

	harness_init(h);
	snprintf(parent, sizeof(parent), "%s", h->dir);
	slash = strrchr(parent, '/');
	if (slash != NULL && slash != parent) {
		*slash = '\0';
		if (strcmp(parent, "/tmp") != 0)
			ck_assert(chmod(parent, 0711) == 0);
	}
	ck_assert(chown(h->dir, DAEMON_UID, DAEMON_UID) == 0);
	ck_assert(chmod(h->dir, 0711) == 0);
	/* The daemon must be able to tell us it is ready. */
	h->notify_fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	ck_assert(h->notify_fd >= 0);
	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", h->notify);
	ck_assert(bind(h->notify_fd, (struct sockaddr *)&sun,
	    sizeof(sun)) == 0);
	ck_assert(chmod(h->notify, 0666) == 0);
	/* Lowering one's own limits needs no privilege; both, as mbxd
	 * raises its soft limit to the hard one at start. */
	snprintf(wrapper, sizeof(wrapper), "/usr/bin/prlimit --nofile=%d:%d "
	    "/usr/bin/setpriv --reuid=%d --regid=%d --clear-groups %s",
	    nofile, nofile, DAEMON_UID, DAEMON_UID, old != NULL ? old : "");
	ck_assert(setenv("MBX_TEST_WRAPPER", wrapper, 1) == 0);
	harness_launch(h, NULL);
	if (saved != NULL)
		ck_assert(setenv("MBX_TEST_WRAPPER", saved, 1) == 0);
	else
		unsetenv("MBX_TEST_WRAPPER");
	free(saved);
}

/* A sealed memfd holding a payload of len bytes after the header page. */
static int
sealed_memfd(size_t len)
{
	int fd = memfd_create("t", MFD_CLOEXEC | MFD_ALLOW_SEALING);

	ck_assert(fd >= 0);
	ck_assert(ftruncate(fd, (off_t)(PROTO_SHARED_HEADER + len)) == 0);
	ck_assert(fcntl(fd, F_ADD_SEALS, F_SEAL_WRITE | F_SEAL_GROW |
	    F_SEAL_SHRINK | F_SEAL_SEAL) == 0);
	return fd;
}

/*
 * A memfd SEND of len bytes to name through a raw connection, with
 * credit or not.  Returns the status; the grant's count and whether it
 * covers memfd posts go to *count and *zc.
 */
static uint32_t
raw_send_memfd(int fd, uint32_t id, const char *name, size_t len, bool credit,
    unsigned *count, bool *zc)
{
	struct proto_writer w;
	struct body_reply_send g;
	int mfd = sealed_memfd(len);
	uint32_t flags, status;

	proto_writer_init(&w);
	raw_put_send_fd(&w, id, credit ? PROTO_SEND_CREDIT : 0, name,
	    strlen(name), 0, len);
	raw_write_fd(fd, &w, mfd);
	close(mfd);
	status = raw_reply_send(fd, id, &flags, &g);
	*count = g.has_grant ? g.count : 0;
	*zc = g.has_grant && (flags & PROTO_REPLY_ZEROCOPY) != 0;
	return status;
}

/* An inline SEND with credit; the grant's count and zero-copy flag. */
static uint32_t
raw_send_inline(int fd, uint32_t id, const char *name, unsigned *count,
    bool *zc)
{
	struct proto_writer w;
	struct body_reply_send g;
	uint32_t flags, status;

	proto_writer_init(&w);
	raw_put_send(&w, id, PROTO_SEND_CREDIT, name, strlen(name), 0,
	    "hello", 5);
	raw_flush(fd, &w);
	proto_writer_free(&w);
	status = raw_reply_send(fd, id, &flags, &g);
	*count = g.has_grant ? g.count : 0;
	*zc = g.has_grant && (flags & PROTO_REPLY_ZEROCOPY) != 0;
	return status;
}

/*
 * One user binds, receives a memfd message and unbinds, over 300
 * connections that never read, twice: the descriptors passed to its
 * connections are its uid's (max_fds_per_uid, 256), so past them its
 * receives get EMFILE and the daemon's descriptors in flight stay within
 * bounds; another user's zero-copy traffic goes on.  Before, every
 * delivery counted against nothing, the kernel refused the daemon's
 * descriptors (ETOOMANYREFS) and the daemon closed whoever it was
 * sending to, the other user included.
 */
START_TEST(fds_per_uid)
{
	enum { NCONN = 300 };
	struct harness h;
	struct proto_writer w;
	static int fds[NCONN];
	char done[32];
	mbx_t *other, *owner, *root;
	mbx_msg_t *m;
	json_t *mb;

	if (!is_root()) {
		skip("fds_per_uid", "needs root for other users");
		return;
	}
	if (!have_tools("fds_per_uid"))
		return;
	daemon_start_unprivileged(&h, 400);
	other = open_as(&h, &OTHER);
	owner = open_as(&h, &OWNER);
	root = harness_open(&h);
	ASSERT_OK(mbx_setopt(other, MBX_OPT_ZEROCOPY, 0));
	ASSERT_OK(mbx_setopt(owner, MBX_OPT_ZEROCOPY, 0));
	ASSERT_OK(mbx_create(other, "zc", NULL));
	ASSERT_OK(mbx_create(owner, "mine", NULL));
	ASSERT_OK(mbx_bind(owner, "mine", MBX_BIND_EXCLUSIVE));
	ASSERT_OK(mbx_send(other, "zc", "payload", 7, 0, 0));
	proto_writer_init(&w);
	for (int i = 0; i < NCONN; i++)
		fds[i] = raw_as(&h, &OTHER);
	for (int round = 0; round < 2; round++) {
		for (int i = 0; i < NCONN; i++) {
			raw_put_bind(&w, 10, "zc", 2, PROTO_BIND_EXCLUSIVE);
			raw_put_recv(&w, 11, "zc", 2, 0,
		    UINT64_MAX, 1, 0);
			raw_put_name(&w, PROTO_UNBIND, 12, "zc", 2);
			/* Observable: all of the above was handled. */
			snprintf(done, sizeof(done), "done.%d.%d", round, i);
			raw_put_create(&w, 13, done, strlen(done), -1,
		    1024 * 1024, 0600);
			raw_flush(fds[i], &w);
			for (int t = 0; t < 10000; t++) {
				if ((mb = harness_mailbox(root, done)) != NULL)
					break;
				(void)poll(NULL, 0, 1);
			}
			ck_assert_msg(mb != NULL, "connection %d stalled", i);
			json_decref(mb);
			ck_assert_int_eq(mbx_destroy(root, done), 0);
			if (i % 50 != 0)
				continue;
			/* The other user's zero-copy messages go on. */
			m = mbx_msg_alloc(owner, 100);
			ck_assert_ptr_nonnull(m);
			memset(mbx_msg_data(m), 'o', 100);
			ASSERT_OK(mbx_sendmsg(owner, "mine", m, 0, 0));
			m = NULL;
			ASSERT_OK(mbx_recvmsg(owner, "mine", &m, NULL, 1000));
			ck_assert_uint_eq(mbx_msg_len(m), 100);
			mbx_msg_free(m);
		}
	}
	/* The user's message is still there, and its owner can take it. */
	ck_assert_int_eq(harness_mailbox_int(root, "zc", "queued"), 1);
	for (int i = 0; i < NCONN; i++)
		close(fds[i]);
	ASSERT_OK(mbx_bind(other, "zc", MBX_BIND_EXCLUSIVE));
	m = NULL;
	ASSERT_OK(mbx_recvmsg(other, "zc", &m, NULL, 2000));
	ck_assert_uint_eq(mbx_msg_len(m), 7);
	mbx_msg_free(m);
	proto_writer_free(&w);
	mbx_close(other);
	mbx_close(owner);
	mbx_close(root);
	harness_stop(&h);
}
END_TEST

/*
 * The kernel refuses the daemon a descriptor in flight (ETOOMANYREFS):
 * root, exempt from the per-uid bounds, holds nofile + 1 of them unread,
 * so the next memfd message to anyone cannot be written.  The daemon
 * keeps it queued and writes it once the kernel takes it again: the
 * receiver's connection stays, and its message comes.  Before, the
 * daemon closed that innocent connection.
 */
START_TEST(too_many_refs)
{
	enum { NOFILE = 64 };
	struct harness h;
	struct proto_writer w;
	mbx_t *owner, *root;
	mbx_msg_t *m = NULL;
	json_t *mb;
	int fd, rawo;

	if (!is_root()) {
		skip("too_many_refs", "needs root for other users");
		return;
	}
	if (!have_tools("too_many_refs"))
		return;
	daemon_start_unprivileged(&h, NOFILE);
	owner = open_as(&h, &OWNER);
	root = harness_open(&h);
	ASSERT_OK(mbx_setopt(owner, MBX_OPT_ZEROCOPY, 0));
	ASSERT_OK(mbx_setopt(root, MBX_OPT_ZEROCOPY, 0));
	ASSERT_OK(mbx_create(root, "r", NULL));
	ASSERT_OK(mbx_send(root, "r", "root", 4, 0, 0));
	ASSERT_OK(mbx_create(owner, "mine", NULL));
	/*
	 * NOFILE + 1 descriptors in flight at one connection that never
	 * reads, one at a time (each is written before the next is taken,
	 * so that the daemon's own table does not fill).
	 */
	fd = raw_as(&h, &ROOT);
	proto_writer_init(&w);
	for (int i = 0; i < NOFILE + 1; i++) {
		raw_put_bind(&w, 10, "r", 1, PROTO_BIND_EXCLUSIVE);
		raw_put_recv(&w, 11, "r", 1, 0,
		    UINT64_MAX, 1, 0);
		raw_put_name(&w, PROTO_UNBIND, 12, "r", 1);
		raw_put_create(&w, 13, "done", 4, -1,
		    1024 * 1024, 0600);
		raw_flush(fd, &w);
		for (int t = 0; t < 10000; t++) {
			if ((mb = harness_mailbox(root, "done")) != NULL)
				break;
			(void)poll(NULL, 0, 1);
		}
		ck_assert_msg(mb != NULL, "cycle %d stalled", i);
		json_decref(mb);
		ASSERT_OK(mbx_destroy(root, "done"));
	}
	/* Now the owner's memfd message cannot be passed to its receiver. */
	m = mbx_msg_alloc(owner, 100);
	ck_assert_ptr_nonnull(m);
	memset(mbx_msg_data(m), 'o', 100);
	ASSERT_OK(mbx_sendmsg(owner, "mine", m, 0, 0));
	rawo = raw_as(&h, &OWNER);
	raw_put_bind(&w, 20, "mine", 4, PROTO_BIND_EXCLUSIVE);
	raw_put_recv(&w, 21, "mine", 4, 0,
		    UINT64_MAX, 1, 0);
	raw_flush(rawo, &w);
	ck_assert_uint_eq(raw_status(rawo, 20), PROTO_OK);
	{
		struct pollfd pfd = { .fd = rawo, .events = POLLIN };

		/* Neither the message nor (before) the end of the stream. */
		ck_assert_int_eq(poll(&pfd, 1, 300), 0);
	}
	/* The connection that holds them reads, and everything flows again. */
	{
		int n = 0, ndone = 0;

		/* Per cycle: 3 replies, a MSG and the REVOKE of the unbind. */
		for (int i = 0; i < 5 * (NOFILE + 1) && ndone < NOFILE + 1;
		    i++) {
			uint16_t type;
			uint32_t id, flags;
			uint8_t *body;
			size_t len;
			int passed;

			ck_assert_int_eq(harness_raw_read_fd(fd, &type, &id,
			    &flags, &body, &len, &passed), 1);
			free(body);
			if (passed >= 0) {
				close(passed);
				n++;
			}
			ndone += type == PROTO_REPLY && id == 13;
		}
		ck_assert_int_eq(ndone, NOFILE + 1);
		ck_assert_int_eq(n, NOFILE + 1);
	}
	{
		uint16_t type;
		uint32_t id, flags;
		uint8_t *body;
		size_t len;
		int passed;
		char c;

		ck_assert_int_eq(harness_raw_read_fd(rawo, &type, &id, &flags,
		    &body, &len, &passed), 1);
		ck_assert_int_eq(type, PROTO_MSG);
		ck_assert_uint_eq(id, 21);
		ck_assert_int_ge(passed, 0);
		ck_assert_int_eq(pread(passed, &c, 1, PROTO_SHARED_HEADER), 1);
		ck_assert_int_eq(c, 'o');
		close(passed);
		free(body);
	}
	close(rawo);
	proto_writer_free(&w);
	close(fd);
	mbx_close(owner);
	mbx_close(root);
	harness_stop(&h);
}
END_TEST

/*
 * Zero-copy grants.  A memfd SEND with credit earns at most 8 slots, and
 * the uid's memfd messages held plus the memfd slots of all its grants
 * stay within half its max_fds_per_uid (here 16: 8); an inline grant of
 * 64 slots does not become a zero-copy one after a memfd send, nor a
 * zero-copy one grow to 64 slots that still take memfds.
 */
START_TEST(zerocopy_grants_bounded)
{
	struct harness h;
	struct mbx_attr a;
	mbx_t *owner;
	int fd;
	unsigned count, slots = 0;
	bool zc;
	char name[16];

	if (!is_root()) {
		skip("zerocopy_grants_bounded", "needs root for a second user");
		return;
	}
	daemon_start(&h, "{\"limits\": {\"max_fds_per_uid\": 16}}");
	owner = open_as(&h, &OWNER);
	mbx_attr_init(&a);
	a.capacity = MBX_UNBOUNDED;
	a.mode = 0622;
	for (int i = 0; i < 4; i++) {
		snprintf(name, sizeof(name), "g%d", i);
		ASSERT_OK(mbx_create(owner, name, &a));
	}
	fd = raw_as(&h, &OTHER);

	/*
	 * Grants in 4 mailboxes: when one is made, the memfd messages held
	 * (one per send so far) and every memfd slot granted stay within 8.
	 */
	for (int i = 0; i < 4; i++) {
		snprintf(name, sizeof(name), "g%d", i);
		ck_assert_uint_eq(raw_send_memfd(fd, (uint32_t)i + 10, name,
		    100, true, &count, &zc), PROTO_OK);
		ck_assert_uint_le(count, 8);
		if (!zc)
			continue;
		ck_assert_msg((unsigned)i + 1 + slots + count <= 8, "send %d: "
		    "%u memfd slots granted beside %u earlier and %d messages "
		    "held, max_fds_per_uid 16", i, count, slots, i + 1);
		slots += count;
	}
	mbx_close(owner);
	close(fd);
	harness_stop(&h);

	daemon_start(&h, "{\"limits\": {\"max_fds_per_uid\": 16}}");
	owner = open_as(&h, &OWNER);
	ASSERT_OK(mbx_create(owner, "inl", &a));
	ASSERT_OK(mbx_create(owner, "grow", &a));
	fd = raw_as(&h, &OTHER);
	/* An inline grant (64 slots) stays inline after a memfd send. */
	ck_assert_uint_eq(raw_send_inline(fd, 20, "inl", &count, &zc),
	    PROTO_OK);
	ck_assert_uint_eq(count, 64);
	ck_assert(!zc);
	ck_assert_uint_eq(raw_send_memfd(fd, 21, "inl", 100, true, &count,
	    &zc), PROTO_OK);
	ck_assert_msg(!zc || count <= 8, "a grant of %u slots covers memfd "
	    "posts", count);
	/* A zero-copy grant topped up by an inline send stops taking memfds. */
	ck_assert_uint_eq(raw_send_memfd(fd, 30, "grow", 100, true, &count,
	    &zc), PROTO_OK);
	ck_assert(zc);
	ck_assert_uint_le(count, 8);
	ck_assert_uint_eq(raw_send_inline(fd, 31, "grow", &count, &zc),
	    PROTO_OK);
	ck_assert_msg(!zc || count <= 8, "a grant of %u slots covers memfd "
	    "posts", count);
	mbx_close(owner);
	close(fd);
	harness_stop(&h);
}
END_TEST

Suite *
memory_suite(void)
{
	Suite *s = suite_create("memory");
	TCase *tc = tcase_create("views");

	tcase_add_test(tc, views_are_paged);
	tcase_add_test(tc, view_cursor_checked);
	tcase_set_timeout(tc, 4 * harness_tcase_timeout());
	suite_add_tcase(s, tc);
	tc = tcase_create("output");
	tcase_add_test(tc, recv_budget_capped);
	tcase_add_test(tc, revoke_once);
	tcase_add_test(tc, output_per_uid);
	tcase_add_test(tc, parked_calls_per_uid);
	tcase_set_timeout(tc, harness_tcase_timeout());
	suite_add_tcase(s, tc);
	tc = tcase_create("fds");
	tcase_add_test(tc, fds_per_uid);
	tcase_add_test(tc, too_many_refs);
	tcase_add_test(tc, zerocopy_grants_bounded);
	tcase_set_timeout(tc, 2 * harness_tcase_timeout());
	suite_add_tcase(s, tc);
	return s;
}
