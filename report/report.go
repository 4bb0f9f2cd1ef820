// Package report builds the period's review report (要情要务会商研判): the
// rates and counts of the period beside the previous one, per site and per
// unit, the critical and major alerts with their handling and feedback, the
// overdue and supervised alerts, and the follow-up results; and renders it
// as XLSX (excelize), CSV or HTML for A4 printing. Its numbers are the
// alerts engine's Stats: it computes no rate itself.
package report

import (
	"context"
	"fmt"
	"math"
	"strconv"
	"time"

	"vigil/alerts"
)

// Source gives the report its figures and alerts; the alerts engine and
// its journal provide them.
type Source interface {
	Stats(ctx context.Context, from, to time.Time, by ...alerts.GroupBy) (alerts.Stats, error)
	List(ctx context.Context, f alerts.Filter) ([]alerts.Alert, string, error)
}

// Engine adapts an alerts engine (stats) and its journal (lists).
func Engine(e *alerts.Engine) Source { return engineSource{e} }

type engineSource struct{ e *alerts.Engine }

func (s engineSource) Stats(ctx context.Context, from, to time.Time, by ...alerts.GroupBy) (alerts.Stats, error) {
	return s.e.Stats(ctx, from, to, by...)
}

func (s engineSource) List(ctx context.Context, f alerts.Filter) ([]alerts.Alert, string, error) {
	return s.e.Journal().List(ctx, f)
}

// Report is one period's review.
type Report struct {
	From, To         time.Time
	PrevFrom, PrevTo time.Time
	Location         *time.Location
	Current, Prev    alerts.Stats
	BySite, ByUnit   alerts.Stats
	// Important are the critical and major alerts raised in the period,
	// oldest first; Supervision the overdue, escalated or supervised ones;
	// FollowUps those with a follow-up visit.
	Important, Supervision, FollowUps []alerts.Alert
	SiteName, UnitName                func(string) string
}

// Options name sites and units and set the zone dates are shown in.
type Options struct {
	Location *time.Location         // default UTC
	SiteName func(id string) string // nil: IDs
	UnitName func(id string) string // nil: IDs
}

// maxAlerts bounds the alerts one report lists.
const maxAlerts = 20000

// Build gathers the report of [from, to) and the period of the same length
// before it.
func Build(ctx context.Context, src Source, from, to time.Time, o Options) (*Report, error) {
	if o.Location == nil {
		o.Location = time.UTC
	}
	id := func(s string) string { return s }
	if o.SiteName == nil {
		o.SiteName = id
	}
	if o.UnitName == nil {
		o.UnitName = id
	}
	r := &Report{From: from, To: to, PrevFrom: from.Add(-to.Sub(from)), PrevTo: from, Location: o.Location,
		SiteName: o.SiteName, UnitName: o.UnitName}
	var err error
	if r.Current, err = src.Stats(ctx, from, to); err != nil {
		return nil, err
	}
	if r.Prev, err = src.Stats(ctx, r.PrevFrom, r.PrevTo); err != nil {
		return nil, err
	}
	if r.BySite, err = src.Stats(ctx, from, to, alerts.BySite); err != nil {
		return nil, err
	}
	if r.ByUnit, err = src.Stats(ctx, from, to, alerts.ByUnit); err != nil {
		return nil, err
	}
	f := alerts.Filter{Since: from, Until: to, Limit: alerts.MaxListLimit}
	var all []alerts.Alert
	for len(all) < maxAlerts {
		as, next, err := src.List(ctx, f)
		if err != nil {
			return nil, fmt.Errorf("report: list alerts: %w", err)
		}
		all = append(all, as...)
		if next == "" {
			break
		}
		f.Cursor = next
	}
	for i := len(all) - 1; i >= 0; i-- { // List is newest first
		a := all[i]
		if a.Severity == alerts.Critical || a.Severity == alerts.Major {
			r.Important = append(r.Important, a)
		}
		if a.Overdue || len(a.Escalations) > 0 || a.Supervision != nil {
			r.Supervision = append(r.Supervision, a)
		}
		if a.FollowUp != nil {
			r.FollowUps = append(r.FollowUps, a)
		}
	}
	return r, nil
}

// A figure is one row of the summary and one column of the group sheets.
type figure struct {
	label string
	kind  int // count, rate or minutes
	get   func(alerts.Figures) float64
}

const (
	count = iota
	rate
	minutes
)

var figures = []figure{
	{"告警总数", count, func(f alerts.Figures) float64 { return float64(f.Total) }},
	{"按时受理率", rate, func(f alerts.Figures) float64 { return f.AckOnTimeRate }},
	{"按时办结率", rate, func(f alerts.Figures) float64 { return f.ResolveOnTimeRate }},
	{"落实到位率", rate, func(f alerts.Figures) float64 { return f.ImplementationRate }},
	{"回访满意率", rate, func(f alerts.Figures) float64 { return f.SatisfactionRate }},
	{"回访率", rate, func(f alerts.Figures) float64 { return f.FollowUpRate }},
	{"误报率", rate, func(f alerts.Figures) float64 { return f.FalseAlarmRate }},
	{"受理时长中位数(分钟)", minutes, func(f alerts.Figures) float64 { return f.MedianAckSeconds / 60 }},
	{"受理时长P90(分钟)", minutes, func(f alerts.Figures) float64 { return f.P90AckSeconds / 60 }},
	{"办结时长中位数(分钟)", minutes, func(f alerts.Figures) float64 { return f.MedianResolveSeconds / 60 }},
	{"办结时长P90(分钟)", minutes, func(f alerts.Figures) float64 { return f.P90ResolveSeconds / 60 }},
	{"已办结", count, func(f alerts.Figures) float64 { return float64(f.Resolved) }},
	{"已交办", count, func(f alerts.Figures) float64 { return float64(f.Dispatched) }},
	{"误报", count, func(f alerts.Figures) float64 { return float64(f.FalseAlarm) }},
	{"回访", count, func(f alerts.Figures) float64 { return float64(f.FollowUps) }},
	{"超时告警", count, func(f alerts.Figures) float64 { return float64(f.Overdue) }},
	{"督办告警", count, func(f alerts.Figures) float64 { return float64(f.Escalated) }},
	{"督办次数", count, func(f alerts.Figures) float64 { return float64(f.Escalations) }},
	{"挂牌督办", count, func(f alerts.Figures) float64 { return float64(f.Supervised) }},
}

