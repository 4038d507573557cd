/*
 * restart.h - a planned restart, both halves (PROTOCOL.md, "The restart,
 * as built"): on SIGUSR2 the daemon hands its mailboxes and their queues
 * to the service manager's file-descriptor store and exits; the next one
 * finds them among its LISTEN_FDS and goes on with them.
 *
 * Above the sessions and the broker, below the server, which decides
 * when and passes the descriptors.
 */
#ifndef MBXD_RESTART_H
#define MBXD_RESTART_H

struct broker;
struct session_set;

/* The names of what the store holds (FDNAME=). */
#define RESTART_FD_STATE	"state"
#define RESTART_FD_LISTEN	"listen"

/*
 * The old daemon's half, once its event loop has stopped and it accepts
 * no more: every client is quiesced, answered and closed (the messages
 * in flight go back to their queues, in order), and the state goes to
 * the manager; so does listen_fd, the listening socket, unless it is -1
 * (a socket unit holds it, or the store does already).  0 when the manager has both, or -errno,
 * logged: what the queues held is then lost.
 */
int	 restart_hand_over(struct broker *b, struct session_set *set,
	    int listen_fd);
/*
 * The next daemon's half, before it answers anyone: the state in memfd
 * fd (closed here) is loaded into b, or refused whole with a log line
 * (a cold start); either way the manager is told to drop it, so that a
 * later crash does not bring it back.  Never fails the start.
 */
void	 restart_take_over(struct broker *b, int fd);

#endif
