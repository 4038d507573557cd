/*
 * mbxctl.c - the mbx admin and shell tool (see mbxctl(1)).
 *
 * One invocation runs one verb over one connection to mbxd: parse the
 * command line (options may come anywhere, before or after the verb's
 * operands), connect through libmbx, run the verb, and turn the outcome
 * into an exit status:
 *
 *	0  done
 *	1  the operation failed; one line on stderr,
 *	   "mbxctl: VERB NAME: reason (ERRNAME)"
 *	2  bad usage; the problem and a usage line on stderr
 *
 * Reasons are phrased for mailboxes (EAGAIN on send is "mailbox is full",
 * on recv "no message"), from a table keyed by errno and verb, and always
 * end with the errno's symbolic name so scripts and people can look it up.
 */
#include <errno.h>
#include <getopt.h>
#include <grp.h>
#include <limits.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "mbx.h"
#include "proto.h"

#define MBXCTL_VERSION	"0.2.0"

#define EXIT_FAIL	1
#define EXIT_USAGE	2

/* Long options without a short form. */
enum {
	OPT_JSON = 256,
	OPT_VERSION,
	OPT_CAPACITY,
	OPT_MAX_MSG,
	OPT_TIMEOUT,
	OPT_SYNC,
	OPT_COUNT,
	OPT_REPLACE,
	OPT_QUEUE,
	OPT_MODE,
	OPT_GROUP,
	OPT_MAX_ATTEMPTS,
	OPT_DEAD_LETTER,
	OPT_ACK_TIMEOUT,
	OPT_ACK,
	OPT_DURABLE,
};

/* Verb options as bits, so that each verb says which ones it takes. */
#define O_CAPACITY	0x01u
#define O_MAX_MSG	0x02u
#define O_TIMEOUT	0x04u
#define O_SYNC		0x08u
#define O_COUNT		0x10u
#define O_REPLACE	0x20u
#define O_QUEUE		0x40u
#define O_MODE		0x80u
#define O_GROUP		0x100u
#define O_MAX_ATTEMPTS	0x200u
#define O_DEAD_LETTER	0x400u
#define O_ACK_TIMEOUT	0x800u
#define O_ACK		0x1000u
#define O_DURABLE	0x2000u

/* The parsed command line. */
struct args {
	const char	*socket;	/* NULL: $MBX_SOCKET, else default */
	bool		 json;
	unsigned	 seen;		/* O_* given */
	long		 capacity;
	size_t		 max_msg;
	int		 timeout;
	bool		 sync;
	long		 count;		/* 0: until an error */
	int		 how;		/* MBX_BIND_* */
	long		 id;		/* rebind: the client */
	unsigned	 mode;		/* create --mode, chmod */
	uid_t		 uid;		/* chown; (uid_t)-1 keeps it */
	gid_t		 gid;		/* create --group, chown; (gid_t)-1:
					 * the default, or keep it */
	long		 max_attempts;	/* create --max-attempts */
	const char	*dead_letter;	/* create --dead-letter */
	long		 ack_timeout;	/* create --ack-timeout, ms */
	const char	*verb;
	char		**ops;		/* the verb's operands */
	int		 nops;
	char		*data;		/* send: the payload */
	size_t		 len;
	bool		 data_owned;	/* data was read from stdin */
};

struct verb {
	const char	*name;
	int		 minops;
	int		 maxops;
	unsigned	 opts;		/* O_* it accepts */
	const char	*synopsis;	/* after "mbxctl [OPTS] " */
	int		(*run)(mbx_t *, const struct args *);
};

/*
 * Error messages.
 */

/* Symbolic names of every errno libmbx and mbxctl report. */
static const struct {
	int		 err;
	const char	*sym;
} errnames[] = {
	{ ENOENT, "ENOENT" }, { EEXIST, "EEXIST" }, { EINVAL, "EINVAL" },
	{ EAGAIN, "EAGAIN" }, { ETIMEDOUT, "ETIMEDOUT" },
	{ EMSGSIZE, "EMSGSIZE" }, { EBUSY, "EBUSY" }, { EPERM, "EPERM" },
	{ EACCES, "EACCES" }, { ENOBUFS, "ENOBUFS" }, { EIDRM, "EIDRM" },
	{ ECONNRESET, "ECONNRESET" }, { ECONNREFUSED, "ECONNREFUSED" },
	{ EPROTO, "EPROTO" }, { ESRCH, "ESRCH" }, { ENOMEM, "ENOMEM" },
	{ EDQUOT, "EDQUOT" }, { EMFILE, "EMFILE" }, { ENFILE, "ENFILE" },
	{ ENAMETOOLONG, "ENAMETOOLONG" }, { ENOTSOCK, "ENOTSOCK" },
	{ ENOTDIR, "ENOTDIR" }, { EPIPE, "EPIPE" }, { EIO, "EIO" },
	{ ENOSPC, "ENOSPC" }, { EBADF, "EBADF" }, { ESTALE, "ESTALE" },
};

/*
 * Reasons, by errno and context: a verb, "send --sync" or "connect".
 * The first entry whose context matches wins; a NULL context matches
 * any, so the specific entries come first.
 */
