# Packaging targets (included by the Makefile): container images with a Docker engine, multi-arch push, Dockerfile
# lint, chart tests. Without a Docker engine: mk/images.mk (`make images-local images-check`, buildah).
#
#   make image-ingestor image-gateway            single-arch images in the local docker daemon
#   make images-multiarch REGISTRY=ghcr.io/me TAG=1.2.3   linux/amd64 + linux/arm64, one manifest per image, pushed
#   make lint-dockerfiles chart-test
#
# arm64 on an amd64 builder runs the Swift build under QEMU (binfmt): slow, but no cross SDK is needed.

REGISTRY ?= ghcr.io/polecatworks
# Image tag: the chart's appVersion, which is what the chart pulls by default. VERSION (git describe) is stamped
# into the binaries (--version, /hams/version) and the version label.
TAG ?= $(shell sed -n 's/^appVersion: *"\{0,1\}\([^"]*\)"\{0,1\}$$/\1/p' charts/k8s-micro/Chart.yaml)
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
PLATFORMS ?= linux/amd64,linux/arm64
# Both images build on Debian 12 and run on distroless/cc (glibc, libstdc++, CA certs; no shell): docs/footprint.md.
SWIFT_IMAGE ?= swift:6.3-bookworm
RUNTIME_IMAGE ?= gcr.io/distroless/cc-debian12:nonroot
# How Dockerfile.gateway links the gateway (lld: identical code folding, packed relative relocations).
GATEWAY_LINK_FLAGS ?= -Xswiftc -use-ld=lld -Xlinker --icf=all -Xlinker -z -Xlinker pack-relative-relocs
DOCKER ?= docker
VENV_BIN ?= .venv/bin
PACKAGING_REVISION := $(shell git rev-parse HEAD 2>/dev/null || echo unknown)
PACKAGING_CREATED := $(shell date -u +%Y-%m-%dT%H:%M:%SZ)

IMAGE_BUILD_ARGS = \
	--build-arg SWIFT_IMAGE=$(SWIFT_IMAGE) \
	--build-arg RUNTIME_IMAGE=$(RUNTIME_IMAGE) \
	--build-arg VERSION=$(VERSION) \
	--build-arg REVISION=$(PACKAGING_REVISION) \
	--build-arg CREATED=$(PACKAGING_CREATED)

.PHONY: image-ingestor image-gateway images images-multiarch lint-dockerfiles chart-test

image-ingestor:
	$(DOCKER) build -f Dockerfile.ingestor $(IMAGE_BUILD_ARGS) -t $(REGISTRY)/k8s-micro-ingestor:$(TAG) .

image-gateway:
	$(DOCKER) build -f Dockerfile.gateway $(IMAGE_BUILD_ARGS) -t $(REGISTRY)/k8s-micro-gateway:$(TAG) .

images: image-ingestor image-gateway

# One multi-platform manifest list per image, pushed to $(REGISTRY) (needs `docker login` and a buildx builder
# with the docker-container driver: `docker buildx create --use`).
images-multiarch:
	$(DOCKER) buildx build --platform $(PLATFORMS) -f Dockerfile.ingestor $(IMAGE_BUILD_ARGS) \
		-t $(REGISTRY)/k8s-micro-ingestor:$(TAG) --push .
	$(DOCKER) buildx build --platform $(PLATFORMS) -f Dockerfile.gateway $(IMAGE_BUILD_ARGS) \
		-t $(REGISTRY)/k8s-micro-gateway:$(TAG) --push .

lint-dockerfiles:
	$(VENV_BIN)/hadolint Dockerfile.ingestor Dockerfile.gateway

chart-test:
	$(VENV_BIN)/python -m pytest Tests/Integration/test_chart.py -q -p no:cacheprovider

# Size estimate of the release binaries (docs/footprint.md). Build them first, e.g.
#   swift build -c release --static-swift-stdlib --product k8s-micro-gateway
.PHONY: footprint footprint-gateway
footprint:
	bash mk/footprint.sh $(wildcard .build/release/k8s-micro-ingestor .build/release/k8s-micro-gateway)

# The gateway built exactly as Dockerfile.gateway builds it, then measured (copied aside first: other release
# builds share .build/release).
footprint-gateway:
	swift build -c release --static-swift-stdlib --product k8s-micro-gateway $(GATEWAY_LINK_FLAGS)
	install -m 0755 "$$(swift build -c release --show-bin-path)/k8s-micro-gateway" /tmp/k8s-micro-gateway.footprint
	bash mk/footprint.sh /tmp/k8s-micro-gateway.footprint
