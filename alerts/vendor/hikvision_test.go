package vendor

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"vigil/alerts"
)

// hikvisionRequest splits a testdata payload into the Content-Type header
// and body: a .http file starts with a "Content-Type: ..." line and a blank
// line, any other file is a bare XML body.
func hikvisionRequest(name string, b []byte) (contentType string, body []byte) {
	if !strings.HasSuffix(name, ".http") {
		return "application/xml", b
	}
	head, body, _ := bytes.Cut(b, []byte("\r\n\r\n"))
	return strings.TrimPrefix(string(head), "Content-Type: "), body
}

func TestParseHikvision(t *testing.T) {
	for _, tc := range []struct {
		file          string
		want          []parseWant
		wantHeartbeat bool
		wantPictures  int
		wantErr       string
	}{
		{file: "vmd_active_ver20.xml", want: []parseWant{{
			Type: alerts.Motion, State: alerts.Active, Key: "channel=1", At: "2026-11-26T13:05:00Z",
			Detail: map[string]string{"event_type": "VMD", "channel_name": "Camera 01", "active_post_count": "1", "ip": "192.168.1.64"},
		}}},
		{file: "vmd_inactive_ver20.xml", want: []parseWant{{Type: alerts.Motion, State: alerts.Inactive, Key: "channel=1", At: "2026-11-26T13:05:09Z"}}},
		{file: "shelteralarm_ver10.xml", want: []parseWant{{Type: alerts.Tamper, State: alerts.Active, Key: "channel=1", At: "2026-11-26T13:06:00Z",
			Detail: map[string]string{"event_type": "shelteralarm", "description": "shelteralarm alarm"}}}},
		{file: "heartbeat_videoloss.xml", wantHeartbeat: true},
		{file: "videoloss_active.xml", want: []parseWant{{Type: alerts.VideoLoss, State: alerts.Active, Key: "channel=2", At: "2026-11-26T13:07:30Z"}}},
		{file: "nvr_io_local_time.xml", want: []parseWant{{Type: alerts.IOAlarm, State: alerts.Active, Key: "input=2",
			Detail: map[string]string{"camera_time": "2026-11-26T21:08:00"}}}},
		{file: "nvr_fielddetection_dynchannel.xml", want: []parseWant{{Type: alerts.Intrusion, State: alerts.Active, Key: "channel=3", At: "2026-11-26T13:09:00.25Z",
			Detail: map[string]string{"region": "1", "target": "human", "channel_name": "Gate"}}}},
		{file: "multipart_formdata_linedetection.http", wantPictures: 1, want: []parseWant{{Type: alerts.LineCrossing, State: alerts.Pulse, Key: "channel=1", At: "2026-11-26T13:10:00Z",
			Detail: map[string]string{"region": "2", "target": "vehicle", "event_type": "linedetection"}}}},
		{file: "multipart_mixed_regionentrance_nocontenttype.http", wantPictures: 2, want: []parseWant{{Type: alerts.Intrusion, State: alerts.Active, Key: "channel=1", At: "2026-11-26T13:11:00Z"}}},
		{file: "bad_event_state.xml", wantErr: `hikvision: eventState "maybe": want active or inactive`},
		{file: "bad_multipart_no_xml.http", wantErr: "hikvision: multipart body without an XML part"},
	} {
		t.Run(tc.file, func(t *testing.T) {
			ct, body := hikvisionRequest(tc.file, parseReadTestdata(t, "hikvision/"+tc.file))
			res, err := ParseHikvision("gate", ct, bytes.NewReader(body), parseTestNow)
			parseCheckErr(t, err, tc.wantErr)
			if err != nil {
				return
			}
			if res.Heartbeat != tc.wantHeartbeat || res.Pictures != tc.wantPictures {
				t.Errorf("heartbeat %v pictures %d, want %v %d", res.Heartbeat, res.Pictures, tc.wantHeartbeat, tc.wantPictures)
			}
			parseCheckEvents(t, "gate", alerts.SourceHikvision, res.Events, tc.want)
		})
	}
}

