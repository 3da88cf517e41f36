#!/usr/bin/env bash
# tools/image/build.sh: build the image writer of this tools module
# (go-containerregistry v0.22.1) once per version of its sources, and cache
# it outside the checkout:
#
#   ${WINDROW_TOOLS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/windrow}/image-HASH/image
#
# HASH is of go.mod, go.sum and the .go files here, so an edit builds anew.
# If the cached binary exists, nothing is built; otherwise it is built into a
# temporary file beside it and renamed into place (about half a minute).
#
# Progress goes to stderr; the binary's path is printed on stdout as the last
# line, so `bin=$(tools/image/build.sh)` works. deploy/build/image.sh runs it.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cache=${WINDROW_TOOLS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/windrow}
hash=$(cd "$here" && cat go.mod go.sum $(ls ./*.go | grep -v '_test\.go$') | sha256sum | cut -c1-12)
dir="${cache}/image-${hash}"
out="${dir}/image"

if [ -x "$out" ]; then
	echo "image writer is built: ${out}" >&2
	echo "$out"
	exit 0
fi

mkdir -p "$dir"
tmp=$(mktemp "${dir}/.image.XXXXXX")
trap 'rm -f "$tmp"' EXIT

echo "building the image writer (tools/image)..." >&2
t0=$(date +%s)
# GOWORK=off: build in this tools module alone, whatever go.work is around.
(
	cd "$here"
	GOWORK=off CGO_ENABLED=0 go build -mod=readonly -trimpath -ldflags "-s -w" -o "$tmp" .
)
chmod 0755 "$tmp"
mv -f "$tmp" "$out"
trap - EXIT
echo "built ${out} in $(($(date +%s) - t0))s" >&2
echo "$out"
