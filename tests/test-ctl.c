/*
 * test-ctl.c - mbxctl end to end against a real mbxd: every verb, the
 * human and --json views with their stable keys, exit statuses (0 done,
 * 1 failed operation with `mbxctl: VERB NAME: reason (ERRNAME)`, 2 bad
 * usage) and the socket's default from $MBX_SOCKET.
 *
 * mbxctl runs through harness_ctl() (its stdout, stderr and status
 * captured, bounded in time); libmbx handles in the test process play the
 * receivers and standbys that mbxctl acts on.  Refusals that need another
 * uid run mbxctl from a helper that dropped to nobody (root only).
 */
#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <check.h>
#include <jansson.h>

#include "harness.h"
#include "users.h"
#include "mbx.h"
#include "suites.h"

/* Runs mbxctl on h's socket; the run itself must work. */
#define CTL(h, input, r, ...)						\
	ck_assert_msg(harness_ctl((h), (input), (r), __VA_ARGS__,	\
	    (const char *)NULL) == 0, "mbxctl could not be run")

/*
 * Checks an mbxctl run: its exit status, its stdout (exactly; NULL: any)
 * and, case-insensitively, each of the NULL-terminated strings in stderr.
 */
static void
check_run(const struct harness_ctl *r, const char *what, int status,
    const char *out, ...)
{
	va_list ap;
	const char *needle;

	ck_assert_msg(r->status == status, "mbxctl %s: exit %d (signal %d), "
	    "expected %d\nstdout: %s\nstderr: %s", what, r->status,
	    r->signal, status, r->out, r->err);
	if (out != NULL)
		ck_assert_msg(r->out_len == strlen(out) &&
		    strcmp(r->out, out) == 0, "mbxctl %s: stdout \"%s\", "
		    "expected \"%s\"", what, r->out, out);
	va_start(ap, out);
	while ((needle = va_arg(ap, const char *)) != NULL)
		ck_assert_msg(strcasestr(r->err, needle) != NULL,
		    "mbxctl %s: stderr lacks \"%s\": %s", what, needle,
		    r->err);
	va_end(ap);
}

static json_t *
parse(const struct harness_ctl *r, const char *what)
{
	json_error_t e;
	json_t *j = json_loads(r->out, 0, &e);

	ck_assert_msg(j != NULL, "mbxctl %s: bad JSON (%s): %s", what, e.text,
	    r->out);
	ck_assert_msg(json_is_array(j), "mbxctl %s: not an array: %s", what,
	    r->out);
	return j;
}

static json_t *
find(json_t *a, const char *key, const char *sval, long ival)
{
	json_t *o;
	size_t i;

	json_array_foreach(a, i, o) {
		json_t *v = json_object_get(o, key);

		if (sval != NULL && json_is_string(v) &&
		    strcmp(json_string_value(v), sval) == 0)
			return o;
		if (sval == NULL && json_is_integer(v) &&
		    json_integer_value(v) == ival)
			return o;
	}
	return NULL;
}

static long
ival(json_t *o, const char *key)
{
	json_t *v = json_object_get(o, key);

	ck_assert_msg(v != NULL, "no key %s", key);
	ck_assert_msg(json_is_integer(v), "%s is not an integer", key);
	return (long)json_integer_value(v);
}

static void
expect(mbx_t *c, const char *name, const char *want, size_t len)
{
	char buf[256];
	ssize_t n;

	errno = 0;
	n = mbx_recv(c, name, buf, sizeof(buf), NULL, 0);
	ck_assert_msg(n >= 0, "mbx_recv(%s): %s", name,
	    harness_errname(errno));
	ck_assert_msg((size_t)n == len && memcmp(buf, want, len) == 0,
	    "mbx_recv(%s): got \"%.*s\", expected \"%s\"", name, (int)n, buf,
	    want);
}

START_TEST(test_ctl_create_list)
{
	static const char *const keys[] = { "name", "owner", "group", "mode",
	    "capacity", "queued", "receiver", "standby", "sent", "received" };
	struct harness h;
	struct harness_ctl r;
	json_t *all, *o;
	size_t i;

	harness_start(&h, NULL);
	CTL(&h, NULL, &r, "create", "jobs");
	check_run(&r, "create jobs", 0, NULL, NULL);
	harness_ctl_free(&r);
	CTL(&h, NULL, &r, "create", "big", "--capacity", "unbounded",
	    "--max-msg", "100");
	check_run(&r, "create big", 0, NULL, NULL);
	harness_ctl_free(&r);
	CTL(&h, NULL, &r, "create", "--capacity", "0", "rv");
	check_run(&r, "create --capacity 0 rv", 0, NULL, NULL);
	harness_ctl_free(&r);
	CTL(&h, NULL, &r, "create", "five", "--capacity", "5");
	check_run(&r, "create five", 0, NULL, NULL);
	harness_ctl_free(&r);
	CTL(&h, NULL, &r, "create", "jobs");
	check_run(&r, "create jobs (again)", 1, "", "jobs", "EEXIST", NULL);
	harness_ctl_free(&r);

	CTL(&h, NULL, &r, "send", "jobs", "one");
	check_run(&r, "send jobs one", 0, "", NULL);
	harness_ctl_free(&r);

	CTL(&h, NULL, &r, "list");
	check_run(&r, "list", 0, NULL, NULL);
	ck_assert_ptr_nonnull(strstr(r.out, "jobs"));
	ck_assert_ptr_nonnull(strstr(r.out, "big"));
	ck_assert_ptr_nonnull(strstr(r.out, "five"));
	ck_assert_ptr_nonnull(strstr(r.out, "rv"));
	harness_ctl_free(&r);

	CTL(&h, NULL, &r, "--json", "list");
	check_run(&r, "--json list", 0, NULL, NULL);
	all = parse(&r, "--json list");
	ck_assert_uint_eq(json_array_size(all), 4);
	json_array_foreach(all, i, o)
		for (size_t k = 0; k < sizeof(keys) / sizeof(keys[0]); k++)
			ck_assert_msg(json_object_get(o, keys[k]) != NULL,
			    "list --json: entry %zu lacks %s", i, keys[k]);
	/* Sorted by name. */
	ck_assert_str_eq(json_string_value(json_object_get(json_array_get(all,
	    0), "name")), "big");
	ck_assert_str_eq(json_string_value(json_object_get(json_array_get(all,
	    3), "name")), "rv");
	o = find(all, "name", "jobs", 0);
	ck_assert_ptr_nonnull(o);
	ck_assert_int_eq(ival(o, "capacity"), MBX_DEFAULT_CAPACITY);
	ck_assert_int_eq(ival(o, "queued"), 1);
	ck_assert_int_eq(ival(o, "sent"), 1);
	ck_assert_int_eq(ival(o, "received"), 0);
	ck_assert(json_is_null(json_object_get(o, "receiver")));
	ck_assert(json_is_array(json_object_get(o, "standby")));
	ck_assert_uint_eq(json_array_size(json_object_get(o, "standby")), 0);
	o = find(all, "name", "big", 0);
	ck_assert_int_eq(ival(o, "capacity"), -1);
	ck_assert_int_eq(ival(o, "max_msg"), 100);
	ck_assert_int_eq(ival(find(all, "name", "rv", 0), "capacity"), 0);
	ck_assert_int_eq(ival(find(all, "name", "five", 0), "capacity"), 5);
	json_decref(all);
	harness_ctl_free(&r);
	harness_stop(&h);
}
END_TEST

