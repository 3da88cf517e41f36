package duckdbwh_test

import (
	"context"
	"database/sql"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/windrow/windrow/adapters/warehouse/duckdbwh"
	"github.com/windrow/windrow/messages"
)

// TestPostLoadCannotTouchFilesOrTheLedger guards issue 12 item 16: a
// policy's post-load SQL wrote files, read /etc/hostname into a table and
// deleted other policies' ledger rows, after which a redelivered command
// loaded its rows a second time. Each such statement must fail the load
// (ErrPostLoad) and leave no file, no rows and the ledger as it was; a
// redelivery of an earlier batch must still be a duplicate; a legitimate
// post-load still runs.
func TestPostLoadCannotTouchFilesOrTheLedger(t *testing.T) {
	w := open(t, time.Minute)
	ctx := context.Background()
	query(t, w, func(db *sql.DB) {
		if _, err := db.Exec(`CREATE TABLE loot (s VARCHAR)`); err != nil {
			t.Fatal(err)
		}
		if _, err := db.Exec(`CREATE TABLE daily (store_id VARCHAR, n BIGINT)`); err != nil {
			t.Fatal(err)
		}
	})
	// Another policy's batch, loaded first: its ledger row must survive.
	other := batch(writeParquet(t, w, sales(10, 1)), 0, 10)
	other.ID, other.Policy = messages.BatchID("other", t0, 0, 0), "other"
	if _, dup, err := w.Load(ctx, other); err != nil || dup {
		t.Fatalf("load other: dup=%v err=%v", dup, err)
	}

	out := filepath.Join(t.TempDir(), "x.csv")
	for i, tc := range []struct {
		name string
		stmt string
	}{
		{"copy to a file", `COPY (SELECT 1) TO '` + out + `'`},
		{"copy a table to a file", `COPY sales TO '` + out + `' (HEADER)`},
		{"read a file", `INSERT INTO loot SELECT content FROM read_text('/etc/hostname')`},
		{"read a file as csv", `INSERT INTO loot SELECT * FROM read_csv('/etc/hostname', header = false, columns = {'s': 'VARCHAR'})`},
		{"delete the ledger", `DELETE FROM _windrow_ledger`},
		{"delete the ledger, quoted and qualified", `DELETE FROM main."_WINDROW_LEDGER" WHERE policy <> $policy`},
		{"update the ledger", `UPDATE _windrow_ledger SET batch_id = batch_id || 'x'`},
		{"drop the ledger", `DROP TABLE _windrow_ledger`},
		{"two statements", `INSERT INTO daily VALUES ('a', 1); COPY (SELECT 1) TO '` + out + `'`},
		{"end the load's transaction", `COMMIT`},
		{"attach a file", `ATTACH '` + filepath.Join(t.TempDir(), "y.db") + `' AS y`},
		{"change a setting", `SET enable_external_access = true`},
		{"make a macro", `CREATE MACRO read_parquet(x) AS 1`},
		{"make a view", `CREATE VIEW v AS SELECT 1`},
		{"make a temp table that hides a table", `CREATE TEMP TABLE sales AS SELECT * FROM sales LIMIT 0`},
		{"make a temp table by its schema", `CREATE TABLE temp.sales AS SELECT * FROM sales LIMIT 0`},
	} {
		b := batch(writeParquet(t, w, sales(5, 100)), i+1, 5)
		b.PostLoad = []string{tc.stmt}
		_, _, err := w.Load(ctx, b)
		if !errors.Is(err, duckdbwh.ErrPostLoad) {
			t.Errorf("%s: load err = %v, want ErrPostLoad", tc.name, err)
		}
		t.Logf("%s: %v", tc.name, err)
		if _, err := os.Stat(out); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("%s: post-load wrote %s (stat: %v)", tc.name, out, err)
		}
		var loot, ledger int64
		query(t, w, func(db *sql.DB) {
			if err := db.QueryRow(`SELECT count(*) FROM loot`).Scan(&loot); err != nil {
				t.Fatal(err)
			}
			if err := db.QueryRow(`SELECT count(*) FROM _windrow_ledger`).Scan(&ledger); err != nil {
				t.Fatalf("%s: ledger: %v", tc.name, err)
			}
		})
		if loot != 0 || ledger != 1 {
			t.Fatalf("%s: %d rows read from files, %d ledger rows; want 0 and 1", tc.name, loot, ledger)
		}
		// The other policy's batch, redelivered, is still a duplicate.
		if _, dup, err := w.Load(ctx, other); err != nil || !dup {
			t.Fatalf("%s: redelivered batch: dup=%v err=%v, want a duplicate", tc.name, dup, err)
		}
		if n, _ := countAndSum(t, w, "sales"); n != 10 {
			t.Fatalf("%s: sales holds %d rows, want the other policy's 10", tc.name, n)
		}
	}

	// A legitimate post-load still works: it reads the load's rows and
	// writes the policy's own rollup table.
	b := batch(writeParquet(t, w, sales(5, 200)), 99, 5)
	b.PostLoad = []string{
		`/* a rollup */ CREATE TABLE IF NOT EXISTS rollup2 (n BIGINT)`,
		`DELETE FROM daily`,
		`INSERT INTO daily SELECT store_id, count(*) FROM sales WHERE _window_start = $window_start GROUP BY store_id`,
		`UPDATE sales SET amount = amount + 1 WHERE _batch_id = '` + b.ID + `'`,
	}
	if _, dup, err := w.Load(ctx, b); err != nil || dup {
		t.Fatalf("legitimate post-load: dup=%v err=%v", dup, err)
	}
	var n int64
	query(t, w, func(db *sql.DB) {
		if err := db.QueryRow(`SELECT sum(n) FROM daily`).Scan(&n); err != nil {
			t.Fatal(err)
		}
	})
	if n != 15 {
		t.Errorf("rollup counts %d rows, want 15", n)
	}
}
