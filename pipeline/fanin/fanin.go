package fanin

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/compress/snappy"

	"github.com/windrow/windrow/pipeline/records"
)

const (
	// DefaultFanIn is Config.FanIn when it is 0.
	DefaultFanIn = 64
	// DefaultMemory is Config.Memory when it is 0: 256 MiB.
	DefaultMemory = 256 << 20
	// DirPrefix starts the name of every merge's run directory.
	DirPrefix = "windrow-merge-"
)

// Input is one sorted Parquet input, opened only when it is merged. Open
// returns the file and the function that releases it; an error is returned
// by Merge as it is.
type Input struct {
	Name string
	Open func(ctx context.Context) (f *parquet.File, close func() error, err error)
}

// Config bounds a Merge.
type Config struct {
	// Layout reads and writes the rows; required.
	Layout *records.Layout
	// FanIn is the most inputs open at once, the files passed open to
	// Merge included. Default DefaultFanIn (64), at least 2.
	FanIn int
	// Memory bounds, in bytes, the estimated read buffers of the inputs
	// open at once (one decompressed page per column and one chunk of rows
	// per input, from each file's footer) plus the row group an
	// intermediate run buffers before it is written. Default DefaultMemory
	// (256 MiB). A group always takes two inputs, whatever they cost.
	Memory int64
	// Dir is where run directories are made; default os.TempDir(). It
	// needs room for about the inputs' compressed size.
	Dir string
	// Progress, if set, is called while runs are written (about once per
	// chunk of rows), for a caller that must show it is alive (renew a
	// lease); an error stops the merge.
	Progress func(ctx context.Context) error
}

func (c *Config) setDefaults() {
	if c.FanIn == 0 {
		c.FanIn = DefaultFanIn
	}
	if c.Memory == 0 {
		c.Memory = DefaultMemory
	}
	if c.Dir == "" {
		c.Dir = os.TempDir()
	}
}

// Validate reports every invalid field.
func (c *Config) Validate() error {
	var errs []error
	if c.Layout == nil {
		errs = append(errs, errors.New("fanin: Layout is required"))
	}
	if c.FanIn < 2 {
		errs = append(errs, fmt.Errorf("fanin: FanIn %d, want >= 2", c.FanIn))
	}
	if c.Memory < 0 {
		errs = append(errs, fmt.Errorf("fanin: Memory %d, want >= 0", c.Memory))
	}
	return errors.Join(errs...)
}

// Report says how a Merge went.
type Report struct {
	Passes        int   // intermediate passes; 0 when the inputs were merged at once
	Runs          int   // intermediate runs written
	RunDuplicates int64 // duplicates dropped while writing runs (included in the merge's Duplicates)
	MaxOpen       int   // most inputs open at once, the files passed open included
}

// Merge is layout.MergeKnown(known, fixed+inputs, yield) with bounded
// fan-in: known and fixed are open already and stay so (they count toward
// FanIn); inputs are opened as their group is merged and closed after it.
// The stats are those of the single merge (Duplicates includes the rows
// dropped in intermediate passes). Intermediate runs are removed before
// Merge returns.
func Merge(ctx context.Context, cfg Config, known, fixed []*parquet.File, inputs []Input, yield func([]parquet.Row) error) (records.MergeStats, Report, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return records.MergeStats{}, Report{}, err
	}
	m := &merger{cfg: cfg, runs: map[string]bool{}}
	defer m.cleanup()
	m.open = len(known) + len(fixed)
	m.report.MaxOpen = m.open
	var fixedCost int64
	for _, f := range slices.Concat(known, fixed) {
		fixedCost += readCost(f)
	}
	// The files passed open stay open throughout: the inputs get the rest.
	slots := max(2, cfg.FanIn-len(known)-len(fixed))
	readBudget := cfg.Memory - m.runBuffer()
	level := inputs
	for {
		// Everything left fits at once: the final merge.
		g, err := m.openGroup(ctx, level, slots, readBudget-fixedCost)
		if err != nil {
			return records.MergeStats{}, m.report, err
		}
		if len(g) == len(level) {
			stats, err := cfg.Layout.MergeKnown(known, slices.Concat(fixed, files(g)), yield)
			m.closeGroup(g)
			m.removeRuns(level)
			stats.Duplicates += m.report.RunDuplicates
			return stats, m.report, err
		}
		// One more pass: merge groups into runs, starting with the group
		// just opened.
		m.report.Passes++
		var next []Input
		for len(level) > 0 {
			if len(level) == 1 {
				next = append(next, level[0]) // nothing to merge it with
				break
			}
			if g == nil {
				if g, err = m.openGroup(ctx, level, slots, readBudget); err != nil {
					return records.MergeStats{}, m.report, err
				}
			}
			run, err := m.writeRun(ctx, g)
			m.closeGroup(g)
			if err != nil {
				return records.MergeStats{}, m.report, err
			}
			m.removeRuns(level[:len(g)])
			next = append(next, run)
			level, g = level[len(g):], nil
		}
		level = next
	}
}

