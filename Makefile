# Makefile - builds procbus; `make help` lists the targets.
CC      ?= gcc
O       ?= build
OPT     ?= -O2
CSTD    := -std=c11
WARN    := -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes
ifeq ($(CI),true)
WARN    += -Werror
endif
SAN     ?=
CFLAGS  ?= $(OPT) -g
ALL_CFLAGS = $(CSTD) $(WARN) $(CFLAGS) $(SAN) -Ishm -Ireaders -Ipublisher -MMD -MP
LDLIBS_URCU := -lurcu-memb -lurcu-cds -lurcu-common -lpthread
LDLIBS_TEST := -lcmocka
DEPS_STAMP := $(O)/.deps-ok

PUB_SRCS  := publisher/publisher.c publisher/index.c publisher/segment.c publisher/registry.c
PUB_OBJS  := $(PUB_SRCS:%.c=$(O)/%.o)
PUB_LIB   := $(O)/libprocbus-pub.a

TEST_SRCS := $(wildcard tests/unit/test_*.c)
TEST_BINS := $(TEST_SRCS:tests/unit/%.c=$(O)/tests/%)
TEST_SUPPORT := $(O)/tests/support.o

# The eBPF tracer needs kernel BTF at build time (vmlinux.h); without it, procbusd is built
# without it (--trace=auto then polls /proc) and the tests of the tracer itself are left out.
VMLINUX_BTF ?= /sys/kernel/btf/vmlinux
ifeq ($(wildcard $(VMLINUX_BTF)),)
TEST_BINS := $(filter-out $(O)/tests/test_proctrace $(O)/tests/test_trace,$(TEST_BINS))
$(info ebpf: no kernel BTF at $(VMLINUX_BTF): procbusd is built without the eBPF tracer)
PBD_TRACER :=
else
PBD_TRACER := yes
PBD_TRACER_OBJ  := $(O)/ebpf/proctrace.o
PBD_TRACER_LIBS := -lbpf -lelf -lz
endif

PBD_SRCS  := publisher/procbusd/daemon.c publisher/procbusd/config.c publisher/procbusd/control.c \
             publisher/procbusd/spawn.c publisher/procbusd/fsm.c publisher/procbusd/logfile.c \
             publisher/procbusd/sampler.c publisher/procbusd/trace.c
PBD_OBJS  := $(PBD_SRCS:%.c=$(O)/%.o)
PBD_LIB   := $(O)/libprocbusd.a
CLI_SRCS  := readers/cli/procbus.c readers/cli/cli_read.c readers/cli/cli_json.c \
             readers/cli/cli_top.c
CLI_OBJS  := $(O)/publisher/procbusd/config.o $(O)/publisher/procbusd/control.o \
             $(O)/publisher/procbusd/logfile.o
LDLIBS_CLI := -linih -ljson-c -lncursesw
LDLIBS_PBD := -linih
BIN_PROCBUSD := $(O)/procbusd
BIN_PROCBUS  := $(O)/procbus

BENCH_BINS := $(O)/bench/procbus-bench $(O)/bench/procbusd-bench $(O)/bench/tracer-bench
EXAMPLE_BINS := $(O)/examples/demo_publisher $(O)/examples/demo_reader $(O)/examples/embed

PREFIX  ?= /usr/local
DESTDIR ?=
VERSION := 0.1.0

.PHONY: install uninstall check-install
.PHONY: all deps test asan fuzz fuzz-ci fuzz-seeds bench bench-quick bench-procbusd bench-peer bench-tracer bench-tracer-quick demo format format-check clean help \
        check-headers

all: $(DEPS_STAMP) $(PUB_LIB) $(BIN_PROCBUSD) $(BIN_PROCBUS) $(BIN_EXPORTER) $(TEST_BINS) $(BENCH_BINS) \
     $(EXAMPLE_BINS) check-headers

