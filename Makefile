# c2vm — see README.md. Everything downloaded or built for tests and the
# demo lives in $(C2VM_CACHE); nothing generated is committed.
export PATH := /usr/local/go/bin:$(PATH)
C2VM_CACHE ?= $(HOME)/.cache/c2vm
export C2VM_CACHE
GO ?= go
ARCH ?= amd64
INIT_ARCHES := amd64 arm64 riscv64
INIT_FLAGS := -trimpath -ldflags='-s -w -buildid='

.PHONY: all build initbin deps test test-short test-deploy bench fuzz demo fixtures kernels clean

all: build

deps:
	@sh scripts/install-deps.sh

# The guest init, statically linked for each VM arch, embedded into c2vm.
initbin:
	@mkdir -p initramfs/bin
	@for a in $(INIT_ARCHES); do \
		CGO_ENABLED=0 GOOS=linux GOARCH=$$a $(GO) build $(INIT_FLAGS) \
			-o initramfs/bin/c2vm-init-$$a ./cmd/c2vm-init || exit 1; \
	done

build: initbin
	$(GO) build -trimpath -o bin/c2vm ./cmd/c2vm

fixtures: deps
	sh testdata/mkfixtures.sh

kernels: deps
	sh scripts/fetch-kernel.sh amd64 >/dev/null
	sh scripts/fetch-kernel.sh arm64 >/dev/null

# The whole suite; the end-to-end boots run when C2VM_E2E=1 (CI sets it)
# or when QEMU and the image tools are present.
test: deps
	$(GO) vet ./...
	$(GO) test -count=1 -timeout 60m ./...
	$(MAKE) test-deploy

# The shipped Kubernetes manifests (deploy/) decoded into k8s.io/api's
# types: a module of its own, so k8s.io/api stays out of c2vm's.
test-deploy:
	cd deploy/test && $(GO) vet ./... && $(GO) test -count=1 ./...

test-short:
	$(GO) test -short ./...
	$(MAKE) test-deploy

bench: deps
	$(GO) test -run '^$$' -bench . -benchtime 1x -timeout 60m ./convert/ ./rootfs/...
	sh scripts/bench.sh
	sh rootfs/squashfs/bench/compare.sh
	sh rootfs/erofs/bench/compare.sh

# Every fuzz target for FUZZTIME each, a duration (30s) or a count of inputs
# (1000x: CI, see .ci/run) (go test runs one -fuzz target at a
# time); `make test` already runs each target's seed corpus.
FUZZTIME ?= 30s
fuzz:
	@set -e; for pt in $$(grep -rl --include='*_test.go' '^func Fuzz' . | xargs -n1 dirname | sort -u); do \
		for f in $$(grep -ho '^func Fuzz[A-Za-z0-9_]*' $$pt/*_test.go | sed 's/func //'); do \
			echo "fuzz $$pt $$f"; \
			$(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) $$pt || exit 1; \
		done; \
	done

# Build c2vm, fetch a Debian cloud kernel, build a busybox image, convert
# it and boot it: ends with the container's greeting.
demo: deps build
	@set -e; \
	deb=$$(sh scripts/fetch-kernel.sh $(ARCH)); \
	fix=$$(sh testdata/mkfixtures.sh path); \
	./bin/c2vm convert oci:$$fix/busybox-$(ARCH) -o demo/busybox-$(ARCH).vm --kernel $$deb; \
	./bin/c2vm run --timeout 5m demo/busybox-$(ARCH).vm

clean:
	rm -rf bin demo initramfs/bin/c2vm-init-*
