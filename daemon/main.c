/*
 * main.c - mbxd: command line, then the server.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>

#include "config.h"
#include "log.h"
#include "proto.h"
#include "server.h"

#define MBXD_VERSION	"0.2.0"

static void
usage(FILE *f)
{
	fprintf(f,
	    "usage: mbxd [-c PATH] [-s PATH] [--max-memory BYTES] "
	    "[--state-dir DIR] [-v]\n"
	    "            [--check-config] [--version] [--help]\n"
	    "  -c, --config PATH    configuration file (default %s,\n"
	    "                       used when it exists)\n"
	    "      --check-config   validate the configuration and exit\n"
	    "  -s, --socket PATH    listen on PATH (default %s)\n"
	    "      --max-memory N   cap on queued payload bytes, suffix K, M "
	    "or G\n"
	    "                       (default 256M); a send past it gets "
	    "ENOBUFS\n"
	    "      --state-dir DIR  where durable mailboxes keep their logs "
	    "(default %s)\n"
	    "  -v, --verbose        log every connection and mailbox event; "
	    "twice: debug\n"
	    "      --version        print the version and exit\n"
	    "  -h, --help           print this help and exit\n"
	    "mbxd runs in the foreground and logs to stderr.  SIGTERM or "
	    "SIGINT stops it,\nSIGHUP reloads the configuration, SIGUSR2 "
	    "restarts it through the service\nmanager keeping every queued "
	    "message (mbxd(8)).  Options given here override\nthe file.\n",
	    CONFIG_DEFAULT_PATH, CONFIG_DEFAULT_SOCKET,
	    CONFIG_DEFAULT_STATE_DIR);
}

int
main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "check-config", no_argument, NULL, 'C' },
		{ "socket", required_argument, NULL, 's' },
		{ "max-memory", required_argument, NULL, 'm' },
		{ "state-dir", required_argument, NULL, 'S' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "version", no_argument, NULL, 'V' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct server_options opt = { .config_path = CONFIG_DEFAULT_PATH };
	int verbose = 0, check = 0, ch;

	while ((ch = getopt_long(argc, argv, "c:s:vh", opts, NULL)) != -1) {
		switch (ch) {
		case 'c':
			opt.config_path = optarg;
			opt.config_explicit = true;
			break;
		case 'C':
			check = 1;
			break;
		case 's':
			opt.socket_path = optarg;
			break;
		case 'm':
			if (config_parse_size(optarg, &opt.max_memory) < 0 ||
			    opt.max_memory == 0) {
				fprintf(stderr, "mbxd: --max-memory %s: not a "
				    "positive size (e.g. 64M)\n", optarg);
				return 2;
			}
			break;
		case 'S':
			if (optarg[0] != '/') {
				fprintf(stderr, "mbxd: --state-dir %s: an "
				    "absolute path expected\n", optarg);
				return 2;
			}
			opt.state_dir = optarg;
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
	if (check)
		return server_check_config(&opt);
	log_set_verbose(verbose);
	log_detect_journal();
	return server_run(&opt);
}
