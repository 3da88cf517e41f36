package postgres_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"net/url"
	"strings"
	"testing"

	"github.com/windrow/windrow/adapters/warehouse"
	"github.com/windrow/windrow/adapters/warehouse/postgres"
	"github.com/windrow/windrow/internal/testpg"
)

// TestReadOnlyDropsServerFileRights guards Config.ReadOnly's role drop: a
// role that may write the server's files (the test server's superuser)
// reads as pg_read_all_data, a role without such rights stays itself, and a
// role with them that cannot drop fails to connect. Load is refused.
func TestReadOnlyDropsServerFileRights(t *testing.T) {
	ctx := context.Background()
	_, dsn := testpg.Schema(t)
	admin := testpg.Connect(t)
	var super bool
	if err := admin.QueryRow(ctx, "SELECT rolsuper FROM pg_roles WHERE rolname = current_user").Scan(&super); err != nil {
		t.Fatal(err)
	}
	if !super {
		// Under CI the server is the machine's, as its superuser: there the
		// test must run.
		if testpg.Required() {
			t.Fatal("the test server's user is not a superuser: cannot make the roles")
		}
		t.Skip("the test server's user is not a superuser: cannot make the roles")
	}
	role := func(grant string) string {
		var b [4]byte
		rand.Read(b[:])
		name := "windrow_test_" + hex.EncodeToString(b[:])
		if _, err := admin.Exec(ctx, "CREATE ROLE "+name+" LOGIN"); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			if _, err := admin.Exec(context.Background(), "DROP ROLE "+name); err != nil {
				t.Errorf("drop role %s: %v", name, err)
			}
		})
		if grant != "" {
			if _, err := admin.Exec(ctx, "GRANT "+grant+" TO "+name); err != nil {
				t.Fatal(err)
			}
		}
		return name
	}
	as := func(user string) string {
		u, err := url.Parse(dsn)
		if err != nil {
			t.Fatal(err)
		}
		u.User = url.User(user)
		return u.String()
	}
	currentUser := func(dsn string) (string, error) {
		w, err := postgres.Open(ctx, postgres.Config{URL: dsn, ReadOnly: true})
		if err != nil {
			return "", err
		}
		defer w.Close()
		db, release, err := w.DB(ctx)
		if err != nil {
			return "", err
		}
		defer release()
		var user string
		err = db.QueryRowContext(ctx, "SELECT current_user").Scan(&user)
		return user, err
	}

	if user, err := currentUser(dsn); err != nil || user != "pg_read_all_data" {
		t.Errorf("superuser, read-only: current_user = %q, %v; want pg_read_all_data", user, err)
	}
	plain := role("")
	if user, err := currentUser(as(plain)); err != nil || user != plain {
		t.Errorf("role without file rights, read-only: current_user = %q, %v; want %s", user, err, plain)
	}
	writer := role("pg_write_server_files")
	if user, err := currentUser(as(writer)); err == nil || !strings.Contains(err.Error(), "cannot drop to pg_read_all_data") {
		t.Errorf("member of pg_write_server_files, read-only: current_user = %q, %v; want an error that it cannot drop to pg_read_all_data", user, err)
	} else {
		t.Logf("member of pg_write_server_files, read-only: %v", err)
	}

	w, err := postgres.Open(ctx, postgres.Config{URL: dsn, ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if _, _, err := w.Load(ctx, warehouse.Batch{ID: "b1", Table: "t"}); !errors.Is(err, warehouse.ErrReadOnly) {
		t.Errorf("Load of a read-only warehouse = %v, want %v", err, warehouse.ErrReadOnly)
	}
}
