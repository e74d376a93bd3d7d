// The e2e's small tools that must not share a module graph with Argo CD v2
// and Kubernetes v1.31 (their requirements would move otel and the AWS SDK
// under the cluster binary): the S3 server and the image/cache preparation.
module github.com/offshoot-dev/offshoot/test/e2e/tools

go 1.26.8

require (
	github.com/google/go-containerregistry v0.20.3
	github.com/johannesboyne/gofakes3 v1.2.0
)

require (
	github.com/containerd/stargz-snapshotter/estargz v0.16.3 // indirect
	github.com/klauspost/compress v1.17.11 // indirect
	github.com/opencontainers/go-digest v1.0.0 // indirect
	github.com/opencontainers/image-spec v1.1.0 // indirect
	github.com/ryszard/goskiplist v0.0.0-20150312221310-2dfbae5fcf46 // indirect
	github.com/vbatts/tar-split v0.11.6 // indirect
	go.shabbyrobe.org/gocovmerge v0.0.0-20230507111327-fa4f82cfbf4d // indirect
	golang.org/x/sync v0.10.0 // indirect
	golang.org/x/tools v0.29.0 // indirect
)
