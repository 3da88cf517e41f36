package stack

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/windrow/windrow/adapters/natsx"
	"github.com/windrow/windrow/windows"
)

// ApplyPolicy validates and stores one policy file and makes sure its source
// stream exists, so that producers can publish right away.
func (s *Stack) ApplyPolicy(ctx context.Context, filename string, data []byte) (*windows.Policy, error) {
	p, err := s.Policies.Apply(ctx, filename, data)
	if err != nil {
		return nil, err
	}
	if _, err := natsx.EnsureSourceStream(ctx, s.JS, p.Source.Stream, p.Source.Subjects); err != nil {
		return nil, fmt.Errorf("policy %s: %w", p.Name, err)
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