static const struct {
	int		 err;
	const char	*ctx;
	const char	*phrase;
} reasons[] = {
	{ ENOENT, "connect", "no such socket file" },
	{ ECONNREFUSED, "connect",
	    "connection refused, no daemon listens there" },
	{ ENAMETOOLONG, "connect", "socket path too long" },
	{ EPROTO, "connect", "the daemon speaks another protocol version" },
	{ ECONNRESET, "connect", "the daemon closed the connection" },
	{ ENOBUFS, "connect", "the daemon has too many connections" },
	{ EDQUOT, "connect",
	    "quota exceeded for this user: too many connections" },

	{ EAGAIN, "send --sync", "no receiver is waiting" },
	{ ETIMEDOUT, "send --sync",
	    "no receiver took the message in time; it was withdrawn" },
	{ EAGAIN, "send", "mailbox is full" },
	{ ETIMEDOUT, "send", "timed out waiting for room in the mailbox" },
	{ EMSGSIZE, "send", "message is larger than the mailbox accepts" },

	{ EAGAIN, "recv", "no message" },
	{ ETIMEDOUT, "recv", "timed out waiting for a message" },
	{ EPERM, "recv", "not the bound receiver" },
	{ EBUSY, "recv", "another receiver is bound" },
	{ EINVAL, "recv", "invalid mailbox name, or a direct address" },
	{ EDQUOT, "recv", "too many clients stand by on this mailbox" },
	{ ESTALE, "recv --ack", "the message was taken back before it was "
	    "acknowledged; it will be delivered again" },

	{ EINVAL, "create", "invalid name, capacity, maximum message size or "
	    "dead-letter mailbox (--max-attempts needs --dead-letter; "
	    "--durable needs a capacity)" },
	{ EBUSY, "create", "the state directory is in use by another mbxd" },
	{ EIO, "send", "the mailbox's log on disk failed: it is out of "
	    "service" },
	{ EIO, "recv", "the mailbox's log on disk failed: it is out of "
	    "service" },
	{ ENOSPC, "send", "no space left for the mailbox's log" },
	{ EPERM, "create", "not a member of that group" },
	{ EDQUOT, "create",
	    "quota exceeded for this user: too many mailboxes" },
	{ EINVAL, "destroy", "invalid mailbox name, or a direct address" },
	{ EINVAL, "purge", "invalid mailbox name, or a direct address" },
	{ EINVAL, "chmod", "invalid mailbox name, or a direct address" },
	{ EINVAL, "chown", "invalid mailbox name, or a direct address" },
	{ EPERM, "unbind", "no receiver is bound" },
	{ EINVAL, "rebind", "invalid mailbox name or client ID" },

	/* Owner calls: the owner of the mailbox or an administrator. */
	{ EACCES, "chown", "permission denied: only an administrator may "
	    "change the owner; the owner may set one of its own groups" },
	{ EACCES, "destroy", "permission denied: not the owner or an "
	    "administrator" },
	{ EACCES, "purge", "permission denied: not the owner or an "
	    "administrator" },
	{ EACCES, "chmod", "permission denied: not the owner or an "
	    "administrator" },
	{ EACCES, "rebind", "permission denied: not the owner or an "
	    "administrator" },
	{ EACCES, "unbind", "permission denied: not the owner or an "
	    "administrator" },

	{ ENOENT, NULL, "no such mailbox" },
	{ EEXIST, NULL, "mailbox already exists" },
	{ EINVAL, NULL, "invalid mailbox name or argument" },
	{ EAGAIN, NULL, "would have to wait" },
	{ ETIMEDOUT, NULL, "timed out" },
	{ EMSGSIZE, NULL, "message too large" },
	{ EBUSY, NULL, "mailbox is busy" },
	{ EPERM, NULL, "operation not permitted" },
	{ EACCES, NULL, "permission denied" },
	{ ENOBUFS, NULL, "the daemon's memory limit is reached" },
	{ EIDRM, NULL, "mailbox was destroyed" },
	{ ECONNRESET, NULL, "the daemon went away" },
	{ EPROTO, NULL, "protocol error" },
	{ ESRCH, NULL, "no such client" },
	{ ENOMEM, NULL, "out of memory" },
	{ EDQUOT, NULL, "quota exceeded for this user" },
	{ EMFILE, NULL, "too many open files or connections" },
};

static const char *
errname(int err)
{
	const char *sym = NULL;

	for (size_t i = 0; i < sizeof(errnames) / sizeof(errnames[0]); i++)
		if (errnames[i].err == err)
			return errnames[i].sym;
#if defined(__GLIBC__) && (__GLIBC__ > 2 || __GLIBC_MINOR__ >= 32)
	/* An errno the table missed still gets its name. */
	sym = strerrorname_np(err);
#endif
	return sym != NULL ? sym : "E?";
}

static const char *
reason(const char *ctx, int err)
{
	for (size_t i = 0; i < sizeof(reasons) / sizeof(reasons[0]); i++)
		if (reasons[i].err == err && (reasons[i].ctx == NULL ||
		    strcmp(reasons[i].ctx, ctx) == 0))
			return reasons[i].phrase;
	return strerror(err);
}

/* Where an error belongs: "send jobs", "list". */
static void
print_where(const struct args *a)
{
	fprintf(stderr, "mbxctl: %s", a->verb);
	if (a->nops > 0)
		fprintf(stderr, " %s", a->ops[0]);
	fputs(": ", stderr);
}

/* Reports a failed operation: "mbxctl: VERB NAME: <fmt> (ERRNAME)". */
static int __attribute__((format(printf, 3, 4)))
failf(const struct args *a, int err, const char *fmt, ...)
{
	va_list ap;

	print_where(a);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, " (%s)\n", errname(err));
	return EXIT_FAIL;
}

/* Reports a failed operation with the reason that fits the verb. */
static int
fail(const struct args *a, int err)
{
	const char *ctx = a->verb;

	if (strcmp(ctx, "send") == 0 && a->sync)
		ctx = "send --sync";
	return failf(a, err, "%s", reason(ctx, err));
}

/*
 * Usage.
 */

