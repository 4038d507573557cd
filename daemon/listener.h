/*
 * listener.h - the daemon's listening Unix socket.
 */
#ifndef MBXD_LISTENER_H
#define MBXD_LISTENER_H

#include <sys/types.h>

struct event_base;
struct listener;

/* Called with each accepted descriptor, which it then owns. */
typedef void (*listener_accept_fn)(int fd, void *ctx);

/*
 * Listens on path: creates its directory if missing (mode 0755), refuses
 * (-ENOTDIR, -EPERM) a directory that is a symlink, that its group or
 * others may write to or that another user owns, refuses (-EADDRINUSE)
 * when a live daemon answers there, replaces a stale socket file and
 * refuses (-EEXIST) anything else at that path (a symlink, a file, a
 * directory), which it neither follows nor removes.  The socket gets mode,
 * uid and gid ((uid_t)-1, (gid_t)-1: the daemon's).  On failure *why says
 * what went wrong, when errno alone would not.
 */
struct listener *listener_open(struct event_base *base, const char *path,
	    mode_t mode, uid_t uid, gid_t gid, listener_accept_fn fn,
	    void *ctx, int *err, const char **why);
/*
 * Serves on fd, an inherited socket: it must be a listening AF_UNIX
 * stream socket (-ENOTSOCK otherwise).  With path NULL (socket
 * activation) the listener never unlinks its file: the socket unit owns
 * it.  With a path (a socket the daemon before a restart made there),
 * listener_close() unlinks it if it is still the file found now.
 */
struct listener *listener_adopt(struct event_base *base, int fd,
	    const char *path, listener_accept_fn fn, void *ctx, int *err,
	    const char **why);
/*
 * Stops accepting and returns the socket, still listening and bound, for
 * a planned restart: nothing is unlinked.  The listener is freed.
 */
int	 listener_release(struct listener *l);
/*
 * Stops accepting and unlinks the socket file if the listener made it and
 * it is still the same file (device and inode), never a successor.
 */
void	 listener_close(struct listener *l);

#endif
