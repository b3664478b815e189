#!/usr/bin/env bash
# Container images without a Docker engine: buildah builds Dockerfile.gateway / Dockerfile.ingestor on local base
# images assembled with mmdebstrap (no public container registry is needed), runs them, measures them.
#
#   scripts/images.sh deps            install buildah, mmdebstrap, skopeo (apt)
#   scripts/images.sh bases           local builder base (Debian 12 + this machine's Swift toolchain) and runtime
#                                     base (distroless-like Debian 12: glibc, libstdc++, CA bundle, user 65532); cached
#   scripts/images.sh build           both Dockerfiles, unchanged but for the base-image args (make images-local)
#   scripts/images.sh check           Tests/Integration/test_images.py against what `build` made (make images-check)
#   scripts/images.sh sizes           uncompressed and gzip size per layer (skopeo copy to an OCI layout)
#   scripts/images.sh runtime-images  only the runtime stages, from the debug binaries of `swift build` (the test)
#
# Images: $REGISTRY/k8s-micro-{gateway,ingestor}:$TAG (default: the chart's appVersion, as its values expect).
# Storage: containers-storage's default (overlay as root). One image build at a time (flock).
set -euo pipefail
cd "$(dirname "$0")/.."

TAG=${TAG:-$(sed -n 's/^appVersion: *"\{0,1\}\([^"]*\)"\{0,1\}$/\1/p' charts/k8s-micro/Chart.yaml)}
REGISTRY=${REGISTRY:-ghcr.io/polecatworks}
SWIFT_BASE=${SWIFT_BASE:-localhost/k8s-micro-base/swift:bookworm}
SWIFT_ROOTFS=localhost/k8s-micro-base/swift-rootfs:bookworm
RUNTIME_BASE=${RUNTIME_BASE:-localhost/k8s-micro-base/cc-debian12:nonroot}
SWIFT_TOOLCHAIN=${SWIFT_TOOLCHAIN:-/opt/swift}
SWIFT_PACKAGES=${SWIFT_PACKAGES:-/opt/swift-packages}
OUT=${IMAGES_OUT:-$PWD/.build-images}
VERSION=${VERSION:-$(git describe --tags --always --dirty 2>/dev/null || echo dev)}
REVISION=$(git rev-parse HEAD 2>/dev/null || echo unknown)
CREATED=$(date -u +%Y-%m-%dT%H:%M:%SZ)
PROCESSES=(gateway ingestor)
SUITE=bookworm
MIRRORS=("deb http://deb.debian.org/debian $SUITE main"
  "deb http://deb.debian.org/debian $SUITE-updates main"
  "deb http://deb.debian.org/debian-security $SUITE-security main")

log() { printf 'images: %s\n' "$*" >&2; }

deps() {
  local missing=() p
  for p in buildah mmdebstrap skopeo; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  log "installing Debian packages: ${missing[*]}"
  local sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get -o DPkg::Lock::Timeout=600 update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get -o DPkg::Lock::Timeout=600 install -y -qq "${missing[@]}" >/dev/null
}

# A base is rebuilt when its recipe (the function's text + inputs) changes: the hash is a label of the image.
recipe_hash() { { declare -f "$1"; shift; printf '%s\n' "$@"; } | sha256sum | cut -c1-16; }
image_label() { buildah inspect --type image --format "{{index .OCIv1.Config.Labels \"$2\"}}" "$1" 2>/dev/null || true; }

# Debian 12 minbase + the libraries the Swift toolchain loads + this machine's toolchain (without the debugger,
# IDE and documentation tools an image build never runs) + the local package copies git resolves github.com to.
# Stands in for swift:6.3-bookworm, which has the same Debian release and the toolchain under /usr.
swift_base_rootfs() {
  local root=$1
  mmdebstrap --quiet --variant=minbase \
    --include=binutils,ca-certificates,git,libc6-dev,libcurl4,libedit2,libgcc-12-dev,libncurses6,libsqlite3-0,libstdc++-12-dev,libxml2,pkg-config,tzdata,zlib1g-dev \
    "$SUITE" "$root" "${MIRRORS[@]}"
  mkdir -p "$root/opt"
  tar -C "$(dirname "$SWIFT_TOOLCHAIN")" -cf - \
    --exclude='usr/bin/lldb*' --exclude='usr/lib/liblldb*' --exclude=usr/bin/sourcekit-lsp \
    --exclude='usr/lib/libsourcekitd*' --exclude=usr/bin/clangd --exclude=usr/bin/docc --exclude=usr/share/docc \
    --exclude=usr/bin/wasmkit --exclude=usr/lib/swift/embedded --exclude=usr/bin/repl_swift \
    "$(basename "$SWIFT_TOOLCHAIN")" | tar -C "$root/opt" -xf -
  [ "$(basename "$SWIFT_TOOLCHAIN")" = swift ] || mv "$root/opt/$(basename "$SWIFT_TOOLCHAIN")" "$root/opt/swift"
  cp -a "$SWIFT_PACKAGES" "$root/opt/swift-packages"
  printf '[url "/opt/swift-packages/"]\n\tinsteadOf = https://github.com/\n' >"$root/etc/gitconfig"
}

