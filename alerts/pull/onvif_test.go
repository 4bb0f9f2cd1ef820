package pull_test

import (
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"vigil/alerts"
	"vigil/alerts/pull"
	"vigil/alerts/pull/pulltest"
)

// fakeNow is a clock a test advances by hand.
type fakeNow struct {
	mu sync.Mutex
	t  time.Time
}

func (f *fakeNow) Now() time.Time { f.mu.Lock(); defer f.mu.Unlock(); return f.t }
func (f *fakeNow) Add(d time.Duration) {
	f.mu.Lock()
	f.t = f.t.Add(d)
	f.mu.Unlock()
}

func waitCounts(t *testing.T, dev *pulltest.ONVIF, ok func(pulltest.Counts) bool) pulltest.Counts {
	t.Helper()
	for {
		ch := dev.Changed()
		if c := dev.Counts(); ok(c) {
			return c
		}
		wait(t, ch, "the device")
	}
}

func TestONVIFPullPointEvents(t *testing.T) {
	local := &fakeNow{t: time.Date(2026, 11, 26, 13, 0, 0, 0, time.UTC)}
	dev := pulltest.NewONVIF("admin", "pw")
	// The camera's clock is 37 minutes ahead: the token's Created must be
	// written in its time (GetSystemDateAndTime) or it is refused.
	dev.Now = func() time.Time { return local.Now().Add(37 * time.Minute) }
	ts := httptest.NewServer(dev)
	t.Cleanup(ts.Close)
	dev.Publish("tns1:RuleEngine/CellMotionDetector/Motion", "2026-11-26T13:37:00Z", "Changed",
		[]string{"VideoSourceConfigurationToken=VSC1", "Rule=Gate"}, []string{"IsMotion=true"})
	h := start(t, pull.ONVIF, ts.URL+"/onvif/device_service", "admin", "pw", func(o *pull.Options) { o.Now = local.Now })
	e := h.event()
	if e.Camera != "gate" || e.Type != alerts.Motion || e.State != alerts.Active || e.Key != "Rule=Gate;VideoSourceConfigurationToken=VSC1" || e.Source != alerts.SourceONVIF {
		t.Fatalf("event %+v", e)
	}
	if c := dev.Counts(); c.Subscribed != 1 || c.Refused != 0 {
		t.Fatalf("device counts %+v", c)
	}
	// Stop: the client unsubscribes.
	h.stop()
	if c := dev.Counts(); c.Unsubscribes != 1 || c.Active {
		t.Fatalf("after stop %+v", c)
	}
}

// A camera that also wants HTTP digest authentication on its SOAP
// requests is answered with it.
func TestONVIFPullPointHTTPDigest(t *testing.T) {
	local := &fakeNow{t: time.Date(2026, 11, 26, 13, 0, 0, 0, time.UTC)}
	dev := pulltest.NewONVIF("admin", "pw")
	dev.Now = local.Now
	dev.HTTPDigest = true
	ts := httptest.NewServer(dev)
	t.Cleanup(ts.Close)
	dev.Publish("tns1:VideoSource/SignalLoss", "2026-11-26T13:00:00Z", "Changed", []string{"Source=VS1"}, []string{"State=true"})
	h := start(t, pull.ONVIF, ts.URL+"/onvif/device_service", "admin", "pw", func(o *pull.Options) { o.Now = local.Now })
	if e := h.event(); e.Type != alerts.VideoLoss || e.State != alerts.Active || e.Key != "Source=VS1" {
		t.Fatalf("event %+v", e)
	}
}

func TestONVIFPullPointRenews(t *testing.T) {
	local := &fakeNow{t: time.Date(2026, 11, 26, 13, 0, 0, 0, time.UTC)}
	dev := pulltest.NewONVIF("admin", "pw")
	dev.Now = local.Now
	dev.MaxSkew = time.Hour // this test is about renewing, not the token's age
	// Each pull takes 15 s of the 60 s subscription.
	dev.OnPull = func() { local.Add(15 * time.Second) }
	ts := httptest.NewServer(dev)
	t.Cleanup(ts.Close)
	h := start(t, pull.ONVIF, ts.URL+"/onvif/device_service", "admin", "pw", func(o *pull.Options) { o.Now = local.Now })
	c := waitCounts(t, dev, func(c pulltest.Counts) bool { return c.Renews >= 2 })
	h.stop()
	if c.Subscribed != 1 {
		t.Fatalf("subscribed %d times: the subscription lapsed instead of being renewed (%+v)", c.Subscribed, c)
	}
	if c := dev.Counts(); c.Unsubscribes != 1 {
		t.Fatalf("after stop %+v", c)
	}
}

func TestONVIFWSSecurityRefused(t *testing.T) {
	for _, tc := range []struct {
		name, pass string
		skew       time.Duration // the device's clock minus the client's, unknown to it
		noOffset   bool
	}{
		{name: "wrong password", pass: "wrong"},
		// A client that ignored GetSystemDateAndTime would write a stale
		// Created; the device checks its age. Modelled by a device whose
		// GetSystemDateAndTime answer and checking clock disagree.
		{name: "stale created", pass: "pw", skew: 10 * time.Minute, noOffset: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			local := &fakeNow{t: time.Date(2026, 11, 26, 13, 0, 0, 0, time.UTC)}
			dev := pulltest.NewONVIF("admin", "pw")
			calls := 0
			var mu sync.Mutex
			dev.Now = func() time.Time {
				mu.Lock()
				defer mu.Unlock()
				calls++
				if tc.noOffset && calls == 1 {
					return local.Now() // the clock the device reports
				}
				return local.Now().Add(tc.skew) // the clock it checks with
			}
			ts := httptest.NewServer(dev)
			t.Cleanup(ts.Close)
			h := start(t, pull.ONVIF, ts.URL+"/onvif/device_service", "admin", tc.pass, func(o *pull.Options) { o.Now = local.Now })
			hl := h.waitStatus(pull.Unauthorized)
			if hl.LastError == "" {
				t.Fatalf("health %+v", hl)
			}
			h.stop()
			if c := dev.Counts(); c.Subscribed != 0 || c.Refused == 0 {
				t.Fatalf("device counts %+v", c)
			}
		})
	}
}
