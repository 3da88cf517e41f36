// Command windrow runs windrow's services and tools. See `windrow help`.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	_ "time/tzdata" // window time zones must not depend on the host's zoneinfo
)

type command struct {
	name, args, summary string
	run                 func(ctx context.Context, args []string) error
}

var commands []command

func init() {
	commands = []command{
		{"demo", "[--data-dir D] [--events N] [--days N] [--reset]", "run everything in one process with an example policy and sales events, then print a summary", runDemo},
		{"up", "[--config windrow.yaml] [--data-dir D] [--roles r,...]", "run the services long-lived (embedded NATS unless --nats-url)", runUp},
		{"collector", "--nats-url URL [--data-dir D]", "run only the collector role against an existing NATS", roleCmd("collector")},
		{"compactor", "--nats-url URL [--data-dir D]", "run only the compactor role against an existing NATS", roleCmd("compactor")},
		{"loader", "--nats-url URL [--data-dir D] [--duckdb F]", "run only the loader role against an existing NATS", roleCmd("loader")},
		{"publish", "--subject S [--file F|-] [--msg-id position|hash|field:NAME|none] [--input-id NAME] [--flush]", "publish NDJSON events (async, a Nats-Msg-Id per input line, progress and rate; counts what the stream dropped as duplicates)", runPublish},
		{"flush", "POLICY... [--all]", "declare a policy's input complete up to now, so its last windows close without waiting for the idle rule", runFlush},
		{"status", "[--policy P]", "show each policy's windows: state, rows, files, lag, watermark", runStatus},
		{"replay", "--policy P --from T1 --to T2 [--from-stream] [--dry-run]", "load windows again from their batch files (or rebuild them from the source stream), replacing what they put in the warehouse", runReplay},
		{"reconcile", "[--policy P] [--window W]", "check per window and per policy that published = loaded + dead-lettered + late", runReconcile},
		{"policy", "validate|apply|diff|list|get|delete ...", "manage window policies (versioned in NATS KV; apply shows a diff)", runPolicy},
		{"dlq", "ls|show|redrive ...", "list dead letters by policy and reason, show one, re-publish fixed or all of a reason", runDLQ},
		{"query", "SQL", "run a read-only SQL query on the warehouse", runQuery},
		{"probe", "[--addr HOST:PORT] healthz|readyz", "GET a windrow process's /healthz or /readyz; exit 0 only on 200 (container health checks)", runProbe},
		{"bench", "[--events N] [--windows N]", "fill a stream, run the pipeline, report events/s and peak RSS", runBench},
	}
}

func usage() {
	fmt.Fprintf(os.Stderr, "windrow: NATS JetStream events → time windows → Parquet → warehouse, exactly once.\n\nUsage:\n")
	for _, c := range commands {
		fmt.Fprintf(os.Stderr, "  windrow %-9s %s\n  %11s %s\n", c.name, c.args, "", c.summary)
	}
	fmt.Fprintf(os.Stderr, "\nRun `windrow COMMAND -h` for a command's flags.\n")
}

func main() {
	if len(os.Args) < 2 || os.Args[1] == "help" || os.Args[1] == "-h" || os.Args[1] == "--help" {
		usage()
		if len(os.Args) < 2 {
			os.Exit(2)
		}
		return
	}
	name := os.Args[1]
	for _, c := range commands {
		if c.name != name {
			continue
		}
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		err := c.run(ctx, os.Args[2:])
		stop()
		if err != nil && !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintf(os.Stderr, "windrow %s: %v\n", name, err)
			os.Exit(1)
		}
		return
	}
	fmt.Fprintf(os.Stderr, "windrow: unknown command %q\n\n", name)
	usage()
	os.Exit(2)
}
