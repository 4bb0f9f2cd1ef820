// Package redisjournal is the alerts.Journal on Redis, for more than one
// Vigil node sharing one journal. It owns the Redis keys under its prefix:
// the change log (a Stream whose entry IDs are "<seq>-0"), alert state (one
// hash per alert), the list indexes (sorted sets), the audit log (a second
// Stream), and a local on-disk spool that keeps system events while Redis is
// unreachable. It does not own the Redis server or its persistence: run Redis
// with appendonly yes for changes to survive a Redis crash.
//
// Keys, with the default prefix "vigil:" (use a hash tag such as "{vigil}:"
// to keep them in one Redis Cluster slot):
//
//	vigil:seq            global change seq (INCR)
//	vigil:events         Stream; entry "<seq>-0" holds field c = change JSON
//	vigil:alert:<id>     hash: v version, j alert JSON, m index member, s seq of the last change,
//	                     ix JSON list of the indexes it is in
//	vigil:idx:raised     sorted set (score 0, by member): every alert
//	vigil:idx:open       sorted set: alerts not resolved
//	vigil:idx:camera:<c>, vigil:idx:site:<s>, vigil:idx:status:<s>, vigil:idx:severity:<s>
//	                     sorted sets per filter value; List walks the smallest
//	                     that holds every match and filters the rest
//	vigil:audit:seq      audit seq (INCR)
//	vigil:audit          Stream; entry "<seq>-0" holds field r = record JSON
//	vigil:audit:ids      hash: audit ID (Detail alerts.AuditIDKey) → its seq
//
// Index members are "<16 hex digits of raised_at>|<id>" so that lexical
// order is List order.
//
// Every append, and every AppendBatch however many changes it holds, is one
// Lua script call (version check, INCR seq, XADD, state, indexes), so
// versions are checked across nodes and seqs are unique and gapless. Each Journal reads the stream with XREAD BLOCK in one goroutine
// and fans changes out to its subscribers, so a subscriber sees the
// appends of every node in seq order.
//
// Outages: while Redis is unreachable, new alerts and the service's own
// changes go to the spool (fsynced bbolt file) and Append returns them with
// Seq 0 (see Spooled); a replayer appends them in spool order when Redis
// returns, and Redis assigns their seqs then. Audit records wait in the same
// spool, are never dropped from it, and are appended once per audit ID. A
// person's action fails with ErrUnavailable (HTTP 503). Degraded reports the state for /readyz.
package redisjournal

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"vigil/alerts"
)

var (
	_ alerts.Journal  = (*Journal)(nil)
	_ alerts.AuditLog = (*Journal)(nil)
	_ alerts.Trimmer  = (*Journal)(nil)

	_ alerts.BatchAppender = (*Journal)(nil)
)

var (
	// ErrUnavailable: Redis could not be reached and the change could not be
	// spooled (a person's action, or no spool). It comes inside an
	// *alerts.Error with alerts.CodeUnavailable, so the API answers 503;
	// the caller may retry.
	ErrUnavailable = errors.New("redis journal unavailable")
	// ErrClosed: the journal was closed.
	ErrClosed = errors.New("redis journal closed")
)

// Options configure a Journal.
type Options struct {
	Addr     string // host:port; required
	Username string
	Password string // never logged
	DB       int
	TLS      *tls.Config
	// StreamMaxLen bounds the change stream (XADD MAXLEN ~); Since below
	// what remains reports alerts.ErrTooOld. Default 1,000,000; negative
	// keeps everything.
	StreamMaxLen int64
	// KeyPrefix names every key; default "vigil:".
	KeyPrefix string
	// SpoolPath is the local spool file (bbolt) for system events while
	// Redis is unreachable; "" disables the spool, and appends then fail
	// with ErrUnavailable during an outage.
	SpoolPath string
	// SpoolMax bounds the spool; when full, the oldest spooled change is
	// dropped and counted (vigil_journal_spool_dropped_total). Later
	// spooled changes of an alert whose raise was dropped cannot be
	// replayed; they are dropped and counted too. Default 100,000.
	SpoolMax int
	// Registerer receives the journal's metrics; nil registers nothing.
	Registerer prometheus.Registerer
	// Logger; nil discards.
	Logger *slog.Logger
	// OnSpoolFull is called once each time the spool fills up (again after
	// it has drained), from the goroutine whose Append found it full; it
	// should return quickly. It may call Append (the app raises a
	// recording_failure-class health alert, which is spooled too).
	OnSpoolFull func()
	// DialTimeout bounds each connection attempt; default 2s.
	DialTimeout time.Duration
}

