package records

import (
	"container/heap"
	"fmt"
	"io"
	"slices"

	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/compress"
)

// FileOptions configure a Parquet file written by NewWriter.
type FileOptions struct {
	Codec        compress.Codec    // page compression; nil means uncompressed
	RowGroupRows int               // rows per row group; 0 means parquet-go's default
	Metadata     map[string]string // key/value metadata in the footer
	// SortedBy names top-level columns the rows are sorted by, ascending,
	// recorded as the row groups' sorting columns; the caller writes the
	// rows in that order.
	SortedBy []string
}

// NewWriter returns a Parquet writer of the layout's schema on w. Callers
// write rows with WriteRows and must Close it.
func (l *Layout) NewWriter(w io.Writer, opts FileOptions) *parquet.Writer {
	options := []parquet.WriterOption{l.schema, parquet.CreatedBy("windrow", "1", ""), parquet.PageBufferSize(256 << 10)}
	if opts.Codec != nil {
		options = append(options, parquet.Compression(opts.Codec))
	}
	if opts.RowGroupRows > 0 {
		options = append(options, parquet.MaxRowsPerRowGroup(int64(opts.RowGroupRows)))
	}
	if len(opts.SortedBy) > 0 {
		cols := make([]parquet.SortingColumn, len(opts.SortedBy))
		for i, name := range opts.SortedBy {
			cols[i] = parquet.Ascending(name)
		}
		options = append(options, parquet.SortingWriterConfig(parquet.SortingColumns(cols...)))
	}
	for k, v := range opts.Metadata {
		options = append(options, parquet.KeyValueMetadata(k, v))
	}
	return parquet.NewWriter(w, options...)
}

// WriteFile writes rows, in the order given, as one Parquet file on w.
func (l *Layout) WriteFile(w io.Writer, rows []parquet.Row, opts FileOptions) error {
	pw := l.NewWriter(w, opts)
	if _, err := pw.WriteRows(rows); err != nil {
		return fmt.Errorf("write rows: %w", err)
	}
	if err := pw.Close(); err != nil {
		return fmt.Errorf("close parquet writer: %w", err)
	}
	return nil
}

// OpenFile opens a Parquet file of this layout and checks its schema.
func (l *Layout) OpenFile(r io.ReaderAt, size int64) (*parquet.File, error) {
	f, err := parquet.OpenFile(r, size, parquet.SkipPageIndex(true), parquet.SkipBloomFilters(true))
	if err != nil {
		return nil, fmt.Errorf("open parquet file: %w", err)
	}
	if !parquet.EqualNodes(f.Schema(), l.schema) {
		if err := l.compatible(f.Schema()); err != nil {
			return nil, fmt.Errorf("%w: %w (file has %s, layout has %s)", ErrSchemaMismatch, err, f.Schema(), l.schema)
		}
	}
	return f, nil
}

// compatible reports whether rows of schema from can be read as rows of the
// layout: a file staged under an earlier policy version that lacks fields
// added since as nullable. Every column of the file must be in the layout,
// the same; every column only in the layout must be optional (read as null).
func (l *Layout) compatible(from *parquet.Schema) error {
	have := map[string]parquet.Field{}
	for _, f := range from.Fields() {
		have[f.Name()] = f
	}
	for _, f := range l.schema.Fields() {
		g, ok := have[f.Name()]
		delete(have, f.Name())
		switch {
		case !ok && !f.Optional():
			return fmt.Errorf("column %s is required now and missing in the file", f.Name())
		case ok && !parquet.EqualNodes(f, g):
			return fmt.Errorf("column %s changed (was %s, now %s)", f.Name(), nodeString(g), nodeString(f))
		}
	}
	for name := range have {
		return fmt.Errorf("column %s of the file is no longer in the policy", name)
	}
	return nil
}

func nodeString(n parquet.Node) string {
	s := n.Type().String()
	switch {
	case n.Optional():
		s = "optional " + s
	case n.Repeated():
		s = "repeated " + s
	default:
		s = "required " + s
	}
	return s
}

// rowGroups are f's row groups, converted to the layout's schema when the
// file was written with an earlier, compatible one.
func (l *Layout) rowGroups(f *parquet.File) ([]parquet.RowGroup, error) {
	groups := f.RowGroups()
	if parquet.EqualNodes(f.Schema(), l.schema) {
		return groups, nil
	}
	conv, err := parquet.Convert(l.schema, f.Schema())
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrSchemaMismatch, err)
	}
	out := make([]parquet.RowGroup, len(groups))
	for i, g := range groups {
		out[i] = parquet.ConvertRowGroup(g, conv)
	}
	return out, nil
}

