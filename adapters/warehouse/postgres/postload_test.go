package postgres_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/windrow/windrow/adapters/objstore/local"
	"github.com/windrow/windrow/adapters/warehouse"
	"github.com/windrow/windrow/internal/testpg"
	"github.com/windrow/windrow/messages"
	"github.com/windrow/windrow/pipeline/records"
)

const salesPolicy = `name: sales
source: {subjects: [events.sales.>]}
schema:
  fields:
    - {name: sold_at, type: timestamp, required: true}
    - {name: store_id, type: string, required: true}
time: {field: sold_at}
window: {size: 24h}
load: {table: sales}
`

// TestPostLoadRunsWithThePolicysRightsOnly guards issue 12 item 16: a
// policy's post-load SQL wrote files, read /etc/hostname into a table and
// deleted other policies' ledger rows, after which a redelivered command
// loaded its rows a second time. Post-load SQL runs as the table's
// post-load role: each such statement must fail the load (ErrPostLoad) and
// leave no file, no rows and the ledger as it was, also when it tries to
// get the loader's rights back (RESET ROLE, SET ROLE, COMMIT) or to hide
// the ledger behind a temp table; a redelivery of an earlier batch must
// still be a duplicate; a legitimate post-load still runs.
func TestPostLoadRunsWithThePolicysRightsOnly(t *testing.T) {
	ctx := context.Background()
	schema, dsn := testpg.Schema(t)
	store, err := local.New(filepath.Join(t.TempDir(), "objects"))
	if err != nil {
		t.Fatal(err)
	}
	w := openWarehouse(t, dsn, store)
	dropPostLoadRoles(t, schema)
	admin := testpg.Connect(t)
	if _, err := admin.Exec(ctx, `SET search_path = "`+schema+`"`); err != nil {
		t.Fatal(err)
	}
	for _, stmt := range []string{`CREATE TABLE loot (s text)`, `CREATE TABLE daily (store_id text, n bigint)`} {
		if _, err := admin.Exec(ctx, stmt); err != nil {
			t.Fatal(err)
		}
	}
	p, l := policyLayout(t, salesPolicy)
	day := time.Date(2026, 11, 20, 0, 0, 0, 0, time.UTC)
	n := 0
	batch := func(policy string, part, rows int) warehouse.Batch {
		n++
		events := make([]string, rows)
		for i := range events {
			events[i] = fmt.Sprintf(`{"sold_at":"2026-11-20T01:%02d:00Z","store_id":"s%d"}`, i, i%3)
		}
		key := putEvents(t, store, l, fmt.Sprintf("b%03d.parquet", n), events...)
		return warehouse.Batch{ID: messages.BatchID(policy, day, 0, part), Policy: policy, PolicyVersion: 1, Table: "sales",
			Columns: records.Columns(p), Objects: []string{key}, WindowStart: day, WindowEnd: day.Add(24 * time.Hour), Part: part, Rows: int64(rows)}
	}
	// Another policy's batch, loaded first: its ledger row must survive.
	other := batch("other", 0, 10)
	if _, dup, err := w.Load(ctx, other); err != nil || dup {
		t.Fatalf("load other: dup=%v err=%v", dup, err)
	}

	var rnd [6]byte
	rand.Read(rnd[:])
	out := "/tmp/windrow-postload-" + hex.EncodeToString(rnd[:]) + ".csv" // a file of the server's
	del := `EXECUTE 'DELETE FROM _wind' || 'row_ledger'`                  // past the name check
	for i, tc := range []struct {
		name string
		stmt string
	}{
		{"copy to a file", `COPY (SELECT 1) TO '` + out + `'`},
		{"read a file", `UPDATE sales SET store_id = pg_read_file('/etc/hostname')`},
		{"read a file with COPY", `COPY loot FROM '/etc/hostname'`},
		{"delete the ledger", `DELETE FROM _windrow_ledger`},
		{"delete the ledger, quoted", `DELETE FROM "_WINDROW_LEDGER" WHERE policy <> $policy`},
		{"delete the ledger by dynamic SQL", `DO $$BEGIN ` + del + `; END$$`},
		{"RESET ROLE, then delete the ledger", `DO $$BEGIN RESET ROLE; ` + del + `; END$$`},
		{"SET ROLE, then delete the ledger", `DO $$BEGIN EXECUTE 'SET ROLE ' || session_user; ` + del + `; END$$`},
		{"set_config role, then delete the ledger", `DO $$BEGIN PERFORM set_config('role', session_user, false); ` + del + `; END$$`},
		{"end the load's transaction", `COMMIT`},
		{"change a table not granted", `INSERT INTO loot VALUES ('x')`},
		{"make the post-load function SECURITY INVOKER, then delete the ledger",
			`ALTER FUNCTION pg_temp.windrow_post_load(text, timestamptz, timestamptz, text, bigint) SECURITY INVOKER` + "\x00" + `DO $$BEGIN ` + del + `; END$$`},
	} {
		b := batch("sales", i+1, 5)
		b.PostLoad = strings.Split(tc.stmt, "\x00")
		_, _, err := w.Load(ctx, b)
		if !errors.Is(err, warehouse.ErrPostLoad) {
			t.Errorf("%s: load err = %v, want ErrPostLoad", tc.name, err)
		}
		t.Logf("%s: %v", tc.name, err)
		var wrote bool
		if err := admin.QueryRow(ctx, `SELECT pg_stat_file($1, true) IS NOT NULL`, out).Scan(&wrote); err != nil {
			t.Fatal(err)
		}
		if wrote {
			admin.Exec(ctx, `SELECT pg_catalog.pg_file_unlink($1)`, out) // adminpack, if there
			t.Fatalf("%s: post-load wrote the server's file %s", tc.name, out)
		}
		var loot, ledger, rows int64
		if err := admin.QueryRow(ctx, `SELECT (SELECT count(*) FROM loot), (SELECT count(*) FROM _windrow_ledger), (SELECT count(*) FROM sales)`).
			Scan(&loot, &ledger, &rows); err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if loot != 0 || ledger != 1 || rows != 10 {
			t.Fatalf("%s: %d rows read, %d ledger rows, %d rows in sales; want 0, 1 (the other policy's) and 10", tc.name, loot, ledger, rows)
		}
		// The other policy's batch, redelivered, is still a duplicate.
		if _, dup, err := w.Load(ctx, other); err != nil || !dup {
			t.Fatalf("%s: redelivered batch: dup=%v err=%v, want a duplicate", tc.name, dup, err)
		}
	}

	// A temp table named like the ledger (policy SQL may make temp tables)
	// must not take the ledger row: the batch, redelivered to another
	// loader (another session), is a duplicate.
	b := batch("sales", 50, 5)
	b.PostLoad = []string{`DO $$BEGIN EXECUTE format('CREATE TEMP TABLE %I (batch_id text, policy text, table_name text, ` +
		`window_start timestamptz, window_end timestamptz, revision int, part int, policy_version numeric, rows bigint, ` +
		`loaded_at timestamptz, replay int)', '_wind' || 'row_ledger'); END$$`}
	if _, dup, err := w.Load(ctx, b); err != nil || dup {
		t.Fatalf("temp table named like the ledger: dup=%v err=%v", dup, err)
	}
	if _, dup, err := openWarehouse(t, dsn, store).Load(ctx, b); err != nil || !dup {
		t.Errorf("temp table named like the ledger: redelivered batch: dup=%v err=%v, want a duplicate", dup, err)
	}
	var rows int64
	if err := admin.QueryRow(ctx, `SELECT count(*) FROM sales`).Scan(&rows); err != nil {
		t.Fatal(err)
	}
	if rows != 15 {
		t.Errorf("temp table named like the ledger: sales holds %d rows, want 15 (the batch once)", rows)
	}

	// A legitimate post-load still works: it reads the load's rows, changes
	// them and keeps a rollup table granted to the table's post-load role.
	if err := grantPostLoad(ctx, w, "sales", "daily"); err != nil {
		t.Fatal(err)
	}
	b = batch("sales", 99, 6)
	b.PostLoad = []string{
		`DELETE FROM daily`,
		`INSERT INTO daily SELECT store_id, count(*) FROM sales WHERE _window_start = $window_start GROUP BY store_id`,
		`UPDATE sales SET store_id = upper(store_id) WHERE _batch_id = '` + b.ID + `'`,
	}
	if _, dup, err := w.Load(ctx, b); err != nil || dup {
		t.Fatalf("legitimate post-load: dup=%v err=%v", dup, err)
	}
	var rolled, upper int64
	if err := admin.QueryRow(ctx, `SELECT (SELECT sum(n) FROM daily), (SELECT count(*) FROM sales WHERE store_id LIKE 'S%')`).Scan(&rolled, &upper); err != nil {
		t.Fatal(err)
	}
	if rolled != 21 || upper != 6 {
		t.Errorf("rollup counts %d rows, %d rows updated; want 21 and 6", rolled, upper)
	}

	// A role an operator granted the ledger is refused, also after the
	// warehouse made and checked it.
	role, err := w.PostLoadRole(ctx, "sales")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := admin.Exec(ctx, `GRANT DELETE ON _windrow_ledger TO `+role); err != nil {
		t.Fatal(err)
	}
	b = batch("sales", 100, 3)
	b.PostLoad = []string{`SELECT 1`}
	if _, _, err := w.Load(ctx, b); !errors.Is(err, warehouse.ErrPostLoadRefused) {
		t.Errorf("post-load role granted the ledger: load err = %v, want ErrPostLoadRefused", err)
	}
}

// grantPostLoad is postgres.Warehouse.GrantPostLoad.
func grantPostLoad(ctx context.Context, w interface {
	GrantPostLoad(context.Context, string, ...string) error
}, table string, tables ...string) error {
	return w.GrantPostLoad(ctx, table, tables...)
}
