package report

import (
	"encoding/csv"
	"fmt"
	"html/template"
	"io"
	"strconv"

	"github.com/xuri/excelize/v2"
)

// Formats.
const (
	FormatXLSX = "xlsx"
	FormatCSV  = "csv"
	FormatHTML = "html"
)

// ContentType is the media type of a format.
func ContentType(format string) string {
	switch format {
	case FormatXLSX:
		return "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
	case FormatCSV:
		return "text/csv; charset=utf-8"
	case FormatHTML:
		return "text/html; charset=utf-8"
	}
	return ""
}

// Write renders the report in format (xlsx, csv or html) to w.
func (r *Report) Write(w io.Writer, format string) error {
	switch format {
	case FormatXLSX:
		return r.writeXLSX(w)
	case FormatCSV:
		return r.writeCSV(w)
	case FormatHTML:
		return r.writeHTML(w)
	}
	return fmt.Errorf("report: unknown format %q (want xlsx, csv or html)", format)
}

// writeXLSX writes one sheet per table; figures are numbers (rates as
// fractions with a percent format), so a spreadsheet computes with them.
func (r *Report) writeXLSX(w io.Writer) error {
	f := excelize.NewFile()
	defer f.Close()
	pct, err := f.NewStyle(&excelize.Style{NumFmt: 10}) // 0.00%
	if err != nil {
		return err
	}
	one, err := f.NewStyle(&excelize.Style{CustomNumFmt: ptr("0.0")})
	if err != nil {
		return err
	}
	head, err := f.NewStyle(&excelize.Style{Font: &excelize.Font{Bold: true}, Fill: excelize.Fill{Type: "pattern", Pattern: 1, Color: []string{"DDEBF7"}}})
	if err != nil {
		return err
	}
	for i, t := range r.tables() {
		if i == 0 {
			if err := f.SetSheetName("Sheet1", t.name); err != nil {
				return err
			}
		} else if _, err := f.NewSheet(t.name); err != nil {
			return err
		}
		if err := f.SetSheetRow(t.name, "A1", &[]any{t.title}); err != nil {
			return err
		}
		hdr := make([]any, len(t.header))
		for k, h := range t.header {
			hdr[k] = h
		}
		if err := f.SetSheetRow(t.name, "A2", &hdr); err != nil {
			return err
		}
		end, _ := excelize.CoordinatesToCellName(len(t.header), 2)
		if err := f.SetCellStyle(t.name, "A2", end, head); err != nil {
			return err
		}
		for k, row := range t.rows {
			cell, _ := excelize.CoordinatesToCellName(1, k+3)
			if err := f.SetSheetRow(t.name, cell, &row); err != nil {
				return err
			}
			for c, v := range row {
				if _, ok := v.(float64); !ok {
					continue
				}
				kind := columnKind(t, k, c)
				name, _ := excelize.CoordinatesToCellName(c+1, k+3)
				switch kind {
				case rate:
					err = f.SetCellStyle(t.name, name, name, pct)
				case minutes:
					err = f.SetCellStyle(t.name, name, name, one)
				}
				if err != nil {
					return err
				}
			}
		}
		for c := range t.header {
			col, _ := excelize.ColumnNumberToName(c + 1)
			width := 12.0
			if c == 0 {
				width = 22
			}
			if err := f.SetColWidth(t.name, col, col, width); err != nil {
				return err
			}
		}
	}
	return f.Write(w)
}

func ptr[T any](v T) *T { return &v }

// columnKind is the kind of the number at row k, column c: the summary's
// kinds are per row, the group sheets' per column.
func columnKind(t table, k, c int) int {
	if t.name == SheetSummary {
		return t.kinds[k+1]
	}
	if c < len(t.kinds) {
		return t.kinds[c]
	}
	return count
}

func (t table) cellText(k, c int, v any) string {
	switch x := v.(type) {
	case string:
		return x
	case float64:
		kind := columnKind(t, k, c)
		for _, f := range figures {
			if f.kind == kind {
				return f.text(x)
			}
		}
		return strconv.FormatFloat(x, 'f', -1, 64)
	}
	return fmt.Sprint(v)
}

// writeCSV writes the tables one after another, each under a "# name"
// line, with a byte order mark so that Excel reads the UTF-8.
func (r *Report) writeCSV(w io.Writer) error {
	if _, err := io.WriteString(w, "\ufeff"); err != nil {
		return err
	}
	cw := csv.NewWriter(w)
	for i, t := range r.tables() {
		if i > 0 {
			cw.Write(nil)
		}
		cw.Write([]string{"# " + t.name, t.title})
		cw.Write(t.header)
		for k, row := range t.rows {
			rec := make([]string, len(row))
			for c, v := range row {
				rec[c] = t.cellText(k, c, v)
			}
			cw.Write(rec)
		}
	}
	cw.Flush()
	return cw.Error()
}

type htmlTable struct {
	Title  string
	Header []string
	Rows   [][]string
	Wide   bool
}

var page = template.Must(template.New("report").Parse(`<!doctype html>
<html lang="zh-CN"><head><meta charset="utf-8"><title>要情要务会商研判报告 {{.Period}}</title>
<style>
@page { size: A4; margin: 12mm; }
body { font-family: "Noto Sans CJK SC", "WenQuanYi Micro Hei", "Microsoft YaHei", sans-serif; font-size: 9pt; color: #000; margin: 0; }
h1 { font-size: 15pt; margin: 0 0 4mm; }
h2 { font-size: 12pt; margin: 0 0 3mm; }
section { page-break-after: always; break-after: page; }
section:last-child { page-break-after: auto; break-after: auto; }
table { width: 100%; border-collapse: collapse; table-layout: fixed; }
th, td { border: 0.3mm solid #666; padding: 1mm; text-align: left; vertical-align: top; overflow-wrap: anywhere; word-break: break-all; }
th { background: #dde8f5; }
thead { display: table-header-group; }
tr { page-break-inside: avoid; break-inside: avoid; }
table.wide { font-size: 6.5pt; }
</style></head><body>
<h1>要情要务会商研判报告</h1>
{{range .Tables}}<section><h2>{{.Title}}</h2>
<table{{if .Wide}} class="wide"{{end}}><thead><tr>{{range .Header}}<th>{{.}}</th>{{end}}</tr></thead>
<tbody>{{range .Rows}}<tr>{{range .}}<td>{{.}}</td>{{end}}</tr>{{end}}</tbody></table></section>
{{end}}</body></html>
`))

// writeHTML writes one A4 page section per table, headers repeated on
// every printed page, no column wider than the page.
func (r *Report) writeHTML(w io.Writer) error {
	var ts []htmlTable
	for _, t := range r.tables() {
		h := htmlTable{Title: t.title, Header: t.header, Wide: len(t.header) > 8}
		for k, row := range t.rows {
			rec := make([]string, len(row))
			for c, v := range row {
				rec[c] = t.cellText(k, c, v)
			}
			h.Rows = append(h.Rows, rec)
		}
		ts = append(ts, h)
	}
	return page.Execute(w, struct {
		Period string
		Tables []htmlTable
	}{r.period(), ts})
}
