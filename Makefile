# mbx - a mailbox broker for local IPC.  See README.md and `make help`.

PREFIX	?= /usr/local
BINDIR	?= $(PREFIX)/bin
SBINDIR	?= $(PREFIX)/sbin
LIBDIR	?= $(PREFIX)/lib
INCLUDEDIR ?= $(PREFIX)/include
MANDIR	?= $(PREFIX)/share/man
DOCDIR	?= $(PREFIX)/share/doc/mbx
PKGCONFIGDIR ?= $(LIBDIR)/pkgconfig
# mbxd reads /etc/mbx/mbxd.json whatever the prefix; install-config puts
# the default file in $(SYSCONFDIR)/mbx.
SYSCONFDIR ?= /etc
# The systemd directories: systemd's pkg-config file knows them, else the
# Debian defaults.  Evaluated once, here.
systemd_dir = $(or $(shell pkg-config --variable=$(1) systemd 2>/dev/null),$(2))
ifeq ($(origin SYSTEMDUNITDIR),undefined)
SYSTEMDUNITDIR := $(call systemd_dir,systemdsystemunitdir,/lib/systemd/system)
endif
ifeq ($(origin SYSUSERSDIR),undefined)
SYSUSERSDIR := $(call systemd_dir,sysusersdir,/usr/lib/sysusers.d)
endif
ifeq ($(origin TMPFILESDIR),undefined)
TMPFILESDIR := $(call systemd_dir,tmpfilesdir,/usr/lib/tmpfiles.d)
endif
DESTDIR	?=

CC	?= cc
OBJCOPY	?= objcopy
B	?= build
# SANITIZE=address,undefined builds everything with those sanitizers.
SANITIZE ?=

WARN	= -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes \
	  -Wmissing-prototypes -Wwrite-strings -Wformat=2 -Wpointer-arith \
	  -Wcast-qual -Wundef -Wvla -Wno-unused-parameter
CFLAGS	?= -O2 -g -D_FORTIFY_SOURCE=2 -fstack-protector-strong
# Every object sees proto/; client/*.c find mbx.h beside them, and only
# the programs under tests/ add -Iclient (and -Idaemon): mbxd's objects
# cannot include a header of libmbx by accident.
MBX_CFLAGS = -std=c11 -D_GNU_SOURCE $(WARN) -MMD -MP -Iproto
ifneq ($(SANITIZE),)
MBX_CFLAGS += -fsanitize=$(SANITIZE) -fno-omit-frame-pointer -fno-sanitize-recover=all
LDFLAGS	+= -fsanitize=$(SANITIZE)
endif

EVENT_LIBS	= $(shell pkg-config --libs libevent_core 2>/dev/null || echo -levent_core)
JANSSON_LIBS	= $(shell pkg-config --libs jansson 2>/dev/null || echo -ljansson)
CHECK_CFLAGS	= $(shell pkg-config --cflags check 2>/dev/null)
CHECK_LIBS	= $(shell pkg-config --libs check 2>/dev/null || echo -lcheck)

SOVERSION = 2

# Recursive makes (check runs several) print no "Entering directory" noise,
# so that the last line of make check is Check's summary.
MAKEFLAGS += --no-print-directory
VERSION	= 0.2.0

PROTO_SRC  = proto/proto.c proto/body.c proto/framer.c proto/channel.c
DAEMON_LIB_SRC = daemon/log.c daemon/table.c daemon/deadline.c daemon/msg.c daemon/ptrvec.c \
	  daemon/account.c daemon/credit.c \
	  daemon/config.c \
	  daemon/mailbox.c daemon/peer.c daemon/broker-lookup.c \
	  daemon/broker-wait.c daemon/broker.c daemon/broker-bind.c \
	  daemon/broker-deliver.c daemon/admin.c daemon/memfd.c daemon/pass.c \
	  daemon/rings.c daemon/journal.c proto/record.c daemon/broker-durable.c \
	  daemon/state.c daemon/broker-state.c
DAEMON_SRC = $(DAEMON_LIB_SRC) daemon/conn.c daemon/session.c \
	  daemon/listener.c daemon/notify.c daemon/restart.c daemon/server.c \
	  daemon/main.c
