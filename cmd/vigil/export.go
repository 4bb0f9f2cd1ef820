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
	startS := fs.String("start", "", "start of the range, RFC 3339 (required)")
	endS := fs.String("end", "", "end of the range, RFC 3339 (required)")
	out := fs.String("o", "", "output file (required); the manifest is written to <file>.manifest.json")
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
	if !recorder.ValidCameraID(*camera) {
		return fail("camera %q: not a camera id (lower-case letters, digits and '-')", *camera)
	}
	start, err := time.Parse(time.RFC3339Nano, *startS)
	if err != nil {
		return fail("-start %q: not an RFC 3339 time such as 2026-11-26T21:05:00+08:00", *startS)
	}
	end, err := time.Parse(time.RFC3339Nano, *endS)
	if err != nil {
		return fail("-end %q: not an RFC 3339 time such as 2026-11-26T21:05:00+08:00", *endS)
	}
	cfg, err := configs.Load(*path)
	if err != nil {
		for _, e := range configs.Errors(err) {
			fmt.Fprintln(stderr, e)
		}
		return fail("%v", err)
	}

	x, err := recorder.PlanExport(recorder.OpenCatalog(cfg.Storage.Dir, nil), recorder.ExportRequest{
		Camera: *camera, Start: start, End: end, Format: *format, MaxRange: cfg.Export.MaxRange,
	})
	if err != nil {
		return fail("%v", err)
	}
	sum, err := writeExportFile(ctx, x, *out, progressTo(stderr))
	if err != nil {
		return fail("%v", err)
	}
	m := x.Manifest()
	m.File = &recorder.ManifestFile{Name: filepath.Base(*out), Bytes: x.Size, SHA256: sum}
	mb, _ := json.MarshalIndent(m, "", "  ") // strings and numbers only
	manifestPath := *out + ".manifest.json"
	if err := writeFileSync(manifestPath, append(mb, '\n')); err != nil {
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
	local := func(s string) string {
		t, err := time.Parse(time.RFC3339Nano, s)
		if err != nil || cfg.Location == nil {
			return s
		}
		return t.In(cfg.Location).Format("2006-01-02 15:04:05.000 MST")
	}
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

func writeFileSync(path string, b []byte) error {
	f, err := os.Create(path)
	if err != nil {
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