help:
	@echo "make            build everything (library, tests, benchmarks, demo)"
	@echo "make demo       run the demo publisher and a reader printing its records"
	@echo "make test       run the cmocka suite"
	@echo "make asan       build and run the suite under ASan+UBSan"
	@echo "make fuzz       libFuzzer over the reader's validation (FUZZ_SECONDS=60)"
	@echo "make fuzz-seeds regenerate tests/fuzz/seeds (small valid segments)"
	@echo "make bench      benchmarks: markdown table + bench/out/results.json"
	@echo "make bench-quick  the same, shorter (under a minute)"
	@echo "make bench-procbusd  exit-to-visible latency, procbusd memory"
	@echo "make bench-peer against supervisord (installs Debian's supervisor)"
	@echo "make bench-tracer  eBPF tracer: event rate and loss, BPF cost, exec latency (root)"
	@echo "make bench-tracer-quick  the same, about 20 s"
	@echo "make format     clang-format the tree (format-check: verify only)"

# Missing Debian packages are installed by scripts/deps.sh (apt-get, as root or via sudo).
$(DEPS_STAMP): scripts/deps.sh
	@scripts/deps.sh core
	@mkdir -p $(O) && touch $@

deps:
	@scripts/deps.sh core
	@scripts/deps.sh bpf

$(O)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -c $< -o $@

$(PUB_LIB): $(PUB_OBJS)
	ar rcs $@ $^

$(PBD_LIB): $(PBD_OBJS)
	ar rcs $@ $^

$(BIN_PROCBUSD): publisher/procbusd/main.c $(PBD_LIB) $(PUB_LIB) $(PBD_TRACER_OBJ) | $(DEPS_STAMP)
	$(CC) $(ALL_CFLAGS) -Ipublisher/procbusd $< -o $@ $(PBD_LIB) $(PUB_LIB) $(PBD_TRACER_OBJ) \
	  $(LDLIBS_URCU) $(LDLIBS_PBD) $(PBD_TRACER_LIBS)

# One command for the three sources: cli.h and the headers it pulls in are listed here.
$(BIN_PROCBUS): $(CLI_SRCS) readers/cli/cli.h publisher/procbusd/control.h \
                publisher/procbusd/logfile.h publisher/procbusd/config.h $(CLI_OBJS) | $(DEPS_STAMP)
	$(CC) $(ALL_CFLAGS) -Ipublisher/procbusd $(CLI_SRCS) -o $@ $(CLI_OBJS) $(LDLIBS_CLI)

$(O)/tests/daemon_harness.o: tests/unit/daemon_harness.c tests/unit/daemon_harness.h
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -DPROCBUS_BUILD_DIR='"$(O)"' -Itests/unit -c $< -o $@

$(O)/tests/support.o: tests/unit/support.c
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -Itests/unit -c $< -o $@

# Tests of procbusd modules link those modules (and their libraries) too.
TEST_OBJS_test_config  := $(O)/publisher/procbusd/config.o
TEST_LIBS_test_config  := -linih
TEST_OBJS_test_logfile := $(O)/publisher/procbusd/logfile.o
TEST_OBJS_test_sampler := $(O)/publisher/procbusd/sampler.o