START_TEST(test_ctl_clients)
{
	static const char *const keys[] = { "id", "pid", "uid", "comm",
	    "bound" };
	struct harness h;
	struct harness_ctl r;
	json_t *all, *o, *b;
	char comm[64], idstr[32];
	size_t i;
	FILE *f;
	mbx_t *c;

	harness_start(&h, NULL);
	c = harness_open(&h);
	ASSERT_OK(mbx_create(c, "jobs", NULL));
	ASSERT_OK(mbx_bind(c, "jobs", MBX_BIND_EXCLUSIVE));
	f = fopen("/proc/self/comm", "r");
	ck_assert(f != NULL && fgets(comm, sizeof(comm), f) != NULL);
	fclose(f);
	comm[strcspn(comm, "\n")] = '\0';

	CTL(&h, NULL, &r, "--json", "clients");
	check_run(&r, "--json clients", 0, NULL, NULL);
	all = parse(&r, "--json clients");
	/* Us and mbxctl itself. */
	ck_assert_uint_eq(json_array_size(all), 2);
	json_array_foreach(all, i, o)
		for (size_t k = 0; k < sizeof(keys) / sizeof(keys[0]); k++)
			ck_assert_msg(json_object_get(o, keys[k]) != NULL,
			    "clients --json: entry %zu lacks %s", i, keys[k]);
	o = find(all, "id", NULL, mbx_id(c));
	ck_assert_msg(o != NULL, "client %ld not listed: %s", mbx_id(c),
	    r.out);
	ck_assert_int_eq(ival(o, "pid"), getpid());
	ck_assert_int_eq(ival(o, "uid"), getuid());
	ck_assert_str_eq(json_string_value(json_object_get(o, "comm")), comm);
	b = json_object_get(o, "bound");
	ck_assert_uint_eq(json_array_size(b), 1);
	ck_assert_str_eq(json_string_value(json_array_get(b, 0)), "jobs");
	ck_assert_ptr_nonnull(find(all, "comm", "mbxctl", 0));
	json_decref(all);
	harness_ctl_free(&r);

	CTL(&h, NULL, &r, "clients");
	check_run(&r, "clients", 0, NULL, NULL);
	snprintf(idstr, sizeof(idstr), "%ld", mbx_id(c));
	ck_assert_ptr_nonnull(strstr(r.out, idstr));
	ck_assert_ptr_nonnull(strstr(r.out, "jobs"));
	harness_ctl_free(&r);
	mbx_close(c);
	harness_stop(&h);
}
END_TEST

START_TEST(test_ctl_send_recv)
{
	static const char text[] = "line one\nline two\n";
	struct harness h;
	struct harness_ctl r;
	mbx_t *c;

	harness_start(&h, NULL);
	c = harness_open(&h);
	ASSERT_OK(mbx_create(c, "jobs", NULL));

	/* DATA: exactly its bytes. */
	CTL(&h, NULL, &r, "send", "jobs", "hello");
	check_run(&r, "send jobs hello", 0, "", NULL);
	harness_ctl_free(&r);
	/* No DATA: the whole of stdin, as one message. */
	CTL(&h, text, &r, "send", "jobs");
	check_run(&r, "send jobs <stdin", 0, "", NULL);
	harness_ctl_free(&r);
	ASSERT_OK(mbx_bind(c, "jobs", MBX_BIND_EXCLUSIVE));
	expect(c, "jobs", "hello", 5);
	expect(c, "jobs", text, strlen(text));
	ASSERT_OK(mbx_unbind(c, "jobs"));

	/* recv prints each payload and a newline. */
	ASSERT_OK(mbx_send(c, "jobs", "a", 1, 0, 0));
	ASSERT_OK(mbx_send(c, "jobs", "b", 1, 0, 0));
	ASSERT_OK(mbx_send(c, "jobs", "c", 1, 0, 0));
	ASSERT_OK(mbx_send(c, "jobs", "d", 1, 0, 0));
	CTL(&h, NULL, &r, "recv", "jobs", "--count", "3");
	check_run(&r, "recv jobs --count 3", 0, "a\nb\nc\n", NULL);
	harness_ctl_free(&r);
	/* One by default; options before the operand work too. */
	ASSERT_OK(mbx_send(c, "jobs", "e", 1, 0, 0));
	ck_assert_int_eq(harness_mailbox_int(c, "jobs", "queued"), 2);
	CTL(&h, NULL, &r, "recv", "--timeout", "0", "jobs");
	check_run(&r, "recv --timeout 0 jobs", 0, "d\n", NULL);
	harness_ctl_free(&r);
	/*
	 * Its binding ended with it; its acknowledgements came before on
	 * the same connection.
	 */
	ck_assert(harness_wait_mailbox_int(c, "jobs", "receiver", 0));
	ck_assert_int_eq(harness_mailbox_int(c, "jobs", "received"), 6);
	ck_assert_int_eq(harness_mailbox_int(c, "jobs", "queued"), 1);
	mbx_close(c);
	harness_stop(&h);
}
END_TEST

