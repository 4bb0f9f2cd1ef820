package camsim

import (
	"context"
	"encoding/json"
	"net/http"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/bluenviron/gortsplib/v5"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
)

func TestFFprobeReadsCamera(t *testing.T) {
	ffprobe, err := exec.LookPath("ffprobe")
	if err != nil {
		t.Fatalf("ffprobe is required: %v", err)
	}
	s := startServer(t, Options{Cameras: Cameras(2, true), Speed: 2})
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, ffprobe, "-v", "error", "-rtsp_transport", "tcp",
		"-timeout", "10000000", "-select_streams", "v:0",
		"-show_entries", "stream=codec_name,width,height,r_frame_rate", "-of", "json",
		s.URL("cam/1")).CombinedOutput()
	if err != nil {
		t.Fatalf("ffprobe: %v\n%s", err, out)
	}
	var res struct {
		Streams []struct {
			CodecName string `json:"codec_name"`
			Width     int    `json:"width"`
			Height    int    `json:"height"`
			Rate      string `json:"r_frame_rate"`
		} `json:"streams"`
	}
	if err := json.Unmarshal(out, &res); err != nil || len(res.Streams) != 1 {
		t.Fatalf("ffprobe output %s: %v", out, err)
	}
	st := res.Streams[0]
	if st.CodecName != "h264" || st.Width != 640 || st.Height != 360 || st.Rate != "25/1" {
		t.Errorf("ffprobe sees %+v, want h264 640x360 25/1", st)
	}
}

// TestPlayLoopsSeamlessly plays 30 s of stream time (three loops of the
// 10 s clip) over TCP at ten times real time.
func TestPlayLoopsSeamlessly(t *testing.T) {
	const speed = 10
	s := startServer(t, Options{Cameras: Cameras(1, true), Speed: speed})
	p := play(t, s.URL("cam/0"), gortsplib.ProtocolTCP)
	if p.h264.SPS == nil || p.h264.PPS == nil {
		t.Fatal("SDP carries no SPS/PPS")
	}
	const want = 30 * 25
	waitFor(t, 30*time.Second/speed+20*time.Second, "750 access units", func() bool {
		aus, _ := p.snapshot()
		return len(aus) >= want+1
	})
	aus, _ := p.snapshot()
	if !isIDR(aus[0].nalus) {
		t.Fatal("first access unit is not an IDR")
	}
	spsSeen := false
	for i, a := range aus {
		if hasNALU(a.nalus, h264.NALUTypeSPS) != nil {
			spsSeen = true
		}
		if isIDR(a.nalus) && (hasNALU(a.nalus, h264.NALUTypeSPS) == nil || hasNALU(a.nalus, h264.NALUTypePPS) == nil) {
			t.Fatalf("access unit %d: IDR without SPS/PPS in band", i)
		}
		if i == 0 {
			continue
		}
		if d := int32(a.ts - aus[i-1].ts); d != 3600 {
			t.Fatalf("access unit %d: timestamp step %d, want 3600 (40 ms)", i, d)
		}
	}
	if !spsSeen {
		t.Error("no SPS in band")
	}
	if span := time.Duration(aus[want].ts-aus[0].ts) * time.Second / 90000; span < 30*time.Second {
		t.Errorf("stream time covered %v, want 30s", span)
	}
	p.mu.Lock()
	gaps := p.seqGaps
	p.mu.Unlock()
	if gaps != 0 {
		t.Errorf("%d sequence gaps over TCP", gaps)
	}
}

func TestPlayUDP(t *testing.T) {
	s := startServer(t, Options{Cameras: Cameras(1, false), Speed: 4})
	p := play(t, s.URL("cam/0"), gortsplib.ProtocolUDP)
	waitFor(t, 15*time.Second, "50 access units over UDP", func() bool {
		aus, _ := p.snapshot()
		return len(aus) >= 50
	})
	aus, _ := p.snapshot()
	if !isIDR(aus[0].nalus) {
		t.Error("first access unit is not an IDR")
	}
	if len(p.desc.Medias) != 1 {
		t.Errorf("camera without events has %d medias, want 1", len(p.desc.Medias))
	}
}

