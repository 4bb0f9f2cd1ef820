package web_test

import (
	"io/fs"
	"os"
	"regexp"
	"strings"
	"testing"
	"unicode"

	"vigil/configs"
)

// tables reads the zh and en tables of i18n.js: key → label.
func tables(t *testing.T) (zh, en map[string]string) {
	t.Helper()
	src, err := os.ReadFile("static/assets/i18n.js")
	if err != nil {
		t.Fatal(err)
	}
	entry := regexp.MustCompile(`"([^"]+)":\s*"((?:[^"\\]|\\.)*)"`)
	table := func(name string) map[string]string {
		start := strings.Index(string(src), "const "+name+" = {")
		if start < 0 {
			t.Fatalf("i18n.js has no table %s", name)
		}
		end := strings.Index(string(src[start:]), "\n};")
		m := map[string]string{}
		for _, e := range entry.FindAllStringSubmatch(string(src[start:start+end]), -1) {
			if _, dup := m[e[1]]; dup {
				t.Errorf("%s: key %q twice", name, e[1])
			}
			m[e[1]] = e[2]
		}
		return m
	}
	return table("zh"), table("en")
}

// TestEveryLabelInBothLanguages: every key the page uses — data-i18n in the
// HTML, t("…") in the modules, and the values label(prefix, …) is called
// with (statuses, severities, types, history actions, …) — has a Chinese
// and an English label; Chinese labels are Chinese and English ones are not.
func TestEveryLabelInBothLanguages(t *testing.T) {
	zh, en := tables(t)
	used := map[string]string{} // key → where
	html, err := os.ReadFile("static/index.html")
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range regexp.MustCompile(`data-i18n="([^"]+)"`).FindAllStringSubmatch(string(html), -1) {
		used[m[1]] = "index.html"
	}
	calls := regexp.MustCompile(`\bt\("([^"]+)"`)
	dynamic := regexp.MustCompile(`\bt\(([^")][^)]*)\)`)
	err = fs.WalkDir(os.DirFS("static/assets"), ".", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".js") || path == "i18n.js" {
			return err
		}
		src, err := os.ReadFile("static/assets/" + path)
		if err != nil {
			return err
		}
		for _, m := range calls.FindAllStringSubmatch(string(src), -1) {
			if !strings.HasSuffix(m[1], ".") { // t("conn." + s): a prefix, listed below
				used[m[1]] = path
			}
		}
		// Keys built at run time are listed below by their prefixes.
		for _, m := range dynamic.FindAllStringSubmatch(string(src), -1) {
			t.Logf("%s: t(%s) is checked through the prefix lists", path, m[1])
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	prefixed := map[string][]string{
		"status": {"new", "acknowledged", "dispatched", "resolved"},
		"sev":    {"critical", "major", "minor"},
		"signal": {"active", "ended"},
		"type":   configs.EventTypes(),
		"h":      {"raised", "acknowledged", "dispatched", "resolved", "ended", "overdue", "follow_up", "reopened", "earlier"},
		"cam":    {"online", "offline", "connecting", "disabled"},
		"conn":   {"open", "connecting", "closed"},
		"role":   {"desk", "investigator", "admin"},
		"audit":  {"acknowledged", "dispatched", "resolved", "follow_up", "downloaded", "exported"},
		"mute":   {"on", "off"},
		"live":   {"open", "close", "connecting", "on", "unsupported", "lost", "h265", "offline", "full", "unknown", "error"},
		"clip":   {"offline", "writing", "none", "error"},
		"snap":   {"alt", "none", "alert", "camera", "missing", "no_pic"},
	}
	for p, values := range prefixed {
		for _, v := range values {
			used[p+"."+v] = "label(" + p + ")"
		}
	}
	if len(used) < 100 {
		t.Fatalf("found only %d keys in use: the scan is broken", len(used))
	}
	for k, where := range used {
		if zh[k] == "" {
			t.Errorf("%s uses %q: missing from zh", where, k)
		}
		if en[k] == "" {
			t.Errorf("%s uses %q: missing from en", where, k)
		}
	}
	for k := range zh {
		if _, ok := en[k]; !ok {
			t.Errorf("%q is in zh but not in en", k)
		}
	}
	for k := range en {
		if _, ok := zh[k]; !ok {
			t.Errorf("%q is in en but not in zh", k)
		}
	}
	cjk := func(s string) bool {
		return strings.IndexFunc(s, func(r rune) bool { return unicode.Is(unicode.Han, r) }) >= 0
	}
	for k, v := range zh {
		if !cjk(v) {
			t.Errorf("zh %q = %q is not Chinese", k, v)
		}
	}
	for k, v := range en {
		if cjk(v) {
			t.Errorf("en %q = %q is Chinese", k, v)
		}
	}
	// Markup text is only a fallback for data-i18n: an element with visible
	// text and no key would stay Chinese in English mode.
	text := regexp.MustCompile(`<(h1|h2|h3|button|label|span|p|option|dt)\b([^>]*)>([^<]*\p{Han}[^<]*)<`)
	for _, m := range text.FindAllStringSubmatch(string(html), -1) {
		if !strings.Contains(m[2], "data-i18n") {
			t.Errorf("index.html: <%s%s> shows %q without data-i18n", m[1], m[2], m[3])
		}
	}
	t.Logf("%d keys in use", len(used))
}
