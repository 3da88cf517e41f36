package main

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/windrow/windrow/adapters/objstore"
	"github.com/windrow/windrow/app/stack"
	"github.com/windrow/windrow/internal/testdisk"
)

// TestStatusShowsDiskFull guards issue 12 (item 8): `windrow status` shows
// at the top the full disk a windrow process on this host reports on its
// /readyz (its object store on a real tmpfs filled to the last byte), until
// a write succeeds again; an address where nothing listens shows nothing.
func TestStatusShowsDiskFull(t *testing.T) {
	disk := testdisk.New(t, 1<<20)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s, err := stack.Open(ctx, stack.Config{DataDir: t.TempDir(), Objects: disk.Dir + "/objects", Embedded: true, NATSPort: -1, Roles: []string{},
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), MetricsAddr: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	nobody := ln.Addr().String()
	ln.Close()
	addrs := nobody + "," + strings.TrimPrefix(s.MetricsURL(), "http://")

	if got := diskFullReports(ctx, addrs); len(got) != 0 {
		t.Fatalf("disk full reports before the disk filled: %q", got)
	}
	disk.Fill(t)
	if _, err := s.Store.Put(ctx, "staging/p/seg", make([]byte, 64<<10)); !errors.Is(err, objstore.ErrDiskFull) {
		t.Fatalf("Put on a full disk: %v, want objstore.ErrDiskFull", err)
	}
	got := diskFullReports(ctx, addrs)
	if len(got) != 1 || !strings.HasPrefix(got[0], "DISK FULL (windrow at "+strings.TrimPrefix(s.MetricsURL(), "http://")+"): objects since ") ||
		!strings.Contains(got[0], disk.Dir) {
		t.Fatalf("disk full reports on a full disk: %q, want one line naming the objects store and its directory", got)
	}
	t.Logf("status shows: %s", got[0])
	disk.Free(t)
	if _, err := s.Store.Put(ctx, "staging/p/seg", make([]byte, 64<<10)); err != nil {
		t.Fatal(err)
	}
	if got := diskFullReports(ctx, addrs); len(got) != 0 {
		t.Fatalf("disk full reports after space was freed: %q", got)
	}
	if got := diskFullReports(ctx, "off"); got != nil {
		t.Errorf("--metrics off: %q", got)
	}
}