func (o *Options) validate() error {
	if o.Addr == "" {
		return errors.New("redisjournal: addr is required")
	}
	if o.StreamMaxLen == 0 {
		o.StreamMaxLen = 1_000_000
	}
	if o.KeyPrefix == "" {
		o.KeyPrefix = "vigil:"
	}
	if o.SpoolMax <= 0 {
		o.SpoolMax = 100_000
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.DialTimeout <= 0 {
		o.DialTimeout = 2 * time.Second
	}
	return nil
}

type keys struct {
	seq, events, raised, open, idxPrefix, auditSeq, audit, auditIDs, alertPrefix string
}

func newKeys(p string) keys {
	return keys{
		seq: p + "seq", events: p + "events", raised: p + "idx:raised", open: p + "idx:open", idxPrefix: p + "idx:",
		auditSeq: p + "audit:seq", audit: p + "audit", auditIDs: p + "audit:ids", alertPrefix: p + "alert:",
	}
}

func (k keys) alert(id string) string { return k.alertPrefix + id }

// indexes are the list indexes a has a member in: every alert, open ones,
// and one per camera, site, status and severity.
func (k keys) indexes(a alerts.Alert) []string {
	out := []string{k.raised}
	if a.Status.Open() {
		out = append(out, k.open)
	}
	for _, f := range [...]struct{ name, v string }{
		{"camera", a.Camera}, {"site", a.Site}, {"status", string(a.Status)}, {"severity", string(a.Severity)},
	} {
		if f.v != "" {
			out = append(out, k.index(f.name, f.v))
		}
	}
	return out
}

func (k keys) index(field, value string) string { return k.idxPrefix + field + ":" + value }

// listIndexes are the indexes that hold every alert matching f; List walks
// the smallest of them.
func (k keys) listIndexes(f alerts.Filter) []string {
	out := []string{k.raised}
	if f.Open || (f.Status != "" && f.Status.Open()) {
		out = append(out, k.open)
	}
	for _, c := range [...]struct{ name, v string }{
		{"camera", f.Camera}, {"site", f.Site}, {"status", string(f.Status)}, {"severity", string(f.Severity)},
	} {
		if c.v != "" {
			out = append(out, k.index(c.name, c.v))
		}
	}
	return out
}

// Journal is the Redis journal. Its methods are safe for concurrent use.
// New starts two goroutines (the stream reader that feeds subscribers and
// the spool replayer); Close stops them.
type Journal struct {
	opts   Options
	keys   keys
	rdb    *redis.Client // commands
	reader *redis.Client // XREAD BLOCK only, so it never holds up commands
	log    *slog.Logger
	spool  *spool // nil when disabled
	feed   *streamReader

	down atomic.Bool // the last Redis operation failed for want of Redis

	metrics metrics

	cancel context.CancelFunc
	wg     sync.WaitGroup
	closed atomic.Bool
}

type metrics struct {
	spoolEvents  prometheus.Gauge
	spoolDropped prometheus.Counter
	degraded     prometheus.Gauge
}

func (m metrics) unregister(reg prometheus.Registerer) {
	if reg != nil {
		for _, c := range []prometheus.Collector{m.spoolEvents, m.spoolDropped, m.degraded} {
			reg.Unregister(c)
		}
	}
}

// newMetrics registers on reg (nil: none); a second journal on one
// registry is an error, not a panic.
func newMetrics(reg prometheus.Registerer) (metrics, error) {
	m := metrics{
		spoolEvents: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "vigil_journal_spool_events",
			Help: "Changes waiting in the local spool for Redis to return.",
		}),
		spoolDropped: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "vigil_journal_spool_dropped_total",
			Help: "Spooled changes dropped because the spool was full (oldest first) or could not be replayed.",
		}),
		degraded: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "vigil_journal_degraded",
			Help: "1 while Redis is unreachable or spooled changes wait for replay.",
		}),
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{m.spoolEvents, m.spoolDropped, m.degraded} {
			if err := reg.Register(c); err != nil {
				return metrics{}, fmt.Errorf("redisjournal: register metrics: %w", err)
			}
		}
	}
	return m, nil
}

