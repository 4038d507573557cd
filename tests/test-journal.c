/*
 * test-journal.c - a durable mailbox's log (daemon/journal.c) and its
 * records (proto/record.c), on real files: what is written and synced
 * reads back in order, a torn end is cut, a corrupt segment is refused,
 * full segments roll and empty ones go, and a full disk fails a write
 * with nothing half-written.
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include "journal.h"
#include "record.h"
#include "suites.h"

static char state[64];
static int statefd = -1;

static void
setup(void)
{
	snprintf(state, sizeof(state), "/tmp/mbx-journal.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(state));
	statefd = open(state, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	ck_assert_int_ge(statefd, 0);
}

static void
teardown(void)
{
	char cmd[128];

	close(statefd);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", state);
	ck_assert_int_eq(system(cmd), 0);
}

static const struct record_attr attr = {
	.capacity = 100, .max_msg = 4096, .mode = 0640, .uid = 1000,
	.gid = 100, .max_attempts = 3, .ack_timeout_ms = 500,
	.dead_letter = { "dl", 2 },
};

static struct journal *
make(const char *name)
{
	struct journal *j = NULL;

	ck_assert_int_eq(journal_create(statefd, name, strlen(name), &attr,
	    &j), 0);
	return j;
}

static struct journal_msg
put(struct journal *j, const char *payload)
{
	struct journal_msg m = { .rec = { .sender_id = 7, .pid = 42,
	    .uid = 1000, .payload = { payload, strlen(payload) } } };

	ck_assert(journal_put(j, &m));
	return m;
}

static void
commit(struct journal *j)
{
	ck_assert_int_eq(journal_write(j), 0);
	ck_assert_int_eq(journal_sync(j), 0);
}

static void
path_of(char *buf, size_t len, const char *dir, unsigned seg)
{
	snprintf(buf, len, "%s/m/%s/%08u.log", state, dir, seg);
}

static void
expect_payloads(const struct journal_load *l, const char *const *want,
    size_t n)
{
	ck_assert_uint_eq(l->nmsgs, n);
	for (size_t i = 0; i < n; i++) {
		ck_assert_uint_eq(l->msgs[i].rec.payload.len, strlen(want[i]));
		ck_assert(memcmp(l->msgs[i].rec.payload.ptr, want[i],
		    strlen(want[i])) == 0);
	}
}

START_TEST(record_round_trip)
{
	struct proto_writer w;
	struct record_msg m = { 9, 7, 42, 1000, 2, { "src", 3 }, 1,
	    { "hello", 5 } }, got;
	struct record_attr a;
	uint64_t off = 0, seq;
	uint32_t attempts;
	uint8_t type;
	const uint8_t *body;
	size_t len;

	proto_writer_init(&w);
	ck_assert(record_attr_put(&w, &attr));
	ck_assert(record_msg_put(&w, &m));
	ck_assert(record_del_put(&w, 9));
	ck_assert(record_hand_put(&w, 9, 4));
	ck_assert_int_eq(record_next(w.buf, w.len, &off, &type, &body, &len),
	    RECORD_OK);
	ck_assert_uint_eq(type, RECORD_ATTR);
	ck_assert(record_attr_get(body, len, &a));
	ck_assert_int_eq(a.capacity, 100);
	ck_assert_uint_eq(a.mode, 0640);
	ck_assert_uint_eq(a.dead_letter.len, 2);
	ck_assert_int_eq(record_next(w.buf, w.len, &off, &type, &body, &len),
	    RECORD_OK);
	ck_assert_uint_eq(type, RECORD_PUT);
	ck_assert(record_msg_get(body, len, &got));
	ck_assert_uint_eq(got.seq, 9);
	ck_assert_uint_eq(got.origin_attempts, 1);
	ck_assert(memcmp(got.payload.ptr, "hello", 5) == 0);
	ck_assert_int_eq(record_next(w.buf, w.len, &off, &type, &body, &len),
	    RECORD_OK);
	ck_assert(record_del_get(body, len, &seq));
	ck_assert_uint_eq(seq, 9);
	ck_assert_int_eq(record_next(w.buf, w.len, &off, &type, &body, &len),
	    RECORD_OK);
	ck_assert(record_hand_get(body, len, &seq, &attempts));
	ck_assert_uint_eq(attempts, 4);
	ck_assert_int_eq(record_next(w.buf, w.len, &off, &type, &body, &len),
	    RECORD_END);
	/* Every byte flipped or cut makes the record torn, never misread. */
	for (size_t i = 0; i < w.len; i++) {
		uint64_t o = 0;
		int r;

		w.buf[i] ^= 0x20;
		while ((r = record_next(w.buf, w.len, &o, &type, &body,
		    &len)) == RECORD_OK)
			;
		ck_assert_int_eq(r, RECORD_TORN);
		w.buf[i] ^= 0x20;
	}
	for (size_t cut = 1; cut < w.len; cut++) {
		uint64_t o = 0;
		int r, n = 0;

		while ((r = record_next(w.buf, cut, &o, &type, &body,
		    &len)) == RECORD_OK)
			n++;
		ck_assert(r == RECORD_TORN || (r == RECORD_END && n > 0));
	}
	/* The test vector of RFC 3720: CRC-32C of "123456789". */
	ck_assert_uint_eq(record_crc32c(0, "123456789", 9), 0xe3069283u);
	proto_writer_free(&w);
}
END_TEST