static const char usage_text[] =
"usage: mbxctl [-s PATH] [--json] VERB [OPERAND...] [OPTION...]\n"
"\n"
"Administer and use the mbx mailbox broker, mbxd.  Options may come\n"
"before or after the verb and its operands; put -- before an operand\n"
"that starts with '-'.\n"
"\n"
"Verbs:\n"
"  list                  show every mailbox: NAME OWNER MODE CAPACITY QUEUED\n"
"                        INFLIGHT RECEIVER STANDBY SENT RECEIVED\n"
"  clients               show every connected client: ID PID UID COMM BOUND\n"
"  create NAME [--capacity N|unbounded] [--max-msg BYTES] [--mode OCTAL]\n"
"         [--group NAME|GID] [--max-attempts N --dead-letter NAME2]\n"
"         [--ack-timeout MS] [--durable]\n"
"                        create a mailbox, owned by you; capacity 0 is a\n"
"                        rendezvous (default capacity 1024, default max-msg\n"
"                        1048576, default mode 0600, default group yours)\n"
"  destroy NAME          destroy a mailbox and its queue; every sender and\n"
"                        receiver waiting on it fails with EIDRM\n"
"  purge NAME            drop every message queued in NAME; those handed to\n"
"                        the receiver and not yet acknowledged stay\n"
"  chmod NAME MODE       set the permission bits of NAME, in octal: write\n"
"                        lets send, read lets bind and receive\n"
"  chown NAME [USER][:GROUP]\n"
"                        give NAME to USER and/or GROUP (names or numbers);\n"
"                        \"USER:\" also sets USER's login group\n"
"  send NAME [DATA] [--timeout MS] [--sync]\n"
"                        send DATA as one message; without DATA, all of\n"
"                        standard input is the message.  NAME may be a\n"
"                        direct address @ID\n"
"  recv NAME [--count N] [--timeout MS] [--replace|--queue] [--ack]\n"
"                        bind as the receiver of NAME (exclusively, unless\n"
"                        --replace or --queue), receive N messages and\n"
"                        print each payload followed by a newline\n"
"  rebind NAME ID        move the binding of NAME to client ID, which must\n"
"                        be standing by on it (recv --queue)\n"
"  unbind NAME           remove the current receiver of NAME, whoever it is;\n"
"                        the first standby takes over\n"
"  destroy, purge, chmod, chown, rebind and unbind are for the mailbox's\n"
"  owner and administrators.\n"
"\n"
"Options:\n"
"  -s, --socket PATH     the daemon's socket (default: $MBX_SOCKET, else\n"
"                        " MBX_DEFAULT_SOCKET ")\n"
"      --json            list, clients: print the daemon's JSON; recv: print\n"
"                        one JSON object per message per line, with keys\n"
"                        mailbox, sender, pid, uid, data (and encoding\n"
"                        \"base64\" when the payload is not UTF-8)\n"
"      --capacity N|unbounded\n"
"                        create: the most messages the mailbox holds\n"
"      --max-msg BYTES   create: the largest message it accepts\n"
"      --mode OCTAL      create: permission bits, 1 to 0777 (default 0600)\n"
"      --group NAME|GID  create: the mailbox's group, one you are in\n"
"      --max-attempts N  create: a message delivered N times that comes\n"
"                        back again moves to the --dead-letter mailbox\n"
"                        (default 0: no limit)\n"
"      --dead-letter NAME2\n"
"                        create: where such messages go (needed with\n"
"                        --max-attempts; NAME2 need not exist yet)\n"
"      --ack-timeout MS  create: a message received with explicit\n"
"                        acknowledgement and not acknowledged within MS\n"
"                        goes back to the head (default 0: never)\n"
"      --durable         create: keep every message on disk, so that a\n"
"                        crash of mbxd loses no send that returned; a send\n"
"                        returns once its message is synced (not with\n"
"                        capacity 0)\n"
"      --timeout MS      send, recv: -1 waits for ever (the default), 0 never\n"
"                        waits, N waits at most N milliseconds (per message)\n"
"      --sync            send: return only once a receiver has the message;\n"
"                        when the timeout passes first it is withdrawn\n"
"      --count N         recv: messages to receive (default 1; 0: until an\n"
"                        error or a signal)\n"
"      --replace         recv: take the binding from the current receiver\n"
"      --queue           recv: stand by until the binding is free\n"
"      --ack             recv: acknowledge each message only once it is\n"
"                        printed and flushed: a killed mbxctl loses nothing,\n"
"                        the message is delivered again\n"
"  -h, --help            print this help and exit\n"
"      --version         print the version and exit\n"
"\n"
"Exit status: 0 success, 1 the operation failed, 2 bad usage.\n";

/* Reports bad usage, with the synopsis of verb v when known. */
static int __attribute__((format(printf, 2, 3)))
usage_fail(const struct verb *v, const char *fmt, ...)
{
	va_list ap;

	fputs("mbxctl: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\nusage: mbxctl [-s PATH] [--json] %s\n"
	    "Try 'mbxctl --help' for more information.\n",
	    v != NULL ? v->synopsis : "VERB [OPERAND...] [OPTION...]");
	return EXIT_USAGE;
}

/*
 * Output helpers.
 */

/* Finishes a write to stdout; a full disk or closed pipe is a failure. */
static int
out_flush(const struct args *a)
{
	if (fflush(stdout) == EOF || ferror(stdout))
		return failf(a, errno, "cannot write to standard output: %s",
		    strerror(errno));
	return 0;
}

/* Parses s as JSON from the daemon; NULL (reported) when it is not an
 * array. */
static json_t *
json_parse(const struct args *a, const char *s)
{
	json_error_t jerr;
	json_t *j;

	j = json_loads(s, JSON_REJECT_DUPLICATES, &jerr);
	if (j == NULL) {
		failf(a, EPROTO, "the daemon sent malformed JSON: %s",
		    jerr.text);
		return NULL;
	}
	if (!json_is_array(j)) {
		json_decref(j);
		failf(a, EPROTO, "the daemon sent JSON that is not an array");
		return NULL;
	}
	return j;
}

/* Writes text with what could drive the terminal escaped (proto_escape). */
static void
cell_put_text(FILE *f, const char *s, size_t len)
{
	char buf[PROTO_ESCAPED_MAX(256)];

	/* In pieces: a cut never splits a character. */
	while (len > 0) {
		size_t n = len < 256 ? len : 256;

		while (n < len && n > 1 &&
		    ((unsigned char)s[n] & 0xc0) == 0x80)
			n--;
		proto_escape(buf, sizeof(buf), s, n);
		fputs(buf, f);
		s += n;
		len -= n;
	}
}

