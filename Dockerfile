# Multi-stage build: a static rcslaunch binary on a minimal, non-root image.
FROM golang:1.27-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /out/rcslaunch ./cmd/rcslaunch

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/rcslaunch /usr/local/bin/rcslaunch
USER nonroot:nonroot
ENTRYPOINT ["/usr/local/bin/rcslaunch"]
CMD ["--help"]