# libmbx, top down (client/mbx-int.h draws the layers): the API, the
# handle, the session, the transport and its leaves.
LIB_SRC	   = client/mbx-admin.c client/mbx-send.c client/mbx-recv.c \
	     client/mbx.c client/mbx-session.c client/net.c client/order.c \
	     client/grant.c client/inbox.c client/shm.c client/chan.c
CTL_SRC	   = client/mbxctl.c
TEST_SRC   = tests/main.c tests/test-proto.c tests/test-framer.c \
	  tests/test-broker.c tests/test-journal.c tests/test-durable.c \
	  tests/test-restart.c \
	  tests/harness.c tests/test-e2e.c tests/test-ctl.c tests/test-batch.c \
	  tests/test-security.c tests/mbxd-proc.c tests/users.c \
	  tests/test-work.c tests/test-memory.c tests/test-memfd.c \
	  tests/test-errors.c tests/test-edges.c tests/test-channel.c \
	  tests/test-order.c tests/test-pass.c tests/test-rings.c tests/test-posts.c \
	  tests/test-ack.c tests/test-consume.c tests/raw.c

obj = $(patsubst %.c,$(B)/%.o,$(1))
pic = $(patsubst %.c,$(B)/pic/%.o,$(1))

MBXD	= $(B)/mbxd
MBXCTL	= $(B)/mbxctl
LIBSO	= $(B)/libmbx.so.$(SOVERSION)
LIBA	= $(B)/libmbx.a
TESTS	= $(B)/mbx-tests

.PHONY: all clean check check-asan check-valgrind test run deps deps-test help install uninstall
all: $(MBXD) $(MBXCTL) $(LIBSO) $(LIBA)

$(B)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(MBX_CFLAGS) $(CFLAGS) -c -o $@ $<

$(B)/pic/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(MBX_CFLAGS) $(CFLAGS) -fPIC -fvisibility=hidden -c -o $@ $<

$(MBXD): $(call obj,$(DAEMON_SRC) $(PROTO_SRC))
	$(CC) $(LDFLAGS) -o $@ $^ $(EVENT_LIBS) $(JANSSON_LIBS)

$(LIBSO): $(call pic,$(LIB_SRC) $(PROTO_SRC)) client/libmbx.map
	$(CC) $(LDFLAGS) -shared -Wl,-soname,libmbx.so.$(SOVERSION) \
	    -Wl,--version-script=client/libmbx.map -o $@ \
	    $(call pic,$(LIB_SRC) $(PROTO_SRC))
	ln -sf libmbx.so.$(SOVERSION) $(B)/libmbx.so

# The static library is one object, linked beforehand (ld -r) with every
# hidden symbol made local: a program that links libmbx.a sees the mbx_*
# API and nothing else, as with libmbx.so and its version script, so that
# names such as conn_write or proto_put_u32 cannot collide with its own.
$(LIBA): $(call pic,$(LIB_SRC) $(PROTO_SRC))
	rm -f $@ $(B)/libmbx-all.o
	$(CC) $(LDFLAGS) -r -nostdlib -o $(B)/libmbx-all.o $^
	$(OBJCOPY) --localize-hidden $(B)/libmbx-all.o
	ar rcs $@ $(B)/libmbx-all.o

# mbxctl escapes what it prints with proto_escape(), which libmbx.a keeps
# to itself: it links proto/ of its own.
$(MBXCTL): $(call obj,$(CTL_SRC) $(PROTO_SRC)) $(LIBA)
	$(CC) $(LDFLAGS) -o $@ $^ $(JANSSON_LIBS)

$(B)/tests/%.o: tests/%.c
	@mkdir -p $(dir $@)
	$(CC) $(MBX_CFLAGS) $(CHECK_CFLAGS) -Iclient -Idaemon $(CFLAGS) -c -o $@ $<

# test-memfd.c unit-tests client/shm.c, whose symbols libmbx.a keeps local.
$(TESTS): $(call obj,$(TEST_SRC) $(DAEMON_LIB_SRC) daemon/conn.c $(PROTO_SRC) \
	    client/shm.c) $(LIBA)
	$(CC) $(LDFLAGS) -o $@ $^ $(CHECK_LIBS) $(EVENT_LIBS) $(JANSSON_LIBS)

