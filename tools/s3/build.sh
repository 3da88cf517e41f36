#!/usr/bin/env bash
# tools/s3/build.sh: build the versitygw S3 gateway pinned by this tools
# module (github.com/versity/versitygw v1.8.0, Apache-2.0) once, and cache it
# outside the checkout:
#
#   ${WINDROW_TOOLS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/windrow}/versitygw-v1.8.0/versitygw
#
# If the cached binary exists and runs, nothing is built. Otherwise it is
# built from the Go module proxy (a few minutes on 2 cores the first time)
# into a temporary file beside it and renamed into place, so a concurrent or
# interrupted build never leaves a half-written binary at that path.
#
# Progress goes to stderr; the binary's path is printed on stdout as the last
# line, so `bin=$(tools/s3/build.sh)` works. internal/tests3 finds the binary
# at the same path (or at $WINDROW_S3_BIN); tools/s3/run.sh runs it.
set -euo pipefail

version=v1.8.0 # keep in sync with go.mod and internal/tests3
pkg=github.com/versity/versitygw/cmd/versitygw

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cache=${WINDROW_TOOLS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/windrow}
dir="${cache}/versitygw-${version}"
out="${dir}/versitygw"

if [ -x "$out" ] && "$out" --version >/dev/null 2>&1; then
	echo "versitygw ${version} is built: ${out}" >&2
	echo "$out"
	exit 0
fi

mkdir -p "$dir"
tmp=$(mktemp "${dir}/.versitygw.XXXXXX")
trap 'rm -f "$tmp"' EXIT

echo "building versitygw ${version} (takes ~4 minutes the first time)..." >&2
t0=$(date +%s)
# GOWORK=off: build in this tools module alone, whatever go.work is around.
# The ldflags stamp what `versitygw --version` prints (versitygw's Makefile
# does the same with its git tags, which a module build does not have).
(
	cd "$here"
	GOWORK=off CGO_ENABLED=0 go build -trimpath \
		-ldflags "-s -w -X main.Version=${version} -X main.Build=module" \
		-o "$tmp" "$pkg"
)
chmod 0755 "$tmp"
if ! "$tmp" --version >/dev/null 2>&1; then
	echo "the built binary does not run: $tmp --version failed" >&2
	exit 1
fi
mv -f "$tmp" "$out"
trap - EXIT
echo "built ${out} in $(($(date +%s) - t0))s" >&2
echo "$out"
