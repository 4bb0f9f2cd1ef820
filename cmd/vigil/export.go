package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"os/user"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"

	"vigil/configs"
	"vigil/recorder"
)

// runExport exports a time range of one camera from the local recordings
// directory into one file, with its manifest beside it, without the server.
func runExport(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("export", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", "configs/vigil.yaml", "service configuration file")
	camera := fs.String("camera", "", "camera id (required)")
	startS := fs.String("start", "", "start of the range: RFC 3339, or YYYY-MM-DD HH:MM[:SS] in the configured time zone (required)")
	endS := fs.String("end", "", "end of the range, as -start (required)")
	out := fs.String("o", "", "output file (required); the manifest is written to <file>.manifest.json")
	force := fs.Bool("force", false, "overwrite the output file and its manifest when they exist")
	format := fs.String("format", recorder.FormatMP4, "mp4 (plays at once) or fmp4 (fragmented)")
	auditPath := fs.String("audit", "", "audit file (JSON lines); default <storage.dir>/export-audit.jsonl")
	by := fs.String("by", "", "who exports, for the audit; default the user name")
	if err := fs.Parse(args); err != nil {
		return 1
	}
	fail := func(format string, a ...any) int {
		fmt.Fprintf(stderr, "vigil export: "+format+"\n", a...)
		return 1
	}
	if fs.NArg() > 0 {
		return fail("unexpected arguments %q", fs.Args())
	}
	var missing []string
	for _, f := range []struct{ name, v string }{{"-camera", *camera}, {"-start", *startS}, {"-end", *endS}, {"-o", *out}} {
		if f.v == "" {
			missing = append(missing, f.name)
		}
	}
	if len(missing) > 0 {
		return fail("missing %s (usage: vigil export -config F -camera ID -start T -end T -o clip.mp4 [-format mp4|fmp4])", strings.Join(missing, ", "))
	}
	cfg, err := configs.Load(*path)
	if err != nil {
		for _, e := range configs.Errors(err) {
			fmt.Fprintln(stderr, e)
		}
		return fail("%v", err)
	}
	zone := cfg.Location
	if zone == nil {
		zone = time.UTC
	}
	// Every time the command prints is in the centre's zone, the times in
	// the recorder's errors too.
	failLocal := func(err error) int {
		fmt.Fprintf(stderr, "vigil export: %s\n", localTimes(err.Error(), zone))
		return 1
	}
	if known := knownCameras(cfg); !slices.Contains(known, *camera) {
		return fail("unknown camera %q%s", *camera, configs.DidYouMean(*camera, known, "known"))
	}
	start, err := parseCLITime(*startS, zone)
	if err != nil {
		return fail("-start: %v", err)
	}
	end, err := parseCLITime(*endS, zone)
	if err != nil {
		return fail("-end: %v", err)
	}
	if !*force {
		for _, p := range []string{*out, *out + ".manifest.json"} {
			if _, err := os.Lstat(p); err == nil {
				return fail("%s exists: choose another -o or give -force to overwrite it", p)
			}
		}
	}

	x, err := recorder.PlanExport(recorder.OpenCatalog(cfg.Storage.Dir, nil), recorder.ExportRequest{
		Camera: *camera, Start: start, End: end, Format: *format, MaxRange: cfg.Export.MaxRange,
	})
	if err != nil {
		return failLocal(err)
	}
	sum, err := writeExportFile(ctx, x, *out, progressTo(stderr))
	if err != nil {
		return failLocal(err)
	}
	m := x.Manifest()
	m.File = &recorder.ManifestFile{Name: filepath.Base(*out), Bytes: x.Size, SHA256: sum}
	mb, _ := json.MarshalIndent(m, "", "  ") // strings and numbers only
	manifestPath := *out + ".manifest.json"
	if err := writeFileSync(manifestPath, append(mb, '\n'), exportMode); err != nil {
		return fail("manifest: %v", err)
	}

	if *auditPath == "" {
		*auditPath = filepath.Join(cfg.Storage.Dir, "export-audit.jsonl")
	}
	who := *by
	if who == "" {
		if u, err := user.Current(); err == nil {
			who = u.Username
		}
	}
	aud, err := recorder.NewFileAuditor(*auditPath)
	if err == nil {
		err = aud.Audit(ctx, recorder.AuditEntry{
			At: time.Now().UTC(), By: who, Action: recorder.AuditExported, Object: "camera/" + *camera + "/export",
			Detail: map[string]string{
				"camera": *camera, "start": m.Start, "end": m.End, "from": m.From, "format": x.Format,
				"bytes": fmt.Sprint(x.Size), "sha256": sum, "file": *out, "complete": "true", "via": "cli",
			},
		})
		if cerr := aud.Close(); err == nil {
			err = cerr
		}
	}
	if err != nil {
		fmt.Fprintf(stderr, "vigil export: warning: audit not recorded: %v\n", err)
	}

	// Times shown to the investigator are in the centre's time zone; the
	// manifest keeps UTC.
	local := func(s string) string { return localTimes(s, zone) }
	fmt.Fprintf(stdout, "%s: %d bytes, %d frames from %s to %s, sha256 %s\n", *out, x.Size, x.Frames, local(m.From), local(m.End), sum)
	fmt.Fprintf(stdout, "manifest: %s (%d segments)\n", manifestPath, len(m.Segments))
	for _, g := range m.Gaps {
		fmt.Fprintf(stdout, "gap: no recording from %s to %s\n", local(g.Start), local(g.End))
	}
	return 0
}

// writeExportFile writes x to path through a temporary file renamed into
// place once complete and synced, so a failed export leaves no file that
// looks whole. It returns the file's SHA-256.
func writeExportFile(ctx context.Context, x *recorder.Export, path string, progress func(done, total int64)) (string, error) {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*.tmp")
	if err != nil {
		return "", err
	}
	if err := tmp.Chmod(exportMode); err != nil {
		_ = tmp.Close()
		return "", err
	}
	defer os.Remove(tmp.Name()) // no-op after the rename
	h := sha256.New()
	rd := x.Reader()
	defer rd.Close()
	w := &progressWriter{ctx: ctx, w: io.MultiWriter(tmp, h), total: x.Size, report: progress}
	_, err = rd.WriteTo(w)
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil && w.done != x.Size {
		err = fmt.Errorf("wrote %d bytes, expected %d", w.done, x.Size)
	}
	if err != nil {
		progress(-1, x.Size)
		return "", fmt.Errorf("export to %s: %w", path, err)
	}
	progress(x.Size, x.Size)
	if err := os.Rename(tmp.Name(), path); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// exportMode is the mode of an exported file and of its manifest: readable
// by the investigator's group, written by no one else.
const exportMode = 0o640

func writeFileSync(path string, b []byte, mode os.FileMode) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, mode)
	if err != nil {
		return err
	}
	if err := f.Chmod(mode); err != nil { // an existing file keeps its mode otherwise
		_ = f.Close()
		return err
	}
	_, err = f.Write(b)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

type progressWriter struct {
	ctx    context.Context
	w      io.Writer
	done   int64
	total  int64
	last   time.Time
	report func(done, total int64)
}

func (p *progressWriter) Write(b []byte) (int, error) {
	if err := p.ctx.Err(); err != nil {
		return 0, err
	}
	n, err := p.w.Write(b)
	p.done += int64(n)
	if now := time.Now(); now.Sub(p.last) >= 100*time.Millisecond {
		p.last = now
		p.report(p.done, p.total)
	}
	return n, err
}

// progressTo returns a progress bar drawn on stderr when it is a terminal,
// and a no-op otherwise (pipes, files, tests).
func progressTo(stderr io.Writer) func(done, total int64) {
	f, ok := stderr.(*os.File)
	if !ok {
		return func(int64, int64) {}
	}
	st, err := f.Stat()
	if err != nil || st.Mode()&os.ModeCharDevice == 0 {
		return func(int64, int64) {}
	}
	return func(done, total int64) {
		if done < 0 {
			fmt.Fprintln(f, " failed")
			return
		}
		const width = 30
		frac := 1.0
		if total > 0 {
			frac = float64(done) / float64(total)
		}
		n := int(frac * width)
		fmt.Fprintf(f, "\r[%s%s] %3.0f%% %.1f/%.1f MB", strings.Repeat("#", n), strings.Repeat(".", width-n), frac*100, float64(done)/1e6, float64(total)/1e6)
		if done == total {
			fmt.Fprintln(f)
		}
	}
}

// knownCameras are the cameras an export can name: the registry's and those
// with recordings on disk (a removed camera's footage stays until
// retention).
func knownCameras(cfg *configs.Config) []string {
	var known []string
	for _, c := range cfg.Cameras {
		known = append(known, c.ID)
	}
	if ents, err := os.ReadDir(cfg.Storage.Dir); err == nil {
		for _, e := range ents {
			if e.IsDir() && recorder.ValidCameraID(e.Name()) {
				known = append(known, e.Name())
			}
		}
	}
	slices.Sort(known)
	return slices.Compact(known)
}

// parseCLITime reads an RFC 3339 time, or a local YYYY-MM-DD HH:MM[:SS]
// (also with a T) in zone.
func parseCLITime(s string, zone *time.Location) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	for _, layout := range []string{"2006-01-02 15:04:05", "2006-01-02 15:04", "2006-01-02T15:04:05", "2006-01-02T15:04"} {
		if t, err := time.ParseInLocation(layout, strings.TrimSpace(s), zone); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("%q: want RFC 3339 (2026-11-26T21:05:00+08:00) or local YYYY-MM-DD HH:MM[:SS] (%s)", s, zone)
}

// rfc3339InText finds RFC 3339 times in a message.
var rfc3339InText = regexp.MustCompile(`\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-]\d{2}:\d{2})`)

// localTimes rewrites every RFC 3339 time in s in zone, so that a line the
// command prints, error or not, reads in one zone.
func localTimes(s string, zone *time.Location) string {
	return rfc3339InText.ReplaceAllStringFunc(s, func(m string) string {
		t, err := time.Parse(time.RFC3339Nano, m)
		if err != nil {
			return m
		}
		return t.In(zone).Format("2006-01-02 15:04:05.000 MST")
	})
}