// New connects to Redis lazily: it succeeds while Redis is down (the
// journal is then Degraded). It opens the spool and starts the background
// loops, which run until Close.
func New(opts Options) (*Journal, error) {
	if err := opts.validate(); err != nil {
		return nil, err
	}
	base := redis.Options{
		Addr: opts.Addr, Username: opts.Username, Password: opts.Password, DB: opts.DB, TLSConfig: opts.TLS,
		DialTimeout: opts.DialTimeout, ReadTimeout: 5 * time.Second, WriteTimeout: 5 * time.Second,
		// No retries: a retried append whose first reply was lost would
		// report a conflict with itself, and retries keep callers waiting
		// in an outage. go-redis checks idle connections before reuse.
		MaxRetries: -1,
		// One dial per attempt: the spool, not the dialer, absorbs outages.
		DialerRetries: 1, DialerRetryTimeout: 10 * time.Millisecond,
		DisableIdentity: true,
	}
	m, err := newMetrics(opts.Registerer)
	if err != nil {
		return nil, err
	}
	readerOpts := base
	readerOpts.PoolSize = 1
	j := &Journal{
		opts:    opts,
		keys:    newKeys(opts.KeyPrefix),
		rdb:     redis.NewClient(&base),
		reader:  redis.NewClient(&readerOpts),
		log:     opts.Logger.With("component", "redisjournal"),
		metrics: m,
	}
	j.feed = newStreamReader(j)
	if opts.SpoolPath != "" {
		sp, err := openSpool(opts.SpoolPath, opts.SpoolMax)
		if err != nil {
			_ = j.rdb.Close()
			_ = j.reader.Close()
			j.metrics.unregister(opts.Registerer)
			return nil, err
		}
		j.spool = sp
		j.metrics.spoolEvents.Set(float64(sp.len()))
	}
	// The journal's lifetime is New…Close (alerts.Journal has no Run); its
	// loops get a context that Close cancels.
	ctx, cancel := context.WithCancel(context.Background())
	j.cancel = cancel
	startCtx, startCancel := context.WithTimeout(ctx, opts.DialTimeout)
	if last, err := j.LastSeq(startCtx); err == nil {
		j.feed.start(last)
	}
	startCancel()
	j.wg.Go(func() { j.feed.run(ctx) })
	if j.spool != nil {
		j.wg.Go(func() { j.replay(ctx) })
	}
	j.updateDegraded()
	return j, nil
}

// Degraded reports whether Redis is unreachable or spooled changes still
// wait for it; /readyz shows it.
func (j *Journal) Degraded() bool {
	return j.down.Load() || (j.spool != nil && j.spool.len() > 0)
}

func (j *Journal) updateDegraded() {
	v := 0.0
	if j.Degraded() {
		v = 1
	}
	j.metrics.degraded.Set(v)
}

// observe records whether a Redis operation found Redis reachable and
// returns err, marked ErrUnavailable when it did not.
func (j *Journal) observe(err error) error {
	switch {
	case err == nil || err == redis.Nil:
		if j.down.Swap(false) {
			j.log.Info("redis reachable again", "addr", j.opts.Addr)
			j.updateDegraded()
		}
		return err
	case isUnavailable(err):
		if !j.down.Swap(true) {
			j.log.Warn("redis unreachable", "addr", j.opts.Addr, "err", err)
			j.updateDegraded()
		}
		return unavailable("Redis unreachable", err)
	}
	// A reply error means Redis answered.
	if j.down.Swap(false) {
		j.updateDegraded()
	}
	return err
}

// unavailable is an *alerts.Error with CodeUnavailable (HTTP 503) whose
// chain holds ErrUnavailable and the cause. Its message names no address.
func unavailable(why string, cause error) error {
	err := fmt.Errorf("%w: %s", ErrUnavailable, why)
	if cause != nil {
		err = fmt.Errorf("%w: %s: %w", ErrUnavailable, why, cause)
	}
	return &alerts.Error{Code: alerts.CodeUnavailable, Message: "journal unavailable, try again", Err: err}
}

// isUnavailable tells errors of reaching Redis from answers of Redis.
func isUnavailable(err error) bool {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		// The caller's context, not Redis; but a timeout on the wire is an
		// outage, and go-redis reports those as net errors.
		return false
	}
	var rerr redis.Error
	if errors.As(err, &rerr) {
		msg := rerr.Error()
		return strings.HasPrefix(msg, "LOADING") || strings.HasPrefix(msg, "MASTERDOWN") ||
			strings.HasPrefix(msg, "TRYAGAIN") || strings.HasPrefix(msg, "CLUSTERDOWN")
	}
	var nerr net.Error
	return errors.As(err, &nerr) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, net.ErrClosed) || errors.Is(err, redis.ErrPoolTimeout) ||
		errors.Is(err, redis.ErrClosed) || strings.Contains(err.Error(), "connection reset") ||
		strings.Contains(err.Error(), "broken pipe")
}

// indexMember orders as List does: newest raised first when read in
// reverse, ties by ID descending.
func indexMember(at time.Time, id string) string {
	return timeKey(at) + "|" + id
}

