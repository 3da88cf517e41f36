package lifecycle

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// TestDefaultInstanceDiffersPerProcess: two processes on one host (this
// test and a copy of it) get different default names, and one process
// always the same. With the host name as the default, two compactors on
// one host both thought they owned a window's lease.
func TestDefaultInstanceDiffersPerProcess(t *testing.T) {
	if os.Getenv("WINDROW_PRINT_INSTANCE") == "1" {
		os.Stdout.WriteString("instance=" + DefaultInstance() + "\n")
		return
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestDefaultInstanceDiffersPerProcess$")
	cmd.Env = append(os.Environ(), "WINDROW_PRINT_INSTANCE=1")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("child: %v\n%s", err, out)
	}
	_, other, ok := strings.Cut(string(out), "instance=")
	if !ok {
		t.Fatalf("child printed no instance: %q", out)
	}
	other, _, _ = strings.Cut(other, "\n")
	mine := DefaultInstance()
	if mine == other {
		t.Fatalf("two processes on one host both default to instance %q", mine)
	}
	if again := DefaultInstance(); again != mine {
		t.Fatalf("one process: %q, then %q", mine, again)
	}
	host, _ := os.Hostname()
	if host != "" && !strings.HasPrefix(mine, host+"-") {
		t.Errorf("instance %q does not start with the host name %q", mine, host)
	}
}
