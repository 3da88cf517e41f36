package main

import (
	"bytes"
	"fmt"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/windrow/windrow/windows"
)

// example is one YAML snippet of the reference. A snippet without a
// top-level name is a fragment: its top-level keys replace those of
// minimalPolicy before it is parsed. Every example must parse and validate
// with windows.ParsePolicy (the generator refuses to write the reference
// otherwise, and the test says which one broke), and every key of the
// reference must appear in at least one example.
type example struct {
	Section string // the section it is shown in: a top-level key, or "" for the top level
	Title   string
	Text    string // optional, one sentence under the title
	YAML    string
}

// minimalPolicy is the smallest valid policy; fragments are merged into it.
const minimalPolicy = `name: orders
description: Orders, one window per hour, appended to raw.orders.   # optional
source:
  subjects: [events.orders.>]
schema:
  fields:
    - {name: order_id, type: string, required: true}
    - {name: created_at, type: timestamp, required: true}
time:
  field: created_at
window:
  size: 1h
load:
  table: raw.orders
`

// examples in the order they are shown; the order of sections comes from
// the policy types, not from this list.
var examples = []example{
	{Section: "", Title: "A minimal policy",
		Text: "Every other example is merged into this one.",
		YAML: minimalPolicy},
	{Section: "", Title: "Per-key windows",
		Text: "Each hourly window is split by store; a window with more than 50000 stores stops the policy instead of dead-lettering events.",
		YAML: `schema:
  fields:
    - {name: store_id, type: string, required: true}
    - {name: created_at, type: timestamp, required: true}
key: [store_id]
max_keys_per_window: 50000
key_overflow: error
`},

	{Section: "", Title: "Window shapes before a change (written by windrow)",
		Text: "policy apply writes window_history when the window shape changes, below a marker comment; a file does not need it. Here: 30m windows until 20 November, hopping 1h windows sliding by 15m until 27 November, the hopping 2h windows of window from then on.",
		YAML: `window:
  kind: hopping
  size: 2h
  slide: 30m
window_history:
  - {until: 2026-11-20T00:00:00Z, kind: tumbling, size: 30m, timezone: UTC}
  - {until: 2026-11-27T00:00:00Z, kind: hopping, size: 1h, slide: 15m, timezone: UTC}
`},
	{Section: "source", Title: "A stream and several subject filters",
		YAML: `source:
  stream: ORDERS
  subjects:
    - events.orders.>
    - legacy.orders.*.created
`},

	{Section: "schema", Title: "Scalar types",
		Text: "created_at holds epoch seconds when the event has a number (an RFC 3339 string is read as well).",
		YAML: `schema:
  fields:
    - {name: order_id,   type: string,    required: true}
    - {name: quantity,   type: int64,     required: true}
    - {name: price,      type: float64}
    - {name: gift,       type: bool}
    - {name: created_at, type: timestamp, required: true, unit: s}
    - {name: ship_date,  type: date}
`},
	{Section: "schema", Title: "Exact decimals, renamed JSON keys and defaults",
		YAML: `schema:
  fields:
    - {name: order_id,   type: string,    required: true, from: orderId}
    - {name: created_at, type: timestamp, required: true, from: createdAt}
    - {name: amount,     type: "decimal(12,2)", required: true}
    - {name: discount,   type: "decimal(5,2)",  default: "0.00"}
    - {name: channel,    type: string,    required: true, default: web}
`},
	{Section: "schema", Title: "Nested objects and lists",
		YAML: `schema:
  fields:
    - {name: order_id,   type: string,    required: true}
    - {name: created_at, type: timestamp, required: true}
    - name: customer
      type: object
      fields:
        - {name: id,   type: string, required: true}
        - {name: tier, type: string, default: basic}
    - name: tags
      type: list
      items: {type: string}
    - name: lines
      type: list
      items:
        type: object
        fields:
          - {name: sku,      type: string, required: true}
          - {name: quantity, type: int64,  required: true}
`},

	{Section: "time", Title: "Event time from a field",
		YAML: `time:
  mode: event
  field: created_at
`},
	{Section: "time", Title: "Ingest time",
		Text: "The JetStream message time; no field is named.",
		YAML: `time:
  mode: ingest
`},

	{Section: "window", Title: "Daily tumbling windows in a time zone, with lateness",
		YAML: `window:
  kind: tumbling
  size: 24h
  timezone: Europe/Berlin
  max_out_of_order: 10m
  allowed_lateness: 30m
  late: dlq
  idle_timeout: 10s
  future_horizon: 48h
`},
	{Section: "window", Title: "Late events revise loaded windows",
		Text: "Events for a window that is already loaded are gathered for 5 minutes, then loaded as the window's next revision (with load mode replace, the table ends up with the window's complete rows).",
		YAML: `window:
  size: 1h
  late: revise
  revise_after: 5m
`},
	{Section: "window", Title: "Window states kept for 30 days",
		Text: "A loaded window's state is kept 30 days after its load and after its end (the default is 7 days); late events and revisions reach it until then. After that the window is retired: its rows stay in the table, and its events are late (reason late), revise or not.",
		YAML: `window:
  size: 1h
  late: revise
  retain: 720h
`},
	{Section: "window", Title: "A daily window loaded through the day",
		Text: "The day's rows reach the table every hour (or every 5 million rows) while the day is open; with load mode append each load adds only the new rows.",
		YAML: `window:
  size: 24h
  late: revise
  early_every: 1h
  early_rows: 5000000
`},
	{Section: "window", Title: "Hopping windows",
		Text: "One-hour windows starting every 15 minutes: each event is in four of them.",
		YAML: `window:
  kind: hopping
  size: 1h
  slide: 15m
`},
	{Section: "window", Title: "Session windows",
		Text: "Sessions need a key (a top-level key, so it is part of the fragment).",
		YAML: `window:
  kind: session
  gap: 30m
  max_open_sessions: 20000
key: [order_id]
`},

	{Section: "segment", Title: "Smaller, more frequent segments",
		YAML: `segment:
  max_rows: 50000
  max_bytes: 32MiB
  max_age: 2s
`},

	{Section: "output", Title: "Parquet output",
		YAML: `output:
  compression: snappy
  target_file_size: 256MiB
  max_file_rows: 5000000
  row_group_rows: 65536
  sort_by: [order_id, created_at]
`},

	{Section: "load", Title: "Append",
		YAML: `load:
  table: raw.orders
  mode: append
`},
	{Section: "load", Title: "Replace a window's rows",
		YAML: `load:
  table: analytics.orders_hourly
  mode: replace
`},
	{Section: "load", Title: "Merge on a key, then update a rollup",
		YAML: `load:
  table: orders
  mode: merge
  merge_key: [order_id]
  post_load:
    - DELETE FROM orders_hourly WHERE window_start = $window_start
    - INSERT INTO orders_hourly SELECT $window_start, count(*) FROM orders WHERE created_at >= $window_start AND created_at < $window_end
`},

	{Section: "sla", Title: "A deadline",
		Text: "Each window should be loaded within two hours of its end.",
		YAML: `sla:
  deadline: 2h
`},
}