START_TEST(test_ctl_would_block)
{
	struct harness h;
	struct harness_ctl r;

	harness_start(&h, NULL);
	CTL(&h, NULL, &r, "create", "jobs");
	check_run(&r, "create jobs", 0, NULL, NULL);
	harness_ctl_free(&r);
	CTL(&h, NULL, &r, "recv", "jobs", "--timeout", "0");
	check_run(&r, "recv jobs --timeout 0", 1, "", "recv jobs", "EAGAIN",
	    NULL);
	harness_ctl_free(&r);
	CTL(&h, NULL, &r, "recv", "jobs", "--timeout", "100");
	check_run(&r, "recv jobs --timeout 100", 1, "", "jobs", "ETIMEDOUT",
	    NULL);
	harness_ctl_free(&r);

	CTL(&h, NULL, &r, "create", "full", "--capacity", "1");
	check_run(&r, "create full", 0, NULL, NULL);
	harness_ctl_free(&r);
	CTL(&h, NULL, &r, "send", "full", "a");
	check_run(&r, "send full a", 0, "", NULL);
	harness_ctl_free(&r);
	CTL(&h, NULL, &r, "send", "full", "b", "--timeout", "0");
	check_run(&r, "send full b --timeout 0", 1, "", "send full",
	    "EAGAIN", NULL);
	harness_ctl_free(&r);
	CTL(&h, NULL, &r, "--json", "list");
	check_run(&r, "--json list", 0, NULL, NULL);
	{
		json_t *all = parse(&r, "--json list");

		ck_assert_int_eq(ival(find(all, "name", "full", 0), "queued"),
		    1);
		json_decref(all);
	}
	harness_ctl_free(&r);
	harness_stop(&h);
}
END_TEST

START_TEST(test_ctl_usage)
{
	static const char *const bad[][6] = {
		{ NULL },
		{ "frobnicate", NULL },
		{ "create", NULL },
		{ "send", NULL },
		{ "recv", NULL },
		{ "destroy", NULL },
		{ "unbind", NULL },
		{ "rebind", "jobs", NULL },
		{ "rebind", "jobs", "notanumber", NULL },
		{ "create", "x", "--capacity", "bogus", NULL },
		{ "recv", "jobs", "--count", "abc", NULL },
		{ "send", "jobs", "x", "--timeout", NULL },
		{ "list", "--no-such-option", NULL },
		{ "create", "x", "--mode", "0800", NULL },
		{ "create", "x", "--mode", "1000", NULL },
		{ "create", "x", "--mode", "u+rw", NULL },
		{ "create", "x", "--mode", "0", NULL },
		{ "create", "x", "--group", "no-such-group.mbx", NULL },
		{ "list", "--mode", "0600", NULL },
		{ "chmod", "x", NULL },
		{ "chmod", "x", "0800", NULL },
		{ "chown", "x", NULL },
		{ "chown", "x", ":", NULL },
		{ "chown", "x", "no-such-user.mbx", NULL },
		{ "chown", "x", ":no-such-group.mbx", NULL },
		{ "purge", NULL },
	};
	struct harness h;
	struct harness_ctl r;
	json_t *all;
	mbx_t *c;

	harness_start(&h, NULL);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char what[128] = "";

		for (size_t k = 0; bad[i][k] != NULL; k++) {
			strncat(what, " ", sizeof(what) - strlen(what) - 1);
			strncat(what, bad[i][k], sizeof(what) -
			    strlen(what) - 1);
		}
		ck_assert_int_eq(harness_ctlv(&h, NULL, 0, &r, bad[i]), 0);
		check_run(&r, what, 2, "", "usage", NULL);
		harness_ctl_free(&r);
	}
	/* None of them did anything. */
	c = harness_open(&h);
	all = harness_list(c);
	ck_assert_uint_eq(json_array_size(all), 0);
	json_decref(all);
	mbx_close(c);

	CTL(&h, NULL, &r, "--help");
	check_run(&r, "--help", 0, NULL, NULL);
	ck_assert_msg(strcasestr(r.out, "usage") != NULL, "--help: %s", r.out);
	harness_ctl_free(&r);
	CTL(&h, NULL, &r, "--version");
	check_run(&r, "--version", 0, NULL, NULL);
	ck_assert_uint_gt(r.out_len, 0);
	harness_ctl_free(&r);
	harness_stop(&h);
}
END_TEST

START_TEST(test_ctl_rebind)
{
	struct harness h;
	struct harness_ctl r;
	mbx_t *c1, *c2, *c3;
	char id[32], ids[64];

	harness_start(&h, NULL);
	c1 = harness_open(&h);
	c2 = harness_open(&h);
	c3 = harness_open(&h);
	ASSERT_OK(mbx_create(c1, "jobs", NULL));
	ASSERT_OK(mbx_bind(c1, "jobs", MBX_BIND_EXCLUSIVE));
	ASSERT_OK(mbx_bind(c2, "jobs", MBX_BIND_QUEUE));
	ASSERT_OK(mbx_bind(c3, "jobs", MBX_BIND_QUEUE));
	ASSERT_OK(mbx_send(c1, "jobs", "m1", 2, 0, 0));
	ASSERT_OK(mbx_send(c1, "jobs", "m2", 2, 0, 0));

	snprintf(id, sizeof(id), "%ld", mbx_id(c3));
	CTL(&h, NULL, &r, "rebind", "jobs", id);
	check_run(&r, "rebind jobs ID", 0, NULL, NULL);
	harness_ctl_free(&r);
	ck_assert_int_eq(harness_mailbox_int(c1, "jobs", "receiver"),
	    mbx_id(c3));
	harness_standby(c1, "jobs", ids, sizeof(ids));
	snprintf(id, sizeof(id), "%ld", mbx_id(c2));
	ck_assert_str_eq(ids, id);
	expect(c3, "jobs", "m1", 2);
	expect(c3, "jobs", "m2", 2);

	/* c1 is not standing by: refused, and named. */
	snprintf(id, sizeof(id), "%ld", mbx_id(c1));
	CTL(&h, NULL, &r, "rebind", "jobs", id);
	check_run(&r, "rebind jobs NOT-STANDBY", 1, "", "jobs", "ESRCH",
	    NULL);
	harness_ctl_free(&r);
	ck_assert_int_eq(harness_mailbox_int(c1, "jobs", "receiver"),
	    mbx_id(c3));
	mbx_close(c3);
	mbx_close(c2);
	mbx_close(c1);
	harness_stop(&h);
}
END_TEST