/* Writes one JSON value of a table cell: null "-", arrays joined by ",". */
static void
cell_put(FILE *f, const json_t *v)
{
	size_t i;
	json_t *e;

	switch (json_typeof(v)) {
	case JSON_NULL:
		fputs("-", f);
		break;
	case JSON_INTEGER:
		fprintf(f, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
		break;
	case JSON_STRING:
		/* Names and command names are others' choice: escaped. */
		cell_put_text(f, json_string_value(v), json_string_length(v));
		break;
	case JSON_ARRAY:
		if (json_array_size(v) == 0)
			fputs("-", f);
		json_array_foreach(v, i, e) {
			if (i > 0)
				fputc(',', f);
			cell_put(f, e);
		}
		break;
	default:
		/* Not expected from the daemon; show it rather than hide it. */
		json_dumpf(v, f, JSON_COMPACT | JSON_ENCODE_ANY);
		break;
	}
}

/*
 * A table column: its title, the JSON key it shows and, for a value that
 * reads better translated, a function that returns the text to show, or
 * NULL to show the value as it is.
 */
struct column {
	const char	*title;
	const char	*key;
	const char	*(*text)(const json_t *);
};

/* The widest table (list) has 9 columns. */
#define TABLE_MAX_COLS	10

/* Capacity -1 means no count limit. */
static const char *
text_capacity(const json_t *v)
{
	return json_is_integer(v) && json_integer_value(v) == MBX_UNBOUNDED ?
	    "unbounded" : NULL;
}

/*
 * A uid as its user name, when the user database has one.  Mailboxes of
 * one owner are common, so the last answer is kept: a list of thousands
 * does not ask the database thousands of times.
 */
static const char *
text_user(const json_t *v)
{
	static json_int_t last = -1;
	static char name[64];
	static bool named;
	const struct passwd *pw;

	if (!json_is_integer(v) || json_integer_value(v) < 0 ||
	    json_integer_value(v) >= (json_int_t)(uid_t)-1)
		return NULL;
	if (json_integer_value(v) != last) {
		last = json_integer_value(v);
		pw = getpwuid((uid_t)last);
		/* A name that does not fit is shown as the number. */
		named = pw != NULL && strlen(pw->pw_name) < sizeof(name);
		if (named)
			strcpy(name, pw->pw_name);
	}
	return named ? name : NULL;
}

/* The text of one cell: col's key of row, "?" when missing. */
static char *
cell_text(const json_t *row, const struct column *col)
{
	const json_t *v = json_object_get(row, col->key);
	const char *t;
	char *s = NULL;
	size_t len;
	FILE *f;

	if (v == NULL)
		return strdup("?");
	if (col->text != NULL && (t = col->text(v)) != NULL)
		return strdup(t);
	f = open_memstream(&s, &len);
	if (f == NULL)
		return NULL;
	cell_put(f, v);
	if (fclose(f) != 0) {
		free(s);
		return NULL;
	}
	return s;
}

/* Fills cells (rows x ncols) with the text of every cell. */
static int
table_cells(const json_t *rows, const struct column *cols, size_t ncols,
    char **cells)
{
	const json_t *row;
	size_t r;

	json_array_foreach(rows, r, row) {
		for (size_t k = 0; k < ncols; k++) {
			cells[r * ncols + k] = cell_text(row, &cols[k]);
			if (cells[r * ncols + k] == NULL)
				return -1;
		}
	}
	return 0;
}

/* Prints one line of the table, columns padded to their widths. */
static void
table_line(const char *const *cells, const int *width, size_t ncols)
{
	for (size_t k = 0; k < ncols; k++) {
		if (k + 1 < ncols)
			printf("%-*s  ", width[k], cells[k]);
		else
			printf("%s\n", cells[k]);
	}
}

/* Prints the daemon's array of objects as a header and aligned columns. */
static int
table_print(const struct args *a, const json_t *rows,
    const struct column *cols, size_t ncols)
{
	size_t nrows = json_array_size(rows), n = nrows * ncols;
	const char *titles[TABLE_MAX_COLS];
	int width[TABLE_MAX_COLS];
	char **cells;
	int rc = 0;

	cells = calloc(n + 1, sizeof(*cells));
	if (cells == NULL || table_cells(rows, cols, ncols, cells) == -1) {
		rc = failf(a, ENOMEM, "%s", reason(a->verb, ENOMEM));
		goto out;
	}
	for (size_t k = 0; k < ncols; k++) {
		titles[k] = cols[k].title;
		width[k] = (int)strlen(cols[k].title);
		for (size_t r = 0; r < nrows; r++) {
			size_t w = strlen(cells[r * ncols + k]);

			if (w > (size_t)width[k])
				width[k] = w > INT_MAX ? INT_MAX : (int)w;
		}
	}
	table_line(titles, width, ncols);
	for (size_t r = 0; r < nrows; r++)
		table_line((const char *const *)(cells + r * ncols), width,
		    ncols);
	rc = out_flush(a);
out:
	for (size_t i = 0; cells != NULL && i < n; i++)
		free(cells[i]);
	free(cells);
	return rc;
}

/* list and clients: fetch the JSON, print it raw or as a table. */
static int
show(mbx_t *c, const struct args *a, int (*fetch)(mbx_t *, char **),
    const struct column *cols, size_t ncols)
{
	char *s;
	json_t *j;
	int rc;

	if (fetch(c, &s) == -1)
		return fail(a, errno);
	j = json_parse(a, s);
	free(s);
	if (j == NULL)
		return EXIT_FAIL;
	if (a->json) {
		json_dumpf(j, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
		putchar('\n');
		rc = out_flush(a);
	} else {
		rc = table_print(a, j, cols, ncols);
	}
	json_decref(j);
	return rc;
}

/*
 * Verbs.
 */

static int
run_list(mbx_t *c, const struct args *a)
{
	static const struct column cols[] = {
		{ "NAME", "name", NULL }, { "OWNER", "owner", text_user },
		{ "MODE", "mode", NULL },
		{ "CAPACITY", "capacity", text_capacity },
		{ "QUEUED", "queued", NULL }, { "INFLIGHT", "inflight", NULL },
		{ "RECEIVER", "receiver", NULL },
		{ "STANDBY", "standby", NULL }, { "SENT", "sent", NULL },
		{ "RECEIVED", "received", NULL },
	};

	return show(c, a, mbx_list, cols, sizeof(cols) / sizeof(cols[0]));
}

static int
run_clients(mbx_t *c, const struct args *a)
{
	static const struct column cols[] = {
		{ "ID", "id", NULL }, { "PID", "pid", NULL },
		{ "UID", "uid", NULL }, { "COMM", "comm", NULL },
		{ "BOUND", "bound", NULL },
	};

	return show(c, a, mbx_clients, cols, sizeof(cols) / sizeof(cols[0]));
}

static int
run_create(mbx_t *c, const struct args *a)
{
	struct mbx_attr attr;

	mbx_attr_init(&attr);
	if (a->seen & O_CAPACITY)
		attr.capacity = a->capacity;
	if (a->seen & O_MAX_MSG)
		attr.max_msg = a->max_msg;
	if (a->seen & O_MODE)
		attr.mode = a->mode;
	if (a->seen & O_GROUP)
		attr.gid = a->gid;
	if (a->seen & O_MAX_ATTEMPTS)
		attr.max_attempts = a->max_attempts;
	if (a->seen & O_DEAD_LETTER)
		attr.dead_letter = a->dead_letter;
	if (a->seen & O_ACK_TIMEOUT)
		attr.ack_timeout_ms = a->ack_timeout;
	if (a->seen & O_DURABLE)
		attr.durable = 1;
	if (mbx_create(c, a->ops[0], &attr) == -1)
		return fail(a, errno);
	return 0;
}

static int
run_destroy(mbx_t *c, const struct args *a)
{
	if (mbx_destroy(c, a->ops[0]) == -1)
		return fail(a, errno);
	return 0;
}

static int
run_purge(mbx_t *c, const struct args *a)
{
	if (mbx_purge(c, a->ops[0]) == -1)
		return fail(a, errno);
	return 0;
}

static int
run_chmod(mbx_t *c, const struct args *a)
{
	if (mbx_chmod(c, a->ops[0], a->mode) == -1)
		return fail(a, errno);
	return 0;
}

static int
run_chown(mbx_t *c, const struct args *a)
{
	if (mbx_chown(c, a->ops[0], a->uid, a->gid) == -1)
		return fail(a, errno);
	return 0;
}

static int
run_send(mbx_t *c, const struct args *a)
{
	if (mbx_send(c, a->ops[0], a->data, a->len, a->sync ? MBX_SYNC : 0,
	    a->timeout) == -1)
		return fail(a, errno);
	return 0;
}

static const char b64[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* Base64 of a binary payload, for --json output; NULL on ENOMEM. */
static json_t *
base64(const unsigned char *p, size_t len)
{
	char *s = malloc((len + 2) / 3 * 4 + 1), *o = s;
	json_t *j;

	if (s == NULL)
		return NULL;
	for (size_t i = 0; i < len; i += 3) {
		uint32_t v = (uint32_t)p[i] << 16;

		if (i + 1 < len)
			v |= (uint32_t)p[i + 1] << 8;
		if (i + 2 < len)
			v |= p[i + 2];
		*o++ = b64[v >> 18 & 63];
		*o++ = b64[v >> 12 & 63];
		*o++ = i + 1 < len ? b64[v >> 6 & 63] : '=';
		*o++ = i + 2 < len ? b64[v & 63] : '=';
	}
	*o = '\0';
	j = json_string(s);
	free(s);
	return j;
}

/*
 * One received message as one line of JSON.  JSON strings are UTF-8, so
 * a payload that is not (binary data) goes out as base64 and says so.
 */
static int
print_json_msg(const char *buf, size_t len, const struct mbx_meta *m)
{
	json_t *o, *data;
	bool binary = false;
	int rc;

	data = json_stringn(buf, len);
	if (data == NULL) {
		binary = true;
		data = base64((const unsigned char *)buf, len);
	}
	o = json_pack("{s:s, s:I, s:I, s:I, s:I, s:I, s:o}", "mailbox",
	    m->mailbox, "sender", (json_int_t)m->sender_id, "pid",
	    (json_int_t)m->pid, "uid", (json_int_t)m->uid, "id",
	    (json_int_t)m->id, "attempt", (json_int_t)m->attempt, "data", data);
	if (o == NULL)
		return -1;
	/* A dead letter says where it died and after how many attempts. */
	if (m->origin[0] != '\0' && (json_object_set_new(o, "origin",
	    json_string(m->origin)) == -1 || json_object_set_new(o,
	    "origin_attempts", json_integer(m->origin_attempts)) == -1)) {
		json_decref(o);
		return -1;
	}
	if (binary && json_object_set_new(o, "encoding",
	    json_string("base64")) == -1) {
		json_decref(o);
		return -1;
	}
	rc = json_dumpf(o, stdout, JSON_COMPACT | JSON_PRESERVE_ORDER);
	json_decref(o);
	if (rc == -1 || putchar('\n') == EOF)
		return -1;
	return 0;
}

/* Prints one received message; flushed, so a pipe sees it at once. */
static int
print_msg(const struct args *a, const char *buf, size_t len,
    const struct mbx_meta *m)
{
	if (a->json) {
		if (print_json_msg(buf, len, m) == -1 && !ferror(stdout))
			return failf(a, ENOMEM, "%s", reason(a->verb, ENOMEM));
	} else {
		fwrite(buf, 1, len, stdout);
		putchar('\n');
	}
	return out_flush(a);
}

static int
run_recv(mbx_t *c, const struct args *a)
{
	struct mbx_meta meta;
	mbx_msg_t *m;
	int rc = 0;

	if ((a->seen & O_ACK) && mbx_setopt(c, MBX_OPT_ACK, 1) == -1)
		return fail(a, errno);
	if (mbx_bind(c, a->ops[0], a->how) == -1)
		return fail(a, errno);
	/* Message objects: any size, zero-copy ones read in place. */
	for (long i = 0; rc == 0 && (a->count == 0 || i < a->count); i++) {
		if (mbx_recvmsg(c, a->ops[0], &m, &meta, a->timeout) == -1) {
			rc = fail(a, errno);
			break;
		}
		rc = print_msg(a, mbx_msg_data(m), mbx_msg_len(m), &meta);
		/* Printed and flushed first: killed before, it comes back. */
		if (rc == 0 && (a->seen & O_ACK) && mbx_ack(c, &meta) == -1)
			rc = failf(a, errno, "%s",
			    reason("recv --ack", errno));
		mbx_msg_free(m);
	}
	return rc;
}

static int
run_rebind(mbx_t *c, const struct args *a)
{
	if (mbx_rebind(c, a->ops[0], a->id) == -1) {
		/* The reason names both the client and the mailbox. */
		if (errno == ESRCH)
			return failf(a, ESRCH,
			    "client %ld is not standing by on %s", a->id,
			    a->ops[0]);
		return fail(a, errno);
	}
	return 0;
}

static int
run_unbind(mbx_t *c, const struct args *a)
{
	if (mbx_evict(c, a->ops[0]) == -1)
		return fail(a, errno);
	return 0;
}

static const struct verb verbs[] = {
	{ "list", 0, 0, 0, "list", run_list },
	{ "clients", 0, 0, 0, "clients", run_clients },
	{ "create", 1, 1, O_CAPACITY | O_MAX_MSG | O_MODE | O_GROUP |
	    O_MAX_ATTEMPTS | O_DEAD_LETTER | O_ACK_TIMEOUT | O_DURABLE,
	    "create NAME [--capacity N|unbounded] [--max-msg BYTES] "
	    "[--mode OCTAL] [--group NAME|GID] [--max-attempts N "
	    "--dead-letter NAME2] [--ack-timeout MS] [--durable]",
	    run_create },
	{ "destroy", 1, 1, 0, "destroy NAME", run_destroy },
	{ "purge", 1, 1, 0, "purge NAME", run_purge },
	{ "chmod", 2, 2, 0, "chmod NAME MODE", run_chmod },
	{ "chown", 2, 2, 0, "chown NAME [USER][:GROUP]", run_chown },
	{ "send", 1, 2, O_TIMEOUT | O_SYNC,
	    "send NAME [DATA] [--timeout MS] [--sync]", run_send },
	{ "recv", 1, 1, O_COUNT | O_TIMEOUT | O_REPLACE | O_QUEUE | O_ACK,
	    "recv NAME [--count N] [--timeout MS] [--replace|--queue] [--ack]",
	    run_recv },
	{ "rebind", 2, 2, 0, "rebind NAME ID", run_rebind },
	{ "unbind", 1, 1, 0, "unbind NAME", run_unbind },
};

static const struct verb *
verb_find(const char *name)
{
	for (size_t i = 0; i < sizeof(verbs) / sizeof(verbs[0]); i++)
		if (strcmp(verbs[i].name, name) == 0)
			return &verbs[i];
	return NULL;
}

/*
 * Command line.
 */

/* Parses a decimal integer in [min, max]; false when s is not one. */
static bool
parse_long(const char *s, long min, long max, long *out)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || v < min || v > max)
		return false;
	*out = v;
	return true;
}

/* Parses a byte count; strtoull would quietly accept "-1". */
static bool
parse_size(const char *s, size_t *out)
{
	unsigned long long v;
	char *end;

	if (*s < '0' || *s > '9')
		return false;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno != 0 || *end != '\0' || v > SIZE_MAX)
		return false;
	*out = (size_t)v;
	return true;
}

