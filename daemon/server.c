/*
 * server.c - the event loop of mbxd.
 *
 * All deadlines live in the broker's heap; the server keeps one libevent
 * timer armed at the earliest of them and re-arms it after every request
 * and every expiry.  Shutdown: stop accepting, answer every parked call,
 * write what the sockets take, unlink the socket.
 */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "broker.h"
#include "client.h"
#include "listener.h"
#include "log.h"
#include "notify.h"
#include "server.h"

struct server {
	struct event_base *base;
	struct broker	*broker;
	struct client_set clients;
	struct listener	*listener;
	struct event	*timer;
	uint64_t	 timer_at;	/* DEADLINE_NONE when not armed */
	struct event	*sigterm;
	struct event	*sigint;
};

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

	if (client_new(&s->clients, fd) < 0)
		log_warn("out of memory for a new client: refused");
}

static void
server_signal_cb(evutil_socket_t sig, short what, void *arg)
{
	struct server *s = arg;

	log_info("%s: shutting down", strsignal((int)sig));
	notify_send("STOPPING=1");
	event_base_loopbreak(s->base);
}

static void
server_free(struct server *s)
{
	if (s->listener != NULL)
		listener_close(s->listener);
	if (s->broker != NULL) {
		broker_shutdown(s->broker);
		client_set_flush(&s->clients);
		client_set_free_all(&s->clients);
		broker_free(s->broker);
	}
	if (s->timer != NULL)
		event_free(s->timer);
	if (s->sigterm != NULL)
		event_free(s->sigterm);
	if (s->sigint != NULL)
		event_free(s->sigint);
	if (s->base != NULL)
		event_base_free(s->base);
}

int
server_run(const struct server_config *cfg)
{
	struct broker_limits limits = { .max_memory = cfg->max_memory };
	struct server s;
	const char *why;
	int err;

	memset(&s, 0, sizeof(s));
	s.timer_at = DEADLINE_NONE;
	signal(SIGPIPE, SIG_IGN);
	if ((s.base = event_base_new()) == NULL ||
	    (s.broker = broker_new(&limits)) == NULL)
		fatal("out of memory");
	client_set_init(&s.clients, s.base, s.broker, server_arm_timer, &s);
	s.timer = evtimer_new(s.base, server_timer_cb, &s);
	s.sigterm = evsignal_new(s.base, SIGTERM, server_signal_cb, &s);
	s.sigint = evsignal_new(s.base, SIGINT, server_signal_cb, &s);
	if (s.timer == NULL || s.sigterm == NULL || s.sigint == NULL ||
	    evsignal_add(s.sigterm, NULL) < 0 || evsignal_add(s.sigint, NULL) < 0)
		fatal("cannot set up the event loop");
	s.listener = listener_open(s.base, cfg->socket_path, server_accept, &s,
	    &err, &why);
	if (s.listener == NULL) {
		log_err("cannot listen on %s: %s", cfg->socket_path,
		    why != NULL ? why : strerror(-err));
		server_free(&s);
		return 1;
	}
	log_info("listening on %s", cfg->socket_path);
	notify_send("READY=1\nSTATUS=accepting connections");
	event_base_dispatch(s.base);
	server_free(&s);
	return 0;
}