START_TEST(test_ctl_unbind)
{
	struct harness h;
	struct harness_ctl r;
	char buf[16];
	mbx_t *c1, *c2;

	harness_start(&h, NULL);
	c1 = harness_open(&h);
	c2 = harness_open(&h);
	ASSERT_OK(mbx_create(c1, "jobs", NULL));
	ASSERT_OK(mbx_bind(c1, "jobs", MBX_BIND_EXCLUSIVE));
	ASSERT_OK(mbx_bind(c2, "jobs", MBX_BIND_QUEUE));
	CTL(&h, NULL, &r, "unbind", "jobs");
	check_run(&r, "unbind jobs", 0, NULL, NULL);
	harness_ctl_free(&r);
	ck_assert_int_eq(harness_mailbox_int(c1, "jobs", "receiver"),
	    mbx_id(c2));
	ASSERT_ERR(mbx_recv(c1, "jobs", buf, sizeof(buf), NULL, 0), EPERM);
	CTL(&h, NULL, &r, "unbind", "jobs");
	check_run(&r, "unbind jobs (the standby)", 0, NULL, NULL);
	harness_ctl_free(&r);
	ck_assert_int_eq(harness_mailbox_int(c1, "jobs", "receiver"), 0);
	CTL(&h, NULL, &r, "unbind", "jobs");
	check_run(&r, "unbind jobs (nobody)", 1, "", "jobs", "EPERM", NULL);
	harness_ctl_free(&r);
	mbx_close(c2);
	mbx_close(c1);
	harness_stop(&h);
}
END_TEST

START_TEST(test_ctl_destroy)
{
	struct harness h;
	struct harness_ctl r;
	json_t *all;

	harness_start(&h, NULL);
	CTL(&h, NULL, &r, "create", "jobs");
	check_run(&r, "create jobs", 0, NULL, NULL);
	harness_ctl_free(&r);
	CTL(&h, NULL, &r, "destroy", "jobs");
	check_run(&r, "destroy jobs", 0, NULL, NULL);
	harness_ctl_free(&r);
	CTL(&h, NULL, &r, "--json", "list");
	check_run(&r, "--json list", 0, NULL, NULL);
	all = parse(&r, "--json list");
	ck_assert_uint_eq(json_array_size(all), 0);
	json_decref(all);
	harness_ctl_free(&r);
	CTL(&h, NULL, &r, "destroy", "jobs");
	check_run(&r, "destroy jobs (again)", 1, "", "destroy jobs",
	    "no such", "ENOENT", NULL);
	harness_ctl_free(&r);
	harness_stop(&h);
}
END_TEST

/* Every verb on a missing mailbox: exit 1, the name and the reason. */
START_TEST(test_ctl_missing)
{
	static const char *const cmds[][6] = {
		{ "send", "nosuch", "x", NULL },
		{ "send", "nosuch", "x", "--timeout", "0", NULL },
		{ "recv", "nosuch", "--timeout", "0", NULL },
		{ "destroy", "nosuch", NULL },
		{ "rebind", "nosuch", "1", NULL },
		{ "unbind", "nosuch", NULL },
	};
	struct harness h;
	struct harness_ctl r;

	harness_start(&h, NULL);
	for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
		ck_assert_int_eq(harness_ctlv(&h, NULL, 0, &r, cmds[i]), 0);
		check_run(&r, cmds[i][0], 1, "", "nosuch", "no such",
		    "ENOENT", NULL);
		harness_ctl_free(&r);
	}
	harness_stop(&h);
}
END_TEST

static int
child_recv_sync(const struct harness *h, void *arg)
{
	mbx_t *c = mbx_open(h->sock);
	char buf[64];
	ssize_t n;

	(void)arg;
	CHILD_REQUIRE(c != NULL);
	CHILD_REQUIRE(mbx_bind(c, "jobs", MBX_BIND_EXCLUSIVE) == 0);
	harness_report(mbx_id(c));
	n = mbx_recv(c, "jobs", buf, sizeof(buf), NULL, -1);
	CHILD_REQUIRE(n == 4 && memcmp(buf, "sync", 4) == 0);
	mbx_close(c);
	return 0;
}

START_TEST(test_ctl_sync)
{
	struct harness h;
	struct harness_ctl r;
	struct harness_child ch;
	mbx_t *c;

	harness_start(&h, NULL);
	c = harness_open(&h);
	ASSERT_OK(mbx_create(c, "jobs", NULL));
	/* Nobody receives: withdrawn at the deadline. */
	CTL(&h, NULL, &r, "send", "jobs", "lost", "--sync", "--timeout",
	    "100");
	check_run(&r, "send --sync --timeout 100", 1, "", "jobs",
	    "ETIMEDOUT", NULL);
	harness_ctl_free(&r);
	ck_assert_int_eq(harness_mailbox_int(c, "jobs", "queued"), 0);

	harness_child_start(&ch, &h, child_recv_sync, NULL);
	ck_assert_int_gt(harness_child_read(&ch), 0);
	harness_wait_blocked(c, &ch);
	CTL(&h, NULL, &r, "send", "--sync", "jobs", "sync");
	check_run(&r, "send --sync jobs sync", 0, "", NULL);
	harness_ctl_free(&r);
	ck_assert_int_eq(harness_child_join(&ch), 0);
	mbx_close(c);
	harness_stop(&h);
}
END_TEST

