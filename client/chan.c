/*
 * chan.c - a handle's end of its channel (chan.h).
 *
 * The daemon made, sized and sealed both page sets before it sent them,
 * so the client checks only that they are what the protocol says (their
 * sizes; the daemon set cannot be mapped writable anyway) and trusts the
 * daemon's words in them as it trusts its frames.
 */
#include <errno.h>
#include <poll.h>
#include <stdint.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "chan.h"

void
chan_init(struct chan *ch)
{
	ch->state = CHAN_NONE;
	ch->client = NULL;
	ch->daemon = NULL;
	ch->doorbell = -1;
	ch->revoke_seen = 0;
}

void
chan_deinit(struct chan *ch)
{
	if (ch->client != NULL)
		(void)munmap(ch->client, CHANNEL_CLIENT_SIZE);
	if (ch->daemon != NULL)
		(void)munmap((void *)(uintptr_t)ch->daemon,
		    CHANNEL_DAEMON_SIZE);
	if (ch->doorbell >= 0)
		(void)close(ch->doorbell);
	ch->client = NULL;
	ch->daemon = NULL;
	ch->doorbell = -1;
	ch->state = CHAN_OFF;
}

static bool
chan_size_is(int fd, off_t size)
{
	struct stat st;

	return fstat(fd, &st) == 0 && st.st_size == size;
}

int
chan_map(struct chan *ch, int client_fd, int daemon_fd, int doorbell,
    uint32_t ring_size)
{
	void *p;
	int err = EPROTO;

	ch->doorbell = doorbell;
	if (ring_size != CHANNEL_RING_SIZE ||
	    !chan_size_is(client_fd, CHANNEL_CLIENT_SIZE) ||
	    !chan_size_is(daemon_fd, CHANNEL_DAEMON_SIZE))
		goto fail;
	p = mmap(NULL, CHANNEL_CLIENT_SIZE, PROT_READ | PROT_WRITE,
	    MAP_SHARED, client_fd, 0);
	if (p == MAP_FAILED) {
		err = errno;
		goto fail;
	}
	ch->client = p;
	p = mmap(NULL, CHANNEL_DAEMON_SIZE, PROT_READ, MAP_SHARED, daemon_fd,
	    0);
	if (p == MAP_FAILED) {
		err = errno;
		goto fail;
	}
	ch->daemon = p;
	(void)close(client_fd);
	(void)close(daemon_fd);
	/* A new channel's rings start at 0 (PROTOCOL.md, "CHANNEL"). */
	channel_tx_init(&ch->tx, ch->client + CHANNEL_CLIENT_RING, 0);
	/* And its sequence at 0: one that moved already is looked into. */
	ch->revoke_seen = 0;
	ch->state = CHAN_OPEN;
	return 0;
fail:
	(void)close(client_fd);
	(void)close(daemon_fd);
	chan_deinit(ch);
	errno = err;
	return -1;
}

/* CLOCK_MONOTONIC in nanoseconds: a post's stamp (the order rule). */
static uint64_t
chan_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static uint64_t
chan_head(const struct chan *ch)
{
	return channel_load(ch->daemon, CHANNEL_DAEMON_TX_HEAD);
}

void *
chan_reserve(struct chan *ch, uint16_t kind, uint16_t flags, size_t len,
    uint64_t *pos)
{
	/*
	 * Stamped before the tail's store makes it visible, and after the
	 * call began: all the order rule asks (A.publish < B.stamp).
	 */
	void *at = channel_tx_reserve(&ch->tx, chan_head(ch), kind, flags,
	    chan_now_ns(), len);

	/* A PAD may come first: the record ends at the tail. */
	if (at != NULL)
		*pos = ch->tx.tail - channel_rec_need(len);
	return at;
}

int
chan_ring(struct chan *ch)
{
	/* EAGAIN: the counter is near its limit, so mbxd is awake anyway. */
	if (eventfd_write(ch->doorbell, 1) == -1 && errno != EAGAIN)
		return -1;
	return 0;
}

int
chan_publish(struct chan *ch)
{
	channel_store(ch->client, CHANNEL_CLIENT_TX_TAIL,
	    channel_tx_publish(&ch->tx));
	channel_fence();
	if (!(channel_load(ch->daemon, CHANNEL_DAEMON_SLEEP) &
	    CHANNEL_WANT_DATA))
		return 0;
	return chan_ring(ch);
}

bool
chan_revoked(struct chan *ch)
{
	uint64_t seq = channel_load(ch->daemon, CHANNEL_DAEMON_REVOKE);

	if (seq == ch->revoke_seen)
		return false;
	ch->revoke_seen = seq;
	return true;
}

uint64_t
chan_takeback(const struct chan *ch)
{
	return channel_load(ch->daemon, CHANNEL_DAEMON_TAKEBACK);
}

uint64_t
chan_final_wait(const struct chan *ch, int wait_ms)
{
	uint64_t v;

	for (int waited = 0; (v = channel_load(ch->daemon,
	    CHANNEL_DAEMON_FINAL)) == 0 && waited < wait_ms; waited++)
		(void)poll(NULL, 0, 1);
	return v;
}

uint64_t
chan_tx_taken(const struct chan *ch)
{
	return channel_load(ch->daemon, CHANNEL_DAEMON_TX_HEAD);
}

bool
chan_want_room(struct chan *ch, size_t len)
{
	channel_store(ch->client, CHANNEL_CLIENT_SLEEP, CHANNEL_WANT_ROOM);
	channel_fence();
	if (!channel_tx_fits(&ch->tx, chan_head(ch), len))
		return false;
	chan_room_done(ch);
	return true;
}

void
chan_room_done(struct chan *ch)
{
	channel_store(ch->client, CHANNEL_CLIENT_SLEEP, 0);
}
