# Sourced by the scripts that run go, so they build with the project's Go
# whether make started them or not (the Makefile sets the same; bump both).
# The go command fetches this toolchain from the Go module proxy once per
# machine; its bin/ goes first on PATH because tools that load packages run
# `go` with GO111MODULE=off, where GOTOOLCHAIN is ignored.
export GOTOOLCHAIN=go1.27.3
if ! pacer_goroot="$(go env GOROOT)" || [[ -z "$pacer_goroot" ]]; then
	echo "could not get Go $GOTOOLCHAIN: the go command fetches it from the Go module proxy" >&2
	exit 1
fi
export PATH="$pacer_goroot/bin:$PATH"
unset pacer_goroot