static int
child_ctl_queue(const struct harness *h, void *arg)
{
	struct harness_ctl r;

	(void)arg;
	CHILD_REQUIRE(harness_ctl(h, NULL, &r, "recv", "jobs", "--queue",
	    (const char *)NULL) == 0);
	if (r.status != 0 || strcmp(r.out, "queued\n") != 0)
		fprintf(stderr, "recv --queue: exit %d, stdout \"%s\", stderr "
		    "\"%s\"\n", r.status, r.out, r.err);
	CHILD_REQUIRE(r.status == 0);
	CHILD_REQUIRE(strcmp(r.out, "queued\n") == 0);
	harness_ctl_free(&r);
	return 0;
}

START_TEST(test_ctl_recv_modes)
{
	struct harness h;
	struct harness_ctl r;
	struct harness_child ch;
	char buf[16];
	mbx_t *c;

	harness_start(&h, NULL);
	c = harness_open(&h);
	ASSERT_OK(mbx_create(c, "jobs", NULL));
	ASSERT_OK(mbx_bind(c, "jobs", MBX_BIND_EXCLUSIVE));
	ASSERT_OK(mbx_send(c, "jobs", "one", 3, 0, 0));
	ck_assert_int_eq(harness_mailbox_int(c, "jobs", "queued"), 1);

	/* Exclusive by default: busy. */
	CTL(&h, NULL, &r, "recv", "jobs", "--timeout", "0");
	check_run(&r, "recv jobs (bound elsewhere)", 1, "", "jobs", "EBUSY",
	    NULL);
	harness_ctl_free(&r);
	/* --replace takes it. */
	CTL(&h, NULL, &r, "recv", "jobs", "--replace", "--timeout", "0");
	check_run(&r, "recv jobs --replace", 0, "one\n", NULL);
	harness_ctl_free(&r);
	ASSERT_ERR(mbx_recv(c, "jobs", buf, sizeof(buf), NULL, 0), EPERM);

	/* --queue stands by until the receiver lets go. */
	ASSERT_OK(mbx_bind(c, "jobs", MBX_BIND_EXCLUSIVE));
	ASSERT_OK(mbx_send(c, "jobs", "queued", 6, 0, 0));
	harness_child_start(&ch, &h, child_ctl_queue, NULL);
	ck_assert(harness_wait_standby_count(c, "jobs", 1));
	ck_assert_int_eq(harness_mailbox_int(c, "jobs", "queued"), 1);
	ASSERT_OK(mbx_unbind(c, "jobs"));
	ck_assert_int_eq(harness_child_join(&ch), 0);
	ck_assert(harness_wait_mailbox_int(c, "jobs", "queued", 0));
	mbx_close(c);
	harness_stop(&h);
}
END_TEST

/* -s defaults to $MBX_SOCKET; a socket with no daemon is a failure. */
START_TEST(test_ctl_socket_env)
{
	struct harness h;
	struct harness_ctl r;
	char nowhere[HARNESS_PATH_MAX + 16];
	mbx_t *c;
	json_t *o;

	harness_start(&h, NULL);
	ck_assert_int_eq(setenv("MBX_SOCKET", h.sock, 1), 0);
	ck_assert_int_eq(harness_ctl(NULL, NULL, &r, "create", "viaenv",
	    (const char *)NULL), 0);
	check_run(&r, "create viaenv (MBX_SOCKET)", 0, NULL, NULL);
	harness_ctl_free(&r);
	c = harness_open(&h);
	o = harness_mailbox(c, "viaenv");
	ck_assert_ptr_nonnull(o);
	json_decref(o);
	mbx_close(c);

	snprintf(nowhere, sizeof(nowhere), "%s/nowhere.sock", h.dir);
	ck_assert_int_eq(setenv("MBX_SOCKET", nowhere, 1), 0);
	ck_assert_int_eq(harness_ctl(NULL, NULL, &r, "list",
	    (const char *)NULL), 0);
	check_run(&r, "list (no daemon)", 1, "", NULL);
	ck_assert_uint_gt(r.err_len, 0);
	harness_ctl_free(&r);
	unsetenv("MBX_SOCKET");
	harness_stop(&h);
}
END_TEST

/* What mbxctl list shows as the owner uid: its user name, else the number. */
static void
user_text(uid_t uid, char *buf, size_t len)
{
	const struct passwd *pw = getpwuid(uid);

	if (pw != NULL)
		snprintf(buf, len, "%s", pw->pw_name);
	else
		snprintf(buf, len, "%u", (unsigned)uid);
}

/*
 * Splits the line of an mbxctl table whose first field is first (the
 * header when it is "NAME") into fields; returns how many, 0 when there
 * is no such line.
 */
static size_t
table_row(const char *out, const char *first, char fields[][64], size_t max)
{
	const char *line = out;

	for (int lines = 0; *line != '\0' && lines < 1000; lines++) {
		const char *end = strchrnul(line, '\n'), *p = line;
		size_t n = 0;

		while (n < max) {
			size_t len;

			while (p < end && *p == ' ')
				p++;
			if (p == end)
				break;
			len = strcspn(p, " \n");
			ck_assert_uint_lt(len, 64);
			memcpy(fields[n], p, len);
			fields[n++][len] = '\0';
			p += len;
		}
		if (n > 0 && strcmp(fields[0], first) == 0)
			return n;
		line = *end != '\0' ? end + 1 : end;
	}
	return 0;
}

/* Asserts the "mode" mailbox name has in the daemon's list. */
static void
assert_mode(mbx_t *c, const char *name, const char *mode)
{
	json_t *o = harness_mailbox(c, name);
	const char *m;

	ck_assert_msg(o != NULL, "no mailbox %s", name);
	m = json_string_value(json_object_get(o, "mode"));
	ck_assert_msg(m != NULL && strcmp(m, mode) == 0,
	    "%s: mode %s, expected %s", name, m != NULL ? m : "(none)", mode);
	json_decref(o);
}

