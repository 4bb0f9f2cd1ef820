package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	"vigil/recorder"
)

// Each segment in the manifest of vigil export carries the SHA-256 of its
// own file, not another segment's; the segment the service is still
// writing carries that of the bytes taken from it.
func TestExportCommandManifestHashes(t *testing.T) {
	cfg, dir := writeTestConfig(t)
	defer recordHall(t, dir, 4*time.Second, 300).Close() // segments at 0 and 4 s closed, the one at 8 s open
	out := filepath.Join(t.TempDir(), "clip.mp4")
	var stdout, stderr bytes.Buffer
	if code := run([]string{"export", "-config", cfg, "-camera", "hall-entrance",
		"-start", "2026-11-26T21:05:01Z", "-end", "2026-11-26T21:05:11Z", "-o", out}, &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	var m recorder.Manifest
	mb, err := os.ReadFile(out + ".manifest.json")
	if err != nil || json.Unmarshal(mb, &m) != nil {
		t.Fatalf("manifest: %v %s", err, mb)
	}
	if len(m.Segments) != 3 || m.Segments[1].Open || !m.Segments[2].Open {
		t.Fatalf("manifest %s, want the segments at 0 and 4 s and the open one at 8 s", mb)
	}
	for _, s := range m.Segments {
		day, file, _, err := recorder.ParseSegmentID(s.ID)
		if err != nil {
			t.Fatalf("segment %+v: %v", s, err)
		}
		b, err := os.ReadFile(filepath.Join(dir, "hall-entrance", day, file))
		if err != nil {
			t.Fatal(err)
		}
		if s.Open { // the bytes taken: its parts on disk when the export ran
			if s.Bytes == 0 || s.Bytes > int64(len(b)) {
				t.Fatalf("open segment %s: %d bytes of %d", s.ID, s.Bytes, len(b))
			}
			b = b[:s.Bytes]
		}
		sum := sha256.Sum256(b)
		if s.Bytes != int64(len(b)) || s.SHA256 != hex.EncodeToString(sum[:]) {
			t.Errorf("segment %s: manifest %d bytes sha256 %s; file %d bytes sha256 %x", s.ID, s.Bytes, s.SHA256, len(b), sum)
		}
	}
}
