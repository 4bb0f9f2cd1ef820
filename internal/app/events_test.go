package app

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	promtest "github.com/prometheus/client_golang/prometheus/testutil"

	"vigil/alerts/pull/pulltest"
	"vigil/configs"
	"vigil/internal/testutil"
)

// eventsConfig is a configuration with an NVR (a pulltest stream) whose
// channel 1 is hall-entrance and a gate camera with a webhook secret.
func eventsConfig(t *testing.T, nvrURL string) *configs.Config {
	t.Helper()
	return writeConfigFiles(t, "", `devices:
  - {id: nvr-1, kind: hikvision, url: "`+nvrURL+`", username: admin, password: nvr-pw, channels: {"1": hall-entrance}}
cameras:
  - {id: hall-entrance, name: 服务大厅入口, site: hall, url: "rtsp://127.0.0.1:1/cam/0", enabled: false}
  - id: key-site-gate
    name: 重点部位大门
    site: key-site
    url: rtsp://127.0.0.1:1/cam/1
    enabled: false
    events: {webhook_secret: `+hookSecret+`, ignore: [NTPAdjustTime]}
`)
}

func hikAlert(channel, typ string) string {
	return `<EventNotificationAlert version="2.0" xmlns="http://www.hikvision.com/ver20/XMLSchema"><channelID>` + channel +
		`</channelID><dateTime>2026-11-26T21:05:00+08:00</dateTime><activePostCount>1</activePostCount><eventType>` + typ +
		`</eventType><eventState>active</eventState></EventNotificationAlert>`
}

func TestNVRPullStreamToAlerts(t *testing.T) {
	nvr := pulltest.NewStream("admin", "nvr-pw")
	srv := httptest.NewServer(nvr)
	t.Cleanup(srv.Close)
	connected := nvr.Connected()
	logs := &testutil.Buffer{}
	a := startApp(t, eventsConfig(t, srv.URL), logs)
	select {
	case <-connected:
	case <-time.After(15 * time.Second):
		t.Fatal("Vigil did not connect to the NVR's alertStream")
	}
	up := func() float64 {
		return promtest.ToFloat64(a.events.up.WithLabelValues("hall-entrance", "hikvision"))
	}
	waitFor(t, 15*time.Second, "vigil_event_stream_up 1", func() bool { return up() == 1 })

	// Channel 9 is not mapped: counted, logged once, no alert.
	nvr.Send("application/xml", hikAlert("9", "VMD"))
	nvr.Send("application/xml", hikAlert("9", "VMD"))
	nvr.Send("application/xml", hikAlert("1", "fielddetection"))
	var list alertList
	waitFor(t, 15*time.Second, "the alert of channel 1", func() bool {
		_, body := call(t, "GET", a.URL()+"/api/v1/alerts", deskToken, "")
		list = alertList{}
		json.Unmarshal([]byte(body), &list)
		return len(list.Alerts) >= 1
	})
	if len(list.Alerts) != 1 || list.Alerts[0].Camera != "hall-entrance" || list.Alerts[0].Type != "intrusion" {
		t.Fatalf("alerts %+v", list.Alerts)
	}
	if n := promtest.ToFloat64(a.events.unknown.WithLabelValues("nvr-1")); n != 2 {
		t.Fatalf("unknown channel events counted %v, want 2", n)
	}
	if n := strings.Count(logs.String(), "device event for a channel not in its channels"); n != 1 {
		t.Fatalf("unknown channel logged %d times, want once", n)
	}

	// The camera API shows the stream's health.
	_, body := call(t, "GET", a.URL()+"/api/v1/cameras/hall-entrance", deskToken, "")
	var cam struct {
		Events *struct {
			Source      string     `json:"source"`
			Status      string     `json:"status"`
			Since       time.Time  `json:"since"`
			LastEventAt *time.Time `json:"last_event_at"`
		} `json:"events"`
	}
	if err := json.Unmarshal([]byte(body), &cam); err != nil || cam.Events == nil {
		t.Fatalf("camera: %v %s", err, body)
	}
	if cam.Events.Source != "hikvision" || cam.Events.Status != "up" || cam.Events.LastEventAt == nil || cam.Events.Since.IsZero() {
		t.Fatalf("events health %+v", cam.Events)
	}
	_, body = call(t, "GET", a.URL()+"/api/v1/cameras/key-site-gate", deskToken, "")
	if !strings.Contains(body, `"events":null`) {
		t.Fatalf("a camera without a pull subscription: %s", body)
	}

	// The NVR closes the stream: down, then back.
	connected = nvr.Connected()
	nvr.CloseStreams()
	select {
	case <-connected:
	case <-time.After(15 * time.Second):
		t.Fatal("Vigil did not reconnect")
	}
	waitFor(t, 15*time.Second, "vigil_event_stream_up 1 again", func() bool { return up() == 1 })
}

