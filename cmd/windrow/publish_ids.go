package main

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"github.com/valyala/fastjson"
)

// The Nats-Msg-Id modes of `windrow publish` (--msg-id). The source stream
// stores nothing for a message whose Nats-Msg-Id it already stored within its
// duplicate window (2 minutes for the streams windrow creates), so the id
// decides what counts as the same event:
//
//   - position (the default): the input and the line number. Publishing the
//     same input again, e.g. after a crash, repeats every id and stores
//     nothing twice; two identical lines of one input are two events.
//   - hash: the subject and the line's bytes. Identical lines within the
//     duplicate window are dropped, whether they are two events or not.
//   - field:NAME: a JSON field's value, for inputs that carry their own
//     event id. A line without the field gets its position id.
//   - none: no id; a re-run publishes everything again.
const (
	idPosition    = "position"
	idHash        = "hash"
	idNone        = "none"
	idFieldPrefix = "field:"
)

// msgIDHelp is the help of --msg-id.
const msgIDHelp = `Nats-Msg-Id of each event, which the stream deduplicates within its duplicate window:
position: the input's identity and the line number, so re-publishing the same input (after a crash) stores nothing twice while identical lines in it are all kept; a file's identity is its size and a SHA-256 of its first and last MiB (not its name: a copy is the same input, another file under the same name is not); standard input needs --input-id for that, else its ids are random per run;
hash: SHA-256 of subject and line (identical lines within the duplicate window are dropped);
field:NAME: a JSON field's value (lines without it get their position id);
none: no id`

// idSampleBytes is how much of each end of a file its identity hashes.
const idSampleBytes = 1 << 20

// msgIDs makes the Nats-Msg-Id of each line of one input on one subject.
type msgIDs struct {
	mode    string // idPosition, idHash, idNone or idFieldPrefix+field
	field   string // the field of field:NAME
	subject string
	// prefix is the digest of the input's identity and the subject that
	// position ids start with (set by setInput).
	prefix string
}

// parseMsgIDMode checks a --msg-id value.
func parseMsgIDMode(mode, subject string) (*msgIDs, error) {
	m := &msgIDs{mode: mode, subject: subject}
	switch {
	case mode == idPosition || mode == idHash || mode == idNone:
	case strings.HasPrefix(mode, idFieldPrefix) && len(mode) > len(idFieldPrefix):
		m.field = mode[len(idFieldPrefix):]
	default:
		return nil, fmt.Errorf("--msg-id %q: want position, hash, field:NAME or none", mode)
	}
	return m, nil
}

// needsInput reports whether ids depend on the input's identity.
func (m *msgIDs) needsInput() bool { return m.mode == idPosition || m.field != "" }

// setInput derives the position ids' prefix from the input's identity and
// the subject: the same file published to two subjects is two sets of events.
func (m *msgIDs) setInput(in inputIdentity) {
	h := sha256.New()
	fmt.Fprintf(h, "windrow publish position v1\x00%s\x00%s", in.key, m.subject)
	m.prefix = hex.EncodeToString(h.Sum(nil)[:12])
}

// id is the Nats-Msg-Id of line number lineNo (1-based, counting blank
// lines, so that it does not depend on which lines are skipped); "" for none.
func (m *msgIDs) id(lineNo int64, line []byte, p *fastjson.Parser) string {
	switch {
	case m.mode == idNone:
		return ""
	case m.mode == idHash:
		return lineHash(m.subject, line)
	case m.field != "":
		if v, err := p.ParseBytes(line); err == nil {
			if f := v.Get(m.field); f != nil {
				if f.Type() == fastjson.TypeString {
					return string(f.GetStringBytes())
				}
				return f.String()
			}
		}
		// No such field: the line's position, still idempotent on a re-run
		// and not confused with an identical line elsewhere in the input.
	}
	return m.prefix + "-" + strconv.FormatInt(lineNo, 10)
}

// lineHash is the --msg-id hash id: SHA-256 of subject and line.
func lineHash(subject string, line []byte) string {
	h := sha256.New()
	h.Write([]byte(subject))
	h.Write([]byte{0})
	h.Write(line)
	return hex.EncodeToString(h.Sum(nil)[:16])
}

// inputIdentity is what an input's position ids derive from.
type inputIdentity struct {
	key string // fed to the digest
	// about says, for the report, where the identity came from.
	about string
	// stable is false for a random identity: a re-run gets other ids.
	stable bool
}

// namedInput is the identity --input-id gives.
func namedInput(name string) inputIdentity {
	return inputIdentity{key: "name:" + name, about: fmt.Sprintf("--input-id %q", name), stable: true}
}

// randomInput is the identity of an input that has no stable one (standard
// input or a pipe without --input-id): unique to this run.
func randomInput(what string) (inputIdentity, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return inputIdentity{}, fmt.Errorf("random identity for %s: %w", what, err)
	}
	return inputIdentity{key: "random:" + hex.EncodeToString(b[:]), about: "random for this run (" + what + " has no stable identity)"}, nil
}

// fileIdentity is a regular file's identity: its size and a SHA-256 of its
// first and last idSampleBytes (the whole file when it is at most twice
// that).
//
// The identity must survive what happens between a crashed run and its
// re-run, and tell other files apart. Content does that, where a name does
// not: the re-run may read a fresh copy (downloaded again, restored, moved to
// a retry directory), with another path and modification time but the same
// bytes, while tomorrow's export may arrive under yesterday's name. Hashing
// both ends and the size rather than every byte keeps a multi-gigabyte file
// from being read twice before its first publish; different exports differ
// in size or in their first or last records in practice. Two files of equal
// size that differ only in their middle would get the same ids: published
// within one duplicate window, the second is reported as duplicates of the
// first. --input-id names an input explicitly for such cases.
func fileIdentity(f *os.File, size int64) (inputIdentity, error) {
	h := sha256.New()
	fmt.Fprintf(h, "size %d\n", size)
	head := min(size, idSampleBytes)
	if _, err := io.Copy(h, io.NewSectionReader(f, 0, head)); err != nil {
		return inputIdentity{}, fmt.Errorf("identify %s: %w", f.Name(), err)
	}
	if size > head {
		from := max(head, size-idSampleBytes)
		if _, err := io.Copy(h, io.NewSectionReader(f, from, size-from)); err != nil {
			return inputIdentity{}, fmt.Errorf("identify %s: %w", f.Name(), err)
		}
	}
	return inputIdentity{key: "file:" + hex.EncodeToString(h.Sum(nil)), about: "the file's size and content", stable: true}, nil
}
