package vendor

import (
	"bytes"
	"errors"
	"strconv"
	"strings"
	"testing"

	"vigil/alerts"
)

// dahuaCheckRejected checks the rejected records against "N: substring"
// entries.
func dahuaCheckRejected(t *testing.T, got []alerts.RejectedRecord, want []string) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("rejected %+v, want %d: %q", got, len(want), want)
	}
	for i, w := range want {
		num, msg, _ := strings.Cut(w, ": ")
		if g := got[i]; strings.TrimSpace(num) != strconv.Itoa(g.Record) || !strings.Contains(g.Error, msg) {
			t.Errorf("rejected %d = %+v, want record %s with %q", i, g, num, msg)
		}
	}
}

func TestParseDahua(t *testing.T) {
	for _, tc := range []struct {
		file         string
		want         []parseWant
		wantRejected []string
	}{
		{file: "videomotion_start.txt", want: []parseWant{{Type: alerts.Motion, State: alerts.Active, Key: "index=0",
			Detail: map[string]string{"code": "VideoMotion", "action": "Start", "index": "0"}}}},
		{file: "videomotion_stop.txt", want: []parseWant{{Type: alerts.Motion, State: alerts.Inactive, Key: "index=0"}}},
		// CrossLineDetection Start is a state (its Stop ends it), not a pulse.
		{file: "crossline_start_multiline_data.txt", want: []parseWant{{Type: alerts.LineCrossing, State: alerts.Active, Key: "index=0;rule=Rule1", At: "2026-11-26T13:15:00Z",
			Detail: map[string]string{"rule": "Rule1", "object": "Human", "data.Direction": "LeftToRight", "data.UTC": "1795698900"}}}},
		{file: "crossline_start_stop.txt", want: []parseWant{
			{Type: alerts.LineCrossing, State: alerts.Active, Key: "index=0;rule=Rule1"},
			{Type: alerts.LineCrossing, State: alerts.Inactive, Key: "index=0"},
		}},
		{file: "eventmanager_stream.txt", want: []parseWant{
			{Type: alerts.Intrusion, State: alerts.Active, Key: "index=0;rule=Gate", At: "2026-11-26T13:16:00Z", Detail: map[string]string{"object": "Vehicle", "data.Action": "Cross"}},
			{Type: alerts.Tamper, State: alerts.Active, Key: "index=1"},
			{Type: alerts.Tamper, State: alerts.Inactive, Key: "index=1"},
		}},
		{file: "eventmanager_no_blank_line.txt", want: []parseWant{
			{Type: alerts.Tamper, State: alerts.Active, Key: "index=1"},
			{Type: alerts.Tamper, State: alerts.Inactive, Key: "index=1"},
		}},
		// VideoMotionInfo;action=State reports come between events on real
		// cameras: skipped, not rejected.
		{file: "eventmanager_videomotioninfo_state.txt", want: []parseWant{{Type: alerts.Motion, State: alerts.Active, Key: "index=0;rule=Region1"}}},
		{file: "alarmlocal_start.txt", want: []parseWant{{Type: alerts.IOAlarm, State: alerts.Active, Key: "index=2"}}},
		{file: "multiple_records.txt", want: []parseWant{
			{Type: alerts.VideoLoss, State: alerts.Active, Key: "index=1"},
			{Type: alerts.Tamper, State: alerts.Pulse, Key: "index=0;rule=Scene", Detail: map[string]string{"data.Type": "SceneChange"}},
			{Type: alerts.LineCrossing, State: alerts.Inactive, Key: "index=0"},
		}},
		{file: "heartbeat_only.txt", want: nil},
		{file: "ntp_other_pulse.txt", want: []parseWant{{Type: alerts.Other, State: alerts.Pulse, Key: "index=0",
			Detail: map[string]string{"code": "NTPAdjustTime", "data.result": "true"}}}},
		{file: "bad_action.txt", wantRejected: []string{`1: dahua: record 1: code "VideoMotion": action "Go": want Start, Stop or Pulse`}},
		// Truncated data is kept as text; the record stands.
		{file: "bad_data_truncated.txt", want: []parseWant{{Type: alerts.LineCrossing, State: alerts.Active, Key: "index=0",
			Detail: map[string]string{"data": "{\r\n   \"Name\" : \"Rule1\","}}}},
		{file: "videoloss_then_truncated_data.txt", want: []parseWant{
			{Type: alerts.VideoLoss, State: alerts.Active, Key: "index=3"},
			{Type: alerts.LineCrossing, State: alerts.Active, Key: "index=0"},
		}},
		{file: "one_bad_record_among_good.txt", want: []parseWant{
			{Type: alerts.VideoLoss, State: alerts.Active, Key: "index=3"},
			{Type: alerts.IOAlarm, State: alerts.Active, Key: "index=1"},
		}, wantRejected: []string{`2: action "Go"`}},
		{file: "dhip_json_record.json", want: []parseWant{{Type: alerts.Intrusion, State: alerts.Active, Key: "index=1;rule=Yard", At: "2026-11-26T13:16:00Z",
			Detail: map[string]string{"object": "Human", "code": "CrossRegionDetection"}}}},
		// data.Name is the device name here; the region names the rule.
		{file: "videomotion_regionname_device_name.txt", want: []parseWant{{Type: alerts.Motion, State: alerts.Active, Key: "index=0;rule=Yard"}}},
	} {
		t.Run(tc.file, func(t *testing.T) {
			got, rej, err := ParseDahua("hall-counter", "text/plain", bytes.NewReader(parseReadTestdata(t, "dahua/"+tc.file)), parseTestNow)
			if err != nil {
				t.Fatal(err)
			}
			parseCheckEvents(t, "hall-counter", alerts.SourceDahua, got, tc.want)
			dahuaCheckRejected(t, rej, tc.wantRejected)
		})
	}
}

