package loader

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/windrow/windrow/adapters/objstore"
	"github.com/windrow/windrow/adapters/telemetry"
	"github.com/windrow/windrow/adapters/warehouse"
	"github.com/windrow/windrow/adapters/wmjetstream"
	"github.com/windrow/windrow/messages"
)

// runContext is the message's context with the trace context of its
// headers (watermill metadata) as remote parent.
func runContext(msg *message.Message) context.Context {
	return propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{}).
		Extract(msg.Context(), propagation.MapCarrier(msg.Metadata))
}

// endSpan records err, if any, on span and ends it.
func endSpan(span trace.Span, err error) {
	if err != nil {
		span.RecordError(err)
		span.SetStatus(codes.Error, err.Error())
	}
	span.End()
}

// handle loads one LoadCommand: decode, check it against the stored
// policy (authorize), verify the checksum of each batch object, load them,
// publish the result. Returning nil acks the command.
//
// Each attempt is a "loader.load" span, a child of the compactor's span
// that published the command (its traceparent header); a retried load shows
// as several, the failed ones with their error.
func (s *Service) handle(msg *message.Message) (err error) {
	start := time.Now()
	ctx, span := s.tracer.Start(runContext(msg), "loader.load", trace.WithSpanKind(trace.SpanKindConsumer),
		trace.WithAttributes(attribute.String("windrow.loader", s.cfg.Instance),
			attribute.String("messaging.message.id", msg.UUID),
			attribute.String("windrow.delivery", msg.Metadata.Get(wmjetstream.MetaNumDelivered))))
	defer func() { endSpan(span, err) }()

	var cmd messages.LoadCommand
	var outcome messages.LoadStatus // set once the result is published
	var loadedRows int64
	if s.cfg.OnLoad != nil {
		defer func() { s.cfg.OnLoad(cmd.Policy, onLoadStatus(outcome, err), time.Since(start), loadedRows) }()
	}
	if err := messages.Decode(msg.Metadata.Get(messages.HeaderType), msg.Payload, &cmd); err != nil {
		return fmt.Errorf("load command %s: %w", msg.UUID, err)
	}
	span.SetAttributes(attribute.String("windrow.policy", cmd.Policy), attribute.Int64("windrow.policy_version", int64(cmd.PolicyVersion)),
		attribute.String("windrow.window", messages.WindowID(cmd.WindowStart)), attribute.Int("windrow.revision", cmd.Revision),
		attribute.String("windrow.batch_id", cmd.BatchID), attribute.Int("windrow.part", cmd.Part), attribute.Int("windrow.parts", cmd.Parts),
		attribute.String("windrow.table", cmd.Table), attribute.String("windrow.object", cmd.Object), attribute.Int64("windrow.rows", cmd.Rows),
		attribute.Int64("windrow.bytes", cmd.Bytes))
	// One file, or every batch of the window for a whole-window load.
	refs := []messages.BatchRef{{BatchID: cmd.BatchID, Object: cmd.Object, Rows: cmd.Rows, SHA256: cmd.SHA256}}
	if cmd.WholeWindow() {
		if refs, err = s.manifestBatches(ctx, &cmd); err != nil {
			return fmt.Errorf("load command %s: %w", cmd.BatchID, err)
		}
	}
	// Where and how to load comes from the stored policy, not the message.
	t, err := s.authorize(ctx, &cmd, refs)
	if err != nil {
		return fmt.Errorf("load command %s: %w", cmd.BatchID, err)
	}
	vctx, verify := s.tracer.Start(ctx, "loader.verify_checksum", trace.WithAttributes(attribute.Int("windrow.files", len(refs))))
	for _, ref := range refs {
		if err := verifySHA256(vctx, s.cfg.Objects, ref.Object, ref.SHA256); err != nil {
			err = fmt.Errorf("batch %s: %w", ref.BatchID, err)
			endSpan(verify, err)
			return err
		}
	}
	verify.End()
	wctx, tx := s.tracer.Start(ctx, "loader.warehouse_transaction", trace.WithSpanKind(trace.SpanKindClient),
		trace.WithAttributes(attribute.String("db.operation.name", "load batch"), attribute.String("db.collection.name", t.table)))
	b := batchOf(&cmd, t)
	rows, dup, err := s.cfg.Warehouse.Load(wctx, b)
	if err == nil {
		tx.SetAttributes(attribute.Int64("windrow.rows", rows), attribute.Bool("windrow.duplicate", dup))
	}
	endSpan(tx, err)
	if err != nil {
		return fmt.Errorf("load batch %s into %s: %w", cmd.BatchID, cmd.Table, err)
	}
	status := messages.LoadLoaded
	if dup {
		status = messages.LoadDuplicate
	}
	res := &messages.LoadResult{
		BatchID: cmd.BatchID, Policy: cmd.Policy, WindowStart: cmd.WindowStart, WindowEnd: cmd.WindowEnd,
		Revision: cmd.Revision, Part: cmd.Part, Parts: cmd.Parts, Table: cmd.Table,
		Status: status, Rows: rows, BatchRows: cmd.Rows, Duration: time.Since(start), LoadedAt: time.Now().UTC(), Loader: s.cfg.Instance, Replay: cmd.Replay,
	}
	if err := s.publishResult(ctx, res); err != nil {
		return err
	}
	if dup {
		s.duplicates.Add(1)
	} else {
		s.loaded.Add(1)
		s.rows.Add(rows)
		loadedRows = rows
	}
	outcome = status
	span.SetAttributes(attribute.String("windrow.load_status", string(status)))
	s.log.InfoContext(ctx, "batch loaded", "batch", cmd.BatchID, "status", status, "rows", rows, "table", cmd.Table, "duration", res.Duration)
	return nil
}