# Installs the Debian packages the build (deps) or the tests (deps-test)
# need, when they are missing.
deps:
	@sh .ci/deps
deps-test:
	@sh .ci/deps test

# Every test, then the same suite under ASan+UBSan; Check's summary of the
# plain run is the last line.
check: deps-test
	$(MAKE) check-layers
	$(MAKE) check-asan
	$(MAKE) check-system
	$(MAKE) test

# Sends go on credit by default (issue 11): posts through the channel,
# in causal order, withdrawn grants and GRANT_CHECK keeping "a send that
# returns 0 reaches the mailbox it named".  The core suites run twice
# more: with every payload zero-copy (issue 5), and with every send
# waiting for its answer (MBX_CREDIT=0, the path without credit).
test: all $(TESTS)
	for s in e2e ctl; do MBX_ZEROCOPY=0 CK_RUN_SUITE=$$s \
	    MBXD=$(abspath $(MBXD)) MBXCTL=$(abspath $(MBXCTL)) $(TESTS) || \
	    exit 1; done
	for s in e2e ctl; do MBX_CREDIT=0 CK_RUN_SUITE=$$s \
	    MBXD=$(abspath $(MBXD)) MBXCTL=$(abspath $(MBXCTL)) $(TESTS) || \
	    exit 1; done
	MBXD=$(abspath $(MBXD)) MBXCTL=$(abspath $(MBXCTL)) $(TESTS)

# The layering rules of ARCHITECTURE.md, on the objects just built: no
# cycle among the objects of one part, bodies only in proto/, only mbx_*
# out of libmbx, a uid's counters changed only in daemon/account.c.
.PHONY: check-layers
check-layers: all
	sh tests/layers.sh $(B)

check-asan:
	$(MAKE) B=build/asan SANITIZE=address,undefined CFLAGS="-O1 -g" test

check-valgrind: all $(TESTS)
	MBXD=$(abspath $(MBXD)) MBXCTL=$(abspath $(MBXCTL)) \
	    MBX_TEST_WRAPPER="valgrind -q --error-exitcode=99 --leak-check=full" \
	    $(TESTS)

RUNDIR ?= $(CURDIR)/build/run
run: deps all
	@mkdir -p $(RUNDIR) && chmod 0755 $(RUNDIR)
	@echo "mbxd: listening on $(RUNDIR)/mbxd.sock; in another shell:"
	@echo "    export MBX_SOCKET=$(RUNDIR)/mbxd.sock"
	@echo "    $(abspath $(MBXCTL)) create jobs && $(abspath $(MBXCTL)) send jobs hello"
	@echo "    $(abspath $(MBXCTL)) recv jobs; $(abspath $(MBXCTL)) list"
	@echo "Durable mailboxes (create --durable) keep their logs in $(RUNDIR)/state."
	@echo "Stop with Ctrl-C."
	$(MBXD) -s $(RUNDIR)/mbxd.sock --state-dir $(RUNDIR)/state -v

