package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// drillTamper records a camera, alters 100 bytes of a closed segment on
// disk and measures how long the node takes to raise recording_tampered:
// the background verifier must find it within one verify pass
// (verify_every plus the pass's own reading time). It then checks that a
// download of the segment is aborted, that the manifest answers 409
// integrity and that the listing marks it damaged.
func drillTamper(ctx context.Context, log *slog.Logger, o faultsOpts) (map[string]any, error) {
	e, err := newEnv(log)
	if err != nil {
		return nil, err
	}
	defer e.Close()
	sim, err := simInProcess(ctx, e, 1, false)
	if err != nil {
		return nil, err
	}
	verifyEvery := o.VerifyEvery
	node, err := e.startNode(ctx, serviceConfig{
		Storage: fmt.Sprintf("dir: ./recordings, segment: 2s, part: 500ms, retain: 1d, min_free_bytes: 0, fsync: part, verify_every: %s, verify_rate: 20MB", verifyEvery),
		Cameras: simCameras(sim, 1, true, false),
	})
	if err != nil {
		return nil, err
	}
	reg := node.app.Registry()
	storage := filepath.Join(filepath.Dir(node.cfg.Path), "recordings")
	if err := waitFor(ctx, 60*time.Second, func() bool { return len(indexSegments(storage, "cam-0")) >= 4 }); err != nil {
		return nil, fmt.Errorf("camera never recorded 4 segments: %w", err)
	}
	segs := indexSegments(storage, "cam-0")
	victim := segs[1]
	id := filepath.Base(filepath.Dir(victim.File)) + "T" + strings.TrimSuffix(filepath.Base(victim.File), ".mp4")
	b, err := os.ReadFile(victim.File)
	if err != nil {
		return nil, err
	}
	for i := len(b) / 2; i < len(b)/2+100 && i < len(b); i++ {
		b[i] ^= 0xff
	}
	// Tamper just after a pass read the segment: the worst case, the
	// next pass is a whole verify_every away.
	v0 := counterSum(reg, "vigil_recording_verified_bytes_total")
	if err := waitFor(ctx, 2*verifyEvery+10*time.Second, func() bool { return counterSum(reg, "vigil_recording_verified_bytes_total") > v0 }); err != nil {
		return nil, fmt.Errorf("no verify pass within %v: %w", 2*verifyEvery, err)
	}
	time.Sleep(200 * time.Millisecond) // let the pass (a few hundred kB at 20 MB/s) finish
	verifiedBefore := counterSum(reg, "vigil_recording_verified_bytes_total")
	tampered := time.Now()
	if err := os.WriteFile(victim.File, b, 0o644); err != nil {
		return nil, err
	}
	var chk check
	base := node.app.URL() + "/api/v1"
	type alertList struct {
		Alerts []struct {
			ID, Type, Severity, Camera string
			Detail                     map[string]string
		} `json:"alerts"`
	}
	var found alertList
	bound := verifyEvery + 5*time.Second
	err = waitFor(ctx, bound+10*time.Second, func() bool {
		found = alertList{}
		doJSON(ctx, "GET", base+"/alerts?camera=cam-0", e.tokens.desk, nil, &found)
		for _, a := range found.Alerts {
			if a.Type == "recording_tampered" {
				return true
			}
		}
		return false
	})
	detect := time.Since(tampered)
	if err != nil {
		chk.failf("no recording_tampered alert within %v of tampering", bound+10*time.Second)
	}
	failures := counterSum(reg, "vigil_recording_integrity_failures_total")
	verified := counterSum(reg, "vigil_recording_verified_bytes_total") - verifiedBefore
	// one pass reads every closed segment at verify_rate: its own length
	passLen := time.Duration(verified / 20e6 * float64(time.Second))
	if detect > verifyEvery+passLen+2*time.Second {
		chk.failf("detected after %v, more than one verify pass (%v + %v)", detect.Round(time.Millisecond), verifyEvery, passLen.Round(time.Millisecond))
	}
	if failures < 1 {
		chk.failf("vigil_recording_integrity_failures_total = %v", failures)
	}

	// The damage is visible to investigators.
	segURL := base + "/cameras/cam-0/recordings/" + id
	req, _ := http.NewRequestWithContext(ctx, "GET", segURL, nil)
	req.Header.Set("Authorization", "Bearer "+e.tokens.investigator)
	downloadStatus := 0
	if resp, err := client.Do(req); err == nil {
		downloadStatus = resp.StatusCode
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	if downloadStatus != http.StatusConflict {
		chk.failf("download of the tampered segment: status %d, want 409", downloadStatus)
	}
	q := url.Values{"start": {victim.Start.Format(time.RFC3339Nano)}, "end": {victim.End.Format(time.RFC3339Nano)}}
	manifestStatus, _ := doJSON(ctx, "GET", base+"/cameras/cam-0/export/manifest?"+q.Encode(), e.tokens.investigator, nil, nil)
	if manifestStatus != http.StatusConflict {
		chk.failf("manifest over the tampered segment: status %d, want 409", manifestStatus)
	}
	var listing struct {
		Segments []struct {
			ID      string `json:"id"`
			Damaged bool   `json:"damaged"`
		} `json:"segments"`
	}
	doJSON(ctx, "GET", base+"/cameras/cam-0/recordings?"+q.Encode(), e.tokens.investigator, nil, &listing)
	damaged := false
	for _, s := range listing.Segments {
		damaged = damaged || (s.ID == id && s.Damaged)
	}
	if !damaged {
		chk.failf("listing does not mark %s damaged", id)
	}
	severity := ""
	if len(found.Alerts) > 0 {
		severity = found.Alerts[0].Severity
	}
	if severity != "critical" {
		chk.failf("alert severity %q, want critical", severity)
	}
	return map[string]any{
		"verify_every_s": verifyEvery.Seconds(), "segments_on_disk": len(indexSegments(storage, "cam-0")),
		"detect_ms": detect.Milliseconds(), "bound_ms": (verifyEvery + passLen).Milliseconds(),
		"verified_bytes_during": int64(verified), "integrity_failures": failures,
		"download_status": downloadStatus, "manifest_status": manifestStatus, "listed_damaged": damaged,
		"alert_severity": severity,
	}, chk.err()
}
