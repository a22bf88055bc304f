# wagate, built from this checkout. Every base image is pinned to a version
# (bump them together with go.mod's toolchain).
FROM golang:1.26.8-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
# .git stays out of the build context (.dockerignore): the version comes from
# `--build-arg VERSION=$(git describe --always --dirty)` instead.
ARG VERSION=""
RUN CGO_ENABLED=0 go build -trimpath -ldflags="-s -w -X main.version=${VERSION}" -o /out/wagate ./cmd/wagate \
	&& mkdir -p /out/media

# busybox's static wget answers the container healthcheck (GET /healthz):
# the runtime image has no shell, curl or wget of its own.
FROM busybox:1.37.0-musl AS busybox

# distroless static, user nonroot (uid/gid 65532): no shell, no package manager.
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/wagate /usr/local/bin/wagate
COPY --from=busybox /bin/busybox /usr/local/bin/busybox
# Uploaded media (-media-dir); compose mounts the volume wagate-media here,
# and a new named volume takes this folder's owner.
COPY --from=build --chown=65532:65532 /out/media /var/lib/wagate/media
ENV WAGATE_MEDIA_DIR=/var/lib/wagate/media
USER 65532:65532
EXPOSE 8080 8090
ENTRYPOINT ["/usr/local/bin/wagate"]
CMD ["dev", "-http", "0.0.0.0:8080", "-sim", "0.0.0.0:8090"]
