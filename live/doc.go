// Package live owns what the desk sees of a camera now: the WebRTC live
// view over WHEP (RFC 9725) and JPEG snapshots.
//
// It is a consumer of ingest's fan-out, like the recorder: internal/app
// subscribes each camera's Feed (a media.Sink) to ingest, and the Feed keeps
// the camera's current group of pictures in memory. A WHEP viewer starts at
// that GOP's keyframe and then follows the camera; H.264 and G.711 pass
// through untouched, only repacketized into RTP. Snapshots decode the
// latest keyframe (or, through Recordings, a recorded one) with one
// short-lived ffmpeg process per picture, at most two alive at once; while
// Snapshots.Run runs, idle slots hold spares started ahead and waiting on
// stdin, so a picture does not wait for ffmpeg's start.
//
// It does not pull streams (ingest), write or serve recordings (recorder),
// or attach snapshots to alerts as evidence (the alerts wiring calls
// Snapshots.After for that). Ingest never imports it.
package live
