# mbx - a mailbox broker for local IPC.  See README.md and `make help`.

PREFIX	?= /usr/local
BINDIR	?= $(PREFIX)/bin
SBINDIR	?= $(PREFIX)/sbin
LIBDIR	?= $(PREFIX)/lib
INCLUDEDIR ?= $(PREFIX)/include
MANDIR	?= $(PREFIX)/share/man
DESTDIR	?=

CC	?= cc
B	?= build
# SANITIZE=address,undefined builds everything with those sanitizers.
SANITIZE ?=

WARN	= -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes \
	  -Wmissing-prototypes -Wwrite-strings -Wformat=2 -Wpointer-arith \
	  -Wcast-qual -Wundef -Wvla -Wno-unused-parameter
CFLAGS	?= -O2 -g
MBX_CFLAGS = -std=c11 -D_GNU_SOURCE $(WARN) -MMD -MP -Iproto -Iclient
ifneq ($(SANITIZE),)
MBX_CFLAGS += -fsanitize=$(SANITIZE) -fno-omit-frame-pointer -fno-sanitize-recover=all
LDFLAGS	+= -fsanitize=$(SANITIZE)
endif

EVENT_LIBS	= $(shell pkg-config --libs libevent_core 2>/dev/null || echo -levent_core)
JANSSON_LIBS	= $(shell pkg-config --libs jansson 2>/dev/null || echo -ljansson)
CHECK_CFLAGS	= $(shell pkg-config --cflags check 2>/dev/null)
CHECK_LIBS	= $(shell pkg-config --libs check 2>/dev/null || echo -lcheck)

SOVERSION = 1
VERSION	= 0.1.0

PROTO_SRC  = proto/proto.c
DAEMON_LIB_SRC = daemon/log.c daemon/table.c daemon/deadline.c daemon/msg.c daemon/ptrvec.c \
	  daemon/account.c daemon/credit.c \
	  daemon/config.c \
	  daemon/mailbox.c daemon/peer.c daemon/broker.c daemon/admin.c
DAEMON_SRC = $(DAEMON_LIB_SRC) daemon/conn.c daemon/client.c \
	  daemon/listener.c daemon/notify.c daemon/server.c daemon/main.c
LIB_SRC	   = client/mbx.c client/inbox.c client/credit.c
CTL_SRC	   = client/mbxctl.c
TEST_SRC   = tests/main.c tests/test-proto.c tests/test-broker.c \
	  tests/harness.c tests/test-e2e.c tests/test-ctl.c

obj = $(patsubst %.c,$(B)/%.o,$(1))
pic = $(patsubst %.c,$(B)/pic/%.o,$(1))

MBXD	= $(B)/mbxd
MBXCTL	= $(B)/mbxctl
LIBSO	= $(B)/libmbx.so.$(SOVERSION)
LIBA	= $(B)/libmbx.a
TESTS	= $(B)/mbx-tests

.PHONY: all clean check check-asan check-valgrind test run deps help install uninstall
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

$(LIBA): $(call pic,$(LIB_SRC) $(PROTO_SRC))
	rm -f $@
	ar rcs $@ $^

$(MBXCTL): $(call obj,$(CTL_SRC)) $(LIBA)
	$(CC) $(LDFLAGS) -o $@ $^ $(JANSSON_LIBS)

$(B)/tests/%.o: tests/%.c
	@mkdir -p $(dir $@)
	$(CC) $(MBX_CFLAGS) $(CHECK_CFLAGS) -Idaemon $(CFLAGS) -c -o $@ $<

$(TESTS): $(call obj,$(TEST_SRC) $(DAEMON_LIB_SRC) $(PROTO_SRC)) $(LIBA)
	$(CC) $(LDFLAGS) -o $@ $^ $(CHECK_LIBS) $(EVENT_LIBS) $(JANSSON_LIBS)

# Installs the Debian packages the build needs, when they are missing.
deps:
	@sh .ci/deps

# Every test, then the same suite under ASan+UBSan; Check's summary of the
# plain run is the last line.
check: deps
	$(MAKE) check-asan
	$(MAKE) test

