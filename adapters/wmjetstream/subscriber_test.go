package wmjetstream_test

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/windrow/windrow/adapters/wmjetstream"
	"github.com/windrow/windrow/internal/testnats"
)

func setupStream(t *testing.T, js jetstream.JetStream, n int) {
	t.Helper()
	ctx := context.Background()
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "T", Subjects: []string{"t.>"}}); err != nil {
		t.Fatalf("create stream: %v", err)
	}
	for i := 1; i <= n; i++ {
		if _, err := js.Publish(ctx, "t.x", []byte(strconv.Itoa(i)), jetstream.WithMsgID(fmt.Sprintf("m-%d", i))); err != nil {
			t.Fatalf("publish %d: %v", i, err)
		}
	}
}

func TestRouterAcksEachMessageOnceAndRedeliversNacked(t *testing.T) {
	_, js := testnats.Connect(t, testnats.RunServer(t))
	const n = 100
	setupStream(t, js, n)

	sub, err := wmjetstream.NewSubscriber(wmjetstream.SubscriberConfig{
		JS: js, Stream: "T", Durable: "d", FilterSubjects: []string{"t.>"},
		AckWait: 5 * time.Second, NakDelay: 10 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	router, err := message.NewRouter(message.RouterConfig{CloseTimeout: 5 * time.Second}, nil)
	if err != nil {
		t.Fatal(err)
	}

	var mu sync.Mutex
	handled := map[int]int{} // payload -> successful handlings
	nacked := map[int]bool{}
	var metaErr error
	router.AddNoPublisherHandler("h", "ignored", sub, func(msg *message.Message) error {
		i, err := strconv.Atoi(string(msg.Payload))
		if err != nil {
			return err
		}
		mu.Lock()
		defer mu.Unlock()
		wantDelivered := "1"
		if nacked[i] {
			wantDelivered = "2"
		}
		if msg.UUID != fmt.Sprintf("m-%d", i) || msg.Metadata.Get("nats_subject") != "t.x" ||
			msg.Metadata.Get("Nats-Msg-Id") != msg.UUID || msg.Metadata.Get("nats_stream_seq") != strconv.Itoa(i) ||
			msg.Metadata.Get("nats_num_delivered") != wantDelivered {
			metaErr = fmt.Errorf("message %d: uuid %q metadata %v", i, msg.UUID, msg.Metadata)
		}
		if i%7 == 0 && !nacked[i] {
			nacked[i] = true
			return errors.New("first attempt fails")
		}
		handled[i]++
		return nil
	})

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- router.Run(ctx) }()

	testnats.WaitForNil(t, 15*time.Second, func() error {
		mu.Lock()
		defer mu.Unlock()
		if len(handled) != n {
			return fmt.Errorf("handled %d of %d", len(handled), n)
		}
		return nil
	})
	testnats.WaitForNil(t, 10*time.Second, testnats.ConsumerSettled(js, "T", "d"))

	if err := router.Close(); err != nil {
		t.Fatalf("router close: %v", err)
	}
	if err := <-done; err != nil {
		t.Fatalf("router run: %v", err)
	}
	if err := sub.Close(); err != nil { // idempotent after the router closed it
		t.Fatalf("second close: %v", err)
	}

	mu.Lock()
	defer mu.Unlock()
	if metaErr != nil {
		t.Fatal(metaErr)
	}
	for i := 1; i <= n; i++ {
		if handled[i] != 1 {
			t.Errorf("payload %d handled and acked %d times, want 1", i, handled[i])
		}
	}
	if len(nacked) != n/7 {
		t.Errorf("nacked %d messages, want %d", len(nacked), n/7)
	}
	c, _ := js.Consumer(context.Background(), "T", "d")
	info, err := c.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if info.AckFloor.Stream != n || info.NumRedelivered != 0 {
		t.Errorf("ack floor %d (want %d), redelivered %d (want 0)", info.AckFloor.Stream, n, info.NumRedelivered)
	}
}

// A handler that works longer than AckWait keeps its message through
// InProgress and is not given it a second time.
func TestInProgressPreventsRedelivery(t *testing.T) {
	_, js := testnats.Connect(t, testnats.RunServer(t))
	setupStream(t, js, 1)

	sub, err := wmjetstream.NewSubscriber(wmjetstream.SubscriberConfig{
		JS: js, Stream: "T", Durable: "slow", AckWait: time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	msgs, err := sub.Subscribe(ctx, "t")
	if err != nil {
		t.Fatal(err)
	}
	msg := <-msgs
	time.Sleep(2500 * time.Millisecond) // the work: 2.5 × AckWait
	msg.Ack()
	testnats.WaitForNil(t, 5*time.Second, testnats.ConsumerSettled(js, "T", "slow"))
	if err := sub.Close(); err != nil {
		t.Fatal(err)
	}
	if extra, ok := <-msgs; ok {
		t.Fatalf("message %s delivered again", extra.UUID)
	}
}

// When the Subscribe ctx ends before the handler decides, the message is not
// acked and the server delivers it again.
func TestCanceledContextLeavesMessageUnacked(t *testing.T) {
	_, js := testnats.Connect(t, testnats.RunServer(t))
	setupStream(t, js, 1)

	cfg := wmjetstream.SubscriberConfig{JS: js, Stream: "T", Durable: "c", AckWait: 300 * time.Millisecond}
	sub, err := wmjetstream.NewSubscriber(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	msgs, err := sub.Subscribe(ctx, "t")
	if err != nil {
		t.Fatal(err)
	}
	<-msgs
	cancel()
	if _, ok := <-msgs; ok {
		t.Fatal("channel not closed after ctx ended")
	}

	sub2, err := wmjetstream.NewSubscriber(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer sub2.Close()
	ctx2, cancel2 := context.WithCancel(context.Background())
	defer cancel2()
	msgs2, err := sub2.Subscribe(ctx2, "t")
	if err != nil {
		t.Fatal(err)
	}
	// The message comes again: not acked, not terminated. It may have been
	// delivered more than twice by then (on a loaded machine, to pull
	// requests the first subscriber left on the server, each time its ack
	// wait ran out), so the count is at least 2, not exactly 2.
	var msg *message.Message
	select {
	case msg = <-msgs2:
	case <-time.After(10 * time.Second):
		t.Fatal("the message left unacked by the canceled handler never came again")
	}
	if got, err := strconv.Atoi(msg.Metadata.Get(wmjetstream.MetaNumDelivered)); err != nil || got < 2 {
		t.Fatalf("num delivered = %q, want at least 2", msg.Metadata.Get(wmjetstream.MetaNumDelivered))
	}
	msg.Ack()
	testnats.WaitForNil(t, 5*time.Second, testnats.ConsumerSettled(js, "T", "c"))
}

func TestSubscribeAfterClose(t *testing.T) {
	_, js := testnats.Connect(t, testnats.RunServer(t))
	sub, err := wmjetstream.NewSubscriber(wmjetstream.SubscriberConfig{JS: js, Stream: "T", Durable: "x"})
	if err != nil {
		t.Fatal(err)
	}
	if err := sub.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := sub.Subscribe(context.Background(), "t"); !errors.Is(err, wmjetstream.ErrClosed) {
		t.Fatalf("err = %v, want ErrClosed", err)
	}
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		cfg  wmjetstream.SubscriberConfig
		want []string
	}{
		{"everything missing", wmjetstream.SubscriberConfig{}, []string{"JS: required", "Stream: required", "Durable: required"}},
		{"bad durable", wmjetstream.SubscriberConfig{Stream: "S", Durable: "a.b"}, []string{"Durable:"}},
		{"backoff longer than max deliver", wmjetstream.SubscriberConfig{Stream: "S", Durable: "d", MaxDeliver: 2,
			BackOff: []time.Duration{time.Second, 2 * time.Second}}, []string{"MaxDeliver: 2"}},
		{"in progress not below ack wait", wmjetstream.SubscriberConfig{Stream: "S", Durable: "d", AckWait: time.Second,
			InProgressEvery: time.Second}, []string{"InProgressEvery"}},
		{"negative workers and waiting", wmjetstream.SubscriberConfig{Stream: "S", Durable: "d", Workers: -1, MaxWaiting: -1},
			[]string{"Workers: -1", "MaxWaiting: -1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := wmjetstream.NewSubscriber(tt.cfg)
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}

// receive returns the next message of msgs, failing after 5s.
func receive(t *testing.T, msgs <-chan *message.Message) *message.Message {
	t.Helper()
	select {
	case m, ok := <-msgs:
		if !ok {
			t.Fatal("channel closed")
		}
		return m
	case <-time.After(5 * time.Second):
		t.Fatal("no message within 5s")
	}
	return nil
}

// With Workers and Key, a message of another key overtakes those waiting
// behind a slow one of the same key; the waiting ones are kept by
// InProgress (not redelivered though they wait longer than AckWait) and
// handed out one at a time, in order.
func TestKeyedMessagesWaitInOrderWithoutRedelivery(t *testing.T) {
	_, js := testnats.Connect(t, testnats.RunServer(t))
	ctx := context.Background()
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "T", Subjects: []string{"t.>"}}); err != nil {
		t.Fatal(err)
	}
	for _, m := range []struct{ subject, id string }{{"t.a", "a1"}, {"t.a", "a2"}, {"t.a", "a3"}, {"t.b", "b1"}} {
		if _, err := js.Publish(ctx, m.subject, []byte(m.id), jetstream.WithMsgID(m.id)); err != nil {
			t.Fatal(err)
		}
	}
	sub, err := wmjetstream.NewSubscriber(wmjetstream.SubscriberConfig{
		JS: js, Stream: "T", Durable: "keyed", AckWait: time.Second,
		Workers: 2, MaxWaiting: 4, Key: func(m jetstream.Msg) string { return m.Subject() },
	})
	if err != nil {
		t.Fatal(err)
	}
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	msgs, err := sub.Subscribe(sctx, "t")
	if err != nil {
		t.Fatal(err)
	}
	a1 := receive(t, msgs)
	if a1.UUID != "a1" {
		t.Fatalf("first message %s, want a1", a1.UUID)
	}
	if b1 := receive(t, msgs); b1.UUID != "b1" { // a2 and a3 wait for a1
		t.Fatalf("second message %s, want b1 (overtaking a2, a3)", b1.UUID)
	} else {
		b1.Ack()
	}
	time.Sleep(2500 * time.Millisecond) // a1's work: 2.5 × AckWait, a2 and a3 waiting
	select {
	case m := <-msgs:
		t.Fatalf("message %s handed out while a1 is in the handler", m.UUID)
	default:
	}
	a1.Ack()
	for _, want := range []string{"a2", "a3"} {
		m := receive(t, msgs)
		if m.UUID != want || m.Metadata.Get(wmjetstream.MetaNumDelivered) != "1" {
			t.Fatalf("got %s (delivery %s), want %s delivered once", m.UUID, m.Metadata.Get(wmjetstream.MetaNumDelivered), want)
		}
		m.Ack()
	}
	testnats.WaitForNil(t, 5*time.Second, testnats.ConsumerSettled(js, "T", "keyed"))
	c, err := js.Consumer(ctx, "T", "keyed")
	if err != nil {
		t.Fatal(err)
	}
	info, err := c.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.NumRedelivered != 0 {
		t.Errorf("%d messages redelivered, want 0", info.NumRedelivered)
	}
	if err := sub.Close(); err != nil {
		t.Fatal(err)
	}
}

// Close waits for the message in the handler and gives the messages
// fetched ahead back at once (not after AckWait).
func TestCloseHandsBackWaitingMessages(t *testing.T) {
	_, js := testnats.Connect(t, testnats.RunServer(t))
	setupStream(t, js, 3)
	cfg := wmjetstream.SubscriberConfig{JS: js, Stream: "T", Durable: "ahead", AckWait: time.Minute, MaxWaiting: 2}
	sub, err := wmjetstream.NewSubscriber(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	msgs, err := sub.Subscribe(ctx, "t")
	if err != nil {
		t.Fatal(err)
	}
	m1 := receive(t, msgs)
	testnats.WaitForNil(t, 5*time.Second, func() error { // m2 and m3 fetched ahead
		c, err := js.Consumer(ctx, "T", "ahead")
		if err != nil {
			return err
		}
		info, err := c.Info(ctx)
		if err != nil {
			return err
		}
		if info.NumAckPending != 3 {
			return fmt.Errorf("%d messages pending ack, want 3", info.NumAckPending)
		}
		return nil
	})
	closed := make(chan error, 1)
	go func() { closed <- sub.Close() }()
	select {
	case err := <-closed:
		t.Fatalf("Close returned %v while m1 was in the handler", err)
	case <-time.After(200 * time.Millisecond):
	}
	m1.Ack()
	if err := <-closed; err != nil {
		t.Fatal(err)
	}
	if m, ok := <-msgs; ok {
		t.Fatalf("message %s handed out after Close", m.UUID)
	}
	// m2 and m3 went back at once: a new subscriber gets them well within
	// the minute of AckWait.
	cfg.MaxWaiting = 0
	sub2, err := wmjetstream.NewSubscriber(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer sub2.Close()
	// A failure below must not leave a message in the handler for the
	// deferred Close to wait on: ending ctx hands it back.
	ctx2, cancel2 := context.WithCancel(ctx)
	defer cancel2()
	msgs2, err := sub2.Subscribe(ctx2, "t")
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{}
	for range 2 {
		m := receive(t, msgs2)
		got[m.UUID] = true
		m.Ack()
	}
	if !got["m-2"] || !got["m-3"] {
		t.Fatalf("got %v, want m-2 and m-3 (handed back at Close)", got)
	}
}
