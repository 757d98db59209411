#!/usr/bin/env bash
# Make the only base image the Dockerfile starts FROM, without a registry: Debian bookworm
# (minbase) by debootstrap, imported and tagged as the official name the Dockerfile uses.
# Idempotent: skips when the tag exists (FORCE=1 rebuilds). Needs root, debootstrap, a dockerd.
# Architecture-neutral: debootstrap builds for the host's dpkg architecture (amd64 or arm64).
set -euo pipefail
TAG=${BASE_TAG:-debian:bookworm-slim}
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
DOCKER=${DOCKER:-docker}
if [ -z "${FORCE:-}" ] && $DOCKER image inspect "$TAG" >/dev/null 2>&1; then
  echo "base image $TAG exists ($($DOCKER image inspect -f '{{.Id}}' "$TAG")); FORCE=1 to rebuild"; exit 0
fi
command -v debootstrap >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap; }
ROOTFS=$(mktemp -d /var/tmp/lakelab-rootfs.XXXXXX)
trap 'rm -rf "$ROOTFS"' EXIT
debootstrap --variant=minbase bookworm "$ROOTFS" "$MIRROR" >"$ROOTFS.log" 2>&1 \
  || { tail -30 "$ROOTFS.log" >&2; exit 1; }
rm -f "$ROOTFS.log"
# What the official slim image does: no docs/man/locales from packages, apt keeps no .debs,
# no recommends; plus the same three suites as the official image (debootstrap writes only
# `deb MIRROR bookworm main`). Plain http: apt verifies signatures, and http is not intercepted.
cat >"$ROOTFS/etc/dpkg/dpkg.cfg.d/docker" <<'CFG'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/groff/*
path-exclude /usr/share/info/*
path-exclude /usr/share/lintian/*
path-exclude /usr/share/linda/*
path-exclude /usr/share/locale/*
CFG
cat >"$ROOTFS/etc/apt/apt.conf.d/docker-clean" <<'CFG'
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache ""; Dir::Cache::srcpkgcache "";
CFG
echo 'APT::Install-Recommends "false"; APT::Install-Suggests "false";' >"$ROOTFS/etc/apt/apt.conf.d/docker-no-recommends"
echo 'Acquire::Languages "none";' >"$ROOTFS/etc/apt/apt.conf.d/docker-no-languages"
rm -f "$ROOTFS/etc/apt/sources.list"
cat >"$ROOTFS/etc/apt/sources.list.d/debian.sources" <<CFG
Types: deb
URIs: $MIRROR
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: ${MIRROR%/debian}/debian-security
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
CFG
rm -rf "$ROOTFS"/var/lib/apt/lists/* "$ROOTFS"/var/cache/apt/*.bin "$ROOTFS"/var/cache/apt/archives/*.deb \
       "$ROOTFS"/usr/share/doc/* "$ROOTFS"/usr/share/man/* "$ROOTFS"/usr/share/locale/* "$ROOTFS"/var/log/*.log
tar -C "$ROOTFS" --numeric-owner -c . | $DOCKER import \
  -c 'CMD ["bash"]' -c 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  -m "debootstrap --variant=minbase bookworm $MIRROR ($(dpkg --print-architecture))" - "$TAG"
$DOCKER image ls "$TAG"
