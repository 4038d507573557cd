/*
 * server.c - the event loop of mbxd.
 *
 * All deadlines live in the broker's heap; the server keeps one libevent
 * timer armed at the earliest of them and re-arms it after every request
 * and every expiry.
 *
 * Start-up: load the configuration, listen (or adopt systemd's socket),
 * declare the configured mailboxes, then tell systemd READY=1.  SIGHUP
 * re-reads the configuration and applies it only if all of it is valid.
 * Shutdown: stop accepting, answer every parked call, write what the
 * sockets take, unlink the socket (unless systemd owns it).  SIGUSR2 is
 * a planned restart instead (restart.h): the queues and the listening
 * socket go to the service manager, and the next mbxd takes them back.
 */
#include <errno.h>
#include <inttypes.h>
#include <malloc.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "broker.h"
#include "config.h"
#include "listener.h"
#include "log.h"
#include "notify.h"
#include "restart.h"
#include "server.h"
#include "session.h"

#define SERVER_STATUS_MS	2000
/* How long a commit waits for the senders of the last one (see below). */
#define SERVER_COMMIT_WAIT_US	200

struct server {
	const struct server_options *opt;
	struct config	 config;
	struct event_base *base;
	struct broker	*broker;
	struct session_set sessions;
	struct listener	*listener;
	struct event	*timer;
	uint64_t	 timer_at;	/* DEADLINE_NONE when not armed */
	struct event	*status_timer;
	struct event	*watchdog;
	struct event	*sync_timer;	/* sync as an interval: its beat */
	struct event	*commit_timer;	/* a commit waiting for its senders */
	struct event	*signals[4];
	bool		 restart;	/* SIGUSR2: hand over, then exit */
	/* The socket came from the manager (a socket unit, or the store):
	 * a restart need not hand it over. */
	bool		 socket_inherited;
	int		 state_fd;	/* a restart state passed to us, or -1 */
	char		 last_status[256];
	char		 reload_error[160];
};

/*
 * The group commit: once per turn, however many sends; or, when fewer
 * sends are staged than the last commit took, once the others came or
 * SERVER_COMMIT_WAIT_US passed (the timer's turn commits whatever there
 * is).  Measured in make bench: 8 senders otherwise settle into commits
 * of 1 and 7, alternating.
 */
static void
server_commit(struct server *s, bool waited)
{
	struct timeval tv = { 0, SERVER_COMMIT_WAIT_US };

	if (!waited && !broker_commit_due(s->broker)) {
		/* Nothing appended, or the timer already runs. */
		if (broker_staged(s->broker) == 0 ||
		    evtimer_pending(s->commit_timer, NULL) ||
		    evtimer_add(s->commit_timer, &tv) == 0)
			return;
	}
	evtimer_del(s->commit_timer);
	broker_commit(s->broker);
}

static void
server_commit_cb(evutil_socket_t fd, short what, void *arg)
{
	server_commit(arg, true);
}

/*
 * The event loop, with a pass over the channels' hot rings after every
 * turn: while any ring is hot the loop only polls, so that mbxd reads
 * the rings at the rate they are written; once they stayed quiet a
 * while they are cooled and the loop sleeps until a socket, a timer or a
 * doorbell wakes it.
 */
static void
server_loop(struct server *s)
{
	for (;;) {
		/*
		 * EVLOOP_NONBLOCK alone is no single turn: libevent goes on
		 * while any event stays active, and the doorbells' epoll
		 * set stays readable until a pass drains it, so the pass
		 * would never come.  EVLOOP_ONCE makes it one turn.
		 */
		int flags = session_set_busy(&s->sessions) ?
		    EVLOOP_ONCE | EVLOOP_NONBLOCK : EVLOOP_ONCE;

		int rc = event_base_loop(s->base, flags);

		/* 1: nothing left to wait for, as event_base_dispatch(). */
		if (rc < 0 || (rc == 1 && flags == EVLOOP_ONCE) ||
		    event_base_got_break(s->base) ||
		    event_base_got_exit(s->base))
			return;
		session_set_turn(&s->sessions);
		server_commit(s, false);
	}
}

