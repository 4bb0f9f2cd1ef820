package alerts

// MergeSystemChange lays the signal side of a change the service made by
// itself (count, last seen, signal, end, overdue flags, clip end) over cur,
// the alert as stored, keeping the desk's handling fields. A journal uses
// it to replay such a change (spooled during an outage) onto an alert that
// the desk changed meanwhile. A resolved alert never changes again: cur is
// returned as it is. Counts and overdue flags only grow.
func MergeSystemChange(cur, sys Alert) Alert {
	if !cur.Status.Open() {
		return cur
	}
	out := cur
	out.Signal = sys.Signal
	out.EndedAt = sys.EndedAt
	if sys.LastSeenAt.After(out.LastSeenAt) {
		out.LastSeenAt = sys.LastSeenAt
	}
	out.Count = max(out.Count, sys.Count)
	out.Overdue = out.Overdue || sys.Overdue
	out.OverdueAck = out.OverdueAck || sys.OverdueAck
	out.OverdueResolve = out.OverdueResolve || sys.OverdueResolve
	if sys.Clip != nil && out.Clip != nil {
		clip := *out.Clip
		clip.End = sys.Clip.End
		out.Clip = &clip
	} else if out.Clip == nil {
		out.Clip = sys.Clip
	}
	return out
}