/*
 * Parses permission bits in octal, 0 to 0777 ("640", "0640").  Only
 * octal digits: strtoul would also take a sign, blanks and "0x".
 */
static bool
parse_mode(const char *s, unsigned *out)
{
	unsigned v = 0;

	if (*s == '\0')
		return false;
	for (; *s != '\0'; s++) {
		if (*s < '0' || *s > '7')
			return false;
		v = v * 8 + (unsigned)(*s - '0');
		if (v > 0777)
			return false;
	}
	*out = v;
	return true;
}

/* Parses a decimal uid or gid; (uid_t)-1 is not one, it means "keep". */
static bool
parse_id(const char *s, unsigned long *out)
{
	unsigned long long v;
	char *end;

	if (*s < '0' || *s > '9')
		return false;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno != 0 || *end != '\0' || v >= (uid_t)-1 || v >= (gid_t)-1)
		return false;
	*out = (unsigned long)v;
	return true;
}

/* A user, as chown(1) reads it: a name, else a number. */
static bool
parse_user(const char *s, uid_t *uid, gid_t *login_gid)
{
	const struct passwd *pw = *s != '\0' ? getpwnam(s) : NULL;
	unsigned long v;

	if (pw != NULL) {
		*uid = pw->pw_uid;
	} else {
		if (!parse_id(s, &v))
			return false;
		*uid = (uid_t)v;
		/* Any number will do; only a known one has a login group. */
		pw = getpwuid(*uid);
	}
	*login_gid = pw != NULL ? pw->pw_gid : (gid_t)-1;
	return true;
}

