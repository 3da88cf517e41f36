// Package testbin finds the external programs windrow's tests run (Jaeger,
// the S3 server): built once from their Go modules by tools/NAME/build.sh
// into the user cache, or named by an environment variable; and says
// whether a missing one fails a test or skips it.
package testbin

import (
	"fmt"
	"os"
	"path/filepath"
)

// Tool is one program the tests run.
type Tool struct {
	// Name is the program's name, and the cache directory's prefix.
	Name string
	// Version names the cache directory: NAME-VERSION.
	Version string
	// EnvBin is the variable that names a binary to use instead of the
	// cached one (WINDROW_JAEGER_BIN).
	EnvBin string
	// EnvRequire is the variable that, set to 1, makes a missing binary
	// fail the test (WINDROW_REQUIRE_JAEGER); CI set to anything does too.
	EnvRequire string
	// Hint tells how to get the binary; it is in every "not found" error.
	Hint string
}

// CachePath is where tools/NAME/build.sh puts the binary:
// ${WINDROW_TOOLS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/windrow}/NAME-VERSION/NAME.
func (t Tool) CachePath() (string, error) {
	cache := os.Getenv("WINDROW_TOOLS_CACHE")
	if cache == "" {
		base := os.Getenv("XDG_CACHE_HOME")
		if base == "" {
			home, err := os.UserHomeDir()
			if err != nil {
				return "", fmt.Errorf("%s cache path: %w", t.Name, err)
			}
			base = filepath.Join(home, ".cache")
		}
		cache = filepath.Join(base, "windrow")
	}
	return filepath.Join(cache, t.Name+"-"+t.Version, t.Name), nil
}

// Binary returns the binary to run: $EnvBin if set, else the cached one
// (CachePath) if it exists.
func (t Tool) Binary() (string, error) {
	if bin := os.Getenv(t.EnvBin); bin != "" {
		if err := isExecutable(bin); err != nil {
			return "", fmt.Errorf("%s=%s: %w; %s", t.EnvBin, bin, err, t.Hint)
		}
		return bin, nil
	}
	bin, err := t.CachePath()
	if err != nil {
		return "", fmt.Errorf("%w; %s", err, t.Hint)
	}
	if err := isExecutable(bin); err != nil {
		return "", fmt.Errorf("%s %s binary not found (%v): %s", t.Name, t.Version, err, t.Hint)
	}
	return bin, nil
}

// Required reports whether a missing binary fails the test instead of
// skipping it: under CI (CI not empty) or with $EnvRequire=1.
func (t Tool) Required() bool {
	return os.Getenv("CI") != "" || os.Getenv(t.EnvRequire) == "1"
}

func isExecutable(path string) error {
	fi, err := os.Stat(path)
	if err != nil {
		return err
	}
	if fi.IsDir() {
		return fmt.Errorf("%s is a directory", path)
	}
	if fi.Mode()&0o111 == 0 {
		return fmt.Errorf("%s is not executable", path)
	}
	return nil
}