/* create --mode, the OWNER and MODE columns, --json's keys, chmod. */
START_TEST(test_ctl_modes)
{
	static const char *const titles[] = { "NAME", "OWNER", "MODE",
	    "CAPACITY", "QUEUED", "INFLIGHT", "RECEIVER", "STANDBY", "SENT",
	    "RECEIVED" };
	struct harness h;
	struct harness_ctl r;
	char f[12][64], owner[64], direct[32];
	json_t *all, *o;
	mbx_t *c;

	harness_start(&h, NULL);
	CTL(&h, NULL, &r, "create", "jobs", "--mode", "0640");
	check_run(&r, "create jobs --mode 0640", 0, "", NULL);
	harness_ctl_free(&r);
	CTL(&h, NULL, &r, "create", "--mode", "660", "team");
	check_run(&r, "create --mode 660 team", 0, "", NULL);
	harness_ctl_free(&r);
	CTL(&h, NULL, &r, "create", "plain");
	check_run(&r, "create plain", 0, "", NULL);
	harness_ctl_free(&r);

	/* The table: the owner's user name and the mode in octal. */
	user_text(getuid(), owner, sizeof(owner));
	CTL(&h, NULL, &r, "list");
	check_run(&r, "list", 0, NULL, NULL);
	ck_assert_uint_eq(table_row(r.out, "NAME", f, 12), 10);
	for (size_t k = 0; k < sizeof(titles) / sizeof(titles[0]); k++)
		ck_assert_str_eq(f[k], titles[k]);
	ck_assert_uint_eq(table_row(r.out, "jobs", f, 12), 10);
	ck_assert_str_eq(f[1], owner);
	ck_assert_str_eq(f[2], "0640");
	ck_assert_str_eq(f[3], "1024");
	ck_assert_uint_eq(table_row(r.out, "team", f, 12), 10);
	ck_assert_str_eq(f[2], "0660");
	ck_assert_uint_eq(table_row(r.out, "plain", f, 12), 10);
	ck_assert_str_eq(f[2], "0600");
	harness_ctl_free(&r);

	/* --json: the daemon's keys, the mode as a string. */
	CTL(&h, NULL, &r, "--json", "list");
	check_run(&r, "--json list", 0, NULL, NULL);
	all = parse(&r, "--json list");
	o = find(all, "name", "jobs", 0);
	ck_assert_ptr_nonnull(o);
	ck_assert_str_eq(json_string_value(json_object_get(o, "mode")),
	    "0640");
	ck_assert_int_eq(ival(o, "owner"), getuid());
	ck_assert_int_eq(ival(o, "group"), getgid());
	o = find(all, "name", "plain", 0);
	ck_assert_ptr_nonnull(o);
	ck_assert_str_eq(json_string_value(json_object_get(o, "mode")),
	    "0600");
	json_decref(all);
	harness_ctl_free(&r);

	/* chmod: octal with or without the leading 0; 0 locks it. */
	c = harness_open(&h);
	CTL(&h, NULL, &r, "chmod", "jobs", "0604");
	check_run(&r, "chmod jobs 0604", 0, "", NULL);
	harness_ctl_free(&r);
	assert_mode(c, "jobs", "0604");
	CTL(&h, NULL, &r, "chmod", "jobs", "600");
	check_run(&r, "chmod jobs 600", 0, "", NULL);
	harness_ctl_free(&r);
	assert_mode(c, "jobs", "0600");
	CTL(&h, NULL, &r, "chmod", "jobs", "0");
	check_run(&r, "chmod jobs 0", 0, "", NULL);
	harness_ctl_free(&r);
	assert_mode(c, "jobs", "0000");

	/* A bad mode is bad usage and changes nothing. */
	CTL(&h, NULL, &r, "chmod", "jobs", "0800");
	check_run(&r, "chmod jobs 0800", 2, "", "usage", NULL);
	harness_ctl_free(&r);
	CTL(&h, NULL, &r, "chmod", "jobs", "01777");
	check_run(&r, "chmod jobs 01777", 2, "", "usage", NULL);
	harness_ctl_free(&r);
	assert_mode(c, "jobs", "0000");
	CTL(&h, NULL, &r, "chmod", "nosuch", "0600");
	check_run(&r, "chmod nosuch", 1, "", "chmod nosuch", "no such",
	    "ENOENT", NULL);
	harness_ctl_free(&r);
	snprintf(direct, sizeof(direct), "@%ld", mbx_id(c));
	CTL(&h, NULL, &r, "chmod", direct, "0666");
	check_run(&r, "chmod @ID", 1, "", "direct address", "EINVAL", NULL);
	harness_ctl_free(&r);
	mbx_close(c);
	harness_stop(&h);
}
END_TEST

/* chown: a group by number, and (as root) owners by number and name. */
START_TEST(test_ctl_chown)
{
	struct harness h;
	struct harness_ctl r;
	char spec[64], want[64], f[12][64];
	/* Root may set any group; anyone else, one of its own. */
	gid_t g = getuid() == 0 ? 4242 : getgid();
	const struct passwd *pw;
	mbx_t *c;

	harness_start(&h, NULL);
	c = harness_open(&h);
	ASSERT_OK(mbx_create(c, "jobs", NULL));
	snprintf(spec, sizeof(spec), ":%u", (unsigned)g);
	CTL(&h, NULL, &r, "chown", "jobs", spec);
	check_run(&r, "chown jobs :GID", 0, "", NULL);
	harness_ctl_free(&r);
	ck_assert_int_eq(harness_mailbox_int(c, "jobs", "group"), g);
	ck_assert_int_eq(harness_mailbox_int(c, "jobs", "owner"), getuid());

	if (getuid() == 0) {
		/* Only an administrator gives a mailbox away. */
		CTL(&h, NULL, &r, "chown", "jobs", "54321:4243");
		check_run(&r, "chown jobs 54321:4243", 0, "", NULL);
		harness_ctl_free(&r);
		ck_assert_int_eq(harness_mailbox_int(c, "jobs", "owner"),
		    54321);
		ck_assert_int_eq(harness_mailbox_int(c, "jobs", "group"),
		    4243);
		user_text(54321, want, sizeof(want));
		CTL(&h, NULL, &r, "list");
		check_run(&r, "list", 0, NULL, NULL);
		ck_assert_uint_eq(table_row(r.out, "jobs", f, 12), 10);
		ck_assert_str_eq(f[1], want);
		harness_ctl_free(&r);
		/* A name, and "USER:" for the user's login group. */
		pw = getpwuid(0);
		if (pw != NULL) {
			gid_t login = pw->pw_gid;

			snprintf(spec, sizeof(spec), "%s:", pw->pw_name);
			CTL(&h, NULL, &r, "chown", "jobs", spec);
			check_run(&r, "chown jobs root:", 0, "", NULL);
			harness_ctl_free(&r);
			ck_assert_int_eq(harness_mailbox_int(c, "jobs",
			    "owner"), 0);
			ck_assert_int_eq(harness_mailbox_int(c, "jobs",
			    "group"), login);
		}
	}
	CTL(&h, NULL, &r, "chown", "nosuch", spec);
	check_run(&r, "chown nosuch", 1, "", "chown nosuch", "ENOENT", NULL);
	harness_ctl_free(&r);
	mbx_close(c);
	harness_stop(&h);
}
END_TEST