/* A group: a name, else a number. */
static bool
parse_group(const char *s, gid_t *gid)
{
	const struct group *gr = *s != '\0' ? getgrnam(s) : NULL;
	unsigned long v;

	if (gr != NULL) {
		*gid = gr->gr_gid;
		return true;
	}
	if (!parse_id(s, &v))
		return false;
	*gid = (gid_t)v;
	return true;
}

/*
 * Parses chown's USER, USER:GROUP, :GROUP or USER: (USER and USER's
 * login group) into a->uid and a->gid; a message for bad usage, or NULL.
 */
static const char *
parse_owner(struct args *a, const char *spec)
{
	const char *colon = strchr(spec, ':');
	size_t ulen = colon != NULL ? (size_t)(colon - spec) : strlen(spec);
	char user[256];
	gid_t login = (gid_t)-1;

	if (ulen == 0 && (colon == NULL || colon[1] == '\0'))
		return "names no user and no group";
	if (ulen >= sizeof(user))
		return "no such user";
	memcpy(user, spec, ulen);
	user[ulen] = '\0';
	if (ulen > 0 && !parse_user(user, &a->uid, &login))
		return "no such user";
	if (colon == NULL)
		return NULL;
	if (colon[1] != '\0') {
		if (!parse_group(colon + 1, &a->gid))
			return "no such group";
	} else {
		if (login == (gid_t)-1)
			return "the user has no login group";
		a->gid = login;
	}
	return NULL;
}

