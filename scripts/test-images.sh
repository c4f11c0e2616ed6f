#!/usr/bin/env bash
# Builds the images berth's tests run, locally (nothing can be pulled):
#   berth-test/busybox:latest  FROM scratch + Debian's static busybox
#   berth-test/python:latest   FROM scratch + the host's python3 and boto3
# Idempotent and quick when the image exists: Docker's build cache.
set -euo pipefail
cd "$(dirname "$0")/.."

busybox=${BUSYBOX:-$(command -v busybox || true)}
if [[ -z "$busybox" ]] || ldd "$busybox" >/dev/null 2>&1; then
    echo "test-images: a static busybox is needed (apt-get install busybox-static)" >&2
    exit 1
fi
ctx=$(mktemp -d)
trap 'rm -rf "$ctx"' EXIT
cp docker/busybox/Dockerfile "$ctx/"
cp -L "$busybox" "$ctx/busybox"
DOCKER_BUILDKIT=0 docker build --quiet -t berth-test/busybox:latest "$ctx" >/dev/null
echo "test-images: berth-test/busybox:latest"

# berth-test/python:latest  the host's python3 with boto3 (docker/python/rootfs.py)
if python3 -c 'import boto3' 2>/dev/null; then
    pyctx=$(mktemp -d)
    trap 'rm -rf "$ctx" "$pyctx"' EXIT
    cp docker/python/Dockerfile "$pyctx/"
    python3 docker/python/rootfs.py "$pyctx/root"
    DOCKER_BUILDKIT=0 docker build --quiet -t berth-test/python:latest "$pyctx" >/dev/null
    echo "test-images: berth-test/python:latest"
else
    echo "test-images: no python3 with boto3 here: berth-test/python:latest not built" >&2
fi
