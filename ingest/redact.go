package ingest

import (
	"net/url"
	"strings"
)

// redactedError hides a camera's credentials from an error's text; the
// wrapped error stays available to errors.Is and errors.As.
type redactedError struct {
	msg string
	err error
}

func (e *redactedError) Error() string { return e.msg }
func (e *redactedError) Unwrap() error { return e.err }

// redactError returns err with any of the camera's credentials replaced:
// gortsplib and net/url errors may quote the URL with its userinfo.
func redactError(err error, c Camera) error {
	if err == nil {
		return nil
	}
	msg := redact(err.Error(), c)
	if msg == err.Error() {
		return err
	}
	return &redactedError{msg: msg, err: err}
}

func redact(s string, c Camera) string {
	if c.Password == "" {
		return s
	}
	for _, form := range []string{c.Password, url.PathEscape(c.Password), url.QueryEscape(c.Password), url.UserPassword("", c.Password).String()[1:]} {
		if len(form) > 0 && form != ":" {
			s = strings.ReplaceAll(s, form, "***")
		}
	}
	return s
}

// pullURL is the camera URL with its credentials, for gortsplib only.
func pullURL(c Camera) (*url.URL, error) {
	u, err := url.Parse(c.URL)
	if err != nil {
		return nil, err
	}
	if c.Username != "" {
		u.User = url.UserPassword(c.Username, c.Password)
	}
	return u, nil
}
