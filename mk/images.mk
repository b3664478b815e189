# Container images built and run on this machine without a Docker engine (buildah, mmdebstrap, skopeo; installed
# by scripts/images.sh). Images: ghcr.io/polecatworks/k8s-micro-{gateway,ingestor}:<chart appVersion>, what the
# chart pulls by default. docs/footprint.md has the measured sizes and times.
#
#   make images-local    local base images (cached), then Dockerfile.gateway and Dockerfile.ingestor
#   make images-check    each entrypoint's --version, the SBOMs, then the pod from the two images against a tansu
#                        on the host until /hams/ready is 200 and an event produced on the host is served
#   make images-sizes    uncompressed and gzip (registry) size of every layer

.PHONY: images-local images-check images-sizes

images-local:
	bash scripts/images.sh build

images-check:
	bash scripts/images.sh check

images-sizes:
	bash scripts/images.sh sizes
