/*
 * proto.c - encoding and decoding of the mbx wire format (see proto.h and
 * PROTOCOL.md).  No I/O happens here.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "proto.h"

static const struct {
	uint32_t	status;
	int		err;
} status_map[] = {
	{ PROTO_OK, 0 },
	{ PROTO_ENOENT, ENOENT },
	{ PROTO_EEXIST, EEXIST },
	{ PROTO_EINVAL, EINVAL },
	{ PROTO_EAGAIN, EAGAIN },
	{ PROTO_ETIMEDOUT, ETIMEDOUT },
	{ PROTO_EMSGSIZE, EMSGSIZE },
	{ PROTO_EBUSY, EBUSY },
	{ PROTO_EPERM, EPERM },
	{ PROTO_EACCES, EACCES },
	{ PROTO_ENOBUFS, ENOBUFS },
	{ PROTO_EIDRM, EIDRM },
	{ PROTO_EPROTO, EPROTO },
	{ PROTO_ESHUTDOWN, ECONNRESET },
	{ PROTO_ESRCH, ESRCH },
	{ PROTO_ENOMEM, ENOMEM },
	{ PROTO_EDQUOT, EDQUOT },
	{ PROTO_EMFILE, EMFILE },
	{ PROTO_STALE, ESTALE },
	{ PROTO_EIO, EIO },
	{ PROTO_ENOSPC, ENOSPC },
};

int
proto_status_to_errno(uint32_t status)
{
	for (size_t i = 0; i < sizeof(status_map) / sizeof(status_map[0]); i++)
		if (status_map[i].status == status)
			return status_map[i].err;
	return EPROTO;
}

uint32_t
proto_errno_to_status(int err)
{
	if (err < 0)
		err = -err;
	if (err == ESHUTDOWN)
		return PROTO_ESHUTDOWN;
	for (size_t i = 0; i < sizeof(status_map) / sizeof(status_map[0]); i++)
		if (status_map[i].err == err)
			return status_map[i].status;
	return PROTO_EPROTO;
}

static uint16_t
get_le16(const uint8_t *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}

static uint32_t
get_le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	    (uint32_t)p[3] << 24;
}

static uint64_t
get_le64(const uint8_t *p)
{
	return (uint64_t)get_le32(p) | (uint64_t)get_le32(p + 4) << 32;
}

static void
put_le16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}

static void
put_le32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static void
put_le64(uint8_t *p, uint64_t v)
{
	put_le32(p, (uint32_t)v);
	put_le32(p + 4, (uint32_t)(v >> 32));
}

bool
proto_type_known(uint16_t type)
{
	return (type >= PROTO_HELLO && type <= PROTO_NACK) ||
	    (type >= PROTO_REPLY && type <= PROTO_WAKE);
}

enum proto_decode
proto_header_decode(const uint8_t *buf, size_t len, uint32_t max_body,
    struct proto_header *h)
{
	if (len < PROTO_HEADER_SIZE)
		return PROTO_DECODE_MORE;
	h->len = get_le32(buf);
	h->type = get_le16(buf + 4);
	h->nfds = get_le16(buf + 6);
	h->id = get_le32(buf + 8);
	h->flags = get_le32(buf + 12);
	if (max_body > PROTO_MAX_BODY)
		max_body = PROTO_MAX_BODY;
	if (h->len > max_body || h->nfds > PROTO_MAX_FDS ||
	    !proto_type_known(h->type))
		return PROTO_DECODE_MALFORMED;
	return PROTO_DECODE_OK;
}

void
proto_header_encode(uint8_t out[PROTO_HEADER_SIZE],
    const struct proto_header *h)
{
	put_le32(out, h->len);
	put_le16(out + 4, h->type);
	put_le16(out + 6, h->nfds);
	put_le32(out + 8, h->id);
	put_le32(out + 12, h->flags);
}

/* The length of the UTF-8 sequence of a printable character at s, or 0. */
static size_t
utf8_printable(const unsigned char *s, size_t left)
{
	size_t n;
	uint32_t cp;

	if (s[0] >= 0xc2 && s[0] <= 0xdf)
		n = 2;
	else if (s[0] >= 0xe0 && s[0] <= 0xef)
		n = 3;
	else if (s[0] >= 0xf0 && s[0] <= 0xf4)
		n = 4;
	else
		return 0;
	if (n > left)
		return 0;
	cp = s[0] & (0x7f >> n);
	for (size_t i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (s[i] & 0x3f);
	}
	/* Overlong forms, surrogates, beyond Unicode, C1 controls. */
	if ((n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000) ||
	    cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff) || cp < 0xa0)
		return 0;
	return n;
}

