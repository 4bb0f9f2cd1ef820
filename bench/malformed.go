package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"runtime/debug"
	"strings"
	"sync"
	"time"

	"vigil/internal/camsim"
)

// abuse is one kind of bad request and the statuses that are correct for it
// (429 is always correct: the per-camera limit may answer first).
type abuse struct {
	name   string
	method string
	path   string // %s is the camera
	ctype  string
	body   func() []byte
	bearer string
	ok     []int
}

func abuses(hookKey string) []abuse {
	big := func(n int) func() []byte {
		b := append([]byte(`<?xml version="1.0"?><EventNotificationAlert>`), bytes.Repeat([]byte("<a>x</a>"), n/8)...)
		return func() []byte { return b } // one body for every request: the drill measures the node, not its own garbage
	}
	tenMiB := bytes.Repeat([]byte("A"), 10<<20)
	k := "?key=" + hookKey
	return []abuse{
		{"truncated-xml", "POST", "/api/v1/hooks/%s/hikvision" + k, "application/xml",
			func() []byte {
				return []byte(`<?xml version="1.0" encoding="UTF-8"?><EventNotificationAlert version="2.0" xmlns="http://www.hikvision.com/ver20/XMLSchema"><ipAddress>192.0.2.1</ipAddress><eventType>VMD</eventType><eventSta`)
			}, "", []int{400}},
		{"oversized-xml", "POST", "/api/v1/hooks/%s/hikvision" + k, "application/xml", big(2 << 20), "", []int{413}},
		{"invalid-json", "POST", "/api/v1/hooks/%s/events" + k, "application/json",
			func() []byte { return []byte(`{"type":"motion","state":`) }, "", []int{400}},
		{"json-wrong-types", "POST", "/api/v1/hooks/%s/events" + k, "application/json",
			func() []byte { return []byte(`{"type":42,"state":["active"],"detail":"x"}`) }, "", []int{400}},
		{"dahua-garbage", "POST", "/api/v1/hooks/%s/dahua" + k, "text/plain",
			func() []byte { return []byte("Code=;;;action=Sideways;index=-1;data={{{") }, "", []int{400}},
		{"10mib-body", "POST", "/api/v1/hooks/%s/events" + k, "application/json", func() []byte { return tenMiB }, "", []int{413}},
		{"bad-hook-key", "POST", "/api/v1/hooks/%s/events?key=wrong", "application/json",
			func() []byte { return []byte(`{"type":"motion","state":"active"}`) }, "", []int{401}},
		{"bad-bearer", "GET", "/api/v1/alerts", "", nil, "not-a-token", []int{401}},
		{"bad-bearer-ws", "GET", "/api/v1/alerts/stream", "", nil, strings.Repeat("x", 4096), []int{401}},
		{"unknown-camera", "POST", "/api/v1/hooks/../../etc/events" + k, "application/json",
			func() []byte { return []byte(`{}`) }, "", []int{400, 401, 404}},
	}
}