func timeKey(at time.Time) string {
	return fmt.Sprintf("%016x", uint64(at.UnixNano())^(1<<63))
}

// Append implements alerts.Journal.
//
// While Redis is unreachable (or spooled changes still wait for it), a
// change that needs no version check from a person — a new alert
// (expectVersion 0) or a change the service makes itself (Origin
// alerts.OriginSystem: updated, ended, overdue, camera, auto-dispatch) — is written
// to the fsynced local spool and Append returns it with a nil error, its
// new version set, and Seq 0: it is durable, and its seq is assigned by
// Redis when the replayer appends it. Use Spooled to tell. A change by a
// person (a desk acknowledging, dispatching, resolving) fails with
// ErrUnavailable instead, so the desk sees a 503 and retries with the
// version it saw.
func (j *Journal) Append(ctx context.Context, c alerts.Change, expectVersion int64) (alerts.Change, error) {
	if c.Alert.ID == "" {
		return alerts.Change{}, errors.New("redisjournal: append: alert without ID")
	}
	if expectVersion < 0 {
		return alerts.Change{}, fmt.Errorf("redisjournal: append %s: negative expected version %d", c.Alert.ID, expectVersion)
	}
	if j.closed.Load() {
		return alerts.Change{}, fmt.Errorf("redisjournal: append %s: %w", c.Alert.ID, ErrClosed)
	}
	c.Seq = 0
	c.Alert.Version = expectVersion + 1
	canSpool := j.spool != nil && spoolable(c, expectVersion)
	if j.spool != nil {
		// Order: once anything is spooled, system changes queue behind it,
		// and a person's action waits until its alert has no spooled change.
		pending, alertPending := j.spool.pending(c.Alert.ID)
		switch {
		case canSpool && (pending > 0 || j.down.Load()):
			return j.toSpool(c, expectVersion)
		case !canSpool && alertPending > 0:
			return alerts.Change{}, fmt.Errorf("redisjournal: append %s: %w", c.Alert.ID,
				unavailable("changes of this alert wait in the spool for Redis", nil))
		}
	}
	out, err := j.appendRedis(ctx, c, expectVersion, false)
	if err != nil && canSpool && errors.Is(err, ErrUnavailable) {
		return j.toSpool(c, expectVersion)
	}
	if err != nil {
		return alerts.Change{}, fmt.Errorf("redisjournal: append %s: %w", c.Alert.ID, err)
	}
	return out, nil
}

// Spooled reports whether Append returned c from the local spool: durable,
// but not yet in Redis and without its seq.
func Spooled(c alerts.Change) bool { return c.Seq == 0 }

// spoolable: new alerts, and changes the service makes by itself (origin
// system: signal updates, ends, overdue marks, rule auto-dispatch). A
// person's action needs its version check answered now, whatever its By.
func spoolable(c alerts.Change, expectVersion int64) bool {
	return expectVersion == 0 || c.Origin == alerts.OriginSystem
}

// lifecycle kinds are handling steps; a spooled one that conflicts on
// replay is dropped rather than merged (the desk's later action wins).
func lifecycle(k alerts.ChangeKind) bool {
	switch k {
	case alerts.KindAcknowledged, alerts.KindDispatched, alerts.KindResolved:
		return true
	}
	return false
}