/* The long name of a verb option, for messages. */
static const char *
opt_name(unsigned bit)
{
	switch (bit) {
	case O_CAPACITY:	return "--capacity";
	case O_MAX_MSG:		return "--max-msg";
	case O_TIMEOUT:		return "--timeout";
	case O_SYNC:		return "--sync";
	case O_COUNT:		return "--count";
	case O_REPLACE:		return "--replace";
	case O_MODE:		return "--mode";
	case O_GROUP:		return "--group";
	case O_MAX_ATTEMPTS:	return "--max-attempts";
	case O_DEAD_LETTER:	return "--dead-letter";
	case O_ACK_TIMEOUT:	return "--ack-timeout";
	case O_DURABLE:		return "--durable";
	case O_ACK:		return "--ack";
	default:		return "--queue";
	}
}

/* Applies one verb option with its argument; false on a bad value. */
static bool
opt_apply(struct args *a, int opt, const char *arg)
{
	long v;

	switch (opt) {
	case OPT_CAPACITY:
		a->seen |= O_CAPACITY;
		if (strcmp(arg, "unbounded") == 0) {
			a->capacity = MBX_UNBOUNDED;
			return true;
		}
		return parse_long(arg, -1, LONG_MAX, &a->capacity);
	case OPT_MAX_MSG:
		a->seen |= O_MAX_MSG;
		return parse_size(arg, &a->max_msg);
	case OPT_TIMEOUT:
		a->seen |= O_TIMEOUT;
		if (!parse_long(arg, -1, INT_MAX, &v))
			return false;
		a->timeout = (int)v;
		return true;
	case OPT_COUNT:
		a->seen |= O_COUNT;
		return parse_long(arg, 0, LONG_MAX, &a->count);
	case OPT_SYNC:
		a->seen |= O_SYNC;
		a->sync = true;
		return true;
	case OPT_REPLACE:
		a->seen |= O_REPLACE;
		a->how = MBX_BIND_REPLACE;
		return true;
	case OPT_MODE:
		a->seen |= O_MODE;
		return parse_mode(arg, &a->mode);
	case OPT_GROUP:
		a->seen |= O_GROUP;
		return parse_group(arg, &a->gid);
	case OPT_MAX_ATTEMPTS:
		a->seen |= O_MAX_ATTEMPTS;
		return parse_long(arg, 0, UINT32_MAX, &a->max_attempts);
	case OPT_DEAD_LETTER:
		a->seen |= O_DEAD_LETTER;
		a->dead_letter = arg;
		return arg[0] != '\0';
	case OPT_ACK_TIMEOUT:
		a->seen |= O_ACK_TIMEOUT;
		return parse_long(arg, 0, UINT32_MAX, &a->ack_timeout);
	case OPT_ACK:
		a->seen |= O_ACK;
		return true;
	case OPT_DURABLE:
		a->seen |= O_DURABLE;
		return true;
	default:
		a->seen |= O_QUEUE;
		a->how = MBX_BIND_QUEUE;
		return true;
	}
}

static const struct option longopts[] = {
	{ "socket", required_argument, NULL, 's' },
	{ "json", no_argument, NULL, OPT_JSON },
	{ "help", no_argument, NULL, 'h' },
	{ "version", no_argument, NULL, OPT_VERSION },
	{ "capacity", required_argument, NULL, OPT_CAPACITY },
	{ "max-msg", required_argument, NULL, OPT_MAX_MSG },
	{ "timeout", required_argument, NULL, OPT_TIMEOUT },
	{ "sync", no_argument, NULL, OPT_SYNC },
	{ "count", required_argument, NULL, OPT_COUNT },
	{ "replace", no_argument, NULL, OPT_REPLACE },
	{ "queue", no_argument, NULL, OPT_QUEUE },
	{ "mode", required_argument, NULL, OPT_MODE },
	{ "group", required_argument, NULL, OPT_GROUP },
	{ "max-attempts", required_argument, NULL, OPT_MAX_ATTEMPTS },
	{ "dead-letter", required_argument, NULL, OPT_DEAD_LETTER },
	{ "ack-timeout", required_argument, NULL, OPT_ACK_TIMEOUT },
	{ "ack", no_argument, NULL, OPT_ACK },
	{ "durable", no_argument, NULL, OPT_DURABLE },
	{ NULL, 0, NULL, 0 },
};

/*
 * Parses argv into a.  Returns -1 to go on, or the exit status (0 after
 * --help or --version, 2 on bad usage).  The leading '-' of the option
 * string makes getopt_long hand back operands in order, wherever the
 * options are, even under POSIXLY_CORRECT; ':' lets us word the errors.
 */