// isFragment reports whether an example lacks a top-level name.
func isFragment(src string) (bool, error) {
	var top map[string]any
	if err := yaml.Unmarshal([]byte(src), &top); err != nil {
		return false, err
	}
	_, hasName := top["name"]
	return !hasName, nil
}

// policyOf returns the whole policy an example stands for: itself, or the
// minimal policy with the example's top-level keys in place of its own.
func policyOf(src string) ([]byte, error) {
	frag, err := isFragment(src)
	if err != nil {
		return nil, err
	}
	if !frag {
		return []byte(src), nil
	}
	base, err := mappingOf(minimalPolicy)
	if err != nil {
		return nil, err
	}
	part, err := mappingOf(src)
	if err != nil {
		return nil, err
	}
	for i := 0; i+1 < len(part.Content); i += 2 {
		k, v := part.Content[i], part.Content[i+1]
		replaced := false
		for j := 0; j+1 < len(base.Content); j += 2 {
			if base.Content[j].Value == k.Value {
				base.Content[j+1] = v
				replaced = true
			}
		}
		if !replaced {
			base.Content = append(base.Content, k, v)
		}
	}
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(base); err != nil {
		return nil, err
	}
	if err := enc.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func mappingOf(src string) (*yaml.Node, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal([]byte(src), &doc); err != nil {
		return nil, err
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) != 1 || doc.Content[0].Kind != yaml.MappingNode {
		return nil, fmt.Errorf("not a YAML mapping")
	}
	return doc.Content[0], nil
}

// checkExample parses the policy of an example with windows.ParsePolicy.
func checkExample(ex example) error {
	data, err := policyOf(ex.YAML)
	if err != nil {
		return fmt.Errorf("example %q: %w", ex.Title, err)
	}
	if _, err := windows.ParsePolicy(ex.Title+".yaml", data); err != nil {
		return fmt.Errorf("example %q (section %q) does not validate:\n%w\npolicy:\n%s", ex.Title, ex.Section, err, data)
	}
	return nil
}

// examplePaths returns the key paths an example writes (schema.fields[].name).
func examplePaths(src string) (map[string]bool, error) {
	root, err := mappingOf(src)
	if err != nil {
		return nil, err
	}
	out := map[string]bool{}
	var walk func(n *yaml.Node, path string)
	walk = func(n *yaml.Node, path string) {
		switch n.Kind {
		case yaml.MappingNode:
			for i := 0; i+1 < len(n.Content); i += 2 {
				p := n.Content[i].Value
				if path != "" {
					p = path + "." + p
				}
				out[p] = true
				walk(n.Content[i+1], p)
			}
		case yaml.SequenceNode:
			for _, c := range n.Content {
				walk(c, path+"[]")
			}
		}
	}
	walk(root, "")
	return out, nil
}

// uncovered returns the keys of the reference that no example writes.
func uncovered(m *model) ([]string, error) {
	seen := map[string]bool{}
	for _, ex := range examples {
		ps, err := examplePaths(ex.YAML)
		if err != nil {
			return nil, fmt.Errorf("example %q: %w", ex.Title, err)
		}
		for p := range ps {
			seen[p] = true
		}
	}
	var out []string
	for _, r := range m.rows() {
		if !seen[r.Path] {
			out = append(out, r.Path)
		}
	}
	return out, nil
}

// checkSections reports examples whose section is not a section of the reference.
func checkSections(m *model) error {
	var keys []string
	for _, s := range m.sections {
		keys = append(keys, s.Key)
	}
	var bad []string
	for _, ex := range examples {
		if !slices.Contains(keys, ex.Section) {
			bad = append(bad, fmt.Sprintf("%q (section %q)", ex.Title, ex.Section))
		}
	}
	if len(bad) > 0 {
		return fmt.Errorf("examples for sections the policy does not have: %s", strings.Join(bad, ", "))
	}
	return nil
}
