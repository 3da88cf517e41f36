package natsx

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/windrow/windrow/internal/testnats"
	"github.com/windrow/windrow/messages"
)

const (
	secretPassword = "pw-5ecr3t-value"
	secretToken    = "tok-5ecr3t-value"
)

func TestClientConfigStringHidesSecrets(t *testing.T) {
	tests := []struct {
		name string
		cfg  ClientConfig
		want []string // substrings that must appear
	}{
		{"none", ClientConfig{URL: "nats://h:4222"}, []string{"nats://h:4222", "auth: none"}},
		{"user and password", ClientConfig{URL: "nats://h:4222", User: "alice", Password: secretPassword}, []string{"user alice"}},
		{"token", ClientConfig{URL: "nats://h:4222", Token: secretToken}, []string{"auth: token"}},
		{"token and password", ClientConfig{URL: "nats://h:4222", User: "alice", Password: secretPassword, Token: secretToken}, []string{"auth: token"}},
		{"creds", ClientConfig{URL: "nats://h:4222", Creds: "/etc/nats/user.creds", Password: secretPassword}, []string{"creds file"}},
		{"nkey", ClientConfig{URL: "nats://h:4222", NKeySeed: "/etc/nats/seed.nk", Token: secretToken}, []string{"nkey"}},
		{"tls", ClientConfig{URL: "tls://h:4222", CAFile: "ca.pem", User: "bob", Password: secretPassword}, []string{"tls", "user bob"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := tt.cfg.String()
			for _, secret := range []string{secretPassword, secretToken} {
				if strings.Contains(s, secret) {
					t.Errorf("String() = %q shows a secret", s)
				}
			}
			for _, w := range tt.want {
				if !strings.Contains(s, w) {
					t.Errorf("String() = %q, want it to mention %q", s, w)
				}
			}
		})
	}
}

// TestClientConfigStringHidesURLCredentials: NATS URLs may carry the
// credentials themselves (nats://user:password@host, nats://token@host);
// --nats-url is where users put them.
func TestClientConfigStringHidesURLCredentials(t *testing.T) {
	for _, url := range []string{
		"nats://alice:" + secretPassword + "@127.0.0.1:1",
		"nats://" + secretToken + "@127.0.0.1:1",
	} {
		if s := (ClientConfig{URL: url}).String(); strings.Contains(s, secretPassword) || strings.Contains(s, secretToken) {
			t.Errorf("String() = %q shows a secret from the URL", s)
		}
		nc, err := Connect(ClientConfig{URL: url}, nil)
		if err == nil {
			nc.Close()
			t.Fatal("Connect to a closed port succeeded")
		}
		if strings.Contains(err.Error(), secretPassword) || strings.Contains(err.Error(), secretToken) {
			t.Errorf("Connect error %q shows a secret from the URL", err)
		}
	}
}

// TestConnectErrorHidesSecrets: a failed connection names the server but
// not the password or token.
func TestConnectErrorHidesSecrets(t *testing.T) {
	for _, cfg := range []ClientConfig{
		{URL: "nats://127.0.0.1:1", User: "alice", Password: secretPassword},
		{URL: "nats://127.0.0.1:1", Token: secretToken},
	} {
		nc, err := Connect(cfg, nil)
		if err == nil {
			nc.Close()
			t.Fatalf("Connect to a closed port succeeded")
		}
		if strings.Contains(err.Error(), secretPassword) || strings.Contains(err.Error(), secretToken) {
			t.Errorf("Connect error %q shows a secret", err)
		}
		if !strings.Contains(err.Error(), "127.0.0.1:1") {
			t.Errorf("Connect error %q does not name the server", err)
		}
	}
}

