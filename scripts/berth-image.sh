#!/usr/bin/env bash
# Builds berth:local, an image of an already built berth binary, locally
# (nothing can be pulled): FROM scratch + the binary + the shared libraries
# `ldd` says it needs + Debian's static busybox.
#
#   BERTH_BIN    the binary (default target/debug/berth)
#   BERTH_IMAGE  the tag (default berth:local)
#
# Quick when nothing changed: the image carries a hash of everything that
# went into it, and a matching image is not rebuilt at all (so the 150 MB
# debug binary is not even sent to the daemon).
set -euo pipefail
cd "$(dirname "$0")/.."

bin=${BERTH_BIN:-target/debug/berth}
image=${BERTH_IMAGE:-berth:local}
if [[ ! -x "$bin" ]]; then
    echo "berth-image: no berth binary at $bin (cargo build, or set BERTH_BIN)" >&2
    exit 1
fi
busybox=${BUSYBOX:-$(command -v busybox || true)}
if [[ -z "$busybox" ]] || ldd "$busybox" >/dev/null 2>&1; then
    echo "berth-image: a static busybox is needed (apt-get install busybox-static)" >&2
    exit 1
fi

# What the binary links: "name => /path (addr)" lines and the loader's
# "/path (addr)" line; linux-vdso has no file. (A static binary links
# nothing: ldd fails and the list is empty.)
if ldd "$bin" 2>/dev/null | grep -q 'not found'; then
    echo "berth-image: $bin links libraries this host lacks:" >&2
    ldd "$bin" | grep 'not found' >&2
    exit 1
fi
mapfile -t libs < <(ldd "$bin" | awk '$2 == "=>" && $3 ~ /^\// {print $3} $1 ~ /^\// {print $1}' | sort -u)

ctx=$(mktemp -d)
trap 'rm -rf "$ctx"' EXIT
root="$ctx/rootfs"
mkdir -p "$root/bin" "$root/etc" "$root/tmp" "$root/data" "$root/root"
cp -L "$busybox" "$root/bin/busybox"
for lib in "${libs[@]}"; do
    # At the path the binary asks for (the loader's path is baked into it);
    # -L: the file, not a symlink into a tree the image does not have.
    mkdir -p "$root$(dirname "$lib")"
    cp -L "$lib" "$root$lib"
done
printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/sh\n' >"$root/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\n' >"$root/etc/group"
# glibc's resolver: /etc/hosts, then Docker's embedded DNS (container names).
printf 'hosts: files dns\n' >"$root/etc/nsswitch.conf"
cp docker/berth/Dockerfile "$ctx/Dockerfile"
# Hard link when possible: the debug binary is large.
ln "$bin" "$ctx/berth" 2>/dev/null || cp "$bin" "$ctx/berth"

hash=$( (cd "$ctx" && find . -type f -print0 | sort -z | xargs -0 sha256sum) | sha256sum | cut -c1-32)
have=$(docker image inspect --format '{{ index .Config.Labels "berth.build-hash" }}' "$image" 2>/dev/null || true)
if [[ "$have" == "$hash" ]]; then
    echo "berth-image: $image (up to date)"
    exit 0
fi
old=$(docker image inspect --format '{{.Id}}' "$image" 2>/dev/null || true)
# The legacy builder (as scripts/test-images.sh): it warns that it is
# deprecated on every build, so its stderr is shown only when it fails.
if ! DOCKER_BUILDKIT=0 docker build --quiet --label "berth.build-hash=$hash" -t "$image" "$ctx" \
    >/dev/null 2>"$ctx/build.err"; then
    cat "$ctx/build.err" >&2
    exit 1
fi
# The image it replaced is now untagged: drop it unless a container uses it
# (each debug build would otherwise leave ~150 MB behind).
if [[ -n "$old" && "$old" != "$(docker image inspect --format '{{.Id}}' "$image")" ]]; then
    docker image rm "$old" >/dev/null 2>&1 || true
fi
echo "berth-image: $image"
