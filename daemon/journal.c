/*
 * journal.c - a durable mailbox's log on disk (see journal.h).
 *
 * Files: STATE_DIR/m/<dir>/NNNNNNNN.log, where <dir> is the mailbox's
 * name with '/' written %2F and a leading '.' written %2E (names have no
 * '%'), so that every name is one plain directory entry.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include "journal.h"

/* "<name>" escaped into dir (room for 3 bytes a character). */
static void
journal_escape(const char *name, size_t len, char *dir)
{
	size_t o = 0;

	for (size_t i = 0; i < len; i++) {
		if (name[i] == '/' || (i == 0 && name[i] == '.')) {
			o += (size_t)sprintf(dir + o, "%%%02X",
			    (unsigned)(unsigned char)name[i]);
		} else
			dir[o++] = name[i];
	}
	dir[o] = '\0';
}

/* The name a directory stands for; false when it is none. */
static bool
journal_unescape(const char *dir, char *name, size_t *len)
{
	size_t o = 0;

	for (size_t i = 0; dir[i] != '\0'; i++) {
		if (o >= PROTO_NAME_MAX)
			return false;
		if (dir[i] == '%') {
			unsigned v;

			if (sscanf(dir + i + 1, "%2X", &v) != 1 ||
			    (v != '/' && v != '.'))
				return false;
			name[o++] = (char)v;
			i += 2;
		} else
			name[o++] = dir[i];
	}
	name[o] = '\0';
	*len = o;
	return proto_name_valid(name, o);
}

/* j->attr: the ATTR record every new segment starts with. */
static bool
journal_set_attr(struct journal *j, const struct record_attr *a)
{
	struct proto_writer w;

	proto_writer_init(&w);
	if (!record_attr_put(&w, a)) {
		proto_writer_free(&w);
		return false;
	}
	proto_writer_free(&j->attr);
	j->attr = w;
	return true;
}

/*
 * Files.
 */

static int
write_all(int fd, const struct iovec *iov, int n, uint64_t off)
{
	struct iovec v[2];
	int k = 0;

	for (int i = 0; i < n && i < 2; i++)
		if (iov[i].iov_len > 0)
			v[k++] = iov[i];
	while (k > 0) {
		ssize_t w = pwritev(fd, v, k, (off_t)off);

		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return -errno;
		if (w == 0)
			return -EIO;
		off += (uint64_t)w;
		while (k > 0 && (size_t)w >= v[0].iov_len) {
			w -= (ssize_t)v[0].iov_len;
			v[0] = v[1];
			k--;
		}
		if (k > 0) {
			v[0].iov_base = (char *)v[0].iov_base + w;
			v[0].iov_len -= (size_t)w;
		}
	}
	return 0;
}

static int
segment_open(int dirfd, uint32_t num, int flags)
{
	char file[32];

	snprintf(file, sizeof(file), "%08" PRIu32 ".log", num);
	return openat(dirfd, file, flags | O_CLOEXEC, 0600);
}

static void
segment_unlink(int dirfd, uint32_t num)
{
	char file[32];

	snprintf(file, sizeof(file), "%08" PRIu32 ".log", num);
	(void)unlinkat(dirfd, file, 0);
}

/* A segment's number from its file name, or 0 (numbers start at 1). */
static uint32_t
segment_num(const char *file)
{
	unsigned long v;
	char *end;

	if (strlen(file) != 12 || strcmp(file + 8, ".log") != 0 ||
	    file[0] < '0' || file[0] > '9')
		return 0;
	v = strtoul(file, &end, 10);
	return end == file + 8 && v > 0 && v <= UINT32_MAX ? (uint32_t)v : 0;
}

static int
seg_cmp(const void *a, const void *b)
{
	uint32_t x = ((const struct journal_segment *)a)->num;
	uint32_t y = ((const struct journal_segment *)b)->num;

	return x < y ? -1 : x > y;
}

