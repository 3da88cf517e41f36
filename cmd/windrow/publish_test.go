package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/valyala/fastjson"

	"github.com/windrow/windrow/adapters/natsx"
	"github.com/windrow/windrow/internal/testnats"
)

// publishEnv is a NATS server with a source stream as windrow creates them
// (SALES on events.sales.>, 2 minute duplicate window), for publish tests.
type publishEnv struct {
	t       *testing.T
	url     string
	dataDir string
	stream  jetstream.Stream
}

func newPublishEnv(t *testing.T) *publishEnv {
	t.Helper()
	srv := testnats.RunServer(t)
	_, js := testnats.Connect(t, srv)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	stream, err := natsx.EnsureSourceStream(ctx, js, "SALES", []string{"events.sales.>"})
	if err != nil {
		t.Fatal(err)
	}
	return &publishEnv{t: t, url: srv.ClientURL(), dataDir: t.TempDir(), stream: stream}
}

// publish runs `windrow publish ARGS` against the env's server with stdin
// as standard input; the report is in the result's errOut.
func (e *publishEnv) publish(stdin string, args ...string) result {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var errOut bytes.Buffer
	args = append(args, "--nats-url", e.url, "--data-dir", e.dataDir)
	err := publish(ctx, strings.NewReader(stdin), &errOut, args)
	r := result{errOut: errOut.String(), code: exitCode(err), err: err}
	e.t.Logf("windrow publish %s → %d, %v\nstderr:\n%s", strings.Join(args, " "), r.code, err, r.errOut)
	return r
}

// msgs is how many messages the source stream holds.
func (e *publishEnv) msgs() uint64 {
	e.t.Helper()
	info, err := e.stream.Info(context.Background())
	if err != nil {
		e.t.Fatal(err)
	}
	return info.State.Msgs
}

// salesLines is an NDJSON input of n lines in which every third line is
// identical to the one before it (n/3 repeats): two identical lines are two
// events, e.g. two customers buying the same latte at the same till.
func salesLines(n int) string {
	var b strings.Builder
	for i := 0; i < n; i++ {
		k := i
		if i%3 == 2 {
			k = i - 1
		}
		fmt.Fprintf(&b, `{"store_id":"store-001","sku":"latte","quantity":%d,"amount":3.90}`+"\n", k)
	}
	return b.String()
}

// TestPublishKeepsRepeatedLines guards issue 12: identical lines of a file
// are all published and stored, and the report says nothing was dropped.
func TestPublishKeepsRepeatedLines(t *testing.T) {
	e := newPublishEnv(t)
	path := writeFile(t, filepath.Join(t.TempDir(), "sales.ndjson"), salesLines(300))
	r := e.publish("", "--subject", "events.sales.store-001", "--file", path)
	if r.err != nil {
		t.Fatal(r.err)
	}
	if n := e.msgs(); n != 300 {
		t.Fatalf("stream holds %d messages, want all 300 lines (100 of them repeat the line before)", n)
	}
	if !strings.Contains(r.errOut, "published 300 events to events.sales.store-001") || !strings.Contains(r.errOut, ": 300 stored, 0 treated as duplicates by the stream\n") {
		t.Errorf("report lacks \"published 300 … 300 stored, 0 treated as duplicates\"")
	}
	if strings.Contains(r.errOut, "WARNING") || strings.Contains(r.errOut, "note:") {
		t.Errorf("report warns though every event was stored")
	}
}

// TestPublishSameFileAgainStoresNothing: re-publishing a file (after a
// crash, say) repeats its ids, also from a copy under another name; another
// file under the same name is another input.
func TestPublishSameFileAgainStoresNothing(t *testing.T) {
	e := newPublishEnv(t)
	data := salesLines(300)
	path := writeFile(t, filepath.Join(t.TempDir(), "sales.ndjson"), data)
	if r := e.publish("", "--subject", "events.sales.store-001", "--file", path); r.err != nil {
		t.Fatal(r.err)
	}

	r := e.publish("", "--subject", "events.sales.store-001", "--file", path)
	if r.code != 0 {
		t.Fatalf("second publish: exit %d, %v; want 0", r.code, r.err)
	}
	if n := e.msgs(); n != 300 {
		t.Fatalf("stream holds %d messages after publishing the file again, want still 300", n)
	}
	for _, want := range []string{
		": 0 stored, 300 treated as duplicates by the stream\n",
		"WARNING: 300 events were NOT stored: the stream SALES treated them as duplicates (same Nats-Msg-Id within its duplicate window of 2m0s):\n",
		"  300 repeat messages it stored before this run began: this input was published before — expected when re-publishing it after a crash\n",
	} {
		if !strings.Contains(r.errOut, want) {
			t.Errorf("second publish: report lacks %q", want)
		}
	}

	// A copy (a re-run may read a fresh download) is the same input.
	cp := writeFile(t, filepath.Join(t.TempDir(), "retry", "sales-copy.ndjson"), data)
	if r := e.publish("", "--subject", "events.sales.store-001", "--file", cp); !strings.Contains(r.errOut, ": 0 stored, 300 treated as duplicates") || e.msgs() != 300 {
		t.Fatalf("a copy of the file: %d messages; want it recognised as the same input and nothing stored", e.msgs())
	}

	// Another file under the same name is not, even of the same size.
	writeFile(t, path, strings.ReplaceAll(data, "latte", "mocha"))
	if r := e.publish("", "--subject", "events.sales.store-001", "--file", path); !strings.Contains(r.errOut, ": 300 stored, 0 treated as duplicates") || e.msgs() != 600 {
		t.Fatalf("another file under the same name: %d messages, want 600", e.msgs())
	}
}

