# pvdispl — the only entry point. Every CI step is a target you can run here.
#
#   make test            host unit tests + plain-QEMU boot test + every real-Xen scenario
#   make check           rustfmt + clippy (-D warnings) for the host crates and the kernel target
#   make kernel          the PVH unikernel ELF (target/x86_64-unknown-none/release/pvdispl)
#   make qemu-test       tier 2: plain QEMU PVH boot of the kernel
#   make xen-test        tier 3: real Xen 4.17 + dom0 in QEMU; SCENARIO=<name> runs one
#   make run             boot a demo on real Xen in QEMU (DEMO=<scene>)

SHELL      := /bin/bash
CARGO      ?= cargo
KTARGET    := x86_64-unknown-none
TARGET_DIR ?= $(or $(CARGO_TARGET_DIR),target)
KERNEL     := $(TARGET_DIR)/$(KTARGET)/release/pvdispl
BACKEND    := $(TARGET_DIR)/release/pvdispl-backend
HARNESS    := $(TARGET_DIR)/release/pvdispl-harness
CACHE_DIR  ?= cache
OUT_DIR    ?= out
SCENARIO   ?=
DEMO       ?= plasma

.PHONY: all test unit-test check fmt clippy kernel target-setup qemu-test xen-test run backend harness kmstest clean

all: kernel backend harness

target-setup:
	@rustup target list --installed | grep -qx $(KTARGET) || rustup target add $(KTARGET)

# ---- host tier ------------------------------------------------------------
unit-test:
	$(CARGO) test --workspace --exclude pvdispl-kernel --exclude pvdispl-boot
	$(CARGO) test -p pvdispl-kernel --lib

# ---- style ------------------------------------------------------------------
fmt:
	$(CARGO) fmt --all -- --check

clippy: target-setup
	$(CARGO) clippy --workspace --exclude pvdispl-kernel --exclude pvdispl-boot --all-targets -- -D warnings
	$(CARGO) clippy -p pvdispl-kernel --lib --tests -- -D warnings
	$(CARGO) clippy -p pvdispl-kernel -p pvdispl-boot --target $(KTARGET) -- -D warnings

check: fmt clippy

# ---- kernel -------------------------------------------------------------------
kernel: target-setup
	$(CARGO) build -p pvdispl-kernel --release --target $(KTARGET)

# ---- plain QEMU (tier 2) ---------------------------------------------------
qemu-test: kernel
	kernel/tests/qemu-test.sh $(KERNEL) $(OUT_DIR)/qemu-test

# ---- dom0 pieces and the real-Xen harness (tier 3) -----------------------------
backend:
	$(CARGO) build -p pvdispl-backend --release

harness:
	$(CARGO) build -p pvdispl-harness --release

# Static KMS client for the linux-peer guest (backend/peer-client).
kmstest:
	CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_RUSTFLAGS='-C target-feature=+crt-static' \
		$(CARGO) build -p pvdispl-kmstest --release --target x86_64-unknown-linux-gnu

xen-test: kernel backend kmstest harness demo-expected flip-expect
	$(HARNESS) run --cache $(CACHE_DIR) --out $(OUT_DIR)/xen-test $(if $(SCENARIO),--scenario $(SCENARIO),--all) $(if $(TIMEOUT),--timeout $(TIMEOUT))

# flip-expect: host CRC-32s of the kernel's built-in test pattern, frames 0..900 at the
# `flip` scenario's resolutions (kernel/examples/flip_expect.rs), shipped to dom0.
FLIP_EXPECT := $(TARGET_DIR)/flip/expected.txt
.PHONY: flip-expect
flip-expect:
	@mkdir -p $(dir $(FLIP_EXPECT))
	$(CARGO) run --release -q -p pvdispl-kernel --example flip_expect -- 900 320x240 640x360 > $(FLIP_EXPECT).tmp
	@mv $(FLIP_EXPECT).tmp $(FLIP_EXPECT)

