package app

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"vigil/internal/media"
)

// The docs describe what the API returns and refer only to files the
// repository has (issue 18, item 13).
func TestDocsMatchTheAPI(t *testing.T) {
	docs, err := filepath.Glob("../../docs/*.md")
	if err != nil || len(docs) == 0 {
		t.Fatalf("docs: %v %v", docs, err)
	}
	docs = append(docs, "../../README.md")
	for _, path := range docs {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(b), "DESIGN.md") {
			if _, err := os.Stat("../../DESIGN.md"); err != nil {
				t.Errorf("%s refers to DESIGN.md, which the repository does not have", path)
			}
		}
	}

	api, err := os.ReadFile("../../docs/api.md")
	if err != nil {
		t.Fatal(err)
	}
	codecs := regexp.MustCompile(`"codec":"([^"]*)"`).FindAllStringSubmatch(string(api), -1)
	if len(codecs) == 0 {
		t.Fatal(`docs/api.md shows no "codec"`)
	}
	for _, m := range codecs {
		if c := media.Codec(m[1]); c != media.H264 && c != media.H265 {
			t.Errorf(`docs/api.md shows codec %q; the API returns %q or %q`, m[1], media.H264, media.H265)
		}
	}
	// The camera example decodes into what the API marshals.
	start := strings.Index(string(api), `{"cameras":[{`)
	if start < 0 {
		t.Fatal("docs/api.md has no cameras example")
	}
	end := strings.Index(string(api)[start:], "\n```")
	var list struct {
		Cameras []map[string]any `json:"cameras"`
	}
	if err := json.Unmarshal(api[start:start+end], &list); err != nil || len(list.Cameras) != 1 {
		t.Fatalf("cameras example: %v", err)
	}
}
