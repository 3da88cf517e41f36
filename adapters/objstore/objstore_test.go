package objstore_test

import (
	"context"
	"errors"
	"testing"

	"github.com/windrow/windrow/adapters/objstore"
	"github.com/windrow/windrow/adapters/objstore/local"
	"github.com/windrow/windrow/adapters/objstore/objstoretest"
)

func TestCleanKey(t *testing.T) {
	tests := []struct{ key, want string }{
		{"a/b", "a/b"},
		{"a//b", "a/b"},
		{"./a", "a"},
		{"a/./b/", "a/b"},
		{"a/b/../c", "a/c"},
		{"a.tmp-b", "a.tmp-b"}, // only an element starting with .tmp- is a pending write
		{"..a/b..", "..a/b.."},
	}
	for _, tt := range tests {
		got, err := objstore.CleanKey(tt.key)
		if err != nil || got != tt.want {
			t.Errorf("CleanKey(%q) = %q, %v; want %q", tt.key, got, err, tt.want)
		}
	}
	for _, key := range objstoretest.InvalidKeys() {
		if got, err := objstore.CleanKey(key); !errors.Is(err, objstore.ErrInvalidKey) {
			t.Errorf("CleanKey(%q) = %q, %v; want ErrInvalidKey", key, got, err)
		}
	}
}

// TestVerify: the digest Commit returned verifies; other bytes under the
// key, or another digest, are ErrChecksum; no digest is refused.
func TestVerify(t *testing.T) {
	ctx := context.Background()
	store, err := local.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	sha, err := store.Put(ctx, "a/b", []byte("the bytes a writer committed"))
	if err != nil {
		t.Fatal(err)
	}
	check := func(want string) error {
		obj, err := store.Open(ctx, "a/b")
		if err != nil {
			t.Fatal(err)
		}
		defer obj.Close()
		return objstore.Verify(ctx, "a/b", obj, want)
	}
	if err := check(sha); err != nil {
		t.Fatalf("verify the committed digest: %v", err)
	}
	if err := check(""); err == nil || errors.Is(err, objstore.ErrChecksum) {
		t.Fatalf("verify without a digest: %v, want a refusal that is not ErrChecksum", err)
	}
	if _, err := store.Put(ctx, "a/b", []byte("other bytes")); err != nil {
		t.Fatal(err)
	}
	if err := check(sha); !errors.Is(err, objstore.ErrChecksum) {
		t.Fatalf("verify rewritten bytes: %v, want ErrChecksum", err)
	}
}