// AppendBatch implements alerts.BatchAppender: the whole batch is one call
// of the append script, so it costs one round trip (and, with appendfsync
// always, one fsync) however many changes it holds, and Redis applies all
// of it or none of it.
//
// Outages are handled as Append handles them, item by item. While Redis is
// unreachable or spooled changes still wait for it, new alerts and changes
// the service makes itself are spooled and returned with Seq 0 (see
// Spooled); a person's action fails with ErrUnavailable, and so does every
// later item of its alert. (Unlike Append, a person's action in a batch is
// not tried on Redis while the spool drains; the engine's batches hold only
// the service's own changes.) When the call itself fails for want of Redis,
// its spoolable items are spooled with a token of the call: if the call did
// run and only its reply was lost, the replayer finds the token on the
// alerts and does not apply the changes twice.
func (j *Journal) AppendBatch(ctx context.Context, items []alerts.BatchItem) ([]alerts.Change, []error) {
	out := make([]alerts.Change, len(items))
	errs := make([]error, len(items))
	if len(items) == 0 {
		return out, errs
	}
	if j.closed.Load() {
		for i, it := range items {
			errs[i] = fmt.Errorf("redisjournal: append %s: %w", it.Change.Alert.ID, ErrClosed)
		}
		return out, errs
	}
	b := batch{items: items, prepared: make([]alerts.Change, len(items)), out: out, errs: errs}
	for i, it := range items {
		c := it.Change
		c.Seq = 0
		c.Alert.Version = it.ExpectVersion + 1
		b.prepared[i] = c
		if c.Alert.ID == "" {
			errs[i] = errors.New("redisjournal: append: alert without ID")
			continue
		}
		b.valid = append(b.valid, i)
	}
	if j.spool != nil {
		if pending, _ := j.spool.pending(""); pending > 0 || j.down.Load() {
			j.spoolBatch(&b, "", nil)
			return out, errs
		}
	}
	token := ""
	if j.spool != nil {
		token = rand.Text()
	}
	run := make([]scriptItem, len(b.valid))
	for k, i := range b.valid {
		run[k] = scriptItem{c: b.prepared[i], expect: items[i].ExpectVersion}
	}
	cs, ierrs, err := j.runAppend(ctx, run, false, token)
	if err != nil && j.spool != nil && errors.Is(err, ErrUnavailable) {
		j.spoolBatch(&b, token, err)
		return out, errs
	}
	for k, i := range b.valid {
		id := b.prepared[i].Alert.ID
		switch {
		case err != nil:
			errs[i] = fmt.Errorf("redisjournal: append %s: %w", id, err)
		case ierrs[k] != nil:
			errs[i] = fmt.Errorf("redisjournal: append %s: %w", id, ierrs[k])
		default:
			out[i] = cs[k]
		}
	}
	return out, errs
}

// batch is an AppendBatch in progress.
type batch struct {
	items    []alerts.BatchItem
	prepared []alerts.Change // Seq 0, Version expect+1
	valid    []int           // the items with an alert ID
	out      []alerts.Change
	errs     []error
}

// spoolBatch spools the spoolable items of b in one spool transaction and
// fails the others with ErrUnavailable, and with them every later item of
// their alert. token marks a batch whose script call may have run.
func (j *Journal) spoolBatch(b *batch, token string, cause error) {
	failed := map[string]bool{}
	var entries []spooled
	var at []int
	for _, i := range b.valid {
		c, expect := b.prepared[i], b.items[i].ExpectVersion
		id := c.Alert.ID
		switch {
		case failed[id]:
			b.errs[i] = fmt.Errorf("redisjournal: append %s: %w", id,
				unavailable("an earlier change of this alert in the batch was not accepted", cause))
		case expect < 0:
			b.errs[i] = fmt.Errorf("redisjournal: append %s: negative expected version %d", id, expect)
			failed[id] = true
		case !spoolable(c, expect):
			b.errs[i] = fmt.Errorf("redisjournal: append %s: %w", id,
				unavailable("Redis unreachable or changes wait in the spool", cause))
			failed[id] = true
		default:
			entries = append(entries, spooled{Change: c, Expect: expect, Batch: token})
			at = append(at, i)
		}
	}
	if len(entries) == 0 {
		return
	}
	if err := j.spoolEntries(entries); err != nil {
		for _, i := range at {
			b.errs[i] = fmt.Errorf("redisjournal: append %s: spool: %w", b.prepared[i].Alert.ID, err)
		}
		return
	}
	for _, i := range at {
		b.out[i] = b.prepared[i]
	}
}

// scriptItem is one change for the append script: Seq 0, Version expect+1.
type scriptItem struct {
	c      alerts.Change
	expect int64
}

// appendRedis runs the append script on one change. Errors are alerts
// sentinels, *alerts.ConflictError, or wrap ErrUnavailable.
func (j *Journal) appendRedis(ctx context.Context, c alerts.Change, expectVersion int64, replay bool) (alerts.Change, error) {
	cs, errs, err := j.runAppend(ctx, []scriptItem{{c: c, expect: expectVersion}}, replay, "")
	if err != nil {
		return alerts.Change{}, err
	}
	return cs[0], errs[0]
}