/* The segments of dirfd, ascending; -errno. */
static int
segments_list(int dirfd, struct journal_segment **out, size_t *n)
{
	int fd = dup(dirfd);
	struct dirent *e;
	DIR *d;

	*out = NULL;
	*n = 0;
	if (fd < 0 || (d = fdopendir(fd)) == NULL) {
		int err = -errno;

		if (fd >= 0)
			close(fd);
		return err;
	}
	rewinddir(d);
	while ((e = readdir(d)) != NULL) {
		uint32_t num = segment_num(e->d_name);
		struct journal_segment *grown;

		if (num == 0)
			continue;
		if ((grown = realloc(*out, (*n + 1) * sizeof(**out))) == NULL) {
			closedir(d);
			free(*out);
			*out = NULL;
			return -ENOMEM;
		}
		*out = grown;
		(*out)[(*n)++] = (struct journal_segment){ num, 0 };
	}
	closedir(d);
	if (*n > 0)
		qsort(*out, *n, sizeof(**out), seg_cmp);
	return 0;
}

static struct journal *
journal_alloc(void)
{
	struct journal *j = calloc(1, sizeof(*j));

	if (j == NULL)
		return NULL;
	j->dirfd = j->fd = -1;
	proto_writer_init(&j->meta);
	proto_writer_init(&j->puts);
	proto_writer_init(&j->attr);
	j->next_seq = 1;
	j->segment_max = JOURNAL_SEGMENT_MAX;
	return j;
}

void
journal_close(struct journal *j)
{
	if (j == NULL)
		return;
	if (j->fd >= 0)
		close(j->fd);
	if (j->dirfd >= 0)
		close(j->dirfd);
	proto_writer_free(&j->meta);
	proto_writer_free(&j->puts);
	proto_writer_free(&j->attr);
	free(j->segs);
	free(j);
}

/* Removes every segment file of dirfd (a stale directory's, or ours). */
static void
journal_clear(int dirfd)
{
	struct journal_segment *segs;
	size_t n;

	if (segments_list(dirfd, &segs, &n) < 0)
		return;
	for (size_t i = 0; i < n; i++)
		segment_unlink(dirfd, segs[i].num);
	free(segs);
}

void
journal_remove(int statefd, struct journal *j)
{
	int mfd;

	if (j == NULL)
		return;
	journal_clear(j->dirfd);
	if ((mfd = openat(statefd, "m", O_RDONLY | O_DIRECTORY |
	    O_CLOEXEC)) >= 0) {
		(void)unlinkat(mfd, j->dir, AT_REMOVEDIR);
		(void)fsync(mfd);
		close(mfd);
	}
	journal_close(j);
}

int
journal_create(int statefd, const char *name, size_t len,
    const struct record_attr *a, struct journal **out)
{
	struct journal *j;
	struct iovec iov[1];
	int mfd = -1, err;

	if ((j = journal_alloc()) == NULL ||
	    (j->segs = calloc(1, sizeof(*j->segs))) == NULL ||
	    !journal_set_attr(j, a)) {
		journal_close(j);
		return -ENOMEM;
	}
	journal_escape(name, len, j->dir);
	if ((mkdirat(statefd, "m", 0700) < 0 && errno != EEXIST) ||
	    (mfd = openat(statefd, "m", O_RDONLY | O_DIRECTORY |
	    O_CLOEXEC)) < 0 ||
	    (mkdirat(mfd, j->dir, 0700) < 0 && errno != EEXIST) ||
	    (j->dirfd = openat(mfd, j->dir, O_RDONLY | O_DIRECTORY |
	    O_CLOEXEC)) < 0)
		goto fail;
	/* A directory left by a mailbox of that name once: start afresh. */
	journal_clear(j->dirfd);
	j->seg = 1;
	j->segs[0] = (struct journal_segment){ 1, 0 };
	j->nsegs = 1;
	if ((j->fd = segment_open(j->dirfd, 1, O_WRONLY | O_CREAT |
	    O_TRUNC)) < 0)
		goto fail;
	iov[0] = (struct iovec){ j->attr.buf, j->attr.len };
	if ((err = write_all(j->fd, iov, 1, 0)) < 0) {
		errno = -err;
		goto fail;
	}
	if (fdatasync(j->fd) < 0 || fsync(j->dirfd) < 0 || fsync(mfd) < 0)
		goto fail;
	j->size = j->synced = j->attr.len;
	close(mfd);
	*out = j;
	return 0;
fail:
	err = -errno;
	if (mfd >= 0) {
		if (j->dirfd >= 0) {
			journal_clear(j->dirfd);
			(void)unlinkat(mfd, j->dir, AT_REMOVEDIR);
		}
		close(mfd);
	}
	journal_close(j);
	return err;
}

