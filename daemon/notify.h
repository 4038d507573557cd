/*
 * notify.h - the service manager's protocol (sd_notify(3) and
 * sd_listen_fds_with_names(3)), spoken directly: datagrams to
 * $NOTIFY_SOCKET, descriptors from $LISTEN_FDS.  Linking libsystemd for
 * this would drag in libraries a broker does not need.
 */
#ifndef MBXD_NOTIFY_H
#define MBXD_NOTIFY_H

#include <stdbool.h>
#include <stddef.h>

/* The first descriptor the manager passes (SD_LISTEN_FDS_START). */
#define NOTIFY_FDS_START	3
/* Descriptors in one notify message (SCM_MAX_FD). */
#define NOTIFY_MAX_FDS		253
/* An FDNAME= (systemd's FDNAME_MAX). */
#define NOTIFY_NAME_MAX		255

/* True when a manager listens ($NOTIFY_SOCKET is set). */
bool	notify_available(void);
/*
 * Sends state ("READY=1", ...) when NOTIFY_SOCKET is set; 0 or -errno.
 * Never blocks: -EAGAIN when the manager's queue is full, and the line
 * is lost.
 */
int	notify_send(const char *state);
/*
 * Hands the manager n descriptors (at most NOTIFY_MAX_FDS) under one
 * name: "FDSTORE=1", "FDNAME=name" (systemd's file-descriptor store).
 * Unlike a state line this must not be lost: it waits up to wait_ms for
 * room in the manager's queue.  0, -ETIMEDOUT, or -errno.
 */
int	notify_store_fds(const char *name, const int *fds, size_t n,
	    int wait_ms);
/* Asks the manager to drop what it stores under name (FDSTOREREMOVE=1). */
int	notify_remove_fds(const char *name);

struct notify_fd {
	int	 fd;
	char	 name[NOTIFY_NAME_MAX + 1];	/* "" when none was given */
};

/*
 * The descriptors passed to this process (LISTEN_PID is ours), with
 * their LISTEN_FDNAMES, at most max of them into fds (the rest are
 * closed), each made close-on-exec; clears the variables so that
 * children do not inherit them.  Returns how many are in fds.
 */
size_t	notify_listen_fds(struct notify_fd *fds, size_t max);

#endif
