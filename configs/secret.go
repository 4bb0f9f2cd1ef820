package configs

import (
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"strings"
)

// redacted is what every printed form of a set secret shows.
const redacted = "***"

// Secret is a password, webhook secret or token. Every way of printing it —
// fmt with any verb, log/slog, encoding/json, encoding.TextMarshaler —
// shows "***" (or "" when it is empty); Reveal returns the value.
type Secret string

// Reveal returns the secret itself, for the one place that needs it.
func (s Secret) Reveal() string { return string(s) }

func (s Secret) String() string {
	if s == "" {
		return ""
	}
	return redacted
}

// Format makes every fmt verb, %#v and %x included, print the redacted form.
func (s Secret) Format(f fmt.State, verb rune) {
	if verb == 'q' {
		fmt.Fprintf(f, "%q", s.String())
		return
	}
	io.WriteString(f, s.String())
}

// LogValue implements slog.LogValuer.
func (s Secret) LogValue() slog.Value { return slog.StringValue(s.String()) }

// MarshalJSON implements json.Marshaler.
func (s Secret) MarshalJSON() ([]byte, error) { return json.Marshal(s.String()) }

// MarshalText implements encoding.TextMarshaler.
func (s Secret) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// Credentials returns the user name and password for the camera's stream,
// merged from the URL and the username/password keys.
func (c Camera) Credentials() (user, pass string) {
	return c.Username, c.Password.Reveal()
}

// StreamURL returns the stream URL without userinfo; pass Credentials to the
// RTSP client separately.
func (c Camera) StreamURL() string { return c.URL }

// RedactedURL returns the URL as it may be shown: with the user name and
// "***" in place of the password, as in rtsp://admin:***@192.0.2.21/path.
func (c Camera) RedactedURL() string {
	u, err := url.Parse(c.URL)
	if err != nil || c.Username == "" && c.Password == "" {
		return c.URL
	}
	if c.Password != "" {
		u.User = url.UserPassword(c.Username, redacted)
	} else {
		u.User = url.User(c.Username)
	}
	// url escapes '*' in userinfo on some paths; keep the documented form.
	return strings.Replace(u.String(), "%2A%2A%2A@", redacted+"@", 1)
}

// String returns the camera's ID and redacted URL.
func (c Camera) String() string {
	return fmt.Sprintf("camera %s (%s)", c.ID, c.RedactedURL())
}

// GoString keeps %#v from printing fields one by one.
func (c Camera) GoString() string { return "configs.Camera{" + c.String() + "}" }

// Format prints the camera's String for every verb, so that %+v and %#v
// cannot bypass it.
func (c Camera) Format(f fmt.State, verb rune) {
	if verb == 'q' {
		fmt.Fprintf(f, "%q", c.String())
		return
	}
	io.WriteString(f, c.String())
}

// LogValue implements slog.LogValuer.
func (c Camera) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("id", c.ID),
		slog.String("site", c.Site),
		slog.String("url", c.RedactedURL()),
	)
}

// MarshalJSON implements json.Marshaler; the URL is the redacted form and
// secrets are "***".
func (c Camera) MarshalJSON() ([]byte, error) {
	type plain Camera // no methods: no recursion
	p := plain(c)
	p.URL = c.RedactedURL()
	return json.Marshal(p)
}

// String summarizes the configuration without any secret.
func (c *Config) String() string {
	if c == nil {
		return "<nil config>"
	}
	return fmt.Sprintf("config %s: listen %s, %d cameras, %d units, %d rules, %d tokens, journal %s",
		c.Path, c.Listen, len(c.Cameras), len(c.Alerts.Units), len(c.Alerts.Rules), len(c.Auth.Tokens), c.Journal.Backend)
}

// Format prints the summary for every verb, so that %+v and %#v cannot
// walk the fields.
func (c *Config) Format(f fmt.State, verb rune) {
	if verb == 'q' {
		fmt.Fprintf(f, "%q", c.String())
		return
	}
	io.WriteString(f, c.String())
}

// LogValue implements slog.LogValuer.
func (c *Config) LogValue() slog.Value {
	if c == nil {
		return slog.StringValue("<nil config>")
	}
	return slog.GroupValue(
		slog.String("path", c.Path),
		slog.String("listen", c.Listen),
		slog.String("node_id", c.NodeID),
		slog.Int("cameras", len(c.Cameras)),
		slog.Int("units", len(c.Alerts.Units)),
		slog.Int("rules", len(c.Alerts.Rules)),
		slog.String("journal", c.Journal.Backend),
	)
}

// String names the token and its role only.
func (t Token) String() string { return fmt.Sprintf("token %s (%s)", t.Name, t.Role) }

// Format prints String for every verb, keeping the hash out.
func (t Token) Format(f fmt.State, verb rune) { io.WriteString(f, t.String()) }

// LogValue implements slog.LogValuer.
func (t Token) LogValue() slog.Value {
	return slog.GroupValue(slog.String("name", t.Name), slog.String("role", string(t.Role)))
}