func TestParseHikvisionInline(t *testing.T) {
	alert := func(inner string) string {
		return `<EventNotificationAlert xmlns="http://www.hikvision.com/ver10/XMLSchema">` + inner + `</EventNotificationAlert>`
	}
	for _, tc := range []struct {
		name, contentType, body string
		want                    []parseWant
		wantErr                 string
	}{
		{name: "no namespace, no content type", body: alert(`<eventType>tamperdetection</eventType><eventState>ACTIVE</eventState><channelID>4</channelID>`),
			want: []parseWant{{Type: alerts.Tamper, State: alerts.Active, Key: "channel=4"}}},
		{name: "unknown type is other", contentType: "text/xml", body: alert(`<eventType>facesnap</eventType><eventState>active</eventState>`),
			want: []parseWant{{Type: alerts.Other, State: alerts.Active, Detail: map[string]string{"event_type": "facesnap"}}}},
		{name: "PIR alarm is motion", contentType: "text/xml", body: alert(`<eventType>PIR</eventType><eventState>active</eventState><channelID>1</channelID>`),
			want: []parseWant{{Type: alerts.Motion, State: alerts.Active, Key: "channel=1", Detail: map[string]string{"event_type": "PIR"}}}},
		{name: "duration maps to its relationEvent", body: alert(`<eventType>duration</eventType><eventState>active</eventState><channelID>2</channelID><DurationList><Duration><relationEvent>linedetection</relationEvent></Duration></DurationList>`),
			want: []parseWant{{Type: alerts.LineCrossing, State: alerts.Pulse, Key: "channel=2", Detail: map[string]string{"event_type": "duration", "relation_event": "linedetection"}}}},
		{name: "duration with a top-level relationEvent", body: alert(`<eventType>duration</eventType><eventState>inactive</eventState><relationEvent>fielddetection</relationEvent>`),
			want: []parseWant{{Type: alerts.Intrusion, State: alerts.Inactive, Detail: map[string]string{"relation_event": "fielddetection"}}}},
		{name: "duration without relation is other", body: alert(`<eventType>duration</eventType><eventState>active</eventState>`),
			want: []parseWant{{Type: alerts.Other, State: alerts.Active}}},
		{name: "linedetection inactive", body: alert(`<eventType>linedetection</eventType><eventState>inactive</eventState><channelID>1</channelID>`),
			want: []parseWant{{Type: alerts.LineCrossing, State: alerts.Inactive, Key: "channel=1"}}},
		{name: "channel and input", body: alert(`<eventType>IO</eventType><eventState>active</eventState><channelID>1</channelID><inputIOPortID>3</inputIOPortID>`),
			want: []parseWant{{Type: alerts.IOAlarm, State: alerts.Active, Key: "channel=1;input=3"}}},
		{name: "form urlencoded header but XML body", contentType: "application/x-www-form-urlencoded", body: alert(`<eventType>VMD</eventType><eventState>active</eventState>`),
			want: []parseWant{{Type: alerts.Motion, State: alerts.Active}}},
		{name: "empty", wantErr: `hikvision: content type "": body is not XML`},
		{name: "json", contentType: "application/json", body: `{"eventType":"VMD"}`, wantErr: `hikvision: content type "application/json": body is not XML`},
		{name: "wrong root", body: `<ResponseStatus/>`, wantErr: `hikvision: root element "ResponseStatus": want EventNotificationAlert`},
		{name: "missing type", body: alert(`<eventState>active</eventState>`), wantErr: "hikvision: eventType missing"},
		{name: "bad post count", body: alert(`<eventType>VMD</eventType><eventState>active</eventState><activePostCount>-1</activePostCount>`),
			wantErr: `hikvision: activePostCount "-1": want a count`},
		{name: "malformed", body: `<EventNotificationAlert><eventType>VMD`, wantErr: "hikvision: malformed XML"},
		{name: "multipart without boundary", contentType: "multipart/form-data", body: alert(""), wantErr: "without boundary"},
		{name: "multipart broken", contentType: "multipart/form-data; boundary=x", body: "--x\r\nContent-Type: text/xml\r\n\r\n<a", wantErr: "hikvision: multipart part 1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, err := ParseHikvision("gate", tc.contentType, strings.NewReader(tc.body), parseTestNow)
			parseCheckErr(t, err, tc.wantErr)
			if err == nil {
				parseCheckEvents(t, "gate", alerts.SourceHikvision, res.Events, tc.want)
			}
		})
	}
}

func TestParseHikvisionBodyCap(t *testing.T) {
	body := strings.Repeat(" ", MaxPayloadBytes+1)
	if _, err := ParseHikvision("gate", "application/xml", strings.NewReader(body), parseTestNow); !errors.Is(err, ErrPayloadTooLarge) {
		t.Fatalf("got %v", err)
	}
}

func FuzzParseHikvision(f *testing.F) {
	parseAddSeeds(f, "hikvision", func(name string, b []byte) {
		ct, body := hikvisionRequest(name, b)
		f.Add(ct, body)
	})
	f.Fuzz(func(t *testing.T, contentType string, body []byte) {
		res, err := ParseHikvision("gate", contentType, bytes.NewReader(body), parseTestNow)
		if err != nil {
			if res.Events != nil || res.Heartbeat {
				t.Fatalf("result with error %v", err)
			}
			return
		}
		if len(res.Events) == 0 && !res.Heartbeat {
			t.Fatal("no events and no heartbeat without an error")
		}
		parseCheckInvariants(t, "gate", alerts.SourceHikvision, res.Events)
	})
}
