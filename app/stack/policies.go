package stack

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/windrow/windrow/adapters/natsx"
	"github.com/windrow/windrow/adapters/policystore"
	"github.com/windrow/windrow/windows"
)

// ApplyPolicy validates and stores one policy file and makes sure its source
// stream exists, so that producers can publish right away. Limits of an
// existing stream that can remove events before they are collected are
// logged at warn level (natsx.SourceStreamWarnings); a stream windrow
// refuses to collect from is an error.
func (s *Stack) ApplyPolicy(ctx context.Context, filename string, data []byte) (*windows.Policy, error) {
	parsed, err := windows.ParsePolicy(filename, data)
	if err != nil {
		return nil, err
	}
	if err := natsx.CheckSourceStream(ctx, s.JS, parsed.Source.Stream); err != nil {
		return nil, fmt.Errorf("policy %s: not applied: %w", parsed.Name, err)
	}
	p, err := s.Policies.Apply(ctx, filename, data)
	if err != nil {
		return nil, err
	}
	stream, err := natsx.EnsureSourceStream(ctx, s.JS, p.Source.Stream, p.Source.Subjects, s.NATSOptions()...)
	if err != nil {
		return nil, fmt.Errorf("policy %s: %w", p.Name, err)
	}
	if w := natsx.ReplicaWarning(stream.CachedInfo().Config, s.cfg.NATSReplicas); w != "" {
		s.Log.Warn(w, "policy", p.Name, "stream", p.Source.Stream)
	}
	for _, w := range natsx.SourceStreamWarnings(stream.CachedInfo().Config) {
		s.Log.Warn("source stream can lose events: "+w, "policy", p.Name, "stream", p.Source.Stream)
	}
	if w := natsx.RetainWarning(stream.CachedInfo().Config, p.Window.RetainFor().D()); w != "" {
		s.Log.Warn("source stream outlives window.retain: "+w, "policy", p.Name, "stream", p.Source.Stream)
	}
	return p, nil
}

// ApplyPolicyFiles validates and stores policy files; a directory applies
// every *.yaml and *.yml file in it. Every invalid file is reported.
func (s *Stack) ApplyPolicyFiles(ctx context.Context, paths []string) ([]*windows.Policy, error) {
	files, err := PolicyFiles(paths)
	if err != nil {
		return nil, err
	}
	var out []*windows.Policy
	var errs []error
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		p, err := s.ApplyPolicy(ctx, f, data)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		out = append(out, p)
	}
	return out, errors.Join(errs...)
}

// KeptPolicy is a policy file ApplyPolicyFilesAtStart did not apply: the
// stored version differs from it and was stored after the file was last
// modified (a live `windrow policy apply` since), so applying the file
// would revert it.
type KeptPolicy struct {
	File     string
	Name     string
	Version  uint64    // the stored version kept
	Stored   time.Time // when it was stored
	Modified time.Time // when the file was last modified
}

func (k KeptPolicy) String() string {
	return fmt.Sprintf("policy %s: kept the stored version %d (stored %s), which is newer than %s (modified %s) and differs from it; "+
		"apply the file with `windrow policy apply %s`, or start with --force-policies to revert to it",
		k.Name, k.Version, k.Stored.UTC().Format(time.RFC3339), k.File, k.Modified.UTC().Format(time.RFC3339), k.File)
}

// ApplyPolicyFilesAtStart applies policy files as a process starts with
// them (`windrow up --policy`): a file the store already holds is a no-op;
// a file that differs from the stored version is applied only if it was
// modified after that version was stored, so that restarting a process
// with its old files never reverts a live change. force applies every
// file as ApplyPolicyFiles does. It returns the policies applied or
// already current, and the files kept back.
func (s *Stack) ApplyPolicyFilesAtStart(ctx context.Context, paths []string, force bool) ([]*windows.Policy, []KeptPolicy, error) {
	if force {
		ps, err := s.ApplyPolicyFiles(ctx, paths)
		return ps, nil, err
	}
	files, err := PolicyFiles(paths)
	if err != nil {
		return nil, nil, err
	}
	var out []*windows.Policy
	var kept []KeptPolicy
	var errs []error
	for _, f := range files {
		k, p, err := s.applyAtStart(ctx, f)
		switch {
		case err != nil:
			errs = append(errs, err)
		case k != nil:
			kept = append(kept, *k)
		default:
			out = append(out, p)
		}
	}
	return out, kept, errors.Join(errs...)
}

func (s *Stack) applyAtStart(ctx context.Context, file string) (*KeptPolicy, *windows.Policy, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, nil, err
	}
	st, err := os.Stat(file)
	if err != nil {
		return nil, nil, err
	}
	p, err := windows.ParsePolicy(file, data)
	if err != nil {
		return nil, nil, err
	}
	cur, err := s.Policies.Current(ctx, p.Name)
	if err == nil && !st.ModTime().After(cur.Stored) {
		plan, err := s.Policies.Plan(ctx, p, data)
		if err != nil {
			return nil, nil, policystore.InFile(err, file)
		}
		if plan.Changed {
			return &KeptPolicy{File: file, Name: p.Name, Version: cur.Version, Stored: cur.Stored, Modified: st.ModTime()}, nil, nil
		}
	} else if err != nil && !errors.Is(err, policystore.ErrNotFound) {
		return nil, nil, err
	}
	p, err = s.ApplyPolicy(ctx, file, data)
	return nil, p, err
}

// PolicyFiles expands directories into their YAML files.
func PolicyFiles(paths []string) ([]string, error) {
	var files []string
	for _, p := range paths {
		st, err := os.Stat(p)
		if err != nil {
			return nil, fmt.Errorf("policy path: %w", err)
		}
		if !st.IsDir() {
			files = append(files, p)
			continue
		}
		for _, pat := range []string{"*.yaml", "*.yml"} {
			m, _ := filepath.Glob(filepath.Join(p, pat))
			files = append(files, m...)
		}
	}
	return files, nil
}

// shapeFloor gathers what windows.Policy.ShapeFloor needs of a policy: its
// watermark and the ends of its stored windows.
func (s *Stack) shapeFloor(ctx context.Context, cur *windows.Policy) (time.Time, error) {
	wm, ok, err := s.Watermarks.Get(ctx, cur.Name)
	if err != nil {
		return time.Time{}, fmt.Errorf("watermark of %s: %w", cur.Name, err)
	}
	var watermark time.Time
	if ok {
		watermark = wm.Watermark
	}
	states, err := s.States.List(ctx, cur.Name)
	if err != nil {
		return time.Time{}, fmt.Errorf("windows of %s: %w", cur.Name, err)
	}
	ends := make([]time.Time, len(states))
	for i, st := range states {
		ends[i] = st.WindowEnd
	}
	return cur.ShapeFloor(time.Now(), watermark, ends)
}
