/*
 * chan.h - a libmbx handle's end of its channel (PROTOCOL.md, "CHANNEL"
 * and "Version 6"): the two page sets mbxd made for this connection, the
 * tx ring the handle posts into, and the doorbell it rings when mbxd
 * sleeps.
 *
 * A post is a record in the tx ring: reserved (chan_reserve()), filled
 * by the caller, then published (chan_publish()): the tail is stored,
 * a full fence, and the daemon's sleep flag read; if it sleeps, one
 * eventfd write wakes it.  By that fence pair (the daemon stores its
 * flag, fences and looks at the tail once more before it sleeps) no post
 * is ever left unseen, and a busy daemon is never woken.  A full ring is
 * waited for by the session (mbx-session.c), which reads the WAKE frame
 * the daemon sends once half the ring is free.
 *
 * No socket I/O and no policy here: which sends post is mbx-send.c's,
 * when to open the channel the session's.  Internal to libmbx.
 */
#ifndef MBX_CLIENT_CHAN_H
#define MBX_CLIENT_CHAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "channel.h"

enum chan_state {
	CHAN_NONE = 0,		/* not asked for yet */
	CHAN_OPEN,		/* mapped: posts go into the ring */
	CHAN_OFF,		/* refused, failed or turned off: the socket */
};

struct chan {
	enum chan_state	 state;
	uint8_t		*client;	/* the client set, read-write */
	const uint8_t	*daemon;	/* the daemon set, read-only */
	int		 doorbell;	/* eventfd, or -1 */
	struct channel_tx tx;
	uint64_t	 revoke_seen;	/* the daemon's revocation sequence */
};

void	 chan_init(struct chan *ch);
/* Unmaps the sets and closes the doorbell; the state becomes CHAN_OFF. */
void	 chan_deinit(struct chan *ch);
/*
 * Maps the descriptors of a CHANNEL answer (client set, daemon set,
 * doorbell), which it takes over whatever happens: 0, or -1 with errno
 * (EPROTO when they are not what the protocol says).
 */
int	 chan_map(struct chan *ch, int client_fd, int daemon_fd, int doorbell,
	    uint32_t ring_size);
/*
 * Room for a record of len body bytes (at most CHANNEL_REC_MAX) of kind
 * and flags, stamped now: a pointer to fill before chan_publish(), or
 * NULL when the ring has no room for it yet.  *pos is where the record
 * starts in the ring, the name GRANT_CHECK gives it.
 */
void	*chan_reserve(struct chan *ch, uint16_t kind, uint16_t flags,
	    size_t len, uint64_t *pos);
/*
 * Makes every reserved record visible to mbxd and wakes it if it sleeps:
 * 0, or -1 with errno when the doorbell could not be rung (the records
 * are published; the handle must then be treated as broken).
 */
int	 chan_publish(struct chan *ch);
/* Wakes mbxd (its doorbell): 0, or -1 with errno. */
int	 chan_ring(struct chan *ch);
/*
 * After a publication: whether mbxd ended a grant of this connection
 * (a destroyed mailbox) since the last call said so.  The fence of
 * chan_publish() comes before the look: a post the daemon may have
 * dropped is always followed by a true here (PROTOCOL.md, "GRANT_CHECK").
 */
bool	 chan_revoked(struct chan *ch);
/*
 * The daemon's takeback word: it moves before mbxd takes back messages
 * this handle holds (PROTOCOL.md, "Taken back").
 */
uint64_t chan_takeback(const struct chan *ch);
/*
 * After the connection broke during a check: the daemon's final word
 * (CHANNEL_DAEMON_FINAL), waited for up to wait_ms, or 0 when it never
 * came (the daemon died without a planned restart).
 */
uint64_t chan_final_wait(const struct chan *ch, int wait_ms);
/* The end of the posts the daemon took (CHANNEL_DAEMON_TX_HEAD). */
uint64_t chan_tx_taken(const struct chan *ch);
/*
 * The waiting-for-room half of the wake-up protocol: chan_want_room()
 * stores the flag, fences and says whether len bytes fit now after all
 * (then the flag is cleared again and there is nothing to wait for);
 * chan_room_done() clears it.
 */
bool	 chan_want_room(struct chan *ch, size_t len);
void	 chan_room_done(struct chan *ch);

#endif
