/*
 * config.c - loading mbxd.json (see config.h and mbxd.json(5)).
 *
 * jansson parses the file and reports syntax errors with their position,
 * but its values carry no position.  For the errors found after parsing
 * (an unknown key, a value of the wrong kind) config_locate() walks the
 * text once more to the offending value, so that every error reads
 * file:line:column like a compiler's.
 */
#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stddef.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "broker.h"
#include "config.h"
#include "session.h"

/* One step of a path into the document: an object key or an array index. */
struct config_step {
	const char	*key;	/* NULL: index */
	size_t		 index;
};

#define CONFIG_DEPTH	4

struct config_ctx {
	const char	*path;
	const char	*text;
	size_t		 textlen;
	struct config_step steps[CONFIG_DEPTH];
	size_t		 depth;
	char		*err;
	size_t		 errlen;
};

/*
 * A minimal scanner over text that jansson has already accepted, so it
 * may assume well-formed JSON.
 */
struct scan {
	const char	*p;
	const char	*end;
};

static void
scan_ws(struct scan *s)
{
	while (s->p < s->end && (*s->p == ' ' || *s->p == '\t' ||
	    *s->p == '\n' || *s->p == '\r'))
		s->p++;
}

static void
scan_string(struct scan *s)
{
	for (s->p++; s->p < s->end && *s->p != '"'; s->p++)
		if (*s->p == '\\')
			s->p++;
	s->p++;
}

static void scan_value(struct scan *);

static void
scan_container(struct scan *s, char close)
{
	s->p++;
	for (;;) {
		scan_ws(s);
		if (s->p >= s->end || *s->p == close) {
			s->p++;
			return;
		}
		if (*s->p == ',' || *s->p == ':') {
			s->p++;
			continue;
		}
		scan_value(s);
	}
}

static void
scan_value(struct scan *s)
{
	scan_ws(s);
	if (s->p >= s->end)
		return;
	if (*s->p == '"')
		scan_string(s);
	else if (*s->p == '{')
		scan_container(s, '}');
	else if (*s->p == '[')
		scan_container(s, ']');
	else
		while (s->p < s->end && !strchr(",}] \t\r\n", *s->p))
			s->p++;
}

/* True when the string token at s->p spells key. */
static bool
scan_key_is(const struct scan *s, const char *key)
{
	size_t len = strlen(key);

	return s->p + len + 2 <= s->end && s->p[0] == '"' &&
	    memcmp(s->p + 1, key, len) == 0 && s->p[len + 1] == '"';
}

/* Moves s to the value at step inside the container at s->p. */
static bool
scan_step(struct scan *s, const struct config_step *step)
{
	size_t index = 0;
	bool object;

	scan_ws(s);
	if (s->p >= s->end || (*s->p != '{' && *s->p != '['))
		return false;
	object = *s->p == '{';
	s->p++;
	for (;;) {
		scan_ws(s);
		if (s->p >= s->end || *s->p == '}' || *s->p == ']')
			return false;
		if (object) {
			bool hit = step->key != NULL && scan_key_is(s, step->key);

			scan_string(s);
			scan_ws(s);
			s->p++;		/* ':' */
			scan_ws(s);
			if (hit)
				return true;
		} else if (step->key == NULL && index == step->index) {
			scan_ws(s);
			return true;
		}
		scan_value(s);
		index++;
		scan_ws(s);
		if (s->p < s->end && *s->p == ',')
			s->p++;
	}
}

/* Line and column (both from 1) of the value at the context's path. */
static void
config_locate(const struct config_ctx *ctx, int *line, int *col)
{
	struct scan s = { ctx->text, ctx->text + ctx->textlen };
	const char *p;

	for (size_t i = 0; i < ctx->depth; i++)
		if (!scan_step(&s, &ctx->steps[i]))
			break;
	scan_ws(&s);
	*line = 1;
	*col = 1;
	for (p = ctx->text; p < s.p && p < s.end; p++) {
		if (*p == '\n') {
			(*line)++;
			*col = 1;
		} else {
			(*col)++;
		}
	}
}

static int __attribute__((format(printf, 2, 3)))
config_error(const struct config_ctx *ctx, const char *fmt, ...)
{
	char reason[256];
	va_list ap;
	int line, col;

	va_start(ap, fmt);
	vsnprintf(reason, sizeof(reason), fmt, ap);
	va_end(ap);
	config_locate(ctx, &line, &col);
	snprintf(ctx->err, ctx->errlen, "%s:%d:%d: %s", ctx->path, line, col,
	    reason);
	return -1;
}

