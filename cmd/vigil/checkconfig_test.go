package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestCheckConfig(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		t.Helper()
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	write("cameras.yaml", "cameras:\n  - id: Bad\n    url: http://192.0.2.1/\n    name: bad\n")
	broken := write("vigil.yaml", "storage: {fsync: always}\n")
	missingCams := write("other.yaml", "cameras_file: none.yaml\n")
	emptyDir := filepath.Join(dir, "empty")
	os.Mkdir(emptyDir, 0o755)
	emptyCams := filepath.Join(emptyDir, "vigil.yaml")
	os.WriteFile(emptyCams, []byte("listen: 127.0.0.1:8080\n"), 0o644)
	os.WriteFile(filepath.Join(emptyDir, "cameras.yaml"), nil, 0o644)
	emptyVigil := write("empty.yaml", "\n\n")

	// The meaning errors an administrator made: a rule's site and camera
	// that no camera has, a unit given by its name, a camera without a
	// name; and a camera only the catch-all rule matches.
	meanDir := filepath.Join(dir, "meaning")
	os.Mkdir(meanDir, 0o755)
	meaning := filepath.Join(meanDir, "vigil.yaml")
	os.WriteFile(meaning, []byte("alerts:\n"+
		"  units: [{id: police, name: 派出所}, {id: sifa, name: 司法所}]\n"+
		"  rules:\n"+
		"    - {match: {type: intrusion, site: keysite}, severity: critical, dispatch_to: police}\n"+
		"    - {match: {type: io_alarm, camera: mediation-rom}, severity: major, dispatch_to: 司法所}\n"+
		"    - {match: {}, severity: minor}\n"), 0o644)
	meanCams := filepath.Join(meanDir, "cameras.yaml")
	os.WriteFile(meanCams, []byte("cameras:\n"+
		"  - {id: key-site-gate, name: 大门, site: key-site, url: rtsp://192.0.2.1/s}\n"+
		"  - {id: mediation-room, name: 调解室, site: hall, url: rtsp://192.0.2.2/s}\n"+
		"  - id: hall-counter\n    site: hall\n    url: rtsp://192.0.2.3/s\n"), 0o644)
	warnDir := filepath.Join(dir, "warn")
	os.Mkdir(warnDir, 0o755)
	warn := filepath.Join(warnDir, "vigil.yaml")
	os.WriteFile(warn, []byte("alerts:\n  rules:\n    - {match: {site: key-site}, severity: critical}\n    - {match: {}, severity: minor}\n"), 0o644)
	os.WriteFile(filepath.Join(warnDir, "cameras.yaml"), []byte("cameras:\n"+
		"  - {id: gate, name: 大门, site: key-site, url: rtsp://192.0.2.1/s}\n"+
		"  - {id: gate-2, name: 二门, site: keysite, url: rtsp://192.0.2.2/s}\n"), 0o644)
	// A bad indent on line 6 and a tab on line 4: the parser alone says
	// line 4 and line 3.
	// A file that does not parse leaves cameras_file at its default, this
	// directory's broken cameras.yaml.
	badCams := []string{
		filepath.Join(dir, "cameras.yaml") + `:2:9: cameras[0].id: invalid id "Bad" (want ^[a-z0-9][a-z0-9-]{0,62}$)`,
		filepath.Join(dir, "cameras.yaml") + `:3:10: cameras[0].url: scheme must be rtsp or rtsps`,
		"3 problems",
	}
	syntax := write("syntax.yaml", "alerts:\n  units:\n    - {id: police}\n  rules:\n    - {match: {}, severity: minor}\n   - {match: {}, severity: major}\n")
	tab := write("tab.yaml", "storage:\n  dir: ./x\n  segment: 60s\n\tpart: 1s\n")

	tests := []struct {
		name       string
		args       []string
		code       int
		wantStdout string
		wantStderr []string
	}{
		{"shipped files", []string{"-config", "../../configs/vigil.yaml"}, 0, "ok: 5 cameras, 3 units, 11 rules\n", nil},
		{"every problem", []string{"-config", broken}, 1, "", []string{
			broken + `:1:18: storage.fsync: must be one of part, segment, never, got "always"`,
			filepath.Join(dir, "cameras.yaml") + `:2:9: cameras[0].id: invalid id "Bad" (want ^[a-z0-9][a-z0-9-]{0,62}$)`,
			filepath.Join(dir, "cameras.yaml") + `:3:10: cameras[0].url: scheme must be rtsp or rtsps`,
			"3 problems",
		}},
		{"empty cameras file", []string{"-config", emptyCams}, 1, "", []string{
			filepath.Join(emptyDir, "cameras.yaml") + ":1:1: the file is empty; write the settings it should hold (an empty file is never a valid configuration)",
		}},
		{"empty service file", []string{"-config", emptyVigil}, 1, "", append([]string{
			emptyVigil + ":1:1: the file is empty; write the settings it should hold (an empty file is never a valid configuration)",
		}, badCams...)},
		{"meaning errors", []string{"-config", meaning}, 1, "", []string{
			meaning + `:4:39: alerts.rules[0].match.site: no camera has site "keysite" (did you mean key-site?)`,
			meaning + `:5:40: alerts.rules[1].match.camera: unknown camera "mediation-rom" (did you mean mediation-room?)`,
			meaning + `:5:86: alerts.rules[1].dispatch_to: unknown unit "司法所" (did you mean sifa? valid unit ids: police, sifa)`,
			meanCams + `:4:5: cameras[2].name: required (the name the desk shows, like 服务大厅入口)`,
			"4 problems",
		}},
		{"warning only", []string{"-config", warn}, 0, "ok: 2 cameras, 0 units, 2 rules\n", []string{
			filepath.Join(warnDir, "cameras.yaml") + `:3:34: cameras[1].site: warning: no alert rule names site "keysite" or camera gate-2; only catch-all rules apply to it (did you mean key-site?)`,
		}},
		{"bad indent", []string{"-config", syntax}, 1, "", append([]string{syntax + ":6:4: yaml: did not find expected key"}, badCams...)},
		{"tab", []string{"-config", tab}, 1, "", append([]string{tab + ":4:1: yaml: found a tab character that violates indentation"}, badCams...)},
		{"missing cameras file", []string{"-config", missingCams}, 1, "", []string{
			missingCams + ":1:15: cameras_file: open " + filepath.Join(dir, "none.yaml") + ": no such file or directory",
		}},
		{"missing file", []string{"-config", filepath.Join(dir, "nope.yaml")}, 1, "", []string{
			"check-config: load config: open " + filepath.Join(dir, "nope.yaml") + ": no such file or directory",
		}},
		{"bad flag", []string{"-nope"}, 2, "", nil},
		{"extra argument", []string{"-config", broken, "x"}, 2, "", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := runCheckConfig(context.Background(), tt.args, &stdout, &stderr)
			if code != tt.code {
				t.Errorf("exit %d, want %d; stderr:\n%s", code, tt.code, stderr.String())
			}
			if stdout.String() != tt.wantStdout {
				t.Errorf("stdout %q, want %q", stdout.String(), tt.wantStdout)
			}
			if tt.wantStderr != nil {
				got := strings.Split(strings.TrimSuffix(stderr.String(), "\n"), "\n")
				if strings.Join(got, "\n") != strings.Join(tt.wantStderr, "\n") {
					t.Errorf("stderr:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tt.wantStderr, "\n"))
				}
			}
		})
	}
}

func TestCheckConfigRegistered(t *testing.T) {
	if _, ok := commands()["check-config"]; !ok {
		t.Fatal("check-config is not a command")
	}
}
