package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"
)

// runProbe is `windrow probe`: GET /healthz or /readyz of a windrow process
// and exit 0 only on 200. It exists for container health checks, since the
// image holds the windrow binary alone (no shell, curl or wget):
//
//	healthcheck: ["CMD", "/usr/local/bin/windrow", "probe", "--addr", "127.0.0.1:9464", "readyz"]
func runProbe(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("probe", flag.ContinueOnError)
	addr := fs.String("addr", metricsDefaults["up"], "host:port of the process's metrics server (its --metrics-addr)")
	timeout := fs.Duration("timeout", 5*time.Second, "how long to wait for the answer")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 || (fs.Arg(0) != "healthz" && fs.Arg(0) != "readyz") {
		return errors.New("usage: windrow probe [--addr HOST:PORT] healthz|readyz")
	}
	// A listen address such as 0.0.0.0:9464 or :9464 is probed on loopback.
	host := *addr
	host = strings.Replace(host, "0.0.0.0:", "127.0.0.1:", 1)
	if strings.HasPrefix(host, ":") {
		host = "127.0.0.1" + host
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	url := "http://" + host + "/" + fs.Arg(0)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("GET %s: %w", url, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s: %s", url, resp.Status, strings.TrimSpace(string(body)))
	}
	fmt.Fprint(os.Stdout, string(body))
	return nil
}