/*
 * Appending.
 */

bool
journal_put(struct journal *j, struct journal_msg *m)
{
	bool roll = j->roll || (j->nputs == 0 && j->size >= j->segment_max);

	m->rec.seq = j->next_seq;
	/* journal_write() cuts a new segment first once this one is full. */
	m->seg = roll ? j->seg + 1 : j->seg;
	if (!record_msg_put(&j->puts, &m->rec))
		return false;
	j->roll = roll;
	j->next_seq++;
	j->nputs++;
	return true;
}

bool
journal_del(struct journal *j, uint64_t seq, uint32_t seg)
{
	if (!record_del_put(&j->meta, seq))
		return false;
	for (size_t i = 0; i < j->nsegs; i++)
		if (j->segs[i].num == seg && j->segs[i].live > 0) {
			j->segs[i].live--;
			break;
		}
	return true;
}

bool
journal_hand(struct journal *j, uint64_t seq, uint32_t attempts)
{
	return record_hand_put(&j->meta, seq, attempts);
}

bool
journal_attr(struct journal *j, const struct record_attr *a)
{
	if (!journal_set_attr(j, a))
		return false;
	return record_attr_put(&j->meta, a);
}

bool
journal_pending(const struct journal *j)
{
	return j->meta.len > 0 || j->puts.len > 0;
}

size_t
journal_pending_puts(const struct journal *j)
{
	return j->nputs;
}

/*
 * Starts segment seg + 1 with the ATTR record: what the old one holds is
 * synced first, and the new name is made safe by syncing the directory.
 */
static int
journal_roll(struct journal *j)
{
	struct journal_segment *grown;
	struct iovec iov[1] = { { j->attr.buf, j->attr.len } };
	int fd, err;

	if (j->written && fdatasync(j->fd) < 0) {
		j->failed = true;
		return -errno;
	}
	j->synced = j->size;
	j->written = false;
	if ((grown = realloc(j->segs, (j->nsegs + 1) * sizeof(*grown))) == NULL)
		return -ENOMEM;
	j->segs = grown;
	if ((fd = segment_open(j->dirfd, j->seg + 1, O_WRONLY | O_CREAT |
	    O_TRUNC)) < 0)
		return -errno;
	if ((err = write_all(fd, iov, 1, 0)) < 0 || fsync(j->dirfd) < 0) {
		if (err == 0)
			err = -errno;
		close(fd);
		segment_unlink(j->dirfd, j->seg + 1);
		return err;
	}
	close(j->fd);
	j->fd = fd;
	j->seg++;
	j->segs[j->nsegs++] = (struct journal_segment){ j->seg, 0 };
	j->size = j->attr.len;
	j->synced = 0;
	j->written = true;
	return 0;
}

static void
journal_drop_puts(struct journal *j)
{
	j->puts.len = 0;
	j->nputs = 0;
	j->roll = false;
}

