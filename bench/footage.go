package main

import (
	"time"

	"vigil/internal/camsim"
	"vigil/internal/media"
	"vigil/recorder"
)

// footageStart is where recorded footage begins: recent, so that the node's
// retention never sweeps it during the run.
var footageStart = time.Now().UTC().Truncate(time.Hour).Add(-3 * time.Hour)

// recordFootage records d of clip as camera into dir with Vigil's own
// recorder, fed as fast as it takes the frames (60-s segments of 1-s
// parts, no fsync), so that an hour of footage takes seconds, not an hour.
func recordFootage(dir, camera, clipPath string, d time.Duration) error {
	return recordFootageAt(dir, camera, clipPath, footageStart, d)
}

// recordFootageAt is recordFootage from start.
func recordFootageAt(dir, camera, clipPath string, start time.Time, d time.Duration) error {
	c, err := camsim.LoadClip(clipPath, 25)
	if err != nil {
		return err
	}
	r, err := recorder.New(recorder.Options{Dir: dir, Fsync: recorder.FsyncNever, Now: func() time.Time { return start }})
	if err != nil {
		return err
	}
	w, err := r.Camera(camera, 0)
	if err != nil {
		return err
	}
	w.OnStream(media.Stream{
		Camera:  camera,
		Session: 1,
		Video:   &media.VideoTrack{Codec: media.H264, ClockRate: 90000, SPS: c.SPS, PPS: c.PPS, Width: c.Width, Height: c.Height},
		Started: start,
	})
	fd := c.FrameDuration()
	for i := range int(d / fd) {
		dts := time.Duration(i) * fd
		fr := c.Frames[i%len(c.Frames)]
		w.OnAccessUnit(media.AccessUnit{Kind: media.Video, DTS: dts, PTS: dts, Key: fr.Key, Payload: fr.NALUs, Wall: start.Add(dts)})
	}
	return r.Close()
}
