# Portal MFA — build, test, run, bench, install.
#
# Sources are found by pattern, so a new file needs no Makefile edit:
#   shared/*/*.c, shared/mfa/phone.cc  -> build/libmfa.a
#   workers/<name>/*.c                 -> build/bin/mfa-<name>
#   ctl/*.c                            -> build/bin/mfactl
#   producer/*.c                       -> build/libmfa-producer.{a,so}, mfa-publish
#   tests/unit/test_<module>.c         -> build/tests/test_<module> (cmocka)
#
# `make asan` rebuilds everything under build-asan/ with ASan+UBSan and runs
# the same tests against it.

VERSION   := 0.1.0
PREFIX    ?= /usr/local
DESTDIR   ?=
BUILD     ?= build
BIN       := $(BUILD)/bin

CC        ?= gcc
CXX       ?= g++
PKGS      := librabbitmq libpq libcurl libsodium json-c yaml-0.1
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null)

OPT       ?= -O2
SAN       ?=
WARN      := -Wall -Wextra -Werror -Wshadow -Wformat=2 -Wno-format-nonliteral
CFLAGS    += -std=c17 $(OPT) -g $(WARN) -D_GNU_SOURCE -DMFA_VERSION='"$(VERSION)"' \
             -Ishared -I. $(PKG_CFLAGS) $(SAN) -fPIC
CXXFLAGS  += -std=c++17 $(OPT) -g -Wall -Wextra -Werror -Ishared -I. $(SAN) -fPIC
LDLIBS    := $(PKG_LIBS) -lphonenumber -lstdc++ -lm
LDFLAGS   += $(SAN)

LIB_C     := $(sort $(wildcard shared/util/*.c shared/mfa/*.c shared/runtime/*.c))
LIB_CC    := $(sort $(wildcard shared/mfa/*.cc))
LIB_OBJ   := $(LIB_C:%.c=$(BUILD)/%.o) $(LIB_CC:%.cc=$(BUILD)/%.o)
LIB       := $(BUILD)/libmfa.a

WORKERS   := $(notdir $(patsubst %/,%,$(dir $(wildcard workers/*/main.c))))
WORKER_BINS := $(WORKERS:%=$(BIN)/mfa-%)

