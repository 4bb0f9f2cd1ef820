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
	write("cameras.yaml", "cameras:\n  - id: Bad\n    url: http://192.0.2.1/\n")
	broken := write("vigil.yaml", "storage: {fsync: always}\n")
	missingCams := write("other.yaml", "cameras_file: none.yaml\n")

	tests := []struct {
		name       string
		args       []string
		code       int
		wantStdout string
		wantStderr []string
	}{
		{"shipped files", []string{"-config", "../../configs/vigil.yaml"}, 0, "ok: 5 cameras, 3 units, 8 rules\n", nil},
		{"every problem", []string{"-config", broken}, 1, "", []string{
			broken + `:1:18: storage.fsync: must be one of part, segment, never, got "always"`,
			filepath.Join(dir, "cameras.yaml") + `:2:9: cameras[0].id: invalid id "Bad" (want ^[a-z0-9][a-z0-9-]{0,62}$)`,
			filepath.Join(dir, "cameras.yaml") + `:3:10: cameras[0].url: scheme must be rtsp or rtsps`,
			"3 problems",
		}},
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
