#!/usr/bin/env bash
# tools/jaeger/build.sh: build the Jaeger v2 binary pinned by this tools
# module (github.com/jaegertracing/jaeger v1.75.0, which is Jaeger v2.12.0)
# once, and cache it outside the checkout:
#
#   ${WINDROW_TOOLS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/windrow}/jaeger-v1.75.0/jaeger
#
# If the cached binary exists and runs, nothing is built. Otherwise it is
# built from the Go module proxy (about 5 minutes on 2 cores the first time)
# into a temporary file beside it and renamed into place, so a concurrent or
# interrupted build never leaves a half-written binary at that path.
#
# Progress goes to stderr; the binary's path is printed on stdout as the last
# line, so `bin=$(tools/jaeger/build.sh)` works. internal/testjaeger finds the
# binary at the same path (or at $WINDROW_JAEGER_BIN).
set -euo pipefail

module_version=v1.75.0 # keep in sync with go.mod and internal/testjaeger
jaeger_version=v2.12.0 # the Jaeger v2 release of module version v1.75.0
pkg=github.com/jaegertracing/jaeger/cmd/jaeger

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cache=${WINDROW_TOOLS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/windrow}
dir="${cache}/jaeger-${module_version}"
out="${dir}/jaeger"

if [ -x "$out" ] && "$out" version >/dev/null 2>&1; then
	echo "jaeger ${module_version} is built: ${out}" >&2
	echo "$out"
	exit 0
fi

mkdir -p "$dir"
tmp=$(mktemp "${dir}/.jaeger.XXXXXX")
trap 'rm -f "$tmp"' EXIT

echo "building jaeger ${module_version} (takes ~5 minutes the first time)..." >&2
t0=$(date +%s)
# GOWORK=off: build in this tools module alone, whatever go.work is around.
# The ldflags stamp what `jaeger version` prints (Jaeger's Makefile does the
# same with its git tags, which a module build does not have).
(
	cd "$here"
	GOWORK=off CGO_ENABLED=0 go build -trimpath \
		-ldflags "-s -w -X github.com/jaegertracing/jaeger/internal/version.latestVersion=${jaeger_version} -X github.com/jaegertracing/jaeger/internal/version.commitSHA=${module_version}" \
		-o "$tmp" "$pkg"
)
chmod 0755 "$tmp"
if ! "$tmp" version >/dev/null 2>&1; then
	echo "the built binary does not run: $tmp version failed" >&2
	exit 1
fi
mv -f "$tmp" "$out"
trap - EXIT
echo "built ${out} in $(($(date +%s) - t0))s" >&2
echo "$out"
