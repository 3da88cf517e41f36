// Package flush declares a policy's input complete: the operator's (or a
// producer's) end-of-input signal. A flush request (messages.FlushRequest)
// lets the compactor close the last windows of a replay or of a file at
// once, instead of by the idle rule, which advances the watermark only by
// the time elapsed since the source went idle (decision 0016).
package flush

import (
	"context"
	"fmt"
	"os"
	"slices"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/windrow/windrow/adapters/policystore"
	"github.com/windrow/windrow/adapters/statestore"
	"github.com/windrow/windrow/messages"
	"github.com/windrow/windrow/windows"
)

// Request records a flush request at wall time at for each policy; by says
// who asks (e.g. "windrow flush"), the host name is added.
func Request(ctx context.Context, wms *statestore.Watermarks, at time.Time, by string, policies ...string) error {
	if host, err := os.Hostname(); err == nil {
		by += " on " + host
	}
	for _, p := range policies {
		if err := wms.RequestFlush(ctx, messages.FlushRequest{Policy: p, At: at, By: by}); err != nil {
			return err
		}
	}
	return nil
}

// PoliciesFor returns the names of the stored policies that read subject
// from stream (one of their source subjects matches it), sorted.
func PoliciesFor(ctx context.Context, store *policystore.Store, stream, subject string) ([]string, error) {
	all, err := store.List(ctx)
	if err != nil {
		return nil, fmt.Errorf("list policies: %w", err)
	}
	var names []string
	for _, p := range all {
		if Reads(p, stream, subject) {
			names = append(names, p.Name)
		}
	}
	slices.Sort(names)
	return names, nil
}

// Reads reports whether policy p takes subject from stream.
func Reads(p *windows.Policy, stream, subject string) bool {
	if p.Source.Stream != stream {
		return false
	}
	for _, f := range p.Source.Subjects {
		if server.SubjectsCollide(f, subject) {
			return true
		}
	}
	return false
}
