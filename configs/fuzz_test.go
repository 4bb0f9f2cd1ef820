package configs

import (
	"os"
	"regexp"
	"strings"
	"testing"
)

// FuzzLoad feeds arbitrary bytes as vigil.yaml and cameras.yaml: Load must
// not panic, and every error it returns must read "file:line:col: ...".
func FuzzLoad(f *testing.F) {
	for _, name := range []string{"vigil.yaml", "cameras.yaml"} {
		if _, err := os.ReadFile(name); err != nil {
			f.Fatal(err)
		}
	}
	shippedVigil, _ := os.ReadFile("vigil.yaml")
	shippedCameras, _ := os.ReadFile("cameras.yaml")
	f.Add(shippedVigil, shippedCameras)
	f.Add([]byte(baseVigil), []byte(baseCameras))
	f.Add([]byte(""), []byte(""))
	f.Add([]byte("listen: [\n"), []byte("cameras: {"))
	f.Add([]byte("a: &a [*a]\nstorage: *a\n"), []byte("cameras:\n  - &c {id: x, url: rtsp://h/}\n  - *c\n"))
	f.Add([]byte("alerts:\n  rules:\n    - {<<: [{severity: minor}], match: {type: other}}\n"), []byte("cameras:\n  - {id: a, url: \"rtsp://u:p@[::1]:99999/\"}\n"))
	f.Add([]byte("storage: {segment: 9999999999999999d, max_bytes: 99999999999999TiB}\nlisten: ${A}${\n"), []byte("cameras: [{id: -a, url: ${}}]\n"))
	f.Add([]byte("? [a, b]\n: c\n!!binary x: y\n"), []byte("cameras:\n  - id: a\n    url: rtsps://h\n    events: {onvif_metadata: 1}\n"))
	f.Add([]byte("auth: {tokens: [{name: a, role: desk, sha256: zz}, {token: short}]}\n"), []byte("\xff\xfe"))

	posRE := regexp.MustCompile(`^\S+:\d+:\d+: `)
	f.Fuzz(func(t *testing.T, vigil, cameras []byte) {
		files := map[string][]byte{"/cfg/vigil.yaml": vigil, "/cfg/cameras.yaml": cameras}
		read := func(name string) ([]byte, error) {
			if b, ok := files[name]; ok {
				return b, nil
			}
			return nil, os.ErrNotExist
		}
		getenv := func(k string) (string, bool) {
			if k == "SET" {
				return "value", true
			}
			return "", false
		}
		cfg, err := load("/cfg/vigil.yaml", getenv, read)
		if err == nil {
			if cfg == nil {
				t.Fatal("nil config without error")
			}
			for _, c := range cfg.Cameras {
				if !ValidID(c.ID) || !strings.HasPrefix(c.StreamURL(), "rtsp") {
					t.Fatalf("invalid camera accepted: %v", c)
				}
			}
			return
		}
		if cfg != nil {
			t.Fatal("config returned with errors")
		}
		errs := Errors(err)
		if len(errs) == 0 {
			t.Fatalf("error without position: %v", err)
		}
		for _, e := range errs {
			if e.Line < 1 || e.Column < 1 {
				t.Fatalf("bad position in %v", e)
			}
			if s := e.Error(); !posRE.MatchString(s) {
				t.Fatalf("error %q does not read file:line:col: ", s)
			}
		}
	})
}