// runAppend runs the append script once on items and returns one change
// and one error per item (alerts sentinels or *alerts.ConflictError). err
// is a failure of the call as a whole (wrapping ErrUnavailable when Redis
// could not be reached); the script then ran entirely or not at all.
func (j *Journal) runAppend(ctx context.Context, items []scriptItem, replay bool, token string) ([]alerts.Change, []error, error) {
	maxLen := j.opts.StreamMaxLen
	if maxLen < 0 {
		maxLen = 0
	}
	dup := "0"
	if replay {
		dup = "1"
	}
	k := j.keys
	keys := make([]string, 2, 2+len(items)*6)
	keys[0], keys[1] = k.seq, k.events
	args := make([]any, 3, 3+len(items)*5)
	args[0], args[1], args[2] = maxLen, dup, token
	for _, it := range items {
		alertJSON, err := json.Marshal(it.c.Alert)
		if err != nil {
			return nil, nil, fmt.Errorf("encode alert %s: %w", it.c.Alert.ID, err)
		}
		changeJSON, err := json.Marshal(it.c.Logged())
		if err != nil {
			return nil, nil, fmt.Errorf("encode change of %s: %w", it.c.Alert.ID, err)
		}
		ix := k.indexes(it.c.Alert)
		keys = append(keys, k.alert(it.c.Alert.ID))
		keys = append(keys, ix...)
		args = append(args, len(ix), it.expect, alertJSON, changeJSON, indexMember(it.c.Alert.RaisedAt, it.c.Alert.ID))
	}
	res, err := appendScript.Run(ctx, j.rdb, keys, args...).Slice()
	if err = j.observe(err); err != nil {
		return nil, nil, err
	}
	if len(res) != len(items) {
		return nil, nil, fmt.Errorf("append script: %d replies for %d changes", len(res), len(items))
	}
	out := make([]alerts.Change, len(items))
	errs := make([]error, len(items))
	for i, r := range res {
		out[i], errs[i] = decodeReply(items[i], r)
	}
	return out, errs, nil
}

// decodeReply turns one entry of the append script's reply into the stored
// change or its error.
func decodeReply(it scriptItem, r any) (alerts.Change, error) {
	res, _ := r.([]any)
	if len(res) == 0 {
		return alerts.Change{}, fmt.Errorf("append script: unexpected reply %v", r)
	}
	c := it.c
	switch res[0] {
	case "ok", "dup":
		seq, _ := res[1].(int64)
		c.Seq = uint64(seq)
		return c, nil
	case "notfound":
		return alerts.Change{}, alerts.ErrNotFound
	case "exists":
		return alerts.Change{}, alerts.ErrExists
	case "bad":
		return alerts.Change{}, fmt.Errorf("negative expected version %d", it.expect)
	case "conflict":
		var cur alerts.Alert
		s, _ := res[1].(string)
		if err := json.Unmarshal([]byte(s), &cur); err != nil {
			return alerts.Change{}, fmt.Errorf("decode current alert: %w", err)
		}
		return alerts.Change{}, &alerts.ConflictError{Current: cur}
	}
	return alerts.Change{}, fmt.Errorf("append script: unexpected reply %v", res)
}

// Get implements alerts.Journal.
func (j *Journal) Get(ctx context.Context, id string) (alerts.Alert, error) {
	s, err := j.rdb.HGet(ctx, j.keys.alert(id), "j").Result()
	if err = j.observe(err); err == redis.Nil {
		return alerts.Alert{}, fmt.Errorf("redisjournal: get %s: %w", id, alerts.ErrNotFound)
	} else if err != nil {
		return alerts.Alert{}, fmt.Errorf("redisjournal: get %s: %w", id, err)
	}
	var a alerts.Alert
	if err := json.Unmarshal([]byte(s), &a); err != nil {
		return alerts.Alert{}, fmt.Errorf("redisjournal: get %s: decode: %w", id, err)
	}
	return a, nil
}

// listBatch is how many index entries List reads per round trip.
const listBatch = 256

// List implements alerts.Journal. It walks the smallest index that holds
// every possible match (all alerts, open ones, or one camera, site, status
// or severity) newest first, in batches bounded by Since, Until and the
// cursor, and filters each alert with Filter.Match.
func (j *Journal) List(ctx context.Context, f alerts.Filter) ([]alerts.Alert, string, error) {
	limit := f.PageLimit()
	maxBound := "+"
	if !f.Until.IsZero() {
		maxBound = "(" + timeKey(f.Until)
	}
	if f.Cursor != "" {
		p, err := alerts.DecodeCursor(f.Cursor)
		if err != nil {
			return nil, "", fmt.Errorf("redisjournal: list: %w", err)
		}
		m := indexMember(p.RaisedAt, p.ID)
		if maxBound == "+" || m < maxBound[1:] {
			maxBound = "(" + m
		}
	}
	minBound := "-"
	if !f.Since.IsZero() {
		minBound = "[" + timeKey(f.Since)
	}
	index, err := j.smallestIndex(ctx, j.keys.listIndexes(f))
	if err != nil {
		return nil, "", fmt.Errorf("redisjournal: list: %w", err)
	}
	out := []alerts.Alert{}
	for {
		members, err := j.rdb.ZRevRangeByLex(ctx, index, &redis.ZRangeBy{Max: maxBound, Min: minBound, Count: listBatch}).Result()
		if err = j.observe(err); err != nil {
			return nil, "", fmt.Errorf("redisjournal: list: %w", err)
		}
		if len(members) == 0 {
			return out, "", nil
		}
		cmds := make([]*redis.StringCmd, len(members))
		_, err = j.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
			for i, m := range members {
				_, id, _ := strings.Cut(m, "|")
				cmds[i] = p.HGet(ctx, j.keys.alert(id), "j")
			}
			return nil
		})
		if err != nil && err != redis.Nil {
			return nil, "", fmt.Errorf("redisjournal: list: %w", j.observe(err))
		}
		for _, cmd := range cmds {
			s, err := cmd.Result()
			if err == redis.Nil {
				continue // removed between the two reads
			} else if err != nil {
				return nil, "", fmt.Errorf("redisjournal: list: %w", err)
			}
			var a alerts.Alert
			if err := json.Unmarshal([]byte(s), &a); err != nil {
				return nil, "", fmt.Errorf("redisjournal: list: decode: %w", err)
			}
			if !f.Match(a) {
				continue
			}
			if len(out) == limit {
				last := out[len(out)-1]
				return out, alerts.EncodeCursor(alerts.ListPosition{RaisedAt: last.RaisedAt, ID: last.ID}), nil
			}
			out = append(out, a)
		}
		if len(members) < listBatch {
			return out, "", nil
		}
		maxBound = "(" + members[len(members)-1]
	}
}

