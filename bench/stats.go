package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"time"

	"vigil/alerts"
	"vigil/alerts/boltjournal"
)

type statsOpts struct {
	Days, Cameras, PerDay, Runs int
	GroupBy                     string
}

type statsResult struct {
	Scenario    string  `json:"scenario"`
	Alerts      int     `json:"alerts"`
	JournalMB   float64 `json:"journal_mb"`
	FillSeconds float64 `json:"fill_seconds"`
	GroupBy     string  `json:"group_by"`
	// Milliseconds of one Stats call over the whole window, per run.
	RunsMs   []float64 `json:"runs_ms"`
	MedianMs float64   `json:"median_ms"`
	MaxMs    float64   `json:"max_ms"`
	Total    int       `json:"total"`
	Groups   int       `json:"groups"`
}

func runStats(ctx context.Context, args []string, log *slog.Logger) (any, error) {
	fs := flag.NewFlagSet("stats", flag.ContinueOnError)
	o := statsOpts{}
	fs.IntVar(&o.Days, "days", 30, "days of alerts")
	fs.IntVar(&o.Cameras, "cameras", 100, "cameras")
	fs.IntVar(&o.PerDay, "per-day", 50, "alerts per camera and day")
	fs.IntVar(&o.Runs, "runs", 7, "stats requests to time")
	fs.StringVar(&o.GroupBy, "group-by", "site", "group_by of the stats request")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	return statsBench(ctx, log, o)
}

// statsBench fills an embedded journal with Days × Cameras × PerDay
// handled alerts (acknowledged, dispatched, resolved, some followed up,
// each with its history) and times Engine.Stats over the whole window.
func statsBench(ctx context.Context, log *slog.Logger, o statsOpts) (*statsResult, error) {
	dir, err := os.MkdirTemp("", "vigil-bench-stats-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "journal.db")
	j, err := boltjournal.Open(boltjournal.Options{Path: path})
	if err != nil {
		return nil, err
	}
	defer j.Close()
	res := &statsResult{Scenario: "stats", GroupBy: o.GroupBy}
	end := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	start := end.AddDate(0, 0, -o.Days)
	n := o.Days * o.Cameras * o.PerDay
	step := end.Sub(start) / time.Duration(n)
	sites := []string{"hall", "key-site", "village"}
	units := []string{"police", "zongzhi", "sifa"}
	t0 := time.Now()
	batch := make([]alerts.BatchItem, 0, 1000)
	flush := func() error {
		_, errs := j.AppendBatch(ctx, batch)
		for _, err := range errs {
			if err != nil {
				return err
			}
		}
		batch = batch[:0]
		return nil
	}
	for i := range n {
		cam := i % o.Cameras
		raised := start.Add(time.Duration(i) * step)
		ack := raised.Add(time.Duration(30+i%300) * time.Second)
		disp := ack.Add(time.Minute)
		resolved := raised.Add(time.Duration(10+i%60) * time.Minute)
		ackDl, resDl := raised.Add(5*time.Minute), raised.Add(time.Hour)
		a := alerts.Alert{
			ID: fmt.Sprintf("01BENCH%08d", i), Camera: fmt.Sprintf("cam-%03d", cam), CameraName: fmt.Sprintf("摄像机%03d", cam),
			Site: sites[cam%3], Grid: fmt.Sprintf("G%02d", cam%10), Type: alerts.Intrusion, Key: "k", Severity: alerts.Major,
			Source: alerts.SourceONVIF, Signal: alerts.SignalEnded, Status: alerts.StatusResolved,
			RaisedAt: raised, EndedAt: &resolved, LastSeenAt: raised, Count: 1, AckDeadline: &ackDl, ResolveDeadline: &resDl,
			AcknowledgedAt: &ack, AcknowledgedBy: "desk-1", Unit: units[i%3], DispatchedAt: &disp,
			ResolvedAt: &resolved, ResolvedBy: "desk-1", Feedback: "现场核实，已处置完毕", FalseAlarm: i%17 == 0,
			Clip:   &alerts.Clip{Start: raised.Add(-10 * time.Second), End: &resolved, URL: "/api/v1/alerts/x/clip"},
			Detail: map[string]string{"topic": "tns1:RuleEngine/FieldDetector/ObjectsInside", "rule": "Gate"},
			History: []alerts.HistoryEntry{
				{At: raised, By: "system", Action: "raised", Version: 1},
				{At: ack, By: "desk-1", Action: "acknowledged", Version: 2},
				{At: disp, By: "desk-1", Action: "dispatched", Note: "→ police (派出所)", Version: 3},
				{At: resolved, By: "desk-1", Action: "resolved", Note: "现场核实，已处置完毕", Version: 4},
			},
		}
		if i%4 == 0 {
			f := alerts.FollowUp{At: resolved.Add(time.Hour), By: "desk-1", Satisfied: i%8 == 0}
			a.FollowUp, a.FollowUps = &f, []alerts.FollowUp{f}
		}
		batch = append(batch, alerts.BatchItem{Change: alerts.Change{Kind: alerts.KindRaised, At: raised, By: alerts.System, Origin: alerts.OriginSystem, Alert: a}})
		if len(batch) == cap(batch) {
			if err := flush(); err != nil {
				return nil, err
			}
		}
	}
	if err := flush(); err != nil {
		return nil, err
	}
	res.FillSeconds = time.Since(t0).Seconds()
	res.Alerts = n
	if st, err := os.Stat(path); err == nil {
		res.JournalMB = float64(st.Size()) / (1 << 20)
	}
	e, err := alerts.New(alerts.Options{Journal: j, Clock: fixedClock{end.Add(time.Hour)}})
	if err != nil {
		return nil, err
	}
	log.Info("journal filled", "alerts", n, "seconds", res.FillSeconds, "mb", res.JournalMB)
	for r := range o.Runs {
		t := time.Now()
		s, err := e.Stats(ctx, start, end, alerts.GroupBy(o.GroupBy))
		if err != nil {
			return res, err
		}
		ms := float64(time.Since(t).Microseconds()) / 1000
		res.RunsMs = append(res.RunsMs, ms)
		res.Total, res.Groups = s.Total, len(s.Groups)
		log.Info("stats", "run", r, "ms", ms, "total", s.Total)
	}
	sorted := slices.Clone(res.RunsMs)
	slices.Sort(sorted)
	res.MedianMs, res.MaxMs = sorted[len(sorted)/2], sorted[len(sorted)-1]
	if res.Total != n {
		return res, fmt.Errorf("stats counted %d alerts of %d", res.Total, n)
	}
	return res, nil
}

// fixedClock is the engine's clock in the stats bench: deadlines are
// decided at one instant.
type fixedClock struct{ t time.Time }

func (c fixedClock) Now() time.Time { return c.t }
func (c fixedClock) NewTimer(time.Duration) (<-chan time.Time, func() bool) {
	return nil, func() bool { return false }
}
