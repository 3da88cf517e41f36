package messages

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

var (
	t0 = time.Date(2026, 11, 20, 0, 0, 0, 0, time.UTC)
	t1 = t0.Add(24 * time.Hour)
)

func columns() []Column {
	return []Column{
		{Name: "store_id", Type: "string", Required: true},
		{Name: "amount", Type: "float64", Required: true},
		{Name: "sold_at", Type: "timestamp", Required: true},
	}
}

// goldens are one fixed instance of every contract type.
func goldens() map[string]Message {
	return map[string]Message{
		"segment_registered": &SegmentRegistered{
			Policy: "daily_store_sales", PolicyVersion: 3, WindowStart: t0, WindowEnd: t1,
			SegmentID: "3kD9fQ", Object: "staging/daily_store_sales/20261120T000000Z/3kD9fQ.parquet",
			Rows: 5000, Bytes: 81234, MinSourceSeq: 17, MaxSourceSeq: 5016,
			MinEventTime: t0.Add(time.Hour), MaxEventTime: t0.Add(2 * time.Hour),
			Collector: "collector-1", CreatedAt: t1.Add(time.Minute),
		},
		"window_sealed": &WindowSealed{
			Policy: "daily_store_sales", PolicyVersion: 3, WindowStart: t0, WindowEnd: t1,
			Watermark: t1.Add(31 * time.Minute), Segments: 12, CutoffSeq: 991, SealedAt: t1.Add(40 * time.Minute),
		},
		"load_command": &LoadCommand{
			BatchID: BatchID("daily_store_sales", t0, 0, 1), Policy: "daily_store_sales", PolicyVersion: 3,
			WindowStart: t0, WindowEnd: t1, Part: 1, Parts: 2, Table: "sales", Mode: "append",
			Object: "batches/daily_store_sales/date=2026-11-20/window=20261120T000000Z/r0/part-0001.parquet",
			Rows:   120000, Bytes: 2345678, SHA256: "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
			Columns: columns(), Manifest: "batches/daily_store_sales/date=2026-11-20/window=20261120T000000Z/r0/manifest.json",
			CreatedAt: t1.Add(41 * time.Minute),
		},
		"load_result": &LoadResult{
			BatchID: BatchID("daily_store_sales", t0, 0, 1), Policy: "daily_store_sales",
			WindowStart: t0, WindowEnd: t1, Part: 1, Parts: 2, Table: "sales", Status: LoadLoaded,
			Rows: 120000, BatchRows: 120000, Duration: 850 * time.Millisecond, LoadedAt: t1.Add(42 * time.Minute), Loader: "loader-1",
		},
		"batch_manifest": &BatchManifest{
			Policy: "daily_store_sales", PolicyVersion: 3, WindowStart: t0, WindowEnd: t1, Table: "sales",
			Columns: columns(), Rows: 7, Duplicates: 2, Segments: 3, CreatedAt: t1.Add(41 * time.Minute),
			Batches: []BatchRef{
				{BatchID: BatchID("daily_store_sales", t0, 0, 0), Object: "p0.parquet", Rows: 4, Bytes: 900, SHA256: "aa",
					Keys: []string{"store_id=001/", "store_id=002/"}},
				{BatchID: BatchID("daily_store_sales", t0, 0, 1), Object: "store_id=003/p1.parquet", Rows: 3, Bytes: 800, SHA256: "bb",
					Key: "store_id=003/"},
			},
		},
	}
}

func TestGoldenEncodings(t *testing.T) {
	for name, m := range goldens() {
		t.Run(name, func(t *testing.T) {
			data, err := Encode(m)
			if err != nil {
				t.Fatalf("Encode: %v", err)
			}
			var pretty bytes.Buffer
			if err := json.Indent(&pretty, data, "", "  "); err != nil {
				t.Fatal(err)
			}
			pretty.WriteByte('\n')
			path := filepath.Join("testdata", name+".json")
			if *update {
				if err := os.WriteFile(path, pretty.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("read golden (run go test ./messages -update to create it): %v", err)
			}
			if !bytes.Equal(pretty.Bytes(), want) {
				t.Fatalf("wire format of %s changed:\n got: %s\nwant: %s", m.Type(), pretty.Bytes(), want)
			}
			// The golden decodes back to an equal value.
			back := newOfType(t, m.Type())
			if err := Decode(m.Type(), want, back); err != nil {
				t.Fatalf("Decode golden: %v", err)
			}
			again, _ := Encode(back)
			if !bytes.Equal(again, data) {
				t.Fatalf("round trip differs:\n got: %s\nwant: %s", again, data)
			}
		})
	}
}

func newOfType(t *testing.T, typ string) Message {
	switch typ {
	case TypeSegmentRegistered:
		return &SegmentRegistered{}
	case TypeWindowSealed:
		return &WindowSealed{}
	case TypeLoadCommand:
		return &LoadCommand{}
	case TypeLoadResult:
		return &LoadResult{}
	case TypeBatchManifest:
		return &BatchManifest{}
	}
	t.Fatalf("no type %s", typ)
	return nil
}

func TestValidateRejects(t *testing.T) {
	g := goldens()
	badCmd := *g["load_command"].(*LoadCommand)
	badCmd.BatchID = "made-up"
	badPart := *g["load_command"].(*LoadCommand)
	badPart.Part = 2
	emptyWindow := *g["segment_registered"].(*SegmentRegistered)
	emptyWindow.WindowEnd = emptyWindow.WindowStart
	reversed := *g["segment_registered"].(*SegmentRegistered)
	reversed.MinSourceSeq, reversed.MaxSourceSeq = 10, 9
	badStatus := *g["load_result"].(*LoadResult)
	badStatus.Status = "done"
	failedNoErr := *g["load_result"].(*LoadResult)
	failedNoErr.Status = LoadFailed
	badManifest := *g["batch_manifest"].(*BatchManifest)
	badManifest.Rows = 8

	tests := []struct {
		name string
		m    Message
		want string
	}{
		{"batch id not deterministic", &badCmd, "batch_id"},
		{"part out of range", &badPart, "part 2 of 2"},
		{"empty window", &emptyWindow, "is empty"},
		{"reversed seq range", &reversed, "source seq range"},
		{"unknown status", &badStatus, "status"},
		{"failed without error", &failedNoErr, "error: empty"},
		{"manifest rows mismatch", &badManifest, "add up to 7"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Encode(tt.m)
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("Encode error = %v, want ErrInvalid", err)
			}
			if !bytes.Contains([]byte(err.Error()), []byte(tt.want)) {
				t.Fatalf("error %q does not mention %q", err, tt.want)
			}
		})
	}
}

