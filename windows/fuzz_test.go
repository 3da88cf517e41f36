package windows

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// fuzzFile is the file name ParsePolicy is given while fuzzing; every error
// must name it.
const fuzzFile = "policies/fuzzed.yaml"

// FuzzParsePolicy feeds arbitrary bytes to ParsePolicy as a policy file. The
// seeds in testdata/fuzz/FuzzParsePolicy are valid policies (YAML and JSON,
// every section, explicit zeros, anchors) and broken ones (syntax errors,
// several documents, unknown and duplicate keys, wrong shapes, bad values,
// alias bombs, deep nesting, invalid UTF-8). Properties:
//   - ParsePolicy never panics;
//   - it returns a policy or an error, never both or neither;
//   - an error matches ErrInvalidPolicy and consists only of *FieldError
//     values that name the file;
//   - a policy passes Validate, and its YAML and its JSON encodings (what
//     `windrow policy` tooling and the KV bucket carry) parse back to a policy
//     with the same encodings: parsing is a fixed point after one round.
func FuzzParsePolicy(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := ParsePolicy(fuzzFile, data)
		if err != nil {
			checkPolicyError(t, p, err)
			return
		}
		if p == nil {
			t.Fatal("ParsePolicy returned neither a policy nor an error")
		}
		if err := p.Validate(); err != nil {
			t.Fatalf("parsed policy does not validate: %v", err)
		}
		y, err := yaml.Marshal(p)
		if err != nil {
			t.Fatalf("marshal YAML: %v", err)
		}
		j, err := json.Marshal(p)
		if err != nil {
			t.Fatalf("marshal JSON: %v", err)
		}
		for _, form := range []struct {
			name string
			data []byte
		}{{"YAML", y}, {"JSON", j}} {
			q, err := ParsePolicy(fuzzFile, form.data)
			if err != nil {
				t.Fatalf("the %s form of a valid policy does not parse: %v\n%s", form.name, err, form.data)
			}
			if qy, err := yaml.Marshal(q); err != nil || !bytes.Equal(qy, y) {
				t.Fatalf("the %s form parses to a different policy (err %v):\n%s\nwant:\n%s", form.name, err, qy, y)
			}
			if qj, err := json.Marshal(q); err != nil || !bytes.Equal(qj, j) {
				t.Fatalf("the %s form parses to a different policy (err %v):\n%s\nwant:\n%s", form.name, err, qj, j)
			}
		}
	})
}

func checkPolicyError(t *testing.T, p *Policy, err error) {
	t.Helper()
	if p != nil {
		t.Fatalf("ParsePolicy returned a policy with error %v", err)
	}
	if !errors.Is(err, ErrInvalidPolicy) {
		t.Fatalf("error %v does not match ErrInvalidPolicy", err)
	}
	errs := []error{err}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		errs = j.Unwrap()
	}
	if len(errs) == 0 {
		t.Fatal("an error without problems")
	}
	for _, e := range errs {
		var fe *FieldError
		if !errors.As(e, &fe) {
			t.Fatalf("problem %v (%T) is not a *FieldError", e, e)
		}
		if fe.File != fuzzFile || !strings.HasPrefix(fe.Error(), fuzzFile) {
			t.Fatalf("problem %q does not name the file %s", fe.Error(), fuzzFile)
		}
	}
}

// TestFuzzParsePolicySeeds keeps the committed corpus meaningful: each
// seed's name says whether it must parse ("ok_…") or be refused
// ("invalid_…"), so a seed cannot drift into testing something else.
func TestFuzzParsePolicySeeds(t *testing.T) {
	dir := "testdata/fuzz/FuzzParsePolicy"
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) < 12 {
		t.Fatalf("%d seeds in %s, want at least 12", len(entries), dir)
	}
	for _, e := range entries {
		t.Run(e.Name(), func(t *testing.T) {
			data := readSeed(t, filepath.Join(dir, e.Name()))
			_, err := ParsePolicy(fuzzFile, data)
			switch {
			case strings.HasPrefix(e.Name(), "ok_"):
				if err != nil {
					t.Fatalf("ParsePolicy: %v", err)
				}
			case strings.HasPrefix(e.Name(), "invalid_"):
				if !errors.Is(err, ErrInvalidPolicy) {
					t.Fatalf("ParsePolicy error = %v, want %v", err, ErrInvalidPolicy)
				}
			default:
				t.Fatalf("seed name %q starts neither with ok_ nor with invalid_", e.Name())
			}
		})
	}
}

// readSeed reads a fuzz corpus file ("go test fuzz v1" format) holding one
// []byte value.
func readSeed(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	header, lit, _ := strings.Cut(strings.TrimSpace(string(b)), "\n")
	lit, okPrefix := strings.CutPrefix(lit, "[]byte(")
	lit, okSuffix := strings.CutSuffix(lit, ")")
	if header != "go test fuzz v1" || !okPrefix || !okSuffix {
		t.Fatalf("%s: not a corpus file with one []byte value", path)
	}
	s, err := strconv.Unquote(lit)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return []byte(s)
}
