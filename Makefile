# Makefile - builds procbus; `make help` lists the targets (from the `## ` notes below).
#
# Layout (HACKING.md): include/procbus/ public headers (installed as they are) | shm/ + publisher/lib/
# libprocbus-pub | common/ libprocbus-common (what procbusd and the tools share) | publisher/procbusd/
# the supervisor | readers/cli/, readers/exporter/ the tools | ebpf/ the tracer | tests/ | bench/.
# Programs link libraries, never another program's objects; each folder's include path is below.
CC      ?= cc
CXX     ?= c++
O       ?= build
OPT     ?= -O2
CSTD    := -std=c11
WARN    := -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes
ifeq ($(CI),true)
WARN    += -Werror
endif
SAN     ?=
CFLAGS  ?= $(OPT) -g
BASE_CFLAGS = $(CSTD) $(WARN) $(CFLAGS) $(SAN) -Iinclude/procbus -MMD -MP
LDLIBS_URCU := -lurcu-memb -lurcu-cds -lurcu-common -lpthread
LDLIBS_TEST := -lcmocka
DEPS_STAMP  := $(O)/.deps-ok
OBJ         := $(O)/obj

# Where each folder may look for headers (besides include/procbus): nothing reaches into a
# program's folder from outside it.
INC_shm                := -Ishm -Icommon
INC_publisher/lib      := -Ishm -Ipublisher/lib -Icommon
INC_common             := -Icommon
INC_publisher/procbusd := -Icommon -Ipublisher/procbusd -Iebpf -I$(O)/ebpf
INC_readers/cli        := -Icommon -Ireaders/cli
INC_readers/exporter   := -Ireaders/exporter -Icommon
INC_ebpf               := -Iebpf -I$(O)/ebpf
INC_tests/support      := -Itests/support -Icommon -Iebpf
INC_tests/unit         := -Itests/support -Icommon -Ishm -Ipublisher/lib -Iebpf
INC_tests/fuzz         :=
INC_bench              := -Ibench -Icommon
INC_bench/procbusd     := -Ibench -Icommon
INC_bench/tracer       := -Ibench -Icommon
INC_examples           :=
folder_of = $(patsubst %/,%,$(dir $(1)))

