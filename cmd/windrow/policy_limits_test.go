package main

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// TestPolicyApplyWarnsOfSourceStreamLimits guards issue 12 item 2: a policy
// applied on an existing stream whose limits can remove events before they
// are collected says so, naming the limit; a work-queue stream is refused.
func TestPolicyApplyWarnsOfSourceStreamLimits(t *testing.T) {
	e := newPolicyEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	nc, err := nats.Connect(e.url)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "ORDERS", Subjects: []string{"orders.>"}, MaxMsgs: 10}); err != nil {
		t.Fatal(err)
	}
	path := writeFile(t, filepath.Join(t.TempDir(), "orders.yaml"), ordersPolicyFile)
	r := e.run("apply", path)
	if r.code != 0 {
		t.Fatalf("apply: exit %d; want 0 (a warning, not a failure)", r.code)
	}
	if want := "stream ORDERS keeps at most 10 messages (discard old)"; !strings.Contains(r.errOut, want) || !strings.Contains(r.errOut, "max_msgs") {
		t.Errorf("apply on a stream with max_msgs 10: stderr %q; want a warning containing %q that names max_msgs", r.errOut, want)
	}

	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "WQ", Subjects: []string{"wq.>"}, Retention: jetstream.WorkQueuePolicy}); err != nil {
		t.Fatal(err)
	}
	wq := strings.NewReplacer("name: orders", "name: wq", "ORDERS", "WQ", "orders.>", "wq.>", "table: orders", "table: wq").Replace(ordersPolicyFile)
	r = e.run("apply", writeFile(t, filepath.Join(t.TempDir(), "wq.yaml"), wq))
	if r.code == 0 || !strings.Contains(r.errOut, "wq: not applied") || !strings.Contains(r.errOut, "work-queue retention") {
		t.Errorf("apply on a work-queue stream: exit %d, stderr %q; want \"wq: not applied\" naming work-queue retention", r.code, r.errOut)
	}
}
