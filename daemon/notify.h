/*
 * notify.h - the systemd readiness protocol (sd_notify(3)), spoken
 * directly: one datagram to $NOTIFY_SOCKET.  Linking libsystemd for this
 * would drag in libraries a broker does not need.
 */
#ifndef MBXD_NOTIFY_H
#define MBXD_NOTIFY_H

/*
 * Sends state ("READY=1", ...) when NOTIFY_SOCKET is set; 0 or -errno.
 * Never blocks: -EAGAIN when the manager's queue is full, and the line
 * is lost.
 */
int	notify_send(const char *state);

#endif
