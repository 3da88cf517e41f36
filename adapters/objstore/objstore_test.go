package objstore_test

import (
	"errors"
	"testing"

	"github.com/windrow/windrow/adapters/objstore"
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