/* Writes meta, and with puts the PUTs too; see journal_write(). */
static int
journal_write_some(struct journal *j, bool puts)
{
	struct iovec iov[2] = {
		{ j->meta.buf, j->meta.len }, { j->puts.buf, puts ? j->puts.len : 0 },
	};
	uint64_t total = iov[0].iov_len + iov[1].iov_len;
	int err;

	if (total == 0)
		return 0;
	if (j->failed) {
		if (puts)
			journal_drop_puts(j);
		return -EIO;
	}
	/*
	 * A new segment only where journal_put() said its PUTs would go:
	 * their segment is known from the moment they are appended.
	 */
	if (puts && (j->roll || (j->nputs == 0 &&
	    j->size >= j->segment_max)) && (err = journal_roll(j)) < 0) {
		journal_drop_puts(j);
		return err;
	}
	if ((err = write_all(j->fd, iov, 2, j->size)) < 0) {
		/* Nothing half-written stays: cut back to what was there. */
		if (ftruncate(j->fd, (off_t)j->size) < 0)
			j->failed = true;
		if (puts)
			journal_drop_puts(j);
		return err;
	}
	j->size += total;
	j->meta.len = 0;
	if (puts) {
		j->segs[j->nsegs - 1].live += j->nputs;
		journal_drop_puts(j);
	}
	j->written = true;
	return 0;
}

int
journal_write(struct journal *j)
{
	return journal_write_some(j, true);
}

int
journal_write_meta(struct journal *j)
{
	return journal_write_some(j, false);
}

/* Removes the segments, but the last, that hold nothing live. */
static void
journal_prune(struct journal *j)
{
	size_t keep = 0;

	for (size_t i = 0; i < j->nsegs; i++) {
		if (i + 1 < j->nsegs && j->segs[i].live == 0)
			segment_unlink(j->dirfd, j->segs[i].num);
		else
			j->segs[keep++] = j->segs[i];
	}
	j->nsegs = keep;
}

int
journal_sync(struct journal *j)
{
	if (j->failed)
		return -EIO;
	if (!j->written)
		return 0;
	if (fdatasync(j->fd) < 0) {
		int err = -errno;

		/* The pages may be gone: never carry on as if they were not. */
		j->failed = true;
		if (ftruncate(j->fd, (off_t)j->synced) < 0)
			err = -EIO;
		return err;
	}
	j->synced = j->size;
	j->written = false;
	/* Segments whose every PUT has a DEL that is now on disk. */
	if (j->meta.len == 0)
		journal_prune(j);
	return 0;
}

/*
 * Reading back.
 */

static int
msg_seq_cmp(const void *key, const void *elem)
{
	uint64_t seq = *(const uint64_t *)key;
	uint64_t e = ((const struct journal_msg *)elem)->rec.seq;

	return seq < e ? -1 : seq > e;
}

