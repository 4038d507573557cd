/*
 * body.c - the encoder and the decoder of every frame body (see body.h),
 * written side by side so that each pair reads the fields in the order
 * the other writes them.  Built on the field helpers of proto.c; no I/O.
 */
#include "body.h"

/* A blob's length alone, its bytes left to the caller (the _put_head()s). */
static void
body_put_blob_len(struct proto_writer *w, size_t len)
{
	if (len > UINT32_MAX) {
		w->failed = true;
		return;
	}
	proto_put_u32(w, (uint32_t)len);
}

static void
body_put_name(struct proto_writer *w, struct proto_str s)
{
	proto_put_str(w, s.ptr, s.len);
}

/*
 * The tail that SEND, POST and MSG share: the payload inline, or its size
 * when it is in a memfd.
 */
static void
body_put_payload(struct proto_writer *w, bool has_fd, uint64_t size,
    struct proto_str payload, bool head)
{
	if (has_fd)
		proto_put_u64(w, size);
	else if (head)
		body_put_blob_len(w, payload.len);
	else
		proto_put_blob(w, payload.ptr, payload.len);
}

static void
body_get_payload(struct proto_reader *r, bool has_fd, uint64_t *size,
    struct proto_str *payload)
{
	if (has_fd) {
		*size = proto_get_u64(r);
		*payload = (struct proto_str){ "", 0 };
	} else {
		*payload = proto_get_blob(r);
		*size = payload->len;
	}
}

void
body_hello_put(struct proto_writer *w, const struct body_hello *b)
{
	proto_put_u32(w, b->version);
}

bool
body_hello_get(const void *body, size_t len, uint32_t flags,
    struct body_hello *out)
{
	struct proto_reader r;

	(void)flags;
	proto_reader_init(&r, body, len);
	out->version = proto_get_u32(&r);
	return proto_reader_done(&r);
}

void
body_create_put(struct proto_writer *w, const struct body_create *b)
{
	body_put_name(w, b->name);
	proto_put_i64(w, b->capacity);
	proto_put_u64(w, b->max_msg);
	proto_put_u32(w, b->mode);
	proto_put_u32(w, b->gid);
	proto_put_u32(w, b->max_attempts);
	proto_put_u32(w, b->ack_timeout_ms);
	body_put_name(w, b->dead_letter);
}

uint32_t
body_create_flags(const struct body_create *b)
{
	return b->durable ? PROTO_CREATE_DURABLE : 0;
}

bool
body_create_get(const void *body, size_t len, uint32_t flags,
    struct body_create *out)
{
	struct proto_reader r;

	if ((flags & ~PROTO_CREATE_DURABLE) != 0)
		return false;
	out->durable = (flags & PROTO_CREATE_DURABLE) != 0;
	proto_reader_init(&r, body, len);
	out->name = proto_get_str(&r);
	out->capacity = proto_get_i64(&r);
	out->max_msg = proto_get_u64(&r);
	out->mode = proto_get_u32(&r);
	out->gid = proto_get_u32(&r);
	out->max_attempts = proto_get_u32(&r);
	out->ack_timeout_ms = proto_get_u32(&r);
	out->dead_letter = proto_get_str(&r);
	return proto_reader_done(&r);
}

void
body_name_put(struct proto_writer *w, const struct body_name *b)
{
	body_put_name(w, b->name);
}

bool
body_name_get(const void *body, size_t len, uint32_t flags,
    struct body_name *out)
{
	struct proto_reader r;

	(void)flags;
	proto_reader_init(&r, body, len);
	out->name = proto_get_str(&r);
	return proto_reader_done(&r);
}

void
body_bind_put(struct proto_writer *w, const struct body_bind *b)
{
	body_put_name(w, b->name);
	proto_put_u32(w, b->how);
}

bool
body_bind_get(const void *body, size_t len, uint32_t flags,
    struct body_bind *out)
{
	struct proto_reader r;

	(void)flags;
	proto_reader_init(&r, body, len);
	out->name = proto_get_str(&r);
	out->how = proto_get_u32(&r);
	return proto_reader_done(&r);
}

