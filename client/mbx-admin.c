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

#include "mbx-int.h"
#include "mbx.h"
#include "proto.h"
#include "session.h"

/* A request whose body is just a name. */
static int
admin_name_request(struct mbx *c, uint16_t type, uint32_t flags,
    const char *name)
{
	uint32_t id;

	session_req_begin(c);
	session_req_put_name(c, name);
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
	struct mbx_attr def;
	uint32_t id;

	if (c == NULL || !mbx_name_ok(name))
		return mbx_fail(EINVAL);
	if (a == NULL) {
		mbx_attr_init(&def);
		a = &def;
	}
	/* Capacity and max_msg ranges are the daemon's to judge. */
	session_req_begin(c);
	session_req_put_name(c, name);
	proto_put_i64(&c->out, a->capacity);
	proto_put_u64(&c->out, a->max_msg);
	proto_put_u32(&c->out, a->mode);
	proto_put_u32(&c->out, a->gid == (gid_t)-1 ? PROTO_ID_NONE :
	    (uint32_t)a->gid);
	if ((id = session_req_end(c, PROTO_CREATE, 0, 0)) == 0)
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
	uint32_t id, mode;

	if (c == NULL || !mbx_name_ok(name))
		return mbx_fail(EINVAL);
	switch (how) {
	case MBX_BIND_EXCLUSIVE:
		mode = PROTO_BIND_EXCLUSIVE;
		break;
	case MBX_BIND_REPLACE:
		mode = PROTO_BIND_REPLACE;
		break;
	case MBX_BIND_QUEUE:
		mode = PROTO_BIND_QUEUE;
		break;
	default:
		return mbx_fail(EINVAL);
	}
	session_req_begin(c);
	session_req_put_name(c, name);
	proto_put_u32(&c->out, mode);
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
	uint32_t id;

	if (c == NULL || !mbx_name_ok(name) || mode > 0777)
		return mbx_fail(EINVAL);
	session_req_begin(c);
	session_req_put_name(c, name);
	proto_put_u32(&c->out, mode);
	if ((id = session_req_end(c, PROTO_CHMOD, 0, 0)) == 0)
		return -1;
	return session_call_status(c, id, NULL, 0);
}

MBX_EXPORT int
mbx_chown(mbx_t *c, const char *name, uid_t uid, gid_t gid)
{
	uint32_t id;

	if (c == NULL || !mbx_name_ok(name))
		return mbx_fail(EINVAL);
	session_req_begin(c);
	session_req_put_name(c, name);
	proto_put_u32(&c->out, uid == (uid_t)-1 ? PROTO_ID_NONE : (uint32_t)uid);
	proto_put_u32(&c->out, gid == (gid_t)-1 ? PROTO_ID_NONE : (uint32_t)gid);
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
	uint32_t id;

	/* Client ids are positive; anything else cannot name a client. */
	if (c == NULL || !mbx_name_ok(name) || client_id <= 0)
		return mbx_fail(EINVAL);
	session_req_begin(c);
	session_req_put_name(c, name);
	proto_put_u64(&c->out, (uint64_t)client_id);
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
	struct proto_str blob, next;
	uint32_t id, status;
	char *s = NULL, *grown;
	bool more;

	if (c == NULL || json == NULL)
		return mbx_fail(EINVAL);
	do {
		session_req_begin(c);
		if (cursor_len > 0)
			proto_put_str(&c->out, cursor, cursor_len);
		if ((id = session_req_end(c, type, 0, 0)) == 0 ||
		    session_call(c, id, NULL, 0, &a) == -1 ||
		    session_reply_status(c, &a, &status) == -1)
			goto fail;
		if (status != PROTO_OK) {
			free(s);
			return session_status_fail(c, status);
		}
		more = (a.h.flags & PROTO_REPLY_MORE) != 0;
		blob = proto_get_blob(&a.r);
		next = more ? proto_get_str(&a.r) : (struct proto_str){ "", 0 };
		/* The caller gets a C string: a NUL inside would cut it short. */
		if (!proto_reader_done(&a.r) ||
		    memchr(blob.ptr, 0, blob.len) != NULL ||
		    (more && (next.len == 0 || next.len > PROTO_NAME_MAX))) {
			free(s);
			return net_break(&c->net, EPROTO);
		}
		/* Doubling: a view of many pages is copied a few times only. */
		if (len + blob.len + 1 > cap) {
			size_t want = cap > 0 ? cap : 4096;

			while (want < len + blob.len + 1)
				want *= 2;
			if ((grown = realloc(s, want)) == NULL)
				goto fail;
			s = grown;
			cap = want;
		}
		memcpy(s + len, blob.ptr, blob.len);
		len += blob.len;
		s[len] = '\0';
		memcpy(cursor, next.ptr, next.len);
		cursor_len = next.len;
	} while (more);
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