# Like gcr.io/distroless/cc-debian12:nonroot: the files of base-files, netbase, tzdata, libc6, libgcc-s1,
# libgomp1, libstdc++6, libssl3 and the CA bundle, no shell, no package manager; users root, nobody, nonroot.
runtime_base_rootfs() {
  local root=$1
  # extract: unpacks the packages (and what they depend on) without running any maintainer script.
  mmdebstrap --quiet --variant=extract --include=base-files,netbase,libc6,libgcc-s1,libgomp1,libstdc++6,libssl3 \
    "$SUITE" "$root" "${MIRRORS[@]}"
  # tzdata's and ca-certificates' data only: their dependencies (debconf, perl, openssl) are not wanted.
  local extra; extra=$(mktemp -d)
  mmdebstrap --quiet --variant=extract --include=tzdata,ca-certificates "$SUITE" "$extra/root" "${MIRRORS[@]}"
  cp -a "$extra/root/usr/share/zoneinfo" "$root/usr/share/"
  cp -a "$extra/root/usr/share/doc/tzdata" "$extra/root/usr/share/doc/ca-certificates" "$root/usr/share/doc/"
  mkdir -p "$root/etc/ssl/certs"
  cat "$extra/root"/usr/share/ca-certificates/mozilla/*.crt >"$root/etc/ssl/certs/ca-certificates.crt"
  rm -rf "$extra"
  rm -rf "$root/etc/apt" \
    "$root/var/lib/apt" "$root/var/cache/apt" "$root/var/log/apt" "$root/usr/share/man" "$root/usr/share/info" \
    "$root/usr/share/lintian"
  find "$root/usr/share/doc" -type f ! -name copyright -delete
  printf '%s\n' 'root:x:0:0:root:/root:/sbin/nologin' 'nobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin' \
    'nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin' >"$root/etc/passwd"
  printf '%s\n' 'root:x:0:' 'nobody:x:65534:' 'nonroot:x:65532:' >"$root/etc/group"
  install -d -m 0700 "$root/root"
  install -d -m 0700 -o 65532 -g 65532 "$root/home/nonroot"
  install -d -m 1777 "$root/tmp"
}

# make_base IMAGE FUNCTION ENV... : a one-layer image from the root filesystem FUNCTION writes; skipped when an
# image of the same recipe exists.
make_base() {
  local image=$1 fn=$2; shift 2
  local hash; hash=$(recipe_hash "$fn" "$SUITE" "${MIRRORS[@]}" "$@")
  if [ "$(image_label "$image" k8s-micro.recipe)" = "$hash" ]; then
    log "base $image is current (recipe $hash)"
    return 0
  fi
  log "assembling base $image (recipe $hash)"
  local ctr mnt
  ctr=$(buildah from scratch)
  # shellcheck disable=SC2064 # the container of this call
  trap "buildah rm '$ctr' >/dev/null 2>&1 || true" EXIT
  mnt=$(buildah mount "$ctr")
  "$fn" "$mnt"
  buildah umount "$ctr" >/dev/null
  local cfg=(--label "k8s-micro.recipe=$hash" --created-by "scripts/images.sh $fn")
  local e; for e in "$@"; do cfg+=(--env "$e"); done
  buildah config "${cfg[@]}" "$ctr"
  buildah commit --quiet --rm "$ctr" "$image" >/dev/null
  trap - EXIT
}

bases() {
  deps
  runtime_base
  [ -x "$SWIFT_TOOLCHAIN/usr/bin/swift" ] || { log "no Swift toolchain at $SWIFT_TOOLCHAIN"; exit 1; }
  local version; version=$("$SWIFT_TOOLCHAIN/usr/bin/swift" --version 2>/dev/null | head -1)
  make_base "$SWIFT_ROOTFS" swift_base_rootfs \
    "PATH=/opt/swift/usr/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" \
    "SWIFT_VERSION=$version"
  host_trust "$SWIFT_BASE" "$SWIFT_ROOTFS"
}

# IMAGE = FROM + the extra CA certificates this machine trusts (/usr/local/share/ca-certificates), so that pip and
# git inside the build reach their registries through the same TLS-inspecting egress as the host. Local only: the
# public build's swift image needs none, and nothing of this layer reaches the runtime stage.
host_trust() {
  local image=$1 from=$2 hash ctr
  hash=$({ buildah images --noheading --no-trunc --format '{{.ID}}' "$from"
    cat /usr/local/share/ca-certificates/*.crt 2>/dev/null || true; } | sha256sum | cut -c1-16)
  if [ "$(image_label "$image" k8s-micro.recipe)" = "$hash" ]; then
    log "base $image is current (recipe $hash)"
    return 0
  fi
  log "assembling base $image: $from + this machine's extra CA certificates"
  ctr=$(buildah from --pull=false "$from")
  # shellcheck disable=SC2064 # the container of this call
  trap "buildah rm '$ctr' >/dev/null 2>&1 || true" EXIT
  if compgen -G '/usr/local/share/ca-certificates/*.crt' >/dev/null; then
    buildah copy "$ctr" /usr/local/share/ca-certificates/ /usr/local/share/ca-certificates/ >/dev/null
  fi
  buildah run --isolation chroot "$ctr" -- update-ca-certificates >/dev/null
  buildah config --label "k8s-micro.recipe=$hash" "$ctr"
  buildah commit --quiet --rm "$ctr" "$image" >/dev/null
  trap - EXIT
}

runtime_base() {
  make_base "$RUNTIME_BASE" runtime_base_rootfs \
    "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" \
    "SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt"
}

image_name() { echo "$REGISTRY/k8s-micro-$1:$TAG"; }

# Heavy (a release Swift build per image): never two at once on a shared machine.
build_lock() {
  exec 9>"${TMPDIR:-/tmp}/k8s-micro-images.lock"
  flock -w 3600 9 || { log "another image build holds the lock"; exit 1; }
}

# docker format: the Dockerfiles' SHELL (bash, pipefail) is a Docker-format instruction that OCI ignores.
bud() { buildah bud --isolation chroot --format docker "$@"; }

# Extracts the SBOM the build wrote into the image to $OUT/k8s-micro-PROCESS.sbom.cdx.json.
save_sbom() {
  local image=$1 process=$2 ctr mnt
  ctr=$(buildah from --pull=false "$image")
  mnt=$(buildah mount "$ctr")
  mkdir -p "$OUT"
  cp "$mnt/usr/share/doc/k8s-micro-$process/sbom.cdx.json" "$OUT/k8s-micro-$process.sbom.cdx.json"
  buildah umount "$ctr" >/dev/null
  buildah rm "$ctr" >/dev/null
  log "SBOM of $image: $OUT/k8s-micro-$process.sbom.cdx.json"
}

build() {
  bases
  build_lock
  local process start
  for process in "${PROCESSES[@]}"; do
    start=$SECONDS
    log "building $(image_name "$process") from Dockerfile.$process"
    bud --layers --force-rm -f "Dockerfile.$process" \
      --build-arg "SWIFT_IMAGE=$SWIFT_BASE" --build-arg "RUNTIME_IMAGE=$RUNTIME_BASE" \
      --build-arg "VERSION=$VERSION" --build-arg "REVISION=$REVISION" --build-arg "CREATED=$CREATED" \
      --build-arg "SWIFT_BUILD_JOBS=${SWIFT_BUILD_JOBS:-1}" \
      -t "$(image_name "$process")" .
    save_sbom "$(image_name "$process")" "$process"
    log "built $(image_name "$process") in $((SECONDS - start)) s"
  done
}

# The Dockerfile's ARGs before its first FROM and its last (runtime) stage verbatim, with the build stage replaced
# by the files the real one stages in /out.
runtime_stage() {
  awk '/^FROM /{ exit } /^ARG /' "$1"
  printf 'FROM scratch AS build\nCOPY out/ /out/\n'
  awk -v last="$(grep -c '^FROM ' "$1")" '/^FROM /{ n++ } n == last' "$1"
}

# Images of the runtime stages only, from the debug binaries `swift build` made (dynamically linked: their Swift
# runtime libraries are staged too), for the test command: a broken runtime stage fails CI within a minute.
runtime_images() {
  deps
  runtime_base
  build_lock
  # shellcheck source=scripts/env.sh
  source scripts/env.sh
  local bin swift_version process ctx lib
  bin=$(swift build --show-bin-path)
  swift_version=$(swift --version 2>/dev/null | sed -n 's/.*Swift version \([^ ]*\).*/\1/p' | head -1)
  for process in "${PROCESSES[@]}"; do
    ctx="$OUT/runtime-$process"
    rm -rf "$ctx"
    mkdir -p "$ctx/out"
    install -m 0755 "$bin/k8s-micro-$process" "$ctx/out/"
    strip "$ctx/out/k8s-micro-$process"
    local vendored=()
    while read -r lib; do
      case $lib in
        "$SWIFT_TOOLCHAIN"/*) vendored+=("$lib" "pkg:generic/swift-runtime@$swift_version") ;;
        */librdkafka*) vendored+=("$lib" "pkg:pypi/confluent-kafka@$(.venv/bin/pip show confluent-kafka 2>/dev/null | sed -n 's/^Version: //p')") ;;
      esac
    done < <(ldd "$ctx/out/k8s-micro-$process" | awk '$2 == "=>" && $3 ~ /^\// { print $3 }' | xargs -r realpath)
    VERSION=$VERSION CREATED=$CREATED bash scripts/images-stage.sh "$ctx/out/k8s-micro-$process" "$ctx/out/root" \
      "$ctx/out/root/usr/share/doc/k8s-micro-$process/sbom.cdx.json" "$RUNTIME_BASE" "${vendored[@]}" >"$ctx/stage.log"
    install -d -m 0770 "$ctx/out/empty"
    cp -r schemas "$ctx/schemas"
    runtime_stage "Dockerfile.$process" >"$ctx/Dockerfile"
    buildah rmi "localhost/k8s-micro-$process:runtime-test" >/dev/null 2>&1 || true  # no pile-up across runs
    bud -q -f "$ctx/Dockerfile" --build-arg "RUNTIME_IMAGE=$RUNTIME_BASE" --build-arg "VERSION=$VERSION" \
      -t "localhost/k8s-micro-$process:runtime-test" "$ctx" >/dev/null
    log "built localhost/k8s-micro-$process:runtime-test (runtime stage of Dockerfile.$process, debug binary)"
  done
}

