//go:build unix

package stack_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/windrow/windrow/app/stack"
)

// TestDataDirLock: a second process (here a second Open) with an embedded
// server on a data directory in use is refused, naming the owner's PID;
// once the first closes, the directory is free again.
func TestDataDirLock(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	dir := t.TempDir()
	open := func() (*stack.Stack, error) {
		return stack.Open(ctx, stack.Config{DataDir: dir, Embedded: true, NATSPort: -1, Roles: []string{},
			Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	}
	first, err := open()
	if err != nil {
		t.Fatal(err)
	}
	second, err := open()
	if err == nil {
		second.Close()
		first.Close()
		t.Fatal("a second embedded server was started on a data directory in use")
	}
	if !errors.Is(err, stack.ErrDataDirInUse) || !strings.Contains(err.Error(), "PID "+strconv.Itoa(os.Getpid())) {
		t.Errorf("second open: %v; want ErrDataDirInUse naming PID %d", err, os.Getpid())
	}
	if err := first.Close(); err != nil {
		t.Fatal(err)
	}
	again, err := open()
	if err != nil {
		t.Fatalf("open after the first closed: %v", err)
	}
	again.Close()
}