static int
child_send_blocked(const struct harness *h, void *arg)
{
	mbx_t *c = mbx_open(h->sock);

	(void)arg;
	CHILD_REQUIRE(c != NULL);
	harness_report(mbx_id(c));
	CHILD_REQUIRE(mbx_send(c, "jobs", "late", 4, 0, -1) == 0);
	mbx_close(c);
	return 0;
}

/* purge empties the queue; a sender waiting for room gets the room. */
START_TEST(test_ctl_purge)
{
	struct harness h;
	struct harness_ctl r;
	struct harness_child ch;
	struct mbx_attr attr;
	char buf[16];
	mbx_t *c;

	harness_start(&h, NULL);
	c = harness_open(&h);
	mbx_attr_init(&attr);
	attr.capacity = 2;
	ASSERT_OK(mbx_create(c, "jobs", &attr));
	ASSERT_OK(mbx_send(c, "jobs", "a", 1, 0, 0));
	ASSERT_OK(mbx_send(c, "jobs", "b", 1, 0, 0));
	ck_assert_int_eq(harness_mailbox_int(c, "jobs", "queued"), 2);
	CTL(&h, NULL, &r, "purge", "jobs");
	check_run(&r, "purge jobs", 0, "", NULL);
	harness_ctl_free(&r);
	ck_assert_int_eq(harness_mailbox_int(c, "jobs", "queued"), 0);
	ck_assert_int_eq(harness_mailbox_int(c, "jobs", "bytes"), 0);
	ck_assert_int_eq(harness_mailbox_int(c, "jobs", "sent"), 2);
	ck_assert_int_eq(harness_mailbox_int(c, "jobs", "received"), 0);

	ASSERT_OK(mbx_send(c, "jobs", "c", 1, 0, 0));
	ASSERT_OK(mbx_send(c, "jobs", "d", 1, 0, 0));
	harness_child_start(&ch, &h, child_send_blocked, NULL);
	ck_assert_int_gt(harness_child_read(&ch), 0);
	harness_wait_blocked(c, &ch);
	CTL(&h, NULL, &r, "purge", "jobs");
	check_run(&r, "purge jobs (full, a sender waiting)", 0, "", NULL);
	harness_ctl_free(&r);
	ck_assert_int_eq(harness_child_join(&ch), 0);
	ck_assert_int_eq(harness_mailbox_int(c, "jobs", "queued"), 1);
	ASSERT_OK(mbx_bind(c, "jobs", MBX_BIND_EXCLUSIVE));
	expect(c, "jobs", "late", 4);
	ASSERT_ERR(mbx_recv(c, "jobs", buf, sizeof(buf), NULL, 0), EAGAIN);

	CTL(&h, NULL, &r, "purge", "nosuch");
	check_run(&r, "purge nosuch", 1, "", "purge nosuch", "ENOENT", NULL);
	harness_ctl_free(&r);
	mbx_close(c);
	harness_stop(&h);
}
END_TEST

/* Starts a daemon with the configuration text conf. */
static void
start_with_config(struct harness *h, const char *conf)
{
	char path[HARNESS_PATH_MAX + 16];
	const char *args[] = { "-c", path, NULL };
	FILE *f;

	snprintf(path, sizeof(path), "%s/mbxd.json", h->dir);
	f = fopen(path, "w");
	ck_assert_ptr_nonnull(f);
	fputs(conf, f);
	ck_assert_int_eq(fclose(f), 0);
	harness_launch(h, args);
}

/* The daemon's global limits, in mbxctl's words: ENOBUFS twice. */
START_TEST(test_ctl_limits)
{
	static const char conf[] =
	    "{\"limits\": {\"max_memory\": \"4K\", \"max_connections\": 2}}\n";
	struct harness h;
	struct harness_ctl r;
	static char big[5000];
	mbx_t *c1, *c2;
	long id2;

	harness_init(&h);
	start_with_config(&h, conf);
	CTL(&h, NULL, &r, "create", "jobs");
	check_run(&r, "create jobs", 0, "", NULL);
	harness_ctl_free(&r);
	memset(big, 'x', sizeof(big) - 1);
	CTL(&h, big, &r, "send", "jobs");
	check_run(&r, "send jobs (above max_memory)", 1, "", "send jobs",
	    "the daemon's memory limit is reached", "ENOBUFS", NULL);
	harness_ctl_free(&r);

	c1 = harness_open(&h);
	c2 = harness_open(&h);
	id2 = mbx_id(c2);
	CTL(&h, NULL, &r, "list");
	check_run(&r, "list (max_connections reached)", 1, "",
	    "the daemon has too many connections", "ENOBUFS", NULL);
	harness_ctl_free(&r);
	ck_assert_int_eq(harness_mailbox_int(c1, "jobs", "queued"), 0);
	mbx_close(c2);
	ck_assert(harness_wait_client_gone(c1, id2));
	CTL(&h, NULL, &r, "list");
	check_run(&r, "list (room again)", 0, NULL, NULL);
	harness_ctl_free(&r);
	mbx_close(c1);
	harness_stop(&h);
}
END_TEST

/* One mbxctl run a helper makes as another user, and what it must give. */
struct ctl_case {
	const char	*args[6];
	int		 status;
	const char	*err[3];	/* in stderr, NULL-terminated */
};

