package alertsapi_test

import (
	"fmt"
	"testing"
	"time"

	"vigil/alerts"
	"vigil/alerts/alertstest"
)

// POST /api/v1/alerts/{id}/supervise sets and clears 挂牌督办; a stale
// version is 409 with the current alert, a missing due 400.
func TestAPISupervise(t *testing.T) {
	f := newAPIFixture(t)
	f.Handle(t, alertstest.Ev("hall-entrance", alerts.Motion, alerts.Active))
	a := f.Only(t)
	due := alertstest.T0.Add(48 * time.Hour).Format(time.RFC3339)
	var got alerts.Alert
	code, m := f.do(t, "POST", "/api/v1/alerts/"+a.ID+"/supervise", fmt.Sprintf(`{"due":%q,"note":"镇领导挂牌","version":%d}`, due, a.Version), &got)
	if code != 200 || got.Supervision == nil || got.Supervision.By != "desk-1" || got.Supervision.Note != "镇领导挂牌" || got.Supervision.Due.Format(time.RFC3339) != due {
		t.Fatalf("supervise: %d %v", code, m)
	}
	if code, m := f.do(t, "POST", "/api/v1/alerts/"+a.ID+"/supervise", fmt.Sprintf(`{"due":%q,"version":%d}`, due, a.Version), nil); code != 409 || m["code"] != "conflict" {
		t.Fatalf("stale version: %d %v", code, m)
	}
	if code, m := f.do(t, "POST", "/api/v1/alerts/"+a.ID+"/supervise", fmt.Sprintf(`{"version":%d}`, got.Version), nil); code != 400 {
		t.Fatalf("no due: %d %v", code, m)
	}
	var cleared alerts.Alert
	code, m = f.do(t, "POST", "/api/v1/alerts/"+a.ID+"/supervise", fmt.Sprintf(`{"clear":true,"note":"已落实","version":%d}`, got.Version), &cleared)
	if code != 200 || cleared.Supervision != nil || cleared.History[len(cleared.History)-1].Action != "supervision_cleared" {
		t.Fatalf("clear: %d %v", code, m)
	}
	if m["supervision"] != nil {
		t.Errorf("cleared supervision shows %v, want null", m["supervision"])
	}
}
