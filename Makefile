# Portal MFA — build, test, run, bench, install.
#
# Sources are found by pattern, so a new file needs no Makefile edit:
#   shared/*/*.c, shared/mfa/phone.cc  -> build/libmfa.a
#   shared/mfa/phone_cc_gen.cc         -> build/gen/phone_cc.h (a build tool)
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
# --as-needed: a binary records only the shared libraries it calls (mfa-email
# no libphonenumber, mfa-codes no libcurl); Debian's gcc passes it already.
LDFLAGS   += $(SAN) -Wl,--as-needed

# Workers link the phone shim's C++ stack (libphonenumber, protobuf, abseil,
# ICU, libstdc++) from its archives. As shared libraries it costs a process
# ~6 MiB resident before a number is parsed (the dynamic linker reads their
# symbol tables and relocations at start-up), from the archives ~1.5 MiB:
# the workers' peak RSS drops by ~5 MiB. An archive adds only what is
# referenced, so a worker that does not use shared/mfa/phone.o gets none of
# it; ICU's data (31 MB on disk) comes whole, but only the pages read count
# (~64 KiB). Sanitizer builds and machines without the archives
# (libphonenumber-dev, libprotobuf-dev, libabsl-dev, libicu-dev) keep the
# shared libraries; so do mfactl and the tests.
PHONE_AR  := phonenumber protobuf absl_raw_hash_set absl_hash absl_city \
             absl_low_level_hash absl_strings absl_strings_internal \
             absl_throw_delegate absl_raw_logging_internal icui18n icuuc \
             icudata stdc++
PHONE_AR_OK := $(if $(SAN),,$(if $(filter-out /%,$(foreach a,$(PHONE_AR),\
             $(shell $(CC) -print-file-name=lib$(a).a))),,yes))
PHONE_STATIC := -Wl,--gc-sections -Wl,-Bstatic -Wl,--start-group \
             $(PHONE_AR:%=-l%) -Wl,--end-group -Wl,-Bdynamic
WORKER_LDLIBS := $(if $(PHONE_AR_OK),$(PKG_LIBS) $(PHONE_STATIC) -lm,$(LDLIBS))

