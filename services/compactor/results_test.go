package compactor

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/windrow/windrow/adapters/natsx"
	"github.com/windrow/windrow/internal/testkit"
	"github.com/windrow/windrow/messages"
	"github.com/windrow/windrow/windows"
)

// TestUnreadableLoadResultIsTerminated: a load result that can never be
// decoded is settled with Term and counted, not redelivered forever, and a
// good result behind it is still applied.
func TestUnreadableLoadResultIsTerminated(t *testing.T) {
	env := testkit.New(t)
	p := testkit.Policy(t, policySrc)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if _, err := natsx.EnsureSourceStream(ctx, env.JS, p.Source.Stream, p.Source.Subjects); err != nil {
		t.Fatal(err)
	}
	terminated, err := env.JS.Conn().SubscribeSync("$JS.EVENT.ADVISORY.CONSUMER.MSG_TERMINATED." + messages.StreamResults + ".>")
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(Config{JS: env.JS, Store: env.Store, States: env.States, Watermarks: env.Watermarks, Policy: p})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()

	bad := nats.NewMsg(messages.ResultSubject(p.Name))
	bad.Header.Set(messages.HeaderType, messages.TypeLoadResult)
	bad.Data = []byte(`{"batch_id": 17,`)
	if _, err := env.JS.PublishMsg(ctx, bad); err != nil {
		t.Fatal(err)
	}
	win := windows.Window{Start: hour, End: hour.Add(time.Hour)}
	good := &messages.LoadResult{BatchID: "comp-x-r0-p0000", Policy: p.Name, WindowStart: win.Start, WindowEnd: win.End,
		Parts: 1, Table: "comp", Status: messages.LoadLoaded, Rows: 1, LoadedAt: time.Now().UTC(), Loader: "t"}
	if _, err := natsx.Publish(ctx, env.JS, messages.ResultSubject(p.Name), good, nil); err != nil {
		t.Fatal(err)
	}
	testkit.WaitFor(t, 10*time.Second, "both results settled", func() bool {
		st := s.Stats()
		return st.ResultsTerminated == 1 && st.Results == 1
	})
	testkit.WaitFor(t, 5*time.Second, "one MSG_TERMINATED advisory", func() bool {
		n, _, _ := terminated.Pending()
		return n == 1
	})
	cons, err := env.JS.Consumer(ctx, messages.StreamResults, messages.ResultsConsumer(p.Name))
	if err != nil {
		t.Fatal(err)
	}
	info, err := cons.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.NumAckPending != 0 || info.NumRedelivered != 0 {
		t.Errorf("results consumer: %d pending, %d redelivered; want 0 and 0", info.NumAckPending, info.NumRedelivered)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if st := s.Stats(); st.ResultsTerminated != 1 {
		t.Errorf("stats %+v", st)
	}
}
