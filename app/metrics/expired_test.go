package metrics

import (
	"context"
	"testing"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/windrow/windrow/adapters/policystore"
	"github.com/windrow/windrow/internal/testkit"
)

// TestClusterExportsSourceExpired guards windrow_source_expired: a source
// stream that keeps at most 10 messages and was sent 30 before any
// collector ran has lost 20 events upstream of windrow.
func TestClusterExportsSourceExpired(t *testing.T) {
	env := testkit.New(t)
	ctx := context.Background()
	if _, err := env.JS.CreateStream(ctx, jetstream.StreamConfig{Name: "EXP", Subjects: []string{"exp.>"}, MaxMsgs: 10}); err != nil {
		t.Fatal(err)
	}
	for range 30 {
		if _, err := env.JS.Publish(ctx, "exp.a", []byte(`{}`)); err != nil {
			t.Fatal(err)
		}
	}
	policies := policystore.New(env.Topology.Policies)
	if _, err := policies.Apply(ctx, "exp.yaml", []byte(`name: exp
source: {stream: EXP, subjects: [exp.>]}
schema:
  fields:
    - {name: at, type: timestamp, required: true}
time: {field: at}
window: {size: 1h}
load: {table: exp}
`)); err != nil {
		t.Fatal(err)
	}
	c, err := NewCluster(ClusterConfig{JS: env.JS, Policies: policies, Watermarks: env.Watermarks, Windows: env.Topology.Windows})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	if ps := c.Snapshot().Policies["exp"]; !ps.HasExpired || ps.Expired != 20 {
		t.Errorf("expired %d (known %v); want 20", ps.Expired, ps.HasExpired)
	}
}
