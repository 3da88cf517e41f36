package compactor

import (
	"context"
	"fmt"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/windrow/windrow/adapters/telemetry"
	"github.com/windrow/windrow/messages"
)

// runAttrs are the attributes that name a window run.
func runAttrs(policy string, st *messages.WindowState) []attribute.KeyValue {
	return []attribute.KeyValue{
		attribute.String("windrow.policy", policy),
		attribute.Int64("windrow.policy_version", int64(st.PolicyVersion)),
		attribute.String("windrow.window", st.ID()),
		attribute.String("windrow.window_start", st.WindowStart.UTC().Format(time.RFC3339)),
		attribute.String("windrow.window_end", st.WindowEnd.UTC().Format(time.RFC3339)),
		attribute.Int("windrow.revision", st.Revision),
	}
}

// endSpan records err, if any, on span and ends it.
func endSpan(span trace.Span, err error) {
	if err != nil {
		span.RecordError(err)
		span.SetStatus(codes.Error, err.Error())
	}
	span.End()
}

// emitRun records the root span of a window run that ended (LOADED, or
// FAILED with cause), with the ids its children already use: it starts when
// the window's first event was staged and ends now.
func (s *Service) emitRun(ctx context.Context, st *messages.WindowState, cause error) {
	sc, ok := telemetry.ParseTraceParent(st.TraceParent)
	if !ok || !s.cfg.Tracing.Enabled() {
		return
	}
	start := st.FirstStagedAt
	if start.IsZero() {
		start = st.SealedAt
	}
	attrs := append(runAttrs(s.cfg.Policy.Name, st),
		attribute.String("windrow.status", string(st.Status)),
		attribute.Int64("windrow.segments", st.Segments),
		attribute.Int64("windrow.staged_rows", st.StagedRows),
		attribute.Int64("windrow.rows", st.Rows),
		attribute.Int64("windrow.duplicates", st.Duplicates),
		attribute.Int("windrow.batches", st.BatchCount),
		attribute.Int64("windrow.loaded_rows", st.LoadedRows),
		attribute.String("windrow.table", s.cfg.Policy.Load.Table),
	)
	if !st.SealedAt.IsZero() {
		attrs = append(attrs, attribute.String("windrow.sealed_at", st.SealedAt.UTC().Format(time.RFC3339Nano)))
	}
	sla := st.SLA(s.cfg.Policy.SLA.Deadline.D(), s.cfg.Now())
	if sla != messages.SLANone {
		attrs = append(attrs, attribute.String("windrow.sla.deadline", s.cfg.Policy.SLA.Deadline.D().String()),
			attribute.String("windrow.sla.due", st.WindowEnd.Add(s.cfg.Policy.SLA.Deadline.D()).UTC().Format(time.RFC3339)),
			attribute.String("windrow.sla", sla))
	}
	rctx := telemetry.WithIDs(context.WithoutCancel(ctx), sc)
	_, root := s.tracer.Start(rctx, "window "+s.cfg.Policy.Name+" "+st.ID(), trace.WithNewRoot(),
		trace.WithTimestamp(start), trace.WithAttributes(attrs...))
	if sla == messages.SLAMissed || sla == messages.SLAOverdue {
		root.AddEvent("sla missed", trace.WithAttributes(attribute.String("windrow.sla", sla)))
	}
	endSpan(root, cause)
}

// markOverdue records, once per window and compactor, a "window.sla_missed"
// span in the run of a window that is past its SLA deadline and not loaded:
// the miss shows on the trace while the window is still under way.
func (s *Service) markOverdue(ctx context.Context, st *messages.WindowState) {
	d := s.cfg.Policy.SLA.Deadline.D()
	if st.Status == messages.StatusLoaded {
		delete(s.slaMarked, st.ID())
		return
	}
	if st.SLA(d, s.cfg.Now()) != messages.SLAOverdue || s.slaMarked[st.ID()] {
		return
	}
	s.slaMarked[st.ID()] = true
	due := st.WindowEnd.Add(d)
	if !st.FirstStagedAt.IsZero() && st.FirstStagedAt.After(due) {
		// A backfill: the window's data arrived after its deadline had
		// passed; nothing in the pipeline is slow. Still marked and counted.
		s.log.Debug("backfilled window past its SLA deadline", "window", st.ID(), "status", st.Status, "due", due.UTC())
	} else {
		s.log.Warn("window past its SLA deadline and not loaded", "window", st.ID(), "status", st.Status, "due", due.UTC())
	}
	if st.TraceParent == "" {
		return
	}
	_, span := s.tracer.Start(telemetry.RunContext(ctx, st.TraceParent), "window.sla_missed", trace.WithAttributes(append(runAttrs(s.cfg.Policy.Name, st),
		attribute.String("windrow.status", string(st.Status)), attribute.String("windrow.sla.deadline", d.String()),
		attribute.String("windrow.sla.due", due.UTC().Format(time.RFC3339)))...))
	span.SetStatus(codes.Error, fmt.Sprintf("not loaded %s after its deadline", s.cfg.Now().Sub(due).Round(time.Second)))
	span.End()
}
