package main

import (
	"context"
	"database/sql"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/windrow/windrow/app/stack"
)

// querier is what printQuery needs of a warehouse.
type querier interface {
	DB(ctx context.Context) (*sql.DB, func(), error)
}

func runQuery(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("query", flag.ContinueOnError)
	dataDir := fs.String("data-dir", "windrow-data", "directory holding warehouse.duckdb")
	file := fs.String("duckdb", "", "DuckDB file (default DATA_DIR/warehouse.duckdb)")
	whURL := fs.String("warehouse", "", "warehouse to query: a DuckDB file or postgres://USER@HOST:5432/DB?sslmode=disable (default: --duckdb)")
	wait := fs.Duration("wait", 30*time.Second, "how long to wait for a running loader to release the file")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() == 0 {
		return fmt.Errorf("usage: windrow query [--data-dir D] \"SELECT ...\"")
	}
	path := *whURL
	if path == "" {
		path = *file
		if path == "" {
			path = filepath.Join(*dataDir, "warehouse.duckdb")
		}
		if _, err := os.Stat(path); err != nil {
			return fmt.Errorf("warehouse %s: %w (run `windrow demo` or `windrow up` first)", path, err)
		}
	}
	// Read-only: a query never changes the warehouse, nor writes or reads
	// other files through it (COPY … TO, read_csv, pg_read_file).
	w, err := stack.OpenWarehouseReadOnly(ctx, path)
	if err != nil {
		return err
	}
	defer w.Close()
	deadline := time.Now().Add(*wait)
	for {
		err = printQuery(ctx, w, strings.Join(fs.Args(), " "))
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) || !strings.Contains(err.Error(), "lock") {
			return fmt.Errorf("query %s (read-only): %w", w, err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// printQuery runs q and prints the result as a table.
func printQuery(ctx context.Context, w querier, q string) error {
	db, release, err := w.DB(ctx)
	if err != nil {
		return err
	}
	defer release()
	rows, err := db.QueryContext(ctx, q)
	if err != nil {
		return err
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, strings.Join(cols, "\t"))
	vals := make([]any, len(cols))
	ptrs := make([]any, len(cols))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	n := 0
	for rows.Next() {
		if err := rows.Scan(ptrs...); err != nil {
			return err
		}
		parts := make([]string, len(cols))
		for i, v := range vals {
			switch x := v.(type) {
			case nil:
				parts[i] = "NULL"
			case time.Time:
				if x.Hour() == 0 && x.Minute() == 0 && x.Second() == 0 && x.Nanosecond() == 0 {
					parts[i] = x.Format("2006-01-02")
				} else {
					parts[i] = x.Format("2006-01-02 15:04:05.000000 MST")
				}
			case []byte:
				parts[i] = string(x)
			default:
				parts[i] = fmt.Sprint(x)
			}
		}
		fmt.Fprintln(tw, strings.Join(parts, "\t"))
		n++
	}
	tw.Flush()
	fmt.Printf("(%d rows)\n", n)
	return rows.Err()
}
