package recorder

// Manifest describes an export: the range asked for, the keyframe it starts
// at, every source segment with the SHA-256 recorded when it was closed, and
// the gaps in the range. With File set, it also carries the hash of the
// exported file, so an investigator can prove neither was altered.
type Manifest struct {
	Camera   string            `json:"camera"`
	Start    string            `json:"start"`
	End      string            `json:"end"`
	From     string            `json:"from"`  // the keyframe the export starts at
	Until    string            `json:"until"` // the end of the last exported frame
	Format   string            `json:"format"`
	Frames   int               `json:"frames"`
	Segments []ManifestSegment `json:"segments"`
	Gaps     []ManifestGap     `json:"gaps"`
	File     *ManifestFile     `json:"file,omitempty"`
}

// ManifestSegment is one source segment of an export.
type ManifestSegment struct {
	ID     string `json:"id"`
	Start  string `json:"start"`
	End    string `json:"end"`
	Bytes  int64  `json:"bytes"`
	SHA256 string `json:"sha256"`
	// Open marks the segment that was being written: Bytes and SHA256
	// are of the file's first Bytes bytes (its flushed parts), exactly
	// what the export took from it; the final hash of the whole segment
	// is in its index line once it closes.
	Open bool `json:"open,omitempty"`
	// Node and Epoch say which cluster node recorded the segment, under
	// which lease epoch; absent on a single node.
	Node  string `json:"node,omitempty"`
	Epoch int64  `json:"epoch,omitempty"`
}

// ManifestGap is a span of the range without recording.
type ManifestGap struct {
	Start string `json:"start"`
	End   string `json:"end"`
}

// ManifestFile is the exported file.
type ManifestFile struct {
	Name   string `json:"name"`
	Bytes  int64  `json:"bytes"`
	SHA256 string `json:"sha256"`
}

// Manifest returns the manifest of x, without File.
func (x *Export) Manifest() Manifest {
	m := Manifest{
		Camera:   x.Camera,
		Start:    formatTime(x.Start),
		End:      formatTime(x.End),
		From:     formatTime(x.From),
		Until:    formatTime(x.Until),
		Format:   x.Format,
		Frames:   x.Frames,
		Segments: make([]ManifestSegment, 0, len(x.Segments)),
		Gaps:     manifestGaps(x.Gaps),
	}
	for _, s := range x.Segments {
		m.Segments = append(m.Segments, ManifestSegment{ID: s.ID, Start: formatTime(s.Start), End: formatTime(s.End), Bytes: s.Bytes, SHA256: s.SHA256, Open: s.Open, Node: s.Node, Epoch: s.Epoch})
	}
	return m
}

func manifestGaps(gaps []Gap) []ManifestGap {
	out := make([]ManifestGap, 0, len(gaps))
	for _, g := range gaps {
		out = append(out, ManifestGap{Start: formatTime(g.Start), End: formatTime(g.End)})
	}
	return out
}
