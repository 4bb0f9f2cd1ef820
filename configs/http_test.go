package configs

import (
	"slices"
	"testing"
)

func TestHTTPMaxConns(t *testing.T) {
	cases := []struct {
		name, vigil string
		want        int64
		err         string
	}{
		{"default", baseVigil, 512, ""},
		{"set", baseVigil + "http: {max_conns: 64}\n", 64, ""},
		{"zero", baseVigil + "http:\n  max_conns: 0\n", 0, "vigil.yaml:4:14: http.max_conns: must be at least 1"},
		{"not a number", baseVigil + "http:\n  max_conns: many\n", 0, `vigil.yaml:4:14: http.max_conns: expected an integer, got "many"`},
		{"unknown key", baseVigil + "http:\n  max_con: 5\n", 0, "vigil.yaml:4:3: http.max_con: unknown key (did you mean max_conns?)"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg, err := loadIn(t, c.vigil, baseCameras, noEnv)
			if c.err != "" {
				if lines := errorLines(err); !slices.Contains(lines, c.err) {
					t.Fatalf("errors %q, want %q", lines, c.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if cfg.HTTP.MaxConns != c.want {
				t.Fatalf("max_conns = %d, want %d", cfg.HTTP.MaxConns, c.want)
			}
		})
	}
}