static void
config_push(struct config_ctx *ctx, const char *key, size_t index)
{
	if (ctx->depth < CONFIG_DEPTH) {
		ctx->steps[ctx->depth].key = key;
		ctx->steps[ctx->depth].index = index;
	}
	ctx->depth++;
}

static void
config_pop(struct config_ctx *ctx)
{
	ctx->depth--;
}

int
config_parse_size(const char *s, uint64_t *out)
{
	char *end;
	unsigned long long v;
	unsigned shift = 0;

	errno = 0;
	if (s[0] < '0' || s[0] > '9')
		return -1;
	v = strtoull(s, &end, 10);
	if (errno != 0 || end == s)
		return -1;
	switch (*end) {
	case 'K': case 'k': shift = 10; end++; break;
	case 'M': case 'm': shift = 20; end++; break;
	case 'G': case 'g': shift = 30; end++; break;
	}
	if (*end != '\0' || v > (UINT64_MAX >> shift))
		return -1;
	*out = (uint64_t)v << shift;
	return 0;
}

/* A size: a non-negative integer or a string such as "64M". */
static int
config_size(struct config_ctx *ctx, json_t *v, const char *key,
    uint64_t *out)
{
	config_push(ctx, key, 0);
	if (json_is_integer(v) && json_integer_value(v) >= 0) {
		*out = (uint64_t)json_integer_value(v);
	} else if (!json_is_string(v) ||
	    config_parse_size(json_string_value(v), out) < 0) {
		return config_error(ctx, "%s: expected a size in bytes such as "
		    "65536 or \"64K\", \"16M\", \"1G\"", key);
	}
	config_pop(ctx);
	return 0;
}

/* A size that must not be 0 (0 would read as "the default" inside). */
static int
config_positive_size(struct config_ctx *ctx, json_t *v, const char *key,
    uint64_t *out)
{
	if (config_size(ctx, v, key, out) < 0)
		return -1;
	if (*out == 0) {
		config_push(ctx, key, 0);
		return config_error(ctx, "%s: must be more than 0", key);
	}
	return 0;
}

/* Rejects any key of obj that is not in allowed (NULL-terminated). */
static int
config_known_keys(struct config_ctx *ctx, json_t *obj,
    const char *const *allowed)
{
	const char *key;
	json_t *v;

	json_object_foreach(obj, key, v) {
		size_t i;

		for (i = 0; allowed[i] != NULL; i++)
			if (strcmp(key, allowed[i]) == 0)
				break;
		if (allowed[i] == NULL) {
			config_push(ctx, key, 0);
			return config_error(ctx, "unknown key \"%s\"", key);
		}
	}
	return 0;
}

static int
config_expect_object(struct config_ctx *ctx, json_t *v, const char *what)
{
	if (!json_is_object(v))
		return config_error(ctx, "%s must be an object", what);
	return 0;
}

/* A user given by name or number. */
static int
config_user(struct config_ctx *ctx, json_t *v, const char *key, uid_t *out)
{
	config_push(ctx, key, 0);
	if (json_is_integer(v) && json_integer_value(v) >= 0 &&
	    json_integer_value(v) < (json_int_t)UINT32_MAX) {
		*out = (uid_t)json_integer_value(v);
	} else {
		struct passwd *pw = json_is_string(v) ?
		    getpwnam(json_string_value(v)) : NULL;

		if (pw == NULL)
			return config_error(ctx, "%s: no such user", key);
		*out = pw->pw_uid;
	}
	config_pop(ctx);
	return 0;
}

/* A group given by name or number. */
static int
config_group(struct config_ctx *ctx, json_t *v, const char *key, gid_t *out)
{
	config_push(ctx, key, 0);
	if (json_is_integer(v) && json_integer_value(v) >= 0 &&
	    json_integer_value(v) < (json_int_t)UINT32_MAX) {
		*out = (gid_t)json_integer_value(v);
	} else {
		struct group *gr = json_is_string(v) ?
		    getgrnam(json_string_value(v)) : NULL;

		if (gr == NULL)
			return config_error(ctx, "%s: no such group", key);
		*out = gr->gr_gid;
	}
	config_pop(ctx);
	return 0;
}

