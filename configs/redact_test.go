package configs

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"testing"
)

func secretConfig(t *testing.T) *Config {
	t.Helper()
	vigil := baseVigil + "journal: {redis: {password: redis-SECRET-1}}\nauth:\n  tokens:\n    - {name: ops, role: admin, token: token-SECRET-2-long-enough}\n"
	cameras := "cameras:\n" +
		"  - id: a\n    name: a\n    url: rtsp://admin:url-SECRET-3@192.0.2.1:554/s\n    events: {webhook_secret: hook-SECRET-4}\n" +
		"  - id: b\n    name: b\n    url: rtsp://192.0.2.2/s\n    username: root\n    password: key-SECRET-5\n"
	cfg, err := loadIn(t, vigil, cameras, noEnv)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func TestRedaction(t *testing.T) {
	cfg := secretConfig(t)
	cam := cfg.Cameras[0]
	outputs := map[string]string{}
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%d"} {
		outputs["cfg "+verb] = fmt.Sprintf(verb, cfg)
		outputs["*cfg "+verb] = fmt.Sprintf(verb, *cfg)
		outputs["cam "+verb] = fmt.Sprintf(verb, cam)
		outputs["&cam "+verb] = fmt.Sprintf(verb, &cam)
		outputs["cameras "+verb] = fmt.Sprintf(verb, cfg.Cameras)
		outputs["redis "+verb] = fmt.Sprintf(verb, cfg.Journal.Redis)
		outputs["tokens "+verb] = fmt.Sprintf(verb, cfg.Auth.Tokens)
		outputs["events "+verb] = fmt.Sprintf(verb, cam.Events)
	}
	for name, v := range map[string]any{"cfg": cfg, "*cfg": *cfg, "cam": cam, "cameras": cfg.Cameras, "camera b": cfg.Cameras[1]} {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatalf("json %s: %v", name, err)
		}
		outputs["json "+name] = string(b)
	}
	var buf bytes.Buffer
	for _, h := range []slog.Handler{slog.NewTextHandler(&buf, nil), slog.NewJSONHandler(&buf, nil)} {
		log := slog.New(h)
		log.Info("loaded", "config", cfg, "camera", cam, "camera_b", cfg.Cameras[1], "password", cam.Password,
			"redis", cfg.Journal.Redis, "token", cfg.Auth.Tokens[0], "cameras", cfg.Cameras)
	}
	outputs["slog"] = buf.String()

	for name, out := range outputs {
		if strings.Contains(out, "SECRET") {
			t.Errorf("%s shows a secret: %s", name, out)
		}
	}
	if !strings.Contains(outputs["json cam"], `"url":"rtsp://admin:***@192.0.2.1:554/s"`) {
		t.Errorf("camera JSON lacks the redacted URL: %s", outputs["json cam"])
	}
	if !strings.Contains(outputs["json cam"], `"webhook_secret":"***"`) {
		t.Errorf("camera JSON does not say a webhook secret is set: %s", outputs["json cam"])
	}
	if !strings.Contains(outputs["cam %v"], "rtsp://admin:***@192.0.2.1:554/s") {
		t.Errorf("camera %%v = %s", outputs["cam %v"])
	}
	if got := cfg.Cameras[1].RedactedURL(); got != "rtsp://root:***@192.0.2.2/s" {
		t.Errorf("RedactedURL = %s", got)
	}
	if got := cfg.Cameras[0].StreamURL(); got != "rtsp://192.0.2.1:554/s" {
		t.Errorf("StreamURL = %s", got)
	}
	if u, p := cfg.Cameras[0].Credentials(); u != "admin" || p != "url-SECRET-3" {
		t.Errorf("Credentials = %q, %q", u, p)
	}
	if !cfg.Auth.Tokens[0].Matches("token-SECRET-2-long-enough") {
		t.Errorf("token does not match itself")
	}
	if got := fmt.Sprint(Secret("")); got != "" {
		t.Errorf("empty secret prints %q", got)
	}
}

func TestNoSecretInErrors(t *testing.T) {
	// A URL that fails to parse and a wrong type next to a secret.
	cameras := "cameras:\n  - id: a\n    url: \"rtsp://admin:pa SECRET%zz@192.0.2.1/\"\n    password: {SECRET: 1}\n"
	_, err := loadIn(t, baseVigil, cameras, noEnv)
	if err == nil {
		t.Fatal("loaded")
	}
	if strings.Contains(err.Error(), "SECRET") {
		t.Errorf("error shows a secret: %v", err)
	}
}