// drillMalformed feeds garbage RTP to a recorded camera and sends bad
// requests at o.AbuseRate for o.AbuseFor: no crash, the right 4xx, memory
// bounded.
func drillMalformed(ctx context.Context, log *slog.Logger, o faultsOpts) (map[string]any, error) {
	e, err := newEnv(log)
	if err != nil {
		return nil, err
	}
	defer e.Close()
	sim, err := simInProcess(ctx, e, 1, false)
	if err != nil {
		return nil, err
	}
	const hookCams = 30
	cams := []cameraConfig{{ID: "cam-0", URL: sim.URL("cam/0"), Record: true}}
	for i := 1; i <= hookCams; i++ {
		cams = append(cams, cameraConfig{ID: fmt.Sprintf("cam-%d", i), URL: sim.URL("cam/0"), Disabled: true})
	}
	node, err := e.startNode(ctx, serviceConfig{Cameras: cams})
	if err != nil {
		return nil, err
	}
	reg := node.app.Registry()
	base := node.app.URL()
	frames := func() float64 { return counterWhere(reg, "vigil_ingest_frames_total", "camera", "cam-0") }
	var chk check
	if err := waitFor(ctx, 30*time.Second, func() bool { return frames() > 25 }); err != nil {
		chk.failf("cam-0 never delivered frames")
	}
	debug.FreeOSMemory()
	before := sampleSelf()
	if err := sim.Fault("cam/0", camsim.FaultGarbage); err != nil {
		return nil, err
	}

	kinds := abuses(e.tokens.hook)
	type tally struct {
		codes map[int]int
		bad   int
	}
	var mu sync.Mutex
	tallies := map[string]*tally{}
	for _, a := range kinds {
		tallies[a.name] = &tally{codes: map[int]int{}}
	}
	jobs := make(chan int, 256)
	var wg sync.WaitGroup
	for range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range jobs {
				// Ten MiB bodies are one request in fifty: every fifth turn
				// of the list.
				a := kinds[i%len(kinds)]
				if a.name == "10mib-body" && (i/len(kinds))%5 != 0 {
					a = kinds[0]
				}
				cam := fmt.Sprintf("cam-%d", 1+i%hookCams)
				path := a.path
				if strings.Contains(path, "%s") {
					path = fmt.Sprintf(path, cam)
				}
				var body io.Reader
				if a.body != nil {
					body = bytes.NewReader(a.body())
				}
				req, _ := http.NewRequestWithContext(ctx, a.method, base+path, body)
				if a.ctype != "" {
					req.Header.Set("Content-Type", a.ctype)
				}
				if a.bearer != "" {
					req.Header.Set("Authorization", "Bearer "+a.bearer)
				}
				code := 0
				if resp, err := client.Do(req); err == nil {
					io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
					resp.Body.Close()
					code = resp.StatusCode
				}
				mu.Lock()
				t := tallies[a.name]
				t.codes[code]++
				if code != 429 && !containsInt(a.ok, code) {
					t.bad++
				}
				mu.Unlock()
			}
		}()
	}
	start := time.Now()
	sent := 0
	tick := time.NewTicker(10 * time.Millisecond)
	for time.Since(start) < o.AbuseFor && ctx.Err() == nil {
		<-tick.C
		due := int(float64(o.AbuseRate) * time.Since(start).Seconds())
		for ; sent < due; sent++ {
			select {
			case jobs <- sent:
			default: // the workers are saturated: the achieved rate says so
			}
		}
	}
	tick.Stop()
	close(jobs)
	wg.Wait()
	elapsed := time.Since(start)
	// The camera must have come back from the garbage.
	f0 := frames()
	if err := waitFor(ctx, 15*time.Second, func() bool { return frames() > f0+25 }); err != nil {
		chk.failf("cam-0 delivers no frames after the garbage RTP")
	}
	if err := waitHTTP(ctx, base+"/healthz", 5*time.Second); err != nil {
		chk.failf("vigil not healthy after the abuse: %v", err)
	}
	// What the node keeps, not what the garbage collector has yet to hand
	// back: the bench's own clients allocate megabytes a request, and under
	// the race detector on a busy machine the heap lags far behind.
	debug.FreeOSMemory()
	after := sampleSelf()
	total := 0
	r := map[string]any{}
	for _, a := range kinds {
		t := tallies[a.name]
		n := 0
		for _, c := range t.codes {
			n += c
		}
		total += n
		r[a.name] = fmt.Sprint(t.codes)
		if t.bad > 0 {
			chk.failf("%s: %d answers outside %v (and 429): %v", a.name, t.bad, a.ok, t.codes)
		}
	}
	r["requests"] = total
	r["rate_achieved"] = round(float64(total)/elapsed.Seconds(), 0)
	r["rss_before_mib"], r["rss_after_mib"], r["hwm_mib"] = mib(before.rss), mib(after.rss), mib(after.hwm)
	r["decode_errors"] = counterSum(reg, "vigil_ingest_decode_errors_total")
	if after.rss-before.rss > 256<<20 {
		chk.failf("RSS grew by %.0f MiB", float64(after.rss-before.rss)/(1<<20))
	}
	return r, chk.err()
}

func containsInt(s []int, v int) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}