// smallestIndex returns the index with the fewest members: the fewest
// alerts to read and filter.
func (j *Journal) smallestIndex(ctx context.Context, idx []string) (string, error) {
	if len(idx) == 1 {
		return idx[0], nil
	}
	cmds := make([]*redis.IntCmd, len(idx))
	_, err := j.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, k := range idx {
			cmds[i] = p.ZCard(ctx, k)
		}
		return nil
	})
	if err = j.observe(err); err != nil {
		return "", err
	}
	best := 0
	for i, c := range cmds {
		if c.Val() < cmds[best].Val() {
			best = i
		}
	}
	return idx[best], nil
}

func parseSeq(id string) (uint64, error) {
	s, _, _ := strings.Cut(id, "-")
	return strconv.ParseUint(s, 10, 64)
}

func streamID(seq uint64) string { return strconv.FormatUint(seq, 10) + "-0" }

func decodeChange(m redis.XMessage) (alerts.Change, error) {
	seq, err := parseSeq(m.ID)
	if err != nil {
		return alerts.Change{}, fmt.Errorf("entry %s: %w", m.ID, err)
	}
	s, _ := m.Values["c"].(string)
	var c alerts.Change
	if err := json.Unmarshal([]byte(s), &c); err != nil {
		return alerts.Change{}, fmt.Errorf("entry %s: %w", m.ID, err)
	}
	c.Seq = seq
	return c, nil
}

// Since implements alerts.Journal. A limit of 0 or less means 1000. The
// first retained entry, the seq counter and the page are read in one
// MULTI, so a concurrent trim cannot hide a gap.
func (j *Journal) Since(ctx context.Context, seq uint64, limit int) ([]alerts.Change, error) {
	if limit <= 0 {
		limit = 1000
	}
	var first, page *redis.XMessageSliceCmd
	var last *redis.StringCmd
	_, err := j.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		first = p.XRangeN(ctx, j.keys.events, "-", "+", 1)
		last = p.Get(ctx, j.keys.seq)
		page = p.XRangeN(ctx, j.keys.events, "("+streamID(seq), "+", int64(limit))
		return nil
	})
	if err != nil && err != redis.Nil {
		return nil, fmt.Errorf("redisjournal: since %d: %w", seq, j.observe(err))
	}
	j.observe(nil)
	for _, c := range []redis.Cmder{first, page} {
		if err := c.Err(); err != nil && err != redis.Nil {
			return nil, fmt.Errorf("redisjournal: since %d: %w", seq, err)
		}
	}
	lastSeq, _ := strconv.ParseUint(last.Val(), 10, 64)
	firstKept := lastSeq + 1
	if f := first.Val(); len(f) > 0 {
		if firstKept, err = parseSeq(f[0].ID); err != nil {
			return nil, fmt.Errorf("redisjournal: since %d: %w", seq, err)
		}
	}
	if seq+1 < firstKept && seq < lastSeq {
		return nil, fmt.Errorf("redisjournal: since %d (oldest kept %d): %w", seq, firstKept, alerts.ErrTooOld)
	}
	out := make([]alerts.Change, 0, len(page.Val()))
	for _, m := range page.Val() {
		c, err := decodeChange(m)
		if err != nil {
			return nil, fmt.Errorf("redisjournal: since %d: %w", seq, err)
		}
		out = append(out, c)
	}
	return out, nil
}

