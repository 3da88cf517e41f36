package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestPolicyValidate(t *testing.T) {
	ctx := context.Background()
	if err := runPolicy(ctx, []string{"validate", "../../deploy/policies"}); err != nil {
		t.Fatalf("validate deploy/policies: %v", err)
	}
	bad := filepath.Join(t.TempDir(), "bad.yaml")
	src, err := os.ReadFile("../../deploy/policies/daily_store_sales.yaml")
	if err != nil {
		t.Fatal(err)
	}
	broken := strings.Replace(string(src), "size: 24h", "size: 25x", 1)
	if err := os.WriteFile(bad, []byte(broken), 0o644); err != nil {
		t.Fatal(err)
	}
	err = runPolicy(ctx, []string{"validate", bad})
	if err == nil || !strings.Contains(err.Error(), "1 of 1 policy files are invalid") {
		t.Fatalf("validate broken file: err = %v, want it reported invalid", err)
	}
}

func TestUpConfigRejectsUnknownKeys(t *testing.T) {
	path := filepath.Join(t.TempDir(), "windrow.yaml")
	if err := os.WriteFile(path, []byte("data_dir: x\nnats:\n  prot: 4222\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := loadUpConfig(path); err == nil || !strings.Contains(err.Error(), "prot") {
		t.Fatalf("loadUpConfig = %v, want an error naming the unknown key", err)
	}
	c, err := loadUpConfig("../../deploy/windrow.yaml")
	if err != nil {
		t.Fatalf("deploy/windrow.yaml: %v", err)
	}
	if c.Loader.Workers != 4 {
		t.Errorf("deploy/windrow.yaml: loader.workers = %d, want 4", c.Loader.Workers)
	}
}