static void
server_arm_timer(void *ctx)
{
	struct server *s = ctx;
	uint64_t next = broker_next_deadline(s->broker), now;
	struct timeval tv;

	if (next == s->timer_at)
		return;
	s->timer_at = next;
	if (next == DEADLINE_NONE) {
		evtimer_del(s->timer);
		return;
	}
	now = broker_now(s->broker);
	next = next > now ? next - now : 0;
	tv.tv_sec = (time_t)(next / 1000);
	tv.tv_usec = (suseconds_t)(next % 1000) * 1000;
	evtimer_add(s->timer, &tv);
}

static void
server_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct server *s = arg;

	s->timer_at = DEADLINE_NONE;
	broker_expire(s->broker, broker_now(s->broker));
	server_arm_timer(s);
}

static void
server_accept(int fd, void *ctx)
{
	struct server *s = ctx;

	if (session_new(&s->sessions, fd) < 0)
		log_warn("out of memory for a new client: refused");
}

/* Tells systemd a one-line summary when it changed. */
static void
server_status(struct server *s, bool force)
{
	char status[sizeof(s->last_status)];

	snprintf(status, sizeof(status), "STATUS=%zu mailboxes, %zu clients, "
	    "%" PRIu64 " bytes queued%s%s", s->broker->nnamed,
	    s->broker->npeers, s->broker->accounts.bytes,
	    s->reload_error[0] ? "; reload failed: " : "", s->reload_error);
	if (!force && strcmp(status, s->last_status) == 0)
		return;
	memcpy(s->last_status, status, sizeof(status));
	notify_send(status);
}

static void
server_status_cb(evutil_socket_t fd, short what, void *arg)
{
	server_status(arg, false);
}

/* With sync as an interval, the logs written since are synced here. */
static void
server_sync_cb(evutil_socket_t fd, short what, void *arg)
{
	struct server *s = arg;

	broker_sync(s->broker);
}

static void
server_sync_timer(struct server *s, unsigned sync_ms)
{
	struct timeval tv = { sync_ms / 1000, (sync_ms % 1000) * 1000 };

	if (s->sync_timer == NULL && sync_ms > 0 &&
	    (s->sync_timer = event_new(s->base, -1, EV_PERSIST,
	    server_sync_cb, s)) == NULL)
		fatal("out of memory");
	if (s->sync_timer == NULL)
		return;
	if (sync_ms == 0)
		evtimer_del(s->sync_timer);
	else
		evtimer_add(s->sync_timer, &tv);
}

static void
server_watchdog_cb(evutil_socket_t fd, short what, void *arg)
{
	notify_send("WATCHDOG=1");
}

/* The broker side of a configuration: limits and declared mailboxes. */
static void
server_apply(struct server *s, const struct config *c, bool reload)
{
	struct broker_limits old = s->broker->limits;

	broker_set_limits(s->broker, &c->limits);
	if (reload && memcmp(&old, &s->broker->limits, sizeof(old)) != 0)
		log_warn("limits changed: max_memory %" PRIu64 ", max_msg %"
		    PRIu64, s->broker->limits.max_memory,
		    s->broker->limits.max_msg);
	s->sessions.handshake_ms = c->handshake_ms;
	for (size_t i = 0; i < c->nmailboxes; i++) {
		const struct config_mailbox *mb = &c->mailboxes[i];
		struct broker_attr a = { mb->capacity, mb->max_msg, mb->mode,
		    mb->uid, mb->gid, mb->max_attempts, mb->ack_timeout_ms,
		    mb->dead_letter, strlen(mb->dead_letter), mb->durable };
		int ret = broker_declare(s->broker, mb->name, strlen(mb->name),
		    &a);

		if (ret < 0)
			log_err("mailbox %s: %s", mb->name, strerror(-ret));
		else if (ret == BROKER_CREATED && reload)
			log_warn("mailbox %s created by the configuration",
			    mb->name);
		else if (ret == BROKER_CHANGED)
			log_warn("mailbox %s: attributes changed by the "
			    "configuration", mb->name);
	}
}

/* Loads the configuration file and the command line over the defaults. */
static int
server_load(const struct server_options *opt, struct config *c, char *err,
    size_t errlen)
{
	if (config_init(c) < 0) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	if (opt->config_path != NULL &&
	    (opt->config_explicit || access(opt->config_path, F_OK) == 0) &&
	    config_load(c, opt->config_path, err, errlen) < 0)
		return -1;
	if (opt->socket_path != NULL) {
		free(c->socket_path);
		if ((c->socket_path = strdup(opt->socket_path)) == NULL) {
			snprintf(err, errlen, "out of memory");
			return -1;
		}
	}
	if (opt->max_memory != 0)
		c->limits.max_memory = opt->max_memory;
	if (opt->state_dir != NULL) {
		free(c->state_dir);
		if ((c->state_dir = strdup(opt->state_dir)) == NULL) {
			snprintf(err, errlen, "out of memory");
			return -1;
		}
	}
	return 0;
}