// TestPublishHashDropsRepeatedLines: --msg-id hash deduplicates by content,
// and the report counts the identical lines the stream dropped and says why.
func TestPublishHashDropsRepeatedLines(t *testing.T) {
	e := newPublishEnv(t)
	path := writeFile(t, filepath.Join(t.TempDir(), "sales.ndjson"), salesLines(300))
	r := e.publish("", "--subject", "events.sales.store-001", "--file", path, "--msg-id", "hash")
	if r.code != 0 {
		t.Fatalf("exit %d, %v; want 0", r.code, r.err)
	}
	if n := e.msgs(); n != 200 {
		t.Fatalf("stream holds %d messages, want the 200 distinct lines", n)
	}
	for _, want := range []string{
		": 200 stored, 100 treated as duplicates by the stream\n",
		"WARNING: 100 events were NOT stored: the stream SALES treated them as duplicates (same Nats-Msg-Id within its duplicate window of 2m0s):\n",
		"  100 repeat messages stored during this run: identical lines in this input — with --msg-id hash, identical lines within the duplicate window are dropped (the default --msg-id position keeps them)\n",
	} {
		if !strings.Contains(r.errOut, want) {
			t.Errorf("report lacks %q", want)
		}
	}
}

// TestPublishStdin: standard input has no identity but the one --input-id
// gives; without it, ids are random per run and the report says so.
func TestPublishStdin(t *testing.T) {
	e := newPublishEnv(t)
	data := salesLines(30)
	for run := 1; run <= 2; run++ {
		r := e.publish(data, "--subject", "events.sales.store-001", "--input-id", "upstream-batch-7")
		if r.err != nil {
			t.Fatal(r.err)
		}
		if n := e.msgs(); n != 30 {
			t.Fatalf("run %d with --input-id: stream holds %d messages, want 30", run, n)
		}
		if strings.Contains(r.errOut, "note:") {
			t.Errorf("run %d with --input-id: a note about random ids", run)
		}
	}

	r := e.publish(data, "--subject", "events.sales.store-001")
	if r.err != nil {
		t.Fatal(r.err)
	}
	if n := e.msgs(); n != 60 {
		t.Fatalf("without --input-id: stream holds %d messages, want 60 (random ids, stored again)", n)
	}
	for _, want := range []string{
		": 30 stored, 0 treated as duplicates by the stream\n",
		"note: standard input has no stable identity, so its Nats-Msg-Ids are random for this run",
		"pass --input-id NAME",
	} {
		if !strings.Contains(r.errOut, want) {
			t.Errorf("without --input-id: report lacks %q", want)
		}
	}
}

func TestPublishFlags(t *testing.T) {
	tests := []struct {
		args []string
		want string // in the error; "" for flag.ErrHelp
	}{
		{[]string{"--subject", "s", "--msg-id", "sha"}, `--msg-id "sha": want position, hash, field:NAME or none`},
		{[]string{"--subject", "s", "--msg-id", "field:"}, `--msg-id "field:"`},
		{[]string{"--subject", "s", "--msg-id", "hash", "--input-id", "b"}, "--input-id: only --msg-id position"},
		{[]string{"--msg-id", "none", "--input-id", "b"}, "--subject is required\n--input-id: only"},
		{[]string{"-h"}, ""},
	}
	for _, tt := range tests {
		var out bytes.Buffer
		err := publish(context.Background(), strings.NewReader(""), &out, tt.args)
		switch {
		case tt.want == "" && !errors.Is(err, flag.ErrHelp):
			t.Errorf("publish %v: %v, want flag.ErrHelp", tt.args, err)
		case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
			t.Errorf("publish %v: %v, want an error with %q", tt.args, err, tt.want)
		}
	}
}

