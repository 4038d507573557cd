/*
 * record.c - the records of a durable mailbox's log and of the restart
 * state (see record.h).
 */
#include <string.h>

#include "record.h"

uint32_t
record_crc32c(uint32_t crc, const void *data, size_t len)
{
	static uint32_t table[256];
	const uint8_t *p = data;

	/* Built on first use, always the same: a constant, not state. */
	if (table[1] == 0)
		for (uint32_t i = 0; i < 256; i++) {
			uint32_t c = i;

			for (int k = 0; k < 8; k++)
				c = (c >> 1) ^ (0x82f63b78u & (0u - (c & 1)));
			table[i] = c;
		}
	crc = ~crc;
	while (len-- > 0)
		crc = table[(crc ^ *p++) & 0xff] ^ (crc >> 8);
	return ~crc;
}

static void
le32_at(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static uint32_t
le32_from(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	    (uint32_t)p[3] << 24;
}

static size_t
record_begin(struct proto_writer *w, enum record_type type)
{
	size_t start = w->len;
	uint8_t *p = proto_put_raw(w, RECORD_HEAD + 1);

	if (p != NULL)
		p[RECORD_HEAD] = (uint8_t)type;
	return start;
}

static bool
record_end(struct proto_writer *w, size_t start)
{
	uint32_t len;

	if (proto_writer_failed(w) || w->len - start - RECORD_HEAD > UINT32_MAX) {
		w->len = start;
		w->failed = false;
		return false;
	}
	len = (uint32_t)(w->len - start - RECORD_HEAD);
	le32_at(w->buf + start, len);
	le32_at(w->buf + start + 4, record_crc32c(0, w->buf + start +
	    RECORD_HEAD, len));
	return true;
}

bool
record_put(struct proto_writer *w, uint8_t type, const void *body,
    size_t len)
{
	size_t start = record_begin(w, (enum record_type)type);
	uint8_t *p = proto_put_raw(w, len);

	if (p != NULL && len > 0)
		memcpy(p, body, len);
	return record_end(w, start);
}

/* ATTR's body, also part of MAILBOX's. */
static void
record_attr_body_put(struct proto_writer *w, const struct record_attr *a)
{
	proto_put_i64(w, a->capacity);
	proto_put_u64(w, a->max_msg);
	proto_put_u32(w, a->mode);
	proto_put_u32(w, a->uid);
	proto_put_u32(w, a->gid);
	proto_put_u32(w, a->max_attempts);
	proto_put_u32(w, a->ack_timeout_ms);
	proto_put_str(w, a->dead_letter.ptr, a->dead_letter.len);
}

bool
record_attr_put(struct proto_writer *w, const struct record_attr *a)
{
	size_t start = record_begin(w, RECORD_ATTR);

	record_attr_body_put(w, a);
	return record_end(w, start);
}

bool
record_state_put(struct proto_writer *w, const struct record_state *s)
{
	size_t start = record_begin(w, RECORD_STATE);

	proto_put_u32(w, s->major);
	proto_put_u32(w, s->minor);
	proto_put_u64(w, s->next_peer_id);
	proto_put_u64(w, s->next_mailbox_id);
	proto_put_u64(w, s->next_msg_id);
	return record_end(w, start);
}

bool
record_mailbox_put(struct proto_writer *w, const struct record_mailbox *m)
{
	size_t start = record_begin(w, RECORD_MAILBOX);

	proto_put_str(w, m->name.ptr, m->name.len);
	record_attr_body_put(w, &m->attr);
	proto_put_u64(w, m->sent);
	proto_put_u64(w, m->received);
	proto_put_u64(w, m->redelivered);
	proto_put_u64(w, m->dead);
	return record_end(w, start);
}

bool
record_delay_put(struct proto_writer *w, uint64_t due_ms)
{
	size_t start = record_begin(w, RECORD_DELAY);

	proto_put_u64(w, due_ms);
	return record_end(w, start);
}

bool
record_count_put(struct proto_writer *w, uint64_t mailboxes,
    uint64_t messages)
{
	size_t start = record_begin(w, RECORD_COUNT);

	proto_put_u64(w, mailboxes);
	proto_put_u64(w, messages);
	return record_end(w, start);
}

bool
record_msg_put(struct proto_writer *w, const struct record_msg *m)
{
	size_t start = record_begin(w, RECORD_PUT);

	proto_put_u64(w, m->seq);
	proto_put_u64(w, m->sender_id);
	proto_put_u32(w, m->pid);
	proto_put_u32(w, m->uid);
	proto_put_u32(w, m->attempts);
	proto_put_str(w, m->origin.ptr, m->origin.len);
	proto_put_u32(w, m->origin_attempts);
	proto_put_blob(w, m->payload.ptr, m->payload.len);
	return record_end(w, start);
}

bool
record_del_put(struct proto_writer *w, uint64_t seq)
{
	size_t start = record_begin(w, RECORD_DEL);

	proto_put_u64(w, seq);
	return record_end(w, start);
}

bool
record_hand_put(struct proto_writer *w, uint64_t seq, uint32_t attempts)
{
	size_t start = record_begin(w, RECORD_HAND);

	proto_put_u64(w, seq);
	proto_put_u32(w, attempts);
	return record_end(w, start);
}

enum record_read
record_next(const uint8_t *buf, uint64_t size, uint64_t *off, uint8_t *type,
    const uint8_t **body, size_t *len)
{
	uint64_t at = *off;
	uint32_t n, crc;

	if (at >= size)
		return RECORD_END;
	if (size - at < RECORD_HEAD + 1)
		return RECORD_TORN;
	n = le32_from(buf + at);
	crc = le32_from(buf + at + 4);
	if (n == 0 || n > size - at - RECORD_HEAD ||
	    record_crc32c(0, buf + at + RECORD_HEAD, n) != crc)
		return RECORD_TORN;
	*type = buf[at + RECORD_HEAD];
	*body = buf + at + RECORD_HEAD + 1;
	*len = n - 1;
	*off = at + RECORD_HEAD + n;
	return RECORD_OK;
}

/* ATTR's body from r; false when its values are not a mailbox's. */
static bool
record_attr_body_get(struct proto_reader *r, struct record_attr *a)
{
	a->capacity = proto_get_i64(r);
	a->max_msg = proto_get_u64(r);
	a->mode = proto_get_u32(r);
	a->uid = proto_get_u32(r);
	a->gid = proto_get_u32(r);
	a->max_attempts = proto_get_u32(r);
	a->ack_timeout_ms = proto_get_u32(r);
	a->dead_letter = proto_get_str(r);
	return a->capacity >= -1 && (a->mode & ~0777u) == 0 &&
	    a->max_msg > 0 && (a->dead_letter.len == 0 ||
	    proto_name_valid(a->dead_letter.ptr, a->dead_letter.len));
}

bool
record_attr_get(const uint8_t *body, size_t len, struct record_attr *a)
{
	struct proto_reader r;
	bool ok;

	proto_reader_init(&r, body, len);
	ok = record_attr_body_get(&r, a);
	return proto_reader_done(&r) && ok;
}

bool
record_state_get(const uint8_t *body, size_t len, struct record_state *s)
{
	struct proto_reader r;

	memset(s, 0, sizeof(*s));
	proto_reader_init(&r, body, len);
	/* The version comes first in every major: the rest may differ. */
	s->major = proto_get_u32(&r);
	s->minor = proto_get_u32(&r);
	if (r.bad || s->major != RECORD_STATE_MAJOR)
		return !r.bad;
	s->next_peer_id = proto_get_u64(&r);
	s->next_mailbox_id = proto_get_u64(&r);
	s->next_msg_id = proto_get_u64(&r);
	/* A newer minor may add fields at the end: they are skipped. */
	return s->minor > RECORD_STATE_MINOR ? !r.bad : proto_reader_done(&r);
}

bool
record_mailbox_get(const uint8_t *body, size_t len, struct record_mailbox *m)
{
	struct proto_reader r;
	bool ok;

	proto_reader_init(&r, body, len);
	m->name = proto_get_str(&r);
	ok = record_attr_body_get(&r, &m->attr);
	m->sent = proto_get_u64(&r);
	m->received = proto_get_u64(&r);
	m->redelivered = proto_get_u64(&r);
	m->dead = proto_get_u64(&r);
	return proto_reader_done(&r) && ok &&
	    proto_name_valid(m->name.ptr, m->name.len);
}

bool
record_delay_get(const uint8_t *body, size_t len, uint64_t *due_ms)
{
	struct proto_reader r;

	proto_reader_init(&r, body, len);
	*due_ms = proto_get_u64(&r);
	return proto_reader_done(&r);
}

bool
record_count_get(const uint8_t *body, size_t len, uint64_t *mailboxes,
    uint64_t *messages)
{
	struct proto_reader r;

	proto_reader_init(&r, body, len);
	*mailboxes = proto_get_u64(&r);
	*messages = proto_get_u64(&r);
	return proto_reader_done(&r);
}

bool
record_msg_get(const uint8_t *body, size_t len, struct record_msg *m)
{
	struct proto_reader r;

	proto_reader_init(&r, body, len);
	m->seq = proto_get_u64(&r);
	m->sender_id = proto_get_u64(&r);
	m->pid = proto_get_u32(&r);
	m->uid = proto_get_u32(&r);
	m->attempts = proto_get_u32(&r);
	m->origin = proto_get_str(&r);
	m->origin_attempts = proto_get_u32(&r);
	m->payload = proto_get_blob(&r);
	return proto_reader_done(&r) && m->seq != 0;
}

bool
record_del_get(const uint8_t *body, size_t len, uint64_t *seq)
{
	struct proto_reader r;

	proto_reader_init(&r, body, len);
	*seq = proto_get_u64(&r);
	return proto_reader_done(&r);
}

bool
record_hand_get(const uint8_t *body, size_t len, uint64_t *seq,
    uint32_t *attempts)
{
	struct proto_reader r;

	proto_reader_init(&r, body, len);
	*seq = proto_get_u64(&r);
	*attempts = proto_get_u32(&r);
	return proto_reader_done(&r);
}