/* Permission bits as an octal string: "0660". */
static int
config_mode(struct config_ctx *ctx, json_t *v, mode_t *out)
{
	const char *s = json_is_string(v) ? json_string_value(v) : "";
	char *end;
	unsigned long mode = strtoul(s, &end, 8);

	config_push(ctx, "mode", 0);
	/* Octal digits only: strtoul() would take " 0660", "+660", "-0". */
	if (s[0] == '\0' || s[strspn(s, "01234567")] != '\0' ||
	    *end != '\0' || mode > 0777)
		return config_error(ctx, "mode: expected an octal string such "
		    "as \"0660\"");
	*out = (mode_t)mode;
	config_pop(ctx);
	return 0;
}

static int
config_socket(struct config_ctx *ctx, struct config *c, json_t *sock)
{
	static const char *const keys[] = { "path", "mode", "owner", "group",
	    NULL };
	json_t *v;

	config_push(ctx, "socket", 0);
	if (config_expect_object(ctx, sock, "\"socket\"") < 0 ||
	    config_known_keys(ctx, sock, keys) < 0)
		return -1;
	if ((v = json_object_get(sock, "path")) != NULL) {
		config_push(ctx, "path", 0);
		if (!json_is_string(v) || json_string_value(v)[0] != '/' ||
		    json_string_length(v) >= 108)
			return config_error(ctx, "path: expected an absolute "
			    "path shorter than 108 bytes");
		free(c->socket_path);
		if ((c->socket_path = strdup(json_string_value(v))) == NULL)
			return config_error(ctx, "out of memory");
		config_pop(ctx);
	}
	if ((v = json_object_get(sock, "mode")) != NULL &&
	    config_mode(ctx, v, &c->socket_mode) < 0)
		return -1;
	if ((v = json_object_get(sock, "owner")) != NULL &&
	    config_user(ctx, v, "owner", &c->socket_uid) < 0)
		return -1;
	if ((v = json_object_get(sock, "group")) != NULL &&
	    config_group(ctx, v, "group", &c->socket_gid) < 0)
		return -1;
	config_pop(ctx);
	return 0;
}

/* A positive count that fits an unsigned. */
static int
config_count(struct config_ctx *ctx, json_t *v, const char *key,
    unsigned *out)
{
	config_push(ctx, key, 0);
	if (!json_is_integer(v) || json_integer_value(v) <= 0 ||
	    json_integer_value(v) > (json_int_t)UINT32_MAX / 2)
		return config_error(ctx, "%s: expected a positive count", key);
	*out = (unsigned)json_integer_value(v);
	config_pop(ctx);
	return 0;
}

static int
config_admin_groups(struct config_ctx *ctx, struct config *c, json_t *arr)
{
	struct broker_limits *l = &c->limits;
	size_t i;
	json_t *v;

	config_push(ctx, "admin_groups", 0);
	if (!json_is_array(arr) ||
	    json_array_size(arr) > sizeof(l->admin_gids) / sizeof(l->admin_gids[0]))
		return config_error(ctx, "admin_groups: expected an array of "
		    "at most %zu groups", sizeof(l->admin_gids) /
		    sizeof(l->admin_gids[0]));
	l->nadmin_gids = 0;
	json_array_foreach(arr, i, v) {
		config_push(ctx, NULL, i);
		if (config_group(ctx, v, "admin_groups", &l->admin_gids[i]) < 0)
			return -1;
		config_pop(ctx);
		l->nadmin_gids++;
	}
	config_pop(ctx);
	return 0;
}