func TestDahuaHookAnswersPerRecord(t *testing.T) {
	a := startApp(t, eventsConfig(t, "http://127.0.0.1:1"), io.Discard)
	code, body := call(t, "POST", a.URL()+"/api/v1/hooks/key-site-gate/dahua?key="+hookSecret, "",
		"Code=VideoLoss;action=Start;index=3\r\nCode=CrossLineDetection;action=Start;index=0;data={\r\n")
	if code != 202 || body != `{"accepted":2,"rejected":[]}`+"\n" {
		t.Fatalf("truncated data: %d %q", code, body)
	}
	code, body = call(t, "POST", a.URL()+"/api/v1/hooks/key-site-gate/dahua?key="+hookSecret, "",
		"Code=VideoLoss;action=Start;index=3\nCode=VideoMotion;action=Go;index=0\nCode=NTPAdjustTime;action=Pulse;index=0")
	want := `{"accepted":1,"rejected":[{"record":2,"error":"dahua: record 2: code \"VideoMotion\": action \"Go\": want Start, Stop or Pulse"}]}` + "\n"
	if code != 202 || body != want {
		t.Fatalf("one bad record (NTPAdjustTime ignored):\n got %d %s\nwant 202 %s", code, body, want)
	}
}

func TestONVIFNotifyHook(t *testing.T) {
	a := startApp(t, eventsConfig(t, "http://127.0.0.1:1"), io.Discard)
	notify := `<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope" xmlns:wsnt="http://docs.oasis-open.org/wsn/b-2" xmlns:tt="http://www.onvif.org/ver10/schema">
<s:Body><wsnt:Notify>
<wsnt:NotificationMessage><wsnt:Topic Dialect="http://www.onvif.org/ver10/tev/topicExpression/ConcreteSet">tns1:RuleEngine/FieldDetector/ObjectsInside</wsnt:Topic>
<wsnt:Message><tt:Message UtcTime="2026-11-26T13:05:00Z" PropertyOperation="Changed"><tt:Source><tt:SimpleItem Name="Rule" Value="Gate"/></tt:Source><tt:Data><tt:SimpleItem Name="IsInside" Value="true"/></tt:Data></tt:Message></wsnt:Message></wsnt:NotificationMessage>
<wsnt:NotificationMessage><wsnt:Topic>tns1:PTZController/PTZPresets/Reached</wsnt:Topic>
<wsnt:Message><tt:Message UtcTime="2026-11-26T13:05:00Z"><tt:Data><tt:SimpleItem Name="Reached" Value="true"/></tt:Data></tt:Message></wsnt:Message></wsnt:NotificationMessage>
</wsnt:Notify></s:Body></s:Envelope>`
	code, body := call(t, "POST", a.URL()+"/api/v1/hooks/key-site-gate/onvif?key="+hookSecret, "", notify)
	if code != 202 || body != `{"accepted":1}`+"\n" {
		t.Fatalf("notify: %d %s (the PTZ preset is a state topic and raises nothing)", code, body)
	}
	if code, _ := call(t, "POST", a.URL()+"/api/v1/hooks/key-site-gate/onvif?key=wrong", "", notify); code != 401 {
		t.Fatalf("wrong key: %d", code)
	}
}