func TestParseDahuaInline(t *testing.T) {
	for _, tc := range []struct {
		name, contentType, body string
		want                    []parseWant
		wantRejected            []string
		wantErr                 string
	}{
		{name: "no trailing newline, lower case names", body: "code=VideoMotion;ACTION=start;Index=3",
			want: []parseWant{{Type: alerts.Motion, State: alerts.Active, Key: "index=3"}}},
		{name: "no index", body: "Code=AlarmLocal;action=Stop",
			want: []parseWant{{Type: alerts.IOAlarm, State: alerts.Inactive}}},
		{name: "boundary from content type", contentType: "multipart/x-mixed-replace; boundary=myboundary",
			body: "--myboundary\nContent-Type: text/plain\n\nCode=VideoLoss;action=Stop;index=0\n--myboundary--\n",
			want: []parseWant{{Type: alerts.VideoLoss, State: alerts.Inactive, Key: "index=0"}}},
		{name: "extra field kept", body: "Code=VideoMotion;action=Start;index=0;channel=1",
			want: []parseWant{{Type: alerts.Motion, State: alerts.Active, Key: "index=0", Detail: map[string]string{"channel": "1"}}}},
		{name: "data then field", body: `Code=CrossRegionDetection;action=Start;data={"Name":"Yard"};index=1`,
			want: []parseWant{{Type: alerts.Intrusion, State: alerts.Active, Key: "index=1;rule=Yard"}}},
		{name: "DHIP JSON array", body: `[{"Code":"VideoLoss","Action":"Start","Index":2},{"Code":"VideoLoss","Action":"Stop","Index":2}]`,
			want: []parseWant{{Type: alerts.VideoLoss, State: alerts.Active, Key: "index=2"}, {Type: alerts.VideoLoss, State: alerts.Inactive, Key: "index=2"}}},
		{name: "DHIP JSON in a multipart part", contentType: "multipart/x-mixed-replace; boundary=b",
			body: "--b\r\nContent-Type: application/json\r\n\r\n{\"Code\":\"AlarmLocal\",\"Action\":\"Pulse\",\"Index\":0}\r\n",
			want: []parseWant{{Type: alerts.IOAlarm, State: alerts.Pulse, Key: "index=0"}}},
		{name: "empty", body: "\r\n", wantErr: "dahua: empty body"},
		{name: "no code", body: "action=Start;index=0", wantRejected: []string{"1: Code missing"}},
		{name: "bad index", body: "Code=VideoMotion;action=Start;index=-1", wantRejected: []string{`1: code "VideoMotion": index "-1": want a channel number`}},
		{name: "field without value", body: "Code=VideoMotion;action=Start;oops", wantRejected: []string{`1: field "oops": want NAME=value`}},
		{name: "second record bad", body: "Code=VideoMotion;action=Start;index=0\nCode=VideoMotion;index=0",
			want: []parseWant{{Type: alerts.Motion, State: alerts.Active, Key: "index=0"}}, wantRejected: []string{`2: code "VideoMotion": action "": want`}},
		{name: "first record garbled, second good", body: "Code=VideoMotion;action=Start;oops\nCode=VideoLoss;action=Start;index=4",
			want: []parseWant{{Type: alerts.VideoLoss, State: alerts.Active, Key: "index=4"}}, wantRejected: []string{`1: field "oops"`}},
		{name: "data not object", body: "Code=VideoMotion;action=Start;data=[1]", wantRejected: []string{"1: data: want a JSON object"}},
		{name: "junk after data", body: `Code=VideoMotion;action=Start;data={} x`, wantRejected: []string{`1: "x" after data`}},
		{name: "text before boundary", contentType: "multipart/mixed; boundary=b", body: "junk\n--b\n\nCode=VideoMotion;action=Start", wantErr: `dahua: text before the first "--b" line`},
		{name: "not dahua", body: "<xml/>", wantRejected: []string{`1: field "<xml/>": want NAME=value`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, rej, err := ParseDahua("c", tc.contentType, strings.NewReader(tc.body), parseTestNow)
			parseCheckErr(t, err, tc.wantErr)
			if err == nil {
				parseCheckEvents(t, "c", alerts.SourceDahua, got, tc.want)
				dahuaCheckRejected(t, rej, tc.wantRejected)
			}
		})
	}
}

func TestParseDahuaBodyCap(t *testing.T) {
	body := strings.Repeat("x", MaxPayloadBytes+1)
	if _, _, err := ParseDahua("c", "", strings.NewReader(body), parseTestNow); !errors.Is(err, ErrPayloadTooLarge) {
		t.Fatalf("got %v", err)
	}
}

func FuzzParseDahua(f *testing.F) {
	parseAddSeeds(f, "dahua", func(_ string, b []byte) { f.Add("", b) })
	f.Add("multipart/x-mixed-replace; boundary=myboundary", parseReadTestdata(f, "dahua/eventmanager_stream.txt"))
	f.Fuzz(func(t *testing.T, contentType string, body []byte) {
		evs, rej, err := ParseDahua("c", contentType, bytes.NewReader(body), parseTestNow)
		if err != nil {
			if evs != nil || rej != nil {
				t.Fatalf("events or rejected records with error %v", err)
			}
			return
		}
		parseCheckInvariants(t, "c", alerts.SourceDahua, evs)
		for i, r := range rej {
			if r.Record < 1 || r.Error == "" || (i > 0 && r.Record <= rej[i-1].Record) {
				t.Fatalf("rejected %+v", rej)
			}
		}
	})
}
