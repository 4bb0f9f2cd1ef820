package camsim

import (
	"os"
	"strings"
	"testing"
	"time"
)

func FuzzParseClip(f *testing.F) {
	small, err := os.ReadFile("testdata/small.h264")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(small[:min(len(small), 4000)])
	mp4, err := os.ReadFile("testdata/tiny.mp4")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(mp4)
	f.Add([]byte{0, 0, 0, 1, 0x09, 0xf0, 0, 0, 1, 0x67})
	f.Add([]byte{0, 0, 1})
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := ParseClip(b, 25)
		if err != nil {
			return
		}
		if len(c.Frames) == 0 || !c.Frames[0].Key || c.SPS == nil || c.PPS == nil || c.FPS <= 0 {
			t.Fatalf("accepted an unusable clip: %d frames", len(c.Frames))
		}
		for _, fr := range c.Frames {
			for _, n := range fr.NALUs {
				if len(n) == 0 {
					t.Fatal("empty NAL unit")
				}
			}
		}
		prepare(c) // must not panic
	})
}

func FuzzParseSchedule(f *testing.F) {
	f.Add([]byte("events:\n  - {camera: cam/0, after: 1s, type: motion, state: active}\n"))
	f.Add([]byte("events: [{camera: x, every: 1ms}]"))
	f.Add([]byte("{"))
	f.Fuzz(func(t *testing.T, b []byte) {
		evs, err := ParseSchedule(b, "f.yaml")
		if err != nil {
			return
		}
		for _, ev := range evs {
			if ev.Camera == "" || Topic(ev.Type) == "" || ev.After < 0 || (ev.Every != 0 && ev.Every < 10*time.Millisecond) {
				t.Fatalf("accepted %+v", ev)
			}
		}
	})
}

func TestParseSchedule(t *testing.T) {
	evs, err := ParseSchedule([]byte(`events:
  - {camera: cam/0, after: 5s, every: 30s, type: intrusion, state: active, hold: 4s, key: "7"}
  - {camera: cam/1, after: 2s, type: line_crossing}
`), "s.yaml")
	if err != nil {
		t.Fatal(err)
	}
	want := []ScheduledEvent{
		{Camera: "cam/0", Type: Intrusion, State: Active, Key: "7", After: 5 * time.Second, Every: 30 * time.Second, Hold: 4 * time.Second},
		{Camera: "cam/1", Type: LineCrossing, State: Pulse, After: 2 * time.Second},
	}
	if len(evs) != len(want) {
		t.Fatalf("got %+v", evs)
	}
	for i := range want {
		if evs[i] != want[i] {
			t.Errorf("event %d: %+v, want %+v", i, evs[i], want[i])
		}
	}

	_, err = ParseSchedule([]byte(`events:
  - {camera: cam/0, after: soon, type: smoke}
  - {type: motion, colour: red}
`), "bad.yaml")
	if err == nil {
		t.Fatal("want errors")
	}
	for _, w := range []string{
		`bad.yaml:2:28: events[0].after: want a duration`,
		`bad.yaml:2:5: events[0]: unknown event type "smoke"`,
		`bad.yaml:3:20: events[1].colour: unknown key`,
		`bad.yaml:3:5: events[1].camera: missing`,
	} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("errors lack %q:\n%v", w, err)
		}
	}
}

func TestMetadataPacketization(t *testing.T) {
	var b strings.Builder
	metadataDocument(&b, "rtsp://x/cam/0", []notification{{typ: Intrusion, key: "3", on: true, op: "Changed", utc: time.Unix(1, 5000).UTC(), trigger: true}})
	doc := []byte(b.String())
	seq := uint16(65534)
	pkts := packetizeMetadata(doc, 400, &seq, 90000)
	var joined []byte
	for i, p := range pkts {
		if p.Marker != (i == len(pkts)-1) {
			t.Errorf("packet %d marker %v", i, p.Marker)
		}
		if p.PayloadType != MetadataPayloadType || len(p.Payload) > 400 {
			t.Errorf("packet %d: pt %d, %d bytes", i, p.PayloadType, len(p.Payload))
		}
		joined = append(joined, p.Payload...)
	}
	if string(joined) != string(doc) || len(pkts) < 2 || seq != uint16(65534+len(pkts)) {
		t.Errorf("%d packets, seq %d", len(pkts), seq)
	}
	notes := parseDoc(t, doc)
	if len(notes) != 1 || notes[0].key != "3" || notes[0].data.get("IsInside") != "true" || notes[0].utc != "1970-01-01T00:00:01.000005Z" {
		t.Errorf("read back %+v", notes)
	}
}
