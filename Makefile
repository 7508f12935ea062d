# offload: the assignment's Makefile interface plus the project's own targets.
#   make all                      build (release) and put the five programs here
#   make serverA|serverB|serverC  run that back-end in the foreground
#   make aws                      run the front-end in the foreground
#   ./client <min|max|sum|sos>    run a job on ./nums.csv
#   make demo                     all four servers in the background, all four functions
#   make test                     build, lint, unit + end-to-end tests, audit; a timed table
#   make fuzz | audit | bench | bench-deps | clean
#   make mcu | cross | miri        the core on a Cortex-M3, on s390x/armv7 and a mixed cluster, under Miri
SHELL := /bin/bash
CARGO ?= cargo
PROGRAMS := client aws serverA serverB serverC
RELEASE := target/release

.PHONY: all build serverA serverB serverC aws demo test unit e2e e2e-lto lint fuzz fuzz-smoke audit bench bench-smoke bench-tools bench-deps clean mcu cross miri

all: build
	@for p in $(PROGRAMS); do cp -f $(RELEASE)/$$p ./$$p; done

build:
	$(CARGO) build --release --locked -p offload-bins

# The servers run in the foreground; `make` adds nothing to their stdout.
serverA serverB serverC aws:
	@test -x ./$@ || { echo "make: ./$@ is missing; run 'make all' first" >&2; exit 1; }
	@exec ./$@

demo: all
	@bash .ci/demo.sh

# make test: the stages below, timed, each run even if one before it failed, then a table
# of stage, seconds, passed/FAILED (non-zero exit if any failed). The long runs (fuzz,
# bench, and the emulated-target runs) are not stages here: .ci/run adds them for CI.
TEST_STAGES := build=all lint unit e2e audit
test:
	@STAGES_TITLE="make test" bash .ci/stages.sh $(TEST_STAGES)

# Tests build with the test-release profile (release without link-time optimization,
# see Cargo.toml): a fifth of the CPU time of the release profile's test build.
TEST_PROFILE ?= test-release
# --no-fail-fast: a failing test binary does not stop the others, so every failure shows.
TEST_FLAGS = --locked --no-fail-fast --profile $(TEST_PROFILE)
# The end-to-end tests mostly wait on sockets and timers: more threads than cores.
E2E_THREADS ?= 4

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --locked --all-targets -- -D warnings

# Unit tests: all of the core's (lib, integration, doc) and the bins library's.
unit:
	$(CARGO) test $(TEST_FLAGS) -p offload-core
	$(CARGO) test $(TEST_FLAGS) -p offload-bins --lib --bins
	$(CARGO) test $(TEST_FLAGS) -p offload-bins --doc

# End-to-end tests: bins/tests/*.rs, the real programs on loopback (and namespaces).
e2e:
	$(CARGO) test $(TEST_FLAGS) -p offload-bins --test '*' -- --test-threads=$(E2E_THREADS)

# The same against thin-LTO programs, as `make all` ships them (CI runs this).
e2e-lto:
	$(MAKE) --no-print-directory e2e TEST_PROFILE=release

audit:
	bash .ci/audit.sh

# The core on a Cortex-M3 under qemu-system-arm (issue 10 §3).
mcu:
	bash .ci/mcu.sh

# The core's tests on s390x and armv7 under qemu-user, then a mixed-architecture cluster.
cross:
	bash .ci/cross.sh

# The core's unit tests under Miri (nightly).
miri:
	bash .ci/miri.sh

fuzz:
	bash .ci/fuzz.sh

fuzz-smoke:
	FUZZ_SECONDS=$${FUZZ_SECONDS:-20} bash .ci/fuzz.sh

bench: all bench-tools
	python3 bins/bench/bench.py

bench-smoke: all bench-tools
	BENCH_QUICK=1 python3 bins/bench/bench.py

# The bench's helpers: in-memory core throughput, and the fault-injecting relay.
bench-tools:
	$(CARGO) build --release --locked -p offload-bins --examples

bench-deps:
	bash bins/bench/deps.sh

clean:
	$(CARGO) clean
	rm -f $(PROGRAMS)