CTL_SRC   := $(sort $(wildcard ctl/*.c))
CTL_BIN   := $(if $(CTL_SRC),$(BIN)/mfactl)

PROD_LIB_SRC := $(filter-out producer/mfa_publish.c producer/example_%.c,$(sort $(wildcard producer/*.c)))
PROD_LIB_OBJ := $(PROD_LIB_SRC:%.c=$(BUILD)/%.o)
PROD_BINS := $(if $(wildcard producer/mfa_publish.c),$(BIN)/mfa-publish) \
             $(patsubst producer/%.c,$(BIN)/%,$(wildcard producer/example_*.c))
PROD_A    := $(if $(PROD_LIB_SRC),$(BUILD)/libmfa-producer.a)
PROD_SO   := $(if $(PROD_LIB_SRC),$(BUILD)/libmfa-producer.so)

UNIT_SRC  := $(sort $(wildcard tests/unit/test_*.c))
UNIT_BINS := $(UNIT_SRC:tests/unit/%.c=$(BUILD)/tests/%)

# Test-only programs: tests/worker (runtime test worker), tests/tools/*.c.
TEST_BINS := $(BUILD)/tests/mfa-testworker \
             $(patsubst tests/tools/%.c,$(BUILD)/tests/%,$(wildcard tests/tools/*.c))

ALL_BINS  := $(WORKER_BINS) $(CTL_BIN) $(PROD_BINS)

PY        := /usr/bin/python3

.PHONY: all deps test unit integration run bench install clean asan style \
        check-layers check fuzz servers-start servers-stop

all: $(ALL_BINS) $(PROD_A) $(PROD_SO) $(UNIT_BINS) $(TEST_BINS)

deps:
	@sh scripts/deps.sh

# ---- objects -------------------------------------------------------------
$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -MMD -MP -c $< -o $@

$(BUILD)/%.o: %.cc
	@mkdir -p $(dir $@)
	$(CXX) $(CXXFLAGS) -MMD -MP -c $< -o $@

$(LIB): $(LIB_OBJ)
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

# A worker is its folder's objects over the shared library.
worker_objs = $(patsubst %.c,$(BUILD)/%.o,$(wildcard workers/$(1)/*.c))
.SECONDEXPANSION:
$(BIN)/mfa-%: $$(call worker_objs,$$*) $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BIN)/mfactl: $(CTL_SRC:%.c=$(BUILD)/%.o) $(PROD_A) $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

# The static library bundles the shared objects it needs, so an
# application links it alone; the shared one exports only mfa_producer_*.
$(BUILD)/libmfa-producer.a: $(PROD_LIB_OBJ) $(LIB_OBJ)
	rm -f $@ && ar rcs $@ $^

$(BUILD)/libmfa-producer.so: $(PROD_LIB_OBJ) $(LIB) producer/libmfa-producer.map
	$(CC) -shared $(LDFLAGS) -Wl,-soname,libmfa-producer.so.0 \
	    -Wl,--version-script=producer/libmfa-producer.map -o $@ \
	    $(PROD_LIB_OBJ) -Wl,--whole-archive $(LIB) -Wl,--no-whole-archive $(LDLIBS)

$(BIN)/mfa-publish: $(BUILD)/producer/mfa_publish.o $(PROD_A) $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BIN)/example_%: $(BUILD)/producer/example_%.o $(PROD_A) $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/tests/mfa-testworker: $(BUILD)/tests/worker/main.o $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/tests/%: $(BUILD)/tests/tools/%.o $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/tests/test_%: $(BUILD)/tests/unit/test_%.o $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS) -lcmocka

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)

# ---- tests ---------------------------------------------------------------
# `make test`: packages, build, unit tests, then the integration suite
# against real servers that tests/servers.sh starts and stops.
test: deps
	@$(MAKE) --no-print-directory all
	@$(MAKE) --no-print-directory check-layers
	@$(MAKE) --no-print-directory unit
	@$(MAKE) --no-print-directory integration

unit: $(UNIT_BINS)
	@sh scripts/run-unit.sh $(UNIT_BINS)

integration: all
	@MFA_BUILD=$(BUILD) sh scripts/run-integration.sh

asan:
	@$(MAKE) --no-print-directory BUILD=build-asan OPT=-O1 \
	    SAN="-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all" test

# A lower layer never includes a higher one: util <- mfa <- runtime <- workers.
check-layers:
	@! grep -nE '#include "(mfa|runtime)/' shared/util/*.[ch] || { echo "layer violation: util includes mfa/runtime"; exit 1; }
	@! grep -nE '#include "runtime/' shared/mfa/*.[ch] shared/mfa/*.cc 2>/dev/null || { echo "layer violation: mfa includes runtime"; exit 1; }
	@echo "layers: ok"

style:
	@clang-format --dry-run --Werror $$(git ls-files '*.c' '*.h' '*.cc')

run: deps all
	@sh scripts/run.sh

# `make bench` (not part of `make test`): starts its own servers, measures,
# writes bench/results.json and bench/REPORT.md. BENCH_QUICK=1 for a short
# run, BENCH_EVENTS=N for the soak size. See bench/README.md.
BENCH_TOOLS := $(BUILD)/bench/bare $(BUILD)/bench/load $(BUILD)/bench/smtp_sink
BENCH_BINS := $(BENCH_TOOLS) $(if $(PROD_A),$(BUILD)/bench/client)

bench: all $(BENCH_BINS)
	@$(PY) bench/run.py --build $(BUILD)

$(BENCH_TOOLS): $(BUILD)/bench/%: $(BUILD)/bench/%.o
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/bench/client: $(BUILD)/bench/client.o $(PROD_A) $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -pthread -o $@ $^ $(LDLIBS)

servers-start:
	@sh tests/servers.sh start var/servers
servers-stop:
	@sh tests/servers.sh stop var/servers

install: all
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/lib \
	    $(DESTDIR)$(PREFIX)/include $(DESTDIR)$(PREFIX)/lib/pkgconfig \
	    $(DESTDIR)$(PREFIX)/share/mfa
	install -m 0755 $(ALL_BINS) $(DESTDIR)$(PREFIX)/bin/
	$(if $(PROD_A),install -m 0644 $(PROD_A) $(PROD_SO) $(DESTDIR)$(PREFIX)/lib/)
	$(if $(PROD_A),install -m 0644 producer/mfa_producer.h $(DESTDIR)$(PREFIX)/include/)
	$(if $(PROD_A),sed -e 's|@PREFIX@|$(PREFIX)|g' -e 's|@VERSION@|$(VERSION)|g' \
	    producer/mfa-producer.pc.in > $(DESTDIR)$(PREFIX)/lib/pkgconfig/mfa-producer.pc)
	cp -r schema config $(DESTDIR)$(PREFIX)/share/mfa/

clean:
	rm -rf build build-asan
