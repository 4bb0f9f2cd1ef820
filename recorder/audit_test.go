package recorder

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
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

// TestFileAuditorIDsAndTornLine: entries get an ID when they have none and
// keep theirs otherwise; a last line cut by a crash is ended on reopen so
// the next entry is a line of its own.
func TestFileAuditorIDsAndTornLine(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	if err := os.WriteFile(path, []byte(`{"id":"torn","at":"20`), 0o600); err != nil {
		t.Fatal(err)
	}
	a, err := NewFileAuditor(path)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	for _, id := range []string{"", "given"} {
		if err := a.Audit(context.Background(), AuditEntry{ID: id, At: t0, By: "inv-1", Action: AuditExported}); err != nil {
			t.Fatal(err)
		}
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
	if len(lines) != 3 {
		t.Fatalf("lines: %q", lines)
	}
	var got []string
	for _, l := range lines[1:] {
		var e AuditEntry
		if err := json.Unmarshal([]byte(l), &e); err != nil {
			t.Fatalf("line %q: %v", l, err)
		}
		got = append(got, e.ID)
	}
	if len(got[0]) != 26 || got[1] != "given" {
		t.Fatalf("ids: %q", got)
	}
}
