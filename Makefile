# Thin wrapper over CMake: the README's commands.
#   make run        build and start the example service (weft serve) on 127.0.0.1:8080
#   make test       configure, build, run every test (x86_64, then aarch64 under qemu)
#   make test-long  soak and crash tests
#   make bench      every benchmark beside its anchor, ratios printed
#   make asan       the whole suite under ASan+UBSan
#   make tsan       the cross-thread tests under TSan
#   make valgrind   the core tests under valgrind memcheck (stacks registered)
#   make install    headers, libweft.so/.a, weft.pc, the CMake package and the weft CLI
#                   into PREFIX (default /usr/local)
JOBS ?= $(shell nproc)
BUILD ?= build
CTEST = ctest --output-on-failure -j$(JOBS)

.PHONY: all bootstrap build run test test-long test-aarch64 bench asan tsan valgrind fuzz clean install

all: build

bootstrap:
	@scripts/bootstrap

$(BUILD)/CMakeCache.txt:
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo

build: bootstrap $(BUILD)/CMakeCache.txt
	cmake --build $(BUILD) -j$(JOBS)

PREFIX ?= /usr/local
install: build
	cmake --install $(BUILD) --prefix $(PREFIX)

# the example service on 127.0.0.1:8080 (PORT=..., THREADS=...); Ctrl-C stops it
PORT ?= 8080
run: build
	$(BUILD)/weft serve --port $(PORT) $(if $(THREADS),--threads $(THREADS))

test: build test-aarch64
	cd $(BUILD) && $(CTEST) -LE long

test-long: build
	cd $(BUILD) && $(CTEST) -L long

# The aarch64 context switch, built with the cross compiler and run under
# qemu-user: the core layer's whole suite (cmocka from Debian's arm64 package).
test-aarch64: bootstrap
	cmake -S . -B build-aarch64 -DCMAKE_TOOLCHAIN_FILE=cmake/aarch64.cmake \
	      -DWEFT_BENCH=OFF -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	cmake --build build-aarch64 -j$(JOBS)
	cd build-aarch64 && $(CTEST) -L core -LE long

asan: bootstrap
	cmake -S . -B build-asan -DWEFT_SANITIZE="address;undefined" -DWEFT_BENCH=OFF >/dev/null
	cmake --build build-asan -j$(JOBS)
	cd build-asan && WEFT_UNDER_SANITIZER=1 $(CTEST) -LE long

tsan: bootstrap
	cmake -S . -B build-tsan -DWEFT_SANITIZE=thread -DWEFT_BENCH=OFF >/dev/null
	cmake --build build-tsan -j$(JOBS)
	cd build-tsan && WEFT_UNDER_SANITIZER=1 $(CTEST) -L threads

VG_TESTS = core_selftest core/core_task core/core_scope core/core_group core/core_sync \
           core/core_chan core/core_fd core/core_blocking core/core_services \
           net/net_tcp net/net_conn net/net_listener net/net_dns net/net_tls pool/pool_pool \
           http/http_url http/http_client http/http_https http/http_router http/http_server \
           http/http_soak
valgrind: build
	@for t in $(VG_TESTS); do \
	  echo "valgrind $$t"; \
	  WEFT_SMALL=1 valgrind -q --error-exitcode=9 --leak-check=full \
	    --errors-for-leak-kinds=definite $(BUILD)/tests/$$t >/dev/null \
	    2>$(BUILD)/valgrind.log || { cat $(BUILD)/valgrind.log; exit 1; }; \
	done; echo "valgrind: clean"

# libFuzzer (clang): every parser target for FUZZ_SECONDS each
FUZZ_SECONDS ?= 20
fuzz: bootstrap
	CC=clang cmake -S . -B build-fuzz -DWEFT_FUZZ=ON -DWEFT_TESTS=OFF -DWEFT_BENCH=OFF >/dev/null
	cmake --build build-fuzz -j$(JOBS)
	@for t in build-fuzz/fuzz/fuzz_*; do \
	  name=$$(basename $$t | sed 's/fuzz_//'); mkdir -p build-fuzz/corpus/$$name; \
	  echo "fuzz $$name ($(FUZZ_SECONDS) s)"; \
	  $$t -max_total_time=$(FUZZ_SECONDS) -print_final_stats=0 build-fuzz/corpus/$$name \
	    fuzz/corpus/$$name >build-fuzz/$$name.log 2>&1 || { tail -40 build-fuzz/$$name.log; exit 1; }; \
	done; echo "fuzz: no crash"

bench: build
	bench/run.sh $(BUILD)

clean:
	rm -rf $(BUILD) build-aarch64 build-asan build-tsan build-fuzz