static int
args_parse(struct args *a, int argc, char **argv)
{
	int opt, idx = 0;

	a->ops = calloc((size_t)argc + 1, sizeof(*a->ops));
	if (a->ops == NULL) {
		perror("mbxctl");
		return EXIT_FAIL;
	}
	opterr = 0;
	while ((opt = getopt_long(argc, argv, "-:s:h", longopts, &idx)) != -1) {
		switch (opt) {
		case 1:
			a->ops[a->nops++] = optarg;
			break;
		case 's':
			a->socket = optarg;
			break;
		case OPT_JSON:
			a->json = true;
			break;
		case 'h':
			fputs(usage_text, stdout);
			return 0;
		case OPT_VERSION:
			puts("mbxctl " MBXCTL_VERSION);
			return 0;
		case ':':
			return usage_fail(NULL, "option '%s' needs an argument",
			    argv[optind - 1]);
		case '?':
			if (optopt != 0)
				return usage_fail(NULL, "unknown option '-%c'",
				    optopt);
			return usage_fail(NULL, "unknown option '%s'",
			    argv[optind - 1]);
		default:
			/* Verb options are all long: idx names it. */
			if (!opt_apply(a, opt, optarg))
				return usage_fail(NULL,
				    "bad value '%s' for --%s", optarg,
				    longopts[idx].name);
			break;
		}
	}
	/* What follows "--" is operands only. */
	while (optind < argc)
		a->ops[a->nops++] = argv[optind++];
	return -1;
}

/* Parses the operands that are not mailbox names; -1 or the exit status. */
static int
args_operands(struct args *a, const struct verb *v)
{
	const char *why;

	if (v->run == run_rebind &&
	    !parse_long(a->ops[1], 1, LONG_MAX, &a->id))
		return usage_fail(v, "rebind: '%s' is not a client ID",
		    a->ops[1]);
	if (v->run == run_chmod && !parse_mode(a->ops[1], &a->mode))
		return usage_fail(v, "chmod: '%s' is not a mode (octal, 0 to "
		    "0777)", a->ops[1]);
	if (v->run == run_chown && (why = parse_owner(a, a->ops[1])) != NULL)
		return usage_fail(v, "chown: '%s': %s", a->ops[1], why);
	/* The library reads mode 0 as "the default". */
	if (v->run == run_create && (a->seen & O_MODE) && a->mode == 0)
		return usage_fail(v, "create: --mode 0 would give the default "
		    "mode, 0600; create, then chmod NAME 0");
	return -1;
}

/* Checks operands and options against the verb; -1 or the exit status. */
static int
args_check(struct args *a, const struct verb **vp)
{
	const struct verb *v;
	unsigned extra;

	if (a->nops == 0)
		return usage_fail(NULL, "no verb given");
	a->verb = a->ops[0];
	a->ops++;
	a->nops--;
	v = verb_find(a->verb);
	if (v == NULL)
		return usage_fail(NULL, "unknown verb '%s'", a->verb);
	if (a->nops < v->minops || a->nops > v->maxops)
		return usage_fail(v, "%s: wrong number of operands", v->name);
	extra = a->seen & ~v->opts;
	if (extra != 0)
		return usage_fail(v, "%s does not take %s", v->name,
		    opt_name(extra & -extra));
	if ((a->seen & O_REPLACE) && (a->seen & O_QUEUE))
		return usage_fail(v,
		    "--replace and --queue exclude each other");
	*vp = v;
	return args_operands(a, v);
}

/*
 * The largest message any daemon may take (limits.max_msg at most, in
 * mbxd.json(5)); above MBX_MAX_MSG_LIMIT mbx_send() goes zero-copy.
 */
#define STDIN_LIMIT	((size_t)4 << 30)

/*
 * send without DATA: all of standard input is the message.  Reading stops
 * one byte past the largest message, which the daemon then refuses with
 * EMSGSIZE, instead of swallowing an endless stream; a message is never
 * sent cut short.
 */
static int
read_stdin(struct args *a)
{
	size_t cap = 0, n;
	char *p;

	for (;;) {
		if (a->len == cap) {
			cap = cap ? cap * 2 : 64 * 1024;
			if (cap > STDIN_LIMIT + 1)
				cap = STDIN_LIMIT + 1;
			p = realloc(a->data, cap);
			if (p == NULL)
				return failf(a, ENOMEM, "%s",
				    reason(a->verb, ENOMEM));
			a->data = p;
		}
		n = fread(a->data + a->len, 1, cap - a->len, stdin);
		a->len += n;
		if (a->len > STDIN_LIMIT || feof(stdin))
			return 0;
		if (ferror(stdin))
			return failf(a, errno, "cannot read standard input: %s",
			    strerror(errno));
	}
}

/* The message to send: the DATA operand, else standard input. */
static int
send_data(struct args *a)
{
	if (a->nops == 2) {
		a->data = a->ops[1];
		a->len = strlen(a->ops[1]);
		return 0;
	}
	a->data_owned = true;
	return read_stdin(a);
}

/* The socket path, as libmbx will pick it, for error messages. */
static const char *
socket_path(const struct args *a)
{
	const char *p = a->socket;

	if (p == NULL || *p == '\0')
		p = getenv("MBX_SOCKET");
	if (p == NULL || *p == '\0')
		p = MBX_DEFAULT_SOCKET;
	return p;
}

/* Connects, runs v, disconnects; the exit status. */
static int
run(struct args *a, const struct verb *v)
{
	mbx_t *c;
	int rc, err;

	/* Read stdin before connecting: the connection is not held open
	 * while a slow producer writes. */
	if (v->run == run_send && (rc = send_data(a)) != 0)
		return rc;
	c = mbx_open(socket_path(a));
	if (c == NULL) {
		err = errno;
		return failf(a, err, "cannot connect to %s: %s",
		    socket_path(a), reason("connect", err));
	}
	rc = v->run(c, a);
	mbx_close(c);
	return rc;
}

int
main(int argc, char **argv)
{
	struct args a = { .timeout = -1, .count = 1,
	    .how = MBX_BIND_EXCLUSIVE, .uid = (uid_t)-1, .gid = (gid_t)-1 };
	const struct verb *v = NULL;
	char **ops;
	int rc;

	rc = args_parse(&a, argc, argv);
	ops = a.ops;
	if (rc == -1)
		rc = args_check(&a, &v);
	if (rc == -1)
		rc = run(&a, v);
	if (a.data_owned)
		free(a.data);
	free(ops);
	return rc;
}
