package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"time"
)

type scaleStep struct {
	Cameras              int     `json:"cameras"`
	CPUCores             float64 `json:"cpu_cores"`
	CPUMsPerSecPerStream float64 `json:"cpu_ms_per_s_per_stream"`
	RSSPerStreamMiB      float64 `json:"rss_per_stream_mib"`
	CamsimCPUCores       float64 `json:"camsim_cpu_cores"`
	FramesLost           int64   `json:"frames_lost"`
	PacketsLost          int64   `json:"packets_lost"`
	Pass                 bool    `json:"pass"`
	Why                  string  `json:"why,omitempty"`
}

type scaleResult struct {
	Scenario  string      `json:"scenario"`
	Steps     []scaleStep `json:"steps"`
	Largest   int         `json:"largest_passing"`
	MaxCores  float64     `json:"max_cores"`
	DurationS float64     `json:"step_duration_s"`
	Machine   machine     `json:"machine"`
}

func runScale(ctx context.Context, args []string, log *slog.Logger) (any, error) {
	o := ingestOpts{}
	fs := ingestFlags("scale", &o)
	steps := fs.String("steps", "16,32,48,64,96,128", "camera counts to try, in order; stops at the first failure")
	maxCores := fs.Float64("max-cores", 1.6, "CPU budget of the Vigil process")
	if err := fs.Parse(append([]string{"-duration", "20s"}, args...)); err != nil {
		return nil, err
	}
	var ns []int
	for _, s := range strings.Split(*steps, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 1 {
			return nil, fmt.Errorf("steps: %q is not a camera count", s)
		}
		ns = append(ns, n)
	}
	res, err := scaleBench(ctx, log, o, ns, *maxCores)
	if res != nil {
		kv := []any{}
		for _, s := range res.Steps {
			kv = append(kv, fmt.Sprintf("%d cameras", s.Cameras), fmt.Sprintf("%.2f cores (%.2f ms/s/stream), %.2f MiB/stream, lost %d frames / %d packets, camsim %.2f cores: %s %s",
				s.CPUCores, s.CPUMsPerSecPerStream, s.RSSPerStreamMiB, s.FramesLost, s.PacketsLost, s.CamsimCPUCores, passFail(s.Pass), s.Why))
		}
		kv = append(kv, "largest passing", fmt.Sprintf("%d (target >= 100: %s)", res.Largest, passFail(res.Largest >= 100)))
		summary(os.Stderr, fmt.Sprintf("scale: %.1f Mbit/s cameras, %v per step, budget %.1f cores", o.Mbps, o.Duration, *maxCores), kv...)
	}
	return res, err
}

func scaleBench(ctx context.Context, log *slog.Logger, o ingestOpts, ns []int, maxCores float64) (*scaleResult, error) {
	res := &scaleResult{Scenario: "scale", MaxCores: maxCores, DurationS: o.Duration.Seconds(), Machine: describeMachine()}
	for _, n := range ns {
		o.Cameras = n
		log.Info("scale: step", "cameras", n)
		r, err := ingestBench(ctx, log, o)
		if r == nil {
			return res, err
		}
		st := scaleStep{Cameras: n, CPUCores: r.CPUCores, CPUMsPerSecPerStream: r.CPUMsPerSecPerStream, RSSPerStreamMiB: r.RSSPerStreamMiB,
			CamsimCPUCores: r.CamsimCPUCores, FramesLost: r.Lost, PacketsLost: r.PacketsLost, Pass: err == nil && r.CPUCores < maxCores}
		switch {
		case err != nil:
			st.Why = err.Error()
		case r.CPUCores >= maxCores:
			st.Why = fmt.Sprintf("%.2f cores >= %.1f", r.CPUCores, maxCores)
		}
		res.Steps = append(res.Steps, st)
		if !st.Pass {
			break
		}
		res.Largest = n
		time.Sleep(time.Second)
	}
	return res, nil
}
