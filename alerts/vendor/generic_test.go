package vendor

import (
	"errors"
	"strings"
	"testing"

	"vigil/alerts"
)

func TestParseGeneric(t *testing.T) {
	for _, tc := range []struct {
		file    string
		want    parseWant
		wantErr string
	}{
		{file: "intrusion_active.json", want: parseWant{Type: alerts.Intrusion, State: alerts.Active, Key: "gate-zone-1", At: "2026-11-26T13:05:00Z",
			Detail: map[string]string{"rule": "Gate", "object": "person"}}},
		{file: "motion_inactive_no_at.json", want: parseWant{Type: alerts.Motion, State: alerts.Inactive}},
		{file: "line_crossing_pulse.json", want: parseWant{Type: alerts.LineCrossing, State: alerts.Pulse, Key: "line-2", At: "2026-11-26T13:05:00.25Z",
			Detail: map[string]string{"direction": "in"}}},
		{file: "io_alarm_minimal.json", want: parseWant{Type: alerts.IOAlarm, State: alerts.Active}},
		{file: "bad_unknown_type.json", wantErr: `generic: type "fire": want motion, tamper, video_loss, line_crossing, intrusion, io_alarm or other`},
		{file: "bad_unknown_field.json", wantErr: `generic: json: unknown field "camera"`},
		{file: "bad_detail_number.json", wantErr: `generic: detail: got a JSON number among the values, want strings only`},
		{file: "bad_at.json", wantErr: `generic: at "26/11/2026 21:05": want an RFC 3339 time`},
		{file: "bad_state_case.json", wantErr: `generic: state "Active": want active, inactive or pulse`},
	} {
		t.Run(tc.file, func(t *testing.T) {
			got, err := ParseGeneric("mediation-room", strings.NewReader(string(parseReadTestdata(t, "generic/"+tc.file))), parseTestNow)
			parseCheckErr(t, err, tc.wantErr)
			if err == nil {
				parseCheckEvents(t, "mediation-room", alerts.SourceGeneric, []alerts.Event{got}, []parseWant{tc.want})
			}
		})
	}
}

func TestParseGenericInline(t *testing.T) {
	for _, tc := range []struct {
		name, body, wantErr string
	}{
		{"empty", "", "generic: body: want a JSON object"},
		{"array", `[{"type":"motion","state":"active"}]`, "generic: body: want a JSON object"},
		{"no type", `{"state":"active"}`, "generic: type missing"},
		{"no state", `{"type":"motion"}`, "generic: state missing"},
		{"health type", `{"type":"storage_full","state":"active"}`, `generic: type "storage_full" is reserved`},
		{"type not string", `{"type":1,"state":"active"}`, "generic: type: got a JSON number, want a string"},
		{"detail not object", `{"type":"motion","state":"active","detail":"x"}`, "generic: detail: got a JSON string, want an object of strings"},
		{"two objects", `{"type":"motion","state":"active"}{}`, "generic: data after the JSON object"},
		{"truncated", `{"type":"motion",`, "generic: malformed JSON"},
		{"syntax", `{"type":"motion" "state"}`, "generic: malformed JSON at byte"},
		{"long key", `{"type":"motion","state":"active","key":"` + strings.Repeat("k", 257) + `"}`, "generic: key of 257 bytes: want at most 256"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseGeneric("c", strings.NewReader(tc.body), parseTestNow)
			parseCheckErr(t, err, tc.wantErr)
		})
	}
	body := `{"type":"motion","state":"active","key":"` + strings.Repeat("k", MaxPayloadBytes) + `"}`
	if _, err := ParseGeneric("c", strings.NewReader(body), parseTestNow); !errors.Is(err, ErrPayloadTooLarge) {
		t.Fatalf("over the cap: %v", err)
	}
}

func FuzzParseGeneric(f *testing.F) {
	parseAddSeeds(f, "generic", func(_ string, b []byte) { f.Add(b) })
	f.Fuzz(func(t *testing.T, body []byte) {
		e, err := ParseGeneric("c", strings.NewReader(string(body)), parseTestNow)
		if err != nil {
			return
		}
		parseCheckInvariants(t, "c", alerts.SourceGeneric, []alerts.Event{e})
	})
}
