package camsim

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"vigil/internal/httpx"
)

// maxControlBody bounds the body of a control request.
const maxControlBody = 64 << 10

// TriggerRequest is the body of POST /trigger.
type TriggerRequest struct {
	Camera string `json:"camera"`
	Type   string `json:"type"`
	State  string `json:"state"`
	Key    string `json:"key,omitempty"`
}

// FaultRequest is the body of POST /fault.
type FaultRequest struct {
	Camera string `json:"camera"`
	Fault  string `json:"fault"`
}

// TriggerResponse is the answer to POST /trigger.
type TriggerResponse struct {
	Camera    string    `json:"camera"`
	Topic     string    `json:"topic"`
	Key       string    `json:"key,omitempty"`
	Value     bool      `json:"value"`
	Operation string    `json:"operation,omitempty"`
	SentAt    time.Time `json:"sent_at"`
	Delivered bool      `json:"delivered"`
}

// Handler is the control endpoint: POST /trigger, POST /fault and
// GET /cameras. It answers only loopback peers.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /trigger", func(w http.ResponseWriter, r *http.Request) {
		var req TriggerRequest
		if !decode(w, r, &req) {
			return
		}
		sent, err := s.TriggerKey(req.Camera, req.Type, req.State, req.Key)
		if err != nil {
			writeError(w, err)
			return
		}
		httpx.WriteJSON(w, http.StatusOK, TriggerResponse{
			Camera: sent.Camera, Topic: sent.Topic, Key: sent.Key, Value: sent.Value,
			Operation: sent.Operation, SentAt: sent.At, Delivered: sent.Delivered,
		})
	})
	mux.HandleFunc("POST /fault", func(w http.ResponseWriter, r *http.Request) {
		var req FaultRequest
		if !decode(w, r, &req) {
			return
		}
		if err := s.Fault(req.Camera, req.Fault); err != nil {
			writeError(w, err)
			return
		}
		httpx.WriteJSON(w, http.StatusOK, req)
	})
	mux.HandleFunc("GET /cameras", func(w http.ResponseWriter, r *http.Request) {
		type cam struct {
			Path   string `json:"path"`
			URL    string `json:"url"`
			Events bool   `json:"events"`
		}
		out := []cam{}
		for _, c := range s.order {
			out = append(out, cam{c.path, s.URL(c.path), c.events})
		}
		httpx.WriteJSON(w, http.StatusOK, map[string]any{"cameras": out})
	})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host, _, err := net.SplitHostPort(r.RemoteAddr)
		if ip := net.ParseIP(host); err != nil || ip == nil || !ip.IsLoopback() {
			httpx.WriteJSON(w, http.StatusForbidden, apiError{"control endpoint answers loopback peers only", "forbidden"})
			return
		}
		mux.ServeHTTP(w, r)
	})
}

type apiError struct {
	Error string `json:"error"`
	Code  string `json:"code"`
}

func decode(w http.ResponseWriter, r *http.Request, v any) bool {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxControlBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		httpx.WriteJSON(w, http.StatusBadRequest, apiError{"invalid JSON body: " + err.Error(), "bad_json"})
		return false
	}
	if dec.More() {
		httpx.WriteJSON(w, http.StatusBadRequest, apiError{"invalid JSON body: trailing data", "bad_json"})
		return false
	}
	return true
}

func writeError(w http.ResponseWriter, err error) {
	switch {
	case errors.Is(err, ErrUnknownCamera):
		httpx.WriteJSON(w, http.StatusNotFound, apiError{err.Error(), "unknown_camera"})
	case errors.Is(err, ErrBadRequest):
		httpx.WriteJSON(w, http.StatusBadRequest, apiError{err.Error(), "bad_request"})
	default:
		httpx.WriteJSON(w, http.StatusInternalServerError, apiError{fmt.Sprint(err), "internal"})
	}
}
