/*
 * test-ctl.c - mbxctl end to end against a real mbxd: every verb, the
 * human and --json views with their stable keys, exit statuses (0 done,
 * 1 failed operation with `mbxctl: VERB NAME: reason (ERRNAME)`, 2 bad
 * usage) and the socket's default from $MBX_SOCKET.
 *
 * mbxctl runs through harness_ctl() (its stdout, stderr and status
 * captured, bounded in time); libmbx handles in the test process play the
 * receivers and standbys that mbxctl acts on.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <check.h>
#include <jansson.h>

#include "harness.h"
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
	static const char *const keys[] = { "name", "capacity", "queued",
	    "receiver", "standby", "sent", "received" };
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
	suite_add_tcase(s, tc);
	return s;
}
