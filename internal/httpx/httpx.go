// Package httpx holds the few HTTP helpers every Vigil handler shares: the
// JSON error shape of DESIGN.md and bounded JSON decoding. It has no routes.
package httpx

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
)

// ErrorBody is the JSON shape of every API error.
type ErrorBody struct {
	Error string `json:"error"`
	Code  string `json:"code"`
}

// WriteJSON writes v as JSON with the given status.
func WriteJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v) // the client went away; nothing to do
}

// Error writes {"error": msg, "code": code} with the given status.
func Error(w http.ResponseWriter, status int, code, msg string) {
	WriteJSON(w, status, ErrorBody{Error: msg, Code: code})
}

// DecodeJSON reads one JSON object of at most max bytes from r's body into
// v, rejecting unknown fields and trailing data. The error is meant for the
// client: it says what was wrong, and is a *http.MaxBytesError (wrapped) when
// the body was too large.
func DecodeJSON(w http.ResponseWriter, r *http.Request, max int64, v any) error {
	if ct := r.Header.Get("Content-Type"); ct != "" && !IsJSON(r) {
		return fmt.Errorf("content type %q: want application/json", ct)
	}
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, max))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		if errors.Is(err, io.EOF) {
			return errors.New("empty body: want a JSON object")
		}
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return fmt.Errorf("body larger than %d bytes: %w", max, err)
		}
		return fmt.Errorf("invalid JSON: %w", err)
	}
	if dec.More() {
		return errors.New("invalid JSON: trailing data after the object")
	}
	return nil
}

// IsJSON reports whether r's Content-Type is application/json by its parsed
// media type (parameters such as charset allowed; application/jsonfoo and
// a missing header are not JSON).
func IsJSON(r *http.Request) bool {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	return err == nil && mt == "application/json"
}

// DecodeError answers a DecodeJSON error: 413 for an oversized body, 408
// for a body that did not arrive in time (BodyDeadline), 400 otherwise.
func DecodeError(w http.ResponseWriter, err error) {
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		Error(w, http.StatusRequestEntityTooLarge, "too_large", err.Error())
		return
	}
	if IsTimeout(err) {
		w.Header().Set("Connection", "close")
		Error(w, http.StatusRequestTimeout, "timeout", "the request body did not arrive in time")
		return
	}
	Error(w, http.StatusBadRequest, "bad_request", err.Error())
}
