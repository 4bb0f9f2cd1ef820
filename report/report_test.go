package report_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/xuri/excelize/v2"

	"vigil/alerts"
	"vigil/alerts/alertsapi"
	"vigil/alerts/boltjournal"
	"vigil/alerts/journaltest"
	"vigil/internal/testutil"
	"vigil/report"
)

var t0 = time.Date(2026, 11, 30, 16, 0, 0, 0, time.UTC) // 2026-12-01 00:00 in Shanghai

type fixedClock struct{ t time.Time }

func (c fixedClock) Now() time.Time { return c.t }
func (c fixedClock) NewTimer(time.Duration) (<-chan time.Time, func() bool) {
	return nil, func() bool { return false }
}

type fixture struct {
	e   *alerts.Engine
	api *httptest.Server
	loc *time.Location
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	j, err := boltjournal.Open(boltjournal.Options{Path: filepath.Join(t.TempDir(), "j.db")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { j.Close() })
	for _, a := range journaltest.StatsFixture(t0) {
		if _, err := j.Append(t.Context(), alerts.Change{Kind: alerts.KindRaised, At: a.RaisedAt, Alert: a}, 0); err != nil {
			t.Fatal(err)
		}
	}
	e, err := alerts.New(alerts.Options{Journal: j, Clock: fixedClock{journaltest.StatsNow(t0)}})
	if err != nil {
		t.Fatal(err)
	}
	api, err := alertsapi.New(alertsapi.Options{Engine: e, Actor: func(*http.Request) string { return "desk-1" }})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(api)
	t.Cleanup(srv.Close)
	loc, err := time.LoadLocation("Asia/Shanghai")
	if err != nil {
		t.Fatal(err)
	}
	return &fixture{e: e, api: srv, loc: loc}
}

func (f *fixture) options() report.Options {
	return report.Options{Location: f.loc,
		SiteName: func(s string) string {
			return map[string]string{"hall": "公共服务大厅", "key-site": "重点部位", "village": "村服务站"}[s]
		},
		UnitName: func(u string) string {
			return map[string]string{"police": "派出所", "zongzhi": "综治办", "sifa": "司法所"}[u]
		},
	}
}

func (f *fixture) build(t *testing.T) *report.Report {
	t.Helper()
	r, err := report.Build(t.Context(), report.Engine(f.e), t0, t0.Add(24*time.Hour), f.options())
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// stats reads the stats API as JSON.
func (f *fixture) stats(t *testing.T, from, to time.Time, by string) map[string]any {
	t.Helper()
	u := f.api.URL + "/api/v1/alerts/stats?from=" + from.Format(time.RFC3339) + "&to=" + to.Format(time.RFC3339)
	if by != "" {
		u += "&group_by=" + by
	}
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var m map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&m); err != nil || resp.StatusCode != 200 {
		t.Fatalf("stats: %d %v", resp.StatusCode, err)
	}
	return m
}

// apiKey is the stats API field of each summary row and group column, and
// the factor from the API's unit to the report's (seconds → minutes).
var apiKey = map[string]struct {
	key string
	div float64
}{
	"告警总数": {"total", 1}, "按时受理率": {"ack_on_time_rate", 1}, "按时办结率": {"resolve_on_time_rate", 1},
	"落实到位率": {"implementation_rate", 1}, "回访满意率": {"satisfaction_rate", 1}, "回访率": {"follow_up_rate", 1},
	"误报率": {"false_alarm_rate", 1}, "受理时长中位数(分钟)": {"median_ack_seconds", 60}, "受理时长P90(分钟)": {"p90_ack_seconds", 60},
	"办结时长中位数(分钟)": {"median_resolve_seconds", 60}, "办结时长P90(分钟)": {"p90_resolve_seconds", 60},
	"已办结": {"resolved", 1}, "已交办": {"dispatched", 1}, "误报": {"false_alarm", 1}, "回访": {"follow_ups", 1},
	"超时告警": {"overdue", 1}, "督办告警": {"escalated", 1}, "督办次数": {"escalations", 1}, "挂牌督办": {"supervised", 1},
}

func raw(t *testing.T, x *excelize.File, sheet, cell string) float64 {
	t.Helper()
	s, err := x.GetCellValue(sheet, cell, excelize.Options{RawCellValue: true})
	if err != nil {
		t.Fatal(err)
	}
	v, err := strconv.ParseFloat(s, 64)
	if err != nil {
		t.Fatalf("%s!%s = %q: not a number", sheet, cell, s)
	}
	return v
}

func same(a, b float64) bool { return math.Abs(a-b) < 1e-9 }

// The XLSX report, read back with excelize, holds the numbers of the stats
// API: the period, the previous period, per site and per unit.
func TestXLSXEqualsStatsAPI(t *testing.T) {
	f := newFixture(t)
	var buf bytes.Buffer
	if err := f.build(t).Write(&buf, report.FormatXLSX); err != nil {
		t.Fatal(err)
	}
	x, err := excelize.OpenReader(&buf)
	if err != nil {
		t.Fatal(err)
	}
	defer x.Close()
	want := []string{report.SheetSummary, report.SheetSites, report.SheetUnits, report.SheetImportant, report.SheetSupervision, report.SheetFollowUps}
	if got := x.GetSheetList(); strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("sheets %v, want %v", got, want)
	}
	cur := f.stats(t, t0, t0.Add(24*time.Hour), "")
	prev := f.stats(t, t0.Add(-24*time.Hour), t0, "")
	rows, _ := x.GetRows(report.SheetSummary)
	if rows[1][0] != "指标" || rows[1][1] != "本期" || rows[1][2] != "上期" {
		t.Fatalf("summary header %v", rows[1])
	}
	checked := 0
	for i := 2; i < len(rows); i++ {
		label := rows[i][0]
		k, ok := apiKey[label]
		if !ok {
			t.Fatalf("summary row %q has no stats field", label)
		}
		for col, m := range map[string]map[string]any{"B": cur, "C": prev} {
			got := raw(t, x, report.SheetSummary, fmt.Sprintf("%s%d", col, i+1))
			if w := m[k.key].(float64) / k.div; !same(got, w) {
				t.Errorf("summary %s column %s = %v, stats API %s = %v", label, col, got, k.key, w)
			}
			checked++
		}
	}
	if checked != 2*len(apiKey) {
		t.Errorf("checked %d summary cells, want %d", checked, 2*len(apiKey))
	}
	// Spot checks against the hand-computed fixture.
	if v := raw(t, x, report.SheetSummary, "B5"); !same(v, 22.0/30) { // 按时办结率
		t.Errorf("按时办结率 %v", v)
	}
	for _, g := range []struct {
		sheet, by string
		names     map[string]string
	}{
		{report.SheetSites, "site", map[string]string{"公共服务大厅": "hall", "重点部位": "key-site", "村服务站": "village"}},
		{report.SheetUnits, "unit", map[string]string{"派出所": "police", "综治办": "zongzhi", "司法所": "sifa", "（未交办）": ""}},
	} {
		api := f.stats(t, t0, t0.Add(24*time.Hour), g.by)["groups"].([]any)
		byKey := map[string]map[string]any{}
		for _, x := range api {
			m := x.(map[string]any)
			byKey[m["key"].(string)] = m
		}
		rows, _ := x.GetRows(g.sheet)
		if len(rows)-2 != len(byKey) {
			t.Fatalf("%s: %d rows, stats API %d groups", g.sheet, len(rows)-2, len(byKey))
		}
		header := rows[1]
		for i := 2; i < len(rows); i++ {
			key, ok := g.names[rows[i][0]]
			if !ok {
				t.Fatalf("%s: row %q", g.sheet, rows[i][0])
			}
			for c := 1; c < len(header); c++ {
				k := apiKey[header[c]]
				cell, _ := excelize.CoordinatesToCellName(c+1, i+1)
				if got, w := raw(t, x, g.sheet, cell), byKey[key][k.key].(float64)/k.div; !same(got, w) {
					t.Errorf("%s %s %s = %v, stats API %v", g.sheet, rows[i][0], header[c], got, w)
				}
			}
		}
	}
	// Lists: Chinese headers, times in Asia/Shanghai.
	imp, _ := x.GetRows(report.SheetImportant)
	if imp[1][0] != "编号" || imp[1][1] != "告警时间" || len(imp)-2 != 20 {
		t.Fatalf("important alerts: header %v, %d rows (want 20 critical and major)", imp[1], len(imp)-2)
	}
	if imp[2][0] != "01STATSH01" || imp[2][1] != "2026-12-01 00:00" || imp[2][5] != "重要" {
		t.Errorf("first important alert %v (want H01 at 00:00 Shanghai)", imp[2])
	}
	sup, _ := x.GetRows(report.SheetSupervision)
	if len(sup)-2 != 8 { // the 8 overdue alerts; the supervised and escalated ones are all among them
		t.Errorf("overdue and supervised rows %d, want 8", len(sup)-2)
	}
	fu, _ := x.GetRows(report.SheetFollowUps)
	if len(fu)-2 != 15 {
		t.Errorf("follow-up rows %d, want 15", len(fu)-2)
	}
}

