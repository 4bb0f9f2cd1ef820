package hooks

import (
	"encoding/json"
	"io"
	"strings"
	"testing"
	"time"

	"vigil/alerts"
)

// recordParser judges each line on its own, as the Dahua parser does: a
// line "bad" is rejected, the others become events.
func recordParser(camera, _ string, body io.Reader, now time.Time) ([]alerts.Event, error) {
	b, err := io.ReadAll(body)
	if err != nil {
		return nil, err
	}
	var out []alerts.Event
	rej := RejectedRecords{}
	for i, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		if l == "bad" {
			rej = append(rej, alerts.RejectedRecord{Record: i + 1, Error: "line \"bad\": not an event"})
			continue
		}
		out = append(out, alerts.Event{Camera: camera, Type: alerts.Type(l), State: alerts.Active, At: now})
	}
	return out, rej
}

func TestHooksPerRecordAnswer(t *testing.T) {
	for _, tc := range []struct {
		name, body   string
		code         int
		wantAnswer   string
		wantAccepted int
	}{
		{"all good", "motion\ntamper", 202, `{"accepted":2,"rejected":[]}`, 2},
		{"one bad among good", "video_loss\nbad\nio_alarm", 202, `{"accepted":2,"rejected":[{"record":2,"error":"line \"bad\": not an event"}]}`, 2},
		{"all bad", "bad", 400, "", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newHookFixture(t)
			f.hooks.opts.Parsers["dahua"] = recordParser
			w := f.post("/api/v1/hooks/gate/dahua?key=s3cret", tc.body, "")
			if w.Code != tc.code {
				t.Fatalf("status %d, want %d: %s", w.Code, tc.code, w.Body)
			}
			if tc.wantAnswer != "" {
				var got, want any
				if err := json.Unmarshal(w.Body.Bytes(), &got); err != nil {
					t.Fatal(err)
				}
				if err := json.Unmarshal([]byte(tc.wantAnswer), &want); err != nil {
					t.Fatal(err)
				}
				gb, _ := json.Marshal(got)
				wb, _ := json.Marshal(want)
				if string(gb) != string(wb) {
					t.Fatalf("answer %s, want %s", gb, wb)
				}
			}
			if len(f.got) != tc.wantAccepted {
				t.Fatalf("%d events submitted, want %d", len(f.got), tc.wantAccepted)
			}
		})
	}
}