# ---- libraries ----
PUB_SRCS    := $(wildcard shm/*.c publisher/lib/*.c)
PUB_LIB     := $(O)/libprocbus-pub.a
COMMON_SRCS := $(wildcard common/*.c)
COMMON_LIB  := $(O)/libprocbus-common.a
LDLIBS_COMMON := -linih

# ---- the eBPF tracer: needs kernel BTF at build time (vmlinux.h). Without it, procbusd is built
# with the *_nobpf.c variants of its tracer glue (--trace=auto then polls /proc) and the tracer's
# own tests are left out.
VMLINUX_BTF ?= /sys/kernel/btf/vmlinux
ifeq ($(wildcard $(VMLINUX_BTF)),)
PBD_TRACER :=
$(info ebpf: no kernel BTF at $(VMLINUX_BTF): procbusd is built without the eBPF tracer)
else
PBD_TRACER := yes
PROCTRACE_OBJ := $(OBJ)/ebpf/proctrace.o
LDLIBS_BPF    := -lbpf -lelf -lz
endif

# ---- programs ----
PBD_ALL_SRCS := $(filter-out publisher/procbusd/main.c,$(wildcard publisher/procbusd/*.c))
ifeq ($(PBD_TRACER),yes)
PBD_SRCS := $(filter-out %_nobpf.c,$(PBD_ALL_SRCS))
else
PBD_SRCS := $(filter-out %_bpf.c,$(PBD_ALL_SRCS))
endif
PBD_OBJS     := $(PBD_SRCS:%.c=$(OBJ)/%.o)
PBD_LIB      := $(O)/libprocbusd.a
BIN_PROCBUSD := $(O)/procbusd
LDLIBS_PBD   := $(LDLIBS_URCU) $(LDLIBS_COMMON) $(LDLIBS_BPF)

CLI_SRCS     := $(wildcard readers/cli/*.c)
BIN_PROCBUS  := $(O)/procbus
LDLIBS_CLI   := $(LDLIBS_COMMON) -ljson-c -lncursesw

EXP_SRCS     := $(wildcard readers/exporter/*.c)
BIN_EXPORTER := $(O)/procbus-exporter
LDLIBS_EXP   := -lmicrohttpd -lpthread

PROGRAMS := $(BIN_PROCBUSD) $(BIN_PROCBUS) $(BIN_EXPORTER)

# ---- tests, benchmarks, examples ----
TEST_SRCS := $(wildcard tests/unit/test_*.c)
TEST_BINS := $(TEST_SRCS:tests/unit/%.c=$(O)/tests/%)
# the tracer's tests: they load it (and test_trace*.c share tests/support/trace_harness.c)
TRACER_TESTS := test_proctrace test_proctrace_tags test_trace test_tracestop test_tracefields \
                test_traceloss test_tracediff
ifneq ($(PBD_TRACER),yes)
TEST_BINS := $(filter-out $(TRACER_TESTS:%=$(O)/tests/%),$(TEST_BINS))
endif
TEST_SUPPORT := $(OBJ)/tests/support/support.o $(OBJ)/tests/support/daemon_harness.o
BENCH_BINS   := $(O)/bench/procbus-bench $(O)/bench/procbusd-bench $(O)/bench/tracer-bench \
                $(O)/bench/scrape-bench $(O)/bench/exit-floor $(O)/bench/readers-bench \
                $(O)/bench/crash-bench
ifeq ($(PBD_TRACER),yes)
BENCH_BINS   += $(O)/bench/tracer-floor
endif
EXAMPLE_BINS := $(O)/examples/demo_publisher $(O)/examples/demo_reader $(O)/examples/embed \
                $(O)/examples/is_running

PREFIX  ?= /usr/local
DESTDIR ?=
VERSION := 0.1.0

.PHONY: all deps programs test asan tsan fuzz fuzz-section fuzz-ci fuzz-seeds bench bench-quick bench-procbusd \
        bench-peer bench-tracer bench-tracer-quick bench-scrape bench-readers bench-crash chaos demo \
        format format-check clean \
        help check-headers install uninstall check-install

ALL_TARGETS := $(DEPS_STAMP) $(PUB_LIB) $(COMMON_LIB) $(PROGRAMS) $(TEST_BINS) $(BENCH_BINS) \
               $(EXAMPLE_BINS) check-headers
all: $(ALL_TARGETS) ## build everything: libraries, programs, tests, benchmarks, examples

programs: $(PROGRAMS) ## build procbusd, procbus and procbus-exporter only

# `make help`: every target with a `## ` note, in file order (tests/unit/test_make.c checks that
# each target a user runs has one).
help: ## list the targets
	@awk -F':.*## ' '/^[a-z][a-zA-Z0-9_-]*:.*## / {printf "make %-20s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

# Missing Debian packages are installed by scripts/deps.sh (apt-get, as root or via sudo).
$(DEPS_STAMP): scripts/deps.sh
	@scripts/deps.sh core
	@mkdir -p $(O) && touch $@

deps: ## install every Debian package any target needs
	@scripts/deps.sh all

# One rule for every object: flags by folder, a .d file per object.
$(OBJ)/%.o: %.c | $(DEPS_STAMP)
	@mkdir -p $(dir $@)
	$(CC) $(BASE_CFLAGS) $(INC_$(call folder_of,$<)) $(CFLAGS_$(call folder_of,$<)) -c $< -o $@

$(PUB_LIB): $(PUB_SRCS:%.c=$(OBJ)/%.o)
	rm -f $@ && $(AR) rcs $@ $^
$(COMMON_LIB): $(COMMON_SRCS:%.c=$(OBJ)/%.o)
	rm -f $@ && $(AR) rcs $@ $^
$(PBD_LIB): $(PBD_OBJS)
	rm -f $@ && $(AR) rcs $@ $^

$(BIN_PROCBUSD): $(OBJ)/publisher/procbusd/main.o $(PBD_LIB) $(COMMON_LIB) $(PUB_LIB) $(PROCTRACE_OBJ)
	$(CC) $(CFLAGS) $(SAN) $^ -o $@ $(LDLIBS_PBD)

$(BIN_PROCBUS): $(CLI_SRCS:%.c=$(OBJ)/%.o) $(COMMON_LIB)
	$(CC) $(CFLAGS) $(SAN) $^ -o $@ $(LDLIBS_CLI)

$(BIN_EXPORTER): $(EXP_SRCS:%.c=$(OBJ)/%.o) $(COMMON_LIB)
	$(CC) $(CFLAGS) $(SAN) $^ -o $@ $(LDLIBS_EXP) $(LDLIBS_COMMON)

# --- eBPF tracer (ebpf/): vmlinux.h and the skeleton are generated into $(O)/ebpf, never committed.
BPF_CLANG   ?= clang
BPFTOOL     ?= bpftool
BPF_ARCH    := $(shell uname -m | sed -e 's/x86_64/x86/' -e 's/aarch64/arm64/' -e 's/ppc64le/powerpc/')
DEPS_BPF_STAMP := $(O)/.deps-bpf-ok

$(DEPS_BPF_STAMP): scripts/deps.sh
	@scripts/deps.sh bpf
	@mkdir -p $(O) && touch $@

$(O)/ebpf/vmlinux.h: | $(DEPS_BPF_STAMP)
	@mkdir -p $(dir $@)
	$(BPFTOOL) btf dump file $(VMLINUX_BTF) format c > $@.tmp && mv $@.tmp $@

$(O)/ebpf/proctrace.bpf.o: ebpf/proctrace.bpf.c ebpf/proctrace.h $(O)/ebpf/vmlinux.h
	$(BPF_CLANG) -g -O2 -target bpf -D__TARGET_ARCH_$(BPF_ARCH) -Iebpf -I$(O)/ebpf -c $< -o $@

$(O)/ebpf/proctrace.skel.h: $(O)/ebpf/proctrace.bpf.o
	$(BPFTOOL) gen skeleton $< name proctrace_bpf > $@.tmp && mv $@.tmp $@

# Objects that include the skeleton wait for it (the .d files know it only after a first build).
$(PROCTRACE_OBJ): $(O)/ebpf/proctrace.skel.h
ifeq ($(PBD_TRACER),yes)
$(PBD_OBJS): $(O)/ebpf/proctrace.skel.h
endif

# ---- tests ----
# Per test: TEST_PRE_x (binaries it runs), TEST_OBJS_x (extra objects), TEST_LIBS_x (libraries).
DAEMON_TESTS := test_procbusd test_cli test_top test_trace test_exporter test_harden test_limits \
                test_upkeep test_squat test_loop test_tracestop test_tracefields test_traceloss \
                test_tracediff test_parity test_chaos test_crash_parity
$(foreach t,$(DAEMON_TESTS),$(eval TEST_PRE_$(t) := $(BIN_PROCBUSD) $(BIN_PROCBUS)))
TEST_PRE_test_exporter += $(BIN_EXPORTER)
TEST_PRE_test_exporter_doc := $(BIN_EXPORTER)
TEST_LIBS_test_cli       := -ljson-c
TEST_LIBS_test_chaos     := -ljson-c
TEST_PRE_test_readers_hostile  := $(BIN_PROCBUS) $(BIN_EXPORTER)
TEST_LIBS_test_readers_hostile := -ljson-c
TEST_OBJS_test_trace     := $(PROCTRACE_OBJ)
TEST_LIBS_test_trace     := $(LDLIBS_BPF)
TEST_OBJS_test_proctrace := $(PROCTRACE_OBJ)
TEST_OBJS_test_doc_reader := $(OBJ)/tests/support/doc_reader.o # written from docs/ABI.md alone
TEST_LIBS_test_proctrace := $(LDLIBS_BPF)
TEST_OBJS_test_proctrace_tags := $(PROCTRACE_OBJ)
TEST_LIBS_test_proctrace_tags := $(LDLIBS_BPF) -lpthread
$(foreach t,test_tracestop test_tracefields test_traceloss test_tracediff,\
  $(eval TEST_OBJS_$(t) := $(PROCTRACE_OBJ) $(OBJ)/tests/support/trace_harness.o)\
  $(eval TEST_LIBS_$(t) := $(LDLIBS_BPF)))
CFLAGS_tests/support     := -DPROCBUS_BUILD_DIR='"$(O)"'
CFLAGS_tests/unit        := -DPROCBUS_BUILD_DIR='"$(O)"'

# Objects are kept (never treated as intermediate files make may delete).
.SECONDARY:

.SECONDEXPANSION:
$(O)/tests/%: $(OBJ)/tests/unit/%.o $(TEST_SUPPORT) $(COMMON_LIB) $(PUB_LIB) $$(TEST_OBJS_$$*) \
              $$(TEST_PRE_$$*)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(SAN) $< $(TEST_SUPPORT) $(TEST_OBJS_$*) -o $@ $(COMMON_LIB) $(PUB_LIB) \
	  $(LDLIBS_URCU) $(LDLIBS_COMMON) $(TEST_LIBS_$*) $(LDLIBS_TEST)

# ---- benchmarks, examples ----
# procbusd-bench and tracer-bench link libc only: they read through procbus.h and run the binaries.
# tracer-bench is every file of bench/tracer/; procbusd-bench is every file of bench/procbusd/; exit-floor (its floor for exit-to-visible)
# publishes with libprocbus-pub.
TB_SRCS := $(wildcard bench/tracer/*.c)
$(O)/bench/tracer-bench: $(TB_SRCS:%.c=$(OBJ)/%.o)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $^ -o $@ -lm -lpthread
PBDB_SRCS := $(wildcard bench/procbusd/*.c)
$(O)/bench/procbusd-bench: $(PBDB_SRCS:%.c=$(OBJ)/%.o)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $^ -o $@ -lm -lpthread
# crash-bench: adoption, kill-to-adopted, the reexec gap (reads through procbus.h; libc only).
$(O)/bench/crash-bench: $(OBJ)/bench/crash-bench.o
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $^ -o $@ -lm
# tracer-floor: the eBPF tracer's loader alone (tracer-bench's floor for exec -> visible).
$(O)/bench/tracer-floor: $(OBJ)/bench/tracer-floor.o $(PROCTRACE_OBJ)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $^ -o $@ $(LDLIBS_BPF)
$(OBJ)/bench/tracer-floor.o: CFLAGS_bench += -Iebpf
$(O)/bench/procbus-bench $(O)/bench/scrape-bench $(O)/bench/exit-floor $(O)/bench/readers-bench: \
  $(O)/bench/%: $(OBJ)/bench/%.o $(PUB_LIB)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $^ -o $@ $(LDLIBS_URCU) -lm
$(O)/examples/%: $(OBJ)/examples/%.o $(PUB_LIB)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $^ -o $@ $(LDLIBS_URCU)

# The public headers must stay C99- and C++-clean: each one compiles on its own (it includes what
# it needs), as C99 -pedantic and as C++17, and procbus.h and procbus_pub.h are used from both.
PUBLIC_HEADERS := $(wildcard include/procbus/*.h)
check-headers: $(O)/.headers-ok ## check every public header compiles alone as C99 -pedantic and C++17
$(O)/.headers-ok: $(PUBLIC_HEADERS)
	@mkdir -p $(O)/hdr
	for h in $(notdir $(PUBLIC_HEADERS)); do \
	  printf '#include "%s"\nint pb_hdr_%s;\n' $$h $$(echo $$h | tr -c 'a-z0-9_\n' _) > $(O)/hdr/$$h.c && \
	  $(CC) -std=c99 -pedantic -Wall -Wextra -Werror -Iinclude/procbus -fsyntax-only $(O)/hdr/$$h.c && \
	  cp $(O)/hdr/$$h.c $(O)/hdr/$$h.cc && \
	  $(CXX) -std=c++17 -pedantic -Wall -Wextra -Werror -Iinclude/procbus -fsyntax-only $(O)/hdr/$$h.cc \
	  || exit 1; done
	printf '#include "procbus.h"\n#include "procbus_pub.h"\nint main(void){struct procbus_reader r; struct procbus_pub *p; struct procbus_pub_opts o; memset(&o, 0, sizeof(o)); return procbus_open(&r, 0) == 0 && procbus_pub_open(&p, &o) == 0;}\n' > $(O)/hdr/both.c
	$(CC) -std=c99 -pedantic -Wall -Wextra -Werror -Iinclude/procbus -fsyntax-only $(O)/hdr/both.c
	cp $(O)/hdr/both.c $(O)/hdr/both.cc
	$(CXX) -std=c++17 -pedantic -Wall -Wextra -Werror -Iinclude/procbus -fsyntax-only $(O)/hdr/both.cc
	@touch $@

test: $(DEPS_STAMP) ## install what is missing, build and run the whole cmocka suite
	@scripts/deps.sh prom
	@scripts/deps.sh peer # supervisord 4.2.5: the parity suite's reference
	@$(MAKE) --no-print-directory $(TEST_BINS)
	@tests/run.sh $(O)/tests

asan: $(DEPS_STAMP) ## build and run the suite under ASan+UBSan (build/asan)
	@scripts/deps.sh peer
	@$(MAKE) --no-print-directory O=build/asan OPT=-O1 \
	  SAN="-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all" \
	  $(TEST_BINS:$(O)/%=build/asan/%)
	@ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 UBSAN_OPTIONS=print_stacktrace=1 \
	  PROCBUS_TEST_SCALE=asan tests/run.sh build/asan/tests

# ThreadSanitizer over the threaded parts: the registry's lookups from other threads
# (test_registry), the publisher beside liburcu's own threads (test_events, test_torn), and a
# reader thread on the publisher's own mapping (test_races: the seqlock's words are atomics on
# both sides). TSAN sees one process: the readers test_torn forks are checked by its model.
# tests/support/tsan.supp names the orderings TSAN cannot see inside Debian's uninstrumented
# liburcu; suppress_equal_addresses=0 because TSAN's per-address dedupe of those (suppressed)
# reports is quadratic: test_torn took over 10 minutes with it, seconds without.
TSAN_TESTS := test_registry test_torn test_events test_races
TSAN_SUPP  := $(abspath tests/support/tsan.supp)
tsan: $(DEPS_STAMP) ## build and run the threaded tests under ThreadSanitizer (build/tsan)
	@$(MAKE) --no-print-directory O=build/tsan OPT=-O1 SAN="-fsanitize=thread" \
	  $(TSAN_TESTS:%=build/tsan/tests/%)
	@rm -rf build/tsan/run && mkdir -p build/tsan/run && \
	  for t in $(TSAN_TESTS); do ln -sf ../tests/$$t build/tsan/run/$$t; done
	@TSAN_OPTIONS="halt_on_error=1 suppress_equal_addresses=0 suppressions=$(TSAN_SUPP)" \
	  PROCBUS_TEST_SCALE=asan tests/run.sh build/tsan/run

FUZZ_SECONDS ?= 60
# Three targets, FUZZ_SECONDS each: the reader's validation (fuzz_reader: no file, no syscall),
# the zero-copy sections with a scripted publisher writing meanwhile (fuzz_section), and a
# publisher taking over a hostile predecessor (fuzz_takeover: files in a temp folder, the
# publisher library built into it with the same sanitizers).
fuzz: $(DEPS_STAMP) fuzz-section ## libFuzzer over the reader, its sections and the takeover path (FUZZ_SECONDS=60 each)
	@mkdir -p $(O)/fuzz/corpus $(O)/fuzz/corpus-takeover
	clang -g -O1 -fsanitize=fuzzer,address,undefined -Iinclude/procbus tests/fuzz/fuzz_reader.c \
	  -o $(O)/fuzz/fuzz_reader
	clang -g -O1 -fsanitize=fuzzer,address,undefined -Iinclude/procbus -Ishm -Ipublisher/lib \
	  -Icommon tests/fuzz/fuzz_takeover.c $(PUB_SRCS) -o $(O)/fuzz/fuzz_takeover $(LDLIBS_URCU)
	$(O)/fuzz/fuzz_reader -max_total_time=$(FUZZ_SECONDS) -max_len=262144 \
	  $(O)/fuzz/corpus tests/fuzz/seeds
	$(O)/fuzz/fuzz_takeover -max_total_time=$(FUZZ_SECONDS) -max_len=65536 \
	  $(O)/fuzz/corpus-takeover tests/fuzz/seeds
fuzz-section: $(DEPS_STAMP) ## libFuzzer over the zero-copy read sections alone (FUZZ_SECONDS=60)
	@scripts/deps.sh fuzz
	@mkdir -p $(O)/fuzz/corpus-section
	clang -g -O1 -fsanitize=fuzzer,address,undefined -Iinclude/procbus tests/fuzz/fuzz_section.c \
	  -o $(O)/fuzz/fuzz_section
	$(O)/fuzz/fuzz_section -max_total_time=$(FUZZ_SECONDS) -max_len=262144 \
	  $(O)/fuzz/corpus-section tests/fuzz/seeds
fuzz-ci: ## the fuzzers for 20 s each (what CI runs)
	@$(MAKE) --no-print-directory fuzz FUZZ_SECONDS=20

# Regenerate tests/fuzz/seeds: tiny valid segments written by the real publisher (deterministic).
$(O)/tests/fuzz/make_seeds: $(OBJ)/tests/fuzz/make_seeds.o $(PUB_LIB)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $^ -o $@ $(LDLIBS_URCU)
fuzz-seeds: $(O)/tests/fuzz/make_seeds ## regenerate tests/fuzz/seeds (small valid segments)
	$(O)/tests/fuzz/make_seeds tests/fuzz/seeds

# ---- benchmarks ----
bench: $(DEPS_STAMP) $(BENCH_BINS) $(PROGRAMS) ## benchmarks: markdown tables + bench/out/*.json
	@mkdir -p bench/out
	$(O)/bench/procbus-bench --json bench/out/results.json
	$(O)/bench/tracer-bench --json bench/out/tracer.json $(O)
	$(O)/bench/crash-bench --json bench/out/crash.json $(O)

bench-quick: $(DEPS_STAMP) $(BENCH_BINS) $(PROGRAMS) ## the same, shorter (what CI runs)
	@mkdir -p bench/out
	$(O)/bench/procbus-bench --quick --json bench/out/results.json
	$(O)/bench/tracer-bench --quick --json bench/out/tracer.json $(O)
	$(O)/bench/crash-bench --quick --json bench/out/crash.json $(O)

bench-tracer: $(DEPS_STAMP) $(O)/bench/tracer-bench $(PROGRAMS) ## eBPF tracer: event rate, loss, BPF cost, exec latency (root)
	@mkdir -p bench/out
	$(O)/bench/tracer-bench --json bench/out/tracer.json $(O)

bench-tracer-quick: $(DEPS_STAMP) $(O)/bench/tracer-bench $(PROGRAMS) ## the same, about 20 s
	@mkdir -p bench/out
	$(O)/bench/tracer-bench --quick --json bench/out/tracer.json $(O)

bench-crash: $(DEPS_STAMP) $(O)/bench/crash-bench $(PROGRAMS) ## crash-only procbusd: adoption of 1,000 programs, kill-to-adopted, the reexec gap
	@mkdir -p bench/out
	$(O)/bench/crash-bench --json bench/out/crash.json $(O)

chaos: $(DEPS_STAMP) $(O)/tests/test_chaos ## the crash-only soak: test_chaos with 200 kill -9 rounds a mode (CHAOS_ROUNDS=N)
	PROCBUS_CHAOS_ROUNDS=$(or $(CHAOS_ROUNDS),200) PROCBUS_UPGRADE_ROUNDS=$(or $(CHAOS_ROUNDS),200) $(O)/tests/test_chaos

bench-procbusd: $(DEPS_STAMP) $(O)/bench/procbusd-bench $(O)/bench/exit-floor $(PROGRAMS) ## exit-to-visible and start-up beside their floors, stop, memory
	@mkdir -p bench/out
	$(O)/bench/procbusd-bench --procbusd --bin-dir $(O) --json bench/out/procbusd.json

bench-peer: $(DEPS_STAMP) $(O)/bench/procbusd-bench $(PROGRAMS) ## against supervisord (installs Debian's supervisor)
	@scripts/deps.sh peer
	@mkdir -p bench/out
	$(O)/bench/procbusd-bench --peer --bin-dir $(O) --json bench/out/procbusd-peer.json

# READERS_BASELINE=DIR: another build's folder (its procbus) measured in alternating rounds.
bench-readers: $(DEPS_STAMP) $(O)/bench/readers-bench $(BIN_PROCBUS) ## procbus status per run and procbus top's CPU, 10,100 records
	$(O)/bench/readers-bench $(O) $(READERS_BASELINE)

# SCRAPE_BASELINE=PATH: another exporter binary scraped in alternating rounds (the same segment).
bench-scrape: $(DEPS_STAMP) $(O)/bench/scrape-bench $(BIN_EXPORTER) ## exporter scrape latency with 1,000 records, beside its floor (GET /)
	$(O)/bench/scrape-bench $(O)/procbus-exporter 1000 1000 $(SCRAPE_BASELINE)

demo: $(DEPS_STAMP) $(PROGRAMS) ## run procbusd on examples/demo/procbus.conf and show procbus status
	@examples/demo.sh $(O)

# ---- installation ----
MAN_PAGES := docs/man/procbus.1 docs/man/procbus.h.3 docs/man/procbus.conf.5 docs/man/procbusd.8
install: $(DEPS_STAMP) $(PROGRAMS) $(PUB_LIB) ## install programs, headers, libprocbus-pub, pkg-config, man pages
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/sbin \
	  $(DESTDIR)$(PREFIX)/include/procbus $(DESTDIR)$(PREFIX)/lib/pkgconfig \
	  $(DESTDIR)$(PREFIX)/share/doc/procbus/examples
	install -m 0755 $(BIN_PROCBUS) $(DESTDIR)$(PREFIX)/bin/procbus
	install -m 0755 $(BIN_PROCBUSD) $(DESTDIR)$(PREFIX)/sbin/procbusd
	install -m 0755 $(BIN_EXPORTER) $(DESTDIR)$(PREFIX)/bin/procbus-exporter
	install -m 0644 include/procbus/*.h $(DESTDIR)$(PREFIX)/include/procbus/
	install -m 0644 $(PUB_LIB) $(DESTDIR)$(PREFIX)/lib/
	sed -e 's|@PREFIX@|$(PREFIX)|g' -e 's|@VERSION@|$(VERSION)|g' packaging/procbus.pc.in \
	  > $(DESTDIR)$(PREFIX)/lib/pkgconfig/procbus.pc
	for m in $(MAN_PAGES); do s=$${m##*.}; install -d $(DESTDIR)$(PREFIX)/share/man/man$$s; \
	  install -m 0644 $$m $(DESTDIR)$(PREFIX)/share/man/man$$s/; done
	sed -e 's|@PREFIX@|$(PREFIX)|g' packaging/procbusd.service \
	  > $(DESTDIR)$(PREFIX)/share/doc/procbus/examples/procbusd.service
	install -m 0644 examples/demo/procbus.conf examples/embed_min.c examples/embed_min.cc \
	  examples/is_running.c $(DESTDIR)$(PREFIX)/share/doc/procbus/examples/

uninstall: ## remove what install put in place
	rm -f $(DESTDIR)$(PREFIX)/bin/procbus $(DESTDIR)$(PREFIX)/sbin/procbusd \
	  $(DESTDIR)$(PREFIX)/bin/procbus-exporter $(DESTDIR)$(PREFIX)/lib/libprocbus-pub.a \
	  $(DESTDIR)$(PREFIX)/lib/pkgconfig/procbus.pc
	rm -rf $(DESTDIR)$(PREFIX)/include/procbus $(DESTDIR)$(PREFIX)/share/doc/procbus
	for m in $(MAN_PAGES); do s=$${m##*.}; rm -f $(DESTDIR)$(PREFIX)/share/man/man$$s/$${m##*/}; done