test: all $(TESTS)
	MBXD=$(abspath $(MBXD)) MBXCTL=$(abspath $(MBXCTL)) $(TESTS)

check-asan:
	$(MAKE) B=build/asan SANITIZE=address,undefined CFLAGS="-O1 -g" test

check-valgrind: all $(TESTS)
	MBXD=$(abspath $(MBXD)) MBXCTL=$(abspath $(MBXCTL)) \
	    MBX_TEST_WRAPPER="valgrind -q --error-exitcode=99 --leak-check=full" \
	    $(TESTS)

RUNDIR ?= $(CURDIR)/build/run
run: deps all
	@mkdir -p $(RUNDIR)
	@echo "mbxd: listening on $(RUNDIR)/mbxd.sock; in another shell:"
	@echo "    export MBX_SOCKET=$(RUNDIR)/mbxd.sock"
	@echo "    $(abspath $(MBXCTL)) create jobs && $(abspath $(MBXCTL)) send jobs hello"
	@echo "    $(abspath $(MBXCTL)) recv jobs; $(abspath $(MBXCTL)) list"
	@echo "Stop with Ctrl-C."
	$(MBXD) -s $(RUNDIR)/mbxd.sock -v

install: all
	install -d $(DESTDIR)$(SBINDIR) $(DESTDIR)$(BINDIR) $(DESTDIR)$(LIBDIR) \
	    $(DESTDIR)$(INCLUDEDIR) $(DESTDIR)$(MANDIR)/man1 \
	    $(DESTDIR)$(MANDIR)/man3 $(DESTDIR)$(MANDIR)/man7 \
	    $(DESTDIR)$(MANDIR)/man8
	install -m 755 $(MBXD) $(DESTDIR)$(SBINDIR)/mbxd
	install -m 755 $(MBXCTL) $(DESTDIR)$(BINDIR)/mbxctl
	install -m 755 $(LIBSO) $(DESTDIR)$(LIBDIR)/
	ln -sf libmbx.so.$(SOVERSION) $(DESTDIR)$(LIBDIR)/libmbx.so
	install -m 644 $(LIBA) $(DESTDIR)$(LIBDIR)/
	install -m 644 client/mbx.h $(DESTDIR)$(INCLUDEDIR)/
	install -m 644 man/mbxctl.1 $(DESTDIR)$(MANDIR)/man1/
	install -m 644 man/mbx.3 $(DESTDIR)$(MANDIR)/man3/
	install -m 644 man/mbx.7 $(DESTDIR)$(MANDIR)/man7/
	install -m 644 man/mbxd.8 $(DESTDIR)$(MANDIR)/man8/

uninstall:
	rm -f $(DESTDIR)$(SBINDIR)/mbxd $(DESTDIR)$(BINDIR)/mbxctl \
	    $(DESTDIR)$(LIBDIR)/libmbx.so.$(SOVERSION) \
	    $(DESTDIR)$(LIBDIR)/libmbx.so $(DESTDIR)$(LIBDIR)/libmbx.a \
	    $(DESTDIR)$(INCLUDEDIR)/mbx.h $(DESTDIR)$(MANDIR)/man1/mbxctl.1 \
	    $(DESTDIR)$(MANDIR)/man3/mbx.3 $(DESTDIR)$(MANDIR)/man7/mbx.7 \
	    $(DESTDIR)$(MANDIR)/man8/mbxd.8

clean:
	rm -rf build

help:
	@echo "make           build mbxd, mbxctl and libmbx into $(B)/"
	@echo "make run       install build deps, build, run mbxd in the foreground"
	@echo "make check     install build deps, build, run every test (plain and ASan+UBSan)"
	@echo "make test      run the test suite once, without installing anything"
	@echo "make check-valgrind  the test suite with the daemon under valgrind"
	@echo "make install   install under PREFIX=$(PREFIX) (DESTDIR honoured)"
	@echo "make clean     remove build/"
	@echo "Knobs: CC, CFLAGS, SANITIZE=address,undefined, B=builddir, PREFIX, DESTDIR"

-include $(shell find $(B) -name '*.d' 2>/dev/null)