static void
body_send_write(struct proto_writer *w, const struct body_send *b, bool head)
{
	body_put_name(w, b->name);
	proto_put_i32(w, b->timeout_ms);
	body_put_payload(w, b->has_fd, b->size, b->payload, head);
}

void
body_send_put(struct proto_writer *w, const struct body_send *b)
{
	body_send_write(w, b, false);
}

void
body_send_put_head(struct proto_writer *w, const struct body_send *b)
{
	body_send_write(w, b, true);
}

bool
body_send_get(const void *body, size_t len, uint32_t flags,
    struct body_send *out)
{
	struct proto_reader r;

	proto_reader_init(&r, body, len);
	out->has_fd = (flags & PROTO_SEND_FD) != 0;
	out->name = proto_get_str(&r);
	out->timeout_ms = proto_get_i32(&r);
	body_get_payload(&r, out->has_fd, &out->size, &out->payload);
	return proto_reader_done(&r);
}

void
body_recv_put(struct proto_writer *w, const struct body_recv *b)
{
	body_put_name(w, b->name);
	proto_put_i32(w, b->timeout_ms);
	proto_put_u64(w, b->cap);
	proto_put_u32(w, b->max_count);
	proto_put_u64(w, b->budget);
}

bool
body_recv_get(const void *body, size_t len, uint32_t flags,
    struct body_recv *out)
{
	struct proto_reader r;

	if ((flags & ~PROTO_RECV_ACK) != 0)
		return false;
	out->explicit_ack = (flags & PROTO_RECV_ACK) != 0;
	proto_reader_init(&r, body, len);
	out->name = proto_get_str(&r);
	out->timeout_ms = proto_get_i32(&r);
	out->cap = proto_get_u64(&r);
	out->max_count = proto_get_u32(&r);
	out->budget = proto_get_u64(&r);
	return proto_reader_done(&r);
}

void
body_ack_put(struct proto_writer *w, const struct body_ack *b)
{
	for (size_t i = 0; i < b->count; i++)
		proto_put_u64(w, b->ids[i]);
}

bool
body_ack_get(const void *body, size_t len, uint32_t flags,
    struct body_ack *out)
{
	(void)flags;
	out->ids = NULL;
	out->wire = body;
	out->count = len / 8;
	return len > 0 && len % 8 == 0;
}

uint64_t
body_ack_id(const struct body_ack *b, size_t i)
{
	struct proto_reader r;

	proto_reader_init(&r, b->wire + 8 * i, 8);
	return proto_get_u64(&r);
}

void
body_rebind_put(struct proto_writer *w, const struct body_rebind *b)
{
	body_put_name(w, b->name);
	proto_put_u64(w, b->client_id);
}

bool
body_rebind_get(const void *body, size_t len, uint32_t flags,
    struct body_rebind *out)
{
	struct proto_reader r;

	(void)flags;
	proto_reader_init(&r, body, len);
	out->name = proto_get_str(&r);
	out->client_id = proto_get_u64(&r);
	return proto_reader_done(&r);
}

void
body_list_put(struct proto_writer *w, const struct body_list *b)
{
	if (b->has_cursor)
		body_put_name(w, b->cursor);
}

bool
body_list_get(const void *body, size_t len, uint32_t flags,
    struct body_list *out)
{
	struct proto_reader r;

	(void)flags;
	proto_reader_init(&r, body, len);
	out->has_cursor = len > 0;
	out->cursor = out->has_cursor ? proto_get_str(&r) :
	    (struct proto_str){ "", 0 };
	return proto_reader_done(&r);
}

void
body_chmod_put(struct proto_writer *w, const struct body_chmod *b)
{
	body_put_name(w, b->name);
	proto_put_u32(w, b->mode);
}

bool
body_chmod_get(const void *body, size_t len, uint32_t flags,
    struct body_chmod *out)
{
	struct proto_reader r;

	(void)flags;
	proto_reader_init(&r, body, len);
	out->name = proto_get_str(&r);
	out->mode = proto_get_u32(&r);
	return proto_reader_done(&r);
}

