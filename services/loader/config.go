package loader

import (
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/windrow/windrow/adapters/objstore"
	"github.com/windrow/windrow/adapters/telemetry"
	"github.com/windrow/windrow/adapters/warehouse"
	"github.com/windrow/windrow/messages"
	"github.com/windrow/windrow/pipeline/lifecycle"
)

// Defaults of Config.
const (
	DefaultAckWait        = 2 * time.Minute
	DefaultMaxRetries     = 5
	DefaultInitialBackoff = 500 * time.Millisecond
	DefaultMaxBackoff     = 30 * time.Second
	DefaultMultiplier     = 2.0
	DefaultWorkers        = 4
	DefaultMaxWaiting     = 1000
	// DurablePrefix names the loader's durable consumer: "windrow_loader", or
	// "windrow_loader_<policy>" for a loader of one policy.
	DurablePrefix = "windrow_loader"
)

// RetryConfig is the in-process retry of transient failures, with
// exponential backoff: InitialInterval, ×Multiplier, capped at MaxInterval.
type RetryConfig struct {
	// MaxRetries after the first attempt. Default 5; -1 disables retries.
	MaxRetries int
	// InitialInterval before the first retry. Default 500ms.
	InitialInterval time.Duration
	// MaxInterval caps the backoff; it is also the redelivery delay (NakDelay)
	// of a command whose transient failure outlasted the retries. Default 30s.
	MaxInterval time.Duration
	// Multiplier of the backoff. Default 2.
	Multiplier float64
}

// Config configures a loader Service.
type Config struct {
	// Tracing records the loader's spans of window runs; nil: off.
	Tracing *telemetry.Tracing
	// JS is the JetStream context; the windrow streams must exist (natsx.Provision). Required.
	JS jetstream.JetStream
	// Warehouse loads the batches. Required. The Service does not close it.
	Warehouse warehouse.Warehouse
	// Objects is the object store that holds the batch files
	// (LoadCommand.Object); the loader reads each to verify its checksum
	// before the load. It must be the store the warehouse reads. Required.
	Objects objstore.Store
	// Policies are the stored policy versions every command is checked
	// against (a *policystore.Store over the windrow_policies bucket): the
	// loader takes table, load mode, merge key, post-load statements and
	// columns from the version a command names, never from the message.
	// Required.
	Policies PolicyVersions
	// Instance names this loader in LoadResult.Loader. Default:
	// lifecycle.DefaultInstance()+"/loader".
	Instance string
	// Logger. Default: discard.
	Logger *slog.Logger
	// Policy, if set, restricts the loader to that policy's commands (its own
	// durable consumer "windrow_loader_<policy>"). Default: every policy.
	Policy string
	// Retry of transient failures.
	Retry RetryConfig
	// AckWait of the command consumer; InProgress is sent every AckWait/3
	// while a load runs. Default 2m.
	AckWait time.Duration
	// Workers is how many commands the loader handles at once. Commands of
	// one window (policy and window id) run one at a time, in the order
	// they were fetched; commands of other windows run in parallel.
	// Default 4.
	Workers int
	// MaxWaiting caps the commands fetched ahead and held (with InProgress)
	// while their window's earlier command runs or no worker is free, so a
	// command of another window can overtake a long run of one window's
	// commands. Default 1000; -1: none are held. The consumer's
	// MaxAckPending (server default 1000) caps what all loaders sharing it
	// hold together.
	MaxWaiting int
	// OnLoad, if set, is called at the end of every attempt to handle a
	// command (metrics): the command's policy ("" if it could not be
	// decoded), the status "loaded", "duplicate" or "error" (the attempt
	// failed; a transient failure is retried, a permanent one is reported
	// as failed), the attempt's duration and the rows it loaded. It is
	// called on the workers' goroutines, possibly at once, and must be safe
	// for that and not block.
	OnLoad func(policy, status string, d time.Duration, rows int64)
}

func (c *Config) setDefaults() {
	if c.Instance == "" {
		c.Instance = lifecycle.DefaultInstance() + "/loader"
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.AckWait == 0 {
		c.AckWait = DefaultAckWait
	}
	if c.Workers == 0 {
		c.Workers = DefaultWorkers
	}
	if c.MaxWaiting == 0 {
		c.MaxWaiting = DefaultMaxWaiting
	}
	r := &c.Retry
	if r.MaxRetries == 0 {
		r.MaxRetries = DefaultMaxRetries
	}
	if r.InitialInterval == 0 {
		r.InitialInterval = DefaultInitialBackoff
	}
	if r.MaxInterval == 0 {
		r.MaxInterval = DefaultMaxBackoff
	}
	if r.Multiplier == 0 {
		r.Multiplier = DefaultMultiplier
	}
}

// Validate reports every problem of the configuration at once.
func (c *Config) Validate() error {
	var errs []error
	if c.JS == nil {
		errs = append(errs, errors.New("JS: required"))
	}
	if c.Warehouse == nil {
		errs = append(errs, errors.New("Warehouse: required"))
	}
	if c.Objects == nil {
		errs = append(errs, errors.New("Objects: required"))
	}
	if c.Policies == nil {
		errs = append(errs, errors.New("Policies: required"))
	}
	if c.Policy != "" && strings.ContainsAny(c.Policy, ".*> \t\r\n") {
		errs = append(errs, fmt.Errorf("Policy: %q must not contain '.', '*', '>' or whitespace", c.Policy))
	}
	if c.AckWait < time.Second {
		errs = append(errs, fmt.Errorf("AckWait: %s, want >= 1s", c.AckWait))
	}
	if c.Workers < 1 {
		errs = append(errs, fmt.Errorf("Workers: %d, want >= 1", c.Workers))
	}
	if c.MaxWaiting < -1 {
		errs = append(errs, fmt.Errorf("MaxWaiting: %d, want -1 (none) or >= 0", c.MaxWaiting))
	}
	r := c.Retry
	if r.MaxRetries < -1 {
		errs = append(errs, fmt.Errorf("Retry.MaxRetries: %d, want -1 (none) or >= 0", r.MaxRetries))
	}
	if r.InitialInterval < 0 {
		errs = append(errs, fmt.Errorf("Retry.InitialInterval: %s, want > 0", r.InitialInterval))
	}
	if r.MaxInterval < r.InitialInterval {
		errs = append(errs, fmt.Errorf("Retry.MaxInterval: %s, want >= InitialInterval (%s)", r.MaxInterval, r.InitialInterval))
	}
	if r.Multiplier < 1 {
		errs = append(errs, fmt.Errorf("Retry.Multiplier: %g, want >= 1", r.Multiplier))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("loader config: %w", err)
	}
	return nil
}

// durable is the consumer name of this loader.
func (c *Config) durable() string {
	if c.Policy == "" {
		return DurablePrefix
	}
	return DurablePrefix + "_" + c.Policy
}

// maxWaiting is MaxWaiting as the subscriber takes it.
func (c *Config) maxWaiting() int {
	if c.MaxWaiting < 0 {
		return 0
	}
	return c.MaxWaiting
}

// filter is the subject filter of this loader.
func (c *Config) filter() string {
	if c.Policy == "" {
		return messages.SubjectsLoad
	}
	return messages.LoadSubject(c.Policy)
}
