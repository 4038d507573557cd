/*
 * mbx-admin.c - mailbox administration in libmbx: create, destroy, bind,
 * unbind, evict, rebind, chmod, chown, purge, and the LIST and CLIENTS
 * views (see mbx.h).  Each call is one request whose body is encoded
 * here, answered by a status (the views: by pages of JSON).  Not to be
 * confused with daemon/admin.c, which writes those pages.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "body.h"
#include "mbx-int.h"
#include "mbx.h"
#include "proto.h"
#include "mbx-session.h"

/* A request whose body is just a name. */
static int
admin_name_request(struct mbx *c, uint16_t type, uint32_t flags,
    const char *name)
{
	struct body_name b = { .name = mbx_str(name) };
	uint32_t id;

	session_req_begin(c);
	body_name_put(&c->out, &b);
	if ((id = session_req_end(c, type, flags, 0)) == 0)
		return -1;
	return session_call_status(c, id, NULL, 0);
}

MBX_EXPORT void
mbx_attr_init(struct mbx_attr *a)
{
	if (a == NULL)
		return;
	memset(a, 0, sizeof(*a));
	a->capacity = MBX_DEFAULT_CAPACITY;
	a->max_msg = MBX_DEFAULT_MAX_MSG;
	a->gid = (gid_t)-1;
}

MBX_EXPORT int
mbx_create(mbx_t *c, const char *name, const struct mbx_attr *a)
{
	struct body_create b;
	struct mbx_attr def;
	uint32_t id;

	if (c == NULL || !mbx_name_ok(name))
		return mbx_fail(EINVAL);
	if (a == NULL) {
		mbx_attr_init(&def);
		a = &def;
	}
	/* What the wire cannot carry; the rest is the daemon's to judge. */
	if (a->max_attempts < 0 || a->max_attempts > (long)UINT32_MAX ||
	    a->ack_timeout_ms < 0 || a->ack_timeout_ms > (long)UINT32_MAX ||
	    (a->dead_letter != NULL && !mbx_name_ok(a->dead_letter)))
		return mbx_fail(EINVAL);
	b = (struct body_create){
		.name = mbx_str(name),
		.capacity = a->capacity,
		.max_msg = a->max_msg,
		.mode = a->mode,
		.gid = a->gid == (gid_t)-1 ? PROTO_ID_NONE : (uint32_t)a->gid,
		.max_attempts = (uint32_t)a->max_attempts,
		.ack_timeout_ms = (uint32_t)a->ack_timeout_ms,
		.dead_letter = a->dead_letter != NULL ?
		    mbx_str(a->dead_letter) : (struct proto_str){ "", 0 },
		.durable = a->durable != 0,
	};
	session_req_begin(c);
	body_create_put(&c->out, &b);
	if ((id = session_req_end(c, PROTO_CREATE, body_create_flags(&b),
	    0)) == 0)
		return -1;
	return session_call_status(c, id, NULL, 0);
}

MBX_EXPORT int
mbx_destroy(mbx_t *c, const char *name)
{
	if (c == NULL || !mbx_name_ok(name))
		return mbx_fail(EINVAL);
	return admin_name_request(c, PROTO_DESTROY, 0, name);
}

MBX_EXPORT int
mbx_bind(mbx_t *c, const char *name, int how)
{
	struct body_bind b;
	uint32_t id;

	if (c == NULL || !mbx_name_ok(name))
		return mbx_fail(EINVAL);
	b.name = mbx_str(name);
	switch (how) {
	case MBX_BIND_EXCLUSIVE:
		b.how = PROTO_BIND_EXCLUSIVE;
		break;
	case MBX_BIND_REPLACE:
		b.how = PROTO_BIND_REPLACE;
		break;
	case MBX_BIND_QUEUE:
		b.how = PROTO_BIND_QUEUE;
		break;
	default:
		return mbx_fail(EINVAL);
	}
	/* Before its first receive, so that receive is one round trip. */
	if (session_channel_for_receives(c) == -1)
		return -1;
	session_req_begin(c);
	body_bind_put(&c->out, &b);
	if ((id = session_req_end(c, PROTO_BIND, 0, 0)) == 0)
		return -1;
	return session_call_status(c, id, NULL, 0);
}

MBX_EXPORT int
mbx_unbind(mbx_t *c, const char *name)
{
	if (c == NULL || !mbx_name_ok(name))
		return mbx_fail(EINVAL);
	return admin_name_request(c, PROTO_UNBIND, 0, name);
}

MBX_EXPORT int
mbx_evict(mbx_t *c, const char *name)
{
	if (c == NULL || !mbx_name_ok(name))
		return mbx_fail(EINVAL);
	return admin_name_request(c, PROTO_UNBIND, PROTO_UNBIND_EVICT, name);
}

