package ingest

import (
	"errors"
	"net/http"

	"vigil/internal/httpx"
)

// Handler serves GET /api/v1/cameras and GET /api/v1/cameras/{id}. The app
// mounts it on those two patterns behind its auth middleware.
func (s *Streams) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/v1/cameras", s.ServeCameras)
	mux.HandleFunc("GET /api/v1/cameras/{id}", s.ServeCamera)
	return mux
}

// ServeCameras answers GET /api/v1/cameras with {"cameras":[CameraStatus…]}
// in registration order (an object, like GET /alerts, so fields can be added).
func (s *Streams) ServeCameras(w http.ResponseWriter, _ *http.Request) {
	httpx.WriteJSON(w, http.StatusOK, map[string][]CameraStatus{"cameras": s.Statuses()})
}

// ServeCamera answers GET /api/v1/cameras/{id} with one CameraStatus: 400 for
// an ID that does not match the camera ID pattern, 404 for an unknown one.
func (s *Streams) ServeCamera(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if !ValidID(id) {
		writeError(w, http.StatusBadRequest, "bad_camera_id", "camera id must match "+idPattern.String())
		return
	}
	st, err := s.Status(id)
	if errors.Is(err, ErrUnknownCamera) {
		writeError(w, http.StatusNotFound, "unknown_camera", "no camera "+id)
		return
	}
	httpx.WriteJSON(w, http.StatusOK, st)
}

func writeError(w http.ResponseWriter, code int, short, msg string) {
	httpx.WriteJSON(w, code, map[string]string{"error": msg, "code": short})
}
