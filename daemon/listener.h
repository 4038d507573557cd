/*
 * listener.h - the daemon's listening Unix socket.
 */
#ifndef MBX_LISTENER_H
#define MBX_LISTENER_H

#include <sys/types.h>

struct event_base;
struct listener;

/* Called with each accepted descriptor, which it then owns. */
typedef void (*listener_accept_fn)(int fd, void *ctx);

/*
 * Listens on path: creates its directory if missing, refuses (-EADDRINUSE)
 * when a live daemon answers there, replaces a stale socket file and
 * refuses (-EEXIST) anything else at that path.  On failure *why says what
 * went wrong.
 */
struct listener *listener_open(struct event_base *base, const char *path,
	    mode_t mode, uid_t uid, gid_t gid, listener_accept_fn fn,
	    void *ctx, int *err, const char **why);
/*
 * Serves on fd, a socket inherited from systemd (socket activation): it
 * must be a listening AF_UNIX stream socket (-ENOTSOCK otherwise).  The
 * listener never unlinks its file: the socket unit owns it.
 */
struct listener *listener_adopt(struct event_base *base, int fd,
	    listener_accept_fn fn, void *ctx, int *err, const char **why);
/* Stops accepting and unlinks the socket file if the listener made it. */
void	 listener_close(struct listener *l);

#endif
