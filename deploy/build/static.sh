#!/usr/bin/env bash
# deploy/build/static.sh OUT: build cmd/windrow as one static Linux binary at
# OUT (default ./windrow), with DuckDB (cgo) linked in, so that it runs on
# any Linux of the same architecture and in an image with nothing else in it
# (deploy/docker/Dockerfile, deploy/build/image.sh).
#
# Needs Go 1.26, gcc and the static C and C++ libraries (Debian/Ubuntu:
# build-essential, which has libc.a and libstdc++.a). netgo and osusergo
# keep glibc's resolver and user lookup (which dlopen NSS modules, and so
# cannot be static) out: Go's own are used. The binary has no version
# variables to stamp; `go version -m OUT` shows the module versions it was
# built from.
#
# The linker warns that DuckDB's getpwuid and getaddrinfo need glibc's
# shared libraries at run time: DuckDB calls them only for a home directory
# and HTTP (extension downloads, httpfs), which windrow does not use; Go's
# own code uses its pure-Go resolver and user lookup (netgo, osusergo).
#
# The result is checked: `file` must call it statically linked, ldd must
# find no shared libraries, and `OUT --help` and `OUT collector -h` must
# run. Progress goes to stderr; the
# binary's path is printed on stdout as the last line.
set -euo pipefail

out=${1:-windrow}
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
case "$out" in
/*) ;;
*) out="$(pwd)/${out}" ;;
esac
mkdir -p "$(dirname "$out")"

echo "building a static windrow into ${out} (the first cgo build of DuckDB takes a few minutes)..." >&2
t0=$(date +%s)
(
	cd "$root"
	CGO_ENABLED=1 go build -mod=readonly -trimpath -tags netgo,osusergo \
		-ldflags '-s -w -linkmode external -extldflags "-static"' \
		-o "$out" ./cmd/windrow
)
echo "built in $(($(date +%s) - t0))s" >&2

# Checks: a static executable that runs. (Without file(1), ldd alone.)
desc="static by ldd"
if command -v file >/dev/null 2>&1; then
	desc=$(file -b "$out")
	case "$desc" in
	*"statically linked"* | *"static-pie linked"*) ;;
	*)
		echo "not a static binary: ${out}: ${desc}" >&2
		exit 1
		;;
	esac
fi
if ldd "$out" >/dev/null 2>&1; then
	echo "ldd lists shared libraries of ${out}:" >&2
	ldd "$out" >&2 || true
	exit 1
fi
if ! "$out" --help 2>&1 | grep -q '^Usage:'; then
	echo "${out} --help does not print the usage" >&2
	exit 1
fi
if ! "$out" collector -h 2>&1 | grep -q -- '-nats-url'; then
	echo "${out} collector -h does not list --nats-url" >&2
	exit 1
fi
echo "${out}: ${desc}" >&2
echo "$out"
