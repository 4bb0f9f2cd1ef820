package main

import (
	"bytes"
	"strings"
	"testing"
)

func TestCamsimRefusesBadInput(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		code int
		msg  string
	}{
		{"unknown flag", []string{"-nope"}, 2, "flag provided but not defined"},
		{"public control", []string{"-listen", "127.0.0.1:0", "-control", "0.0.0.0:0"}, 1, "not a loopback address"},
		{"missing clip", []string{"-listen", "127.0.0.1:0", "-clip", "/nonexistent.h264"}, 1, "load clip"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			if code := runCamsim(t.Context(), tc.args, &out, &errb); code != tc.code {
				t.Errorf("exit %d, want %d; stderr %s", code, tc.code, errb.String())
			}
			if !strings.Contains(errb.String(), tc.msg) {
				t.Errorf("stderr %q lacks %q", errb.String(), tc.msg)
			}
		})
	}
}
