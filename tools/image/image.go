package main

import (
	"archive/tar"
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// The image's layout; deploy/docker/Dockerfile and the Helm chart and
// compose file assume the same.
const (
	// BinaryPath is where the windrow binary is, and the entrypoint.
	BinaryPath = "/usr/local/bin/windrow"
	// DataDir is the working directory and the default --data-dir root,
	// writable by the user.
	DataDir = "/var/lib/windrow"
	// UID and GID of the user windrow (distroless's "nonroot" number).
	UID = 65532
	GID = 65532
	// MetricsPort is the port the compose file and Helm chart give
	// --metrics-addr (0.0.0.0:9464): /metrics, /healthz, /readyz.
	MetricsPort = "9464/tcp"
	// DefaultCABundle is where Go's crypto/x509 looks first on Linux.
	DefaultCABundle = "/etc/ssl/certs/ca-certificates.crt"
)

// Config is what goes into the image.
type Config struct {
	// Binary is the path of the static windrow binary on this machine.
	Binary string
	// Tag names the image in the tarball, e.g. windrow:dev.
	Tag string
	// Arch is the image's architecture (GOARCH names), e.g. amd64.
	Arch string
	// CABundle is a PEM file to install at DefaultCABundle; skipped if it
	// does not exist, none if "".
	CABundle string
	// Revision and Version are OCI labels; empty: not set.
	Revision, Version string
}

// Build returns the image: one layer on an empty base, and its config.
func Build(cfg Config) (v1.Image, error) {
	if cfg.Arch == "" {
		return nil, errors.New("no architecture")
	}
	layerTar, err := layer(cfg)
	if err != nil {
		return nil, err
	}
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(layerTar)), nil
	})
	if err != nil {
		return nil, fmt.Errorf("layer: %w", err)
	}
	img, err := mutate.Append(empty.Image, mutate.Addendum{
		Layer: l,
		History: v1.History{
			CreatedBy: "windrow tools/image: " + BinaryPath + ", /etc/passwd, /etc/group, /tmp, " + DataDir + ", CA bundle",
			Comment:   "static windrow binary",
		},
	})
	if err != nil {
		return nil, fmt.Errorf("append layer: %w", err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cf = cf.DeepCopy()
	cf.OS = "linux"
	cf.Architecture = cfg.Arch
	cf.Config = imageConfig(cfg)
	img, err = mutate.ConfigFile(img, cf)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	return img, nil
}

// imageConfig is the runtime config: the entrypoint, the user, the port.
func imageConfig(cfg Config) v1.Config {
	labels := map[string]string{
		"org.opencontainers.image.title":       "windrow",
		"org.opencontainers.image.description": "NATS JetStream events → time windows → Parquet → warehouse, exactly once",
		"org.opencontainers.image.source":      "https://github.com/windrow/windrow",
	}
	if cfg.Revision != "" {
		labels["org.opencontainers.image.revision"] = cfg.Revision
	}
	if cfg.Version != "" {
		labels["org.opencontainers.image.version"] = cfg.Version
	}
	return v1.Config{
		Entrypoint:   []string{BinaryPath},
		Cmd:          []string{"help"},
		User:         fmt.Sprintf("%d:%d", UID, GID),
		WorkingDir:   DataDir,
		ExposedPorts: map[string]struct{}{MetricsPort: {}},
		Env:          []string{"PATH=/usr/local/bin:/usr/bin:/bin"},
		Labels:       labels,
		StopSignal:   "SIGTERM",
	}
}

// layer is the uncompressed tar of the one layer.
func layer(cfg Config) ([]byte, error) {
	bin, err := os.ReadFile(cfg.Binary)
	if err != nil {
		return nil, fmt.Errorf("binary: %w", err)
	}
	var ca []byte
	if cfg.CABundle != "" {
		ca, err = os.ReadFile(cfg.CABundle)
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("CA bundle: %w", err)
		}
	}
	passwd := fmt.Sprintf("root:x:0:0:root:/root:/sbin/nologin\nwindrow:x:%d:%d:windrow:%s:/sbin/nologin\n", UID, GID, DataDir)
	group := fmt.Sprintf("root:x:0:\nwindrow:x:%d:\n", GID)

	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	// A fixed time: the same inputs make the same layer digest.
	mtime := time.Unix(0, 0).UTC()
	dir := func(path string, mode int64, uid, gid int) error {
		return tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: path + "/", Mode: mode, Uid: uid, Gid: gid, ModTime: mtime, Format: tar.FormatPAX})
	}
	file := func(path string, mode int64, data []byte) error {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: path, Mode: mode, Size: int64(len(data)), ModTime: mtime, Format: tar.FormatPAX}); err != nil {
			return err
		}
		_, err := tw.Write(data)
		return err
	}
	steps := []func() error{
		func() error { return dir("etc", 0o755, 0, 0) },
		func() error { return file("etc/passwd", 0o644, []byte(passwd)) },
		func() error { return file("etc/group", 0o644, []byte(group)) },
		func() error { return dir("tmp", 0o1777, 0, 0) },
		func() error { return dir("usr", 0o755, 0, 0) },
		func() error { return dir("usr/local", 0o755, 0, 0) },
		func() error { return dir("usr/local/bin", 0o755, 0, 0) },
		func() error { return file("usr/local/bin/windrow", 0o755, bin) },
		func() error { return dir("var", 0o755, 0, 0) },
		func() error { return dir("var/lib", 0o755, 0, 0) },
		func() error { return dir("var/lib/windrow", 0o700, UID, GID) },
	}
	if len(ca) > 0 {
		steps = append(steps,
			func() error { return dir("etc/ssl", 0o755, 0, 0) },
			func() error { return dir("etc/ssl/certs", 0o755, 0, 0) },
			func() error { return file("etc/ssl/certs/ca-certificates.crt", 0o644, ca) },
		)
	}
	for _, step := range steps {
		if err := step(); err != nil {
			return nil, fmt.Errorf("layer tar: %w", err)
		}
	}
	if err := tw.Close(); err != nil {
		return nil, fmt.Errorf("layer tar: %w", err)
	}
	return buf.Bytes(), nil
}