# run: DEMO=<scene> (default plasma), RUN_FRAMES flips (0 = until the time limit), RUN_SIZE,
# RUN_APNG_FRAMES (frames kept in run.apng: every frame is PNG-encoded in dom0 under TCG).
# Generates a harness scenario from tools/run-demo/ into $(TARGET_DIR)/run-scenarios/$(DEMO)/,
# boots it, then checks the capture against host renders (demo-check) on the host.
RUN_FRAMES ?= 300
RUN_SIZE   ?= 480x270
RUN_APNG_FRAMES ?= 120
RUN_DIR    := $(OUT_DIR)/run/$(DEMO)
DEMO_RENDER := $(TARGET_DIR)/release/demo-render
DEMO_CHECK  := $(TARGET_DIR)/release/demo-check
run: kernel backend harness demo-tools
	@$(DEMO_RENDER) --list | grep -qx -- '$(DEMO)' || { echo "run: unknown DEMO=$(DEMO); valid: $$($(DEMO_RENDER) --list | tr '\n' ' ')" >&2; exit 2; }
	@rm -rf $(TARGET_DIR)/run-scenarios/$(DEMO) && mkdir -p $(TARGET_DIR)/run-scenarios/$(DEMO)
	@cp tools/run-demo/scenario.sh tools/run-demo/scenario.conf $(TARGET_DIR)/run-scenarios/$(DEMO)/
	@printf 'DEMO=%s\nFRAMES=%s\nSIZE=%s\nAPNG_FRAMES=%s\n' '$(DEMO)' '$(RUN_FRAMES)' '$(RUN_SIZE)' '$(RUN_APNG_FRAMES)' > $(TARGET_DIR)/run-scenarios/$(DEMO)/run.env
	@echo "run: booting Xen + dom0 in QEMU (TCG), then the unikernel with demo=$(DEMO) for $(RUN_FRAMES) flips at $(RUN_SIZE)"
	$(HARNESS) run --cache $(CACHE_DIR) --scenarios $(TARGET_DIR)/run-scenarios --scenario $(DEMO) --out $(OUT_DIR)/run $(if $(TIMEOUT),--timeout $(TIMEOUT))
	@if [ '$(DEMO)' = stats ]; then \
		$(DEMO_CHECK) --live --scene stats --size $(RUN_SIZE) --dir $(RUN_DIR); \
	else \
		last=$$(awk -F, 'NR == 2 { t0 = $$3 } END { print int(($$3 - t0) / 16666667) + 600 }' $(RUN_DIR)/frames.csv); \
		$(DEMO_RENDER) --scene $(DEMO) --size $(RUN_SIZE) --frames 0-$$last > $(RUN_DIR)/expected.txt && \
		$(DEMO_CHECK) --table $(RUN_DIR)/expected.txt --scene $(DEMO) --size $(RUN_SIZE) --dir $(RUN_DIR) --require 0; \
	fi
	@echo "run: output in $(RUN_DIR)/ (frame-*.png, final.png, run.apng, stats.json, frames.csv, serial.log)"

# ---- demo scenes (host) -------------------------------------------------------
# bench: each scene at 1920x1080 vs a memset of the same buffer (ratio per scene).
# gallery: host renders of every scene (PNG + checksum) into $(OUT_DIR)/gallery.
.PHONY: bench gallery demo-tools demo-expected
# demo-tools: demo-render + demo-check (host, and shipped to dom0 by the demos scenario).
# demo-expected: host checksums of frames 0..1799 of every scene at 320x240 for that scenario.
demo-tools:
	$(CARGO) build --release -p demo-render

demo-expected: demo-tools
	@mkdir -p $(TARGET_DIR)/demo-expected
	$(DEMO_RENDER) --list > $(TARGET_DIR)/demo-expected/scenes.txt
	$(DEMO_RENDER) --all --frames 0-1799 --size 320x240 > $(TARGET_DIR)/demo-expected/320x240.txt

bench:
	$(CARGO) bench -p demos

# bench-dom0: the backend's per-flip costs inside dom0 under TCG (harness/bench/dom0-costs).
.PHONY: bench-dom0
bench-dom0: backend harness
	$(CARGO) build -p pvdispl-backend --release --example dom0_costs
	$(HARNESS) run --cache $(CACHE_DIR) --scenarios harness/bench --scenario dom0-costs --out $(OUT_DIR)/bench

gallery:
	$(CARGO) run --release -p demo-render -- --all --frames 0,120,600 --size 1280x720 --out $(OUT_DIR)/gallery

# ---- everything CI runs ------------------------------------------------------
test: unit-test qemu-test xen-test

clean:
	$(CARGO) clean
	rm -rf $(OUT_DIR)