// onLoadStatus is the status Config.OnLoad reports for an attempt.
func onLoadStatus(outcome messages.LoadStatus, err error) string {
	if err != nil || outcome == "" { // outcome is unset after a panic too
		return "error"
	}
	return string(outcome)
}

// batchOf is the warehouse's view of cmd: table, mode, merge key, time
// column, post-load statements, columns and objects as authorize checked
// them against the stored policy; the objects are the command's object, or
// every batch object of a whole-window load.
func batchOf(cmd *messages.LoadCommand, t *trusted) warehouse.Batch {
	return warehouse.Batch{
		ID: cmd.BatchID, Policy: cmd.Policy, PolicyVersion: cmd.PolicyVersion, Table: t.table,
		Columns: t.columns, Objects: t.objects, WindowStart: cmd.WindowStart, WindowEnd: cmd.WindowEnd,
		Revision: cmd.Revision, Part: cmd.Part, Rows: cmd.Rows,
		Mode: t.mode, MergeKey: t.mergeKey, TimeColumn: t.timeColumn, PostLoad: t.postLoad, Replay: cmd.Replay,
	}
}

// publishResult publishes res to its policy's result subject and waits for
// the stream's ack. The msg id makes a repeated publish of the same outcome
// one stored message (within the stream's duplicate window). Failures are
// transient.
func (s *Service) publishResult(ctx context.Context, res *messages.LoadResult) error {
	data, err := messages.Encode(res)
	if err != nil {
		return fmt.Errorf("encode result of %s: %w", res.BatchID, err)
	}
	m := &nats.Msg{Subject: messages.ResultSubject(res.Policy), Data: data, Header: nats.Header{}}
	m.Header.Set(messages.HeaderType, res.Type())
	m.Header.Set(messages.HeaderPolicy, res.Policy)
	m.Header.Set(messages.HeaderWindow, messages.WindowID(res.WindowStart))
	telemetry.Inject(ctx, m.Header)
	if _, err := s.cfg.JS.PublishMsg(ctx, m, jetstream.WithMsgID(res.MsgID())); err != nil {
		return fmt.Errorf("publish result %s: %w: %w", res.MsgID(), ErrTransient, err)
	}
	return nil
}

// verifySHA256 streams the object key from store and compares its SHA-256
// with want (hex). An empty want wraps ErrChecksumMissing, a missing object
// ErrFileMissing, a mismatch ErrChecksum, an invalid key is an error (all
// permanent); other I/O errors are transient.
func verifySHA256(ctx context.Context, store objstore.Store, key, want string) error {
	if want == "" {
		return fmt.Errorf("%w: %s", ErrChecksumMissing, key)
	}
	obj, err := store.Open(ctx, key)
	switch {
	case errors.Is(err, objstore.ErrNotFound):
		return fmt.Errorf("%w: %s", ErrFileMissing, key)
	case err != nil && (errors.Is(err, objstore.ErrInvalidKey) || ctx.Err() != nil):
		return fmt.Errorf("open object %q: %w", key, err)
	case err != nil:
		return fmt.Errorf("open object %q: %w: %w", key, ErrTransient, err)
	}
	defer obj.Close()
	err = objstore.Verify(ctx, key, obj, want)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, objstore.ErrChecksum):
		return fmt.Errorf("%w: %w", ErrChecksum, err)
	case ctx.Err() != nil:
		return fmt.Errorf("checksum %s: %w", key, err)
	}
	return fmt.Errorf("read %s: %w: %w", key, ErrTransient, err)
}