void
body_chown_put(struct proto_writer *w, const struct body_chown *b)
{
	body_put_name(w, b->name);
	proto_put_u32(w, b->uid);
	proto_put_u32(w, b->gid);
}

bool
body_chown_get(const void *body, size_t len, uint32_t flags,
    struct body_chown *out)
{
	struct proto_reader r;

	(void)flags;
	proto_reader_init(&r, body, len);
	out->name = proto_get_str(&r);
	out->uid = proto_get_u32(&r);
	out->gid = proto_get_u32(&r);
	return proto_reader_done(&r);
}

void
body_sendv_put(struct proto_writer *w, const struct body_sendv *b)
{
	proto_put_u32(w, b->count);
}

void
body_sendv_item_put(struct proto_writer *w, const struct body_sendv_item *it)
{
	body_put_name(w, it->name);
	proto_put_blob(w, it->payload.ptr, it->payload.len);
}

void
body_sendv_item_put_head(struct proto_writer *w,
    const struct body_sendv_item *it)
{
	body_put_name(w, it->name);
	body_put_blob_len(w, it->payload.len);
}

/*
 * Every item is read once here, so that body_sendv_next() cannot fail
 * and a caller acts on no item of a batch that turns out malformed.  A
 * count far above what the body holds stops at the end of the body: each
 * item takes at least 6 bytes.
 */
bool
body_sendv_get(const void *body, size_t len, uint32_t flags,
    struct body_sendv *out)
{
	struct proto_reader r;

	(void)flags;
	proto_reader_init(&r, body, len);
	out->count = proto_get_u32(&r);
	out->items = r;
	for (uint32_t i = 0; i < out->count && !r.bad; i++) {
		(void)proto_get_str(&r);
		(void)proto_get_blob(&r);
	}
	return proto_reader_done(&r);
}

bool
body_sendv_next(struct body_sendv *v, struct body_sendv_item *it)
{
	if (v->items.bad || v->items.left == 0)
		return false;
	it->name = proto_get_str(&v->items);
	it->payload = proto_get_blob(&v->items);
	return !v->items.bad;
}

static void
body_post_write(struct proto_writer *w, const struct body_post *b, bool head)
{
	proto_put_u64(w, b->mailbox_id);
	body_put_payload(w, b->has_fd, b->size, b->payload, head);
}

void
body_post_put(struct proto_writer *w, const struct body_post *b)
{
	body_post_write(w, b, false);
}

void
body_post_put_head(struct proto_writer *w, const struct body_post *b)
{
	body_post_write(w, b, true);
}

bool
body_post_get(const void *body, size_t len, uint32_t flags,
    struct body_post *out)
{
	struct proto_reader r;

	proto_reader_init(&r, body, len);
	out->has_fd = (flags & PROTO_POST_FD) != 0;
	out->mailbox_id = proto_get_u64(&r);
	body_get_payload(&r, out->has_fd, &out->size, &out->payload);
	return proto_reader_done(&r);
}

bool
body_reply_status(const void *body, size_t len, uint32_t *status)
{
	struct proto_reader r;

	proto_reader_init(&r, body, len);
	*status = proto_get_u32(&r);
	return !r.bad;
}

void
body_reply_put(struct proto_writer *w, const struct body_reply *b)
{
	proto_put_u32(w, b->status);
}

bool
body_reply_get(const void *body, size_t len, uint32_t flags,
    struct body_reply *out)
{
	struct proto_reader r;

	(void)flags;
	proto_reader_init(&r, body, len);
	out->status = proto_get_u32(&r);
	return proto_reader_done(&r);
}

void
body_reply_hello_put(struct proto_writer *w, const struct body_reply_hello *b)
{
	proto_put_u32(w, b->status);
	proto_put_u32(w, b->version);
	proto_put_u64(w, b->client_id);
}

bool
body_reply_hello_get(const void *body, size_t len, uint32_t flags,
    struct body_reply_hello *out)
{
	struct proto_reader r;

