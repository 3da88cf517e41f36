// Package records turns events into Parquet rows and Parquet rows into files.
//
// A Layout maps a policy's schema to a Parquet schema: one column per policy
// field plus the lineage column _source_seq (the JetStream stream sequence of
// the event), the same for staged segments and final batches. The Decoder is
// the collector's hot path: it reads one JSON event straight into a
// parquet.Row without reflection and without building a map, using a reusable
// fastjson parser, slabs for row values and an arena for string bytes, where
// repeated string values share one copy. Rows live until the caller has
// written them and then calls Decoder.Reset, which reuses their memory.
//
// Decimals are read from the literal text of a JSON number or numeric
// string, never through float64, into DECIMAL on INT32, INT64 or
// FIXED_LEN_BYTE_ARRAY. Object fields are Parquet groups and list fields
// three-level LISTs; the decoder shreds them into repetition and definition
// levels (nested.go). Their non-repeated leaves sit at their column index in
// every row, like scalar fields; the values of repeated columns follow, so a
// row of a schema with lists has a variable length. A field's From key and
// Default are applied while decoding.
//
// WriteFile sorts nothing: callers sort rows with Layout.Compare (sort
// fields, then source sequence). Merge reads any number of sorted files and
// yields one sorted stream without duplicate source sequences: two copies of
// the same event decode to the same values, so with the sequence as the last
// sort key they are adjacent and the second is dropped. Memory is bounded by
// one read chunk per input file, not by the size of the window.
package records