/*
 * What was written and synced reads back: in order, without the ones
 * deleted, with the attempts a HAND said and the latest ATTR.
 */
START_TEST(journal_reads_back)
{
	static const char *const want[] = { "two", "four" };
	struct journal *j = make("jobs/a.b");
	struct journal_msg m1, m2, m3;
	struct journal_load l;
	struct record_attr a2 = attr;
	struct stat st;

	m1 = put(j, "one");
	m2 = put(j, "two");
	commit(j);
	ck_assert_uint_eq(m1.rec.seq, 1);
	ck_assert_uint_eq(m2.rec.seq, 2);
	ck_assert(journal_del(j, m1.rec.seq, m1.seg));
	ck_assert(journal_hand(j, m2.rec.seq, 2));
	m3 = put(j, "three");
	(void)put(j, "four");
	commit(j);
	ck_assert(journal_del(j, m3.rec.seq, m3.seg));
	a2.mode = 0600;
	ck_assert(journal_attr(j, &a2));
	commit(j);
	journal_close(j);
	/* The name's '/' is escaped: one directory per mailbox. */
	ck_assert_int_eq(fstatat(statefd, "m/jobs%2Fa.b", &st, 0), 0);
	ck_assert_int_eq(journal_load(statefd, "jobs%2Fa.b", &l), 0);
	ck_assert_ptr_nonnull(l.journal);
	ck_assert_str_eq(l.name, "jobs/a.b");
	ck_assert(l.has_attr);
	ck_assert_uint_eq(l.attr.mode, 0600);
	ck_assert_str_eq(l.attr.dead_letter.ptr, "dl");
	expect_payloads(&l, want, 2);
	ck_assert_uint_eq(l.msgs[0].rec.attempts, 2);
	ck_assert_uint_eq(l.msgs[0].rec.sender_id, 7);
	ck_assert_str_eq(l.cut, "");
	/* Numbers go on after the highest: never reused. */
	m1 = put(l.journal, "five");
	ck_assert_uint_eq(m1.rec.seq, 5);
	commit(l.journal);
	journal_close(l.journal);
	journal_load_free(&l);
	ck_assert_int_eq(journal_load(statefd, "jobs%2Fa.b", &l), 0);
	ck_assert_uint_eq(l.nmsgs, 3);
	journal_close(l.journal);
	journal_load_free(&l);
	/* A directory that is no mailbox's name is no journal. */
	ck_assert_int_eq(journal_load(statefd, "bad%41", &l), -ENOENT);
}
END_TEST