	(void)flags;
	proto_reader_init(&r, body, len);
	out->status = proto_get_u32(&r);
	out->version = proto_get_u32(&r);
	out->client_id = proto_get_u64(&r);
	return proto_reader_done(&r);
}

void
body_reply_page_put(struct proto_writer *w, const struct body_reply_page *b)
{
	proto_put_u32(w, b->status);
	if (b->status != PROTO_OK)
		return;
	proto_put_blob(w, b->json.ptr, b->json.len);
	if (b->more)
		body_put_name(w, b->cursor);
}

bool
body_reply_page_get(const void *body, size_t len, uint32_t flags,
    struct body_reply_page *out)
{
	struct proto_reader r;

	proto_reader_init(&r, body, len);
	out->status = proto_get_u32(&r);
	out->json = out->cursor = (struct proto_str){ "", 0 };
	out->more = false;
	if (!r.bad && out->status == PROTO_OK) {
		out->more = (flags & PROTO_REPLY_MORE) != 0;
		out->json = proto_get_blob(&r);
		if (out->more)
			out->cursor = proto_get_str(&r);
	}
	return proto_reader_done(&r);
}

void
body_reply_send_put(struct proto_writer *w, const struct body_reply_send *b)
{
	proto_put_u32(w, b->status);
	if (b->status != PROTO_OK || !b->has_grant)
		return;
	proto_put_u64(w, b->mailbox_id);
	proto_put_u32(w, b->count);
	proto_put_u64(w, b->bytes);
	proto_put_u64(w, b->max_msg);
}

/* With a grant or without, told apart by the length (4 or 32 bytes). */
bool
body_reply_send_get(const void *body, size_t len, uint32_t flags,
    struct body_reply_send *out)
{
	struct proto_reader r;

	(void)flags;
	proto_reader_init(&r, body, len);
	out->status = proto_get_u32(&r);
	out->has_grant = !r.bad && out->status == PROTO_OK && r.left > 0;
	out->mailbox_id = out->bytes = out->max_msg = 0;
	out->count = 0;
	if (out->has_grant) {
		out->mailbox_id = proto_get_u64(&r);
		out->count = proto_get_u32(&r);
		out->bytes = proto_get_u64(&r);
		out->max_msg = proto_get_u64(&r);
	}
	return proto_reader_done(&r);
}

void
body_reply_sendv_put(struct proto_writer *w, const struct body_reply_sendv *b)
{
	proto_put_u32(w, b->status);
	proto_put_u32(w, b->enqueued);
}

bool
body_reply_sendv_get(const void *body, size_t len, uint32_t flags,
    struct body_reply_sendv *out)
{
	struct proto_reader r;

	(void)flags;
	proto_reader_init(&r, body, len);
	out->status = proto_get_u32(&r);
	out->enqueued = proto_get_u32(&r);
	return proto_reader_done(&r);
}

void
body_reply_channel_put(struct proto_writer *w,
    const struct body_reply_channel *b)
{
	proto_put_u32(w, b->status);
	if (b->status == PROTO_OK)
		proto_put_u32(w, b->ring_size);
}

bool
body_reply_channel_get(const void *body, size_t len, uint32_t flags,
    struct body_reply_channel *out)
{
	struct proto_reader r;

	(void)flags;
	proto_reader_init(&r, body, len);
	out->status = proto_get_u32(&r);
	out->ring_size = out->status == PROTO_OK ? proto_get_u32(&r) : 0;
	return proto_reader_done(&r);
}

void
body_grant_check_put(struct proto_writer *w, const struct body_grant_check *b)
{
	proto_put_u64(w, b->from);
}

bool
body_grant_check_get(const void *body, size_t len, uint32_t flags,
    struct body_grant_check *out)
{
	struct proto_reader r;

	(void)flags;
	proto_reader_init(&r, body, len);
	out->from = proto_get_u64(&r);
	return proto_reader_done(&r);
}