MBX_EXPORT int
mbx_chmod(mbx_t *c, const char *name, unsigned mode)
{
	struct body_chmod b;
	uint32_t id;

	if (c == NULL || !mbx_name_ok(name) || mode > 0777)
		return mbx_fail(EINVAL);
	b = (struct body_chmod){ .name = mbx_str(name), .mode = mode };
	session_req_begin(c);
	body_chmod_put(&c->out, &b);
	if ((id = session_req_end(c, PROTO_CHMOD, 0, 0)) == 0)
		return -1;
	return session_call_status(c, id, NULL, 0);
}

MBX_EXPORT int
mbx_chown(mbx_t *c, const char *name, uid_t uid, gid_t gid)
{
	struct body_chown b;
	uint32_t id;

	if (c == NULL || !mbx_name_ok(name))
		return mbx_fail(EINVAL);
	b = (struct body_chown){
		.name = mbx_str(name),
		.uid = uid == (uid_t)-1 ? PROTO_ID_NONE : (uint32_t)uid,
		.gid = gid == (gid_t)-1 ? PROTO_ID_NONE : (uint32_t)gid,
	};
	session_req_begin(c);
	body_chown_put(&c->out, &b);
	if ((id = session_req_end(c, PROTO_CHOWN, 0, 0)) == 0)
		return -1;
	return session_call_status(c, id, NULL, 0);
}

MBX_EXPORT int
mbx_purge(mbx_t *c, const char *name)
{
	if (c == NULL || !mbx_name_ok(name))
		return mbx_fail(EINVAL);
	return admin_name_request(c, PROTO_PURGE, 0, name);
}

MBX_EXPORT int
mbx_rebind(mbx_t *c, const char *name, long client_id)
{
	struct body_rebind b;
	uint32_t id;

	/* Client ids are positive; anything else cannot name a client. */
	if (c == NULL || !mbx_name_ok(name) || client_id <= 0)
		return mbx_fail(EINVAL);
	b = (struct body_rebind){ .name = mbx_str(name),
	    .client_id = (uint64_t)client_id };
	session_req_begin(c);
	body_rebind_put(&c->out, &b);
	if ((id = session_req_end(c, PROTO_REBIND, 0, 0)) == 0)
		return -1;
	return session_call_status(c, id, NULL, 0);
}

/*
 * LIST and CLIENTS: the daemon answers a page at a time (a REPLY with
 * PROTO_REPLY_MORE ends with the cursor of the next); the pages together
 * are one JSON text, returned NUL-terminated.
 */
static int
admin_json_request(struct mbx *c, uint16_t type, char **json)
{
	char cursor[PROTO_NAME_MAX + 1];
	size_t cursor_len = 0, len = 0, cap = 0;
	struct answer a;
	struct body_list req;
	struct body_reply_page page;
	uint32_t id, status;
	char *s = NULL, *grown;

	if (c == NULL || json == NULL)
		return mbx_fail(EINVAL);
	do {
		req = (struct body_list){ .has_cursor = cursor_len > 0,
		    .cursor = { cursor, cursor_len } };
		session_req_begin(c);
		body_list_put(&c->out, &req);
		if ((id = session_req_end(c, type, 0, 0)) == 0 ||
		    session_call(c, id, NULL, 0, &a) == -1 ||
		    session_reply_status(c, &a, &status) == -1)
			goto fail;
		if (status != PROTO_OK) {
			free(s);
			return session_status_fail(c, status);
		}
		/* The caller gets a C string: a NUL inside would cut it short. */
		if (!body_reply_page_get(a.body, a.h.len, a.h.flags, &page) ||
		    memchr(page.json.ptr, 0, page.json.len) != NULL ||
		    (page.more && (page.cursor.len == 0 ||
		    page.cursor.len > PROTO_NAME_MAX))) {
			free(s);
			return net_break(&c->net, EPROTO);
		}
		/* Doubling: a view of many pages is copied a few times only. */
		if (len + page.json.len + 1 > cap) {
			size_t want = cap > 0 ? cap : 4096;

			while (want < len + page.json.len + 1)
				want *= 2;
			if ((grown = realloc(s, want)) == NULL)
				goto fail;
			s = grown;
			cap = want;
		}
		memcpy(s + len, page.json.ptr, page.json.len);
		len += page.json.len;
		s[len] = '\0';
		memcpy(cursor, page.cursor.ptr, page.cursor.len);
		cursor_len = page.cursor.len;
	} while (page.more);
	*json = s;
	return 0;
fail:
	free(s);
	return -1;
}

MBX_EXPORT int
mbx_list(mbx_t *c, char **json)
{
	return admin_json_request(c, PROTO_LIST, json);
}

MBX_EXPORT int
mbx_clients(mbx_t *c, char **json)
{
	return admin_json_request(c, PROTO_CLIENTS, json);
}

