package loader

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/windrow/windrow/adapters/policystore"
	"github.com/windrow/windrow/messages"
	"github.com/windrow/windrow/pipeline/records"
	"github.com/windrow/windrow/windows"
)

// fakeVersions is a policy store of stored entries, counting its reads.
type fakeVersions struct {
	entries []*policystore.Entry
	err     error // returned by every read when set
	reads   int
}

func (f *fakeVersions) At(_ context.Context, name string, version uint64) (*policystore.Entry, error) {
	f.reads++
	if f.err != nil {
		return nil, f.err
	}
	for _, e := range f.entries {
		if e.Name == name && e.Version == version {
			return e, nil
		}
	}
	return nil, fmt.Errorf("%w: %s v%d", policystore.ErrVersionNotFound, name, version)
}

func (f *fakeVersions) History(_ context.Context, name string) ([]*policystore.Entry, error) {
	f.reads++
	if f.err != nil {
		return nil, f.err
	}
	var out []*policystore.Entry
	for _, e := range f.entries {
		if e.Name == name {
			out = append(out, e)
		}
	}
	if out == nil {
		return nil, fmt.Errorf("%w: %s", policystore.ErrNotFound, name)
	}
	return out, nil
}

const trustPolicy = `name: sales
source: {stream: SALES, subjects: [sales.>]}
schema:
  fields:
    - {name: id, type: string, required: true}
    - {name: at, type: timestamp, required: true}
time: {field: at}
window: {size: 1h, timezone: Europe/Berlin}
load: {table: sales, mode: %s%s}
`

