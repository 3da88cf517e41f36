package deploy_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// unitFile is a parsed systemd unit: section → key → values, in file order
// (a key may be given more than once).
type unitFile map[string]map[string][]string

// parseUnit reads the INI-like format of systemd.syntax(7): [Section]
// headers, Key=Value lines, # and ; comments, and lines continued by a
// trailing backslash.
func parseUnit(path string) (unitFile, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	u := unitFile{}
	section := ""
	var pending string
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if pending == "" && (line == "" || line[0] == '#' || line[0] == ';') {
			continue
		}
		if strings.HasSuffix(line, `\`) {
			pending += strings.TrimSuffix(line, `\`) + " "
			continue
		}
		line, pending = pending+line, ""
		if strings.HasPrefix(line, "[") && strings.HasSuffix(line, "]") {
			section = line[1 : len(line)-1]
			if u[section] == nil {
				u[section] = map[string][]string{}
			}
			continue
		}
		key, val, ok := strings.Cut(line, "=")
		if !ok || section == "" {
			return nil, errors.New(path + ":" + strconv.Itoa(n) + ": not a Key=Value line in a section: " + line)
		}
		key = strings.TrimSpace(key)
		u[section][key] = append(u[section][key], strings.TrimSpace(val))
	}
	return u, sc.Err()
}

// get is the last value of key in section ("" if it is not set), as
// systemd takes it for a key that holds one value.
func (u unitFile) get(section, key string) string {
	vals := u[section][key]
	if len(vals) == 0 {
		return ""
	}
	return vals[len(vals)-1]
}

// windrowRoles are the commands the instance name of windrow@.service may be.
var windrowRoles = []string{"collector", "compactor", "loader", "up"}

// TestSystemdUnitRunsRealCommands: deploy/systemd/windrow@.service has the
// settings an operator relies on, and for every role its ExecStart is a
// windrow command that exists with flags that command defines, checked
// against a freshly built binary's `windrow ROLE -h`.
func TestSystemdUnitRunsRealCommands(t *testing.T) {
	u, err := parseUnit("systemd/windrow@.service")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []struct{ section, key, value string }{
		{"Service", "User", "windrow"},
		{"Service", "EnvironmentFile", "-/etc/windrow/%i.env"},
		{"Service", "StateDirectory", "windrow/%i"},
		{"Service", "Restart", "on-failure"},
		{"Service", "KillSignal", "SIGTERM"},
		{"Service", "NoNewPrivileges", "true"},
		{"Service", "ProtectSystem", "strict"},
		{"Service", "ReadWritePaths", "/var/lib/windrow/%i"},
		{"Service", "PrivateTmp", "true"},
		{"Service", "ProtectHome", "true"},
		{"Install", "WantedBy", "multi-user.target"},
	} {
		if got := u.get(want.section, want.key); got != want.value {
			t.Errorf("[%s] %s=%q, want %q", want.section, want.key, got, want.value)
		}
	}
	if n, err := strconv.Atoi(u.get("Service", "LimitNOFILE")); err != nil || n < 4096 {
		t.Errorf("[Service] LimitNOFILE=%q, want a number of at least 4096", u.get("Service", "LimitNOFILE"))
	}
	// A graceful stop takes up to 30s (roles) + 30s (spans of up's three
	// roles) + 35s (NATS drain); systemd must not SIGKILL before that.
	if d, err := time.ParseDuration(u.get("Service", "TimeoutStopSec")); err != nil || d < 95*time.Second {
		t.Errorf("[Service] TimeoutStopSec=%q, want a duration with unit of at least 95s", u.get("Service", "TimeoutStopSec"))
	}

	execStart := strings.Fields(u.get("Service", "ExecStart"))
	if len(execStart) < 2 || execStart[0] != "/usr/local/bin/windrow" || execStart[1] != "%i" {
		t.Fatalf("[Service] ExecStart=%q, want /usr/local/bin/windrow %%i ...", u.get("Service", "ExecStart"))
	}
	bin := buildWindrow(t)
	verifyUnit(t, bin)
	for _, role := range windrowRoles {
		t.Run(role, func(t *testing.T) {
			args := expandExec(execStart[1:], role)
			flags := commandFlags(t, bin, role)
			checkArgs(t, args[1:], flags)
			if got, want := flagValue(args, "data-dir"), "/var/lib/windrow/"+role; got != want {
				t.Errorf("--data-dir %q, want the state directory %q", got, want)
			}
			if t.Failed() {
				return
			}
			// The flags also parse (values of the right type): the command
			// stops at the trailing -h, before it reads the config file.
			ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
			defer cancel()
			out, err := exec.CommandContext(ctx, bin, append(args, "-h")...).CombinedOutput()
			if err != nil {
				t.Errorf("windrow %s -h: %v\n%s", strings.Join(args, " "), err, out)
			}
		})
	}
}

// verifyUnit runs systemd-analyze verify, which knows every directive, on
// a copy of the unit whose ExecStart runs bin, for each role; any warning
// (an unknown key, a key in the wrong section, a bad value) fails the test.
// Without systemd-analyze it only logs that it was skipped.
func verifyUnit(t *testing.T, bin string) {
	t.Helper()
	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Log("no systemd-analyze: unit directives not verified")
		return
	}
	data, err := os.ReadFile("systemd/windrow@.service")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	unit := strings.ReplaceAll(string(data), "/usr/local/bin/windrow", bin)
	if err := os.WriteFile(filepath.Join(dir, "windrow@.service"), []byte(unit), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, role := range windrowRoles {
		ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
		out, err := exec.CommandContext(ctx, analyze, "verify", "--man=no", filepath.Join(dir, "windrow@"+role+".service")).CombinedOutput()
		cancel()
		if err != nil || len(bytes.TrimSpace(out)) > 0 {
			t.Errorf("systemd-analyze verify windrow@%s.service: %v\n%s", role, err, out)
		}
	}
}

// expandExec expands ExecStart's words as systemd would for the instance
// role: %i is the instance, %H the host name, and $WINDROW_FLAGS, unset by
// the unit, expands to no words.
func expandExec(words []string, role string) []string {
	var out []string
	for _, w := range words {
		if w == "$WINDROW_FLAGS" {
			continue
		}
		w = strings.ReplaceAll(w, "%i", role)
		w = strings.ReplaceAll(w, "%H", "host1")
		out = append(out, w)
	}
	return out
}

// checkArgs reports every word of args that is not a flag of flags (name →
// whether it takes a value) or that flag's value: a misspelt flag, or a
// positional argument, which the role commands ignore.
func checkArgs(t *testing.T, args []string, flags map[string]bool) {
	t.Helper()
	for i := 0; i < len(args); i++ {
		a := args[i]
		if !strings.HasPrefix(a, "-") {
			t.Errorf("%q: not a flag (the command ignores positional arguments)", a)
			continue
		}
		name, _, hasValue := strings.Cut(strings.TrimLeft(a, "-"), "=")
		takesValue, ok := flags[name]
		if !ok {
			t.Errorf("flag %s: not defined by the command", a)
			if !hasValue && i+1 < len(args) && !strings.HasPrefix(args[i+1], "-") {
				i++ // its value, likely
			}
			continue
		}
		if takesValue && !hasValue {
			if i+1 == len(args) {
				t.Errorf("flag %s: no value", a)
			}
			i++
		}
	}
}

// flagValue is the value of --name in args ("" if absent).
func flagValue(args []string, name string) string {
	for i, a := range args {
		if a == "--"+name && i+1 < len(args) {
			return args[i+1]
		}
		if v, ok := strings.CutPrefix(a, "--"+name+"="); ok {
			return v
		}
	}
	return ""
}

// commandFlags runs `windrow role -h` and returns the flags it lists, each
// with whether it takes a value ("  -name type" does, "  -name" does not).
// It fails the test if the command does not exist.
func commandFlags(t *testing.T, bin, role string) map[string]bool {
	t.Helper()
	return helpFlags(t, bin, []string{role}, "Usage of "+role+":")
}

// helpFlags runs `windrow WORDS... -h`, checks that its output starts with
// usage (the command exists) and returns the flags it lists, as
// commandFlags does.
func helpFlags(t *testing.T, bin string, words []string, usage string) map[string]bool {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, bin, append(words, "-h")...).CombinedOutput()
	if err != nil || !strings.HasPrefix(string(out), usage) {
		t.Fatalf("windrow %s -h: not a command (%v):\n%s", strings.Join(words, " "), err, out)
	}
	flags := map[string]bool{}
	for _, line := range strings.Split(string(out), "\n") {
		// Flag lines are indented by two spaces, their usage by a tab.
		rest, ok := strings.CutPrefix(line, "  -")
		if !ok {
			continue
		}
		f := strings.Fields(rest)
		flags[f[0]] = len(f) > 1
	}
	if len(flags) == 0 {
		t.Fatalf("windrow %s -h lists no flags:\n%s", strings.Join(words, " "), out)
	}
	return flags
}

// built is the windrow binary the tests of this package share: built once
// (a cgo link of DuckDB takes a while), removed by TestMain.
var built struct {
	once sync.Once
	dir  string
	path string
	err  error
}

func TestMain(m *testing.M) {
	code := m.Run()
	if built.dir != "" {
		os.RemoveAll(built.dir)
	}
	os.Exit(code)
}

// buildWindrow builds cmd/windrow into a temporary directory, once for all
// the tests of the package.
func buildWindrow(t *testing.T) string {
	t.Helper()
	built.once.Do(func() {
		built.dir, built.err = os.MkdirTemp("", "windrow-deploy-test-")
		if built.err != nil {
			return
		}
		bin := filepath.Join(built.dir, "windrow")
		start := time.Now()
		// -mod=readonly: never touch go.mod or go.sum; fail instead.
		cmd := exec.Command("go", "build", "-mod=readonly", "-o", bin, "./cmd/windrow")
		cmd.Dir = ".."
		if out, err := cmd.CombinedOutput(); err != nil {
			built.err = fmt.Errorf("go build ./cmd/windrow: %w\n%s", err, out)
			return
		}
		built.path = bin
		t.Logf("built windrow in %s", time.Since(start).Round(100*time.Millisecond))
	})
	if built.err != nil {
		t.Fatal(built.err)
	}
	return built.path
}
