# c2vm in a container, for pipelines:
#   docker build -t c2vm .
#   docker run --rm -v "$PWD:/work" c2vm convert /work/app.tar --platform linux/arm64 -o /work/out
# GO_IMAGE builds (any image with Go >= go.mod's go line on PATH, a shell
# and no need for cgo); BASE_IMAGE runs (Debian or a derivative: apt-get).
ARG GO_IMAGE=golang:1.26-bookworm
ARG BASE_IMAGE=debian:bookworm-slim

# Build on the builder's own platform and cross-compile: c2vm and its
# inits are pure Go (CGO_ENABLED=0), so one build stage serves every
# TARGETPLATFORM without emulation.
FROM --platform=$BUILDPLATFORM ${GO_IMAGE} AS build
ARG TARGETOS=linux
ARG TARGETARCH=amd64
# The module proxy, overridable for a mirror or an offline file:// proxy.
ARG GOPROXY=https://proxy.golang.org,direct
ENV CGO_ENABLED=0 GOTOOLCHAIN=local GOFLAGS=-trimpath GOMODCACHE=/cache/go-mod GOCACHE=/cache/go-build
WORKDIR /src
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/cache/go-mod go mod download
COPY . .
# The guest init for every VM arch first: c2vm embeds them
# (initramfs/init.go //go:embed all:bin; the Makefile's initbin). The
# module and build caches persist between builds of the builder.
RUN --mount=type=cache,target=/cache/go-mod --mount=type=cache,target=/cache/go-build \
	set -e; for a in amd64 arm64 riscv64; do \
		GOOS=linux GOARCH=$a go build -ldflags='-s -w -buildid=' -o initramfs/bin/c2vm-init-$a ./cmd/c2vm-init; \
	done; \
	GOOS=$TARGETOS GOARCH=$TARGETARCH go build -ldflags='-s -w -buildid=' -o /out/c2vm ./cmd/c2vm

FROM ${BASE_IMAGE}
# e2fsprogs: mke2fs for data disks (VOLUME); xz-utils: the fast path for
# xz-compressed kernels and modules; ca-certificates: registries over TLS;
# qemu-utils and systemd-boot-efi: --disk qcow2 (qemu-img, the EFI stub of
# the UKI), which c2vm push needs (deploy/: the Job and Tekton Task).
# A BASE_IMAGE that has them already (an offline mirror's) needs no apt.
RUN if ! command -v mke2fs >/dev/null || ! command -v xz >/dev/null || ! command -v qemu-img >/dev/null \
		|| [ ! -e /etc/ssl/certs/ca-certificates.crt ] || [ ! -d /usr/lib/systemd/boot/efi ]; then \
		apt-get update \
		&& DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends ca-certificates e2fsprogs xz-utils qemu-utils systemd-boot-efi \
		&& rm -rf /var/lib/apt/lists/*; \
	fi
COPY --from=build /out/c2vm /usr/local/bin/c2vm
WORKDIR /work
ENTRYPOINT ["c2vm"]
CMD ["--help"]
