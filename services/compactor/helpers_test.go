package compactor

import (
	"slices"

	"github.com/parquet-go/parquet-go"

	"github.com/windrow/windrow/pipeline/records"
)

type parquetRow = parquet.Row

func sortRows(l *records.Layout, rows []parquet.Row) { slices.SortFunc(rows, l.Compare) }

func filesOf(f ...*parquet.File) []*parquet.File { return f }