void
body_reply_grant_check_put(struct proto_writer *w,
    const struct body_reply_grant_check *b)
{
	proto_put_u32(w, b->status);
	if (b->status != PROTO_OK)
		return;
	proto_put_u32(w, b->n);
	for (uint32_t i = 0; i < b->n && i < BODY_DROPPED_MAX; i++)
		proto_put_u64(w, b->pos[i]);
}

/* Positions rise: the asker matches them against its records in order. */
bool
body_reply_grant_check_get(const void *body, size_t len, uint32_t flags,
    struct body_reply_grant_check *out)
{
	struct proto_reader r;

	(void)flags;
	proto_reader_init(&r, body, len);
	out->status = proto_get_u32(&r);
	out->n = 0;
	if (out->status == PROTO_OK) {
		out->n = proto_get_u32(&r);
		if (out->n > BODY_DROPPED_MAX)
			return false;
		for (uint32_t i = 0; i < out->n; i++) {
			out->pos[i] = proto_get_u64(&r);
			if (i > 0 && out->pos[i] <= out->pos[i - 1])
				return false;
		}
	}
	return proto_reader_done(&r);
}

static void
body_msg_write(struct proto_writer *w, const struct body_msg *b, bool head)
{
	proto_put_u64(w, b->msg_id);
	body_put_name(w, b->mailbox);
	proto_put_u64(w, b->sender_id);
	proto_put_u32(w, b->pid);
	proto_put_u32(w, b->uid);
	proto_put_u32(w, b->attempt);
	body_put_name(w, b->origin);
	proto_put_u32(w, b->origin_attempts);
	body_put_payload(w, b->has_fd, b->size, b->payload, head);
}

void
body_msg_put(struct proto_writer *w, const struct body_msg *b)
{
	body_msg_write(w, b, false);
}

void
body_msg_put_head(struct proto_writer *w, const struct body_msg *b)
{
	body_msg_write(w, b, true);
}

bool
body_msg_get(const void *body, size_t len, uint32_t flags,
    struct body_msg *out)
{
	struct proto_reader r;

	proto_reader_init(&r, body, len);
	out->has_fd = (flags & PROTO_MSG_FD) != 0;
	out->msg_id = proto_get_u64(&r);
	out->mailbox = proto_get_str(&r);
	out->sender_id = proto_get_u64(&r);
	out->pid = proto_get_u32(&r);
	out->uid = proto_get_u32(&r);
	out->attempt = proto_get_u32(&r);
	out->origin = proto_get_str(&r);
	out->origin_attempts = proto_get_u32(&r);
	body_get_payload(&r, out->has_fd, &out->size, &out->payload);
	return proto_reader_done(&r);
}

void
body_revoke_put(struct proto_writer *w, const struct body_revoke *b)
{
	proto_put_u32(w, b->what);
	body_put_name(w, b->mailbox);
	proto_put_u64(w, b->mailbox_id);
	if (b->what == PROTO_REVOKE_MSG)
		proto_put_u64(w, b->msg_id);
}

bool
body_revoke_get(const void *body, size_t len, uint32_t flags,
    struct body_revoke *out)
{
	struct proto_reader r;

	(void)flags;
	proto_reader_init(&r, body, len);
	out->what = proto_get_u32(&r);
	out->mailbox = proto_get_str(&r);
	out->mailbox_id = proto_get_u64(&r);
	out->msg_id = out->what == PROTO_REVOKE_MSG ? proto_get_u64(&r) : 0;
	return proto_reader_done(&r);
}

void
body_nack_put(struct proto_writer *w, const struct body_nack *b)
{
	proto_put_u64(w, b->msg_id);
	proto_put_u32(w, b->delay_ms);
}

bool
body_nack_get(const void *body, size_t len, uint32_t flags,
    struct body_nack *out)
{
	struct proto_reader r;

	if ((flags & ~PROTO_ACK_REPLY) != 0)
		return false;
	out->reply = (flags & PROTO_ACK_REPLY) != 0;
	proto_reader_init(&r, body, len);
	out->msg_id = proto_get_u64(&r);
	out->delay_ms = proto_get_u32(&r);
	return proto_reader_done(&r) && out->delay_ms <= PROTO_NACK_DELAY_MAX;
}
