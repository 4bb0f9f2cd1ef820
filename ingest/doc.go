// Package ingest pulls the RTSP stream of every registered camera and hands
// its media to subscribers. It owns the per-camera supervisor (connect,
// reconnect with backoff, stall detection), depacketizing video, audio and
// ONVIF metadata, the fan-out of access units to bounded per-subscriber
// queues, camera health and the camera status API.
//
// It does not record, parse events or know about alerts: the recorder and the
// alerts pipeline subscribe through media.Sink and MetadataSink, which
// internal/app connects.
package ingest
