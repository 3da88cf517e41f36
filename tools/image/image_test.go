package main

import (
	"archive/tar"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// TestImageTarballReadsBack: the tarball WriteFile makes from a small
// stand-in binary reads back with go-containerregistry under its tag, with
// the entrypoint, user, working directory and port in its config and the
// binary, passwd entry, /tmp and CA bundle in its one layer.
func TestImageTarballReadsBack(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "windrow")
	binData := []byte("#!/bin/sh\necho stand-in\n")
	if err := os.WriteFile(bin, binData, 0o755); err != nil {
		t.Fatal(err)
	}
	ca := filepath.Join(dir, "ca.crt")
	if err := os.WriteFile(ca, []byte("-----BEGIN CERTIFICATE-----\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "windrow.tar")
	if err := WriteFile(out, Config{Binary: bin, Tag: "windrow:test", Arch: "arm64", CABundle: ca, Revision: "abc123"}); err != nil {
		t.Fatal(err)
	}

	if err := Check(out, "windrow:test", bin); err != nil {
		t.Errorf("check: %v", err)
	}
	if err := Check(out, "windrow:test", ca); err == nil {
		t.Error("check against another file: no error")
	}

	tag, err := name.NewTag("windrow:test")
	if err != nil {
		t.Fatal(err)
	}
	img, err := tarball.ImageFromPath(out, &tag)
	if err != nil {
		t.Fatalf("read the tarball back: %v", err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	c := cf.Config
	if cf.OS != "linux" || cf.Architecture != "arm64" {
		t.Errorf("platform %s/%s, want linux/arm64", cf.OS, cf.Architecture)
	}
	if !slices.Equal(c.Entrypoint, []string{BinaryPath}) || c.User != "65532:65532" || c.WorkingDir != DataDir {
		t.Errorf("entrypoint %q, user %q, workdir %q", c.Entrypoint, c.User, c.WorkingDir)
	}
	if _, ok := c.ExposedPorts["9464/tcp"]; !ok {
		t.Errorf("exposed ports %v, want 9464/tcp", c.ExposedPorts)
	}
	if c.Labels["org.opencontainers.image.revision"] != "abc123" || c.Labels["org.opencontainers.image.title"] != "windrow" {
		t.Errorf("labels %v", c.Labels)
	}

	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	if len(layers) != 1 {
		t.Fatalf("%d layers, want 1", len(layers))
	}
	rc, err := layers[0].Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	files := map[string]*tar.Header{}
	contents := map[string]string{}
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		data, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		files[strings.TrimSuffix(h.Name, "/")] = h
		contents[strings.TrimSuffix(h.Name, "/")] = string(data)
	}
	if h := files["usr/local/bin/windrow"]; h == nil || h.Mode&0o111 == 0 || contents["usr/local/bin/windrow"] != string(binData) {
		t.Errorf("usr/local/bin/windrow: %+v, want the binary, executable", h)
	}
	if !strings.Contains(contents["etc/passwd"], "windrow:x:65532:65532:") {
		t.Errorf("etc/passwd has no windrow user:\n%s", contents["etc/passwd"])
	}
	if h := files["tmp"]; h == nil || h.Typeflag != tar.TypeDir || h.Mode != 0o1777 {
		t.Errorf("tmp: %+v, want a directory with mode 1777", h)
	}
	if h := files["var/lib/windrow"]; h == nil || h.Uid != UID {
		t.Errorf("var/lib/windrow: %+v, want owned by %d", h, UID)
	}
	if contents["etc/ssl/certs/ca-certificates.crt"] == "" {
		t.Error("no CA bundle in the layer")
	}
}

// TestImageWithoutCABundle: a missing CA bundle is skipped, not an error.
func TestImageWithoutCABundle(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "windrow")
	if err := os.WriteFile(bin, []byte("x"), 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := Build(Config{Binary: bin, Tag: "windrow:test", Arch: "amd64", CABundle: filepath.Join(dir, "none.crt")}); err != nil {
		t.Fatal(err)
	}
}
