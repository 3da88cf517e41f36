#!/usr/bin/env bash
# deploy/build/image.sh DIR [TAG]: build the static windrow binary and
# windrow's container image into DIR, without a container daemon:
#
#   DIR/windrow      the static binary (deploy/build/static.sh)
#   DIR/windrow.tar  the image, tagged TAG (default windrow:dev): load it
#                    with `docker load -i DIR/windrow.tar` (or podman load,
#                    or push it with `crane push DIR/windrow.tar REF`)
#
# The image is one layer on an empty base (tools/image): the binary at
# /usr/local/bin/windrow as the entrypoint, user windrow (65532:65532), /tmp,
# the working directory /var/lib/windrow, this machine's CA bundle at
# /etc/ssl/certs/ca-certificates.crt if it has one, port 9464 (metrics,
# /healthz, /readyz when run with --metrics-addr 0.0.0.0:9464). With a
# daemon and a registry at hand, deploy/docker/Dockerfile builds the same
# on distroless instead.
#
# The tarball is checked: it is read back and its entrypoint and binary
# compared (`image -check`). Progress goes to stderr; the tarball's path is
# printed on stdout as the last line.
set -euo pipefail

if [ $# -lt 1 ] || [ $# -gt 2 ]; then
	echo "usage: $0 DIR [TAG]" >&2
	exit 2
fi
mkdir -p "$1"
dir=$(cd "$1" && pwd)
tag=${2:-windrow:dev}
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)

bin=$("$root/deploy/build/static.sh" "$dir/windrow" | tail -n 1)
writer=$("$root/tools/image/build.sh" | tail -n 1)
rev=$(git -C "$root" rev-parse HEAD 2>/dev/null || true)
"$writer" -bin "$bin" -out "$dir/windrow.tar" -tag "$tag" -revision "$rev"
"$writer" -check "$dir/windrow.tar" -tag "$tag" -bin "$bin"
echo "image ${tag}: ${dir}/windrow.tar (docker load -i ${dir}/windrow.tar)" >&2
echo "$dir/windrow.tar"
