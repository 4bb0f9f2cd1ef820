package recorder

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
)

func TestFileAuditorAppends(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit", "audit.jsonl")
	for round := range 2 { // reopening appends, never truncates
		a, err := NewFileAuditor(path)
		if err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		for i := range 20 {
			wg.Go(func() {
				e := AuditEntry{At: t0, By: fmt.Sprintf("inv-%d", i), Action: AuditExported, Object: "camera/hall-entrance/export",
					Detail: map[string]string{"round": fmt.Sprint(round), "sha256": "ab"}}
				if err := a.Audit(context.Background(), e); err != nil {
					t.Error(err)
				}
			})
		}
		wg.Wait()
		if err := a.Close(); err != nil {
			t.Fatal(err)
		}
		if err := a.Audit(context.Background(), AuditEntry{}); err == nil {
			t.Fatal("audit after close succeeded")
		}
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	n := 0
	for sc := bufio.NewScanner(f); sc.Scan(); n++ {
		var e AuditEntry
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil || e.Action != AuditExported || !e.At.Equal(t0) {
			t.Fatalf("line %d: %q: %v", n, sc.Text(), err)
		}
	}
	if n != 40 {
		t.Fatalf("%d lines, want 40", n)
	}
	if st, _ := os.Stat(path); st.Mode().Perm() != 0o600 {
		t.Errorf("audit file mode %v, want 0600", st.Mode().Perm())
	}
}