// The demo's key-site gate delivers its events through a Hikvision
// alertStream that Vigil subscribes to.
func TestDemoGateIsAPullSource(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	started := make(chan *App, 1)
	done := make(chan error, 1)
	go func() {
		done <- Demo(ctx, DemoOptions{Dir: t.TempDir(), Listen: "127.0.0.1:0", Out: io.Discard,
			Logger: slog.New(slog.DiscardHandler), Started: func(a *App) { started <- a }})
	}()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Demo: %v", err)
		}
	}()
	var a *App
	select {
	case a = <-started:
	case <-time.After(20 * time.Second):
		t.Fatal("the demo did not start")
	}
	waitFor(t, 20*time.Second, "the gate's alertStream up", func() bool {
		h := a.events.cameraHealth("key-site-gate")
		return h != nil && h.Source == "hikvision" && h.Status == "up"
	})
	if h := a.events.cameraHealth("hall-entrance"); h != nil {
		t.Fatalf("hall-entrance has an event stream: %+v", h)
	}
}

// A reload that removes an NVR ends its subscription and its gauge; one
// that adds a camera with its own stream starts it.
func TestReloadFollowsEventStreams(t *testing.T) {
	nvr := pulltest.NewStream("admin", "nvr-pw")
	nvrSrv := httptest.NewServer(nvr)
	t.Cleanup(nvrSrv.Close)
	cam := pulltest.NewStream("admin", "cam-pw")
	cam.Boundary = "myboundary"
	camSrv := httptest.NewServer(cam)
	t.Cleanup(camSrv.Close)

	cfg := eventsConfig(t, nvrSrv.URL)
	a := startApp(t, cfg, io.Discard)
	gauge := func(camera, source string) float64 {
		return promtest.ToFloat64(a.events.up.WithLabelValues(camera, source))
	}
	waitFor(t, 15*time.Second, "the NVR stream up", func() bool { return gauge("hall-entrance", "hikvision") == 1 })

	connected := cam.Connected()
	cams := `cameras:
  - {id: hall-entrance, name: 服务大厅入口, site: hall, url: "rtsp://127.0.0.1:1/cam/0", enabled: false}
  - id: key-site-gate
    name: 重点部位大门
    site: key-site
    url: rtsp://127.0.0.1:1/cam/1
    username: admin
    password: cam-pw
    events: {dahua_stream: true, url: "` + camSrv.URL + `"}
`
	if err := os.WriteFile(cfg.CamerasPath, []byte(cams), 0o600); err != nil {
		t.Fatal(err)
	}
	if code, body := call(t, "POST", a.URL()+"/api/v1/admin/reload", adminToken, ""); code != 200 {
		t.Fatalf("reload: %d %s", code, body)
	}
	select {
	case <-connected:
	case <-time.After(15 * time.Second):
		t.Fatal("the added camera's dahua stream did not connect")
	}
	waitFor(t, 15*time.Second, "the NVR stream gone and the camera's up", func() bool {
		return a.events.cameraHealth("hall-entrance") == nil && gauge("key-site-gate", "dahua") == 1
	})
	if n := promtest.CollectAndCount(a.events.up); n != 1 {
		t.Fatalf("%d vigil_event_stream_up series, want only key-site-gate's", n)
	}
}

func TestEventURL(t *testing.T) {
	cam := func(url string, ev configs.CameraEvents) configs.Camera {
		return configs.Camera{URL: url, Events: ev}
	}
	for _, tc := range []struct {
		name string
		cam  configs.Camera
		want string
	}{
		{"hikvision from the rtsp host on port 80", cam("rtsp://192.0.2.31:554/Streaming/Channels/101", configs.CameraEvents{HikvisionStream: true}), "http://192.0.2.31"},
		{"onvif device service", cam("rtsp://192.0.2.21/s", configs.CameraEvents{ONVIFPullPoint: true}), "http://192.0.2.21/onvif/device_service"},
		{"onvif_url given", cam("rtsp://192.0.2.21/s", configs.CameraEvents{ONVIFPullPoint: true, ONVIFURL: "http://192.0.2.21:8000/onvif/device_service"}), "http://192.0.2.21:8000/onvif/device_service"},
		{"url given for dahua", cam("rtsp://192.0.2.23/s", configs.CameraEvents{DahuaStream: true, URL: "http://192.0.2.23:8080"}), "http://192.0.2.23:8080"},
		{"ipv6", cam("rtsp://[2001:db8::5]:554/s", configs.CameraEvents{DahuaStream: true}), "http://[2001:db8::5]"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := eventURL(tc.cam); got != tc.want {
				t.Fatalf("got %s, want %s", got, tc.want)
			}
		})
	}
}
