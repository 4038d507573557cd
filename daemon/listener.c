/*
 * listener.c - binds the socket and accepts connections.
 *
 * When descriptors run out, accept() fails and the pending connection
 * stays readable: the listener stops watching for a moment instead of
 * spinning on it.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <event2/event.h>

#include "listener.h"
#include "log.h"

#define LISTENER_BACKOFF_MS	100

struct listener {
	int		 fd;
	char		*path;
	struct event	*ev;
	struct event	*backoff;
	struct stat	 st;		/* the socket file we made, to unlink */
					/* it and never a successor */
	listener_accept_fn fn;
	void		*ctx;
};

static int
listener_addr(const char *path, struct sockaddr_un *sun)
{
	memset(sun, 0, sizeof(*sun));
	sun->sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(sun->sun_path))
		return -ENAMETOOLONG;
	strcpy(sun->sun_path, path);
	return 0;
}

/*
 * Creates the socket's directory if missing (one level, as for /run/mbx)
 * and checks it: a real directory, not a symlink, that no user but its
 * owner may write to, owned by root, by us or by the socket's owner, so
 * nobody else can put or replace anything at the path.  A directory we
 * create gets mode 0755 whatever the umask (a umask of 077 would lock
 * every client out); one that was there is refused, never changed.
 */
static int
listener_prepare_dir(const char *path, uid_t uid, gid_t gid,
    const char **why)
{
	char *dir = strdup(path), *slash;
	struct stat st;
	int err = 0, fd = -1;
	bool made = false;

	if (dir == NULL)
		return -ENOMEM;
	slash = strrchr(dir, '/');
	if (slash == dir)
		slash[1] = '\0';
	else if (slash != NULL)
		*slash = '\0';
	else
		strcpy(dir, ".");
	if (mkdir(dir, 0700) == 0)
		made = true;
	else if (errno != EEXIST)
		err = -errno;
	/*
	 * Everything else through one descriptor of the directory itself,
	 * opened without following a symlink: what is checked and changed
	 * is what the socket goes into.
	 */
	if (err == 0 && (fd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
	    O_CLOEXEC)) < 0) {
		err = -errno;
		if (err == -ELOOP || err == -ENOTDIR) {
			*why = "the socket's directory is not a directory "
			    "(a symbolic link?)";
			err = -ENOTDIR;
		}
	}
	if (err == 0 && made && (((uid != (uid_t)-1 || gid != (gid_t)-1) &&
	    fchown(fd, uid, gid) < 0) || fchmod(fd, 0755) < 0))
		err = -errno;
	if (err == 0 && fstat(fd, &st) < 0)
		err = -errno;
	if (err == 0 && (st.st_mode & (S_IWGRP | S_IWOTH))) {
		*why = (st.st_mode & S_IWOTH) ?
		    "the socket's directory is writable by every user" :
		    "the socket's directory is writable by its group";
		err = -EPERM;
	} else if (err == 0 && st.st_uid != 0 && st.st_uid != geteuid() &&
	    st.st_uid != uid) {
		/* Its owner could replace the socket under us. */
		*why = "the socket's directory belongs to another user";
		err = -EPERM;
	}
	if (fd >= 0)
		close(fd);
	free(dir);
	return err;
}

/* What a file that is not a socket is, for the message that refuses it. */
static const char *
listener_what(mode_t mode)
{
	if (S_ISLNK(mode))
		return "the path is a symbolic link (neither followed nor "
		    "removed)";
	if (S_ISREG(mode))
		return "the path is a regular file (left alone)";
	if (S_ISDIR(mode))
		return "the path is a directory (left alone)";
	return "the path exists and is not a socket (left alone)";
}

/*
 * Clears the way for a new socket at path: 0 when nothing is there or a
 * stale socket was removed.  Only a socket nobody answers on is stale;
 * anything else is refused, and lstat() never follows a symlink there.
 */
static int
listener_clear_stale(const struct sockaddr_un *sun, const char **why)
{
	struct stat st;
	int fd, live;

	if (lstat(sun->sun_path, &st) < 0)
		return errno == ENOENT ? 0 : -errno;
	if (!S_ISSOCK(st.st_mode)) {
		*why = listener_what(st.st_mode);
		return -EEXIST;
	}
	/* Non-blocking: a live daemon with a full backlog says EAGAIN at
	 * once instead of holding up our start. */
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	live = connect(fd, (const struct sockaddr *)sun, sizeof(*sun)) == 0 ||
	    errno != ECONNREFUSED;
	close(fd);
	if (live) {
		*why = "a live socket: another mbxd is already listening there";
		return -EADDRINUSE;
	}
	log_info("removing stale socket %s", sun->sun_path);
	return unlink(sun->sun_path) < 0 ? -errno : 0;
}

static void
listener_accept_cb(evutil_socket_t lfd, short what, void *arg)
{
	struct listener *l = arg;
	struct timeval tv = { 0, LISTENER_BACKOFF_MS * 1000 };

	for (int i = 0; i < 64; i++) {
		int fd = accept4(l->fd, NULL, NULL,
		    SOCK_NONBLOCK | SOCK_CLOEXEC);

		if (fd >= 0) {
			l->fn(fd, l->ctx);
			continue;
		}
		if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS ||
		    errno == ENOMEM) {
			log_warn("accept: %s: pausing for %d ms",
			    strerror(errno), LISTENER_BACKOFF_MS);
			event_del(l->ev);
			evtimer_add(l->backoff, &tv);
		}
		return;
	}
}