/* One record: false when its body does not decode (corruption). */
static bool
load_record(struct journal_load *l, uint32_t seg, uint8_t type,
    const uint8_t *body, size_t len, size_t *cap, bool *nomem)
{
	struct journal_msg m = { .seg = seg }, *found;
	struct record_attr a;
	uint64_t seq;
	uint32_t attempts = 0;
	char *buf;

	switch (type) {
	case RECORD_ATTR:
		if (!record_attr_get(body, len, &a))
			return false;
		if ((buf = malloc(a.dead_letter.len + 1)) == NULL) {
			*nomem = true;
			return true;
		}
		memcpy(buf, a.dead_letter.ptr, a.dead_letter.len);
		buf[a.dead_letter.len] = '\0';
		free(l->attr_buf);
		l->attr_buf = buf;
		a.dead_letter.ptr = buf;
		l->attr = a;
		l->has_attr = true;
		return true;
	case RECORD_PUT:
		if (!record_msg_get(body, len, &m.rec) ||
		    m.rec.seq >= UINT64_C(1) << 63 || (l->nmsgs > 0 &&
		    m.rec.seq <= l->msgs[l->nmsgs - 1].rec.seq))
			return false;
		if (l->nmsgs == *cap) {
			size_t ncap = *cap ? *cap * 2 : 64;
			struct journal_msg *grown = realloc(l->msgs,
			    ncap * sizeof(*grown));

			if (grown == NULL) {
				*nomem = true;
				return true;
			}
			l->msgs = grown;
			*cap = ncap;
		}
		if ((buf = malloc(m.rec.origin.len + m.rec.payload.len +
		    1)) == NULL) {
			*nomem = true;
			return true;
		}
		memcpy(buf, m.rec.payload.ptr, m.rec.payload.len);
		memcpy(buf + m.rec.payload.len, m.rec.origin.ptr,
		    m.rec.origin.len);
		buf[m.rec.payload.len + m.rec.origin.len] = '\0';
		m.rec.payload.ptr = buf;
		m.rec.origin.ptr = buf + m.rec.payload.len;
		if (m.rec.seq > l->max_seq)
			l->max_seq = m.rec.seq;
		l->msgs[l->nmsgs++] = m;
		return true;
	case RECORD_DEL:
	case RECORD_HAND:
		if (type == RECORD_DEL ? !record_del_get(body, len, &seq) :
		    !record_hand_get(body, len, &seq, &attempts))
			return false;
		if (seq > l->max_seq)
			l->max_seq = seq;
		/* A DEL may name a PUT of a segment removed since. */
		found = bsearch(&seq, l->msgs, l->nmsgs, sizeof(*l->msgs),
		    msg_seq_cmp);
		if (found == NULL)
			return true;
		if (type == RECORD_HAND)
			found->rec.attempts = attempts;
		else
			found->deleted = true;
		return true;
	default:
		return false;
	}
}

/*
 * Reads segment num into l; its good length in *good.  A bad record
 * (torn or corrupt) stops the read at it: *bad says so, and *corrupt
 * when the record checked out but did not decode.
 */
static int
load_segment(struct journal_load *l, int dirfd, uint32_t num, size_t *cap,
    uint64_t *good, bool *bad, bool *corrupt, bool *nomem)
{
	struct stat st;
	uint8_t *buf, type;
	const uint8_t *body;
	size_t len;
	uint64_t off = 0, size;
	enum record_read rr;
	int fd = segment_open(dirfd, num, O_RDONLY), err = 0;

	*good = 0;
	*bad = *corrupt = false;
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0) {
		err = -errno;
		close(fd);
		return err;
	}
	size = (uint64_t)st.st_size;
	if ((buf = malloc(size > 0 ? size : 1)) == NULL) {
		close(fd);
		return -ENOMEM;
	}
	for (uint64_t got = 0; got < size; ) {
		ssize_t n = pread(fd, buf + got, size - got, (off_t)got);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			size = got;
			break;
		}
		got += (uint64_t)n;
	}
	close(fd);
	while (!*nomem && (rr = record_next(buf, size, &off, &type, &body,
	    &len)) != RECORD_END) {
		if (rr == RECORD_TORN) {
			*bad = true;
			break;
		}
		if (!load_record(l, num, type, body, len, cap, nomem)) {
			*bad = *corrupt = true;
			off -= RECORD_HEAD + 1 + len;
			break;
		}
	}
	free(buf);
	*good = off;
	return 0;
}