// LastSeq implements alerts.Journal.
func (j *Journal) LastSeq(ctx context.Context) (uint64, error) {
	s, err := j.rdb.Get(ctx, j.keys.seq).Uint64()
	if err = j.observe(err); err == redis.Nil {
		return 0, nil
	} else if err != nil {
		return 0, fmt.Errorf("redisjournal: last seq: %w", err)
	}
	return s, nil
}

// TrimBefore implements alerts.Trimmer: changes with seq < seq leave the
// stream; alert state stays.
func (j *Journal) TrimBefore(ctx context.Context, seq uint64) error {
	err := j.rdb.XTrimMinID(ctx, j.keys.events, streamID(seq)).Err()
	if err = j.observe(err); err != nil {
		return fmt.Errorf("redisjournal: trim before %d: %w", seq, err)
	}
	return nil
}

// Audit implements alerts.AuditLog; the record's seq is assigned by Redis.
// While Redis is unreachable (or the spool holds anything) the record waits
// in the spool, never dropped from it when it is full, and Audit returns
// nil once it is there: the replayer appends it, once per audit ID
// (Detail alerts.AuditIDKey), so a replay cut short by a crash does not
// store it twice.
func (j *Journal) Audit(ctx context.Context, r alerts.AuditRecord) error {
	r.Seq = 0
	if j.closed.Load() {
		return fmt.Errorf("redisjournal: audit %s %s: %w", r.Action, r.Object, ErrClosed)
	}
	if j.spool != nil && (j.spool.len() > 0 || j.down.Load()) {
		// Behind what waits in the spool, so the log keeps the order.
		return j.spoolAudit(r)
	}
	err := j.auditRedis(ctx, r)
	if err != nil && j.spool != nil && errors.Is(err, ErrUnavailable) {
		return j.spoolAudit(r)
	}
	return err
}

// auditRedis appends r to the audit stream, once per audit ID.
func (j *Journal) auditRedis(ctx context.Context, r alerts.AuditRecord) error {
	raw, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("redisjournal: audit %s %s: %w", r.Action, r.Object, err)
	}
	err = auditScript.Run(ctx, j.rdb, []string{j.keys.auditSeq, j.keys.audit, j.keys.auditIDs}, raw, r.Detail[alerts.AuditIDKey]).Err()
	if err = j.observe(err); err != nil {
		return fmt.Errorf("redisjournal: audit %s %s: %w", r.Action, r.Object, err)
	}
	return nil
}

// spoolAudit keeps r in the spool until Redis takes it.
func (j *Journal) spoolAudit(r alerts.AuditRecord) error {
	if err := j.spoolEntries([]spooled{{Audit: &r}}); err != nil {
		return fmt.Errorf("redisjournal: audit %s %s: spool: %w", r.Action, r.Object, err)
	}
	return nil
}

// AuditSince implements alerts.AuditLog. A limit of 0 or less means 1000.
func (j *Journal) AuditSince(ctx context.Context, seq uint64, limit int) ([]alerts.AuditRecord, error) {
	if limit <= 0 {
		limit = 1000
	}
	msgs, err := j.rdb.XRangeN(ctx, j.keys.audit, "("+streamID(seq), "+", int64(limit)).Result()
	if err = j.observe(err); err != nil {
		return nil, fmt.Errorf("redisjournal: audit since %d: %w", seq, err)
	}
	out := make([]alerts.AuditRecord, 0, len(msgs))
	for _, m := range msgs {
		s, _ := m.Values["r"].(string)
		var r alerts.AuditRecord
		if err := json.Unmarshal([]byte(s), &r); err != nil {
			return nil, fmt.Errorf("redisjournal: audit since %d: entry %s: %w", seq, m.ID, err)
		}
		if r.Seq, err = parseSeq(m.ID); err != nil {
			return nil, fmt.Errorf("redisjournal: audit since %d: %w", seq, err)
		}
		out = append(out, r)
	}
	return out, nil
}

// Close stops the background loops, ends every subscription (with a nil
// Err) and closes the connections and the spool. Spooled changes stay in
// the spool file for the next New.
func (j *Journal) Close() error {
	if j.closed.Swap(true) {
		return nil
	}
	j.cancel()
	// Closing the reader interrupts a blocked XREAD at once.
	err := j.reader.Close()
	j.wg.Wait()
	j.feed.close()
	err = errors.Join(err, j.rdb.Close())
	if j.spool != nil {
		err = errors.Join(err, j.spool.close())
	}
	return err
}