type merger struct {
	cfg     Config
	dir     string          // this merge's run directory, made with the first run
	runs    map[string]bool // names of the inputs that are runs (removed once merged)
	open    int
	touched time.Time // dir's modification time last set
	report  Report
}

type opened struct {
	f     *parquet.File
	close func() error
}

func files(g []opened) []*parquet.File {
	out := make([]*parquet.File, len(g))
	for i, o := range g {
		out[i] = o.f
	}
	return out
}

// openGroup opens inputs from the start of level: at most slots of them,
// and, past the first two, only while their estimated read cost stays
// within budget. An input that does not fit is closed again (it starts the
// next group).
func (m *merger) openGroup(ctx context.Context, level []Input, slots int, budget int64) ([]opened, error) {
	var g []opened
	var used int64
	for _, in := range level {
		if len(g) == slots {
			break
		}
		f, closeFile, err := in.Open(ctx)
		if err != nil {
			m.closeGroup(g)
			return nil, err
		}
		m.open++
		m.report.MaxOpen = max(m.report.MaxOpen, m.open)
		cost := readCost(f)
		if len(g) >= 2 && used+cost > budget {
			_ = closeFile()
			m.open--
			break
		}
		g = append(g, opened{f: f, close: closeFile})
		used += cost
	}
	return g, nil
}

func (m *merger) closeGroup(g []opened) {
	for _, o := range g {
		_ = o.close()
		m.open--
	}
}

// runBuffer is the row group size, in bytes, an intermediate run buffers
// before writing it out: an eighth of the memory budget, 256 KiB to 64 MiB.
func (m *merger) runBuffer() int64 {
	return min(max(m.cfg.Memory/8, 256<<10), 64<<20)
}

// writeRun merges g into a new run and returns it as an input.
func (m *merger) writeRun(ctx context.Context, g []opened) (Input, error) {
	if m.dir == "" {
		dir, err := os.MkdirTemp(m.cfg.Dir, DirPrefix+"*")
		if err != nil {
			return Input{}, fmt.Errorf("merge run directory: %w", err)
		}
		m.dir = dir
	}
	out, err := os.CreateTemp(m.dir, "run-*.parquet")
	if err != nil {
		return Input{}, fmt.Errorf("merge run: %w", err)
	}
	path := out.Name()
	m.runs[path] = true
	bw := bufio.NewWriterSize(out, 1<<20)
	pw := m.cfg.Layout.NewWriter(bw, records.FileOptions{Codec: &snappy.Codec{}})
	limit := m.runBuffer()
	var flushed int64
	stats, err := m.cfg.Layout.Merge(files(g), func(rows []parquet.Row) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		if _, err := pw.WriteRows(rows); err != nil {
			return fmt.Errorf("write merge run: %w", err)
		}
		if pw.Size()-flushed >= limit {
			if err := pw.Flush(); err != nil {
				return fmt.Errorf("write merge run: %w", err)
			}
			flushed = pw.Size()
		}
		return m.progress(ctx)
	})
	if err == nil {
		err = pw.Close()
	}
	if err == nil {
		err = bw.Flush()
	}
	if cerr := out.Close(); err == nil && cerr != nil {
		err = cerr
	}
	if err != nil {
		return Input{}, fmt.Errorf("merge run: %w", err)
	}
	m.report.Runs++
	m.report.RunDuplicates += stats.Duplicates
	layout := m.cfg.Layout
	return Input{Name: path, Open: func(context.Context) (*parquet.File, func() error, error) {
		r, err := os.Open(path)
		if err != nil {
			return nil, nil, fmt.Errorf("merge run: %w", err)
		}
		info, err := r.Stat()
		if err != nil {
			r.Close()
			return nil, nil, fmt.Errorf("merge run: %w", err)
		}
		f, err := layout.OpenFile(r, info.Size())
		if err != nil {
			r.Close()
			return nil, nil, fmt.Errorf("merge run %s: %w", path, err)
		}
		return f, r.Close, nil
	}}, nil
}