# procbus-exporter: Prometheus /metrics over libmicrohttpd (docs/EXPORTER.md).
EXP_SRCS     := $(wildcard readers/exporter/*.c)
BIN_EXPORTER := $(O)/procbus-exporter
LDLIBS_EXP   := -lmicrohttpd -lpthread

$(BIN_EXPORTER): $(EXP_SRCS) readers/exporter/exporter.h | $(DEPS_STAMP)
	$(CC) $(ALL_CFLAGS) $(EXP_SRCS) -o $@ $(LDLIBS_EXP)

$(O)/readers/exporter/scrape_bench: readers/exporter/bench/scrape_bench.c $(PUB_LIB) | $(DEPS_STAMP)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $< -o $@ $(PUB_LIB) $(LDLIBS_URCU)

TEST_PRE_test_exporter := $(BIN_PROCBUSD) $(BIN_EXPORTER)
TEST_OBJS_test_exporter := $(O)/tests/daemon_harness.o
TEST_CFLAGS_test_exporter := -DPROCBUS_BUILD_DIR='"$(O)"'

# --- eBPF tracer (ebpf/): vmlinux.h and the skeleton are generated into $(O)/ebpf, never committed.
BPF_CLANG   ?= clang
BPFTOOL     ?= bpftool
BPF_ARCH    := $(shell uname -m | sed -e 's/x86_64/x86/' -e 's/aarch64/arm64/' -e 's/ppc64le/powerpc/')
LDLIBS_BPF  := -lbpf -lelf -lz
DEPS_BPF_STAMP := $(O)/.deps-bpf-ok
PROCTRACE_OBJ  := $(O)/ebpf/proctrace.o

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

$(PROCTRACE_OBJ): ebpf/proctrace.c ebpf/proctrace_user.h ebpf/proctrace.h $(O)/ebpf/proctrace.skel.h
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -Iebpf -I$(O)/ebpf -c $< -o $@

# procbusd's trace module uses the tracer where the build has it (PBD_HAVE_TRACER).
ifeq ($(PBD_TRACER),yes)
$(O)/publisher/procbusd/trace.o: ALL_CFLAGS += -Iebpf -DPBD_HAVE_TRACER
$(O)/publisher/procbusd/trace.o: $(O)/ebpf/proctrace.skel.h
endif

TEST_PRE_test_trace    := $(BIN_PROCBUSD) $(BIN_PROCBUS)
TEST_OBJS_test_trace   := $(O)/tests/daemon_harness.o $(PROCTRACE_OBJ)
TEST_CFLAGS_test_trace := -Iebpf -DPROCBUS_BUILD_DIR='"$(O)"'
TEST_LIBS_test_trace   := $(LDLIBS_BPF)

TEST_OBJS_test_proctrace   := $(PROCTRACE_OBJ)
TEST_CFLAGS_test_proctrace := -Iebpf
TEST_LIBS_test_proctrace   := $(LDLIBS_BPF)

# The daemon's integration test runs the real binaries of the same build.
TEST_PRE_test_procbusd := $(BIN_PROCBUSD) $(BIN_PROCBUS)
TEST_CFLAGS_test_procbusd := -DPROCBUS_BUILD_DIR='"$(O)"'
TEST_OBJS_test_procbusd := $(O)/tests/daemon_harness.o
TEST_OBJS_test_cli := $(O)/tests/daemon_harness.o
TEST_PRE_test_cli := $(BIN_PROCBUSD) $(BIN_PROCBUS)
TEST_CFLAGS_test_cli := -DPROCBUS_BUILD_DIR='"$(O)"'
TEST_LIBS_test_cli := -ljson-c
TEST_OBJS_test_top := $(O)/tests/daemon_harness.o
TEST_PRE_test_top := $(BIN_PROCBUSD) $(BIN_PROCBUS)
TEST_CFLAGS_test_top := -DPROCBUS_BUILD_DIR='"$(O)"'

.SECONDEXPANSION:
$(O)/tests/%: tests/unit/%.c $(PUB_LIB) $(TEST_SUPPORT) $$(TEST_OBJS_$$*) $$(TEST_PRE_$$*) \
              | $(DEPS_STAMP)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $(TEST_CFLAGS_$*) -Itests/unit -Ipublisher/procbusd $< $(TEST_SUPPORT) $(TEST_OBJS_$*) \
	  -o $@ $(PUB_LIB) $(LDLIBS_URCU) $(TEST_LIBS_$*) $(LDLIBS_TEST)

# procbusd-bench links libc only: it reads through the header-only reader and runs the binaries.
$(O)/bench/procbusd-bench: bench/procbusd-bench.c bench/bench_util.h bench/bench_common.h \
                          | $(DEPS_STAMP)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $< -o $@

# tracer-bench too: libc only (raw bpf(2) for the BPF run-time statistics).
$(O)/bench/tracer-bench: bench/tracer-bench.c bench/bench_util.h bench/bench_common.h \
                         | $(DEPS_STAMP)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $< -o $@

$(O)/bench/%: bench/%.c $(PUB_LIB) | $(DEPS_STAMP)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $< -o $@ $(PUB_LIB) $(LDLIBS_URCU) -lm

$(O)/examples/%: examples/%.c $(PUB_LIB) | $(DEPS_STAMP)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $< -o $@ $(PUB_LIB) $(LDLIBS_URCU)

# The reader header must stay C99- and C++-clean.
check-headers: $(O)/.headers-ok
$(O)/.headers-ok: readers/procbus.h shm/procbus_abi.h
	@mkdir -p $(O)
	printf '#include "procbus.h"\nint main(void){struct procbus_reader r; return procbus_open(&r, 0) == 0;}\n' > $(O)/hdr_c99.c
	gcc -std=c99 -pedantic -Wall -Wextra -Werror -Ishm -Ireaders -fsyntax-only $(O)/hdr_c99.c
	cp $(O)/hdr_c99.c $(O)/hdr_cxx.cc
	g++ -std=c++17 -pedantic -Wall -Wextra -Werror -Ishm -Ireaders -fsyntax-only $(O)/hdr_cxx.cc
	@touch $@

test: $(DEPS_STAMP)
	@scripts/deps.sh prom
	@$(MAKE) --no-print-directory $(TEST_BINS)
	@tests/run.sh $(O)/tests

asan: $(DEPS_STAMP)
	@$(MAKE) --no-print-directory O=build/asan OPT=-O1 \
	  SAN="-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all" \
	  $(TEST_BINS:$(O)/%=build/asan/%)
	@ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 UBSAN_OPTIONS=print_stacktrace=1 \
	  PROCBUS_TEST_SCALE=asan tests/run.sh build/asan/tests

FUZZ_SECONDS ?= 60
fuzz: $(DEPS_STAMP)
	@scripts/deps.sh fuzz
	@mkdir -p $(O)/fuzz/corpus
	clang -g -O1 -fsanitize=fuzzer,address,undefined -Ishm -Ireaders tests/fuzz/fuzz_reader.c \
	  -o $(O)/fuzz/fuzz_reader
	$(O)/fuzz/fuzz_reader -max_total_time=$(FUZZ_SECONDS) -max_len=262144 \
	  $(O)/fuzz/corpus tests/fuzz/seeds
fuzz-ci:
	@$(MAKE) --no-print-directory fuzz FUZZ_SECONDS=20

# Regenerate tests/fuzz/seeds: tiny valid segments written by the real publisher (deterministic).
$(O)/fuzz/make_seeds: tests/fuzz/make_seeds.c $(PUB_LIB) | $(DEPS_STAMP)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $< -o $@ $(PUB_LIB) $(LDLIBS_URCU)

fuzz-seeds: $(O)/fuzz/make_seeds
	$(O)/fuzz/make_seeds tests/fuzz/seeds

# The core benchmarks, then the tracer's (which skips, saying why, without root or BTF).
bench: $(DEPS_STAMP) $(BENCH_BINS) $(BIN_PROCBUSD) $(BIN_PROCBUS)
	@mkdir -p bench/out
	$(O)/bench/procbus-bench --json bench/out/results.json
	$(O)/bench/tracer-bench --json bench/out/tracer.json $(O)

bench-quick: $(DEPS_STAMP) $(BENCH_BINS) $(BIN_PROCBUSD) $(BIN_PROCBUS)
	@mkdir -p bench/out
	$(O)/bench/procbus-bench --quick --json bench/out/results.json
	$(O)/bench/tracer-bench --quick --json bench/out/tracer.json $(O)

bench-tracer: $(DEPS_STAMP) $(O)/bench/tracer-bench $(BIN_PROCBUSD) $(BIN_PROCBUS)
	@mkdir -p bench/out
	$(O)/bench/tracer-bench --json bench/out/tracer.json $(O)

bench-tracer-quick: $(DEPS_STAMP) $(O)/bench/tracer-bench $(BIN_PROCBUSD) $(BIN_PROCBUS)
	@mkdir -p bench/out
	$(O)/bench/tracer-bench --quick --json bench/out/tracer.json $(O)

bench-procbusd: $(DEPS_STAMP) $(O)/bench/procbusd-bench $(BIN_PROCBUSD) $(BIN_PROCBUS)
	@mkdir -p bench/out
	$(O)/bench/procbusd-bench --procbusd --bin-dir $(O) --json bench/out/procbusd.json

bench-peer: $(DEPS_STAMP) $(O)/bench/procbusd-bench $(BIN_PROCBUSD) $(BIN_PROCBUS)
	@scripts/deps.sh peer
	@mkdir -p bench/out
	$(O)/bench/procbusd-bench --peer --bin-dir $(O) --json bench/out/procbusd-peer.json

demo: $(DEPS_STAMP) $(BIN_PROCBUSD) $(BIN_PROCBUS)
	@examples/demo.sh $(O)

# ---- installation ----
MAN_PAGES := docs/man/procbus.1 docs/man/procbus.h.3 docs/man/procbus.conf.5 docs/man/procbusd.8
install: $(DEPS_STAMP) $(BIN_PROCBUSD) $(BIN_PROCBUS) $(BIN_EXPORTER)
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/sbin \
	  $(DESTDIR)$(PREFIX)/include/procbus $(DESTDIR)$(PREFIX)/lib/pkgconfig \
	  $(DESTDIR)$(PREFIX)/share/doc/procbus/examples
	install -m 0755 $(BIN_PROCBUS) $(DESTDIR)$(PREFIX)/bin/procbus
	install -m 0755 $(BIN_PROCBUSD) $(DESTDIR)$(PREFIX)/sbin/procbusd
	install -m 0755 $(BIN_EXPORTER) $(DESTDIR)$(PREFIX)/bin/procbus-exporter
	install -m 0644 readers/procbus.h shm/procbus_abi.h $(DESTDIR)$(PREFIX)/include/procbus/
	sed -e 's|@PREFIX@|$(PREFIX)|g' -e 's|@VERSION@|$(VERSION)|g' packaging/procbus.pc.in \
	  > $(DESTDIR)$(PREFIX)/lib/pkgconfig/procbus.pc
	for m in $(MAN_PAGES); do s=$${m##*.}; install -d $(DESTDIR)$(PREFIX)/share/man/man$$s; \
	  install -m 0644 $$m $(DESTDIR)$(PREFIX)/share/man/man$$s/; done
	sed -e 's|@PREFIX@|$(PREFIX)|g' packaging/procbusd.service \
	  > $(DESTDIR)$(PREFIX)/share/doc/procbus/examples/procbusd.service
	install -m 0644 examples/demo/procbus.conf examples/embed_min.c examples/embed_min.cc \
	  $(DESTDIR)$(PREFIX)/share/doc/procbus/examples/

uninstall:
	rm -f $(DESTDIR)$(PREFIX)/bin/procbus $(DESTDIR)$(PREFIX)/sbin/procbusd \
	  $(DESTDIR)$(PREFIX)/bin/procbus-exporter \
	  $(DESTDIR)$(PREFIX)/lib/pkgconfig/procbus.pc
	rm -rf $(DESTDIR)$(PREFIX)/include/procbus $(DESTDIR)$(PREFIX)/share/doc/procbus
	for m in $(MAN_PAGES); do s=$${m##*.}; rm -f $(DESTDIR)$(PREFIX)/share/man/man$$s/$${m##*/}; done

