/*
 * main.c - mbxd: command line, then the server.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker.h"
#include "log.h"
#include "proto.h"
#include "server.h"

#define MBXD_VERSION		"0.1.0"
#define MBXD_DEFAULT_SOCKET	"/run/mbx/mbxd.sock"

static void
usage(FILE *f)
{
	fprintf(f,
	    "usage: mbxd [-s|--socket PATH] [--max-memory BYTES] [-v] "
	    "[--version] [--help]\n"
	    "  -s, --socket PATH    listen on PATH (default %s)\n"
	    "      --max-memory N   cap on queued payload bytes, suffix K, M "
	    "or G\n"
	    "                       (default 256M); a send past it gets "
	    "ENOBUFS\n"
	    "  -v, --verbose        log every connection and mailbox event; "
	    "twice: debug\n"
	    "      --version        print the version and exit\n"
	    "  -h, --help           print this help and exit\n"
	    "mbxd runs in the foreground and logs to stderr.  SIGTERM or "
	    "SIGINT stops it.\n", MBXD_DEFAULT_SOCKET);
}

/* Parses BYTES with an optional K, M or G suffix (powers of 1024). */
static int
parse_bytes(const char *s, uint64_t *out)
{
	char *end;
	unsigned long long v;
	unsigned shift = 0;

	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno != 0 || end == s || s[0] == '-')
		return -1;
	switch (*end) {
	case 'K': case 'k': shift = 10; end++; break;
	case 'M': case 'm': shift = 20; end++; break;
	case 'G': case 'g': shift = 30; end++; break;
	}
	if (*end != '\0' || v == 0 || v > (UINT64_MAX >> shift))
		return -1;
	*out = (uint64_t)v << shift;
	return 0;
}

int
main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "socket", required_argument, NULL, 's' },
		{ "max-memory", required_argument, NULL, 'm' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "version", no_argument, NULL, 'V' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct server_config cfg = {
		.socket_path = MBXD_DEFAULT_SOCKET,
		.max_memory = BROKER_DEFAULT_MAX_MEMORY,
	};
	int verbose = 0, ch;

	while ((ch = getopt_long(argc, argv, "s:vh", opts, NULL)) != -1) {
		switch (ch) {
		case 's':
			cfg.socket_path = optarg;
			break;
		case 'm':
			if (parse_bytes(optarg, &cfg.max_memory) < 0) {
				fprintf(stderr, "mbxd: --max-memory %s: not a "
				    "positive size (e.g. 64M)\n", optarg);
				return 2;
			}
			break;
		case 'v':
			verbose++;
			break;
		case 'V':
			printf("mbxd %s (protocol %d)\n", MBXD_VERSION,
			    PROTO_VERSION);
			return 0;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind != argc) {
		fprintf(stderr, "mbxd: unexpected argument: %s\n", argv[optind]);
		usage(stderr);
		return 2;
	}
	log_set_verbose(verbose);
	return server_run(&cfg);
}