static void
server_reload(struct server *s)
{
	struct config c;
	char err[512];
	char msg[64];
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	snprintf(msg, sizeof(msg), "RELOADING=1\nMONOTONIC_USEC=%llu",
	    (unsigned long long)ts.tv_sec * 1000000 +
	    (unsigned long long)ts.tv_nsec / 1000);
	notify_send(msg);
	if (server_load(s->opt, &c, err, sizeof(err)) < 0) {
		log_err("reload failed, configuration unchanged: %s", err);
		/* STATUS= is one short line: keep the start of the error. */
		snprintf(s->reload_error, sizeof(s->reload_error), "%.*s",
		    (int)sizeof(s->reload_error) - 1, err);
		config_deinit(&c);
	} else {
		if (strcmp(c.socket_path, s->config.socket_path) != 0 ||
		    c.socket_mode != s->config.socket_mode ||
		    c.socket_uid != s->config.socket_uid ||
		    c.socket_gid != s->config.socket_gid)
			log_warn("socket %s: a new socket path, mode or owner "
			    "takes effect at a stop and start (a restart on "
			    "SIGUSR2 keeps the socket)", c.socket_path);
		if (strcmp(c.state_dir, s->config.state_dir) != 0)
			log_warn("state_dir %s: a new state directory takes "
			    "effect at restart", c.state_dir);
		else
			(void)broker_set_state(s->broker, c.state_dir,
			    c.sync_ms);
		server_sync_timer(s, c.sync_ms);
		server_apply(s, &c, true);
		session_set_withdraw_end(&s->sessions);
		config_deinit(&s->config);
		s->config = c;
		s->reload_error[0] = '\0';
		log_info("configuration reloaded");
	}
	notify_send("READY=1");
	server_status(s, true);
}

static void
server_signal_cb(evutil_socket_t sig, short what, void *arg)
{
	struct server *s = arg;

	if (sig == SIGHUP) {
		server_reload(s);
		return;
	}
	if (sig == SIGUSR2 && notify_available()) {
		log_info("%s: restarting: the queues go to the service "
		    "manager", strsignal((int)sig));
		s->restart = true;
	} else if (sig == SIGUSR2)
		log_warn("%s: no service manager to keep the queues "
		    "(NOTIFY_SOCKET is not set): shutting down",
		    strsignal((int)sig));
	else
		log_info("%s: shutting down", strsignal((int)sig));
	notify_send("STOPPING=1");
	/*
	 * Freeing the signal events puts the default actions back: a second
	 * signal during the teardown must not kill us half-way.
	 */
	signal(SIGTERM, SIG_IGN);
	signal(SIGINT, SIG_IGN);
	signal(SIGUSR2, SIG_IGN);
	event_base_loopbreak(s->base);
}

/*
 * What the service manager passed: a socket unit's socket (any name but
 * ours), the listening socket and the state a restart handed over.
 * Returns the socket to serve, or -1; keeps the state in s->state_fd.
 */
static int
server_inherited_fds(struct server *s, bool *own, int *stored)
{
	struct notify_fd fds[64];
	size_t n = notify_listen_fds(fds, sizeof(fds) / sizeof(fds[0]));
	int unit = -1, listen = -1;

	for (size_t i = 0; i < n; i++) {
		int *slot = strcmp(fds[i].name, RESTART_FD_STATE) == 0 ?
		    &s->state_fd : strcmp(fds[i].name, RESTART_FD_LISTEN) ==
		    0 ? &listen : &unit;

		if (*slot >= 0) {
			log_warn("an inherited descriptor named \"%s\" more: "
			    "closed", fds[i].name);
			close(fds[i].fd);
			continue;
		}
		*slot = fds[i].fd;
	}
	*own = unit < 0;
	/* A socket unit's comes first: ours would be the same socket. */
	if (unit >= 0 && listen >= 0) {
		*stored = listen;
		return unit;
	}
	*stored = -1;
	return unit >= 0 ? unit : listen;
}