static void
listener_resume_cb(evutil_socket_t fd, short what, void *arg)
{
	struct listener *l = arg;

	event_add(l->ev, NULL);
}

/* Starts accepting on l->fd. */
static int
listener_start(struct listener *l, struct event_base *base,
    listener_accept_fn fn, void *ctx)
{
	l->fn = fn;
	l->ctx = ctx;
	l->ev = event_new(base, l->fd, EV_READ | EV_PERSIST,
	    listener_accept_cb, l);
	l->backoff = evtimer_new(base, listener_resume_cb, l);
	if (l->ev == NULL || l->backoff == NULL || event_add(l->ev, NULL) < 0)
		return -ENOMEM;
	return 0;
}

static void
listener_free(struct listener *l)
{
	if (l == NULL)
		return;
	if (l->ev != NULL)
		event_free(l->ev);
	if (l->backoff != NULL)
		event_free(l->backoff);
	free(l->path);
	free(l);
}

struct listener *
listener_adopt(struct event_base *base, int fd, const char *path,
    listener_accept_fn fn, void *ctx, int *err, const char **why)
{
	struct listener *l;
	int type = 0, domain = 0, listening = 0;
	socklen_t len = sizeof(int);

	*why = NULL;
	if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) < 0 ||
	    getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &len) < 0 ||
	    getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &len) < 0 ||
	    type != SOCK_STREAM || domain != AF_UNIX || !listening) {
		*why = "the inherited descriptor is not a listening "
		    "AF_UNIX stream socket";
		*err = -ENOTSOCK;
		return NULL;
	}
	if ((l = calloc(1, sizeof(*l))) == NULL) {
		*err = -ENOMEM;
		return NULL;
	}
	l->fd = fd;
	/* The file a daemon before us made: ours to unlink, as it was. */
	if (path != NULL && ((l->path = strdup(path)) == NULL ||
	    lstat(path, &l->st) < 0 || !S_ISSOCK(l->st.st_mode))) {
		free(l->path);
		l->path = NULL;
	}
	evutil_make_socket_nonblocking(fd);
	evutil_make_socket_closeonexec(fd);
	if ((*err = listener_start(l, base, fn, ctx)) < 0) {
		listener_free(l);
		return NULL;
	}
	return l;
}

struct listener *
listener_open(struct event_base *base, const char *path, mode_t mode,
    uid_t uid, gid_t gid, listener_accept_fn fn, void *ctx, int *err,
    const char **why)
{
	struct sockaddr_un sun;
	struct listener *l = calloc(1, sizeof(*l));
	mode_t old_umask;

	*why = NULL;
	if (l == NULL || (l->path = strdup(path)) == NULL) {
		*err = -ENOMEM;
		goto fail;
	}
	l->fd = -1;
	if ((*err = listener_addr(path, &sun)) < 0 ||
	    (*err = listener_prepare_dir(path, uid, gid, why)) < 0 ||
	    (*err = listener_clear_stale(&sun, why)) < 0)
		goto fail;
	l->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (l->fd < 0) {
		*err = -errno;
		goto fail;
	}
	/*
	 * The umask gives the socket its mode as bind() creates it: a chmod()
	 * by path afterwards would follow whatever stands there by then.
	 */
	old_umask = umask(~mode & 0777);
	*err = bind(l->fd, (struct sockaddr *)&sun, sizeof(sun)) < 0 ? -errno : 0;
	umask(old_umask);
	if (*err < 0)
		goto fail;
	if (((uid != (uid_t)-1 || gid != (gid_t)-1) &&
	    lchown(path, uid, gid) < 0) || lstat(path, &l->st) < 0 ||
	    listen(l->fd, SOMAXCONN) < 0) {
		*err = -errno;
		unlink(path);
		goto fail;
	}
	if ((*err = listener_start(l, base, fn, ctx)) < 0)
		goto fail;
	return l;
fail:
	if (l != NULL && l->fd >= 0)
		close(l->fd);
	listener_free(l);
	return NULL;
}

int
listener_release(struct listener *l)
{
	int fd = l->fd;

	listener_free(l);
	return fd;
}

void
listener_close(struct listener *l)
{
	struct stat st;

	if (l == NULL)
		return;
	close(l->fd);
	/*
	 * Only the file we bound: if someone replaced it meanwhile (another
	 * mbxd that found ours stale), theirs stays.  The inode number of an
	 * unlinked file is soon reused, so its change time (set by bind and
	 * our chown) tells them apart too; a socket chmod'ed since is left
	 * behind, and the next start replaces it as stale.
	 */
	if (l->path != NULL && lstat(l->path, &st) == 0 &&
	    st.st_dev == l->st.st_dev && st.st_ino == l->st.st_ino &&
	    st.st_ctim.tv_sec == l->st.st_ctim.tv_sec &&
	    st.st_ctim.tv_nsec == l->st.st_ctim.tv_nsec)
		unlink(l->path);
	listener_free(l);
}