// text shows a figure's value for CSV and HTML: rates as percentages with
// one decimal, minutes with one decimal.
func (f figure) text(v float64) string {
	switch f.kind {
	case rate:
		return strconv.FormatFloat(math.Round(v*1000)/10, 'f', 1, 64) + "%"
	case minutes:
		return strconv.FormatFloat(v, 'f', 1, 64)
	}
	return strconv.FormatFloat(v, 'f', 0, 64)
}

// Sheet names, in order.
const (
	SheetSummary     = "汇总"
	SheetSites       = "按站点"
	SheetUnits       = "按单位"
	SheetImportant   = "重要告警"
	SheetSupervision = "超时与督办"
	SheetFollowUps   = "回访"
)

// table is a sheet's content: header and rows of cells (string or
// float64).
type table struct {
	name   string
	title  string
	header []string
	rows   [][]any
	kinds  []int // per column of numbers: count, rate or minutes; -1 text
}

func (r *Report) when(t *time.Time) string {
	if t == nil {
		return ""
	}
	return t.In(r.Location).Format("2006-01-02 15:04")
}

var severityNames = map[alerts.Severity]string{alerts.Critical: "紧急", alerts.Major: "重要", alerts.Minor: "一般"}
var statusNames = map[alerts.Status]string{alerts.StatusNew: "待受理", alerts.StatusAcknowledged: "已受理", alerts.StatusDispatched: "已交办", alerts.StatusResolved: "已办结"}

func yes(b bool) string {
	if b {
		return "是"
	}
	return "否"
}

func (r *Report) period() string {
	return fmt.Sprintf("%s 至 %s", r.From.In(r.Location).Format("2006-01-02 15:04"), r.To.In(r.Location).Format("2006-01-02 15:04"))
}

// tables lays the report out; XLSX, CSV and HTML render the same tables.
func (r *Report) tables() []table {
	sum := table{name: SheetSummary, title: "汇总（本期 " + r.period() + "）", header: []string{"指标", "本期", "上期"}, kinds: []int{-1}}
	for _, f := range figures {
		sum.rows = append(sum.rows, []any{f.label, f.get(r.Current.Figures), f.get(r.Prev.Figures)})
		sum.kinds = append(sum.kinds, f.kind)
	}
	group := func(name, title, col string, s alerts.Stats, display func(string) string) table {
		t := table{name: name, title: title, header: []string{col}, kinds: []int{-1}}
		for _, f := range figures {
			t.header = append(t.header, f.label)
			t.kinds = append(t.kinds, f.kind)
		}
		for _, g := range s.Groups {
			label := display(g.Key)
			if g.Key == "" {
				label = "（未交办）"
				if name == SheetSites {
					label = "（无站点）"
				}
			}
			row := []any{label}
			for _, f := range figures {
				row = append(row, f.get(g.Figures))
			}
			t.rows = append(t.rows, row)
		}
		return t
	}
	alertCols := func(a alerts.Alert) []any {
		return []any{a.ID, r.when(&a.RaisedAt), a.CameraName, r.SiteName(a.Site), string(a.Type), severityNames[a.Severity], statusNames[a.Status]}
	}
	base := []string{"编号", "告警时间", "点位", "站点", "类型", "级别", "状态"}
	imp := table{name: SheetImportant, title: "紧急、重要告警及处置", header: append(append([]string{}, base...), "受理时间", "交办单位", "办结时间", "办结反馈", "误报")}
	for _, a := range r.Important {
		unit := ""
		if a.Unit != "" {
			unit = r.UnitName(a.Unit)
		}
		imp.rows = append(imp.rows, append(alertCols(a), r.when(a.AcknowledgedAt), unit, r.when(a.ResolvedAt), a.Feedback, yes(a.FalseAlarm)))
	}
	sup := table{name: SheetSupervision, title: "超时、督办与挂牌督办", header: append(append([]string{}, base...), "超时", "督办次数", "挂牌督办", "督办限期", "督办说明")}
	for _, a := range r.Supervision {
		due, note, flagged := "", "", "否"
		if a.Supervision != nil {
			due, note, flagged = r.when(&a.Supervision.Due), a.Supervision.Note, "是"
		}
		sup.rows = append(sup.rows, append(alertCols(a), yes(a.Overdue), strconv.Itoa(len(a.Escalations)), flagged, due, note))
	}
	fu := table{name: SheetFollowUps, title: "回访结果", header: append(append([]string{}, base...), "回访时间", "回访人", "满意", "回访说明")}
	for _, a := range r.FollowUps {
		f := a.FollowUp
		fu.rows = append(fu.rows, append(alertCols(a), r.when(&f.At), f.By, yes(f.Satisfied), f.Note))
	}
	return []table{
		sum,
		group(SheetSites, "按站点", "站点", r.BySite, r.SiteName),
		group(SheetUnits, "按单位", "单位", r.ByUnit, r.UnitName),
		imp, sup, fu,
	}
}
