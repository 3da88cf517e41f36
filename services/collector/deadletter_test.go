package collector

import (
	"bytes"
	"testing"

	"github.com/nats-io/nats.go"

	"github.com/windrow/windrow/messages"
)

// TestFitPayload guards against a dead letter larger than the server allows:
// an event just under the limit plus windrow's headers would fail to publish
// and stop the collector on every redelivery.
func TestFitPayload(t *testing.T) {
	const limit = 1 << 20
	for _, tc := range []struct {
		name      string
		size      int
		truncated bool
	}{
		{"small", 100, false},
		{"just under the limit", limit - 100, true},
		{"far over", 3 * limit, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := nats.NewMsg("windrow.dlq.p")
			m.Data = bytes.Repeat([]byte("x"), tc.size)
			m.Header.Set(messages.HeaderReason, "malformed_json")
			m.Header.Set(messages.HeaderDetail, "detail")
			fitPayload(m, limit)
			if got := m.Header.Get(messages.HeaderTruncated) == "true"; got != tc.truncated {
				t.Fatalf("truncated = %v, want %v", got, tc.truncated)
			}
			size := len(m.Data) + 12
			for k, vs := range m.Header {
				for _, v := range vs {
					size += len(k) + len(v) + 4
				}
			}
			if size > limit {
				t.Fatalf("message is %d bytes with headers, limit %d", size, limit)
			}
			if tc.truncated && m.Header.Get(messages.HeaderOriginalSize) == "" {
				t.Fatal("no original size header on a cut payload")
			}
		})
	}
}