func TestMsgIDs(t *testing.T) {
	var p fastjson.Parser
	line := []byte(`{"sale_id":"s-42","amount":3}`)
	ids := func(mode, subject, input string) *msgIDs {
		t.Helper()
		m, err := parseMsgIDMode(mode, subject)
		if err != nil {
			t.Fatal(err)
		}
		m.setInput(namedInput(input))
		return m
	}

	pos := ids("position", "events.sales.store-001", "batch-1")
	a := pos.id(1, line, &p)
	switch {
	case a != ids("position", "events.sales.store-001", "batch-1").id(1, []byte("other"), &p):
		t.Fatal("a position id must depend on the input and the line number only")
	case a == pos.id(2, line, &p):
		t.Fatal("identical lines at two positions must get two ids")
	case a == ids("position", "events.sales.store-001", "batch-2").id(1, line, &p):
		t.Fatal("another input must get other ids")
	case a == ids("position", "events.sales.store-002", "batch-1").id(1, line, &p):
		t.Fatal("another subject must get other ids")
	}

	hash := ids("hash", "events.sales.store-001", "")
	h := hash.id(1, line, &p)
	switch {
	case h == "" || h != hash.id(2, line, &p):
		t.Fatalf("hash id %q must be the same for identical lines", h)
	case h == ids("hash", "events.sales.store-002", "").id(1, line, &p):
		t.Fatal("the same line on another subject must get another id")
	}

	if got := ids("field:sale_id", "s", "b").id(1, line, &p); got != "s-42" {
		t.Fatalf("field id = %q, want s-42", got)
	}
	if got := ids("field:amount", "s", "b").id(1, line, &p); got != "3" {
		t.Fatalf("numeric field id = %q, want 3", got)
	}
	if got, want := ids("field:missing", "s", "b").id(7, line, &p), ids("position", "s", "b").id(7, line, &p); got != want {
		t.Fatalf("missing field: id %q, want the position id %q", got, want)
	}
	if got := ids("none", "s", "b").id(1, line, &p); got != "" {
		t.Fatalf("none = %q, want empty", got)
	}
}

// TestFileIdentity: a file is identified by its size and both ends, not by
// its name.
func TestFileIdentity(t *testing.T) {
	dir := t.TempDir()
	big := bytes.Repeat([]byte("0123456789abcde\n"), 3*idSampleBytes/16) // 3 MiB: head, middle and tail
	identify := func(name string, data []byte) string {
		t.Helper()
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
		f, err := os.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		id, err := fileIdentity(f, int64(len(data)))
		if err != nil {
			t.Fatal(err)
		}
		return id.key
	}
	edit := func(at int) []byte {
		b := bytes.Clone(big)
		b[at] = 'X'
		return b
	}
	orig := identify("a.ndjson", big)
	if identify("copy.ndjson", big) != orig {
		t.Error("a copy under another name must be the same input")
	}
	if identify("a.ndjson", edit(10)) == orig {
		t.Error("a change in the first MiB must make another input")
	}
	if identify("a.ndjson", edit(len(big)-10)) == orig {
		t.Error("a change in the last MiB must make another input")
	}
	if identify("a.ndjson", big[:len(big)-16]) == orig {
		t.Error("another size must make another input")
	}
	// The documented limit: the middle is not read. --input-id covers it.
	if identify("a.ndjson", edit(len(big)/2)) != orig {
		t.Error("a change in the middle changed the identity: update the --msg-id help and fileIdentity's comment")
	}
	small := []byte("{}\n{}\n")
	if identify("s.ndjson", small) == identify("s.ndjson", []byte("{}\n{}\n{}\n")) {
		t.Error("two small files must differ")
	}
}

// TestPublishTallyWithoutStreamInfo: a publisher not allowed to look up the
// stream still counts duplicates and names the likely reason.
func TestPublishTallyWithoutStreamInfo(t *testing.T) {
	ids, err := parseMsgIDMode("hash", "s")
	if err != nil {
		t.Fatal(err)
	}
	tally := publishTally{stream: targetStream{err: errors.New("find the stream of s: permissions violation")}}
	for _, ack := range []jetstream.PubAck{{Sequence: 1}, {Sequence: 2}, {Sequence: 1, Duplicate: true}} {
		tally.add(&ack, false)
	}
	tally.add(&jetstream.PubAck{Sequence: 3, Duplicate: true}, true) // a retry: its first attempt stored it
	if tally.stored() != 3 || tally.duplicates() != 1 {
		t.Fatalf("stored %d, duplicates %d; want 3 and 1", tally.stored(), tally.duplicates())
	}
	var out bytes.Buffer
	tally.explain(&out, ids)
	for _, want := range []string{
		"(1 of the stored were stored by an attempt whose ack was lost",
		"WARNING: 1 events were NOT stored: the stream treated them as duplicates (same Nats-Msg-Id within its duplicate window):\n",
		"  1 of them: identical lines are the likely reason (--msg-id hash",
		"permissions violation",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("explanation lacks %q:\n%s", want, out.String())
		}
	}
}
