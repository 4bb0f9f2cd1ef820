package httpx

import (
	"net/http/httptest"
	"strings"
	"testing"
)

func TestDecodeJSONContentType(t *testing.T) {
	cases := []struct {
		ctype string
		ok    bool
	}{
		{"", true}, // curl and scripts with a bearer token
		{"application/json", true},
		{"application/json; charset=utf-8", true},
		{"APPLICATION/JSON", true},
		{"application/jsonfoo", false},
		{"application/json-patch+json", false},
		{"text/plain", false},
		{"multipart/form-data; boundary=x", false},
	}
	for _, c := range cases {
		t.Run(c.ctype, func(t *testing.T) {
			r := httptest.NewRequest("POST", "/", strings.NewReader(`{"a":1}`))
			if c.ctype != "" {
				r.Header.Set("Content-Type", c.ctype)
			}
			var v struct{ A int }
			err := DecodeJSON(httptest.NewRecorder(), r, 100, &v)
			if (err == nil) != c.ok {
				t.Fatalf("DecodeJSON with %q: %v, want ok=%v", c.ctype, err, c.ok)
			}
		})
	}
}
