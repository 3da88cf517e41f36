// Package testpg gives tests a PostgreSQL schema of their own on the
// project's server (127.0.0.1:5432, database test, trust auth; .ci/run starts
// it), or the server in WINDROW_POSTGRES_URL.
//
// Schema creates a fresh schema for one test, returns a URL whose
// search_path is that schema (so unqualified tables land in it), and drops
// the schema, with everything in it, when the test ends. Without a reachable
// server, Schema skips the test with the reason, or fails it under CI (CI
// non-empty) or WINDROW_REQUIRE_POSTGRES=1.
package testpg

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// DefaultURL is the project's test server.
const DefaultURL = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"

// URL is the server tests use: WINDROW_POSTGRES_URL, or DefaultURL.
func URL() string {
	if u := os.Getenv("WINDROW_POSTGRES_URL"); u != "" {
		return u
	}
	return DefaultURL
}

// Required reports whether an unreachable server fails the test instead of
// skipping it: under CI (CI non-empty) or with WINDROW_REQUIRE_POSTGRES=1.
func Required() bool {
	return os.Getenv("CI") != "" || os.Getenv("WINDROW_REQUIRE_POSTGRES") == "1"
}

// Connect connects to URL(), or skips (fails when Required) the test. The
// connection is closed when the test ends.
func Connect(t testing.TB) *pgx.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, URL())
	if err == nil {
		err = conn.Ping(ctx)
	}
	if err != nil {
		msg := "PostgreSQL not reachable at " + redacted(URL()) + " (start it, or set WINDROW_POSTGRES_URL): " + err.Error()
		if Required() {
			t.Fatal(msg)
		}
		t.Skip(msg + "; set WINDROW_REQUIRE_POSTGRES=1 to fail instead")
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

// Schema creates a schema for t and returns it and a URL of the server
// whose search_path is it. The schema is dropped (CASCADE) when t ends.
func Schema(t testing.TB) (schema, dsn string) {
	t.Helper()
	conn := Connect(t)
	var b [6]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	schema = "windrow_test_" + hex.EncodeToString(b[:])
	ctx := context.Background()
	if _, err := conn.Exec(ctx, `CREATE SCHEMA "`+schema+`"`); err != nil {
		t.Fatalf("create schema %s: %v", schema, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := conn.Exec(ctx, `DROP SCHEMA "`+schema+`" CASCADE`); err != nil {
			t.Errorf("drop schema %s: %v", schema, err)
		}
	})
	u, err := url.Parse(URL())
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return schema, u.String()
}

func redacted(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "(unparsable URL)"
	}
	return u.Redacted()
}