int
journal_load(int statefd, const char *dir, struct journal_load *l)
{
	struct journal_segment *segs = NULL;
	struct journal *j = NULL;
	size_t nsegs = 0, cap = 0, live = 0;
	uint64_t good = 0, next_seq = 1;
	bool bad = false, corrupt = false, nomem = false;
	int mfd, dirfd = -1, err;

	memset(l, 0, sizeof(*l));
	if (!journal_unescape(dir, l->name, &l->name_len))
		return -ENOENT;
	if ((mfd = openat(statefd, "m", O_RDONLY | O_DIRECTORY |
	    O_CLOEXEC)) < 0)
		return -errno;
	dirfd = openat(mfd, dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	close(mfd);
	if (dirfd < 0)
		return -errno == -ENOTDIR ? -ENOENT : -errno;
	if ((err = segments_list(dirfd, &segs, &nsegs)) < 0) {
		close(dirfd);
		return err;
	}
	if (nsegs == 0) {
		snprintf(l->why, sizeof(l->why), "no log segment");
		goto failed;
	}
	for (size_t i = 0; i < nsegs; i++) {
		size_t before = l->nmsgs;

		if ((err = load_segment(l, dirfd, segs[i].num, &cap, &good,
		    &bad, &corrupt, &nomem)) < 0) {
			snprintf(l->why, sizeof(l->why), "segment %" PRIu32
			    ": %s", segs[i].num, strerror(-err));
			goto failed;
		}
		if (nomem) {
			err = -ENOMEM;
			goto fail;
		}
		segs[i].live = l->nmsgs - before;
		if (!bad)
			continue;
		if (corrupt || i + 1 < nsegs) {
			snprintf(l->why, sizeof(l->why), "segment %" PRIu32
			    ": a bad record at byte %" PRIu64, segs[i].num,
			    good);
			goto failed;
		}
		/* The end of the last segment: a write the crash cut short. */
		snprintf(l->cut, sizeof(l->cut), "segment %" PRIu32 ": a torn "
		    "last record was cut at byte %" PRIu64, segs[i].num, good);
	}
	if (!l->has_attr) {
		snprintf(l->why, sizeof(l->why), "no attributes record");
		goto failed;
	}
	/* The live ones, in order; each segment's live count. */
	for (size_t i = 0; i < nsegs; i++)
		segs[i].live = 0;
	for (size_t i = 0; i < l->nmsgs; i++) {
		struct journal_msg *m = &l->msgs[i];

		if (m->deleted) {
			free((void *)(uintptr_t)m->rec.payload.ptr);
			continue;
		}
		for (size_t k = 0; k < nsegs; k++)
			if (segs[k].num == m->seg)
				segs[k].live++;
		l->msgs[live++] = *m;
	}
	l->nmsgs = live;
	/* Numbers are never reused: a DEL of an old one may still be read. */
	next_seq = l->max_seq + 1;
	if ((j = journal_alloc()) == NULL ||
	    !journal_set_attr(j, &l->attr)) {
		err = -ENOMEM;
		goto fail;
	}
	snprintf(j->dir, sizeof(j->dir), "%s", dir);
	j->dirfd = dirfd;
	dirfd = -1;
	j->seg = segs[nsegs - 1].num;
	if ((j->fd = segment_open(j->dirfd, j->seg, O_WRONLY)) < 0 ||
	    (l->cut[0] != '\0' && (ftruncate(j->fd, (off_t)good) < 0 ||
	    fdatasync(j->fd) < 0))) {
		snprintf(l->why, sizeof(l->why), "segment %" PRIu32 ": %s",
		    j->seg, strerror(errno));
		journal_close(j);
		j = NULL;
		goto failed;
	}
	j->size = j->synced = good;
	j->next_seq = next_seq;
	j->segs = segs;
	j->nsegs = nsegs;
	segs = NULL;
	/* Segments emptied before the crash and not yet removed go now. */
	journal_prune(j);
	l->journal = j;
	return 0;
failed:
	/* Not served, and not touched: the files stay for whoever looks. */
	free(segs);
	if (dirfd >= 0)
		close(dirfd);
	return 0;
fail:
	free(segs);
	if (dirfd >= 0)
		close(dirfd);
	journal_close(j);
	journal_load_free(l);
	return err;
}

void
journal_load_free(struct journal_load *l)
{
	for (size_t i = 0; i < l->nmsgs; i++)
		free((void *)(uintptr_t)l->msgs[i].rec.payload.ptr);
	free(l->msgs);
	free(l->attr_buf);
	l->msgs = NULL;
	l->nmsgs = 0;
	l->attr_buf = NULL;
}