size_t
proto_escape(char *dst, size_t size, const char *src, size_t len)
{
	static const char hex[] = "0123456789abcdef";
	const unsigned char *s = (const unsigned char *)src;
	size_t o = 0;

	if (size == 0)
		return 0;
	for (size_t i = 0; i < len;) {
		unsigned char c = s[i];
		size_t n = c >= 0x80 ? utf8_printable(s + i, len - i) : 1;

		if (n == 0 || c < 0x20 || c == 0x7f || c == '\\') {
			if (size - o < 5)
				break;
			dst[o++] = '\\';
			dst[o++] = 'x';
			dst[o++] = hex[c >> 4];
			dst[o++] = hex[c & 15];
			i++;
			continue;
		}
		if (size - o < n + 1)
			break;
		memcpy(dst + o, s + i, n);
		o += n;
		i += n;
	}
	dst[o] = '\0';
	return o;
}

bool
proto_name_valid(const char *name, size_t len)
{
	if (len == 0 || len > PROTO_NAME_MAX)
		return false;
	for (size_t i = 0; i < len; i++) {
		char c = name[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		    (c >= '0' && c <= '9') || c == '.' || c == '_' ||
		    c == ':' || c == '/' || c == '-'))
			return false;
	}
	return true;
}

bool
proto_memfd_len(uint64_t size, size_t *len)
{
	uint64_t total;

	if (__builtin_add_overflow(size, (uint64_t)PROTO_SHARED_HEADER, &total) ||
	    total > SIZE_MAX || total > (uint64_t)INT64_MAX)
		return false;
	*len = (size_t)total;
	return true;
}

uint64_t
proto_direct_id(const char *name, size_t len)
{
	uint64_t id = 0;

	/* "@" plus at most 19 digits keeps the value below 2^63. */
	if (len < 2 || len > 20 || name[0] != '@' || name[1] == '0')
		return 0;
	for (size_t i = 1; i < len; i++) {
		if (name[i] < '0' || name[i] > '9')
			return 0;
		id = id * 10 + (uint64_t)(name[i] - '0');
	}
	return id;
}

void
proto_reader_init(struct proto_reader *r, const void *body, size_t len)
{
	r->p = body;
	r->left = len;
	r->bad = false;
}

/* Returns a pointer to the next n bytes, or NULL (and marks r bad). */
static const uint8_t *
take(struct proto_reader *r, size_t n)
{
	const uint8_t *p;

	if (r->bad || r->left < n) {
		r->bad = true;
		return NULL;
	}
	p = r->p;
	r->p += n;
	r->left -= n;
	return p;
}

uint32_t
proto_get_u32(struct proto_reader *r)
{
	const uint8_t *p = take(r, 4);

	return p ? get_le32(p) : 0;
}

uint64_t
proto_get_u64(struct proto_reader *r)
{
	const uint8_t *p = take(r, 8);

	return p ? get_le64(p) : 0;
}

int32_t
proto_get_i32(struct proto_reader *r)
{
	return (int32_t)proto_get_u32(r);
}

int64_t
proto_get_i64(struct proto_reader *r)
{
	return (int64_t)proto_get_u64(r);
}

static struct proto_str
get_sized(struct proto_reader *r, size_t len)
{
	struct proto_str s = { "", 0 };
	const uint8_t *p = take(r, len);

	if (p != NULL) {
		s.ptr = (const char *)p;
		s.len = len;
	}
	return s;
}

struct proto_str
proto_get_str(struct proto_reader *r)
{
	const uint8_t *p = take(r, 2);

	if (p == NULL)
		return (struct proto_str){ "", 0 };
	return get_sized(r, get_le16(p));
}

struct proto_str
proto_get_blob(struct proto_reader *r)
{
	const uint8_t *p = take(r, 4);

	if (p == NULL)
		return (struct proto_str){ "", 0 };
	return get_sized(r, get_le32(p));
}

bool
proto_reader_done(const struct proto_reader *r)
{
	return !r->bad && r->left == 0;
}

void
proto_writer_init(struct proto_writer *w)
{
	memset(w, 0, sizeof(*w));
}

void
proto_writer_fixed(struct proto_writer *w, void *buf, size_t cap)
{
	proto_writer_init(w);
	w->buf = buf;
	w->cap = cap;
	w->fixed = true;
}

void
proto_writer_free(struct proto_writer *w)
{
	if (!w->fixed)
		free(w->buf);
	proto_writer_init(w);
}