/*
 * The path the inherited socket is bound to is where the configuration
 * says it should be: then it is ours to unlink at the end, as a socket
 * we made.  Otherwise (the path changed before the restart) it is served
 * where it is and left there; the new path takes effect at a start.
 */
static const char *
server_stored_path(struct server *s, int fd)
{
	struct sockaddr_un sun;
	socklen_t len = sizeof(sun);

	memset(&sun, 0, sizeof(sun));
	if (getsockname(fd, (struct sockaddr *)&sun, &len) == 0 &&
	    len > offsetof(struct sockaddr_un, sun_path) &&
	    strncmp(sun.sun_path, s->config.socket_path,
	    sizeof(sun.sun_path)) == 0)
		return s->config.socket_path;
	log_warn("restart: the socket stays at %s until a stop and a start "
	    "(the configuration says %s)", sun.sun_path,
	    s->config.socket_path);
	return NULL;
}

static int
server_listen(struct server *s)
{
	bool own = false;
	int stored = -1, fd = server_inherited_fds(s, &own, &stored), err;
	const char *why;

	if (fd >= 0) {
		s->listener = listener_adopt(s->base, fd, own ?
		    server_stored_path(s, fd) : NULL, server_accept, s, &err,
		    &why);
		/* The unit's would not do: the one a restart kept, then. */
		if (s->listener == NULL && stored >= 0) {
			log_err("socket activation: %s: serving the socket "
			    "kept by the restart", why);
			close(fd);
			fd = stored;
			stored = -1;
			own = true;
			s->listener = listener_adopt(s->base, fd,
			    server_stored_path(s, fd), server_accept, s, &err,
			    &why);
		}
		if (stored >= 0) {
			close(stored);
			(void)notify_remove_fds(RESTART_FD_LISTEN);
		}
		s->socket_inherited = true;
		if (s->listener != NULL) {
			log_info(own ? "serving the socket of the mbxd before "
			    "the restart" : "serving the socket passed by "
			    "systemd");
			return 0;
		}
		log_err("%s: %s", own ? "restart" : "socket activation", why);
		return -1;
	}
	s->listener = listener_open(s->base, s->config.socket_path,
	    s->config.socket_mode, s->config.socket_uid, s->config.socket_gid,
	    server_accept, s, &err, &why);
	if (s->listener == NULL) {
		log_err("cannot listen on %s: %s", s->config.socket_path,
		    why != NULL ? why : strerror(-err));
		return -1;
	}
	log_info("listening on %s", s->config.socket_path);
	return 0;
}

/* Periodic timers for systemd: status lines and the watchdog. */
static int
server_start_timers(struct server *s)
{
	const char *usec = getenv("WATCHDOG_USEC");
	const char *wpid = getenv("WATCHDOG_PID");
	struct timeval tv = { SERVER_STATUS_MS / 1000, 0 };
	unsigned long long us;

	if (getenv("NOTIFY_SOCKET") == NULL)
		return 0;
	s->status_timer = event_new(s->base, -1, EV_PERSIST, server_status_cb, s);
	if (s->status_timer == NULL || evtimer_add(s->status_timer, &tv) < 0)
		return -1;
	if (usec == NULL || (wpid != NULL &&
	    strtol(wpid, NULL, 10) != (long)getpid()))
		return 0;
	us = strtoull(usec, NULL, 10);
	if (us == 0)
		return 0;
	/* Half the interval, as systemd recommends. */
	tv.tv_sec = (time_t)(us / 2 / 1000000);
	tv.tv_usec = (suseconds_t)(us / 2 % 1000000);
	s->watchdog = event_new(s->base, -1, EV_PERSIST, server_watchdog_cb, s);
	if (s->watchdog == NULL || evtimer_add(s->watchdog, &tv) < 0)
		return -1;
	return 0;
}

