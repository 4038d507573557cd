/*
 * order.h - the order in which one process's handles reach the daemon.
 *
 * mbxd reads its connections in the order the kernel reports them, so
 * bytes written on one handle may be read after bytes written later on
 * another.  Calls that wait for their answer cannot be overtaken (the
 * daemon has read everything before the answer), but writes that are not
 * answered (a send on credit, an acknowledgement) could be.  So that what
 * a process did on one handle is seen by the daemon before what it does
 * next on another, the library remembers the last handle with unanswered
 * bytes and, before writing on a different one, waits until the daemon
 * has read them (SIOCOUTQ reaches 0).  One handle alone never waits.
 * Internal to libmbx: the session (session.c) is its only caller, around
 * every write and every answer read.  It stays a file of its own because
 * its state is the process's, not a handle's.
 */
#ifndef MBX_ORDER_H
#define MBX_ORDER_H

/* Longest wait for another handle's bytes to be read: a daemon that
 * stopped reading one connection must not stop the others for good. */
#define ORDER_WAIT_MAX_MS	500

/*
 * Notices: the daemon tells a handle that its credit or its held
 * messages are gone (REVOKE) before it answers whoever caused that.  A
 * handle must look for notices before it relies on credit or held
 * messages only when the process may have seen such a cause: when some
 * handle read an answer since this handle last read everything the
 * daemon had sent it.  order_answers() counts the answers read in the
 * process; see session_drain_if_due().
 */
unsigned order_answers(void);

/* Before writing on fd: waits for another handle's unanswered bytes. */
void	order_before_write(int fd);
/* fd has bytes out that no answer has covered yet. */
void	order_written(int fd);
/* An answer came on fd: the daemon has read all it was sent before. */
void	order_answered(int fd);
/* fd is about to be closed: its unanswered bytes are waited for. */
void	order_forget(int fd);

#endif
