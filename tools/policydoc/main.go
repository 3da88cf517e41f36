// Command policydoc writes docs/policy-reference.md, the reference of every
// window policy key, from the source of the windows package: the policy
// types and their doc comments, the defaults SetDefaults and the accessors
// apply, and the typed constants. Run it from anywhere in the module:
//
//	go run ./tools/policydoc          # write docs/policy-reference.md
//	go run ./tools/policydoc -check   # exit 1 if it is stale
//
// Notes on what it could not derive (a default that is not a constant, a key
// no example writes) go to standard error. The examples it shows are in
// examples.go; each must parse and validate with windows.ParsePolicy.
package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	_ "time/tzdata" // the examples name IANA zones; do not depend on the host's zoneinfo
)

const (
	modulePath = "github.com/windrow/windrow"
	outputFile = "docs/policy-reference.md"
	sourceDir  = "windows"
)

func main() {
	check := flag.Bool("check", false, "do not write: exit 1 if "+outputFile+" differs from what would be generated")
	quiet := flag.Bool("q", false, "do not print notes")
	flag.Parse()
	if err := run(*check, *quiet); err != nil {
		fmt.Fprintln(os.Stderr, "policydoc:", err)
		os.Exit(1)
	}
}

func run(check, quiet bool) error {
	root, err := moduleRoot()
	if err != nil {
		return err
	}
	out, notes, err := Generate(filepath.Join(root, sourceDir))
	if err != nil {
		return err
	}
	if !quiet {
		for _, n := range notes {
			fmt.Fprintln(os.Stderr, "policydoc: note:", n)
		}
	}
	path := filepath.Join(root, outputFile)
	if check {
		old, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if !bytes.Equal(old, out) {
			return fmt.Errorf("%s is stale: run `go run ./tools/policydoc`", outputFile)
		}
		return nil
	}
	if old, err := os.ReadFile(path); err == nil && bytes.Equal(old, out) {
		fmt.Fprintf(os.Stderr, "policydoc: %s is up to date\n", outputFile)
		return nil
	}
	if err := os.WriteFile(path, out, 0o644); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "policydoc: wrote %s\n", outputFile)
	return nil
}

// moduleRoot finds the directory of the go.mod of this module, from the
// working directory up.
func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if data, err := os.ReadFile(filepath.Join(dir, "go.mod")); err == nil {
			for _, line := range strings.Split(string(data), "\n") {
				if f := strings.Fields(line); len(f) == 2 && f[0] == "module" && strings.Trim(f[1], `"`) == modulePath {
					return dir, nil
				}
			}
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("not inside the " + modulePath + " module (no go.mod naming it above the working directory)")
		}
		dir = parent
	}
}