# Install into a staging DESTDIR and build the C and C++ examples against it through pkg-config.
STAGE := $(abspath $(O))/stage
check-install: ## install into a staging folder and build the examples against it (C99, C++17)
	rm -rf $(STAGE)
	@$(MAKE) --no-print-directory install DESTDIR=$(STAGE) PREFIX=/usr/local
	PKG_CONFIG_PATH=$(STAGE)/usr/local/lib/pkgconfig PKG_CONFIG_SYSROOT_DIR=$(STAGE) \
	  sh -c '$(CC) -std=c99 -pedantic -Wall -Wextra -Werror $$(pkg-config --cflags procbus) \
	    examples/embed_min.c -o $(O)/embed_min_c && \
	  $(CXX) -std=c++17 -Wall -Wextra -Werror $$(pkg-config --cflags procbus) \
	    examples/embed_min.cc -o $(O)/embed_min_cxx && \
	  $(CC) -std=c99 -pedantic -Wall -Wextra -Werror $$(pkg-config --cflags procbus) \
	    examples/is_running.c -o $(O)/is_running_c && \
	  $(CXX) -x c++ -std=c++17 -pedantic -Wall -Wextra -Werror $$(pkg-config --cflags procbus) \
	    examples/is_running.c -o $(O)/is_running_cxx'
	test -x $(STAGE)/usr/local/sbin/procbusd && test -x $(STAGE)/usr/local/bin/procbus
	@echo "check-install: headers, pkg-config file and examples OK"

FORMAT_FILES = $(shell git ls-files '*.c' '*.h' 2>/dev/null)
format: ## clang-format the tree
	@scripts/deps.sh format
	clang-format -i $(FORMAT_FILES)
format-check: ## check the tree is clang-formatted (what CI runs)
	@scripts/deps.sh format
	clang-format --dry-run --Werror $(FORMAT_FILES)

clean: ## remove build/ and bench/out/
	rm -rf build bench/out

-include $(shell find $(O) -name '*.d' 2>/dev/null)