func TestCSV(t *testing.T) {
	f := newFixture(t)
	var buf bytes.Buffer
	if err := f.build(t).Write(&buf, report.FormatCSV); err != nil {
		t.Fatal(err)
	}
	s := buf.String()
	for _, want := range []string{"\ufeff# 汇总", "按时办结率,73.3%,0.0%", "# 按站点", "# 回访", "2026-12-01 00:00"} {
		if !strings.Contains(s, want) {
			t.Errorf("csv lacks %q", want)
		}
	}
}

// chromium starts headless Debian chromium; a missing one fails the test.
func chromium(t *testing.T, ctx context.Context) context.Context {
	t.Helper()
	return testutil.Chromium(t, ctx, 703, 1000) // A4 less 12 mm margins, at 96 dpi
}

// The HTML report prints on A4 in Chromium: one page per section (six),
// no table or cell wider than the page.
func TestHTMLPrintsOnA4(t *testing.T) {
	f := newFixture(t)
	var buf bytes.Buffer
	if err := f.build(t).Write(&buf, report.FormatHTML); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Write(buf.Bytes())
	}))
	t.Cleanup(srv.Close)
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	b := chromium(t, ctx)
	if err := chromedp.Do(b, chromedp.Navigate(srv.URL), chromedp.WaitReady(chromedp.CSS("section"))); err != nil {
		t.Fatal(err)
	}
	clipped, err := chromedp.Run(b, chromedp.Evaluate[[]string](`(() => {
		const out = [];
		for (const tb of document.querySelectorAll('table')) {
			if (tb.scrollWidth > tb.parentElement.clientWidth + 1) out.push('table ' + tb.scrollWidth + '>' + tb.parentElement.clientWidth);
		}
		for (const td of document.querySelectorAll('td, th')) {
			if (td.scrollWidth > td.clientWidth + 1) out.push('cell ' + td.textContent);
		}
		return out;
	})()`))
	if err != nil {
		t.Fatal(err)
	}
	if len(clipped) > 0 {
		t.Errorf("clipped at A4 width: %v", clipped)
	}
	pdf, err := chromedp.Run(b, chromedp.PrintToPDF(chromedp.PDFPaper(chromedp.PaperA4), chromedp.PDFPreferCSSPageSize()))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(pdf, []byte("%PDF-")) {
		t.Fatalf("not a PDF: %.20q", pdf)
	}
	pages := len(regexp.MustCompile(`/Type\s*/Page[^s]`).FindAll(pdf, -1))
	if pages != 6 {
		t.Errorf("%d pages, want 6 (one per section)", pages)
	}
	os.WriteFile(filepath.Join(t.TempDir(), "report.pdf"), pdf, 0o644)
}

// The HTTP handler answers each format with its type, and 400 for a bad
// query.
func TestHandler(t *testing.T) {
	f := newFixture(t)
	h := &report.Handler{Source: report.Engine(f.e), Opts: f.options()}
	q := "from=" + t0.Format(time.RFC3339) + "&to=" + t0.Add(24*time.Hour).Format(time.RFC3339)
	for format, ct := range map[string]string{"xlsx": "spreadsheetml", "csv": "text/csv", "html": "text/html", "": "spreadsheetml"} {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest("GET", "/api/v1/reports?"+q+"&format="+format, nil))
		if w.Code != 200 || !strings.Contains(w.Header().Get("Content-Type"), ct) || !strings.Contains(w.Header().Get("Content-Disposition"), "vigil-report-20261201-20261202") {
			t.Errorf("format %q: %d %v", format, w.Code, w.Header())
		}
	}
	for _, bad := range []string{"", "from=x&to=y", q + "&format=pdf"} {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest("GET", "/api/v1/reports?"+bad, nil))
		if w.Code != 400 || !strings.Contains(w.Body.String(), `"code":"bad_request"`) {
			t.Errorf("%q: %d %s", bad, w.Code, w.Body)
		}
	}
}
