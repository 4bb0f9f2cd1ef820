package camsim

import (
	"context"
	"testing"
	"time"

	"vigil/alerts"
	"vigil/alerts/pull"
)

// TestVendorEventStreams: a camera with a vendor stream delivers its
// triggered events through the Hikvision alertStream or the Dahua attach
// endpoint, read by Vigil's own pull client.
func TestVendorEventStreams(t *testing.T) {
	for _, tc := range []struct {
		vendor string
		kind   pull.Kind
		src    alerts.Source
		key    string
	}{
		{VendorHikvision, pull.Hikvision, alerts.SourceHikvision, "channel=1"},
		{VendorDahua, pull.Dahua, alerts.SourceDahua, "index=0;rule=Rule1"},
	} {
		t.Run(tc.vendor, func(t *testing.T) {
			s := startServer(t, Options{NoUDP: true, VendorListen: "127.0.0.1:0", VendorUser: "admin", VendorPassword: "gate-pw",
				Cameras: []CameraSpec{{Path: "cam/gate", Vendor: tc.vendor}, {Path: "cam/hall", Events: true}}})
			if s.VendorURL("cam/hall") != "" || s.VendorURL("cam/gate") == "" {
				t.Fatalf("vendor URLs %q %q", s.VendorURL("cam/hall"), s.VendorURL("cam/gate"))
			}
			events := make(chan alerts.Event, 16)
			up := make(chan struct{}, 16)
			c, err := pull.New(pull.Options{Kind: tc.kind, Name: "gate", URL: s.VendorURL("cam/gate"), Username: "admin", Password: "gate-pw",
				Events: func(evs []alerts.Event) {
					for _, e := range evs {
						events <- e
					}
				},
				OnHealth: func(h pull.Health) {
					if h.Status == pull.Up {
						select {
						case up <- struct{}{}:
						default:
						}
					}
				}})
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(t.Context())
			done := make(chan error, 1)
			go func() { done <- c.Run(ctx) }()
			defer func() { cancel(); <-done }()
			select {
			case <-up:
			case <-time.After(10 * time.Second):
				t.Fatal("the pull client did not connect")
			}
			if _, err := s.Trigger("cam/gate", Intrusion, Active); err != nil {
				t.Fatal(err)
			}
			select {
			case e := <-events:
				if e.Type != alerts.Intrusion || e.State != alerts.Active || e.Source != tc.src || e.Key != tc.key {
					t.Fatalf("event %+v", e)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("no event")
			}
		})
	}
}
