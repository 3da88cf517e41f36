package natsx

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/windrow/windrow/internal/testnats"
)

// lossyAPI serves JetStream's API under the prefix RELAY.API by relaying
// each request to the real one, except the first `lose` requests that
// create a consumer: those get no answer, as a request does whose meta
// leader died before it answered.
func lossyAPI(t *testing.T, nc *nats.Conn, lose int32) (js jetstream.JetStream, lost *atomic.Int32) {
	t.Helper()
	lost = &atomic.Int32{}
	sub, err := nc.Subscribe("RELAY.API.>", func(m *nats.Msg) {
		api := strings.TrimPrefix(m.Subject, "RELAY.API.")
		if strings.HasPrefix(api, "CONSUMER.CREATE.") && lost.Load() < lose {
			lost.Add(1)
			return
		}
		go func() {
			resp, err := nc.Request("$JS.API."+api, m.Data, 5*time.Second)
			if err == nil {
				_ = m.Respond(resp.Data)
			}
		}()
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sub.Unsubscribe() })
	if js, err = jetstream.NewWithAPIPrefix(nc, "RELAY.API"); err != nil {
		t.Fatal(err)
	}
	return js, lost
}

// TestWatchRetriesAnUnansweredStart: the request that creates a watcher's
// consumer gets no answer. kv.WatchFiltered under a context without a
// deadline would wait for ever (shown here bounded by a 2s context: it
// fails only when that context ends); Watch gives up on the attempt after
// its timeout, makes another, and the watcher delivers the bucket's value.
func TestWatchRetriesAnUnansweredStart(t *testing.T) {
	srv := testnats.RunServer(t)
	nc, js := testnats.Connect(t, srv)
	ctx := context.Background()
	if _, err := js.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: "w"}); err != nil {
		t.Fatal(err)
	}
	direct, err := js.KeyValue(ctx, "w")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := direct.Put(ctx, "a.b", []byte("1")); err != nil {
		t.Fatal(err)
	}

	// The failure mode: nats.go waits as long as the context allows.
	relay, lost := lossyAPI(t, nc, 1)
	kv, err := relay.KeyValue(ctx, "w")
	if err != nil {
		t.Fatal(err)
	}
	bounded, cancel := context.WithTimeout(ctx, 2*time.Second)
	start := time.Now()
	_, err = kv.WatchFiltered(bounded, []string{"a.>"})
	cancel()
	if err == nil || time.Since(start) < 2*time.Second {
		t.Fatalf("kv.WatchFiltered with its create request lost returned %v after %s; want it to wait out the 2s context", err, time.Since(start))
	}

	// Watch: the first attempt is lost too, the second is answered.
	relay, lost = lossyAPI(t, nc, 1)
	if kv, err = relay.KeyValue(ctx, "w"); err != nil {
		t.Fatal(err)
	}
	w, err := watchBounded(ctx, 300*time.Millisecond, func(wctx context.Context) (jetstream.KeyWatcher, error) {
		return kv.WatchFiltered(wctx, []string{"a.>"})
	})
	if err != nil {
		t.Fatalf("Watch: %v", err)
	}
	defer w.Stop() //nolint:errcheck
	if lost.Load() != 1 {
		t.Fatalf("%d create requests lost, want 1 (the first attempt's)", lost.Load())
	}
	select {
	case e := <-w.Updates():
		if e == nil || e.Key() != "a.b" || string(e.Value()) != "1" {
			t.Fatalf("first update %v, want a.b = 1", e)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no update from the watcher within 5s")
	}
	// It keeps watching: a later write arrives.
	if _, err := direct.Put(ctx, "a.c", []byte("2")); err != nil {
		t.Fatal(err)
	}
	for {
		select {
		case e := <-w.Updates():
			if e != nil && e.Key() == "a.c" {
				return
			}
		case <-time.After(5 * time.Second):
			t.Fatal("the write after the start did not reach the watcher within 5s")
		}
	}
}

// TestWatchGivesUpWithItsContext: when every attempt goes unanswered,
// Watch returns ErrWatchStart once ctx ends; and ListKeys fails rather
// than return a partial list.
func TestWatchGivesUpWithItsContext(t *testing.T) {
	srv := testnats.RunServer(t)
	nc, js := testnats.Connect(t, srv)
	ctx := context.Background()
	if _, err := js.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: "w"}); err != nil {
		t.Fatal(err)
	}
	relay, lost := lossyAPI(t, nc, 1<<30)
	kv, err := relay.KeyValue(ctx, "w")
	if err != nil {
		t.Fatal(err)
	}
	wctx, cancel := context.WithTimeout(ctx, 1500*time.Millisecond)
	defer cancel()
	_, err = watchBounded(wctx, 200*time.Millisecond, func(c context.Context) (jetstream.KeyWatcher, error) {
		return kv.WatchFiltered(c, []string{">"})
	})
	if !errors.Is(err, ErrWatchStart) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Watch with every start lost: %v; want ErrWatchStart and the context's deadline", err)
	}
	if lost.Load() < 2 {
		t.Fatalf("%d attempts, want several", lost.Load())
	}
	lctx, lcancel := context.WithTimeout(ctx, 500*time.Millisecond)
	defer lcancel()
	if keys, err := ListKeys(lctx, kv, ">"); err == nil {
		t.Fatalf("ListKeys with every start lost returned %v, want an error", keys)
	}
}

// TestListKeys lists the current keys, not the deleted ones.
func TestListKeys(t *testing.T) {
	srv := testnats.RunServer(t)
	_, js := testnats.Connect(t, srv)
	ctx := context.Background()
	kv, err := js.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: "w"})
	if err != nil {
		t.Fatal(err)
	}
	if keys, err := ListKeys(ctx, kv, ">"); err != nil || len(keys) != 0 {
		t.Fatalf("empty bucket: %v, %v", keys, err)
	}
	for _, k := range []string{"p.1", "p.2", "q.1", "p.3"} {
		if _, err := kv.Put(ctx, k, []byte("v")); err != nil {
			t.Fatal(err)
		}
	}
	if err := kv.Delete(ctx, "p.2"); err != nil {
		t.Fatal(err)
	}
	keys, err := ListKeys(ctx, kv, "p.>")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(keys, ",") != "p.1,p.3" {
		t.Fatalf("keys p.> = %v, want [p.1 p.3]", keys)
	}
}