// MergeStats counts what Merge saw.
type MergeStats struct {
	Rows       int64 // rows yielded
	Duplicates int64 // rows dropped because their source sequence was already yielded (or known)
	Known      int64 // rows of the known files (MergeKnown), read and not yielded
}

const chunkRows = 512

// Merge reads files, each sorted by Compare, and calls yield with runs of
// rows in Compare order, dropping rows whose source sequence repeats. The rows
// passed to yield are valid only until yield returns.
func (l *Layout) Merge(files []*parquet.File, yield func([]parquet.Row) error) (MergeStats, error) {
	return l.MergeKnown(nil, files, yield)
}

// MergeKnown is Merge over known and files together, yielding only rows of
// files: a row whose source sequence is in a known file (rows the table
// already holds) is dropped and counted as a duplicate, as is a repeat
// within files. known files are read (and counted in Known), never yielded.
// Rows of one event compare equal; the known copy comes first.
func (l *Layout) MergeKnown(known, files []*parquet.File, yield func([]parquet.Row) error) (MergeStats, error) {
	var stats MergeStats
	h := &sourceHeap{layout: l}
	for i, f := range append(slices.Clip(known), files...) {
		groups, err := l.rowGroups(f)
		if err != nil {
			return stats, err
		}
		s := &source{groups: groups, buf: make([]parquet.Row, chunkRows), known: i < len(known)}
		ok, err := s.next()
		if err != nil {
			return stats, err
		}
		if ok {
			h.items = append(h.items, s)
		}
	}
	heap.Init(h)
	out := make([]parquet.Row, 0, chunkRows)
	var last int64 = -1
	flush := func() error {
		if len(out) == 0 {
			return nil
		}
		err := yield(out)
		out = out[:0]
		return err
	}
	for h.Len() > 0 {
		s := h.items[0]
		row := s.buf[s.pos]
		seq := row[l.seqCol].Int64()
		switch {
		case s.known:
			stats.Known++
			last = seq
		case seq == last:
			stats.Duplicates++
		default:
			out = append(out, row)
			stats.Rows++
			last = seq
		}
		s.pos++
		if s.pos == s.n || len(out) == cap(out) {
			// The source's chunk is about to be overwritten, or out is full.
			if err := flush(); err != nil {
				return stats, err
			}
		}
		if s.pos == s.n {
			ok, err := s.next()
			if err != nil {
				return stats, err
			}
			if !ok {
				heap.Pop(h)
				continue
			}
		}
		heap.Fix(h, 0)
	}
	return stats, flush()
}

type source struct {
	known  bool // rows are known (MergeKnown): they suppress, and are not yielded
	groups []parquet.RowGroup
	rows   parquet.Rows
	buf    []parquet.Row
	pos, n int
}

// next loads the next chunk; false at the end of the file.
func (s *source) next() (bool, error) {
	for {
		if s.rows == nil {
			if len(s.groups) == 0 {
				return false, nil
			}
			s.rows = s.groups[0].Rows()
			s.groups = s.groups[1:]
		}
		n, err := s.rows.ReadRows(s.buf)
		if n > 0 {
			s.pos, s.n = 0, n
			return true, nil
		}
		if err == io.EOF || err == nil {
			s.rows.Close()
			s.rows = nil
			continue
		}
		return false, fmt.Errorf("read rows: %w", err)
	}
}

type sourceHeap struct {
	layout *Layout
	items  []*source
}

func (h *sourceHeap) Len() int { return len(h.items) }
func (h *sourceHeap) Less(i, j int) bool {
	a, b := h.items[i], h.items[j]
	if c := h.layout.Compare(a.buf[a.pos], b.buf[b.pos]); c != 0 {
		return c < 0
	}
	return a.known && !b.known
}
func (h *sourceHeap) Swap(i, j int) { h.items[i], h.items[j] = h.items[j], h.items[i] }
func (h *sourceHeap) Push(x any)    { h.items = append(h.items, x.(*source)) }
func (h *sourceHeap) Pop() any {
	x := h.items[len(h.items)-1]
	h.items = h.items[:len(h.items)-1]
	return x
}