func TestNamedPathAndNotFound(t *testing.T) {
	s := startServer(t, Options{Cameras: []CameraSpec{{Path: "cam/hall-entrance", Events: true}}, Speed: 4})
	p := play(t, s.URL("cam/hall-entrance"), gortsplib.ProtocolTCP)
	waitFor(t, 10*time.Second, "a frame", func() bool { aus, _ := p.snapshot(); return len(aus) > 0 })
	if _, err := tryPlay(s.URL("cam/nope"), gortsplib.ProtocolTCP); err == nil || !strings.Contains(err.Error(), "404") {
		t.Errorf("unknown path: %v, want 404", err)
	}
}

func TestMetadataEvents(t *testing.T) {
	s := startServer(t, Options{
		Cameras:   Cameras(2, true),
		Speed:     5,
		SyncEvery: time.Hour,
		Schedule: []ScheduledEvent{
			{Camera: "cam/0", Type: Tamper, State: Active, After: 3 * time.Second, Hold: time.Second},
		},
	})
	p := play(t, s.URL("cam/0"), gortsplib.ProtocolTCP)
	if len(p.desc.Medias) != 2 {
		t.Fatalf("%d medias, want video and metadata", len(p.desc.Medias))
	}
	m := p.desc.Medias[1]
	if m.Type != "application" || m.Formats[0].PayloadType() != 107 || m.Formats[0].RTPMap() != MetadataRTPMap {
		t.Fatalf("metadata media %+v, want application 107 %s", m, MetadataRTPMap)
	}
	waitFor(t, 10*time.Second, "the Initialized document", func() bool { _, d := p.snapshot(); return len(d) > 0 })
	_, docs := p.snapshot()
	initial := parseDoc(t, docs[0])
	if len(initial) != 4 {
		t.Errorf("%d initialized properties, want 4 (motion, cell motion, intrusion, tamper)", len(initial))
	}
	for _, n := range initial {
		if n.op != "Initialized" {
			t.Errorf("%s: operation %q, want Initialized", n.topic, n.op)
		}
	}
	if len(docs[0]) <= DefaultMetadataChunk {
		t.Errorf("document of %d bytes fits one packet; want it split", len(docs[0]))
	}

	triggers := []struct {
		typ, state, key    string
		topic, item, value string
		op                 string
	}{
		{Motion, Active, "", "tns1:VideoSource/MotionAlarm", "State", "true", "Changed"},
		{CellMotion, Active, "", "tns1:RuleEngine/CellMotionDetector/Motion", "IsMotion", "true", "Changed"},
		{Intrusion, Active, "7", "tns1:RuleEngine/FieldDetector/ObjectsInside", "IsInside", "true", "Changed"},
		{Intrusion, Inactive, "7", "tns1:RuleEngine/FieldDetector/ObjectsInside", "IsInside", "false", "Changed"},
		{LineCrossing, Pulse, "", "tns1:RuleEngine/LineDetector/Crossed", "ObjectId", "1", ""},
		{Motion, Inactive, "", "tns1:VideoSource/MotionAlarm", "State", "false", "Changed"},
	}
	for _, tr := range triggers {
		sent, err := s.TriggerKey("cam/0", tr.typ, tr.state, tr.key)
		if err != nil || !sent.Delivered {
			t.Fatalf("trigger %s %s: %+v %v", tr.typ, tr.state, sent, err)
		}
	}
	// scheduled: tamper active at 3 s, inactive at 4 s of stream time
	var got []note
	waitFor(t, 15*time.Second, "triggered and scheduled events", func() bool {
		_, docs := p.snapshot()
		got = nil
		for _, d := range docs[1:] {
			got = append(got, parseDoc(t, d)...)
		}
		return len(got) >= len(triggers)+2
	})
	for i, tr := range triggers {
		n := got[i]
		if n.topic != tr.topic || n.op != tr.op || n.data.get(tr.item) != tr.value {
			t.Errorf("event %d: got %s op=%q %s=%q, want %s op=%q %s=%q",
				i, n.topic, n.op, tr.item, n.data.get(tr.item), tr.topic, tr.op, tr.item, tr.value)
		}
		if tr.key != "" && n.key != tr.key {
			t.Errorf("event %d: ObjectId %q, want %q", i, n.key, tr.key)
		}
		sentAt, err := time.Parse(time.RFC3339Nano, n.data.get(SentAtItem))
		if err != nil || time.Since(sentAt) > time.Minute {
			t.Errorf("event %d: %s %q: %v", i, SentAtItem, n.data.get(SentAtItem), err)
		}
		if len(n.utc) != len("2006-01-02T15:04:05.000000Z") {
			t.Errorf("event %d: UtcTime %q without microseconds", i, n.utc)
		}
	}
	for i, want := range []string{"true", "false"} {
		n := got[len(triggers)+i]
		if n.topic != "tns1:VideoSource/GlobalSceneChange/ImagingService" || n.data.get("State") != want || n.op != "Changed" {
			t.Errorf("scheduled tamper %d: %+v, want State=%s", i, n, want)
		}
	}

	// a second session starts with the current state, Initialized
	p2 := play(t, s.URL("cam/0"), gortsplib.ProtocolTCP)
	waitFor(t, 10*time.Second, "the second Initialized document", func() bool { _, d := p2.snapshot(); return len(d) > 0 })
	_, docs = p2.snapshot()
	for _, n := range parseDoc(t, docs[0]) {
		if n.op != "Initialized" {
			t.Errorf("second session %s: op %q", n.topic, n.op)
		}
		if n.topic == "tns1:RuleEngine/CellMotionDetector/Motion" && n.data.get("IsMotion") != "true" {
			t.Errorf("second session: cell motion %q, want the current state true", n.data.get("IsMotion"))
		}
	}
}

