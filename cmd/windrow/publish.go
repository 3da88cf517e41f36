package main

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/valyala/fastjson"

	"github.com/windrow/windrow/loadtest"
)

func runPublish(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("publish", flag.ContinueOnError)
	var conn connFlags
	conn.register(fs)
	subject := fs.String("subject", "", "subject to publish to (required), e.g. events.sales.store-001")
	file := fs.String("file", "-", "NDJSON file, one event per line; - for standard input")
	idMode := fs.String("msg-id", "hash", "Nats-Msg-Id of each event: hash (SHA-256 of subject and line), field:NAME (a JSON field's value), none")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *subject == "" {
		return fmt.Errorf("--subject is required")
	}
	var idField string
	switch {
	case *idMode == "hash" || *idMode == "none":
	case strings.HasPrefix(*idMode, "field:") && len(*idMode) > 6:
		idField = (*idMode)[6:]
	default:
		return fmt.Errorf("--msg-id %q: want hash, field:NAME or none", *idMode)
	}
	var in io.Reader = os.Stdin
	var total int64
	if *file != "-" {
		f, err := os.Open(*file)
		if err != nil {
			return err
		}
		defer f.Close()
		if st, err := f.Stat(); err == nil {
			total = st.Size()
		}
		in = f
	}
	s, err := conn.connect(ctx)
	if err != nil {
		return err
	}
	defer s.Close()

	// Lines are read into memory in chunks so that publishing stays async.
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 1<<20), 8<<20)
	prog := newProgress()
	start := time.Now()
	var sent, bytesRead int64
	var parser fastjson.Parser
	for {
		var lines [][]byte
		for len(lines) < 10000 && sc.Scan() {
			line := sc.Bytes()
			bytesRead += int64(len(line)) + 1
			if len(strings.TrimSpace(string(line))) == 0 {
				continue
			}
			lines = append(lines, append([]byte(nil), line...))
		}
		if err := sc.Err(); err != nil {
			return fmt.Errorf("read %s: %w", *file, err)
		}
		if len(lines) == 0 {
			break
		}
		base := sent
		pub := &loadtest.Publisher{JS: s.JS, OnProgress: func(n int) {
			done := base + int64(n)
			rate := float64(done) / time.Since(start).Seconds()
			if total > 0 {
				prog.update("published %d events (%.0f%% of %s, %.0f events/s)", done, 100*float64(bytesRead)/float64(total), *file, rate)
			} else {
				prog.update("published %d events (%.0f events/s)", done, rate)
			}
		}}
		err := pub.Publish(ctx, len(lines), func(i int) (string, []byte, string) {
			return *subject, lines[i], msgID(*idMode, idField, *subject, lines[i], &parser)
		})
		if err != nil {
			return err
		}
		sent += int64(len(lines))
	}
	prog.done("published %d events to %s in %s (%.0f events/s)", sent, *subject, time.Since(start).Round(time.Millisecond), float64(sent)/time.Since(start).Seconds())
	return nil
}

func msgID(mode, field, subject string, line []byte, p *fastjson.Parser) string {
	switch {
	case mode == "none":
		return ""
	case field != "":
		if v, err := p.ParseBytes(line); err == nil {
			if f := v.Get(field); f != nil {
				if f.Type() == fastjson.TypeString {
					return string(f.GetStringBytes())
				}
				return f.String()
			}
		}
		// No such field: fall back to the content hash, still idempotent.
	}
	h := sha256.New()
	h.Write([]byte(subject))
	h.Write([]byte{0})
	h.Write(line)
	return hex.EncodeToString(h.Sum(nil)[:16])
}