static const struct ctl_case refused_cases[] = {
	{ { "send", "jobs", "x", NULL }, 1,
	    { "send jobs: permission denied", "EACCES", NULL } },
	{ { "recv", "jobs", "--timeout", "0", NULL }, 1,
	    { "recv jobs: permission denied", "EACCES", NULL } },
	{ { "purge", "jobs", NULL }, 1,
	    { "permission denied", "EACCES", NULL } },
	{ { "chmod", "jobs", "0666", NULL }, 1,
	    { "permission denied", "EACCES", NULL } },
	{ { "chown", "jobs", ":65534", NULL }, 1,
	    { "permission denied", "EACCES", NULL } },
	{ { "destroy", "jobs", NULL }, 1,
	    { "permission denied", "EACCES", NULL } },
	{ { "create", "mine", "--group", "0", NULL }, 1,
	    { "create mine: not a member of that group", "EPERM", NULL } },
	{ { "create", "mine", NULL }, 0, { NULL } },
	{ { "create", "more", NULL }, 1,
	    { "create more: quota exceeded for this user", "EDQUOT", NULL } },
	{ { "send", "mine", "hi", NULL }, 0, { NULL } },
	{ { "chmod", "mine", "0620", NULL }, 0, { NULL } },
};

/* The unprivileged helper's exit status when it cannot run mbxctl. */
#define CHILD_SKIP	77

static int
child_ctl_nobody(const struct harness *h, void *arg)
{
	const char *mbxctl = getenv("MBXCTL");
	struct harness_ctl r;

	(void)arg;
	CHILD_REQUIRE(setgroups(0, NULL) == 0);
	CHILD_REQUIRE(setgid(65534) == 0);
	CHILD_REQUIRE(setuid(65534) == 0);
	if (mbxctl == NULL || access(mbxctl, X_OK) != 0)
		return CHILD_SKIP;
	for (size_t i = 0; i < sizeof(refused_cases) /
	    sizeof(refused_cases[0]); i++) {
		const struct ctl_case *k = &refused_cases[i];
		bool ok;

		CHILD_REQUIRE(harness_ctlv(h, NULL, 0, &r, k->args) == 0);
		ok = r.status == k->status;
		for (size_t e = 0; ok && k->err[e] != NULL; e++)
			ok = strcasestr(r.err, k->err[e]) != NULL;
		if (!ok)
			fprintf(stderr, "as nobody, mbxctl %s %s: exit %d, "
			    "stderr \"%s\"; expected exit %d and \"%s\"\n",
			    k->args[0], k->args[1], r.status, r.err,
			    k->status, k->err[0] != NULL ? k->err[0] : "");
		harness_ctl_free(&r);
		CHILD_REQUIRE(ok);
	}
	return 0;
}

/*
 * Refusals in mbxctl's words, from a uid that is not the owner and not an
 * administrator: EACCES, EPERM for a foreign group, EDQUOT for the
 * per-uid mailbox quota.  Root only: the helper must change its uid.
 */
START_TEST(test_ctl_refused)
{
	static const char conf[] =
	    "{\"limits\": {\"max_mailboxes_per_uid\": 1}}\n";
	struct harness h;
	struct harness_child ch;
	char base[HARNESS_DIR_MAX], *slash;
	json_t *o;
	mbx_t *c;
	int rc;

	if (getuid() != 0) {
		skip("test_ctl_refused", "needs root");
		return;
	}
	harness_init(&h);
	/* nobody must reach the socket: search, not list, permission. */
	snprintf(base, sizeof(base), "%s", h.dir);
	slash = strrchr(base, '/');
	ck_assert_ptr_nonnull(slash);
	*slash = '\0';
	ck_assert_int_eq(chmod(base, 0711), 0);
	ck_assert_int_eq(chmod(h.dir, 0711), 0);
	start_with_config(&h, conf);
	c = harness_open(&h);
	ASSERT_OK(mbx_create(c, "jobs", NULL));

	harness_child_start(&ch, &h, child_ctl_nobody, NULL);
	rc = harness_child_join(&ch);
	if (rc == CHILD_SKIP)
		skip("test_ctl_refused", "nobody cannot run $MBXCTL");
	else
		ck_assert_int_eq(rc, 0);

	/* None of the refusals changed anything. */
	assert_mode(c, "jobs", "0600");
	ck_assert_int_eq(harness_mailbox_int(c, "jobs", "owner"), 0);
	ck_assert_int_eq(harness_mailbox_int(c, "jobs", "queued"), 0);
	if (rc == 0) {
		assert_mode(c, "mine", "0620");
		ck_assert_int_eq(harness_mailbox_int(c, "mine", "owner"),
		    65534);
		ck_assert_int_eq(harness_mailbox_int(c, "mine", "queued"), 1);
		o = harness_mailbox(c, "more");
		ck_assert_ptr_null(o);
	}
	mbx_close(c);
	harness_stop(&h);
}
END_TEST

Suite *
ctl_suite(void)
{
	Suite *s = suite_create("ctl");
	TCase *tc = tcase_create("mbxctl");

	tcase_set_timeout(tc, harness_tcase_timeout());
	tcase_add_test(tc, test_ctl_create_list);
	tcase_add_test(tc, test_ctl_clients);
	tcase_add_test(tc, test_ctl_send_recv);
	tcase_add_test(tc, test_ctl_would_block);
	tcase_add_test(tc, test_ctl_usage);
	tcase_add_test(tc, test_ctl_rebind);
	tcase_add_test(tc, test_ctl_unbind);
	tcase_add_test(tc, test_ctl_destroy);
	tcase_add_test(tc, test_ctl_missing);
	tcase_add_test(tc, test_ctl_sync);
	tcase_add_test(tc, test_ctl_recv_modes);
	tcase_add_test(tc, test_ctl_socket_env);
	tcase_add_test(tc, test_ctl_modes);
	tcase_add_test(tc, test_ctl_chown);
	tcase_add_test(tc, test_ctl_purge);
	tcase_add_test(tc, test_ctl_limits);
	tcase_add_test(tc, test_ctl_refused);
	suite_add_tcase(s, tc);
	return s;
}