func TestPeriodicSync(t *testing.T) {
	s := startServer(t, Options{Cameras: Cameras(1, true), Speed: 10, SyncEvery: time.Second})
	p := play(t, s.URL("cam/0"), gortsplib.ProtocolTCP)
	waitFor(t, 10*time.Second, "three sync documents", func() bool { _, d := p.snapshot(); return len(d) >= 3 })
	_, docs := p.snapshot()
	for _, d := range docs {
		for _, n := range parseDoc(t, d) {
			if n.op != "Initialized" {
				t.Errorf("sync %s: op %q", n.topic, n.op)
			}
		}
	}
}

func TestFaultStopRestart(t *testing.T) {
	s := startServer(t, Options{Cameras: Cameras(2, false), Speed: 4})
	p := play(t, s.URL("cam/0"), gortsplib.ProtocolTCP)
	other := play(t, s.URL("cam/1"), gortsplib.ProtocolTCP)
	waitFor(t, 10*time.Second, "frames", func() bool { aus, _ := p.snapshot(); return len(aus) > 0 })
	if err := s.Fault("cam/0", FaultStop); err != nil {
		t.Fatal(err)
	}
	select {
	case <-p.closedCh:
	case <-time.After(10 * time.Second):
		t.Fatal("client still connected after stop")
	}
	if _, err := tryPlay(s.URL("cam/0"), gortsplib.ProtocolTCP); err == nil {
		t.Fatal("a stopped camera accepted a session")
	}
	n := other.count()
	waitFor(t, 10*time.Second, "the other camera to keep playing", func() bool { return other.count() > n+10 })

	if err := s.Fault("cam/0", FaultRestart); err != nil {
		t.Fatal(err)
	}
	p2 := play(t, s.URL("cam/0"), gortsplib.ProtocolTCP)
	waitFor(t, 10*time.Second, "frames after restart", func() bool { aus, _ := p2.snapshot(); return len(aus) > 0 })
	aus, _ := p2.snapshot()
	if !isIDR(aus[0].nalus) {
		t.Error("first access unit after restart is not an IDR")
	}
}

func TestFaultStall(t *testing.T) {
	s := startServer(t, Options{Cameras: Cameras(1, true), Speed: 4})
	p := play(t, s.URL("cam/0"), gortsplib.ProtocolTCP)
	waitFor(t, 10*time.Second, "frames", func() bool { aus, _ := p.snapshot(); return len(aus) > 0 })
	if err := s.Fault("cam/0", FaultStall); err != nil {
		t.Fatal(err)
	}
	// Stalled: no packet for 1 s, while the session stays open.
	waitFor(t, 10*time.Second, "packets to stop", func() bool {
		p.mu.Lock()
		defer p.mu.Unlock()
		return time.Since(p.lastPkt) > time.Second
	})
	select {
	case err := <-p.closedCh:
		t.Fatalf("session closed during stall: %v", err)
	default:
	}
	if sent, err := s.Trigger("cam/0", Motion, Active); err != nil || sent.Delivered {
		t.Errorf("trigger while stalled: %+v %v, want not delivered", sent, err)
	}
	n := len(must(p.snapshot()))
	if err := s.Fault("cam/0", FaultRestart); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "frames after resume", func() bool { return len(must(p.snapshot())) > n })
	if aus, _ := p.snapshot(); !isIDR(aus[n].nalus) {
		t.Error("first access unit after a stall is not an IDR")
	}
}

