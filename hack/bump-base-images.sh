#!/usr/bin/env bash
# Pins every base image of the Dockerfile to the digest its tag points to
# now: `FROM golang:1.26 AS builder` becomes
# `FROM golang:1.26@sha256:<digest> AS builder` (and an existing digest is
# replaced). The tag stays for people reading it; the digest is what builds.
#
#   make bump-base-images      # then review and commit the Dockerfile
#
# Needs registry access and one of crane (go-containerregistry) or
# docker buildx. The digest is the multi-platform index's, so one pin
# serves every GOARCH the image is built for.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
dockerfile="${1:-$root/Dockerfile}"

# A docker without the buildx plugin would take --format as its own flag.
if command -v crane >/dev/null; then
	digest() { crane digest "$1"; }
elif docker buildx version >/dev/null 2>&1; then
	digest() { docker buildx imagetools inspect --format '{{json .Manifest.Digest}}' "$1" | tr -d '"'; }
else
	echo "needs crane (go install github.com/google/go-containerregistry/cmd/crane@latest) or docker buildx, and access to the registries" >&2
	exit 1
fi

for ref in $(awk 'toupper($1)=="FROM" {print $2}' "$dockerfile" | grep -v '^\$' | sed 's/@sha256:[0-9a-f]*$//' | sort -u); do
	[[ "$ref" == *:* ]] || { echo "$ref: no tag; pin one first" >&2; exit 1; }
	d="$(digest "$ref")"
	[[ "$d" =~ ^sha256:[0-9a-f]{64}$ ]] || { echo "$ref: unexpected digest '$d'" >&2; exit 1; }
	echo "$ref -> $d" >&2
	# Escape the dots of the reference for sed.
	pattern="$(printf '%s' "$ref" | sed 's/[.]/\\./g')"
	sed -i -E "s#^(FROM[[:space:]]+)${pattern}(@sha256:[0-9a-f]{64})?([[:space:]]|\$)#\\1${ref}@${d}\\3#I" "$dockerfile"
done
