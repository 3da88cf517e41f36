package loader_test

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/parquet-go/parquet-go"

	"github.com/windrow/windrow/internal/testnats"
	"github.com/windrow/windrow/messages"
	"github.com/windrow/windrow/services/loader"
)

// putFile writes a batch file of n rows at key and returns its SHA-256.
func (e *env) putFile(t *testing.T, key string, n int) string {
	t.Helper()
	rows := make([]record, n)
	for i := range rows {
		rows[i] = record{StoreID: "forged", Amount: 1000, SoldAt: t0.UnixMicro(), SourceSeq: int64(i + 1)}
	}
	var buf bytes.Buffer
	w := parquet.NewGenericWriter[record](&buf)
	if _, err := w.Write(rows); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	sha, err := e.store.Put(context.Background(), key, buf.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	return sha
}

// TestForgedLoadCommandsAreRefused guards against load commands that anyone
// able to publish to windrow.load.> can forge (issue 12, item 15): the
// loader takes table, mode and columns from the stored policy version a
// command names, requires every checksum, and loads only files under the
// policy's batch prefix of the command's window. Each forgery gets a failed
// result and loads nothing; the genuine command still loads.
func TestForgedLoadCommandsAreRefused(t *testing.T) {
	e := newEnv(t)
	wh := e.openWarehouse(t)

	genuine := e.putBatch(t, 0, 5, 5)

	// A policy nobody applied, loading its own file into another policy's table.
	invented := e.putBatch(t, 1, 5, 3)
	invented.Policy = "invented"
	invented.BatchID = messages.BatchID("invented", t0, 0, 1)
	invented.Object = fmt.Sprintf("batches/invented/date=%s/window=%s/r0/part-0001.parquet", t0.Format("2006-01-02"), messages.WindowID(t0))
	invented.SHA256 = e.putFile(t, invented.Object, 3)

	// The stored policy's version, another table.
	otherTable := e.putBatch(t, 2, 5, 3)
	otherTable.Table = "other_sales"

	// No checksum: nothing would vouch for the file.
	noSum := e.putBatch(t, 3, 5, 3)
	noSum.SHA256 = ""

	// Another policy's file, with its true checksum.
	foreign := e.putBatch(t, 4, 5, 3)
	foreign.Object = fmt.Sprintf("batches/other/date=%s/window=%s/r0/part-0000.parquet", t0.Format("2006-01-02"), messages.WindowID(t0))
	foreign.SHA256 = e.putFile(t, foreign.Object, 3)

	for _, c := range []*messages.LoadCommand{genuine, invented, otherTable, noSum, foreign} {
		e.publish(t, c, c.MsgID())
	}
	svc := e.start(t, wh)
	testnats.WaitForNil(t, 15*time.Second, e.resultCount(t, 5))
	testnats.WaitForNil(t, 5*time.Second, e.consumerSettled)

	got := map[string]messages.LoadResult{}
	for _, r := range e.results(t) {
		got[r.BatchID] = r
	}
	if r := got[genuine.BatchID]; r.Status != messages.LoadLoaded || r.Rows != 5 {
		t.Errorf("genuine %s: status %s rows %d (%s), want loaded with 5 rows", genuine.BatchID, r.Status, r.Rows, r.Error)
	}
	for _, f := range []struct {
		name string
		cmd  *messages.LoadCommand
		want error
	}{
		{"invented policy", invented, loader.ErrUnknownPolicy},
		{"other table", otherTable, loader.ErrPolicyMismatch},
		{"empty checksum", noSum, loader.ErrChecksumMissing},
		{"foreign object", foreign, loader.ErrForeignObject},
	} {
		r := got[f.cmd.BatchID]
		if r.Status != messages.LoadFailed || !strings.Contains(r.Error, f.want.Error()) {
			t.Errorf("%s (%s): status %s error %q, want failed mentioning %q", f.name, f.cmd.BatchID, r.Status, r.Error, f.want)
		}
	}

	db, release, err := wh.DB(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	var rows, ledger, tables int64
	if err := db.QueryRow(`SELECT count(*) FROM sales`).Scan(&rows); err != nil {
		t.Fatal(err)
	}
	if err := db.QueryRow(`SELECT count(*) FROM _windrow_ledger`).Scan(&ledger); err != nil {
		t.Fatal(err)
	}
	if err := db.QueryRow(`SELECT count(*) FROM information_schema.tables WHERE table_name = 'other_sales'`).Scan(&tables); err != nil {
		t.Fatal(err)
	}
	if rows != 5 || ledger != 1 || tables != 0 {
		t.Fatalf("warehouse: %d rows in sales, %d ledger rows, other_sales exists: %v; want 5, 1, false", rows, ledger, tables > 0)
	}
	if st := svc.Stats(); st != (loader.Stats{Loaded: 1, Failed: 4, Rows: 5}) {
		t.Fatalf("stats = %+v", st)
	}
}
