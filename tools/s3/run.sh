#!/usr/bin/env bash
# tools/s3/run.sh DIR ADDR: run a local S3-compatible server (versitygw
# v1.8.0, its posix backend) in the foreground, storing under DIR (a bucket
# is a directory in it) and listening on ADDR, e.g. 127.0.0.1:9000. The
# server is built first if needed (tools/s3/build.sh; $WINDROW_S3_BIN names
# another binary).
#
# Its root credentials are AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, so
# windrow (or the aws CLI) in the same shell signs with what the server
# accepts; when they are unset, fixed local-only defaults are used and
# printed (never use those on an address others can reach). Point clients at
# it with AWS_ENDPOINT_URL_S3=http://ADDR, AWS_REGION=us-east-1 and
# path-style addressing. Stop it with Ctrl-C.
set -euo pipefail

if [ $# -ne 2 ]; then
	echo "usage: $0 DIR ADDR   (e.g. $0 ./s3-data 127.0.0.1:9000)" >&2
	exit 2
fi
dir=$1
addr=$2

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
bin=${WINDROW_S3_BIN:-$("$here/build.sh" | tail -n 1)}

if [ -z "${AWS_ACCESS_KEY_ID:-}" ] || [ -z "${AWS_SECRET_ACCESS_KEY:-}" ]; then
	AWS_ACCESS_KEY_ID=windrow
	AWS_SECRET_ACCESS_KEY=windrow-local-secret
	echo "AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY unset: using the local defaults" >&2
	echo "  export AWS_ACCESS_KEY_ID=${AWS_ACCESS_KEY_ID} AWS_SECRET_ACCESS_KEY=${AWS_SECRET_ACCESS_KEY}" >&2
fi

mkdir -p "$dir"
echo "s3: http://${addr} storing under ${dir} (access key ${AWS_ACCESS_KEY_ID}; clients: AWS_ENDPOINT_URL_S3=http://${addr} AWS_REGION=us-east-1, path style)" >&2
export ROOT_ACCESS_KEY="$AWS_ACCESS_KEY_ID" ROOT_SECRET_KEY="$AWS_SECRET_ACCESS_KEY"
exec "$bin" --port "$addr" posix "$dir"