LIB_C     := $(sort $(wildcard shared/util/*.c shared/mfa/*.c shared/runtime/*.c))
LIB_CC    := $(filter-out %_gen.cc,$(sort $(wildcard shared/mfa/*.cc)))
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
        check-layers check fuzz fuzz-quick fuzz-build servers-start servers-stop

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

# The calling codes libphonenumber knows, as a C table for phone_e164.c
# (phone_mask and the E.164 split without the library's C++ stack, which
# costs mfa-sms ~4 MiB resident): written by a generator linked to the
# same library, never typed by hand. The generator is a build tool: no
# sanitizers, the shared library (a newer one makes a new table). Objects
# that include the table get it as a prerequisite (the first build has no
# .d file to say so).
PHONE_CC_H := $(BUILD)/gen/phone_cc.h
PHONE_SO  := $(filter /%,$(shell $(CXX) -print-file-name=libphonenumber.so))

$(BUILD)/gen/phone_cc_gen: shared/mfa/phone_cc_gen.cc $(PHONE_SO)
	@mkdir -p $(dir $@)
	$(CXX) -std=c++17 -O1 -Wall -Wextra -Werror -o $@ $< -lphonenumber

$(PHONE_CC_H): $(BUILD)/gen/phone_cc_gen
	$< > $@.tmp && mv $@.tmp $@

$(BUILD)/shared/mfa/phone_e164.o: $(PHONE_CC_H)
$(BUILD)/shared/mfa/phone_e164.o: CFLAGS += -I$(BUILD)/gen

$(LIB): $(LIB_OBJ)
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

# A worker is its folder's objects over the shared library.
worker_objs = $(patsubst %.c,$(BUILD)/%.o,$(wildcard workers/$(1)/*.c))
.SECONDEXPANSION:
$(BIN)/mfa-%: $$(call worker_objs,$$*) $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(WORKER_LDLIBS)

$(BIN)/mfactl: $(CTL_SRC:%.c=$(BUILD)/%.o) $(PROD_A) $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

# The static library bundles the shared objects it needs, so an
# application links it alone; the shared one exports only mfa_producer_*
# and takes from libmfa.a only the objects the producer calls (-z defs:
# nothing left unresolved), not phone.o's C++ stack nor libpq's and
# libcurl's users: an application that loads it maps 4 libraries, not 50
# (~2.5 MiB resident instead of ~13).
$(BUILD)/libmfa-producer.a: $(PROD_LIB_OBJ) $(LIB_OBJ)
	rm -f $@ && ar rcs $@ $^

$(BUILD)/libmfa-producer.so: $(PROD_LIB_OBJ) $(LIB) producer/libmfa-producer.map
	$(CC) -shared $(LDFLAGS) -Wl,-z,defs -Wl,-soname,libmfa-producer.so.0 \
	    -Wl,--version-script=producer/libmfa-producer.map -o $@ \
	    $(PROD_LIB_OBJ) $(LIB) $(LDLIBS)

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

# Objects made through pattern chains are kept (not intermediate), so the
# .d files next to them keep tracking header changes.
.SECONDARY:

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

# `make check-faults`: tests/fault against private servers and a three-node
# RabbitMQ cluster (workers killed, brokers and database restarted, SMTP and
# Twilio failing under a stream of logins); prints the counts, also kept in
# var/fault-report.json. About 6-8 minutes.
.PHONY: check-faults
check-faults: all
	@MFA_BUILD=$(BUILD) sh tests/fault/run.sh

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

# `make check-memory` (not part of `make test`, ~10 min): every worker over
# 10,000 events with its RSS sampled (must stay flat), then under valgrind
# memcheck (no error, no definite/indirect leak) over MFA_MEM_VG_EVENTS
# (10,000); starts its own servers. See tests/memory/check_memory.py.
.PHONY: check-memory
check-memory: all
	@$(PY) tests/memory/check_memory.py --build $(BUILD)

servers-start:
	@sh tests/servers.sh start var/servers
servers-stop:
	@sh tests/servers.sh stop var/servers

# ---- fuzzing ---------------------------------------------------------------
# libFuzzer targets tests/fuzz/fuzz_<t>.c, built by clang with ASan and UBSan
# straight from the sources they test (not libmfa.a: gcc builds that), into
# $(FUZZ_DIR)/fuzz_<t>. `make fuzz` runs each for FUZZ_SECONDS on a scratch
# copy of tests/fuzz/corpus/<t>/ (so the seeds, regression inputs included,
# run first and the repository's corpus stays as it is) with leak detection,
# and fails if any finds a crash, a leak or a broken invariant; the input
# is saved as $(FUZZ_DIR)/crash-<t>-* and the log as $(FUZZ_DIR)/<t>.log.
# Scratch files (fuzz_tmpl's template tree) go to $(FUZZ_DIR)/tmp.
# `make fuzz-quick`: the same, 10 s each, for CI. Needs clang and Debian's
# libclang-rt-14-dev (scripts/deps.sh).
FUZZ_SECONDS ?= 60
FUZZ_DIR     := $(BUILD)/fuzz
FUZZ_CC      := clang
FUZZ_CXX     := clang++
FUZZ_SAN     := -g -O1 -fsanitize=fuzzer,address,undefined \
                -fno-sanitize-recover=all -fno-omit-frame-pointer
FUZZ_CFLAGS  := -std=c17 $(FUZZ_SAN) -Wall -Wextra -Wshadow -D_GNU_SOURCE \
                -DMFA_VERSION='"$(VERSION)"' -Ishared -I. -Itests/fuzz \
                $(shell pkg-config --cflags json-c libsodium yaml-0.1 2>/dev/null)
FUZZ_CXXFLAGS := -std=c++17 $(FUZZ_SAN) -Wall -Wextra -Ishared -I.
FUZZ_TARGETS := addr config envelope phone tmpl
# What each target links: the sources under test and their libraries
# (module*.c: a module split by concern stays one entry).
FUZZ_SRC_addr     := shared/mfa/addr.c shared/mfa/mail.c shared/util/buf.c \
                     shared/util/log.c shared/util/xalloc.c
FUZZ_LIB_addr     := json-c libsodium
FUZZ_SRC_config   := $(wildcard shared/util/cfg*.c) shared/mfa/settings.c \
                     shared/util/xalloc.c
FUZZ_LIB_config   := yaml-0.1 libsodium
FUZZ_SRC_envelope := $(wildcard shared/mfa/envelope*.c) shared/mfa/addr.c \
                     shared/util/clock.c shared/util/log.c shared/util/xalloc.c
FUZZ_LIB_envelope := json-c libsodium
FUZZ_SRC_phone    := shared/mfa/phone.cc shared/mfa/phone_e164.c
FUZZ_LIB_phone    := libsodium
FUZZ_LDX_phone    := -lphonenumber
FUZZ_SRC_tmpl     := shared/mfa/tmpl.c shared/mfa/mail.c shared/mfa/addr.c \
                     shared/util/buf.c shared/util/log.c shared/util/xalloc.c
FUZZ_LIB_tmpl     := json-c libsodium
FUZZ_BINS    := $(FUZZ_TARGETS:%=$(FUZZ_DIR)/fuzz_%)

# Objects reached only through the pattern rule below would be deleted as
# intermediates after each build; keep them so rebuilds stay incremental.
.PRECIOUS: $(FUZZ_DIR)/obj/%.o
# phone_e164.c includes the generated table (see PHONE_CC_H above).
$(FUZZ_DIR)/obj/shared/mfa/phone_e164.o: $(PHONE_CC_H)
$(FUZZ_DIR)/obj/shared/mfa/phone_e164.o: FUZZ_CFLAGS += -I$(BUILD)/gen
# The harnesses are ours alone: they also get -Werror.
$(FUZZ_DIR)/obj/tests/fuzz/%.o: FUZZ_WERROR := -Werror
$(FUZZ_DIR)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) $(FUZZ_WERROR) -MMD -MP -c $< -o $@
$(FUZZ_DIR)/obj/%.o: %.cc
	@mkdir -p $(dir $@)
	$(FUZZ_CXX) $(FUZZ_CXXFLAGS) -MMD -MP -c $< -o $@
# Linked by clang++ for all: phone.cc needs the C++ runtime.
$(FUZZ_DIR)/fuzz_%: $(FUZZ_DIR)/obj/tests/fuzz/fuzz_%.o \
    $$(addprefix $(FUZZ_DIR)/obj/,$$(addsuffix .o,$$(basename $$(FUZZ_SRC_$$*))))
	$(FUZZ_CXX) $(FUZZ_SAN) -o $@ $^ \
	    $$(pkg-config --libs $(FUZZ_LIB_$*)) $(FUZZ_LDX_$*)

fuzz-build: $(FUZZ_BINS)

fuzz: $(FUZZ_BINS)
	@failed=""; \
	for t in $(FUZZ_TARGETS); do \
	    work=$(FUZZ_DIR)/corpus/$$t; rm -rf $$work; mkdir -p $$work; \
	    if [ -d tests/fuzz/corpus/$$t ]; then cp tests/fuzz/corpus/$$t/* $$work/; fi; \
	    dict=""; [ -f tests/fuzz/$$t.dict ] && dict="-dict=tests/fuzz/$$t.dict"; \
	    echo "fuzz: $$t, $(FUZZ_SECONDS) s, $$(ls $$work | wc -l) seeds"; \
	    mkdir -p $(FUZZ_DIR)/tmp; \
	    if TMPDIR=$(abspath $(FUZZ_DIR))/tmp \
	        $(FUZZ_DIR)/fuzz_$$t $$dict -max_total_time=$(FUZZ_SECONDS) \
	        -detect_leaks=1 -timeout=25 -print_final_stats=1 \
	        -artifact_prefix=$(FUZZ_DIR)/crash-$$t- $$work \
	        >$(FUZZ_DIR)/$$t.log 2>&1; then \
	        grep -E '^#[0-9]+[[:space:]]+DONE' $(FUZZ_DIR)/$$t.log | sed 's/^/    /'; \
	    else \
	        failed="$$failed $$t"; \
	        grep -E 'invariant failed|ERROR|SUMMARY|Test unit written' \
	            $(FUZZ_DIR)/$$t.log | sed 's/^/    /'; \
	    fi; \
	done; \
	if [ -n "$$failed" ]; then \
	    echo "fuzz: FAILED:$$failed (logs: $(FUZZ_DIR)/<target>.log)"; exit 1; \
	fi; \
	echo "fuzz: ok"

fuzz-quick:
	@$(MAKE) --no-print-directory fuzz FUZZ_SECONDS=10

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
