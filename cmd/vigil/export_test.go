package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"vigil/internal/camsim"
	"vigil/internal/media"
	"vigil/recorder"
)

var exportT0 = time.Date(2026, 11, 26, 21, 5, 0, 0, time.UTC)

// recordClip records 12 s of the camsim fixture for camera hall-entrance
// into dir: segments at 0, 4 and 8 s.
func recordClip(t *testing.T, dir string) {
	t.Helper()
	if err := recordHall(t, dir, 4*time.Second, 300).Close(); err != nil {
		t.Fatal(err)
	}
}

func writeTestConfig(t *testing.T) (cfgPath, dir string) {
	t.Helper()
	base := t.TempDir()
	dir = filepath.Join(base, "recordings")
	cfgPath = filepath.Join(base, "vigil.yaml")
	if err := os.WriteFile(cfgPath, []byte("storage:\n  dir: ./recordings\nexport:\n  max_range: 1h\ncameras_file: cameras.yaml\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(base, "cameras.yaml"), []byte("cameras: []\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return cfgPath, dir
}

func TestExportCommand(t *testing.T) {
	cfg, dir := writeTestConfig(t)
	recordClip(t, dir)
	out := filepath.Join(t.TempDir(), "clip.mp4")
	var stdout, stderr bytes.Buffer
	code := run([]string{"export", "-config", cfg, "-camera", "hall-entrance",
		"-start", "2026-11-27T05:05:05+08:00", "-end", "2026-11-27T05:05:11+08:00", "-o", out, "-by", "inv-1"}, &stdout, &stderr)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	if stderr.Len() != 0 {
		t.Errorf("stderr is not a terminal, yet: %q", stderr.String())
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	s := sha256.Sum256(b)
	sum := hex.EncodeToString(s[:])
	var m recorder.Manifest
	mb, err := os.ReadFile(out + ".manifest.json")
	if err != nil || json.Unmarshal(mb, &m) != nil {
		t.Fatalf("manifest: %v %s", err, mb)
	}
	if m.File == nil || m.File.SHA256 != sum || m.File.Bytes != int64(len(b)) || m.File.Name != "clip.mp4" {
		t.Fatalf("manifest file %+v, want sha256 %s", m.File, sum)
	}
	if m.Camera != "hall-entrance" || m.From != "2026-11-26T21:05:04.000Z" || len(m.Segments) != 2 || len(m.Gaps) != 0 {
		t.Fatalf("manifest %s", mb)
	}
	if !strings.Contains(stdout.String(), sum) {
		t.Errorf("stdout %q does not name the hash", stdout.String())
	}
	// The range is shown in the centre's time zone (Asia/Shanghai by default).
	if !strings.Contains(stdout.String(), "2026-11-27 05:05:") || !strings.Contains(stdout.String(), "CST") {
		t.Errorf("stdout %q does not show the range in the configured time zone", stdout.String())
	}
	probe := exec.Command("ffprobe", "-v", "error", "-count_frames", "-show_entries", "stream=nb_read_frames", "-of", "csv=p=0", out)
	var perr bytes.Buffer
	probe.Stderr = &perr
	pout, err := probe.Output()
	if err != nil || perr.Len() != 0 || strings.TrimSpace(string(pout)) != "175" { // 4 s – 11 s at 25 fps
		t.Fatalf("ffprobe: %v %q %q", err, pout, perr.String())
	}
	audit, err := os.ReadFile(filepath.Join(dir, "export-audit.jsonl"))
	if err != nil || !strings.Contains(string(audit), sum) || !strings.Contains(string(audit), `"by":"inv-1"`) {
		t.Fatalf("audit %v %s", err, audit)
	}
}

func TestExportCommandBadInput(t *testing.T) {
	cfg, dir := writeTestConfig(t)
	recordClip(t, dir)
	out := filepath.Join(t.TempDir(), "clip.mp4")
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"missing flags", []string{"-config", cfg}, "missing -camera, -start, -end, -o"},
		{"bad camera", []string{"-config", cfg, "-camera", "../x", "-start", "2026-11-26T21:05:00Z", "-end", "2026-11-26T21:05:10Z", "-o", out}, `unknown camera "../x" (known: hall-entrance)`},
		{"mistyped camera", []string{"-config", cfg, "-camera", "hall-entrace", "-start", "2026-11-26T21:05:00Z", "-end", "2026-11-26T21:05:10Z", "-o", out}, `unknown camera "hall-entrace" (did you mean hall-entrance?)`},
		{"bad time", []string{"-config", cfg, "-camera", "hall-entrance", "-start", "yesterday", "-end", "2026-11-26T21:05:10Z", "-o", out}, `-start: "yesterday": want RFC 3339`},
		{"error times in the configured zone", []string{"-config", cfg, "-camera", "hall-entrance", "-start", "2026-11-27 07:05:00", "-end", "2026-11-27 07:06", "-o", out}, "2026-11-27 07:05:00.000 CST – 2026-11-27 07:06:00.000 CST: no recordings in range"},
		{"end before start", []string{"-config", cfg, "-camera", "hall-entrance", "-start", "2026-11-26T21:05:10Z", "-end", "2026-11-26T21:05:00Z", "-o", out}, "empty range"},
		{"over the configured limit", []string{"-config", cfg, "-camera", "hall-entrance", "-start", "2026-11-26T21:05:00Z", "-end", "2026-11-26T22:05:01Z", "-o", out}, "exceeds the export limit of 1h0m0s"},
		{"no footage", []string{"-config", cfg, "-camera", "hall-entrance", "-start", "2026-11-26T23:05:00Z", "-end", "2026-11-26T23:06:00Z", "-o", out}, "no recordings in range"},
		{"bad format", []string{"-config", cfg, "-camera", "hall-entrance", "-start", "2026-11-26T21:05:00Z", "-end", "2026-11-26T21:05:10Z", "-o", out, "-format", "avi"}, "must be mp4 or fmp4"},
		{"no config", []string{"-config", filepath.Join(t.TempDir(), "none.yaml"), "-camera", "hall-entrance", "-start", "2026-11-26T21:05:00Z", "-end", "2026-11-26T21:05:10Z", "-o", out}, "none.yaml"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := runExport(context.Background(), tt.args, &stdout, &stderr)
			if code != 1 || !strings.Contains(stderr.String(), tt.want) {
				t.Fatalf("exit %d, stderr %q; want 1 and %q", code, stderr.String(), tt.want)
			}
			if _, err := os.Stat(out); err == nil {
				t.Fatal("an output file was left behind")
			}
		})
	}
}

