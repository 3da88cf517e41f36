package loader

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/message/router/middleware"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/windrow/windrow/adapters/objstore"
	"github.com/windrow/windrow/adapters/warehouse"
	"github.com/windrow/windrow/messages"
)

// publishJS records result publishes; no other JetStream call is expected.
type publishJS struct {
	jetstream.JetStream
	err  error
	msgs []*nats.Msg
}

func (j *publishJS) PublishMsg(_ context.Context, m *nats.Msg, _ ...jetstream.PublishOpt) (*jetstream.PubAck, error) {
	if j.err != nil {
		return nil, j.err
	}
	j.msgs = append(j.msgs, m)
	return &jetstream.PubAck{}, nil
}

type noWarehouse struct{}

func (noWarehouse) Load(context.Context, warehouse.Batch) (int64, bool, error) { return 0, false, nil }
func (noWarehouse) Close() error                                               { return nil }

// noObjects is an object store the poison middleware never reads.
type noObjects struct{ objstore.Store }

// noPolicies is a policy store the poison middleware never reads.
type noPolicies struct{ PolicyVersions }

// TestPoison pins the poison middleware: a permanent failure, panics
// included, is reported as a failed LoadResult and acked; a transient one, a
// failure during shutdown, or a failed report leaves the command to
// redelivery.
func TestPoison(t *testing.T) {
	start := time.Date(2026, 11, 20, 0, 0, 0, 0, time.UTC)
	cmd := &messages.LoadCommand{
		BatchID: messages.BatchID("sales", start, 0, 0), Policy: "sales", PolicyVersion: 1,
		WindowStart: start, WindowEnd: start.Add(time.Hour), Parts: 1, Table: "sales", Mode: "append",
		Object: "batches/part-0000.parquet", Columns: []messages.Column{{Name: "id", Type: "string"}},
	}
	payload, err := messages.Encode(cmd)
	if err != nil {
		t.Fatal(err)
	}
	permanent := errors.New("checksum mismatch")
	fail := func(err error) message.HandlerFunc {
		return func(*message.Message) ([]*message.Message, error) { return nil, err }
	}
	canceled, cancel := context.WithCancel(context.Background())
	cancel()
	tests := []struct {
		name       string
		payload    []byte
		ctx        context.Context
		h          message.HandlerFunc
		publishErr error
		wantErr    error  // nil: acked
		wantResult string // text the published failed result's error holds; "": none published
		wantFailed int64
	}{
		{"permanent is reported", payload, nil, fail(permanent), nil, nil, permanent.Error(), 1},
		{"panic is reported", payload, nil, middleware.Recoverer(func(*message.Message) ([]*message.Message, error) {
			panic("boom")
		}), nil, nil, "boom", 1},
		{"transient passes through", payload, nil, fail(fmt.Errorf("locked: %w", ErrTransient)), nil, ErrTransient, "", 0},
		{"shutdown passes through", payload, canceled, fail(permanent), nil, permanent, "", 0},
		{"unreadable is dropped", []byte("{not json"), nil, fail(permanent), nil, nil, "", 1},
		{"failed report is transient", payload, nil, fail(permanent), nats.ErrTimeout, ErrTransient, "", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			js := &publishJS{err: tt.publishErr}
			s, err := New(Config{JS: js, Warehouse: noWarehouse{}, Objects: noObjects{}, Policies: noPolicies{}, Instance: "test"})
			if err != nil {
				t.Fatal(err)
			}
			msg := message.NewMessage("m", tt.payload)
			if tt.ctx != nil {
				msg.SetContext(tt.ctx)
			}
			_, err = s.poison(tt.h)(msg)
			if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil) != (err == nil) {
				t.Errorf("err = %v, want %v", err, tt.wantErr)
			}
			if got := s.Stats().Failed; got != tt.wantFailed {
				t.Errorf("failed = %d, want %d", got, tt.wantFailed)
			}
			if tt.wantResult == "" {
				if len(js.msgs) != 0 {
					t.Errorf("published %d results, want none", len(js.msgs))
				}
				return
			}
			if len(js.msgs) != 1 {
				t.Fatalf("published %d results, want 1", len(js.msgs))
			}
			var res messages.LoadResult
			if err := messages.Decode(js.msgs[0].Header.Get(messages.HeaderType), js.msgs[0].Data, &res); err != nil {
				t.Fatal(err)
			}
			if js.msgs[0].Subject != messages.ResultSubject("sales") || res.BatchID != cmd.BatchID ||
				res.Status != messages.LoadFailed || !strings.Contains(res.Error, tt.wantResult) {
				t.Errorf("published %s: %+v, want failed result of %s mentioning %q", js.msgs[0].Subject, res, cmd.BatchID, tt.wantResult)
			}
		})
	}
}