static int
config_limits(struct config_ctx *ctx, struct config *c, json_t *limits)
{
	static const char *const keys[] = { "max_memory", "max_msg",
	    "max_bytes_per_uid", "max_connections", "max_connections_per_uid",
	    "max_mailboxes_per_uid", "max_pending_per_connection",
	    "max_standby_per_mailbox", "max_fds_per_uid", "max_msgs_per_uid",
	    "handshake_timeout_ms", NULL };
	static const struct {
		const char *key;
		size_t off;
	} counts[] = {
		{ "max_connections",
		    offsetof(struct broker_limits, max_connections) },
		{ "max_connections_per_uid",
		    offsetof(struct broker_limits, max_connections_per_uid) },
		{ "max_mailboxes_per_uid",
		    offsetof(struct broker_limits, max_mailboxes_per_uid) },
		{ "max_pending_per_connection",
		    offsetof(struct broker_limits, max_pending_per_connection) },
		{ "max_standby_per_mailbox",
		    offsetof(struct broker_limits, max_standby_per_mailbox) },
		{ "max_fds_per_uid",
		    offsetof(struct broker_limits, max_fds_per_uid) },
		{ "max_msgs_per_uid",
		    offsetof(struct broker_limits, max_msgs_per_uid) },
	};
	struct broker_limits *l = &c->limits;
	json_t *v;

	config_push(ctx, "limits", 0);
	if (config_expect_object(ctx, limits, "\"limits\"") < 0 ||
	    config_known_keys(ctx, limits, keys) < 0)
		return -1;
	for (size_t i = 0; i < sizeof(counts) / sizeof(counts[0]); i++)
		if ((v = json_object_get(limits, counts[i].key)) != NULL &&
		    config_count(ctx, v, counts[i].key,
		    (unsigned *)((char *)l + counts[i].off)) < 0)
			return -1;
	if ((v = json_object_get(limits, "handshake_timeout_ms")) != NULL &&
	    config_count(ctx, v, "handshake_timeout_ms", &c->handshake_ms) < 0)
		return -1;
	if ((v = json_object_get(limits, "max_memory")) != NULL &&
	    config_positive_size(ctx, v, "max_memory", &l->max_memory) < 0)
		return -1;
	if ((v = json_object_get(limits, "max_bytes_per_uid")) != NULL &&
	    config_positive_size(ctx, v, "max_bytes_per_uid",
	    &l->max_bytes_per_uid) < 0)
		return -1;
	if ((v = json_object_get(limits, "max_msg")) != NULL) {
		if (config_size(ctx, v, "max_msg", &l->max_msg) < 0)
			return -1;
		if (l->max_msg == 0 || l->max_msg > BROKER_MAX_MSG_LIMIT) {
			config_push(ctx, "max_msg", 0);
			return config_error(ctx, "max_msg: must be between 1 "
			    "and %llu bytes", BROKER_MAX_MSG_LIMIT);
		}
	}
	config_pop(ctx);
	return 0;
}

/* A count of at most UINT32_MAX at key (absent: 0). */
static int
config_u32(struct config_ctx *ctx, json_t *obj, const char *key,
    uint32_t *out)
{
	json_t *v = json_object_get(obj, key);

	*out = 0;
	if (v == NULL)
		return 0;
	config_push(ctx, key, 0);
	if (!json_is_integer(v) || json_integer_value(v) < 0 ||
	    json_integer_value(v) > UINT32_MAX)
		return config_error(ctx, "%s: expected a count from 0 to %u",
		    key, UINT32_MAX);
	*out = (uint32_t)json_integer_value(v);
	config_pop(ctx);
	return 0;
}

/* max_attempts, dead_letter and ack_timeout_ms (mbxd.json(5)). */
static int
config_work_queue(struct config_ctx *ctx, struct config_mailbox *mb,
    json_t *obj)
{
	json_t *v;

	if (config_u32(ctx, obj, "max_attempts", &mb->max_attempts) < 0 ||
	    config_u32(ctx, obj, "ack_timeout_ms", &mb->ack_timeout_ms) < 0)
		return -1;
	mb->dead_letter[0] = '\0';
	if ((v = json_object_get(obj, "dead_letter")) != NULL) {
		config_push(ctx, "dead_letter", 0);
		if (!json_is_string(v) || !proto_name_valid(
		    json_string_value(v), json_string_length(v)))
			return config_error(ctx, "dead_letter: expected a "
			    "mailbox name, 1-255 bytes of [A-Za-z0-9._:/-]");
		if (strcmp(json_string_value(v), mb->name) == 0)
			return config_error(ctx, "dead_letter: a mailbox "
			    "cannot be its own dead-letter mailbox");
		snprintf(mb->dead_letter, sizeof(mb->dead_letter), "%s",
		    json_string_value(v));
		config_pop(ctx);
	}
	if (mb->max_attempts > 0 && mb->dead_letter[0] == '\0') {
		config_push(ctx, "max_attempts", 0);
		return config_error(ctx, "max_attempts: needs a "
		    "\"dead_letter\" mailbox (nothing is dropped)");
	}
	return 0;
}

