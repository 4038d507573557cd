/*
 * restart.c - a planned restart (see restart.h).
 */
#include <errno.h>
#include <inttypes.h>
#include <string.h>
#include <unistd.h>

#include "broker.h"
#include "log.h"
#include "notify.h"
#include "restart.h"
#include "session.h"
#include "state.h"

/* How long the clients' sockets get to take their last answers. */
#define RESTART_FLUSH_MS	1000
/* How long the manager's queue gets to take each descriptor. */
#define RESTART_STORE_MS	5000

/* The queues into a sealed memfd; returns it, or -errno (logged). */
static int
restart_write_state(struct broker *b, uint64_t *nmb, uint64_t *nmsg)
{
	struct state_out so;
	int err, fd;

	if ((err = state_out_open(&so)) < 0) {
		log_err("restart: cannot make the state's memfd: %s",
		    strerror(-err));
		return err;
	}
	if ((err = broker_state_save(b, &so, nmb, nmsg)) < 0 ||
	    (fd = state_out_seal(&so)) < 0) {
		if (err == 0)
			err = fd;
		log_err("restart: cannot write the state: %s", strerror(-err));
		state_out_free(&so);
		return err;
	}
	state_out_free(&so);
	return fd;
}

int
restart_hand_over(struct broker *b, struct session_set *set, int listen_fd)
{
	uint64_t nmb = 0, nmsg = 0;
	size_t left;
	int fd, err;

	/* Nothing more comes in; what came is done, then answered. */
	session_set_quiesce(set);
	broker_shutdown(b);
	if ((left = session_set_flush_wait(set, RESTART_FLUSH_MS)) > 0)
		log_warn("restart: %zu bytes of answers not taken by their "
		    "clients within %d ms", left, RESTART_FLUSH_MS);
	/* The clients go: what they held goes back to its queue's head. */
	session_set_free_all(set);
	if ((fd = restart_write_state(b, &nmb, &nmsg)) < 0)
		return fd;
	/* The listening socket first: a store with a state is whole. */
	if (listen_fd >= 0 && (err = notify_store_fds(RESTART_FD_LISTEN,
	    &listen_fd, 1, RESTART_STORE_MS)) < 0) {
		log_err("restart: the service manager did not take the "
		    "listening socket: %s", strerror(-err));
		close(fd);
		return err;
	}
	if ((err = notify_store_fds(RESTART_FD_STATE, &fd, 1,
	    RESTART_STORE_MS)) < 0) {
		log_err("restart: the service manager did not take the state: "
		    "%s: %" PRIu64 " messages are lost", strerror(-err), nmsg);
		close(fd);
		return err;
	}
	close(fd);
	log_info("restart: %" PRIu64 " mailboxes and %" PRIu64 " messages "
	    "handed to the service manager", nmb, nmsg);
	return 0;
}

void
restart_take_over(struct broker *b, int fd)
{
	struct state_in si;
	uint64_t nmb = 0, nmsg = 0;
	const char *why = NULL;
	int err;

	err = state_in_open(&si, fd, &why);
	/*
	 * Dropped from the store first, whatever comes: a later crash, even
	 * one during this load, must not bring an old state back.
	 */
	close(fd);
	if (notify_remove_fds(RESTART_FD_STATE) < 0)
		log_err("restart: the service manager may keep the old state: "
		    "a crash before the next restart would bring it back");
	if (err < 0)
		log_err("restart: the state passed is refused (%s): a cold "
		    "start", why != NULL ? why : strerror(-err));
	else {
		err = broker_state_load(b, si.buf, si.size, &why, &nmb, &nmsg);
		if (err == -EINVAL)
			log_err("restart: the state passed is refused (%s): a "
			    "cold start", why);
		else if (err < 0)
			log_err("restart: the state could not all be loaded "
			    "(%s): %" PRIu64 " mailboxes and %" PRIu64
			    " messages were", strerror(-err), nmb, nmsg);
		else
			log_info("restart: %" PRIu64 " mailboxes and %" PRIu64
			    " messages taken over", nmb, nmsg);
		state_in_close(&si);
	}
}
