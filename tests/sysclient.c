/*
 * sysclient.c - a small libmbx application for tests/system.sh.
 *
 * It is built twice: against an installed tree through
 * `pkg-config --cflags --libs mbx` (the proof that an application builds
 * and runs with what `make install` puts in place), and against
 * build/libmbx.a as the load generator of the watchdog test.  So it uses
 * the public API of <mbx.h> and nothing else.
 *
 *   sysclient SOCKET MAILBOX COUNT
 *
 * Creates MAILBOX (unbounded) unless it exists, binds to it, then sends
 * COUNT numbered messages to it in batches of 64, receiving each batch
 * back and checking that every message arrives once, in order, from this
 * connection.  Prints "sysclient: COUNT messages" and exits 0; prints the
 * failed call and exits 1 otherwise.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mbx.h>

#define BATCH	64

static int
fail(const char *what, const char *name)
{
	fprintf(stderr, "sysclient: %s %s: %s\n", what, name, strerror(errno));
	return 1;
}

int
main(int argc, char **argv)
{
	struct mbx_attr attr;
	struct mbx_meta meta;
	char msg[64], buf[64];
	long count, sent = 0, got = 0;
	mbx_t *c;

	if (argc != 4 || (count = strtol(argv[3], NULL, 10)) <= 0) {
		fprintf(stderr, "usage: sysclient SOCKET MAILBOX COUNT\n");
		return 2;
	}
	if ((c = mbx_open(argv[1])) == NULL)
		return fail("open", argv[1]);
	mbx_attr_init(&attr);
	attr.capacity = MBX_UNBOUNDED;
	if (mbx_create(c, argv[2], &attr) < 0 && errno != EEXIST)
		return fail("create", argv[2]);
	if (mbx_bind(c, argv[2], MBX_BIND_EXCLUSIVE) < 0)
		return fail("bind", argv[2]);
	while (got < count) {
		for (int i = 0; i < BATCH && sent < count; i++, sent++) {
			int len = snprintf(msg, sizeof(msg), "msg %ld", sent);

			if (mbx_send(c, argv[2], msg, (size_t)len, 0, 1000) < 0)
				return fail("send", argv[2]);
		}
		for (; got < sent; got++) {
			ssize_t n = mbx_recv(c, argv[2], buf, sizeof(buf) - 1,
			    &meta, 1000);
			int len = snprintf(msg, sizeof(msg), "msg %ld", got);

			if (n < 0)
				return fail("recv", argv[2]);
			if (n != len || memcmp(buf, msg, (size_t)len) != 0 ||
			    meta.sender_id != mbx_id(c)) {
				buf[n] = '\0';
				fprintf(stderr, "sysclient: expected \"%s\" "
				    "from %ld, got \"%s\" from %ld\n", msg,
				    mbx_id(c), buf, meta.sender_id);
				return 1;
			}
		}
	}
	mbx_close(c);
	printf("sysclient: %ld messages\n", count);
	return 0;
}