check() {
  # shellcheck source=scripts/env.sh
  source scripts/env.sh
  swift build -j 1 --product k8s-micro-ingestor >/dev/null  # produces the test event on the host
  K8S_MICRO_GATEWAY_IMAGE=$(image_name gateway) K8S_MICRO_INGESTOR_IMAGE=$(image_name ingestor) \
    .venv/bin/python -m pytest Tests/Integration/test_images.py -q -p no:cacheprovider
}

# Per layer: uncompressed tar size and gzip size as a registry stores it (skopeo copy to an OCI layout with gzip
# layers), with the Dockerfile step that made it.
sizes() {
  deps
  local process image dir
  for process in "${PROCESSES[@]}"; do
    image=$(image_name "$process")
    dir="$OUT/oci-$process"
    rm -rf "$dir"
    skopeo copy -q --dest-compress --dest-compress-format gzip "containers-storage:$image" "oci:$dir:$TAG"
    python3 - "$dir" "$image" <<'PY'
import gzip, json, pathlib, sys
d, image = pathlib.Path(sys.argv[1]), sys.argv[2]
blob = lambda digest: d / "blobs" / digest.replace(":", "/")
index = json.loads((d / "index.json").read_text())
manifest = json.loads(blob(index["manifests"][0]["digest"]).read_text())
config = json.loads(blob(manifest["config"]["digest"]).read_text())
steps = [h.get("created_by", "") for h in config.get("history", []) if not h.get("empty_layer")]
print(f"== {image}")
print(f"{'layer':>5} {'uncompressed':>14} {'gzip':>12}  step")
tu = tc = 0
for i, layer in enumerate(manifest["layers"]):
    assert "gzip" in layer["mediaType"], layer["mediaType"]
    with gzip.open(blob(layer["digest"])) as f:
        u = sum(len(chunk) for chunk in iter(lambda: f.read(1 << 20), b""))
    c = layer["size"]
    tu, tc = tu + u, tc + c
    step = steps[i] if i < len(steps) else ""
    print(f"{i:>5} {u:>14,} {c:>12,}  {' '.join(step.split())[:90]}")
print(f"{'total':>5} {tu:>14,} {tc:>12,}  ({tu / 1e6:.1f} MB uncompressed, {tc / 1e6:.1f} MB compressed)")
PY
  done
}

case "${1:-}" in
  deps) deps ;;
  bases) bases ;;
  build) build ;;
  check) check ;;
  sizes) sizes ;;
  runtime-images) runtime_images ;;
  *) sed -n '2,15p' "$0" >&2; exit 2 ;;
esac