// The rough edges of the CLI: an existing file is never overwritten without
// -force, local times are read in the configured zone, and the file and its
// manifest get one mode.
func TestExportCommandFilesAndTimes(t *testing.T) {
	cfg, dir := writeTestConfig(t)
	recordClip(t, dir)
	out := filepath.Join(t.TempDir(), "clip.mp4")
	args := func(extra ...string) []string {
		// 2026-11-26T21:05:05Z … 21:05:11Z in Asia/Shanghai, the default zone.
		return append([]string{"export", "-config", cfg, "-camera", "hall-entrance",
			"-start", "2026-11-27 05:05:05", "-end", "2026-11-27T05:05:11", "-o", out}, extra...)
	}
	var stdout, stderr bytes.Buffer
	if code := run(args(), &stdout, &stderr); code != 0 {
		t.Fatalf("local times: exit %d: %s", code, stderr.String())
	}
	fi, err := os.Stat(out)
	if err != nil {
		t.Fatal(err)
	}
	mi, err := os.Stat(out + ".manifest.json")
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != mi.Mode().Perm() {
		t.Fatalf("file mode %v, manifest mode %v: want one mode", fi.Mode().Perm(), mi.Mode().Perm())
	}
	before, _ := os.ReadFile(out)
	if err := os.WriteFile(out, []byte("an earlier export"), 0o600); err != nil {
		t.Fatal(err)
	}
	stderr.Reset()
	if code := run(args(), &stdout, &stderr); code != 1 || !strings.Contains(stderr.String(), "exists") || !strings.Contains(stderr.String(), "-force") {
		t.Fatalf("existing file: exit %d, stderr %q; want a refusal naming -force", code, stderr.String())
	}
	if b, _ := os.ReadFile(out); string(b) != "an earlier export" {
		t.Fatal("the existing file was overwritten")
	}
	stderr.Reset()
	if code := run(args("-force"), &stdout, &stderr); code != 0 {
		t.Fatalf("-force: exit %d: %s", code, stderr.String())
	}
	if b, _ := os.ReadFile(out); !bytes.Equal(b, before) {
		t.Fatal("-force did not write the export")
	}
}

