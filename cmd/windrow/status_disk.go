package main

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/windrow/windrow/app/metrics"
)

// A full disk is a process's condition, not the cluster's: NATS does not
// know it. `windrow status` asks the /readyz of the windrow processes on
// this host instead, at the default metrics addresses of `windrow up` and
// the role commands (or those of --metrics), and shows their "disk full"
// lines at the top. Processes elsewhere, or with their metrics server off
// or moved, are not seen: their /readyz, windrow_disk_full and the
// WindrowDiskFull alert are.

// defaultStatusMetrics are the metrics addresses status asks by default.
func defaultStatusMetrics() string {
	addrs := make([]string, 0, len(metricsDefaults))
	for _, a := range metricsDefaults {
		if !slices.Contains(addrs, a) {
			addrs = append(addrs, a)
		}
	}
	slices.Sort(addrs)
	return strings.Join(addrs, ",")
}

// diskFullReports returns the "disk full" lines of the /readyz of the
// metrics servers at addrs (host:port or URLs, comma-separated; "off":
// none), each prefixed with its address. A server that does not answer
// within a second is skipped: no windrow process listens there.
func diskFullReports(ctx context.Context, addrs string) []string {
	if metrics.Disabled(addrs) {
		return nil
	}
	var out []string
	for _, a := range strings.Split(addrs, ",") {
		a = strings.TrimSpace(a)
		if a == "" {
			continue
		}
		base := a
		if !strings.Contains(base, "://") {
			base = "http://" + base
		}
		for _, line := range readyzLines(ctx, strings.TrimSuffix(base, "/")+"/readyz") {
			if strings.HasPrefix(line, "disk full:") {
				out = append(out, fmt.Sprintf("DISK FULL (windrow at %s): %s", a, strings.TrimPrefix(line, "disk full: ")))
			}
		}
	}
	return out
}

// readyzLines GETs url and returns its body's lines; nil when it cannot.
func readyzLines(ctx context.Context, url string) []string {
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil
	}
	defer resp.Body.Close()
	var lines []string
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		lines = append(lines, sc.Text())
	}
	return lines
}
