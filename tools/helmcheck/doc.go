// Package helmcheck holds the tests of windrow's Helm chart
// (deploy/helm/windrow): they render it with Helm's own engine
// (helm.sh/helm/v4) and check it against a built windrow binary.
//
// It is a module of its own so that Helm and the Kubernetes modules it
// brings stay out of windrow's go.mod: `go test ./...` in the repository
// does not download or compile them. It imports nothing of windrow; the
// tests take the binary from $WINDROW_BIN and read the chart, the policies
// and windrow's sources from the repository (../.. , or $WINDROW_REPO):
//
//	go build -o /tmp/windrow ./cmd/windrow
//	cd tools/helmcheck && WINDROW_BIN=/tmp/windrow go test ./...
//
// .ci/run runs them in its "deploy build" step on the static binary, and
// `task helm:check` builds a binary and runs them.
package helmcheck