/* Appended but not written: nothing of it is on disk. */
START_TEST(journal_unwritten_is_lost)
{
	static const char *const want[] = { "kept" };
	struct journal *j = make("q");
	struct journal_load l;

	(void)put(j, "kept");
	commit(j);
	(void)put(j, "appended only");
	ck_assert(journal_pending(j));
	ck_assert_uint_eq(journal_pending_puts(j), 1);
	journal_close(j);
	ck_assert_int_eq(journal_load(statefd, "q", &l), 0);
	expect_payloads(&l, want, 1);
	journal_close(l.journal);
	journal_load_free(&l);
}
END_TEST

/* A torn last record (a crash in mid-write) is cut at the last good one. */
START_TEST(journal_torn_end_is_cut)
{
	static const char *const want[] = { "a", "b" };
	struct journal *j = make("torn");
	struct journal_load l;
	char file[256];
	struct stat st;
	int fd;

	(void)put(j, "a");
	(void)put(j, "b");
	commit(j);
	(void)put(j, "c, cut short");
	commit(j);
	journal_close(j);
	path_of(file, sizeof(file), "torn", 1);
	ck_assert_int_eq(stat(file, &st), 0);
	ck_assert_int_eq(truncate(file, st.st_size - 3), 0);
	ck_assert_int_eq(journal_load(statefd, "torn", &l), 0);
	ck_assert_ptr_nonnull(l.journal);
	ck_assert_ptr_nonnull(strstr(l.cut, "torn last record"));
	expect_payloads(&l, want, 2);
	/* Cut on disk too, and what comes next follows the good ones. */
	(void)put(l.journal, "d");
	commit(l.journal);
	journal_close(l.journal);
	journal_load_free(&l);
	ck_assert_int_eq(journal_load(statefd, "torn", &l), 0);
	ck_assert_str_eq(l.cut, "");
	ck_assert_uint_eq(l.nmsgs, 3);
	journal_close(l.journal);
	journal_load_free(&l);
	/* Garbage after the last record is a torn end as well. */
	fd = open(file, O_WRONLY | O_APPEND);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, "\x05\0\0\0junk", 8), 8);
	close(fd);
	ck_assert_int_eq(journal_load(statefd, "torn", &l), 0);
	ck_assert_ptr_nonnull(l.journal);
	ck_assert_uint_eq(l.nmsgs, 3);
	journal_close(l.journal);
	journal_load_free(&l);
}
END_TEST

/*
 * Segments: a full one rolls over to the next, which starts with ATTR;
 * one whose every PUT has its DEL is removed at the sync; a corrupt
 * record in a segment that is not the last refuses the mailbox.
 */
START_TEST(journal_segments)
{
	struct journal *j = make("seg");
	struct journal_msg m[6];
	struct journal_load l;
	char file[256], big[600];
	struct stat st;
	size_t left = 0;
	int fd;

	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	j->segment_max = 1024;
	for (int i = 0; i < 6; i++) {
		m[i] = put(j, i == 0 ? "first" : big);
		commit(j);
		ck_assert_uint_eq(m[i].seg, j->seg);
	}
	ck_assert_uint_ge(j->seg, 3);
	ck_assert_uint_eq(m[0].seg, 1);
	path_of(file, sizeof(file), "seg", 1);
	ck_assert_int_eq(stat(file, &st), 0);
	/* Every PUT of segment 1 gets its DEL: the file goes at the sync. */
	for (int i = 0; i < 6; i++) {
		if (m[i].seg == 1)
			ck_assert(journal_del(j, m[i].rec.seq, m[i].seg));
		else
			left++;
		if (i == 0)
			commit(j);
		/* Not before its last PUT is deleted. */
		if (i == 0)
			ck_assert_int_eq(stat(file, &st), 0);
	}
	commit(j);
	ck_assert_int_ne(stat(file, &st), 0);
	journal_close(j);
	ck_assert_int_eq(journal_load(statefd, "seg", &l), 0);
	ck_assert_ptr_nonnull(l.journal);
	ck_assert(l.has_attr);	/* from a later segment's head */
	ck_assert_uint_eq(l.nmsgs, left);
	journal_close(l.journal);
	journal_load_free(&l);
	/* One bit flipped inside segment 2 (not the last): refused. */
	path_of(file, sizeof(file), "seg", 2);
	fd = open(file, O_RDWR);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(pwrite(fd, "X", 1, 100), 1);
	close(fd);
	ck_assert_int_eq(journal_load(statefd, "seg", &l), 0);
	ck_assert_ptr_null(l.journal);
	ck_assert_ptr_nonnull(strstr(l.why, "segment 2"));
	journal_load_free(&l);
	/* Refused, not touched: the files are still there. */
	ck_assert_int_eq(stat(file, &st), 0);
}
END_TEST

