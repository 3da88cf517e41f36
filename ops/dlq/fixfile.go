package dlq

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
)

// Fix file format: NDJSON, one dead letter per line,
//
//	{"dlq_seq": 42, "event": {"store_id": "s-1", "quantity": 2, ...}}
//
// dlq_seq is the dead letter's WINDROW_DLQ sequence and event the payload
// that replaces it, any JSON (an object, for the collector to accept it).
// Blank lines are skipped; other keys (the reason, detail and raw fields of
// ExportLine) are ignored. `windrow dlq ls --reason R --ndjson` writes this
// format; fix the events (jq, an editor) and drop the lines not to redrive.

// maxFixLine bounds one line of a fix file.
const maxFixLine = 16 << 20

// fixLine is one line of a fix file, as written by ExportLine.
type fixLine struct {
	DLQSeq uint64          `json:"dlq_seq"`
	Reason string          `json:"reason,omitempty"`
	Detail string          `json:"detail,omitempty"`
	Event  json.RawMessage `json:"event,omitempty"`
	// Raw is the payload of a dead letter that is not JSON, as a string.
	// Redrive does not read it: write the fixed event as "event".
	Raw *string `json:"raw,omitempty"`
}

// ReadFixes reads a fix file: payloads by dead-letter sequence, compacted.
// It reports every bad line at once (up to 20), by line number.
func ReadFixes(r io.Reader) (map[uint64][]byte, error) {
	out := map[uint64][]byte{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), maxFixLine)
	var errs []error
	bad := func(n int, format string, args ...any) {
		if len(errs) < 20 {
			errs = append(errs, fmt.Errorf("%w: line %d: %s", ErrFixFile, n, fmt.Sprintf(format, args...)))
		}
	}
	for n := 1; sc.Scan(); n++ {
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 {
			continue
		}
		var l fixLine
		if err := json.Unmarshal(line, &l); err != nil {
			bad(n, "%v (want {\"dlq_seq\": N, \"event\": {...}})", err)
			continue
		}
		switch {
		case l.DLQSeq == 0:
			bad(n, "dlq_seq is missing or 0")
		case len(l.Event) == 0 || string(l.Event) == "null":
			if l.Raw != nil {
				bad(n, "dlq_seq %d has only the raw payload; write the fixed event as \"event\", or delete the line", l.DLQSeq)
			} else {
				bad(n, "dlq_seq %d has no \"event\"", l.DLQSeq)
			}
		case out[l.DLQSeq] != nil:
			bad(n, "dlq_seq %d appears twice", l.DLQSeq)
		default:
			var buf bytes.Buffer
			if err := json.Compact(&buf, l.Event); err != nil {
				bad(n, "event: %v", err)
				continue
			}
			out[l.DLQSeq] = buf.Bytes()
		}
	}
	if err := sc.Err(); err != nil {
		errs = append(errs, fmt.Errorf("%w: %w", ErrFixFile, err))
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%w: no records", ErrFixFile)
	}
	return out, nil
}

// ExportLine renders a dead letter (read with its payload) as a fix-file
// line, without the newline: the payload as "event" when it is JSON, else as
// the string "raw", which must be turned into an "event" before a redrive.
func ExportLine(e *Entry) ([]byte, error) {
	l := fixLine{DLQSeq: e.Seq, Reason: e.Reason, Detail: e.Detail}
	if json.Valid(e.Data) {
		var buf bytes.Buffer
		if err := json.Compact(&buf, e.Data); err != nil {
			return nil, err
		}
		l.Event = buf.Bytes()
	} else {
		raw := string(e.Data)
		l.Raw = &raw
	}
	return json.Marshal(l)
}
