package main

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/windrow/windrow/adapters/natsx"
	"github.com/windrow/windrow/app/stack"
	"github.com/windrow/windrow/deploy"
	"github.com/windrow/windrow/internal/testnats"
	"github.com/windrow/windrow/messages"
)

// TestFlushCommands: `windrow flush` refuses a policy that is not stored
// (and flushes nothing), records a request for a stored one, and `windrow
// publish --flush` records one for each policy reading the subject.
func TestFlushCommands(t *testing.T) {
	srv := testnats.RunServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := stack.Open(ctx, stack.Config{DataDir: t.TempDir(), NATS: natsx.ClientConfig{URL: srv.ClientURL()}, Roles: []string{}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.Policies.Apply(ctx, "daily_store_sales.yaml", deploy.DailyStoreSales); err != nil {
		t.Fatal(err)
	}
	if _, err := natsx.EnsureSourceStream(ctx, s.JS, "EVENTS", []string{"events.sales.>"}); err != nil {
		t.Fatal(err)
	}
	kv, err := s.JS.KeyValue(ctx, messages.BucketWatermarks)
	if err != nil {
		t.Fatal(err)
	}
	request := func() (messages.FlushRequest, uint64) {
		t.Helper()
		e, err := kv.Get(ctx, messages.FlushKey("daily_store_sales"))
		if err != nil {
			t.Fatalf("no flush request: %v", err)
		}
		var req messages.FlushRequest
		if err := json.Unmarshal(e.Value(), &req); err != nil {
			t.Fatal(err)
		}
		return req, e.Revision()
	}
	conn := []string{"--nats-url", srv.ClientURL()}

	var out bytes.Buffer
	err = flushCmd(ctx, &out, append([]string{"daily_store_sales", "nosuch"}, conn...))
	if err == nil || !strings.Contains(err.Error(), `"nosuch" is stored`) {
		t.Fatalf("flush of an unknown policy: %v, want refused", err)
	}
	if _, err := kv.Get(ctx, messages.FlushKey("daily_store_sales")); err == nil {
		t.Fatal("a refused flush recorded a request")
	}

	before := time.Now()
	if err := flushCmd(ctx, &out, append([]string{"daily_store_sales"}, conn...)); err != nil {
		t.Fatal(err)
	}
	req, rev1 := request()
	if req.At.Before(before.Add(-time.Second)) || !strings.HasPrefix(req.By, "windrow flush") {
		t.Errorf("request %+v", req)
	}
	if !strings.Contains(out.String(), "daily_store_sales: input declared complete") {
		t.Errorf("flush said %q", out.String())
	}

	var errOut bytes.Buffer
	if err := publish(ctx, strings.NewReader(`{"store_id":"s1"}`+"\n"), &errOut, append([]string{"--subject", "events.sales.s1", "--flush"}, conn...)); err != nil {
		t.Fatal(err)
	}
	req, rev2 := request()
	if rev2 <= rev1 || !strings.HasPrefix(req.By, "windrow publish --flush") {
		t.Errorf("after publish --flush: request %+v rev %d (before %d)", req, rev2, rev1)
	}
	if _, err := natsx.EnsureSourceStream(ctx, s.JS, "OTHER", []string{"other.>"}); err != nil {
		t.Fatal(err)
	}
	errOut.Reset()
	if err := publish(ctx, strings.NewReader(`{"x":1}`+"\n"), &errOut, append([]string{"--subject", "other.x", "--flush"}, conn...)); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(errOut.String(), "no stored policy reads other.x from stream OTHER: nothing flushed") {
		t.Errorf("publish --flush to a subject no policy reads said %q", errOut.String())
	}
	if _, rev3 := request(); rev3 != rev2 {
		t.Errorf("publish --flush to a subject no policy reads recorded a request")
	}
}
