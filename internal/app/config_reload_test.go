package app

import (
	"io"
	"os"
	"strings"
	"testing"
)

// Emptied files and a file without an admin token are refused on a
// running node: the cameras keep recording and the tokens keep working
// (issue 18, item 1).
func TestReloadRefusesEmptyFilesAndNoAdmin(t *testing.T) {
	cfg := writeConfig(t, "")
	a := startApp(t, cfg, io.Discard)
	vigil, err := os.ReadFile(cfg.Path)
	if err != nil {
		t.Fatal(err)
	}
	cams, err := os.ReadFile(cfg.CamerasPath)
	if err != nil {
		t.Fatal(err)
	}
	var noAdmin []string
	for _, l := range strings.Split(string(vigil), "\n") {
		if !strings.Contains(l, "role: admin") {
			noAdmin = append(noAdmin, l)
		}
	}
	tests := []struct {
		name           string
		vigil, cameras string
		want           string
	}{
		{"cameras.yaml emptied", string(vigil), "", "cameras.yaml:1:1: the file is empty"},
		{"cameras.yaml blank", string(vigil), "\n  \n", "cameras.yaml:1:1: the file is empty"},
		{"cameras.yaml only comments", string(vigil), "# all gone\n", "cameras.yaml:1:1: the file is empty"},
		{"vigil.yaml emptied", "", string(cams), "vigil.yaml:1:1: the file is empty"},
		{"no admin token left", strings.Join(noAdmin, "\n"), string(cams), "auth.tokens: the new configuration has no admin token"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			os.WriteFile(cfg.Path, []byte(tt.vigil), 0o600)
			os.WriteFile(cfg.CamerasPath, []byte(tt.cameras), 0o600)
			t.Cleanup(func() {
				os.WriteFile(cfg.Path, vigil, 0o600)
				os.WriteFile(cfg.CamerasPath, cams, 0o600)
			})
			code, body := call(t, "POST", a.URL()+"/api/v1/admin/reload", adminToken, "")
			if code != 400 || !strings.Contains(body, tt.want) {
				t.Fatalf("reload: %d %s; want 400 with %q", code, body, tt.want)
			}
			if code, _ := call(t, "GET", a.URL()+"/api/v1/cameras/hall-entrance", deskToken, ""); code != 200 {
				t.Fatalf("camera after the refused reload: %d", code)
			}
			if len(a.config().Cameras) != 2 || len(a.config().Auth.Tokens) != 3 {
				t.Fatalf("running configuration changed: %d cameras, %d tokens", len(a.config().Cameras), len(a.config().Auth.Tokens))
			}
		})
	}
}