// vigil export runs beside the service: the segment the service is still
// writing is exported up to its last complete part and marked open in the
// manifest, with the hash of exactly the bytes taken.
func TestExportCommandIncludesOpenSegment(t *testing.T) {
	cfg, dir := writeTestConfig(t)
	defer recordHall(t, dir, 60*time.Second, 300).Close() // 12 s into a 60-s segment: not closed, not indexed
	out := filepath.Join(t.TempDir(), "clip.mp4")
	var stdout, stderr bytes.Buffer
	code := run([]string{"export", "-config", cfg, "-camera", "hall-entrance",
		"-start", "2026-11-26T21:05:05Z", "-end", "2026-11-26T21:05:11Z", "-o", out}, &stdout, &stderr)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	var m recorder.Manifest
	mb, err := os.ReadFile(out + ".manifest.json")
	if err != nil || json.Unmarshal(mb, &m) != nil {
		t.Fatalf("manifest: %v %s", err, mb)
	}
	if len(m.Segments) != 1 || !m.Segments[0].Open {
		t.Fatalf("manifest %s", mb)
	}
	src, err := os.ReadFile(filepath.Join(dir, "hall-entrance", "2026-11-26", "21-05-00.000Z.mp4"))
	if err != nil || int64(len(src)) < m.Segments[0].Bytes {
		t.Fatalf("source: %v", err)
	}
	if s := sha256.Sum256(src[:m.Segments[0].Bytes]); hex.EncodeToString(s[:]) != m.Segments[0].SHA256 {
		t.Fatalf("manifest hash %s is not the hash of the first %d bytes", m.Segments[0].SHA256, m.Segments[0].Bytes)
	}
	probe := exec.Command("ffprobe", "-v", "error", "-count_frames", "-show_entries", "stream=nb_read_frames", "-of", "csv=p=0", out)
	var perr bytes.Buffer
	probe.Stderr = &perr
	pout, err := probe.Output()
	if err != nil || perr.Len() != 0 || strings.TrimSpace(string(pout)) != "175" { // from the keyframe at 4 s to 11 s at 25 fps
		t.Fatalf("ffprobe: %v %q %q", err, pout, perr.String())
	}
}

// recordHall records frames of the hall clip from exportT0 for camera
// hall-entrance into dir, as the service would, in segments of seg, and
// returns the recorder, whose last segment is still open (the caller
// closes it).
func recordHall(t *testing.T, dir string, seg time.Duration, frames int) *recorder.Recorder {
	t.Helper()
	c, err := camsim.LoadClip(filepath.Join("..", "..", "internal", "camsim", "testdata", "hall.h264"), 25)
	if err != nil {
		t.Fatal(err)
	}
	r, err := recorder.New(recorder.Options{Dir: dir, Segment: seg, Part: time.Second, Fsync: recorder.FsyncNever, Now: func() time.Time { return exportT0 }})
	if err != nil {
		t.Fatal(err)
	}
	w, err := r.Camera("hall-entrance", 0)
	if err != nil {
		r.Close()
		t.Fatal(err)
	}
	w.OnStream(media.Stream{Camera: "hall-entrance", Session: 1, Started: exportT0,
		Video: &media.VideoTrack{Codec: media.H264, ClockRate: 90000, SPS: c.SPS, PPS: c.PPS, Width: c.Width, Height: c.Height}})
	for i := range frames {
		fr := c.Frames[i%len(c.Frames)]
		dts := time.Duration(i) * c.FrameDuration()
		w.OnAccessUnit(media.AccessUnit{Kind: media.Video, PTS: dts, DTS: dts, Key: fr.Key, Payload: fr.NALUs, Wall: exportT0.Add(dts)})
	}
	return r
}
