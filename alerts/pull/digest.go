package pull

import (
	"crypto/md5"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash"
	"net/http"
	"strings"
)

// digestChallenge is a parsed WWW-Authenticate: Digest header.
type digestChallenge struct {
	realm, nonce, opaque, algorithm, qop string
}

// parseDigestChallenge reads the Digest challenge of a 401 answer; ok is
// false when the server offers none.
func parseDigestChallenge(h http.Header) (digestChallenge, bool) {
	for _, v := range h.Values("WWW-Authenticate") {
		scheme, rest, _ := strings.Cut(strings.TrimSpace(v), " ")
		if !strings.EqualFold(scheme, "Digest") {
			continue
		}
		var c digestChallenge
		for _, kv := range splitAuthParams(rest) {
			k, val, _ := strings.Cut(kv, "=")
			val = strings.Trim(strings.TrimSpace(val), `"`)
			switch strings.ToLower(strings.TrimSpace(k)) {
			case "realm":
				c.realm = val
			case "nonce":
				c.nonce = val
			case "opaque":
				c.opaque = val
			case "algorithm":
				c.algorithm = val
			case "qop":
				c.qop = val
			}
		}
		return c, c.nonce != ""
	}
	return digestChallenge{}, false
}

// splitAuthParams splits auth-params on commas outside quotes.
func splitAuthParams(s string) []string {
	var out []string
	var b strings.Builder
	quoted := false
	for _, r := range s {
		switch {
		case r == '"':
			quoted = !quoted
			b.WriteRune(r)
		case r == ',' && !quoted:
			out = append(out, strings.TrimSpace(b.String()))
			b.Reset()
		default:
			b.WriteRune(r)
		}
	}
	if strings.TrimSpace(b.String()) != "" {
		out = append(out, strings.TrimSpace(b.String()))
	}
	return out
}

// authorization answers the challenge for one request (RFC 7616: MD5 or
// SHA-256, qop auth or none). nc counts the uses of this nonce.
func (c digestChallenge) authorization(method, uri, user, pass string, nc int) (string, error) {
	var h func() hash.Hash
	switch strings.ToUpper(c.algorithm) {
	case "", "MD5":
		h = md5.New
	case "SHA-256":
		h = sha256.New
	default:
		return "", fmt.Errorf("digest algorithm %q not supported", c.algorithm)
	}
	sum := func(s string) string {
		x := h()
		x.Write([]byte(s))
		return hex.EncodeToString(x.Sum(nil))
	}
	ha1 := sum(user + ":" + c.realm + ":" + pass)
	ha2 := sum(method + ":" + uri)
	var b strings.Builder
	fmt.Fprintf(&b, `Digest username=%q, realm=%q, nonce=%q, uri=%q`, user, c.realm, c.nonce, uri)
	qop := ""
	for _, q := range strings.Split(c.qop, ",") {
		if strings.TrimSpace(q) == "auth" {
			qop = "auth"
		}
	}
	if qop != "" {
		var cb [8]byte
		_, _ = rand.Read(cb[:])
		cnonce := hex.EncodeToString(cb[:])
		ncs := fmt.Sprintf("%08x", nc)
		fmt.Fprintf(&b, `, qop=auth, nc=%s, cnonce=%q, response=%q`, ncs, cnonce, sum(ha1+":"+c.nonce+":"+ncs+":"+cnonce+":auth:"+ha2))
	} else {
		fmt.Fprintf(&b, `, response=%q`, sum(ha1+":"+c.nonce+":"+ha2))
	}
	if c.opaque != "" {
		fmt.Fprintf(&b, `, opaque=%q`, c.opaque)
	}
	if c.algorithm != "" {
		fmt.Fprintf(&b, `, algorithm=%s`, c.algorithm)
	}
	return b.String(), nil
}
