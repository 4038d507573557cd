/*
 * mbx.c - libmbx's handle: mbx_open() (the connection and the version
 * handshake), its options, mbx_close(), and the message objects of the
 * zero-copy calls.  The rest of the API is in mbx-admin.c (mailbox
 * administration), mbx-send.c (sends and credit) and mbx-recv.c
 * (receives and held messages); mbx-int.h draws the layers below and
 * says the invariants every call keeps.  mbx.h is the API, proto.h the
 * wire format.
 */
#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "body.h"
#include "chan.h"
#include "grant.h"
#include "inbox.h"
#include "mbx-int.h"
#include "mbx.h"
#include "net.h"
#include "proto.h"
#include "mbx-session.h"
#include "shm.h"

/*
 * The handle's life: open, options, close.
 */

/* $MBX_SOCKET (ignored in set-uid programs), else the default. */
static const char *
mbx_default_socket(void)
{
	const char *path = secure_getenv("MBX_SOCKET");

	if (path == NULL || *path == '\0')
		return MBX_DEFAULT_SOCKET;
	return path;
}

/*
 * The version handshake.  The daemon answers a version it does not speak
 * with an error and closes the connection: that is EPROTO for the caller.
 */
static int
mbx_hello(struct mbx *c)
{
	struct body_hello hello = { .version = PROTO_VERSION };
	struct body_reply_hello r;
	struct answer a;
	uint32_t id, status;

	session_req_begin(c);
	body_hello_put(&c->out, &hello);
	if ((id = session_req_end(c, PROTO_HELLO, 0, 0)) == 0)
		return -1;
	if (session_call(c, id, NULL, 0, &a) == -1 ||
	    session_reply_status(c, &a, &status) == -1)
		return -1;
	/* A refusal other than the version (a quota) says what it is. */
	if (status != PROTO_OK) {
		errno = status == PROTO_EPROTO ? EPROTO :
		    proto_status_to_errno(status);
		return -1;
	}
	/* The server's own version (r.version) is not looked at: it said
	 * OK, so it speaks ours. */
	if (!body_reply_hello_get(a.body, a.h.len, a.h.flags, &r) ||
	    r.client_id == 0 || r.client_id > LONG_MAX)
		return net_break(&c->net, EPROTO);
	c->id = (long)r.client_id;
	return 0;
}

/*
 * Defaults, which the environment may change for programs that do not
 * call mbx_setopt(): MBX_PREFETCH=N asks for N messages per receive (1:
 * one at a time), MBX_CREDIT=0 makes every send wait for its answer (on
 * credit is the default), MBX_ZEROCOPY=N
 * sends payloads above N bytes zero-copy, MBX_CHANNEL=0 keeps posts and
 * acknowledgements on the socket (no channel: the version 5 path, for
 * comparison).  MBX_CREDIT=0 also means no channel.
 */
static void
mbx_tune(struct mbx *c)
{
	const char *p = secure_getenv("MBX_PREFETCH");
	const char *cr = secure_getenv("MBX_CREDIT");
	const char *zc = secure_getenv("MBX_ZEROCOPY");
	const char *ch = secure_getenv("MBX_CHANNEL");

	c->prefetch = MBX_PREFETCH_COUNT;
	c->zerocopy_above = MBX_MAX_MSG_LIMIT;
	if (p != NULL)
		(void)mbx_setopt(c, MBX_OPT_PREFETCH, strtol(p, NULL, 10));
	if (zc != NULL)
		(void)mbx_setopt(c, MBX_OPT_ZEROCOPY, strtol(zc, NULL, 10));
	(void)mbx_setopt(c, MBX_OPT_CREDIT,
	    cr == NULL || strcmp(cr, "0") != 0);
	if (ch != NULL && strcmp(ch, "0") == 0)
		c->chan.state = CHAN_OFF;
}

/*
 * MBX_OPT_ACK: the slots for n unacknowledged messages are allocated
 * here, so that a receive never fails to note one.  Messages held ahead
 * of calls were asked for under the old mode; they stay as they came
 * (the daemon times out only those asked for with PROTO_RECV_ACK).
 */
