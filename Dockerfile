# syntax=docker/dockerfile:1
# Builds both binaries; `--target manager` and `--target pacer-api` pick the
# image. Both run as distroless's nonroot user with nothing else inside.
#
# The builder's Go is the project's (GOTOOLCHAIN in the Makefile and
# hack/go-env.sh): `make vulncheck` checks the standard library of that
# version, so the images must be built with it; bump all three together.
#
# Base images are meant to be pinned by digest (`image:tag@sha256:...`), so a
# build never picks up a re-pushed tag: `make bump-base-images` resolves each
# tag's current digest and writes it here (hack/bump-base-images.sh); review
# and commit the result, and bump again for each Go patch release. The tags
# below are not pinned yet: the machine this was written on could not reach
# a registry, and a digest must never be made up (docs/operator.md, Supply
# chain).
FROM golang:1.27.3 AS builder
ARG TARGETOS
ARG TARGETARCH
# The pacer-api image the operator runs for TunedServices without spec.image.
ARG API_IMG=ghcr.io/pacer-dev/pacer-api:v0.1.0
WORKDIR /workspace

# Dependencies first, so source edits reuse the module layer.
COPY go.mod go.sum ./
RUN go mod download

COPY main.go main.go
COPY api/ api/
COPY controllers/ controllers/
COPY service/ service/
RUN CGO_ENABLED=0 GOOS=${TARGETOS:-linux} GOARCH=${TARGETARCH} \
    go build -trimpath -ldflags="-s -w -X main.defaultAPIImage=${API_IMG}" -o manager . && \
    CGO_ENABLED=0 GOOS=${TARGETOS:-linux} GOARCH=${TARGETARCH} \
    go build -trimpath -ldflags='-s -w' -o pacer-api ./service/cmd/pacer-api

FROM gcr.io/distroless/static:nonroot AS pacer-api
WORKDIR /
COPY --from=builder /workspace/pacer-api /pacer-api
USER 65532:65532
EXPOSE 8080 9090
ENTRYPOINT ["/pacer-api"]

# The operator is the last stage, so a plain `docker build .` builds it.
FROM gcr.io/distroless/static:nonroot AS manager
WORKDIR /
COPY --from=builder /workspace/manager /manager
USER 65532:65532
ENTRYPOINT ["/manager"]
