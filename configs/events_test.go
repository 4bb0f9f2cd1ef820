package configs

import (
	"reflect"
	"strings"
	"testing"
)

const eventCameras = `cameras:
  - id: gate
    name: Gate
    url: rtsp://192.0.2.31/s
  - id: hall
    name: Hall
    url: rtsp://192.0.2.21/s
`

func TestLoadDevicesAndEventSources(t *testing.T) {
	cams := `devices:
  - id: nvr-1
    kind: hikvision
    url: http://192.0.2.30
    username: admin
    password: pw
    channels: {"34": gate}
    map: {faceSnap: intrusion}
    ignore: [PIR]
` + eventCameras + `    events:
      onvif_pullpoint: true
      onvif_url: http://192.0.2.21:8000/onvif/device_service
      map: {"tns1:RuleEngine/MyRule": intrusion}
      ignore: ["tns1:VideoSource/ImageTooDark"]
`
	cfg, err := loadIn(t, baseVigil, cams, noEnv)
	if err != nil {
		t.Fatal(err)
	}
	want := Device{ID: "nvr-1", Kind: PullHikvision, URL: "http://192.0.2.30", Username: "admin", Password: "pw", Stream: true,
		Channels: map[string]string{"34": "gate"}, Map: map[string]string{"faceSnap": "intrusion"}, Ignore: []string{"PIR"}}
	if len(cfg.Devices) != 1 || !reflect.DeepEqual(cfg.Devices[0], want) {
		t.Fatalf("devices %+v, want %+v", cfg.Devices, want)
	}
	hall, _ := cfg.Camera("hall")
	if hall.Events.Pull() != PullONVIF || hall.Events.ONVIFURL != "http://192.0.2.21:8000/onvif/device_service" ||
		hall.Events.Map["tns1:RuleEngine/MyRule"] != "intrusion" || len(hall.Events.Ignore) != 1 {
		t.Fatalf("hall events %+v", hall.Events)
	}
}

func TestLoadDeviceErrors(t *testing.T) {
	for _, tc := range []struct {
		name, cameras string
		want          []string
	}{
		{"unknown channel camera", "devices:\n  - {id: nvr-1, kind: dahua, url: http://192.0.2.30, channels: {\"0\": gates}}\n" + eventCameras,
			[]string{`cameras.yaml:2:70: devices[0].channels["0"]: unknown camera "gates" (did you mean gate?)`}},
		{"missing kind, url and channels", "devices:\n  - {id: nvr-1}\n" + eventCameras,
			[]string{"cameras.yaml:2:5: devices[0].kind: required", "cameras.yaml:2:5: devices[0].url: required", "cameras.yaml:2:5: devices[0].channels: required"}},
		{"bad kind and scheme", "devices:\n  - {id: nvr-1, kind: axis, url: rtsp://192.0.2.30, channels: {\"1\": gate}}\n" + eventCameras,
			[]string{"cameras.yaml:2:23: devices[0].kind:", "cameras.yaml:2:34: devices[0].url: scheme must be http or https"}},
		{"camera on two channels", "devices:\n  - {id: nvr-1, kind: hikvision, url: http://192.0.2.30, channels: {\"1\": gate, \"2\": gate}}\n" + eventCameras,
			[]string{`cameras.yaml:2:85: devices[0].channels["2"]: camera "gate" is already channel "1" of device nvr-1`}},
		{"device id is a camera id", "devices:\n  - {id: gate, kind: hikvision, url: http://192.0.2.30, channels: {\"1\": hall}}\n" + eventCameras,
			[]string{`cameras.yaml:2:10: devices[0].id: device id "gate" is also a camera id`}},
		{"unknown type in map", eventCameras + "    events: {map: {VideoMotion: movement}}\n",
			[]string{`cameras.yaml:8:33: cameras[1].events.map["VideoMotion"]: unknown event type "movement"`}},
		{"two pull subscriptions", eventCameras + "    events: {hikvision_stream: true, dahua_stream: true}\n",
			[]string{"cameras.yaml:8:52: cameras[1].events.dahua_stream: only one pull subscription per camera: hikvision_stream is already on"}},
		{"camera stream beside its device", "devices:\n  - {id: nvr-1, kind: hikvision, url: http://192.0.2.30, channels: {\"1\": hall}}\n" + eventCameras + "    events: {hikvision_stream: true}\n",
			[]string{`cameras.yaml:10:32: cameras[1].events.hikvision_stream: camera hall takes its events as channel "1" of device nvr-1`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := loadIn(t, baseVigil, tc.cameras, noEnv)
			got := errorLines(err)
			if len(got) != len(tc.want) {
				t.Fatalf("errors:\n%s\nwant %d:\n%s", strings.Join(got, "\n"), len(tc.want), strings.Join(tc.want, "\n"))
			}
			for i, w := range tc.want {
				if !strings.HasPrefix(got[i], w) {
					t.Errorf("error %d:\n got %s\nwant %s…", i, got[i], w)
				}
			}
		})
	}
}