static int
mbx_set_ack(struct mbx *c, long value)
{
	struct unacked *u = NULL;

	if (value < 0 || value > MBX_ACK_LIMIT)
		return mbx_fail(EINVAL);
	if ((size_t)value < c->nunacked || (value == 0 && c->nunacked > 0))
		return mbx_fail(EBUSY);
	if (value > 0) {
		if ((u = calloc((size_t)value, sizeof(*u))) == NULL)
			return mbx_fail(ENOMEM);
		if (c->nunacked > 0)
			memcpy(u, c->unacked, c->nunacked * sizeof(*u));
	}
	free(c->unacked);
	c->unacked = u;
	c->ack_max = (unsigned)value;
	return 0;
}

MBX_EXPORT int
mbx_setopt(mbx_t *c, int opt, long value)
{
	if (c == NULL)
		return mbx_fail(EINVAL);
	switch (opt) {
	case MBX_OPT_PREFETCH:
		if (value < 1 || value > 256)
			return mbx_fail(EINVAL);
		c->prefetch = (unsigned)value;
		return 0;
	case MBX_OPT_CREDIT:
		if (value != 0 && value != 1)
			return mbx_fail(EINVAL);
		c->use_credit = value == 1;
		if (!c->use_credit)
			grant_init(&c->grants);
		return 0;
	case MBX_OPT_ZEROCOPY:
		if (value < 0 || value > (long)MBX_MAX_MSG_LIMIT)
			return mbx_fail(EINVAL);
		c->zerocopy_above = (size_t)value;
		return 0;
	case MBX_OPT_ACK:
		return mbx_set_ack(c, value);
	default:
		return mbx_fail(EINVAL);
	}
}

MBX_EXPORT mbx_t *
mbx_open(const char *socket_path)
{
	struct mbx *c;
	int err;

	if (socket_path == NULL)
		socket_path = mbx_default_socket();
	c = calloc(1, sizeof(*c));
	if (c == NULL)
		return NULL;
	net_init(&c->net);
	c->next_id = 1;
	proto_writer_init(&c->out);
	inbox_init(&c->inbox);
	grant_init(&c->grants);
	shm_init(&c->shm);
	chan_init(&c->chan);
	mbx_tune(c);
	if (net_connect(&c->net, socket_path) == -1 || mbx_hello(c) == -1) {
		err = errno;
		mbx_close(c);
		errno = err;
		return NULL;
	}
	return c;
}

MBX_EXPORT void
mbx_close(mbx_t *c)
{
	int err = errno;

	if (c == NULL)
		return;
	/* Taken messages are confirmed; held ones go back to the daemon. */
	session_end(c);
	net_deinit(&c->net);
	inbox_clear(&c->inbox);
	shm_deinit(&c->shm);
	chan_deinit(&c->chan);
	proto_writer_free(&c->out);
	free(c->unacked);
	free(c);
	errno = err;
}

MBX_EXPORT int
mbx_fd(const mbx_t *c)
{
	if (c == NULL)
		return mbx_fail(EINVAL);
	return c->net.fd;
}

MBX_EXPORT long
mbx_id(const mbx_t *c)
{
	if (c == NULL)
		return mbx_fail(EINVAL);
	return c->id;
}

/*
 * Message objects (mbx_msg_t): the buffers of the zero-copy calls.
 */

MBX_EXPORT mbx_msg_t *
mbx_msg_alloc(mbx_t *c, size_t len)
{
	if (c == NULL) {
		errno = EINVAL;
		return NULL;
	}
	return shm_alloc(&c->shm, len);
}

MBX_EXPORT void *
mbx_msg_data(mbx_msg_t *m)
{
	return m != NULL ? m->data : NULL;
}

MBX_EXPORT size_t
mbx_msg_len(const mbx_msg_t *m)
{
	return m != NULL ? m->len : 0;
}

MBX_EXPORT void
mbx_msg_free(mbx_msg_t *m)
{
	int err = errno;

	shm_free(m);
	errno = err;
}