// WriteFile builds the image and writes it to path as a tarball in the
// format of `docker save`, which docker load takes, with the OCI manifest
// beside it; written to a temporary file and renamed into place.
func WriteFile(path string, cfg Config) error {
	tag, err := name.NewTag(cfg.Tag)
	if err != nil {
		return fmt.Errorf("tag %q: %w", cfg.Tag, err)
	}
	img, err := Build(cfg)
	if err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := tarball.WriteToFile(tmp, tag, img); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return err
	}
	return nil
}

// Check reads the tarball at path back: the image tagged tag must have
// BinaryPath as its entrypoint and an executable file there, with the
// bytes of the file binary if binary is not "".
func Check(path, tag, binary string) error {
	t, err := name.NewTag(tag)
	if err != nil {
		return fmt.Errorf("tag %q: %w", tag, err)
	}
	img, err := tarball.ImageFromPath(path, &t)
	if err != nil {
		return fmt.Errorf("read %s: %w", path, err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return fmt.Errorf("%s: config: %w", path, err)
	}
	if len(cf.Config.Entrypoint) != 1 || cf.Config.Entrypoint[0] != BinaryPath {
		return fmt.Errorf("%s: entrypoint %q, want [%s]", path, cf.Config.Entrypoint, BinaryPath)
	}
	var want []byte
	if binary != "" {
		if want, err = os.ReadFile(binary); err != nil {
			return err
		}
	}
	rc := mutate.Extract(img)
	defer rc.Close()
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return fmt.Errorf("%s: no %s in the image", path, BinaryPath)
		}
		if err != nil {
			return fmt.Errorf("%s: layers: %w", path, err)
		}
		if "/"+h.Name != BinaryPath {
			continue
		}
		if h.Typeflag != tar.TypeReg || h.Mode&0o111 == 0 {
			return fmt.Errorf("%s: %s is not an executable file (type %c, mode %o)", path, BinaryPath, h.Typeflag, h.Mode)
		}
		if want != nil {
			got, err := io.ReadAll(tr)
			if err != nil {
				return fmt.Errorf("%s: %s: %w", path, BinaryPath, err)
			}
			if !bytes.Equal(got, want) {
				return fmt.Errorf("%s: %s differs from %s", path, BinaryPath, binary)
			}
		}
		return nil
	}
}
