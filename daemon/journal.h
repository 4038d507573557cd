/*
 * journal.h - a durable mailbox's log on disk (PROTOCOL.md, "Durable
 * mailboxes"): append-only segments of checksummed records under
 * STATE_DIR/m/<name>/, written by one daemon at a time.
 *
 * The journal knows records, files and fdatasync(), not messages or
 * calls: the broker says what to append (journal_put(), journal_del(),
 * journal_hand(), journal_attr()), when to write (journal_write(): one
 * writev for everything appended since) and when to sync (journal_sync(),
 * once per pass for every journal written: the group commit).  Nothing
 * appended is on disk until both returned 0.
 *
 * The records are proto/record.h's.  The segment being written is cut into a new one once it passes
 * JOURNAL_SEGMENT_MAX; a segment every PUT of which has its DEL is
 * removed after the sync that made those DELs safe.
 */
#ifndef MBXD_JOURNAL_H
#define MBXD_JOURNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proto.h"
#include "record.h"

#define JOURNAL_SEGMENT_MAX	(64u << 20)
/* The largest payload a record holds (its length is a u32). */
#define JOURNAL_PAYLOAD_MAX	((uint64_t)UINT32_MAX - 65536)

/* A message as its PUT keeps it, and where that PUT is. */
struct journal_msg {
	struct record_msg rec;
	uint32_t	 seg;		/* the segment holding its PUT */
	bool		 deleted;	/* while loading: its DEL was read */
};

struct journal_segment {
	uint32_t	 num;
	size_t		 live;		/* PUTs without their DEL, written */
};

struct journal {
	int		 dirfd;		/* STATE_DIR/m/<name> */
	int		 fd;		/* the segment being written */
	char		 dir[3 * PROTO_NAME_MAX + 1];	/* <name>, escaped */
	uint32_t	 seg;		/* its number */
	uint64_t	 size;		/* its bytes written */
	uint64_t	 synced;	/* of which fdatasync()ed */
	struct journal_segment *segs;	/* ascending; the last is seg */
	size_t		 nsegs;
	uint64_t	 next_seq;
	uint64_t	 segment_max;	/* JOURNAL_SEGMENT_MAX; a test's less */
	struct proto_writer meta;	/* ATTR, DEL, HAND not yet written */
	struct proto_writer puts;	/* PUTs not yet written */
	size_t		 nputs;		/* in puts */
	bool		 roll;		/* they go into a new segment */
	struct proto_writer attr;	/* the last ATTR, for segment heads */
	bool		 written;	/* written since the last sync */
	bool		 failed;	/* an fdatasync failed: never again */
};

/*
 * Makes the journal of a new mailbox under statefd (the state directory)
 * with its ATTR on disk; 0 or -errno (*out set on 0).
 */
int	 journal_create(int statefd, const char *name, size_t len,
	    const struct record_attr *a, struct journal **out);
/* Closes the files and frees j; what is on disk stays. */
void	 journal_close(struct journal *j);
/* Removes the journal's files and directory, then closes it. */
void	 journal_remove(int statefd, struct journal *j);

/*
 * Appends.  journal_put() numbers the message (m->rec.seq and m->seg
 * are set); false when out of memory (nothing appended).
 */
bool	 journal_put(struct journal *j, struct journal_msg *m);
bool	 journal_del(struct journal *j, uint64_t seq, uint32_t seg);
bool	 journal_hand(struct journal *j, uint64_t seq, uint32_t attempts);
bool	 journal_attr(struct journal *j, const struct record_attr *a);
/* Something appended is not yet written. */
bool	 journal_pending(const struct journal *j);
/* PUTs appended and not yet written. */
size_t	 journal_pending_puts(const struct journal *j);

/*
 * Writes what was appended.  On an error (-ENOSPC, -EIO...) the file is
 * cut back to what it held before, the PUTs are dropped (their sends
 * fail) and the rest stays appended for the next write.
 */
int	 journal_write(struct journal *j);
/*
 * The same for what is not a PUT (DEL, HAND, ATTR): written now, ahead
 * of PUTs appended before them (those name later messages), never into a
 * new segment.
 */
int	 journal_write_meta(struct journal *j);
/*
 * fdatasync() of what was written, then segments that hold nothing live
 * are removed.  On an error the journal is failed for good (a failed
 * fsync may have dropped the pages: a retry proves nothing).
 */
int	 journal_sync(struct journal *j);

/* What journal_load() found. */
struct journal_load {
	struct journal	*journal;	/* open at its end; NULL if failed */
	char		 name[PROTO_NAME_MAX + 1];	/* unescaped */
	size_t		 name_len;
	bool		 has_attr;
	struct record_attr attr;	/* dead_letter points into attr_buf */
	char		*attr_buf;
	struct journal_msg *msgs;	/* live, in order; payloads owned */
	size_t		 nmsgs;
	uint64_t	 max_seq;	/* the highest number read */
	char		 why[160];	/* failed: the reason */
	char		 cut[160];	/* a torn end was cut: what */
};

/*
 * Reads the journal in STATE_DIR/m/<dir>: 0 with *out filled (failed
 * when out->journal is NULL and why says why), or -errno when the
 * directory is no journal at all (-ENOENT) or memory ran out.
 */
int	 journal_load(int statefd, const char *dir, struct journal_load *out);
void	 journal_load_free(struct journal_load *l);

#endif
