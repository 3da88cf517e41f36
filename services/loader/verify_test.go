package loader

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"testing"

	"github.com/windrow/windrow/adapters/objstore"
	"github.com/windrow/windrow/adapters/objstore/local"
)

// failingStore fails Open, or returns objects whose reads fail.
type failingStore struct {
	objstore.Store
	open, read error
}

func (s failingStore) Open(ctx context.Context, key string) (objstore.Object, error) {
	if s.open != nil {
		return nil, s.open
	}
	obj, err := s.Store.Open(ctx, key)
	if err != nil {
		return nil, err
	}
	return failingObject{Object: obj, err: s.read}, nil
}

type failingObject struct {
	objstore.Object
	err error
}

func (o failingObject) ReadAt(p []byte, off int64) (int, error) {
	if o.err != nil {
		return 0, o.err
	}
	return o.Object.ReadAt(p, off)
}

// TestVerifySHA256Classifies pins which checksum failures are permanent
// (missing object, mismatch, invalid key) and which transient (I/O).
func TestVerifySHA256Classifies(t *testing.T) {
	ctx := context.Background()
	store, err := local.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	data := []byte("a batch")
	sha, err := store.Put(ctx, "batches/b.parquet", data)
	if err != nil {
		t.Fatal(err)
	}
	if sum := sha256.Sum256(data); hex.EncodeToString(sum[:]) != sha {
		t.Fatalf("Put returned sha %s", sha)
	}
	ioErr := errors.New("disk on fire")
	tests := []struct {
		name          string
		store         objstore.Store
		key, want     string
		wantErr       error // nil: no error
		wantTransient bool
	}{
		{"match", store, "batches/b.parquet", sha, nil, false},
		{"no checksum, object present", store, "batches/b.parquet", "", ErrChecksumMissing, false},
		{"missing", store, "batches/nowhere.parquet", sha, ErrFileMissing, false},
		{"missing without checksum", store, "batches/nowhere.parquet", "", ErrChecksumMissing, false},
		{"mismatch", store, "batches/b.parquet", sha[1:] + "0", ErrChecksum, false},
		{"invalid key", store, "../outside", sha, objstore.ErrInvalidKey, false},
		{"open fails", failingStore{Store: store, open: ioErr}, "batches/b.parquet", sha, ioErr, true},
		{"read fails", failingStore{Store: store, read: ioErr}, "batches/b.parquet", sha, ioErr, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := verifySHA256(ctx, tt.store, tt.key, tt.want)
			if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil) != (err == nil) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if IsTransient(err) != tt.wantTransient {
				t.Fatalf("err = %v: transient %v, want %v", err, IsTransient(err), tt.wantTransient)
			}
		})
	}
	// A check canceled by shutdown is not retried in process (the poison
	// middleware leaves the command to redelivery).
	canceled, cancel := context.WithCancel(ctx)
	cancel()
	if err := verifySHA256(canceled, store, "batches/b.parquet", sha); err == nil || IsTransient(err) {
		t.Fatalf("canceled: err = %v, want a permanent error", err)
	}
}