func TestDecodeRejectsOtherType(t *testing.T) {
	data, err := Encode(goldens()["load_result"])
	if err != nil {
		t.Fatal(err)
	}
	err = Decode(TypeLoadResult, data, &LoadCommand{})
	if !errors.Is(err, ErrUnknownType) {
		t.Fatalf("err = %v, want ErrUnknownType", err)
	}
	err = Decode("windrow.LoadResult.v9", data, &LoadResult{})
	if !errors.Is(err, ErrUnknownType) {
		t.Fatalf("err = %v, want ErrUnknownType", err)
	}
}

func TestSplitWindowKey(t *testing.T) {
	p, w, ok := SplitWindowKey(WindowKey("daily_store_sales", "20261120T000000Z"))
	if !ok || p != "daily_store_sales" || w != "20261120T000000Z" {
		t.Fatalf("SplitWindowKey = %q %q %v", p, w, ok)
	}
	for _, bad := range []string{"", "nodot", ".x", "x."} {
		if _, _, ok := SplitWindowKey(bad); ok {
			t.Errorf("SplitWindowKey(%q) ok, want not ok", bad)
		}
	}
}

func ExampleBatchID() {
	start := time.Date(2026, 11, 20, 0, 0, 0, 0, time.UTC)
	fmt.Println(BatchID("daily_store_sales", start, 0, 3))
	// Output: daily_store_sales-20261120T000000Z-r0-p0003
}

func TestWindowSLA(t *testing.T) {
	end := time.Date(2026, 5, 1, 2, 0, 0, 0, time.UTC)
	due := end.Add(30 * time.Minute)
	for _, tc := range []struct {
		name     string
		st       WindowState
		deadline time.Duration
		now      time.Time
		want     string
	}{
		{"no deadline", WindowState{WindowEnd: end, Status: StatusOpen}, 0, due.Add(time.Hour), SLANone},
		{"open, not due", WindowState{WindowEnd: end, Status: StatusOpen}, 30 * time.Minute, due, SLAOK},
		{"open, past due", WindowState{WindowEnd: end, Status: StatusOpen}, 30 * time.Minute, due.Add(time.Second), SLAOverdue},
		{"compacted, past due", WindowState{WindowEnd: end, Status: StatusCompacted}, 30 * time.Minute, due.Add(time.Second), SLAOverdue},
		{"failed, past due", WindowState{WindowEnd: end, Status: StatusFailed}, 30 * time.Minute, due.Add(time.Second), SLAOverdue},
		{"loaded in time", WindowState{WindowEnd: end, Status: StatusLoaded, LoadedAt: due}, 30 * time.Minute, due.Add(time.Hour), SLAOK},
		{"loaded late", WindowState{WindowEnd: end, Status: StatusLoaded, LoadedAt: due.Add(time.Second)}, 30 * time.Minute, due.Add(time.Hour), SLAMissed},
	} {
		if got := tc.st.SLA(tc.deadline, tc.now); got != tc.want {
			t.Errorf("%s: SLA = %q, want %q", tc.name, got, tc.want)
		}
	}
}

// TestPartSet: a bit per part, any number of parts; the JSON of 10,000
// loaded parts stays under 2 KB.
func TestPartSet(t *testing.T) {
	var s PartSet
	if s.Has(0) || s.Has(-1) || s.Count() != 0 {
		t.Fatalf("empty set: has 0 %v, count %d", s.Has(0), s.Count())
	}
	for _, i := range []int{0, 7, 8, 9999, 8} {
		s = s.With(i)
	}
	for i := range 10_000 {
		if want := i == 0 || i == 7 || i == 8 || i == 9999; s.Has(i) != want {
			t.Fatalf("has %d = %v, want %v", i, s.Has(i), want)
		}
	}
	if s.Count() != 4 {
		t.Fatalf("count %d, want 4", s.Count())
	}
	for i := range 10_000 {
		s = s.With(i)
	}
	st := WindowState{LoadedParts: s, BatchCount: 10_000}
	data, err := json.Marshal(st)
	if err != nil {
		t.Fatal(err)
	}
	var back WindowState
	if err := json.Unmarshal(data, &back); err != nil {
		t.Fatal(err)
	}
	if back.LoadedParts.Count() != 10_000 || !back.AllLoaded() || len(data) > 2500 {
		t.Fatalf("round trip: %d parts, all loaded %v, %d bytes of JSON", back.LoadedParts.Count(), back.AllLoaded(), len(data))
	}
}
