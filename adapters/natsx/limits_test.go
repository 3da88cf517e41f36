package natsx

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

func TestSourceStreamWarnings(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  jetstream.StreamConfig
		want []string // a substring of each warning, in order
	}{
		{"no limits", jetstream.StreamConfig{Name: "S"}, nil},
		{"max msgs, discard old", jetstream.StreamConfig{Name: "S", MaxMsgs: 10}, []string{"stream S keeps at most 10 messages (discard old)"}},
		{"max msgs, discard new", jetstream.StreamConfig{Name: "S", MaxMsgs: 10, Discard: jetstream.DiscardNew}, nil},
		{"max bytes", jetstream.StreamConfig{Name: "S", MaxBytes: 1 << 20}, []string{"at most 1048576 bytes"}},
		{"per subject, discard new without per subject", jetstream.StreamConfig{Name: "S", MaxMsgsPerSubject: 1, Discard: jetstream.DiscardNew},
			[]string{"at most 1 messages per subject"}},
		{"per subject, discard new per subject", jetstream.StreamConfig{Name: "S", MaxMsgsPerSubject: 1, Discard: jetstream.DiscardNew, DiscardNewPerSubject: true}, nil},
		{"max age, discard new", jetstream.StreamConfig{Name: "S", MaxAge: time.Hour, Discard: jetstream.DiscardNew}, []string{"older than 1h0m0s"}},
		{"interest", jetstream.StreamConfig{Name: "S", Retention: jetstream.InterestPolicy}, []string{"interest retention"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := SourceStreamWarnings(tc.cfg)
			if len(got) != len(tc.want) {
				t.Fatalf("%d warnings %q; want %d", len(got), got, len(tc.want))
			}
			for i, w := range tc.want {
				if !strings.Contains(got[i], w) {
					t.Errorf("warning %q; want it to contain %q", got[i], w)
				}
			}
		})
	}
}

func TestCheckSourceStreamRefusesWorkQueues(t *testing.T) {
	for _, tc := range []struct {
		retention jetstream.RetentionPolicy
		wantErr   error
	}{
		{jetstream.LimitsPolicy, nil},
		{jetstream.InterestPolicy, nil},
		{jetstream.WorkQueuePolicy, ErrUnsafeSourceStream},
	} {
		if err := checkSourceStream(jetstream.StreamConfig{Name: "S", Retention: tc.retention}); !errors.Is(err, tc.wantErr) {
			t.Errorf("%s: err %v; want %v", tc.retention, err, tc.wantErr)
		}
	}
}

func TestRetainWarning(t *testing.T) {
	week := 7 * 24 * time.Hour
	for _, tc := range []struct {
		name   string
		maxAge time.Duration
		want   bool
	}{
		{"kept forever", 0, true},
		{"kept longer than retain", 30 * 24 * time.Hour, true},
		{"removed within retain", 24 * time.Hour, false},
		{"removed at retain", week, false},
	} {
		got := RetainWarning(jetstream.StreamConfig{Name: "EVENTS", MaxAge: tc.maxAge}, week)
		if (got != "") != tc.want || (tc.want && !strings.Contains(got, "window.retain")) {
			t.Errorf("%s: warning %q, want one: %v", tc.name, got, tc.want)
		}
	}
}
