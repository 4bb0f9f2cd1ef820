package alerts

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

func TestParseDahua(t *testing.T) {
	for _, tc := range []struct {
		file    string
		want    []parseWant
		wantErr string
	}{
		{file: "videomotion_start.txt", want: []parseWant{{Type: Motion, State: Active, Key: "index=0",
			Detail: map[string]string{"code": "VideoMotion", "action": "Start", "index": "0"}}}},
		{file: "videomotion_stop.txt", want: []parseWant{{Type: Motion, State: Inactive, Key: "index=0"}}},
		{file: "crossline_start_multiline_data.txt", want: []parseWant{{Type: LineCrossing, State: Pulse, Key: "index=0;rule=Rule1", At: "2026-11-26T13:15:00Z",
			Detail: map[string]string{"rule": "Rule1", "object": "Human", "data.Direction": "LeftToRight", "data.UTC": "1795698900"}}}},
		{file: "eventmanager_stream.txt", want: []parseWant{
			{Type: Intrusion, State: Active, Key: "index=0;rule=Gate", At: "2026-11-26T13:16:00Z", Detail: map[string]string{"object": "Vehicle", "data.Action": "Cross"}},
			{Type: Tamper, State: Active, Key: "index=1"},
			{Type: Tamper, State: Inactive, Key: "index=1"},
		}},
		{file: "alarmlocal_start.txt", want: []parseWant{{Type: IOAlarm, State: Active, Key: "index=2"}}},
		{file: "multiple_records.txt", want: []parseWant{
			{Type: VideoLoss, State: Active, Key: "index=1"},
			{Type: Tamper, State: Pulse, Key: "index=0;rule=Scene", Detail: map[string]string{"data.Type": "SceneChange"}},
			{Type: LineCrossing, State: Inactive, Key: "index=0"},
		}},
		{file: "heartbeat_only.txt", want: nil},
		{file: "ntp_other_pulse.txt", want: []parseWant{{Type: Other, State: Pulse, Key: "index=0",
			Detail: map[string]string{"code": "NTPAdjustTime", "data.result": "true"}}}},
		{file: "bad_action.txt", wantErr: `dahua: record 1: code "VideoMotion": action "Go": want Start, Stop or Pulse`},
		{file: "bad_data_truncated.txt", wantErr: "dahua: record 1: data: invalid JSON"},
	} {
		t.Run(tc.file, func(t *testing.T) {
			got, err := ParseDahua("hall-counter", "text/plain", bytes.NewReader(parseReadTestdata(t, "dahua/"+tc.file)), parseTestNow)
			parseCheckErr(t, err, tc.wantErr)
			if err == nil {
				parseCheckEvents(t, "hall-counter", SourceDahua, got, tc.want)
			}
		})
	}
}

func TestParseDahuaInline(t *testing.T) {
	for _, tc := range []struct {
		name, contentType, body string
		want                    []parseWant
		wantErr                 string
	}{
		{name: "no trailing newline, lower case names", body: "code=VideoMotion;ACTION=start;Index=3",
			want: []parseWant{{Type: Motion, State: Active, Key: "index=3"}}},
		{name: "no index", body: "Code=AlarmLocal;action=Stop",
			want: []parseWant{{Type: IOAlarm, State: Inactive}}},
		{name: "boundary from content type", contentType: "multipart/x-mixed-replace; boundary=myboundary",
			body: "--myboundary\nContent-Type: text/plain\n\nCode=VideoLoss;action=Stop;index=0\n--myboundary--\n",
			want: []parseWant{{Type: VideoLoss, State: Inactive, Key: "index=0"}}},
		{name: "extra field kept", body: "Code=VideoMotion;action=Start;index=0;channel=1",
			want: []parseWant{{Type: Motion, State: Active, Key: "index=0", Detail: map[string]string{"channel": "1"}}}},
		{name: "data then field", body: `Code=CrossRegionDetection;action=Start;data={"Name":"Yard"};index=1`,
			want: []parseWant{{Type: Intrusion, State: Active, Key: "index=1;rule=Yard"}}},
		{name: "empty", body: "\r\n", wantErr: "dahua: empty body"},
		{name: "no code", body: "action=Start;index=0", wantErr: "dahua: record 1: Code missing"},
		{name: "bad index", body: "Code=VideoMotion;action=Start;index=-1", wantErr: `dahua: record 1: code "VideoMotion": index "-1": want a channel number`},
		{name: "field without value", body: "Code=VideoMotion;action=Start;oops", wantErr: `dahua: record 1: field "oops": want NAME=value`},
		{name: "second record bad", body: "Code=VideoMotion;action=Start;index=0\nCode=VideoMotion;index=0", wantErr: `dahua: record 2: code "VideoMotion": action "": want`},
		{name: "data not object", body: "Code=VideoMotion;action=Start;data=[1]", wantErr: "dahua: record 1: data: want a JSON object"},
		{name: "junk after data", body: `Code=VideoMotion;action=Start;data={} x`, wantErr: `dahua: record 1: "x" after data`},
		{name: "text before boundary", contentType: "multipart/mixed; boundary=b", body: "junk\n--b\n\nCode=VideoMotion;action=Start", wantErr: `dahua: text before the first "--b" line`},
		{name: "bad part header", body: "--b\nno header\n\nCode=VideoMotion;action=Start", wantErr: `dahua: part 1: header line "no header" without ':'`},
		{name: "not dahua", body: "<xml/>", wantErr: `dahua: record 1: field "<xml/>": want NAME=value`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseDahua("c", tc.contentType, strings.NewReader(tc.body), parseTestNow)
			parseCheckErr(t, err, tc.wantErr)
			if err == nil {
				parseCheckEvents(t, "c", SourceDahua, got, tc.want)
			}
		})
	}
}

func TestParseDahuaBodyCap(t *testing.T) {
	body := strings.Repeat("x", MaxPayloadBytes+1)
	if _, err := ParseDahua("c", "", strings.NewReader(body), parseTestNow); !errors.Is(err, ErrPayloadTooLarge) {
		t.Fatalf("got %v", err)
	}
}

func FuzzParseDahua(f *testing.F) {
	parseAddSeeds(f, "dahua", func(_ string, b []byte) { f.Add("", b) })
	f.Add("multipart/x-mixed-replace; boundary=myboundary", parseReadTestdata(f, "dahua/eventmanager_stream.txt"))
	f.Fuzz(func(t *testing.T, contentType string, body []byte) {
		evs, err := ParseDahua("c", contentType, bytes.NewReader(body), parseTestNow)
		if err != nil {
			if evs != nil {
				t.Fatalf("events with error %v", err)
			}
			return
		}
		parseCheckInvariants(t, "c", SourceDahua, evs)
	})
}
