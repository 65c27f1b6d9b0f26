# secshim build. `make` builds into build/; `make test` installs missing
# Debian packages (make deps), builds, and runs every test.

CC       ?= cc
BUILD    ?= build
# CFLAGS/LDFLAGS are the caller's to set (make asan does); the flags the
# code needs are kept apart so that a command-line CFLAGS cannot drop them.
CFLAGS   ?= -O2 -g
SS_CPPFLAGS := -Iinclude -D_GNU_SOURCE $(CPPFLAGS)
SS_CFLAGS   := -std=c11 -fPIC -Wall -Wextra -Werror -fvisibility=hidden $(CFLAGS)
LDLIBS   += -lssl -lcrypto -lconfig -lpthread -ldl

ENGINE_SRC := $(sort $(wildcard src/engine/*.c))
SHIM_SRC   := $(sort $(wildcard src/shim/*.c))
UNIT_SRC   := $(sort $(wildcard test/unit/test_*.c))
APP_SRC    := $(sort $(wildcard test/apps/*.c))

ENGINE_OBJ := $(ENGINE_SRC:%.c=$(BUILD)/obj/%.o)
SHIM_OBJ   := $(SHIM_SRC:%.c=$(BUILD)/obj/%.o)
UNIT_BIN   := $(UNIT_SRC:test/unit/%.c=$(BUILD)/test/%)
APP_BIN    := $(APP_SRC:test/apps/%.c=$(BUILD)/apps/%)

ENGINE_LIB := $(BUILD)/libsecshim-engine.a
SHIM_LIB   := $(if $(SHIM_SRC),$(BUILD)/libsecshim.so)
CLI        := $(BUILD)/secshim

.PHONY: all deps test test-unit test-integration test-asan asan demo bench lint \
        check-old-headers clean

all: $(ENGINE_LIB) $(SHIM_LIB) $(CLI) $(UNIT_BIN) $(APP_BIN)

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
# SS_EXPORT on the trampolines).
$(BUILD)/libsecshim.so: $(SHIM_OBJ) $(ENGINE_OBJ)
	$(CC) -shared -o $@ $^ $(LDFLAGS) $(LDLIBS)

$(CLI): $(BUILD)/obj/tools/secshim.o $(BUILD)/obj/tools/elfinfo.o $(ENGINE_LIB)
	$(CC) -o $@ $^ $(LDFLAGS) $(LDLIBS)

$(BUILD)/test/%: $(BUILD)/obj/test/unit/%.o $(BUILD)/obj/test/unit/testutil.o $(ENGINE_LIB)
	@mkdir -p $(dir $@)
	$(CC) -o $@ $^ $(LDFLAGS) $(LDLIBS) -lcmocka

# Test programs carry no TLS code: they link nothing but libc.
$(BUILD)/apps/%: test/apps/%.c $(wildcard test/apps/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(SS_CPPFLAGS) $(SS_CFLAGS) -o $@ $< -lpthread

test: deps
	$(MAKE) all
	$(MAKE) lint
	$(MAKE) test-unit
	$(MAKE) test-integration
	$(MAKE) test-asan

test-unit: $(UNIT_BIN)
	@test/run-unit $(UNIT_BIN)

test-integration: all
	@test/integration/run $(BUILD)

# The same library and programs built with AddressSanitizer into
# build-asan/; the harness preloads libasan ahead of the shim.
ASAN_FLAGS := -O1 -g -fsanitize=address -fno-omit-frame-pointer
asan:
	$(MAKE) BUILD=build-asan CFLAGS="$(ASAN_FLAGS)" LDFLAGS="-fsanitize=address" all

test-asan: asan
	@test/integration/run build-asan

demo: deps
	$(MAKE) all
	@tools/demo $(BUILD)

bench: deps
	$(MAKE) all
	@test/bench/run $(BUILD)

lint: check-old-headers
	cppcheck --quiet --error-exitcode=1 --enable=warning,performance,portability \
	    --inline-suppr -Iinclude -D_GNU_SOURCE src/

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
	rm -rf $(BUILD) build-asan