/*
 * A full disk: the write fails with ENOSPC, the file is cut back to what
 * it held, the PUTs are dropped and the rest waits for the next write.
 * On a tmpfs of 64 KiB, which needs root (CI runs as root).
 */
START_TEST(journal_full_disk)
{
	static const char *const want[] = { "small" };
	struct journal *j;
	struct journal_load l;
	struct journal_msg m;
	char mnt[128], file[256], *big;
	struct stat st;
	off_t before;
	int fd;

	if (geteuid() != 0) {
		fprintf(stderr, "journal_full_disk: not root, cannot mount a "
		    "small tmpfs: not run\n");
		return;
	}
	snprintf(mnt, sizeof(mnt), "%s/small", state);
	ck_assert_int_eq(mkdir(mnt, 0700), 0);
	if (mount("tmpfs", mnt, "tmpfs", 0, "size=64k") < 0) {
		/* A container without CAP_SYS_ADMIN: say so, as for non-root. */
		ck_assert_int_eq(errno, EPERM);
		fprintf(stderr, "journal_full_disk: mount: %s: not run\n",
		    strerror(errno));
		return;
	}
	fd = open(mnt, O_RDONLY | O_DIRECTORY);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(journal_create(fd, "full", 4, &attr, &j), 0);
	m = put(j, "small");
	commit(j);
	ck_assert(journal_del(j, 99, m.seg));	/* a DEL that must survive */
	big = malloc(256 * 1024);
	memset(big, 'y', 256 * 1024 - 1);
	big[256 * 1024 - 1] = '\0';
	(void)put(j, big);
	snprintf(file, sizeof(file), "%s/m/full/00000001.log", mnt);
	ck_assert_int_eq(stat(file, &st), 0);
	before = st.st_size;
	ck_assert_int_eq(journal_write(j), -ENOSPC);
	ck_assert_int_eq(stat(file, &st), 0);
	ck_assert_int_eq(st.st_size, before);
	ck_assert_uint_eq(journal_pending_puts(j), 0);
	ck_assert(journal_pending(j));
	ck_assert(!j->failed);
	/* The disk has room again for what is small: it goes. */
	commit(j);
	ck_assert(!journal_pending(j));
	journal_close(j);
	ck_assert_int_eq(journal_load(fd, "full", &l), 0);
	expect_payloads(&l, want, 1);
	ck_assert_uint_eq(l.max_seq, 99);
	journal_close(l.journal);
	journal_load_free(&l);
	free(big);
	close(fd);
	ck_assert_int_eq(umount(mnt), 0);
}
END_TEST

Suite *
journal_suite(void)
{
	Suite *s = suite_create("journal");
	TCase *tc = tcase_create("journal");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, record_round_trip);
	tcase_add_test(tc, journal_reads_back);
	tcase_add_test(tc, journal_unwritten_is_lost);
	tcase_add_test(tc, journal_torn_end_is_cut);
	tcase_add_test(tc, journal_segments);
	tcase_add_test(tc, journal_full_disk);
	suite_add_tcase(s, tc);
	return s;
}