static int
config_one_mailbox(struct config_ctx *ctx, struct config_mailbox *mb,
    json_t *obj)
{
	static const char *const keys[] = { "name", "capacity", "max_msg",
	    "owner", "group", "mode", "max_attempts", "dead_letter",
	    "ack_timeout_ms", "durable", NULL };
	json_t *v;

	if (config_expect_object(ctx, obj, "a mailbox") < 0 ||
	    config_known_keys(ctx, obj, keys) < 0)
		return -1;
	v = json_object_get(obj, "name");
	config_push(ctx, "name", 0);
	if (v == NULL)
		return config_error(ctx, "a mailbox needs a \"name\"");
	if (!json_is_string(v) || !proto_name_valid(json_string_value(v),
	    json_string_length(v)))
		return config_error(ctx, "name: expected 1-255 bytes of "
		    "[A-Za-z0-9._:/-]");
	snprintf(mb->name, sizeof(mb->name), "%s", json_string_value(v));
	config_pop(ctx);
	mb->capacity = 1024;
	if ((v = json_object_get(obj, "capacity")) != NULL) {
		config_push(ctx, "capacity", 0);
		if (json_is_string(v) &&
		    strcmp(json_string_value(v), "unbounded") == 0)
			mb->capacity = -1;
		else if (json_is_integer(v) && json_integer_value(v) >= 0 &&
		    json_integer_value(v) <= LONG_MAX)
			mb->capacity = (long)json_integer_value(v);
		else
			return config_error(ctx, "capacity: expected a count "
			    "(0 for rendezvous) or \"unbounded\"");
		config_pop(ctx);
	}
	mb->durable = false;
	if ((v = json_object_get(obj, "durable")) != NULL) {
		config_push(ctx, "durable", 0);
		if (!json_is_boolean(v))
			return config_error(ctx, "durable: true or false "
			    "expected");
		mb->durable = json_is_true(v);
		config_pop(ctx);
	}
	mb->max_msg = 0;
	if ((v = json_object_get(obj, "max_msg")) != NULL &&
	    config_size(ctx, v, "max_msg", &mb->max_msg) < 0)
		return -1;
	mb->uid = 0;
	mb->gid = 0;
	mb->mode = BROKER_DEFAULT_MODE;
	if ((v = json_object_get(obj, "owner")) != NULL &&
	    config_user(ctx, v, "owner", &mb->uid) < 0)
		return -1;
	if ((v = json_object_get(obj, "group")) != NULL &&
	    config_group(ctx, v, "group", &mb->gid) < 0)
		return -1;
	if ((v = json_object_get(obj, "mode")) != NULL) {
		if (config_mode(ctx, v, &mb->mode) < 0)
			return -1;
		/* Inside the broker 0 means "the default": not what was said. */
		if (mb->mode == 0) {
			config_push(ctx, "mode", 0);
			return config_error(ctx, "mode: \"0\" is not allowed "
			    "for a mailbox (root alone could use it); give "
			    "the bits, such as \"0600\"");
		}
	}
	return config_work_queue(ctx, mb, obj);
}

static int
config_mailboxes(struct config_ctx *ctx, struct config *c, json_t *arr)
{
	size_t i;
	json_t *v;

	config_push(ctx, "mailboxes", 0);
	if (!json_is_array(arr))
		return config_error(ctx, "\"mailboxes\" must be an array");
	free(c->mailboxes);
	c->nmailboxes = 0;
	c->mailboxes = calloc(json_array_size(arr) + 1, sizeof(*c->mailboxes));
	if (c->mailboxes == NULL)
		return config_error(ctx, "out of memory");
	json_array_foreach(arr, i, v) {
		config_push(ctx, NULL, i);
		if (config_one_mailbox(ctx, &c->mailboxes[i], v) < 0)
			return -1;
		for (size_t j = 0; j < i; j++)
			if (strcmp(c->mailboxes[j].name,
			    c->mailboxes[i].name) == 0)
				return config_error(ctx, "mailbox \"%s\" is "
				    "declared twice", c->mailboxes[i].name);
		config_pop(ctx);
		c->nmailboxes++;
	}
	config_pop(ctx);
	return 0;
}

