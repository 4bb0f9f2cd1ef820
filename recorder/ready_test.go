package recorder

import (
	"strings"
	"testing"
)

func TestReady(t *testing.T) {
	free := int64(10 << 20)
	r, err := New(Options{Dir: t.TempDir(), MinFreeBytes: 5 << 20,
		Statfs: func(string) (int64, int64, error) { return free, 100 << 20, nil }})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if err := r.Ready(); err != nil {
		t.Fatalf("ready with space: %v", err)
	}
	free = 1 << 20
	if err := r.Ready(); err == nil || !strings.Contains(err.Error(), "below min_free_bytes") {
		t.Fatalf("ready below min_free: %v", err)
	}
}