# Install into a staging DESTDIR and build the C and C++ examples against it through pkg-config.
STAGE := $(abspath $(O))/stage
check-install:
	rm -rf $(STAGE)
	@$(MAKE) --no-print-directory install DESTDIR=$(STAGE) PREFIX=/usr/local
	PKG_CONFIG_PATH=$(STAGE)/usr/local/lib/pkgconfig PKG_CONFIG_SYSROOT_DIR=$(STAGE) \
	  sh -c 'gcc -std=c99 -pedantic -Wall -Wextra -Werror $$(pkg-config --cflags procbus) \
	    examples/embed_min.c -o $(O)/embed_min_c && \
	  g++ -std=c++17 -Wall -Wextra -Werror $$(pkg-config --cflags procbus) \
	    examples/embed_min.cc -o $(O)/embed_min_cxx'
	test -x $(STAGE)/usr/local/sbin/procbusd && test -x $(STAGE)/usr/local/bin/procbus
	@echo "check-install: headers, pkg-config file and examples OK"

FORMAT_FILES = $(shell git ls-files '*.c' '*.h' 2>/dev/null)
format:
	@scripts/deps.sh format
	clang-format -i $(FORMAT_FILES)
format-check:
	@scripts/deps.sh format
	clang-format --dry-run --Werror $(FORMAT_FILES)

clean:
	rm -rf build bench/out

-include $(shell find $(O) -name '*.d' 2>/dev/null)
