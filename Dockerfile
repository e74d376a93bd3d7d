# offshoot: a static binary on a distroless base (no shell, non-root).
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" -o /offshoot ./cmd/offshoot

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /offshoot /offshoot
USER 65532:65532
ENTRYPOINT ["/offshoot"]
