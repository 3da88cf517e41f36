package natsx

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/nats-io/nkeys"
)

// loadOrCreateNKey returns the public key of the user NKey seed in path,
// creating the file with a new seed, mode 0600, if it does not exist.
//
// A new file is written to a temporary name and linked into place, so a
// reader never sees half a seed and, of two processes creating it at once,
// both end up with the one that was linked first. Errors never quote the
// file's content.
func loadOrCreateNKey(path string) (string, error) {
	pub, err := readNKey(path)
	if !errors.Is(err, fs.ErrNotExist) {
		return pub, err
	}
	kp, err := nkeys.CreateUser()
	if err != nil {
		return "", fmt.Errorf("nkey file %s: create key: %w", path, err)
	}
	defer kp.Wipe()
	seed, err := kp.Seed()
	if err != nil {
		return "", fmt.Errorf("nkey file %s: %w", path, err)
	}
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+"-*") // mode 0600
	if err != nil {
		return "", fmt.Errorf("nkey file %s: %w", path, err)
	}
	defer os.Remove(f.Name())
	_, err = f.Write(append(seed, '\n'))
	if serr := f.Sync(); err == nil {
		err = serr
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return "", fmt.Errorf("nkey file %s: %w", path, err)
	}
	if err := os.Link(f.Name(), path); err != nil && !errors.Is(err, fs.ErrExist) {
		return "", fmt.Errorf("nkey file %s: %w", path, err)
	}
	return readNKey(path)
}

// readNKey returns the public key of the user NKey seed in path.
func readNKey(path string) (string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("nkey file: %w", err)
	}
	kp, err := nkeys.ParseDecoratedNKey(data)
	if err != nil {
		return "", fmt.Errorf("nkey file %s: %w (delete it to have a new key made, then restart every process that uses it)", path, err)
	}
	defer kp.Wipe()
	pub, err := kp.PublicKey()
	if err != nil {
		return "", fmt.Errorf("nkey file %s: %w", path, err)
	}
	if !nkeys.IsValidPublicUserKey(pub) {
		return "", fmt.Errorf("nkey file %s: not a user seed (want one that starts with SU)", path)
	}
	return pub, nil
}