func storedPolicy(t *testing.T, version uint64, mode, extra string) *policystore.Entry {
	t.Helper()
	src := fmt.Sprintf(trustPolicy, mode, extra)
	p, err := windows.ParsePolicy("sales.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	return &policystore.Entry{Name: "sales", Version: version, Data: []byte(src), Policy: p}
}

// TestAuthorize pins what the loader trusts of a load command: everything
// where and how to load comes from a stored policy version, every file has a
// checksum and lies under the policy's batch prefix of the window.
// cmdRefs is a load command with the batch files it loads (a whole-window
// load's come from its manifest).
type cmdRefs struct {
	*messages.LoadCommand
	Batches []messages.BatchRef
}

func TestAuthorize(t *testing.T) {
	start := time.Date(2026, 11, 20, 23, 0, 0, 0, time.UTC) // 2026-11-21 in Berlin
	prefix := "batches/sales/date=2026-11-21/window=" + messages.WindowID(start) + "/r1/"
	v1 := storedPolicy(t, 1, "merge", ", merge_key: [id], post_load: [\"ANALYZE sales\"]")
	v2 := storedPolicy(t, 2, "merge", ", merge_key: [id], post_load: [\"ANALYZE sales\"]")
	v2.Policy.Schema.Fields = append(v2.Policy.Schema.Fields, windows.Field{Name: "note", Type: "string"})
	deleted := &policystore.Entry{Name: "sales", Version: 3, Deleted: true}
	genuine := func() *cmdRefs {
		return &cmdRefs{LoadCommand: &messages.LoadCommand{
			BatchID: messages.WindowLoadID("sales", start, 1), Policy: "sales", PolicyVersion: 1,
			WindowStart: start, WindowEnd: start.Add(time.Hour), Revision: 1, Parts: 2, Table: "sales", Mode: "merge",
			Columns: records.Columns(v1.Policy), MergeKey: []string{"id"}, TimeColumn: "at", PostLoad: []string{"ANALYZE sales"},
			Manifest: prefix + "manifest.json",
		}, Batches: []messages.BatchRef{
			{BatchID: "b0", Object: prefix + "part-0000.parquet", SHA256: "aa"},
			{BatchID: "b1", Object: prefix + "k=1/part-0001.parquet", SHA256: "bb"},
		}}
	}
	tests := []struct {
		name          string
		edit          func(*cmdRefs)
		storeErr      error
		wantErr       error // nil: authorized
		wantTransient bool
	}{
		{"genuine", func(*cmdRefs) {}, nil, nil, false},
		{"columns of a later version", func(c *cmdRefs) { c.Columns = records.Columns(v2.Policy) }, nil, nil, false},
		{"invented policy", func(c *cmdRefs) { c.Policy = "invented" }, nil, ErrUnknownPolicy, false},
		{"unknown version", func(c *cmdRefs) { c.PolicyVersion = 9 }, nil, ErrUnknownPolicy, false},
		{"deleted version", func(c *cmdRefs) { c.PolicyVersion = 3 }, nil, ErrUnknownPolicy, false},
		{"store down", func(*cmdRefs) {}, errors.New("no responders"), ErrTransient, true},
		{"other table", func(c *cmdRefs) { c.Table = "users" }, nil, ErrPolicyMismatch, false},
		{"other mode", func(c *cmdRefs) { c.Mode = "replace"; c.MergeKey = nil; c.TimeColumn = "" }, nil, ErrPolicyMismatch, false},
		{"other merge key", func(c *cmdRefs) { c.MergeKey = []string{"at"} }, nil, ErrPolicyMismatch, false},
		{"other time column", func(c *cmdRefs) { c.TimeColumn = "" }, nil, ErrPolicyMismatch, false},
		{"forged post-load", func(c *cmdRefs) { c.PostLoad = []string{"COPY sales TO '/etc/x'"} }, nil, ErrPolicyMismatch, false},
		{"forged column", func(c *cmdRefs) {
			c.Columns = append(records.Columns(v1.Policy), messages.Column{Name: "x", Type: "string"})
		}, nil, ErrPolicyMismatch, false},
		{"empty checksum in a batch ref", func(c *cmdRefs) { c.Batches[1].SHA256 = "" }, nil, ErrChecksumMissing, false},
		{"another policy's file", func(c *cmdRefs) {
			c.Batches[0].Object = "batches/users/date=2026-11-21/window=" + messages.WindowID(start) + "/r1/part-0000.parquet"
		}, nil, ErrForeignObject, false},
		{"another window's file", func(c *cmdRefs) {
			c.Batches[0].Object = "batches/sales/date=2026-11-21/window=" + messages.WindowID(start.Add(time.Hour)) + "/r1/part-0000.parquet"
		}, nil, ErrForeignObject, false},
		{"another revision's file", func(c *cmdRefs) {
			c.Batches[0].Object = "batches/sales/date=2026-11-21/window=" + messages.WindowID(start) + "/r0/part-0000.parquet"
		}, nil, ErrForeignObject, false},
		{"climbs out of the prefix", func(c *cmdRefs) { c.Batches[0].Object = prefix + "../../../../users/x.parquet" }, nil, ErrForeignObject, false},
		{"the prefix itself", func(c *cmdRefs) { c.Batches[0].Object = prefix }, nil, ErrForeignObject, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := &fakeVersions{entries: []*policystore.Entry{v1, v2, deleted}, err: tt.storeErr}
			s := &Service{versions: newVersionCache(src)}
			cmd := genuine()
			tt.edit(cmd)
			got, err := s.authorize(context.Background(), cmd.LoadCommand, cmd.Batches)
			if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil) != (err == nil) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if IsTransient(err) != tt.wantTransient {
				t.Fatalf("err = %v: transient %v, want %v", err, IsTransient(err), tt.wantTransient)
			}
			if err != nil {
				return
			}
			if got.table != "sales" || got.mode != "merge" || len(got.objects) != 2 || got.objects[1] != cmd.Batches[1].Object {
				t.Fatalf("authorized %+v", got)
			}
			// Stored versions are cached: checking the command again reads nothing.
			reads := src.reads
			if _, err := s.authorize(context.Background(), cmd.LoadCommand, cmd.Batches); err != nil || src.reads != reads {
				t.Fatalf("second check: err %v, %d store reads, want none", err, src.reads-reads)
			}
		})
	}
}
