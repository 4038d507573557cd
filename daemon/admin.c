/*
 * admin.c - JSON views of the mailbox and client tables, page by page
 * (see admin.h).
 *
 * The text is written here rather than built as a tree: a page must end
 * between any two elements and say where to go on, and a tree of a
 * client standing by on thousands of mailboxes is what the pages are
 * there to avoid.  Strings are escaped by admin_put_str(), the one place
 * where bytes from outside (a command name) meet the output.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin.h"
#include "mailbox.h"

void
admin_page_free(struct admin_page *pg)
{
	free(pg->text);
	pg->text = NULL;
	pg->len = pg->cap = 0;
}

static void
admin_put(struct admin_page *pg, const char *s, size_t len)
{
	if (pg->failed || len == 0)
		return;
	if (pg->cap - pg->len < len) {
		size_t cap = pg->cap ? pg->cap : 4096;
		char *text;

		while (cap - pg->len < len)
			cap *= 2;
		if ((text = realloc(pg->text, cap)) == NULL) {
			pg->failed = true;
			return;
		}
		pg->text = text;
		pg->cap = cap;
	}
	memcpy(pg->text + pg->len, s, len);
	pg->len += len;
}

static void
admin_puts(struct admin_page *pg, const char *s)
{
	admin_put(pg, s, strlen(s));
}

static void __attribute__((format(printf, 2, 3)))
admin_printf(struct admin_page *pg, const char *fmt, ...)
{
	char buf[128];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (n > 0)
		admin_put(pg, buf, (size_t)n < sizeof(buf) ? (size_t)n :
		    sizeof(buf) - 1);
}

/* Length of the valid UTF-8 sequence at s (left bytes), or 0. */
static size_t
admin_utf8_len(const unsigned char *s, size_t left)
{
	size_t n;
	uint32_t cp;

	if (s[0] < 0x80)
		return 1;
	if (s[0] >= 0xc2 && s[0] <= 0xdf)
		n = 2, cp = s[0] & 0x1f;
	else if (s[0] >= 0xe0 && s[0] <= 0xef)
		n = 3, cp = s[0] & 0x0f;
	else if (s[0] >= 0xf0 && s[0] <= 0xf4)
		n = 4, cp = s[0] & 0x07;
	else
		return 0;
	if (n > left)
		return 0;
	for (size_t i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (s[i] & 0x3f);
	}
	/* Overlong forms, surrogates and beyond U+10FFFF are not UTF-8. */
	if ((n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000) ||
	    (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff)
		return 0;
	return n;
}

/*
 * A JSON string of len bytes: quotes, backslashes and control characters
 * escaped, and a byte that is not part of valid UTF-8 shown as the
 * character of its number (\u00XX), so the output is always valid JSON
 * and never carries a raw control byte to a terminal.
 */
static void
admin_put_str(struct admin_page *pg, const char *s, size_t len)
{
	const unsigned char *u = (const unsigned char *)s;
	size_t i = 0;

	admin_put(pg, "\"", 1);
	while (i < len) {
		size_t n = admin_utf8_len(u + i, len - i);

		if (n == 1 && u[i] >= 0x20 && u[i] != 0x7f && u[i] != '"' &&
		    u[i] != '\\') {
			admin_put(pg, s + i, 1);
		} else if (n == 1 && (u[i] == '"' || u[i] == '\\')) {
			admin_put(pg, "\\", 1);
			admin_put(pg, s + i, 1);
		} else if (n > 1) {
			admin_put(pg, s + i, n);
		} else {
			n = 1;
			admin_printf(pg, "\\u%04x", (unsigned)u[i]);
		}
		i += n;
	}
	admin_put(pg, "\"", 1);
}

/* The page is done, another follows from cursor. */
static void
admin_page_more(struct admin_page *pg, const char *cursor, size_t len)
{
	pg->more = true;
	memcpy(pg->cursor, cursor, len);
	pg->cursor[len] = '\0';
	pg->cursor_len = len;
}

static int
admin_page_end(struct admin_page *pg)
{
	if (!pg->more)
		admin_puts(pg, "]");
	if (pg->failed) {
		admin_page_free(pg);
		return -ENOMEM;
	}
	return 0;
}

/*
 * LIST: the mailboxes sorted by name; a cursor is the last name written.
 */

static int
mailbox_cmp(const void *a, const void *b)
{
	const struct mailbox *x = *(struct mailbox *const *)a;
	const struct mailbox *y = *(struct mailbox *const *)b;

	return strcmp(x->name, y->name);
}

static void
admin_put_mailbox(struct admin_page *pg, const struct mailbox *mb)
{
	admin_puts(pg, "{\"name\":");
	admin_put_str(pg, mb->name, mb->name_len);
	admin_printf(pg, ",\"owner\":%u,\"group\":%u,\"mode\":\"%04o\"",
	    (unsigned)mb->uid, (unsigned)mb->gid, (unsigned)mb->mode);
	admin_printf(pg, ",\"capacity\":%ld,\"max_msg\":%zu,\"queued\":%zu,"
	    "\"bytes\":%zu", mb->capacity, mb->max_msg,
	    mb->nqueued + mb->ninflight + mb->ndelayed, mb->bytes);
	admin_printf(pg, ",\"inflight\":%zu,\"delayed\":%zu,\"redelivered\":%"
	    PRIu64 ",\"dead\":%" PRIu64 ",\"max_attempts\":%" PRIu32
	    ",\"ack_timeout_ms\":%" PRIu32 ",\"dead_letter\":", mb->ninflight,
	    mb->ndelayed, mb->redelivered, mb->dead, mb->max_attempts,
	    mb->ack_timeout_ms);
	if (mb->dead_letter != NULL)
		admin_put_str(pg, mb->dead_letter, mb->dead_letter_len);
	else
		admin_puts(pg, "null");
	/* "failed": its log cannot be trusted, and its calls get EIO. */
	admin_printf(pg, ",\"durable\":%s,\"failed\":%s",
	    mb->durable ? "true" : "false", mb->failed ? "true" : "false");
	if (mb->receiver != NULL)
		admin_printf(pg, ",\"receiver\":%" PRIu64, mb->receiver->id);
	else
		admin_puts(pg, ",\"receiver\":null");
	admin_puts(pg, ",\"standby\":[");
	for (size_t i = 0; i < mb->standby.len; i++) {
		const struct peer *p = mb->standby.items[i];

		admin_printf(pg, "%s%" PRIu64, i > 0 ? "," : "", p->id);
	}
	admin_printf(pg, "],\"sent\":%" PRIu64 ",\"received\":%" PRIu64 "}",
	    mb->sent, mb->received);
}

int
admin_list_page(const struct broker *b, const char *cursor, size_t len,
    struct admin_page *pg)
{
	struct mailbox **all, *mb;
	char after[PROTO_NAME_MAX + 1];
	size_t n = 0, i, pos = 0;

	memset(pg, 0, sizeof(*pg));
	if (len > 0 && !proto_name_valid(cursor, len))
		return -EINVAL;
	memcpy(after, cursor, len);
	after[len] = '\0';
	if ((all = calloc(b->nnamed + 1, sizeof(*all))) == NULL)
		return -ENOMEM;
	while ((mb = table_next(&b->mailboxes, &pos)) != NULL)
		if (mb->owner == NULL && n < b->nnamed &&
		    (len == 0 || strcmp(mb->name, after) > 0))
			all[n++] = mb;
	qsort(all, n, sizeof(*all), mailbox_cmp);
	if (len == 0)
		admin_puts(pg, "[");
	for (i = 0; i < n && pg->len < ADMIN_PAGE_BYTES; i++) {
		if (i > 0 || len > 0)
			admin_puts(pg, ",");
		admin_put_mailbox(pg, all[i]);
	}
	if (i < n)
		admin_page_more(pg, all[i - 1]->name, all[i - 1]->name_len);
	free(all);
	return admin_page_end(pg);
}

/*
 * CLIENTS: the connections by id.  A cursor "ID/STAGE/INDEX" goes on
 * inside client ID: at its "bound" names from INDEX (stage 1), at its
 * "standby" names from INDEX (stage 2), or (stage 0) with the first
 * client after ID.
 */

enum { CLIENT_NEXT, CLIENT_BOUND, CLIENT_STANDBY };

static int
admin_parse_cursor(const char *cursor, size_t len, uint64_t *id,
    unsigned *stage, size_t *index)
{
	char buf[ADMIN_CURSOR_MAX + 1];
	unsigned long long v[3];
	char *p = buf, *end;

	/* The client's str may be 64 KiB; no cursor of ours is that long. */
	if (len > ADMIN_CURSOR_MAX)
		return -EINVAL;
	memcpy(buf, cursor, len);
	buf[len] = '\0';
	for (int i = 0; i < 3; i++) {
		if (*p < '0' || *p > '9')
			return -EINVAL;
		errno = 0;
		v[i] = strtoull(p, &end, 10);
		if (errno != 0 || *end != (i < 2 ? '/' : '\0'))
			return -EINVAL;
		p = end + 1;
	}
	if (v[1] > CLIENT_STANDBY || v[2] > SIZE_MAX)
		return -EINVAL;
	*id = v[0];
	*stage = (unsigned)v[1];
	*index = (size_t)v[2];
	return 0;
}

static void
admin_client_more(struct admin_page *pg, uint64_t id, unsigned stage,
    size_t index)
{
	char cursor[ADMIN_CURSOR_MAX + 1];
	int n = snprintf(cursor, sizeof(cursor), "%" PRIu64 "/%u/%zu", id,
	    stage, index);

	admin_page_more(pg, cursor, (size_t)n);
}

/*
 * Writes names[from...] of one of p's lists until the page is full;
 * false (and the cursor set) when it filled first.
 */
static bool
admin_put_names(struct admin_page *pg, const struct peer *p,
    const struct ptrvec *names, unsigned stage, size_t from)
{
	for (size_t i = from; i < names->len; i++) {
		const struct mailbox *mb = names->items[i];

		if (pg->len >= ADMIN_PAGE_BYTES) {
			admin_client_more(pg, p->id, stage, i);
			return false;
		}
		if (i > 0)
			admin_puts(pg, ",");
		admin_put_str(pg, mb->name, mb->name_len);
	}
	return true;
}

/* The rest of p's object from stage and index; false when the page filled. */
static bool
admin_put_client(struct admin_page *pg, const struct peer *p,
    unsigned stage, size_t index)
{
	if (stage == CLIENT_NEXT) {
		admin_printf(pg, "{\"id\":%" PRIu64 ",\"pid\":%d,\"uid\":%u,"
		    "\"gid\":%u,\"comm\":", p->id, (int)p->pid,
		    (unsigned)p->uid, (unsigned)p->gid);
		admin_put_str(pg, p->comm, strlen(p->comm));
		admin_printf(pg, ",\"output\":%" PRIu64 ",\"output_fds\":%u",
		    p->out_bytes, p->out_fds);
		admin_puts(pg, ",\"bound\":[");
		stage = CLIENT_BOUND;
		index = 0;
	}
	if (stage == CLIENT_BOUND) {
		if (!admin_put_names(pg, p, &p->bound, CLIENT_BOUND, index))
			return false;
		admin_puts(pg, "],\"standby\":[");
		index = 0;
	}
	if (!admin_put_names(pg, p, &p->standing, CLIENT_STANDBY, index))
		return false;
	admin_puts(pg, "]}");
	return true;
}

int
admin_clients_page(const struct broker *b, const char *cursor, size_t len,
    struct admin_page *pg)
{
	const struct peer *p;
	uint64_t id = 0;
	unsigned stage = CLIENT_NEXT;
	size_t index = 0;
	bool first = len == 0;

	memset(pg, 0, sizeof(*pg));
	if (len > 0 && admin_parse_cursor(cursor, len, &id, &stage,
	    &index) < 0)
		return -EINVAL;
	if (first)
		admin_puts(pg, "[");
	/* Peers join the list in the order of their ids. */
	TAILQ_FOREACH(p, &b->peers, entry)
		if (p->id >= id)
			break;
	if (stage != CLIENT_NEXT) {
		if (p != NULL && p->id == id) {
			if (!admin_put_client(pg, p, stage, index))
				return admin_page_end(pg);
			p = TAILQ_NEXT(p, entry);
		} else {
			/* Gone since the last page: close what was begun. */
			admin_puts(pg, stage == CLIENT_BOUND ?
			    "],\"standby\":[]}" : "]}");
		}
	} else if (p != NULL && p->id == id && !first) {
		p = TAILQ_NEXT(p, entry);
	}
	for (; p != NULL; p = TAILQ_NEXT(p, entry)) {
		if (pg->len >= ADMIN_PAGE_BYTES) {
			/* The clients up to id are whole: go on after it. */
			admin_client_more(pg, id, CLIENT_NEXT, 0);
			break;
		}
		if (!first || pg->len > 1)
			admin_puts(pg, ",");
		if (!admin_put_client(pg, p, CLIENT_NEXT, 0))
			break;
		id = p->id;
	}
	return admin_page_end(pg);
}