# What `make install` renders with the install-time directories: the
# service unit (ExecStart) and mbx.pc.  Always rewritten, because the
# directories may differ from one invocation to the next.
MAN_PAGES = $(wildcard man/*.1 man/*.3 man/*.5 man/*.7 man/*.8)
man_dest = $(DESTDIR)$(MANDIR)/man$(subst .,,$(suffix $(1)))/$(notdir $(1))

.PHONY: units install-config check-system deb FORCE
units: $(B)/systemd/mbxd.service $(B)/mbx.pc

$(B)/systemd/mbxd.service: systemd/mbxd.service FORCE
	@mkdir -p $(dir $@)
	sed -e 's|@SBINDIR@|$(SBINDIR)|g' systemd/mbxd.service > $@.tmp
	mv $@.tmp $@

# libdir and includedir are written relative to ${prefix} when they lie
# under it, so that `pkg-config --define-prefix` can relocate a DESTDIR tree.
$(B)/mbx.pc: FORCE
	@mkdir -p $(dir $@)
	{ echo 'prefix=$(PREFIX)'; \
	  echo 'libdir=$(patsubst $(PREFIX)/%,$${prefix}/%,$(LIBDIR))'; \
	  echo 'includedir=$(patsubst $(PREFIX)/%,$${prefix}/%,$(INCLUDEDIR))'; \
	  echo; \
	  echo 'Name: mbx'; \
	  echo 'Description: client library of the mbx mailbox broker'; \
	  echo 'Version: $(VERSION)'; \
	  echo 'Libs: -L$${libdir} -lmbx'; \
	  echo 'Cflags: -I$${includedir}'; } > $@.tmp
	mv $@.tmp $@

install: all units
	install -d $(DESTDIR)$(SBINDIR) $(DESTDIR)$(BINDIR) $(DESTDIR)$(LIBDIR) \
	    $(DESTDIR)$(INCLUDEDIR) $(DESTDIR)$(PKGCONFIGDIR) \
	    $(DESTDIR)$(SYSTEMDUNITDIR) $(DESTDIR)$(SYSUSERSDIR) \
	    $(DESTDIR)$(TMPFILESDIR) $(DESTDIR)$(DOCDIR) \
	    $(sort $(dir $(foreach p,$(MAN_PAGES),$(call man_dest,$(p)))))
	install -m 755 $(MBXD) $(DESTDIR)$(SBINDIR)/mbxd
	install -m 755 $(MBXCTL) $(DESTDIR)$(BINDIR)/mbxctl
	install -m 755 $(LIBSO) $(DESTDIR)$(LIBDIR)/
	ln -sf libmbx.so.$(SOVERSION) $(DESTDIR)$(LIBDIR)/libmbx.so
	install -m 644 $(LIBA) $(DESTDIR)$(LIBDIR)/
	install -m 644 client/mbx.h $(DESTDIR)$(INCLUDEDIR)/
	install -m 644 $(B)/mbx.pc $(DESTDIR)$(PKGCONFIGDIR)/
	install -m 644 $(B)/systemd/mbxd.service systemd/mbxd.socket \
	    $(DESTDIR)$(SYSTEMDUNITDIR)/
	install -m 644 systemd/mbx.sysusers $(DESTDIR)$(SYSUSERSDIR)/mbx.conf
	install -m 644 systemd/mbx.tmpfiles $(DESTDIR)$(TMPFILESDIR)/mbx.conf
	install -m 644 systemd/mbxd.json.example $(DESTDIR)$(DOCDIR)/
	$(foreach p,$(MAN_PAGES),install -m 644 $(p) $(call man_dest,$(p)) &&) true

# The default /etc/mbx/mbxd.json, only where there is none: once installed
# it is the administrator's, so uninstall leaves it (the Debian package
# ships it as a conffile instead).
install-config:
	install -d $(DESTDIR)$(SYSCONFDIR)/mbx
	@if [ -e $(DESTDIR)$(SYSCONFDIR)/mbx/mbxd.json ]; then \
	    echo "$(DESTDIR)$(SYSCONFDIR)/mbx/mbxd.json exists: kept"; \
	else \
	    echo "install -m 644 systemd/mbxd.json $(DESTDIR)$(SYSCONFDIR)/mbx/mbxd.json"; \
	    install -m 644 systemd/mbxd.json $(DESTDIR)$(SYSCONFDIR)/mbx/mbxd.json; \
	fi

uninstall:
	rm -f $(DESTDIR)$(SBINDIR)/mbxd $(DESTDIR)$(BINDIR)/mbxctl \
	    $(DESTDIR)$(LIBDIR)/libmbx.so.$(SOVERSION) \
	    $(DESTDIR)$(LIBDIR)/libmbx.so $(DESTDIR)$(LIBDIR)/libmbx.a \
	    $(DESTDIR)$(INCLUDEDIR)/mbx.h $(DESTDIR)$(PKGCONFIGDIR)/mbx.pc \
	    $(DESTDIR)$(SYSTEMDUNITDIR)/mbxd.service \
	    $(DESTDIR)$(SYSTEMDUNITDIR)/mbxd.socket \
	    $(DESTDIR)$(SYSUSERSDIR)/mbx.conf $(DESTDIR)$(TMPFILESDIR)/mbx.conf \
	    $(DESTDIR)$(DOCDIR)/mbxd.json.example \
	    $(foreach p,$(MAN_PAGES),$(call man_dest,$(p)))
	rmdir $(DESTDIR)$(DOCDIR) 2>/dev/null || true

# System-level tests (tests/system.sh): units, socket activation, the
# notify protocol, configuration, install and pkg-config, man pages, and
# the Debian package when run as root.
$(B)/tests/notify-listen: tests/notify-listen.c
	@mkdir -p $(dir $@)
	$(CC) $(MBX_CFLAGS) $(CFLAGS) $(LDFLAGS) -o $@ $<

$(B)/tests/sysclient: tests/sysclient.c $(LIBA)
	@mkdir -p $(dir $@)
	$(CC) $(MBX_CFLAGS) -Iclient $(CFLAGS) $(LDFLAGS) -o $@ $^

check-system: all units $(B)/tests/notify-listen $(B)/tests/sysclient
	+B=$(B) MAKE="$(MAKE)" MBXD=$(abspath $(MBXD)) \
	    MBXCTL=$(abspath $(MBXCTL)) \
	    NOTIFY_LISTEN=$(abspath $(B)/tests/notify-listen) \
	    SYSCLIENT=$(abspath $(B)/tests/sysclient) sh tests/system.sh

# Debian packages (debian/) built with debhelper in a copy of the tree,
# so that nothing is written outside build/; the .debs land in $(DEBDIR).
DEBDIR	?= build/deb
deb:
	@command -v dpkg-buildpackage >/dev/null && command -v dh >/dev/null || \
	    { echo "make deb: needs dpkg-dev and debhelper (make deps)"; exit 1; }
	rm -rf $(DEBDIR)
	mkdir -p $(DEBDIR)/src
	tar -cf - --exclude=./build --exclude=./.git . | tar -xf - -C $(DEBDIR)/src
	cd $(DEBDIR)/src && env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL \
	    dpkg-buildpackage -b -us -uc -jauto
	rm -rf $(DEBDIR)/src
	@ls $(DEBDIR)/*.deb

clean:
	rm -rf build

help:
	@echo "make           build mbxd, mbxctl and libmbx into $(B)/"
	@echo "make run       install build deps, build, run mbxd in the foreground"
	@echo "make check     install build and test deps, build, run every test"
	@echo "               (the layer rules, ASan+UBSan, check-system, then plain)"
	@echo "make check-layers  tests/layers.sh: no cycle among objects, bodies only"
	@echo "               in proto/, only mbx_* out of libmbx, counters in account.c"
	@echo "make test      run the test suite once, without installing anything"
	@echo "make check-system  the system tests (units, activation, install, deb as root)"
	@echo "make check-valgrind  the test suite with the daemon under valgrind"
	@echo "make fuzz      the libFuzzer targets (clang), each for FUZZ_SECONDS"
	@echo "make fuzz-live mutated frames into a live ASan mbxd for FUZZ_LIVE_SECONDS"
	@echo "make soak      churn against an ASan mbxd, for SOAK_SECONDS"
	@echo "make soak-restart  the restart storm, RESTARTS restarts in a row (ASan)"
	@echo "make bench     the benchmark (tests/bench/): table, $(BENCH_DIR)/chart.png"
	@echo "make bench-smoke  a short benchmark run against the main build"
	@echo "make install   install under PREFIX=$(PREFIX) (DESTDIR honoured)"
	@echo "make install-config  install $(SYSCONFDIR)/mbx/mbxd.json unless it exists"
	@echo "make uninstall remove what make install put in place"
	@echo "make deb       build Debian packages into $(DEBDIR)/"
	@echo "make clean     remove build/"
	@echo "Knobs: CC, CFLAGS, SANITIZE=address,undefined, B=builddir, PREFIX, DESTDIR"

# Benchmark (tests/bench/, issue 5).
# `make bench` builds mbxd, libmbx and mbx-bench with -O2 in a tree of their
# own (whatever CFLAGS or SANITIZE the main build uses), runs the benchmark
# once, prints the table and writes $(BENCH_DIR)/results.txt, results.json
# and chart.png (when gnuplot can be had).  `make bench-smoke` runs a short
# version against the main build so that the benchmark cannot rot; it only
# has to succeed: no figure is ever asserted.
BENCH_DIR ?= build/bench
BENCH_OBJ  = $(BENCH_DIR)/obj
BENCH_SRC  = tests/bench/mbx-bench.c tests/bench/run.c tests/bench/daemon.c \
	     tests/bench/baseline.c tests/bench/mbxload.c tests/bench/report.c \
	     tests/bench/candidate.c tests/bench/idle.c tests/bench/fdio.c \
	     tests/bench/durable.c

.PHONY: bench bench-deps bench-smoke

$(B)/mbx-bench: $(call obj,$(BENCH_SRC)) $(LIBA)
	$(CC) $(LDFLAGS) -o $@ $^ -lrt -pthread

# gnuplot draws the chart: installed when missing, never required.
bench-deps:
	@command -v gnuplot >/dev/null 2>&1 || { \
	    echo "bench-deps: installing gnuplot-nox"; \
	    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
	      apt-get install -y -qq gnuplot-nox; } >/dev/null 2>&1 || \
	    echo "bench-deps: no gnuplot-nox: the chart is skipped"; }

bench: bench-deps
	@$(MAKE) --no-print-directory B=$(BENCH_OBJ) CFLAGS="-O2 -g" SANITIZE= \
	    $(BENCH_OBJ)/mbxd $(BENCH_OBJ)/libmbx.a $(BENCH_OBJ)/mbx-bench
	@mkdir -p $(BENCH_DIR)
	$(BENCH_OBJ)/mbx-bench --mbxd $(abspath $(BENCH_OBJ)/mbxd) --out $(BENCH_DIR)
	@if command -v gnuplot >/dev/null 2>&1; then \
	    gnuplot -e "dir='$(BENCH_DIR)'" tests/bench/plot.gp && \
	    echo "chart: $(BENCH_DIR)/chart.png"; \
	else echo "gnuplot is not installed: no chart"; fi

bench-smoke: $(MBXD) $(B)/mbx-bench
	timeout 120 $(B)/mbx-bench --quick --mbxd $(abspath $(MBXD))

# Security and reliability (tests/fuzz/, tests/soak.c, issue 4).
# `make fuzz` builds the libFuzzer targets with clang and ASan+UBSan into
# $(FUZZ_B)/ and runs each for FUZZ_SECONDS from the seed corpus
# (tests/fuzz/corpus/TARGET; new inputs go to $(FUZZ_B)/corpus/TARGET, a
# crash to $(FUZZ_B)/crash-*).  `make fuzz-live` drives an ASan+UBSan mbxd
# over its socket with mutated frames for FUZZ_LIVE_SECONDS.  `make soak`
# runs senders, killed and rebound receivers for SOAK_SECONDS against
# an ASan+UBSan mbxd ($(SOAK_B)/).  `make fuzz-corpus` rewrites the seed corpus.
FUZZ_SECONDS	?= 60
FUZZ_LIVE_SECONDS ?= 30
SOAK_SECONDS	?= 60
FUZZ_B		 = build/fuzz
FUZZ_TARGETS	 = fuzz-decoder fuzz-requests fuzz-ring fuzz-state
FUZZ_FLAGS	 = -max_len=65536 -close_fd_mask=2 -print_final_stats=1
FUZZ_LIVE_B	 = build/asan
SOAK_B		 = build/asan

.PHONY: fuzz fuzz-build fuzz-corpus fuzz-live soak soak-restart
fuzz: deps-test
	$(MAKE) B=$(FUZZ_B) CC=clang SANITIZE=address,undefined \
	    CFLAGS="-O1 -g -fsanitize=fuzzer-no-link" fuzz-build
	@set -e; for t in $(FUZZ_TARGETS); do \
	    mkdir -p $(FUZZ_B)/corpus/$$t; \
	    echo "fuzz: $$t for $(FUZZ_SECONDS) s"; \
	    $(FUZZ_B)/$$t -max_total_time=$(FUZZ_SECONDS) $(FUZZ_FLAGS) \
	        -artifact_prefix=$(FUZZ_B)/ $(FUZZ_B)/corpus/$$t \
	        tests/fuzz/corpus/$$t; \
	done

fuzz-build: $(B)/fuzz-decoder $(B)/fuzz-requests $(B)/fuzz-ring $(B)/fuzz-state \
	    $(B)/gen-corpus

$(B)/fuzz-decoder: $(call obj,tests/fuzz/fuzz-decoder.c $(PROTO_SRC))
	$(CC) $(LDFLAGS) -fsanitize=fuzzer -o $@ $^

$(B)/fuzz-ring: $(call obj,tests/fuzz/fuzz-ring.c $(PROTO_SRC))
	$(CC) $(LDFLAGS) -fsanitize=fuzzer -o $@ $^

$(B)/fuzz-requests: $(call obj,tests/fuzz/fuzz-requests.c $(DAEMON_LIB_SRC) \
	    daemon/conn.c daemon/session.c $(PROTO_SRC))
	$(CC) $(LDFLAGS) -fsanitize=fuzzer -o $@ $^ $(EVENT_LIBS) $(JANSSON_LIBS)

$(B)/fuzz-state: $(call obj,tests/fuzz/fuzz-state.c $(DAEMON_LIB_SRC) \
	    $(PROTO_SRC))
	$(CC) $(LDFLAGS) -fsanitize=fuzzer -o $@ $^ $(JANSSON_LIBS)

$(B)/gen-corpus: $(call obj,tests/fuzz/gen-corpus.c proto/record.c $(PROTO_SRC))
	$(CC) $(LDFLAGS) -o $@ $^

fuzz-corpus: $(B)/gen-corpus
	rm -rf tests/fuzz/corpus
	$(B)/gen-corpus tests/fuzz/corpus

fuzz-live: deps-test
	$(MAKE) B=$(FUZZ_LIVE_B) SANITIZE=address,undefined CFLAGS="-O1 -g" \
	    all $(FUZZ_LIVE_B)/tests/fuzz-live
	$(FUZZ_LIVE_B)/tests/fuzz-live --mbxd $(abspath $(FUZZ_LIVE_B)/mbxd) \
	    --seconds $(FUZZ_LIVE_SECONDS)

$(B)/tests/fuzz-live: $(call obj,tests/fuzz/fuzz-live.c tests/mbxd-proc.c \
	    $(PROTO_SRC)) $(LIBA)
	$(CC) $(LDFLAGS) -o $@ $^ $(JANSSON_LIBS)

# The soak runs against the ASan+UBSan build (mbxd and the soak's own
# clients), so that its sanitizer verdict can fail.
# The restart storm of tests/test-restart.c with RESTARTS restarts in a
# row against an ASan+UBSan mbxd (the suite runs it with 10).
RESTARTS	?= 200
soak-restart:
	$(MAKE) B=$(SOAK_B) SANITIZE=address,undefined CFLAGS="-O1 -g" \
	    all $(SOAK_B)/mbx-tests
	CK_RUN_SUITE=restart CK_RUN_CASE=restart CK_TIMEOUT_MULTIPLIER=60 \
	    MBX_TEST_RESTARTS=$(RESTARTS) MBXD=$(abspath $(SOAK_B)/mbxd) \
	    MBXCTL=$(abspath $(SOAK_B)/mbxctl) $(SOAK_B)/mbx-tests

soak:
	$(MAKE) B=$(SOAK_B) SANITIZE=address,undefined CFLAGS="-O1 -g" \
	    all $(SOAK_B)/tests/mbx-soak
	$(SOAK_B)/tests/mbx-soak --mbxd $(abspath $(SOAK_B)/mbxd) \
	    --seconds $(SOAK_SECONDS)

$(B)/tests/mbx-soak: $(call obj,tests/soak.c tests/mbxd-proc.c $(PROTO_SRC)) $(LIBA)
	$(CC) $(LDFLAGS) -o $@ $^ $(JANSSON_LIBS)

-include $(shell find $(B) -name '*.d' -type f 2>/dev/null)