// progress reports to the caller, and keeps the run directory's
// modification time fresh so that RemoveStale leaves it alone.
func (m *merger) progress(ctx context.Context) error {
	if now := time.Now(); now.Sub(m.touched) > time.Minute {
		m.touched = now
		_ = os.Chtimes(m.dir, now, now)
	}
	if m.cfg.Progress != nil {
		return m.cfg.Progress(ctx)
	}
	return nil
}

// removeRuns deletes the runs among merged inputs.
func (m *merger) removeRuns(merged []Input) {
	for _, in := range merged {
		if m.runs[in.Name] {
			_ = os.Remove(in.Name)
			delete(m.runs, in.Name)
		}
	}
}

func (m *merger) cleanup() {
	if m.dir != "" {
		_ = os.RemoveAll(m.dir)
	}
}

// pageCost bounds what one column's page costs a reader: windrow writes
// pages of about 256 KiB (records.NewWriter); other writers' pages are
// counted up to this.
const pageCost = 1 << 20

// valueSize is the in-memory size of one parquet.Value.
const valueSize = 24

// chunkRows is how many rows a merge reads ahead per input
// (records.chunkRows).
const chunkRows = 512

// readCost estimates, from its footer, the memory a merge holds for f while
// reading it: one decompressed page per column (at most its largest column
// chunk) and one chunk of rows.
func readCost(f *parquet.File) int64 {
	md := f.Metadata()
	var perColumn []int64
	var rowBytes int64
	for _, rg := range md.RowGroups {
		for i, c := range rg.Columns {
			if i >= len(perColumn) {
				perColumn = append(perColumn, make([]int64, i+1-len(perColumn))...)
			}
			perColumn[i] = max(perColumn[i], c.MetaData.TotalUncompressedSize)
		}
		if rg.NumRows > 0 {
			rowBytes = max(rowBytes, rg.TotalByteSize/rg.NumRows+1)
		}
	}
	var cost int64
	for _, c := range perColumn {
		cost += min(c, pageCost)
	}
	return cost + chunkRows*(rowBytes+int64(len(perColumn))*valueSize)
}

// RemoveStale deletes the run directories under dir (made by Merge) not
// modified since olderThan — left by a process killed while merging — and
// says how many.
func RemoveStale(dir string, olderThan time.Time) (int, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return 0, nil
		}
		return 0, fmt.Errorf("remove stale merge runs: %w", err)
	}
	var n int
	var errs []error
	for _, e := range entries {
		if !e.IsDir() || !strings.HasPrefix(e.Name(), DirPrefix) {
			continue
		}
		info, err := e.Info()
		if err != nil || !info.ModTime().Before(olderThan) {
			continue
		}
		if err := os.RemoveAll(filepath.Join(dir, e.Name())); err != nil {
			errs = append(errs, err)
			continue
		}
		n++
	}
	return n, errors.Join(errs...)
}