static int
config_apply_json(struct config_ctx *ctx, struct config *c, json_t *root)
{
	static const char *const keys[] = { "socket", "limits", "admin_groups",
	    "mailboxes", "state_dir", "sync", NULL };
	json_t *v;

	if (config_expect_object(ctx, root, "the configuration") < 0 ||
	    config_known_keys(ctx, root, keys) < 0)
		return -1;
	if ((v = json_object_get(root, "state_dir")) != NULL) {
		config_push(ctx, "state_dir", 0);
		if (!json_is_string(v) || json_string_value(v)[0] != '/')
			return config_error(ctx, "state_dir: an absolute path "
			    "expected");
		free(c->state_dir);
		if ((c->state_dir = strdup(json_string_value(v))) == NULL)
			return config_error(ctx, "out of memory");
		config_pop(ctx);
	}
	if ((v = json_object_get(root, "sync")) != NULL) {
		config_push(ctx, "sync", 0);
		if (json_is_string(v) && strcmp(json_string_value(v),
		    "always") == 0)
			c->sync_ms = 0;
		else if (json_is_integer(v) && json_integer_value(v) > 0 &&
		    json_integer_value(v) <= 60000)
			c->sync_ms = (unsigned)json_integer_value(v);
		else
			return config_error(ctx, "sync: \"always\" or a number "
			    "of milliseconds from 1 to 60000 expected");
		config_pop(ctx);
	}
	if ((v = json_object_get(root, "socket")) != NULL &&
	    config_socket(ctx, c, v) < 0)
		return -1;
	if ((v = json_object_get(root, "limits")) != NULL &&
	    config_limits(ctx, c, v) < 0)
		return -1;
	if ((v = json_object_get(root, "admin_groups")) != NULL &&
	    config_admin_groups(ctx, c, v) < 0)
		return -1;
	if ((v = json_object_get(root, "mailboxes")) != NULL &&
	    config_mailboxes(ctx, c, v) < 0)
		return -1;
	for (size_t i = 0; i < c->nmailboxes; i++) {
		if (c->mailboxes[i].max_msg > c->limits.max_msg) {
			ctx->depth = 0;
			config_push(ctx, "mailboxes", 0);
			config_push(ctx, NULL, i);
			config_push(ctx, "max_msg", 0);
			return config_error(ctx, "max_msg: above limits.max_msg "
			    "(%llu)", (unsigned long long)c->limits.max_msg);
		}
	}
	return 0;
}

/* Reads a whole file into a NUL-terminated buffer. */
static char *
config_read(const char *path, size_t *len, char *err, size_t errlen)
{
	FILE *f = fopen(path, "re");
	char *text = NULL;
	size_t cap = 0, n;

	*len = 0;
	if (f == NULL) {
		snprintf(err, errlen, "%s:0:0: %s", path, strerror(errno));
		return NULL;
	}
	for (;;) {
		if (cap - *len < 4096) {
			char *bigger = realloc(text, cap + 65536);

			if (bigger == NULL || cap > (64u << 20)) {
				snprintf(err, errlen, "%s:0:0: file too large",
				    path);
				free(bigger != NULL ? bigger : text);
				fclose(f);
				return NULL;
			}
			text = bigger;
			cap += 65536;
		}
		n = fread(text + *len, 1, cap - *len - 1, f);
		*len += n;
		if (n == 0)
			break;
	}
	if (ferror(f)) {
		snprintf(err, errlen, "%s:0:0: %s", path, strerror(errno));
		free(text);
		fclose(f);
		return NULL;
	}
	fclose(f);
	text[*len] = '\0';
	return text;
}

int
config_load(struct config *c, const char *path, char *err, size_t errlen)
{
	struct config_ctx ctx = { .path = path, .err = err, .errlen = errlen };
	json_error_t jerr;
	json_t *root;
	char *text;
	int ret;

	text = config_read(path, &ctx.textlen, err, errlen);
	if (text == NULL)
		return -1;
	ctx.text = text;
	root = json_loadb(text, ctx.textlen, JSON_REJECT_DUPLICATES, &jerr);
	if (root == NULL) {
		snprintf(err, errlen, "%s:%d:%d: %s", path, jerr.line,
		    jerr.column, jerr.text);
		free(text);
		return -1;
	}
	ret = config_apply_json(&ctx, c, root);
	json_decref(root);
	free(text);
	return ret;
}

int
config_init(struct config *c)
{
	memset(c, 0, sizeof(*c));
	c->socket_mode = CONFIG_DEFAULT_MODE;
	c->socket_uid = (uid_t)-1;
	c->socket_gid = (gid_t)-1;
	c->limits.max_memory = BROKER_DEFAULT_MAX_MEMORY;
	c->limits.max_msg = PROTO_MAX_PAYLOAD;
	c->handshake_ms = SESSION_DEFAULT_HANDSHAKE_MS;
	c->socket_path = strdup(CONFIG_DEFAULT_SOCKET);
	c->state_dir = strdup(CONFIG_DEFAULT_STATE_DIR);
	return c->socket_path != NULL && c->state_dir != NULL ? 0 : -ENOMEM;
}

void
config_deinit(struct config *c)
{
	free(c->socket_path);
	free(c->state_dir);
	free(c->mailboxes);
	memset(c, 0, sizeof(*c));
}