void
proto_writer_consume(struct proto_writer *w, size_t n)
{
	if (n >= w->len) {
		w->len = 0;
		return;
	}
	memmove(w->buf, w->buf + n, w->len - n);
	w->len -= n;
}

bool
proto_writer_failed(const struct proto_writer *w)
{
	return w->failed;
}

uint8_t *
proto_put_raw(struct proto_writer *w, size_t n)
{
	uint8_t *p;

	if (w->failed)
		return NULL;
	if (w->buf == NULL || n > w->cap - w->len) {
		size_t cap = w->cap ? w->cap : 256;

		if (w->fixed) {
			w->failed = true;
			return NULL;
		}
		while (cap - w->len < n) {
			if (cap > SIZE_MAX / 2) {
				w->failed = true;
				return NULL;
			}
			cap *= 2;
		}
		p = realloc(w->buf, cap);
		if (p == NULL) {
			w->failed = true;
			return NULL;
		}
		w->buf = p;
		w->cap = cap;
	}
	p = w->buf + w->len;
	w->len += n;
	return p;
}

void
proto_put_u32(struct proto_writer *w, uint32_t v)
{
	uint8_t *p = proto_put_raw(w, 4);

	if (p != NULL)
		put_le32(p, v);
}

void
proto_put_u64(struct proto_writer *w, uint64_t v)
{
	uint8_t *p = proto_put_raw(w, 8);

	if (p != NULL)
		put_le64(p, v);
}

void
proto_put_i32(struct proto_writer *w, int32_t v)
{
	proto_put_u32(w, (uint32_t)v);
}

void
proto_put_i64(struct proto_writer *w, int64_t v)
{
	proto_put_u64(w, (uint64_t)v);
}

void
proto_put_str(struct proto_writer *w, const char *s, size_t len)
{
	uint8_t *p;

	if (len > UINT16_MAX) {
		w->failed = true;
		return;
	}
	p = proto_put_raw(w, 2 + len);
	if (p != NULL) {
		put_le16(p, (uint16_t)len);
		if (len > 0)
			memcpy(p + 2, s, len);
	}
}

void
proto_put_blob(struct proto_writer *w, const void *data, size_t len)
{
	uint8_t *p;

	/* 4 + len must not wrap either (a 32-bit size_t). */
	if (len > UINT32_MAX || len > SIZE_MAX - 4) {
		w->failed = true;
		return;
	}
	p = proto_put_raw(w, 4 + len);
	if (p != NULL) {
		put_le32(p, (uint32_t)len);
		if (len > 0)
			memcpy(p + 4, data, len);
	}
}

void
proto_attach_fd(struct msghdr *mh, union proto_fd_control *buf, int fd)
{
	struct cmsghdr *cm;

	memset(buf, 0, sizeof(*buf));
	mh->msg_control = buf->buf;
	mh->msg_controllen = sizeof(buf->buf);
	cm = CMSG_FIRSTHDR(mh);
	cm->cmsg_level = SOL_SOCKET;
	cm->cmsg_type = SCM_RIGHTS;
	cm->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(cm), &fd, sizeof(int));
}

void
proto_attach_fds(struct msghdr *mh, union proto_fds_control *buf,
    const int *fds, unsigned n)
{
	struct cmsghdr *cm;

	if (n > PROTO_MAX_FDS)
		n = PROTO_MAX_FDS;
	memset(buf, 0, sizeof(*buf));
	mh->msg_control = buf->buf;
	mh->msg_controllen = CMSG_SPACE(n * sizeof(int));
	cm = CMSG_FIRSTHDR(mh);
	cm->cmsg_level = SOL_SOCKET;
	cm->cmsg_type = SCM_RIGHTS;
	cm->cmsg_len = CMSG_LEN(n * sizeof(int));
	memcpy(CMSG_DATA(cm), fds, n * sizeof(int));
}

size_t
proto_frame_begin(struct proto_writer *w)
{
	size_t start = w->len;

	proto_put_raw(w, PROTO_HEADER_SIZE);
	return start;
}

void
proto_frame_end(struct proto_writer *w, size_t start, uint16_t type,
    uint32_t id, uint32_t flags, uint16_t nfds)
{
	struct proto_header h;

	if (w->failed)
		return;
	h.len = (uint32_t)(w->len - start - PROTO_HEADER_SIZE);
	h.type = type;
	h.nfds = nfds;
	h.id = id;
	h.flags = flags;
	proto_header_encode(w->buf + start, &h);
}