func TestFaultSPS(t *testing.T) {
	s := startServer(t, Options{Cameras: Cameras(1, false), Speed: 4})
	p := play(t, s.URL("cam/0"), gortsplib.ProtocolTCP)
	waitFor(t, 10*time.Second, "frames", func() bool { aus, _ := p.snapshot(); return len(aus) > 0 })
	if err := s.Fault("cam/0", FaultSPS); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "a 320x180 SPS in band", func() bool {
		aus, _ := p.snapshot()
		for _, a := range aus {
			if b := hasNALU(a.nalus, h264.NALUTypeSPS); b != nil {
				var sps h264.SPS
				if sps.Unmarshal(b) == nil && sps.Width() == 320 && sps.Height() == 180 {
					return isIDR(a.nalus)
				}
			}
		}
		return false
	})
	// a new session is announced the new parameter sets
	p2 := play(t, s.URL("cam/0"), gortsplib.ProtocolTCP)
	var sps h264.SPS
	if err := sps.Unmarshal(p2.h264.SPS); err != nil || sps.Width() != 320 {
		t.Errorf("SDP after sps fault: width %d, %v; want 320", sps.Width(), err)
	}
}

func TestFaultGarbage(t *testing.T) {
	s := startServer(t, Options{Cameras: Cameras(1, false), Speed: 4, GarbageFor: time.Second})
	p := play(t, s.URL("cam/0"), gortsplib.ProtocolTCP)
	waitFor(t, 10*time.Second, "frames", func() bool { aus, _ := p.snapshot(); return len(aus) > 0 })
	if err := s.Fault("cam/0", FaultGarbage); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "decode errors", func() bool {
		p.mu.Lock()
		defer p.mu.Unlock()
		return p.decErrs > 0
	})
	n := len(must(p.snapshot()))
	waitFor(t, 10*time.Second, "an IDR after the garbage", func() bool {
		aus, _ := p.snapshot()
		for _, a := range aus[n:] {
			if isIDR(a.nalus) {
				return true
			}
		}
		return false
	})
}

func must[A, B any](a A, _ B) A { return a }

func TestControlEndpoint(t *testing.T) {
	s := startServer(t, Options{Cameras: Cameras(1, true), Control: "127.0.0.1:0", Speed: 4})
	base := "http://" + s.ControlAddr()
	for _, tc := range []struct {
		name, path, body string
		status           int
	}{
		{"bad json", "/trigger", `{"camera":`, 400},
		{"unknown field", "/trigger", `{"camera":"cam/0","kind":"x"}`, 400},
		{"unknown camera", "/trigger", `{"camera":"cam/9","type":"motion","state":"active"}`, 404},
		{"unknown type", "/trigger", `{"camera":"cam/0","type":"smoke","state":"active"}`, 400},
		{"bad state", "/trigger", `{"camera":"cam/0","type":"motion","state":"pulse"}`, 400},
		{"trigger", "/trigger", `{"camera":"cam/0","type":"intrusion","state":"active"}`, 200},
		{"bad fault", "/fault", `{"camera":"cam/0","fault":"explode"}`, 400},
		{"fault", "/fault", `{"camera":"cam/0","fault":"restart"}`, 200},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, err := http.Post(base+tc.path, "application/json", strings.NewReader(tc.body))
			if err != nil {
				t.Fatal(err)
			}
			defer res.Body.Close()
			var body map[string]any
			if err := json.NewDecoder(res.Body).Decode(&body); err != nil {
				t.Fatalf("body: %v", err)
			}
			if res.StatusCode != tc.status {
				t.Errorf("status %d %v, want %d", res.StatusCode, body, tc.status)
			}
			if tc.status >= 400 && body["error"] == "" {
				t.Errorf("no error message: %v", body)
			}
		})
	}
}

func TestOptionsValidate(t *testing.T) {
	for name, o := range map[string]Options{
		"public control": {Listen: "127.0.0.1:0", Cameras: Cameras(1, true), Control: "0.0.0.0:0"},
		"no cameras":     {Listen: "127.0.0.1:0"},
		"duplicate":      {Listen: "127.0.0.1:0", Cameras: []CameraSpec{{Path: "cam/0"}, {Path: "cam/0"}}},
		"schedule":       {Listen: "127.0.0.1:0", Cameras: Cameras(1, true), Schedule: []ScheduledEvent{{Camera: "cam/5", Type: Motion, State: Active}}},
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := New(o); err == nil {
				t.Fatal("want error")
			}
		})
	}
}
