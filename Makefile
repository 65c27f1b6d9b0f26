# secshim build. `make` builds into build/; `make test` installs missing
# Debian packages (make deps), builds, and runs every test.

CC       ?= cc
BUILD    ?= build
# CFLAGS/LDFLAGS are the caller's to set (make asan does); the flags the
# code needs are kept apart so that a command-line CFLAGS cannot drop them.
CFLAGS   ?= -O2 -g
SS_CPPFLAGS := -Iinclude -D_GNU_SOURCE $(CPPFLAGS)
SS_CFLAGS   := -std=c11 -fPIC -Wall -Wextra -Werror -fvisibility=hidden \
               -ffunction-sections -fdata-sections $(CFLAGS)
LDLIBS   += -lssl -lcrypto -lconfig -lpthread -ldl

ENGINE_SRC := $(sort $(wildcard src/engine/*.c))
SHIM_SRC   := $(sort $(wildcard src/shim/*.c))
TLSLIB_SRC := $(sort $(wildcard src/tlslib/*.c))
UNIT_SRC   := $(sort $(wildcard test/unit/test_*.c))
APP_SRC    := $(sort $(wildcard test/apps/*.c))
BENCH_SRC  := $(sort $(wildcard test/bench/*.c))

ENGINE_OBJ := $(ENGINE_SRC:%.c=$(BUILD)/obj/%.o)
SHIM_OBJ   := $(SHIM_SRC:%.c=$(BUILD)/obj/%.o)
TLSLIB_OBJ := $(TLSLIB_SRC:%.c=$(BUILD)/obj/%.o)
# The preloaded library links no OpenSSL (include/secshim/tlsapi.h): the
# engine modules it needs at start, with their OpenSSL functions dropped
# by --gc-sections (none is reached from the shim), and -z defs proving
# that nothing of OpenSSL is left. Every other engine module is built
# into libsecshim-tls.so, which the shim loads at the first TLS context.
SHIM_ENGINE_OBJ := $(addprefix $(BUILD)/obj/src/engine/,policy.o log.o \
                     alloc.o compat.o common.o protocol.o peerid.o status.o)
TLS_ENGINE_OBJ  := $(filter-out $(addprefix $(BUILD)/obj/src/engine/,\
                     policy.o log.o compat.o status.o),$(ENGINE_OBJ))
UNIT_BIN   := $(UNIT_SRC:test/unit/%.c=$(BUILD)/test/%)
APP_BIN    := $(APP_SRC:test/apps/%.c=$(BUILD)/apps/%)
PLUGIN_SRC := $(sort $(wildcard test/apps/plugins/*.c))
PLUGIN_BIN := $(PLUGIN_SRC:test/apps/plugins/%.c=$(BUILD)/apps/plugins/%.so)
BENCH_PRELOAD := $(patsubst test/bench/preload/%.c,$(BUILD)/bench/preload/%.so,$(sort $(wildcard test/bench/preload/*.c)))
BENCH_BIN  := $(BENCH_SRC:test/bench/%.c=$(BUILD)/bench/%)

ENGINE_LIB := $(BUILD)/libsecshim-engine.a
SHIM_LIB   := $(if $(SHIM_SRC),$(BUILD)/libsecshim.so $(BUILD)/libsecshim-tls.so)
CLI        := $(BUILD)/secshim

.PHONY: all deps test test-unit test-unit-asan test-integration test-faults test-scan interop test-fips \
        fips-provider mutants test-mutants fuzz-build fuzz test-fuzz \
        test-asan asan test-tsan tsan demo bench bench-quick lint \
        check-old-headers clean install uninstall deb soak

all: $(ENGINE_LIB) $(SHIM_LIB) $(CLI) $(UNIT_BIN) $(APP_BIN) $(PLUGIN_BIN) $(BENCH_BIN) $(BENCH_PRELOAD)

deps:
	@tools/install-deps

$(BUILD)/obj/%.o: %.c $(wildcard include/secshim/*.h src/shim/*.h tools/*.h test/unit/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(SS_CPPFLAGS) $(SS_CFLAGS) -c $< -o $@

$(ENGINE_LIB): $(ENGINE_OBJ)
	@mkdir -p $(dir $@)
	rm -f $@
	ar rcs $@ $^

# Only the interposed libc names are exported (-fvisibility=hidden plus
# SS_EXPORT on the trampolines); from libsecshim-tls.so, its entry point.
$(BUILD)/libsecshim.so: $(SHIM_OBJ) $(SHIM_ENGINE_OBJ)
	$(CC) -shared -o $@ $^ $(LDFLAGS) -Wl,--gc-sections -Wl,-z,defs \
	    -lconfig -lpthread -ldl

$(BUILD)/libsecshim-tls.so: $(TLSLIB_OBJ) $(TLS_ENGINE_OBJ)
	$(CC) -shared -o $@ $^ $(LDFLAGS) -Wl,-z,defs -lssl -lcrypto -lpthread

# The command: every tools/*.c, each command in a file of its own.
TOOLS_OBJ  := $(patsubst %.c,$(BUILD)/obj/%.o,$(sort $(wildcard tools/*.c)))
$(CLI): $(TOOLS_OBJ) $(ENGINE_LIB)
	$(CC) -o $@ $^ $(LDFLAGS) $(LDLIBS)

$(BUILD)/test/%: $(BUILD)/obj/test/unit/%.o $(BUILD)/obj/test/unit/testutil.o $(ENGINE_LIB)
	@mkdir -p $(dir $@)
	$(CC) -o $@ $^ $(LDFLAGS) $(LDLIBS) -lcmocka

# Test programs carry no TLS code: they link nothing but libc.
# APP_UNSANITIZED: flags the test programs are built without (make tsan).
$(BUILD)/apps/%: test/apps/%.c $(wildcard test/apps/*.h test/common/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(SS_CPPFLAGS) $(filter-out $(APP_UNSANITIZED),$(SS_CFLAGS)) -o $@ $< -lpthread

# Libraries the test programs load with dlopen after start (raw_calls
# --via plugin): libc only, like the programs.
$(BUILD)/apps/plugins/%.so: test/apps/plugins/%.c $(wildcard test/apps/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(SS_CPPFLAGS) $(filter-out $(APP_UNSANITIZED),$(SS_CFLAGS)) -shared -o $@ $<

# The benchmark's own programs (test/bench/*.c): hsloop and tlsloop link
# OpenSSL (the library's bound, and TLS written into the program, both
# measured without the shim); the others, like test/apps, link nothing but
# libc, because they run under the shim.
BENCH_OPENSSL := hsloop tlsloop
$(BUILD)/bench/%: test/bench/%.c $(wildcard test/bench/*.h test/common/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(SS_CPPFLAGS) $(SS_CFLAGS) -o $@ $< \
	    $(if $(filter $(BENCH_OPENSSL),$*),-lssl -lcrypto)

# What the benchmark preloads instead of the shim (test/bench/preload/):
# libc only.
$(BUILD)/bench/preload/%.so: test/bench/preload/%.c
	@mkdir -p $(dir $@)
	$(CC) $(SS_CPPFLAGS) $(SS_CFLAGS) -shared -o $@ $<

# The soak (test/soak/run, docs/testing.md "Soak") runs after test-fuzz,
# alone too: its mixed load keeps a core busy for about 80 s,
# and its leak bounds are read from a machine that nothing else loads.
# The three builds (and the fuzz harnesses') are made two jobs at a time.
# The three integration passes (the build, AddressSanitizer's,
# ThreadSanitizer's), the interop matrix, the fault suite, the scan, the
# FIPS suite, the curated mutants and test_alloc under AddressSanitizer
# run at once (test/run-together): they mostly wait on peers and
# handshakes, so together they take about as long as the slowest alone;
# each log is printed whole, in order, once its suite and those before it
# have ended. make test stays under 15 minutes here.
# test-fuzz runs before them, alone: it keeps a core busy for its whole
# minute, and the integration passes have handshake timeouts.
test: deps
	$(MAKE) -j2 all asan tsan fuzz-build
	$(MAKE) lint
	$(MAKE) test-unit
	$(MAKE) fips-provider $(FIPS_TEST_BIN)
	$(MAKE) test-fuzz
	$(MAKE) soak SECONDS=60
	@test/run-together $(BUILD)/test-logs \
	    integration="test/integration/run $(BUILD)" \
	    unit_asan="test/run-unit build-asan/test/test_alloc" \
	    interop="test/interop/run $(BUILD)" \
	    faults="test/faults/run $(BUILD)" \
	    scan="test/scan/run $(BUILD)" \
	    fips="test/fips/run $(BUILD)" \
	    mutants="test/mutants/run $(BUILD) --curated" \
	    asan="test/integration/run build-asan" \
	    tsan="test/integration/run build-tsan"

test-unit: $(UNIT_BIN)
	@test/run-unit $(UNIT_BIN)

# test_alloc again under AddressSanitizer: its failed allocations walk
# the engine's error paths, and LeakSanitizer, at its exit, finds what
# they leak (docs/testing.md, "Allocation failure").
test-unit-asan: asan
	@test/run-unit build-asan/test/test_alloc

test-integration: all
	@test/integration/run $(BUILD)

# make soak [SECONDS=N]: a mixed load against two shimmed servers for N
# seconds (60 by default, about 80 s in all), with every-second samples of
# their memory, descriptors and threads; the summary goes to
# $(BUILD)/soak.txt (docs/testing.md, "Soak"). Long runs: SECONDS=3600.
SECONDS ?= 60
soak: all
	@test/soak/run $(BUILD) --seconds $(SECONDS)

# Misbehaving peers and a fault-injecting relay (docs/testing.md, "Fault
# suite"); under two minutes.
test-faults: all
	@test/faults/run $(BUILD)

# testssl.sh against a shimmed server with the default policy, offline
# (docs/protocols.md, "Defaults and the external scan"); about a minute.
test-scan: all
	@test/scan/run $(BUILD)

# The interop matrix (docs/interop.md): every peer stack in both
# directions; the table goes to $(BUILD)/interop.txt. Java's peer is
# compiled into $(BUILD)/interop/ by the runner.
interop: all
	@test/interop/run $(BUILD)

# make test-fips: OpenSSL's FIPS provider of the linked version, built
# from Debian's source package into $(BUILD)/fips/ (tools/build-fips;
# reused when it is there), then fips140-enabled endpoints against it
# (test/fips/run; docs/fips.md). own_openssl links OpenSSL: it is the
# program whose own use of OpenSSL the shim must not change.
FIPS_TEST_BIN := $(BUILD)/fips-test/own_openssl
$(FIPS_TEST_BIN): test/fips/own_openssl.c
	@mkdir -p $(dir $@)
	$(CC) $(SS_CPPFLAGS) $(SS_CFLAGS) -o $@ $< -lcrypto

# Mutants (test/mutants/mutants.py): named changes that break one rule
# each, which the tests must notice; make test runs the curated ones.
mutants: all
	@test/mutants/run $(BUILD)

test-mutants: all
	@test/mutants/run $(BUILD) --curated

# The provider is built before make test's suites start (it takes the
# two cores for about a minute); fips-provider alone builds or reuses it.
fips-provider: all
	@tools/build-fips $(BUILD)

test-fips: fips-provider $(FIPS_TEST_BIN)
	@test/fips/run $(BUILD)

# The same library and programs built with AddressSanitizer into
# build-asan/; the harness preloads libasan ahead of the shim.
ASAN_FLAGS := -O1 -g -fsanitize=address -fno-omit-frame-pointer
asan:
	$(MAKE) BUILD=build-asan CFLAGS="$(ASAN_FLAGS)" LDFLAGS="-fsanitize=address" all

test-asan: asan
	@test/integration/run build-asan

# The same again with ThreadSanitizer into build-tsan/; its runtime comes
# in as the shim's own dependency (test/integration/run says why it is not
# preloaded first). The test programs are built without it: they stand
# for the unchanged programs the shim runs in, and some race on purpose
# (a close while another thread reads, ev_fd_reuse). -Wno-tsan: GCC warns
# that TSan does not model atomic_thread_fence; the fences that use it
# order the status file for other processes (src/engine/status.c), which
# TSan does not see anyway.
TSAN_FLAGS := -O1 -g -fsanitize=thread -fno-omit-frame-pointer -Wno-tsan
tsan:
	$(MAKE) BUILD=build-tsan CFLAGS="$(TSAN_FLAGS)" LDFLAGS="-fsanitize=thread" \
	    APP_UNSANITIZED=-fsanitize=thread all

test-tsan: tsan
	@test/integration/run build-tsan

# libFuzzer harnesses (docs/testing.md, "Fuzzing"): test/fuzz/fuzz_*.c,
# with the engine built again by clang into build/fuzz/ (the main build
# uses gcc, which has no libFuzzer). The engine objects carry the
# sanitizers and coverage (fuzzer-no-link); the harnesses link libFuzzer's
# main. UBSan does not recover, so undefined behaviour is a crash.
# make fuzz: fuzz each harness FUZZ_SECONDS (from a copy of its corpus);
# make test-fuzz: replay the committed corpus, then the same.
FUZZ_CC      ?= clang
FUZZ_BUILD   := build/fuzz
FUZZ_SECONDS ?= 21
FUZZ_SAN     := -fsanitize=address,undefined -fno-sanitize-recover=undefined
FUZZ_CFLAGS  := -std=c11 -O1 -g -fno-omit-frame-pointer -Wall -Wextra -Werror \
                -fsanitize=fuzzer-no-link $(FUZZ_SAN)
FUZZ_HARNESS := $(patsubst test/fuzz/%.c,$(FUZZ_BUILD)/%,\
                  $(sort $(wildcard test/fuzz/fuzz_*.c)))
FUZZ_ENGINE_OBJ := $(ENGINE_SRC:%.c=$(FUZZ_BUILD)/obj/%.o)

$(FUZZ_BUILD)/obj/%.o: %.c $(wildcard include/secshim/*.h test/fuzz/*.h)
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(SS_CPPFLAGS) -Itest/fuzz -DFZ_ROOT='"$(CURDIR)"' \
	    $(FUZZ_CFLAGS) -c $< -o $@

$(FUZZ_BUILD)/fuzz_%: $(FUZZ_BUILD)/obj/test/fuzz/fuzz_%.o \
                      $(FUZZ_BUILD)/obj/test/fuzz/fuzzutil.o $(FUZZ_ENGINE_OBJ)
	$(FUZZ_CC) -fsanitize=fuzzer $(FUZZ_SAN) -o $@ $^ \
	    -lssl -lcrypto -lconfig -lpthread -ldl

# Kept between runs (they are intermediates of the pattern rules).
.SECONDARY: $(FUZZ_ENGINE_OBJ) $(FUZZ_BUILD)/obj/test/fuzz/fuzzutil.o \
            $(FUZZ_HARNESS:$(FUZZ_BUILD)/%=$(FUZZ_BUILD)/obj/test/fuzz/%.o)

fuzz-build: $(FUZZ_HARNESS)

fuzz: fuzz-build
	@test/fuzz/run --fuzz-only $(FUZZ_BUILD) $(FUZZ_SECONDS)

test-fuzz: fuzz-build
	@test/fuzz/run $(FUZZ_BUILD) $(FUZZ_SECONDS)

demo: deps
	$(MAKE) all
	@tools/demo $(BUILD)

# make bench: every scenario, 5 interleaved rounds (about 10 minutes
# here); bench-quick: fewer rounds, smaller runs (under 2 minutes). Both
# print the tables and write $(BUILD)/bench.json and $(BUILD)/bench.svg.
# BENCH_ARGS passes more options (e.g. BENCH_ARGS="--baseline OLD_BUILD").
bench: deps
	$(MAKE) all
	@test/bench/run $(BUILD) $(BENCH_ARGS)

bench-quick: deps
	$(MAKE) all
	@test/bench/run $(BUILD) --quick $(BENCH_ARGS)

# The man pages too: groff's warnings go to stderr, and any is an error.
lint: check-old-headers
	cppcheck --quiet --error-exitcode=1 --enable=warning,performance,portability \
	    --inline-suppr -Iinclude -D_GNU_SOURCE src/
	@for page in $(MAN_PAGES); do \
	    warnings=$$(MANWIDTH=80 man --warnings -E UTF-8 -l $$page 2>&1 >/dev/null); \
	    [ -z "$$warnings" ] || { echo "$$page:"; echo "$$warnings"; exit 1; }; \
	done

# ---- install, uninstall, Debian package ----------------------------------
#
# make install [PREFIX=/usr/local] [DESTDIR=]: the library in
# PREFIX/lib/secshim/ (a directory of its own: nothing else should link
# it), the command, the man pages, the config/ examples in
# PREFIX/share/secshim/. `secshim run` finds the library relative to
# itself (PREFIX/bin/../lib/secshim), so the install is relocatable.
# make uninstall removes exactly those files, and the two directories
# that are secshim's own.
PREFIX  ?= /usr/local
DESTDIR ?=
VERSION := $(shell cat VERSION)
MAN_PAGES := docs/man/secshim.1 docs/man/secshim.cfg.5 docs/man/libsecshim.7
EXAMPLES  := config/secshim.cfg config/demo.cfg config/default.cfg \
             config/secshim.env config/systemd/secshim.conf
LIBDIR   := $(DESTDIR)$(PREFIX)/lib/secshim
SHAREDIR := $(DESTDIR)$(PREFIX)/share/secshim
MANDIR   := $(DESTDIR)$(PREFIX)/share/man

install: $(SHIM_LIB) $(CLI)
	install -d $(LIBDIR) $(DESTDIR)$(PREFIX)/bin $(SHAREDIR)/systemd
	install -m 644 $(BUILD)/libsecshim.so $(LIBDIR)/libsecshim.so
	install -m 644 $(BUILD)/libsecshim-tls.so $(LIBDIR)/libsecshim-tls.so
	install -m 755 $(CLI) $(DESTDIR)$(PREFIX)/bin/secshim
	for page in $(MAN_PAGES); do \
	    section=$${page##*.}; \
	    install -d $(MANDIR)/man$$section; \
	    install -m 644 $$page $(MANDIR)/man$$section/; \
	done
	for file in $(EXAMPLES); do \
	    install -m 644 $$file $(SHAREDIR)/$${file#config/}; \
	done

uninstall:
	rm -f $(LIBDIR)/libsecshim.so $(LIBDIR)/libsecshim-tls.so \
	    $(DESTDIR)$(PREFIX)/bin/secshim
	for page in $(MAN_PAGES); do \
	    rm -f $(MANDIR)/man$${page##*.}/$${page##*/}; \
	done
	for file in $(EXAMPLES); do rm -f $(SHAREDIR)/$${file#config/}; done
	rmdir $(LIBDIR) $(SHAREDIR)/systemd $(SHAREDIR) 2>/dev/null || true

# make deb: build/secshim_VERSION_ARCH.deb with dpkg-deb alone (no network,
# no debhelper). The same files under /usr, plus /etc/secshim/secshim.cfg
# (config/default.cfg: no endpoint enabled, so installing the package
# changes no connection) and /etc/secshim/secshim.env, both conffiles.
# Depends is what dpkg-shlibdeps computes for the library and the command
# on Debian 12 (libc6, libssl3, libconfig9), written here by hand so that
# building needs no dpkg-dev.
DEB_ARCH := $(shell dpkg --print-architecture 2>/dev/null)
DEB_ROOT := $(BUILD)/deb
DEB      := $(BUILD)/secshim_$(VERSION)_$(DEB_ARCH).deb

deb: $(SHIM_LIB) $(CLI)
	rm -rf $(DEB_ROOT) $(DEB)
	$(MAKE) --no-print-directory install DESTDIR=$(abspath $(DEB_ROOT)) PREFIX=/usr
	install -d $(DEB_ROOT)/etc/secshim $(DEB_ROOT)/DEBIAN
	install -m 644 config/default.cfg $(DEB_ROOT)/etc/secshim/secshim.cfg
	install -m 644 config/secshim.env $(DEB_ROOT)/etc/secshim/secshim.env
	printf '/etc/secshim/secshim.cfg\n/etc/secshim/secshim.env\n' \
	    > $(DEB_ROOT)/DEBIAN/conffiles
	sed -e 's/@VERSION@/$(VERSION)/' -e 's/@ARCH@/$(DEB_ARCH)/' \
	    tools/deb-control > $(DEB_ROOT)/DEBIAN/control
	dpkg-deb --build --root-owner-group $(DEB_ROOT) $(DEB)

# The shim (and platform_calls) compiled where the headers lack what glibc
# 2.34 and 2.35 added: test/oldlibc shadows <unistd.h> and <sys/epoll.h>
# with those names undeclared. First its self-test: each name, used alone,
# compiles against the system headers and must not through the shadows.
OLD_HEADERS := -Itest/oldlibc
OLD_PROBES  := close_range closefrom epoll_pwait2 CLOSE_RANGE_UNSHARE \
               CLOSE_RANGE_CLOEXEC
OLD_CC      := $(CC) $(SS_CPPFLAGS) $(SS_CFLAGS) -fsyntax-only
check-old-headers:
	@for p in $(OLD_PROBES); do \
	    $(OLD_CC) -DPROBE_$$p test/oldlibc/probe.c || exit 1; \
	    if $(OLD_CC) $(OLD_HEADERS) -DPROBE_$$p test/oldlibc/probe.c \
	        2>/dev/null; then \
	        echo "check-old-headers: test/oldlibc does not hide $$p"; \
	        exit 1; \
	    fi; \
	done
	$(OLD_CC) $(OLD_HEADERS) test/oldlibc/probe.c
	$(OLD_CC) $(OLD_HEADERS) $(SHIM_SRC) test/apps/platform_calls.c
	@echo "check-old-headers: the shim builds without the glibc 2.34/2.35 declarations"

clean:
	rm -rf $(BUILD) build-asan build-tsan $(FUZZ_BUILD)
