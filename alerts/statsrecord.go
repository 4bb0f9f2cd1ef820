package alerts

import (
	"context"
	"encoding/binary"
	"errors"
	"time"
)

// StatsRecord is what Stats needs of an alert: its times, outcome and
// dimensions, without history, detail or notes. A journal that keeps one
// beside each alert (StatsSource) answers Stats without decoding whole
// alerts: 30 days of 100 cameras are 150,000 of them.
type StatsRecord struct {
	RaisedAt                                   time.Time
	AckDeadline, ResolveDeadline               time.Time // zero: none
	AcknowledgedAt, DispatchedAt, ResolvedAt   time.Time // zero: not yet
	AckBySystem, FalseAlarm, Feedback, Overdue bool
	Supervised                                 bool
	FollowUp                                   int8 // 0 none, 1 satisfied, -1 not satisfied
	Escalations                                int
	Status                                     Status
	Severity                                   Severity
	Type                                       Type
	Site, Grid, Unit                           string
}

// StatsRecordOf is a's StatsRecord.
func StatsRecordOf(a *Alert) StatsRecord {
	t := func(p *time.Time) time.Time {
		if p == nil {
			return time.Time{}
		}
		return *p
	}
	r := StatsRecord{
		RaisedAt: a.RaisedAt, AckDeadline: t(a.AckDeadline), ResolveDeadline: t(a.ResolveDeadline),
		AcknowledgedAt: t(a.AcknowledgedAt), DispatchedAt: t(a.DispatchedAt), ResolvedAt: t(a.ResolvedAt),
		AckBySystem: a.AcknowledgedAt != nil && ackBySystem(a),
		FalseAlarm:  a.FalseAlarm, Feedback: a.Feedback != "", Overdue: a.Overdue,
		Supervised: a.Supervision != nil, Escalations: len(a.Escalations),
		Status: a.Status, Severity: a.Severity, Type: a.Type, Site: a.Site, Grid: a.Grid, Unit: a.Unit,
	}
	if a.FollowUp != nil {
		r.FollowUp = -1
		if a.FollowUp.Satisfied {
			r.FollowUp = 1
		}
	}
	return r
}

// ackBySystem reports whether the system acknowledged a (a rule's
// auto-dispatch), by the origin of the change that did. An alert stored
// before the origin was kept was the system's when its acknowledger is
// named System, as Change.UnmarshalJSON reads a change without origin.
func ackBySystem(a *Alert) bool {
	if a.AckOrigin != "" {
		return a.AckOrigin == OriginSystem
	}
	return a.AcknowledgedBy == System
}

// StatsSource is implemented by journals that keep each alert's
// StatsRecord (boltjournal); Stats reads those instead of whole alerts.
type StatsSource interface {
	// StatsRecords calls fn with the record of every alert raised in
	// [from, to), in raised order, until fn returns an error.
	StatsRecords(ctx context.Context, from, to time.Time, fn func(*StatsRecord) error) error
}

const statsRecordVersion = 1

// AppendBinary appends r's binary form (for a journal to store) to b.
func (r *StatsRecord) AppendBinary(b []byte) ([]byte, error) {
	b = append(b, statsRecordVersion)
	for _, t := range []time.Time{r.RaisedAt, r.AckDeadline, r.ResolveDeadline, r.AcknowledgedAt, r.DispatchedAt, r.ResolvedAt} {
		var ns int64
		if !t.IsZero() {
			ns = t.UnixNano()
		}
		b = binary.AppendVarint(b, ns)
	}
	var flags byte
	for i, f := range []bool{r.AckBySystem, r.FalseAlarm, r.Feedback, r.Overdue, r.Supervised} {
		if f {
			flags |= 1 << i
		}
	}
	b = append(b, flags, byte(r.FollowUp))
	b = binary.AppendUvarint(b, uint64(r.Escalations))
	for _, s := range []string{string(r.Status), string(r.Severity), string(r.Type), r.Site, r.Grid, r.Unit} {
		b = binary.AppendUvarint(b, uint64(len(s)))
		b = append(b, s...)
	}
	return b, nil
}

var errStatsRecord = errors.New("stats record: malformed")

// UnmarshalBinary decodes what AppendBinary wrote.
func (r *StatsRecord) UnmarshalBinary(b []byte) error {
	if len(b) == 0 || b[0] != statsRecordVersion {
		return errStatsRecord
	}
	b = b[1:]
	for _, t := range []*time.Time{&r.RaisedAt, &r.AckDeadline, &r.ResolveDeadline, &r.AcknowledgedAt, &r.DispatchedAt, &r.ResolvedAt} {
		ns, n := binary.Varint(b)
		if n <= 0 {
			return errStatsRecord
		}
		b = b[n:]
		if ns == 0 {
			*t = time.Time{}
		} else {
			*t = time.Unix(0, ns).UTC()
		}
	}
	if len(b) < 2 {
		return errStatsRecord
	}
	flags := b[0]
	r.AckBySystem, r.FalseAlarm, r.Feedback, r.Overdue, r.Supervised = flags&1 != 0, flags&2 != 0, flags&4 != 0, flags&8 != 0, flags&16 != 0
	r.FollowUp = int8(b[1])
	b = b[2:]
	esc, n := binary.Uvarint(b)
	if n <= 0 {
		return errStatsRecord
	}
	r.Escalations = int(esc)
	b = b[n:]
	// A record decoded into the one before it keeps that one's strings
	// where they are equal: a scan of 150,000 records allocates almost
	// nothing for its handful of sites, units and types.
	status, severity, typ := string(r.Status), string(r.Severity), string(r.Type)
	for _, dst := range []*string{&status, &severity, &typ, &r.Site, &r.Grid, &r.Unit} {
		l, n := binary.Uvarint(b)
		if n <= 0 || uint64(len(b)-n) < l {
			return errStatsRecord
		}
		if v := b[n : n+int(l)]; string(v) != *dst {
			*dst = string(v)
		}
		b = b[n+int(l):]
	}
	r.Status, r.Severity, r.Type = Status(status), Severity(severity), Type(typ)
	return nil
}
