/*
 * state.h - the memfd a planned restart hands to the next mbxd
 * (PROTOCOL.md, "The state"): records of record.h written out in pieces,
 * then sealed against every change; and, in the next daemon, that memfd
 * checked (sealed, whole) and mapped for reading.
 *
 * What goes into it is the broker's business (broker_state_save()); this
 * file knows bytes, seals and sizes only.
 */
#ifndef MBXD_STATE_H
#define MBXD_STATE_H

#include <stddef.h>
#include <stdint.h>

#include "proto.h"

struct state_out {
	int		 fd;		/* the memfd, -1 once given away */
	struct proto_writer w;		/* records not yet written */
	uint64_t	 size;		/* bytes written to fd */
	int		 err;		/* the first write's error, or 0 */
};

/* A new, empty state memfd; 0 or -errno. */
int	 state_out_open(struct state_out *so);
/*
 * Records appended to so->w are written out once a good many piled up
 * (all of them when all): so the state never needs twice its size in
 * memory.  0, or the first error (later calls keep returning it).
 */
int	 state_out_flush(struct state_out *so, bool all);
/* Writes the rest and seals the memfd; returns it (now the caller's). */
int	 state_out_seal(struct state_out *so);
/* Releases what is left (closes the memfd unless it was given away). */
void	 state_out_free(struct state_out *so);

struct state_in {
	const uint8_t	*buf;		/* mapped read-only */
	uint64_t	 size;
};

/*
 * Maps the state memfd fd (which stays the caller's).  -EINVAL, with
 * *why, when it is not a memfd sealed against writes and resizing;
 * -errno when it cannot be read.
 */
int	 state_in_open(struct state_in *si, int fd, const char **why);
void	 state_in_close(struct state_in *si);

#endif
