#!/usr/bin/env bash
# Run by the build stage of Dockerfile.gateway / Dockerfile.ingestor: stages what the runtime stage copies on top
# of its base (distroless cc-debian12 or the local stand-in, which already hold glibc, libstdc++ and libgcc_s).
#
#   bash scripts/images-stage.sh BINARY ROOT SBOM BASE [VENDORED_FILE PURL]...
#
# - every shared library BINARY loads (ldd, so LD_LIBRARY_PATH counts) beyond those of the base goes to
#   ROOT/usr/lib/<multiarch>/<soname>, on ld.so's default path on amd64 and arm64; a missing one fails the build;
# - SBOM (CycloneDX JSON): the Debian package and version owning each staged library, each VENDORED_FILE with
#   its purl and SHA-256 (e.g. librdkafka from the confluent-kafka wheel), and the Swift packages of the resolved
#   graph (Package.resolved of the working directory; the product links a subset of them).
set -euo pipefail
BINARY=${1:?usage: images-stage.sh BINARY ROOT SBOM BASE [VENDORED_FILE PURL]...}
ROOT=${2:?} SBOM=${3:?} BASE=${4:?}
shift 4

BASE_LIBS='^(linux-vdso|ld-linux|libc\.so|libm\.so|libpthread|libdl\.so|librt\.so|libstdc\+\+|libgcc_s)'
ldd_out=$(mktemp)
trap 'rm -f "$ldd_out"' EXIT
ldd "$BINARY" >"$ldd_out"
cat "$ldd_out"
if grep -q 'not found' "$ldd_out"; then echo "unresolved shared library" >&2; exit 1; fi
multiarch=$(awk '$1 ~ /^libc\.so/ { n = split($3, p, "/"); print p[n - 1] }' "$ldd_out")
[ -n "$multiarch" ] || { echo "libc not found in ldd output" >&2; exit 1; }

declare -A vendored=()
while [ $# -ge 2 ]; do vendored[$(realpath "$1")]=$2; shift 2; done

json() { local s=${1//\\/\\\\}; printf '"%s"' "${s//\"/\\\"}"; }
components=()
component() { # TYPE NAME VERSION PURL [SHA256]
  local c
  c="{\"type\":$(json "$1"),\"name\":$(json "$2"),\"version\":$(json "$3"),\"purl\":$(json "$4")"
  [ -n "${5:-}" ] && c+=",\"hashes\":[{\"alg\":\"SHA-256\",\"content\":\"$5\"}]"
  components+=("$c}")
}

declare -A seen=()
while read -r soname path; do
  real=$(realpath "$path")
  install -D -m 0644 "$real" "$ROOT/usr/lib/$multiarch/$soname"
  sha=$(sha256sum "$real" | cut -d' ' -f1)
  if [ -n "${vendored[$real]:-}" ]; then
    purl=${vendored[$real]}
    name=${purl#pkg:*/}; name=${name%@*}
    component library "$name" "${purl##*@}" "$purl" "$sha"
    continue
  fi
  pkg=$(dpkg -S "$real" 2>/dev/null || dpkg -S "*/$soname" 2>/dev/null || true)
  pkg=${pkg%%:*}
  [ -n "$pkg" ] || { echo "no Debian package owns $real" >&2; exit 1; }
  [ -n "${seen[$pkg]:-}" ] && continue
  seen[$pkg]=1
  version=$(dpkg-query -W -f='${Version}' "$pkg")
  arch=$(dpkg-query -W -f='${Architecture}' "$pkg")
  component library "$pkg" "$version" "pkg:deb/debian/$pkg@$version?arch=$arch" "$sha"
done < <(awk '$2 == "=>" && $3 ~ /^\// { print $1, $3 }' "$ldd_out" | grep -Ev "$BASE_LIBS")

# Swift packages: the Package.resolved pins that have a version (identity, location, version), one per line.
if [ -f Package.resolved ]; then
  while read -r identity location version; do
    component library "$identity" "$version" "pkg:swift/${location#https://}@$version"
  done < <(awk -F'"' '/"identity"/ { id = $4 } /"location"/ { loc = $4 }
    /"version" : "/ { print id, loc, $4 }' Package.resolved)
fi
swift_version=$(swift --version 2>/dev/null | sed -n 's/.*Swift version \([^ ]*\).*/\1/p' | head -1)
component framework swift-stdlib "${swift_version:-unknown}" "pkg:generic/swift@${swift_version:-unknown}"

name=$(basename "$BINARY")
mkdir -p "$(dirname "$SBOM")"
{
  printf '{"bomFormat":"CycloneDX","specVersion":"1.5","version":1,'
  printf '"metadata":{"timestamp":%s,"component":{"type":"container","name":%s,"version":%s,' \
    "$(json "${CREATED:-unknown}")" "$(json "$name")" "$(json "${VERSION:-dev}")"
  printf '"hashes":[{"alg":"SHA-256","content":"%s"}]},' "$(sha256sum "$BINARY" | cut -d' ' -f1)"
  printf '"properties":[{"name":"base-image","value":%s}]},' "$(json "$BASE")"
  printf '"components":[%s]}\n' "$(IFS=,; echo "${components[*]}")"
} >"$SBOM"
echo "staged: $(cd "$ROOT" && find . -type f -printf '%p %s\n' | sort)"
echo "sbom: $SBOM (${#components[@]} components)"