func TestConnectWithCredentials(t *testing.T) {
	srv := testnats.RunServer(t, func(o *server.Options) { o.Username, o.Password = "alice", secretPassword })
	nc, err := Connect(ClientConfig{URL: srv.ClientURL(), User: "alice", Password: secretPassword}, nil)
	if err != nil {
		t.Fatalf("Connect with the right password: %v", err)
	}
	nc.Close()
	if nc, err := Connect(ClientConfig{URL: srv.ClientURL(), User: "alice", Password: "wrong"}, nil); err == nil {
		nc.Close()
		t.Fatal("Connect with a wrong password succeeded")
	}
}

func TestWaitJetStreamNotEnabled(t *testing.T) {
	srv := testnats.RunServer(t, func(o *server.Options) { o.JetStream, o.StoreDir = false, "" })
	_, js := testnats.Connect(t, srv)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := WaitJetStream(ctx, js)
	if err == nil {
		t.Fatal("WaitJetStream succeeded on a server without JetStream")
	}
	if errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("WaitJetStream waited out its context instead of reporting: %v", err)
	}
	if !strings.Contains(err.Error(), "not enabled") {
		t.Errorf("error %q does not say JetStream is not enabled", err)
	}
}

func TestPublishIsIdempotent(t *testing.T) {
	ctx := context.Background()
	_, js := testnats.Connect(t, testnats.RunServer(t))
	if _, err := Provision(ctx, js); err != nil {
		t.Fatalf("Provision: %v", err)
	}
	start := time.Date(2026, 11, 24, 0, 0, 0, 0, time.UTC)
	reg := &messages.SegmentRegistered{
		Policy: "p", PolicyVersion: 1, WindowStart: start, WindowEnd: start.Add(24 * time.Hour),
		SegmentID: "seg1", Object: "staging/p/w/seg1.parquet", Rows: 3, Bytes: 10,
		MinSourceSeq: 1, MaxSourceSeq: 3, MinEventTime: start, MaxEventTime: start,
	}
	subject := messages.SegmentSubject("p", messages.WindowID(start))
	ack, err := Publish(ctx, js, subject, reg, map[string][]string{messages.HeaderPolicy: {"p"}})
	if err != nil {
		t.Fatalf("Publish: %v", err)
	}
	if ack.Duplicate {
		t.Fatal("first publish reported as duplicate")
	}
	again, err := Publish(ctx, js, subject, reg, nil)
	if err != nil {
		t.Fatalf("second Publish: %v", err)
	}
	if !again.Duplicate || again.Sequence != ack.Sequence {
		t.Fatalf("second publish: duplicate %v seq %d, want a duplicate of seq %d", again.Duplicate, again.Sequence, ack.Sequence)
	}

	s, err := js.Stream(ctx, messages.StreamSegments)
	if err != nil {
		t.Fatal(err)
	}
	msg, err := s.GetMsg(ctx, ack.Sequence)
	if err != nil {
		t.Fatalf("GetMsg: %v", err)
	}
	if got := msg.Header.Get(messages.HeaderType); got != messages.TypeSegmentRegistered {
		t.Errorf("type header = %q, want %q", got, messages.TypeSegmentRegistered)
	}
	if got := msg.Header.Get(messages.HeaderMsgID); got != reg.MsgID() {
		t.Errorf("msg id = %q, want %q", got, reg.MsgID())
	}
	if got := msg.Header.Get(messages.HeaderPolicy); got != "p" {
		t.Errorf("extra header = %q, want p", got)
	}
	var back messages.SegmentRegistered
	if err := messages.Decode(msg.Header.Get(messages.HeaderType), msg.Data, &back); err != nil || back.SegmentID != "seg1" {
		t.Errorf("stored message decodes to %+v, %v", back, err)
	}

	// An invalid message is not published.
	bad := *reg
	bad.Rows = 0
	if _, err := Publish(ctx, js, subject, &bad, nil); !errors.Is(err, messages.ErrInvalid) {
		t.Fatalf("Publish of an invalid message: err = %v, want messages.ErrInvalid", err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Msgs != 1 {
		t.Fatalf("stream holds %d messages, want 1", info.State.Msgs)
	}
}