static void
server_free(struct server *s)
{
	if (s->listener != NULL)
		listener_close(s->listener);
	/* Not taken over (the start failed): the manager keeps it. */
	if (s->state_fd >= 0)
		close(s->state_fd);
	if (s->broker != NULL) {
		broker_shutdown(s->broker);
		(void)session_set_flush_wait(&s->sessions, 0);
		session_set_free_all(&s->sessions);
		broker_free(s->broker);
	}
	if (s->timer != NULL)
		event_free(s->timer);
	if (s->sync_timer != NULL)
		event_free(s->sync_timer);
	if (s->commit_timer != NULL)
		event_free(s->commit_timer);
	if (s->status_timer != NULL)
		event_free(s->status_timer);
	if (s->watchdog != NULL)
		event_free(s->watchdog);
	for (size_t i = 0; i < sizeof(s->signals) / sizeof(s->signals[0]); i++)
		if (s->signals[i] != NULL)
			event_free(s->signals[i]);
	if (s->base != NULL)
		event_base_free(s->base);
	config_deinit(&s->config);
}

/* Every connection is a descriptor: take all the kernel allows us. */
static void
server_raise_fd_limit(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
}

static int
server_setup(struct server *s)
{
	static const int sigs[] = { SIGTERM, SIGINT, SIGHUP, SIGUSR2 };

	signal(SIGPIPE, SIG_IGN);
	server_raise_fd_limit();
	/*
	 * Payloads up to 16 MiB are malloc'd and freed at the message rate:
	 * without these, glibc hands large ones back with munmap or a heap
	 * trim each time and the next message faults fresh pages in (about
	 * 100 us per 64 KiB message on a VM, measured by make bench).
	 */
	mallopt(M_MMAP_THRESHOLD, 32 * 1024 * 1024);
	mallopt(M_TRIM_THRESHOLD, 64 * 1024 * 1024);
	if ((s->base = event_base_new()) == NULL ||
	    (s->broker = broker_new(NULL)) == NULL ||
	    (s->timer = evtimer_new(s->base, server_timer_cb, s)) == NULL ||
	    (s->commit_timer = evtimer_new(s->base, server_commit_cb,
	    s)) == NULL)
		return -1;
	session_set_init(&s->sessions, s->base, s->broker, server_arm_timer, s);
	for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++) {
		s->signals[i] = evsignal_new(s->base, sigs[i], server_signal_cb, s);
		if (s->signals[i] == NULL || evsignal_add(s->signals[i], NULL) < 0)
			return -1;
	}
	return server_start_timers(s);
}

int
server_check_config(const struct server_options *opt)
{
	struct config c;
	char err[512];
	int ret = server_load(opt, &c, err, sizeof(err));

	if (ret < 0)
		fprintf(stderr, "mbxd: %s\n", err);
	else if (access(opt->config_path, F_OK) < 0)
		printf("%s: no such file; the built-in defaults apply\n",
		    opt->config_path);
	else
		printf("%s: configuration ok\n", opt->config_path);
	config_deinit(&c);
	return ret < 0 ? 1 : 0;
}

int
server_run(const struct server_options *opt)
{
	struct server s;
	char err[512];
	int ret;

	memset(&s, 0, sizeof(s));
	s.opt = opt;
	s.state_fd = -1;
	s.timer_at = DEADLINE_NONE;
	if (server_load(opt, &s.config, err, sizeof(err)) < 0) {
		log_err("%s", err);
		config_deinit(&s.config);
		return 1;
	}
	if (server_setup(&s) < 0)
		fatal("cannot set up the event loop");
	if (server_listen(&s) < 0) {
		server_free(&s);
		return 1;
	}
	if (broker_set_state(s.broker, s.config.state_dir,
	    s.config.sync_ms) < 0)
		fatal("out of memory");
	/* Before the configuration's mailboxes: they may be among these. */
	if ((ret = broker_load_durable(s.broker)) < 0) {
		log_err("state directory %s: %s: not starting, so that no "
		    "durable mailbox is lost", s.config.state_dir,
		    strerror(-ret));
		server_free(&s);
		return 1;
	}
	server_sync_timer(&s, s.config.sync_ms);
	server_apply(&s, &s.config, false);
	/* After the configuration's mailboxes: they get their queues. */
	if (s.state_fd >= 0) {
		restart_take_over(s.broker, s.state_fd);
		s.state_fd = -1;
		/* Delayed messages came with their dues. */
		server_arm_timer(&s);
	}
	notify_send("READY=1");
	server_status(&s, true);
	server_loop(&s);
	if (s.restart) {
		int fd = listener_release(s.listener);

		s.listener = NULL;
		ret = restart_hand_over(s.broker, &s.sessions,
		    s.socket_inherited ? -1 : fd);
		close(fd);
	}
	server_free(&s);
	return s.restart && ret < 0 ? 1 : 0;
}
