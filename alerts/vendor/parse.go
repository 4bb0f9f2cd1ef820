package vendor

// Helpers shared by the parsers of camera event signals (onvif.go,
// hikvision.go, dahua.go, generic.go). Every parser takes outside bytes,
// never panics, reads at most MaxPayloadBytes and answers either events or
// an error that says what was wrong.

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"vigil/alerts"
)

// MaxPayloadBytes bounds every payload a parser accepts: a webhook body, a
// reassembled ONVIF metadata document, and a gzip document once inflated.
// The HTTP layer enforces the same 1 MiB limit on hook bodies.
const MaxPayloadBytes = 1 << 20

// ErrPayloadTooLarge is returned (wrapped) when a payload is larger than
// MaxPayloadBytes.
var ErrPayloadTooLarge = errors.New("payload larger than 1 MiB")

// readPayload reads r to the end, failing once more than MaxPayloadBytes have
// arrived so that memory stays bounded whatever the sender does.
func readPayload(r io.Reader) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r, MaxPayloadBytes+1))
	if err != nil {
		return nil, fmt.Errorf("read body: %w", err)
	}
	if len(b) > MaxPayloadBytes {
		return nil, ErrPayloadTooLarge
	}
	return b, nil
}

// parseSignalValue maps the value spellings cameras use for a boolean
// property (true/false/TRUE/1/0/active/inactive/on/off, any case) to a state.
func parseSignalValue(v string) (alerts.State, bool) {
	switch strings.ToLower(strings.TrimSpace(v)) {
	case "true", "1", "active", "on":
		return alerts.Active, true
	case "false", "0", "inactive", "off":
		return alerts.Inactive, true
	}
	return "", false
}

// parseTimeEarliest is the earliest payload time believed: cameras without a
// clock (no NTP yet) report 1970 or 2000; such times fall back to now.
var parseTimeEarliest = time.Date(2001, 1, 1, 0, 0, 0, 0, time.UTC)

// parseCameraTime reads a timestamp as cameras write it: RFC 3339 with or
// without fraction, with a zone, a numeric offset without colon, or no zone
// at all (read as UTC). ok is false for an empty, unreadable or implausibly
// old time; the caller then uses its own clock.
func parseCameraTime(s string) (t time.Time, ok bool) {
	s = strings.TrimSpace(s)
	if s == "" || len(s) > 64 {
		return time.Time{}, false
	}
	s = strings.Replace(s, " ", "T", 1)
	if strings.HasSuffix(s, "z") {
		s = s[:len(s)-1] + "Z"
	}
	for _, layout := range [...]string{
		time.RFC3339Nano,
		"2006-01-02T15:04:05.999999999-0700",
		"2006-01-02T15:04:05.999999999",
	} {
		t, err := time.Parse(layout, s)
		if err != nil {
			continue
		}
		if t.Before(parseTimeEarliest) {
			return time.Time{}, false
		}
		return t.UTC(), true
	}
	return time.Time{}, false
}

// parseJoinKey joins name=value pairs in name order, so that the same items
// always give the same key whatever order the camera sent them in.
func parseJoinKey(items map[string]string) string {
	if len(items) == 0 {
		return ""
	}
	names := make([]string, 0, len(items))
	for n := range items {
		names = append(names, n)
	}
	sort.Strings(names)
	var b strings.Builder
	for i, n := range names {
		if i > 0 {
			b.WriteByte(';')
		}
		b.WriteString(n)
		b.WriteByte('=')
		b.WriteString(items[n])
	}
	return b.String()
}

// parseQuote quotes an outside value for an error message, cut short so that
// a hostile payload cannot blow up a log line.
func parseQuote(s string) string {
	const max = 64
	if len(s) > max {
		return fmt.Sprintf("%q…", s[:max])
	}
	return fmt.Sprintf("%q", s)
}

// parseNewXMLDecoder returns a strict decoder that also accepts the UTF-8
// spellings some firmware declares ("utf8", "us-ascii") and refuses other
// charsets with a clear error instead of garbling them.
func parseNewXMLDecoder(b []byte) *xml.Decoder {
	b = bytes.TrimPrefix(b, []byte("\xef\xbb\xbf")) // UTF-8 byte order mark
	d := xml.NewDecoder(bytes.NewReader(b))
	d.CharsetReader = func(charset string, input io.Reader) (io.Reader, error) {
		switch strings.ToLower(charset) {
		case "utf-8", "utf8", "us-ascii", "ascii":
			return input, nil
		}
		return nil, fmt.Errorf("charset %s not supported: want UTF-8", parseQuote(charset))
	}
	return d
}

// IsHeaderName reports whether s is an HTTP header name (letters, digits,
// '-' and '_'; no '=' or space, which a Dahua record's first field always
// has). Multipart event streams whose parts may lack the blank line after
// their headers (Dahua's parser here, alerts/pull's stream reader) tell
// header lines from the body by it.
func IsHeaderName(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range s {
		if !(c == '-' || c == '_' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z') {
			return false
		}
	}
	return true
}
