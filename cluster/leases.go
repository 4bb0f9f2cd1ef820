package cluster

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// Defaults of LeaseOptions.
const (
	DefaultLeaseTTL     = 10 * time.Second
	DefaultLeaseRenew   = 3 * time.Second
	DefaultLeaseTick    = time.Second
	DefaultHandoverWait = 10 * time.Second
)

// A lease is one Redis string per camera, "<epoch> <node>", with a TTL; a
// second key per camera counts epochs, so that each new holder gets a
// higher one than every holder before it. Every change is one script:
// compare the value, then set, so that a holder that lost its lease can
// neither renew it nor hand it on (fencing).

// takeScript gives the lease to ARGV[1] with a new epoch when it is free or
// still holds exactly ARGV[3] (a handover by its holder, or a lease whose
// holder's node is gone). ARGV[4] is an epoch the new one must exceed (a
// Redis that lost its data restarts the counter). Returns {epoch, ""} or
// {0, current value}.
var takeScript = redis.NewScript(`
local cur = redis.call('GET', KEYS[1])
if cur and cur ~= ARGV[3] then return {0, cur} end
local e = redis.call('INCR', KEYS[2])
local floor = tonumber(ARGV[4])
if e <= floor then e = floor + 1; redis.call('SET', KEYS[2], e) end
redis.call('SET', KEYS[1], e .. ' ' .. ARGV[1], 'PX', ARGV[2])
return {e, ''}
`)

// renewScript extends the lease ARGV[1] ("<epoch> <node>") by ARGV[2] ms.
// A lease that expired with nobody taking it since is taken again, with
// the same epoch when no other holder came between, else a new one.
// Returns {epoch, ""} or {0, current value} when someone else holds it.
var renewScript = redis.NewScript(`
local cur = redis.call('GET', KEYS[1])
local mine = tonumber(ARGV[4])
if cur == ARGV[1] then redis.call('PEXPIRE', KEYS[1], ARGV[2]); return {mine, ''} end
if cur then return {0, cur} end
local e = tonumber(redis.call('GET', KEYS[2]) or '0')
if e > mine then e = redis.call('INCR', KEYS[2]) else e = mine; redis.call('SET', KEYS[2], mine) end
redis.call('SET', KEYS[1], e .. ' ' .. ARGV[3], 'PX', ARGV[2])
return {e, ''}
`)

// releaseScript deletes the lease if it is still ARGV[1].
var releaseScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
`)

// ErrLeaseLost is returned when another node holds the lease.
var ErrLeaseLost = errors.New("cluster: the lease is held by another node")

// LeaseOptions configure Leases. Client, Node, Cameras and Nodes are
// required.
type LeaseOptions struct {
	Client    redis.UniversalClient
	KeyPrefix string // default "vigil:", as the Registry's
	Node      string // this node's ID
	// Zone is this node's zone: a node that starts while Redis cannot be
	// reached records every camera of its zone and every camera without
	// one, unfenced (epoch 0), until Redis answers and says who has them.
	Zone string
	// Cameras lists the cameras to share out (the enabled ones of the
	// registry); Nodes the live nodes (Registry.List).
	Cameras func() []Camera
	Nodes   func(context.Context) ([]Node, error)
	// Acquired is called when this node starts to hold camera, and again
	// with a new epoch when the lease had to be taken again (it expired
	// during a Redis outage). Lost is called when it stops holding it:
	// another node took it, it was handed over and the new holder records,
	// or it left the registry. Both are called from Run's goroutine.
	Acquired func(camera string, epoch int64)
	Lost     func(camera string)
	// Changed, when set, is called once after each tick (and after the
	// provisional start) in which Acquired or Lost was called, from Run's
	// goroutine: a node taking 200 cameras at start applies them once,
	// not once per camera.
	Changed func()
	TTL     time.Duration // default DefaultLeaseTTL
	Renew   time.Duration // default DefaultLeaseRenew
	Tick    time.Duration // how often the assignment is checked; default DefaultLeaseTick
	// HandoverWait bounds how long a camera handed to another node keeps
	// recording here while the new holder does not yet list it as
	// recording (Node.Recording). Default DefaultHandoverWait.
	HandoverWait time.Duration
	Now          func() time.Time
	Logger       *slog.Logger
}

// Leases holds this node's share of the cameras: each tick it lists the
// live nodes, computes the assignment (Assign), takes the free leases of
// the cameras it should hold, renews the ones it holds and hands over the
// ones that should move to another node.
type Leases struct {
	o LeaseOptions

	mu   sync.Mutex
	held map[string]*lease

	changed bool // Acquired or Lost called since the last Changed; Run's goroutine only
}

// lease is a camera this node holds.
type lease struct {
	epoch    int64
	renewed  time.Time
	handedTo string // set once handed over: recording goes on until handedTo records
	handedAt time.Time
}

// NewLeases validates o and returns Leases; Run takes and keeps them.
func NewLeases(o LeaseOptions) (*Leases, error) {
	if o.Client == nil || o.Node == "" || o.Cameras == nil || o.Nodes == nil {
		return nil, errors.New("cluster: leases need a Redis client, this node's ID, the cameras and the nodes")
	}
	if strings.ContainsAny(o.Node, " ") {
		return nil, fmt.Errorf("cluster: node ID %q has a space", o.Node)
	}
	if o.KeyPrefix == "" {
		o.KeyPrefix = "vigil:"
	}
	if o.TTL <= 0 {
		o.TTL = DefaultLeaseTTL
	}
	if o.Renew <= 0 || o.Renew >= o.TTL {
		o.Renew = min(DefaultLeaseRenew, o.TTL/3)
	}
	if o.Tick <= 0 {
		o.Tick = min(DefaultLeaseTick, o.Renew)
	}
	if o.HandoverWait <= 0 {
		o.HandoverWait = DefaultHandoverWait
	}
	if o.Acquired == nil {
		o.Acquired = func(string, int64) {}
	}
	if o.Lost == nil {
		o.Lost = func(string) {}
	}
	if o.Changed == nil {
		o.Changed = func() {}
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	l := &Leases{o: o, held: map[string]*lease{}}
	acquired, lost := o.Acquired, o.Lost
	l.o.Acquired = func(camera string, epoch int64) { l.changed = true; acquired(camera, epoch) }
	l.o.Lost = func(camera string) { l.changed = true; lost(camera) }
	return l, nil
}

// settle calls Changed when the held cameras changed since it last did.
func (l *Leases) settle() {
	if l.changed {
		l.changed = false
		l.o.Changed()
	}
}

func (l *Leases) leaseKey(camera string) string { return l.o.KeyPrefix + "lease:" + camera }
func (l *Leases) epochKey(camera string) string { return l.o.KeyPrefix + "lease-epoch:" + camera }

// parseLease splits a lease value "<epoch> <node>".
func parseLease(v string) (node string, epoch int64, ok bool) {
	e, n, found := strings.Cut(v, " ")
	if !found {
		return "", 0, false
	}
	epoch, err := strconv.ParseInt(e, 10, 64)
	return n, epoch, err == nil
}

func leaseValue(node string, epoch int64) string { return strconv.FormatInt(epoch, 10) + " " + node }

// Holder returns the node holding camera's lease and its epoch; node is ""
// when nobody holds it. err is set only when Redis could not be asked.
func (l *Leases) Holder(ctx context.Context, camera string) (node string, epoch int64, err error) {
	v, err := l.o.Client.Get(ctx, l.leaseKey(camera)).Result()
	if errors.Is(err, redis.Nil) {
		return "", 0, nil
	}
	if err != nil {
		return "", 0, fmt.Errorf("cluster: lease of %s: %w", camera, err)
	}
	node, epoch, _ = parseLease(v)
	return node, epoch, nil
}

// Held returns the cameras this node holds, sorted, with those handed
// over but still recording here.
func (l *Leases) Held() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]string, 0, len(l.held))
	for c := range l.held {
		out = append(out, c)
	}
	slices.Sort(out)
	return out
}

// take runs takeScript: camera to node, if the lease is free or still
// expected.
func (l *Leases) take(ctx context.Context, camera, node, expected string, floor int64) (int64, string, error) {
	res, err := takeScript.Run(ctx, l.o.Client, []string{l.leaseKey(camera), l.epochKey(camera)},
		node, l.o.TTL.Milliseconds(), expected, floor).Slice()
	if err != nil {
		return 0, "", fmt.Errorf("cluster: take the lease of %s: %w", camera, err)
	}
	return scriptResult(res)
}

// renewal is a held lease to renew: its camera and the epoch held.
type renewal struct {
	camera string
	epoch  int64
}

// renew renews one lease: renewBatch of one (the one path renewals take).
func (l *Leases) renew(ctx context.Context, camera string, epoch int64) (int64, error) {
	epochs, errs := l.renewBatch(ctx, []renewal{{camera, epoch}})
	return epochs[0], errs[0]
}

// renewBatch runs renewScript for every lease of due in one round trip (a
// pipeline): each lease is still compared and extended on its own, as
// one renewal would. It returns the epoch each holds now, or an error
// per lease: ErrLeaseLost when another node holds it, else why Redis
// could not renew it.
func (l *Leases) renewBatch(ctx context.Context, due []renewal) ([]int64, []error) {
	epochs := make([]int64, len(due))
	errs := make([]error, len(due))
	cmds := make([]*redis.Cmd, len(due))
	run := func(idx []int) {
		// The pipeline's own error is each command's: read per command.
		_, _ = l.o.Client.Pipelined(ctx, func(p redis.Pipeliner) error {
			for _, i := range idx {
				r := due[i]
				cmds[i] = renewScript.EvalSha(ctx, p, []string{l.leaseKey(r.camera), l.epochKey(r.camera)},
					leaseValue(l.o.Node, r.epoch), l.o.TTL.Milliseconds(), l.o.Node, r.epoch)
			}
			return nil
		})
	}
	all := make([]int, len(due))
	for i := range all {
		all[i] = i
	}
	run(all)
	// A Redis that restarted or flushed its scripts answers NOSCRIPT:
	// load the script and send those again (only those: a renewal that
	// ran must not run twice).
	var again []int
	for i, c := range cmds {
		if redis.HasErrorPrefix(c.Err(), "NOSCRIPT") {
			again = append(again, i)
		}
	}
	if len(again) > 0 {
		if err := renewScript.Load(ctx, l.o.Client).Err(); err != nil {
			for _, i := range again {
				cmds[i].SetErr(err)
			}
		} else {
			run(again)
		}
	}
	for i, c := range cmds {
		camera := due[i].camera
		res, err := c.Slice()
		if err != nil {
			errs[i] = fmt.Errorf("cluster: renew the lease of %s: %w", camera, err)
			continue
		}
		e, cur, err := scriptResult(res)
		switch {
		case err != nil:
			errs[i] = fmt.Errorf("cluster: renew the lease of %s: %w", camera, err)
		case e == 0:
			errs[i] = fmt.Errorf("%w (%s: %q)", ErrLeaseLost, camera, cur)
		default:
			epochs[i] = e
		}
	}
	return epochs, errs
}

func (l *Leases) release(ctx context.Context, camera string, epoch int64) error {
	err := releaseScript.Run(ctx, l.o.Client, []string{l.leaseKey(camera)}, leaseValue(l.o.Node, epoch)).Err()
	if err != nil {
		return fmt.Errorf("cluster: release the lease of %s: %w", camera, err)
	}
	return nil
}

func scriptResult(res []any) (int64, string, error) {
	if len(res) != 2 {
		return 0, "", fmt.Errorf("cluster: lease script answered %v", res)
	}
	e, _ := res[0].(int64)
	cur, _ := res[1].(string)
	return e, cur, nil
}

// Run keeps this node's leases until ctx ends, then releases them so that
// the next choice takes them at once. While Redis cannot be reached it
// keeps every camera it holds and takes no new one.
func (l *Leases) Run(ctx context.Context) error {
	t := time.NewTicker(l.o.Tick)
	defer t.Stop()
	down, reached := false, false
	for {
		err := l.step(ctx)
		if err == nil {
			reached = true
		} else if !reached && ctx.Err() == nil {
			l.provisional()
			reached = true // once: the cameras stay until Redis speaks
		}
		l.settle()
		switch {
		case err != nil && ctx.Err() == nil && !down:
			l.o.Logger.Warn("camera leases cannot be checked; keeping the cameras held", "err", err)
			down = true
		case err == nil && down:
			l.o.Logger.Info("camera leases checked again")
			down = false
		}
		select {
		case <-ctx.Done():
			l.releaseAll(ctx)
			return nil
		case <-t.C:
		}
	}
}

// provisional records, without a lease, the cameras this node may record,
// because Redis could not be reached since it started: losing footage is
// worse than recording twice.
func (l *Leases) provisional() {
	var cams []string
	for _, c := range l.o.Cameras() {
		if c.Zone == "" || c.Zone == l.o.Zone {
			cams = append(cams, c.ID)
		}
	}
	if len(cams) == 0 {
		return
	}
	l.o.Logger.Warn("Redis cannot be reached at start: recording the cameras of this zone without leases until it answers", "cameras", len(cams))
	now := l.o.Now()
	for _, c := range cams {
		l.mu.Lock()
		_, held := l.held[c]
		l.mu.Unlock()
		if !held {
			l.adopt(c, 0, now)
		}
	}
}

// releaseAll gives up every lease, within a second of stopped's end.
func (l *Leases) releaseAll(stopped context.Context) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(stopped), time.Second)
	defer cancel()
	l.mu.Lock()
	held := l.held
	l.held = map[string]*lease{}
	l.mu.Unlock()
	for cam, ls := range held {
		if ls.handedTo != "" || ls.epoch == 0 {
			continue
		}
		if err := l.release(ctx, cam, ls.epoch); err != nil {
			l.o.Logger.Warn("leaving: the lease expires by itself", "camera", cam, "err", err)
		}
	}
}

// step is one tick. It returns an error when Redis could not be asked;
// held cameras stay held then.
func (l *Leases) step(ctx context.Context) error {
	now := l.o.Now()
	nodes, err := l.o.Nodes(ctx)
	if err != nil {
		l.renewDue(ctx, now)
		return err
	}
	cameras := l.o.Cameras()
	want := map[string]bool{}
	for _, c := range cameras {
		want[c.ID] = true
	}
	l.mu.Lock()
	all := slices.Clone(cameras)
	for c := range l.held {
		if !want[c] {
			all = append(all, Camera{ID: c})
		}
	}
	l.mu.Unlock()
	current := map[string]string{}
	if len(all) > 0 {
		keys := make([]string, len(all))
		for i, c := range all {
			keys[i] = l.leaseKey(c.ID)
		}
		vals, err := l.o.Client.MGet(ctx, keys...).Result()
		if err != nil {
			l.renewDue(ctx, now)
			return fmt.Errorf("cluster: read the leases: %w", err)
		}
		for i, v := range vals {
			if s, ok := v.(string); ok {
				current[all[i].ID] = s
			}
		}
	}
	live := map[string]Node{}
	for _, n := range nodes {
		live[n.ID] = n
	}
	_, selfLive := live[l.o.Node]
	var assign map[string]string
	if selfLive {
		assign = Assign(cameras, nodes)
	}

	var errs []error
	var due []renewal
	for _, cam := range l.Held() {
		epoch, err := l.keep(ctx, now, cam, want[cam], current[cam], assign, live)
		errs = append(errs, err)
		if epoch != 0 {
			due = append(due, renewal{cam, epoch})
		}
	}
	errs = append(errs, l.renewAll(ctx, now, due))
	if !selfLive {
		// Not registered yet (just started) or expired: take nothing until
		// the others see this node too.
		return errors.Join(errs...)
	}
	for _, c := range cameras {
		l.mu.Lock()
		_, held := l.held[c.ID]
		l.mu.Unlock()
		if held {
			continue
		}
		cur, taken := current[c.ID]
		if node, epoch, ok := parseLease(cur); taken && ok && node == l.o.Node {
			// Handed to this node, or held by it before a restart: renewed
			// at the next tick, as its TTL may be nearly over.
			l.adopt(c.ID, epoch, time.Time{})
			continue
		}
		if assign[c.ID] != l.o.Node {
			continue
		}
		expected := ""
		if taken {
			node, _, _ := parseLease(cur)
			if _, alive := live[node]; alive {
				continue // its holder hands it over when it sees the assignment
			}
			expected = cur // its holder's node is gone: take it now rather than at expiry
		}
		epoch, _, err := l.take(ctx, c.ID, l.o.Node, expected, 0)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if epoch > 0 {
			l.o.Logger.Info("camera lease taken", "camera", c.ID, "epoch", epoch, "from", cur)
			l.adopt(c.ID, epoch, now)
		}
	}
	return errors.Join(errs...)
}

func (l *Leases) adopt(camera string, epoch int64, now time.Time) {
	l.mu.Lock()
	l.held[camera] = &lease{epoch: epoch, renewed: now}
	l.mu.Unlock()
	l.o.Acquired(camera, epoch)
}

func (l *Leases) drop(camera, why string) {
	l.mu.Lock()
	delete(l.held, camera)
	l.mu.Unlock()
	l.o.Logger.Info("camera lease given up", "camera", camera, "why", why)
	l.o.Lost(camera)
}

// keep handles one held camera: it stops at once if another node took the
// lease and hands it over if the assignment says so. When its renewal is
// due it returns the epoch held, for renewAll: the renewals of a tick go
// to Redis together.
func (l *Leases) keep(ctx context.Context, now time.Time, cam string, wanted bool, cur string, assign map[string]string, live map[string]Node) (renew int64, err error) {
	l.mu.Lock()
	ls := *l.held[cam]
	l.mu.Unlock()
	if ls.handedTo != "" {
		if holder, epoch, _ := parseLease(cur); holder == l.o.Node {
			// Handed back (the other node's view of the cluster differed)
			// while this node still records it: keep it.
			l.mu.Lock()
			if h := l.held[cam]; h != nil {
				h.epoch, h.renewed, h.handedTo = epoch, time.Time{}, ""
			}
			l.mu.Unlock()
			l.o.Logger.Info("camera lease handed back", "camera", cam, "epoch", epoch)
			l.o.Acquired(cam, epoch)
			return 0, nil
		}
		n, alive := live[ls.handedTo]
		if !alive {
			return 0, l.takeBack(ctx, now, cam, cur, ls)
		}
		if slices.Contains(n.Recording, cam) || now.Sub(ls.handedAt) >= l.o.HandoverWait {
			l.drop(cam, "handed over to "+ls.handedTo)
		}
		return 0, nil
	}
	if ls.epoch == 0 {
		return 0, l.keepProvisional(ctx, now, cam, wanted, cur, assign)
	}
	mine := leaseValue(l.o.Node, ls.epoch)
	if cur != "" && cur != mine {
		// Another node took it (it thought this one dead). Until it
		// records the camera, recording here goes on, as for a handover.
		holder, _, _ := parseLease(cur)
		if n, alive := live[holder]; alive && !slices.Contains(n.Recording, cam) {
			l.o.Logger.Info("camera lease taken by another node; recording until it records", "camera", cam, "by", cur)
			l.mu.Lock()
			if h := l.held[cam]; h != nil {
				h.handedTo, h.handedAt = holder, now
			}
			l.mu.Unlock()
			return 0, nil
		}
		l.drop(cam, "held by another node: "+cur)
		return 0, nil
	}
	if !wanted {
		err := l.release(ctx, cam, ls.epoch)
		l.drop(cam, "no longer in the registry")
		return 0, err
	}
	if to := assign[cam]; to != "" && to != l.o.Node && cur == mine {
		epoch, _, err := l.take(ctx, cam, to, mine, ls.epoch)
		if err != nil {
			return 0, err
		}
		if epoch == 0 {
			l.drop(cam, "held by another node")
			return 0, nil
		}
		l.o.Logger.Info("camera lease handed over; recording until the new holder records", "camera", cam, "to", to, "epoch", epoch)
		l.mu.Lock()
		if h := l.held[cam]; h != nil {
			h.handedTo, h.handedAt = to, now
		}
		l.mu.Unlock()
		return 0, nil
	}
	if cur != "" && now.Sub(ls.renewed) < l.o.Renew {
		return 0, nil
	}
	return ls.epoch, nil
}

// takeBack takes the lease of a camera handed over to a node that died
// before it recorded, while this node still records it: stopping and
// starting again would leave a gap. If someone else has it by now, the
// camera is theirs.
func (l *Leases) takeBack(ctx context.Context, now time.Time, cam, cur string, ls lease) error {
	if holder, _, _ := parseLease(cur); cur == "" || holder == ls.handedTo {
		epoch, _, err := l.take(ctx, cam, l.o.Node, cur, ls.epoch)
		if err != nil {
			return err
		}
		if epoch > 0 {
			l.mu.Lock()
			if h := l.held[cam]; h != nil {
				h.epoch, h.renewed, h.handedTo = epoch, now, ""
			}
			l.mu.Unlock()
			l.o.Logger.Info("camera lease taken back: its new holder is gone before it recorded", "camera", cam, "from", ls.handedTo, "epoch", epoch)
			l.o.Acquired(cam, epoch)
			return nil
		}
	}
	l.drop(cam, "handed over to "+ls.handedTo+", now gone")
	return nil
}

// keepProvisional handles a camera recorded without a lease since a start
// without Redis: it is given up once another node holds it, and its lease
// is taken when the assignment names this node.
func (l *Leases) keepProvisional(ctx context.Context, now time.Time, cam string, wanted bool, cur string, assign map[string]string) error {
	switch {
	case cur != "":
		l.drop(cam, "held by another node: "+cur)
	case !wanted:
		l.drop(cam, "no longer in the registry")
	case assign[cam] == l.o.Node:
		epoch, cur, err := l.take(ctx, cam, l.o.Node, "", 0)
		if err != nil {
			return err
		}
		if epoch == 0 {
			l.drop(cam, "held by another node: "+cur)
			return nil
		}
		l.mu.Lock()
		if h := l.held[cam]; h != nil {
			h.epoch, h.renewed = epoch, now
		}
		l.mu.Unlock()
		l.o.Logger.Info("camera lease taken", "camera", cam, "epoch", epoch)
		l.o.Acquired(cam, epoch)
	}
	return nil // another node should have it: recording goes on until it does
}

// renewDue renews the held leases that are due, while the node list or the
// leases could not be read: a renewal that gets through still counts.
func (l *Leases) renewDue(ctx context.Context, now time.Time) {
	l.mu.Lock()
	var due []renewal
	for cam, ls := range l.held {
		if ls.handedTo == "" && ls.epoch != 0 && now.Sub(ls.renewed) >= l.o.Renew {
			due = append(due, renewal{cam, ls.epoch})
		}
	}
	l.mu.Unlock()
	slices.SortFunc(due, func(a, b renewal) int { return strings.Compare(a.camera, b.camera) })
	_ = l.renewAll(ctx, now, due) // Redis is away: the next tick tries again
}

// renewAll renews the leases of due in one round trip. A lease another
// node holds now is given up; one that had lapsed and was taken again
// with a new epoch is Acquired again. A lease Redis could not renew stays
// held (recording goes on) and its error is returned.
func (l *Leases) renewAll(ctx context.Context, now time.Time, due []renewal) error {
	if len(due) == 0 {
		return nil
	}
	epochs, errs := l.renewBatch(ctx, due)
	var failed []error
	for i, r := range due {
		e, err := epochs[i], errs[i]
		if errors.Is(err, ErrLeaseLost) {
			l.drop(r.camera, err.Error())
			continue
		}
		if err != nil {
			failed = append(failed, err) // unreachable: keep recording
			continue
		}
		l.mu.Lock()
		if h := l.held[r.camera]; h != nil {
			h.renewed = now
			h.epoch = e
		}
		l.mu.Unlock()
		if e != r.epoch {
			l.o.Logger.Warn("camera lease had expired; taken again with a new epoch", "camera", r.camera, "epoch", e)
			l.o.Acquired(r.camera, e)
		}
	}
	switch len(failed) {
	case 0:
		return nil
	case 1:
		return failed[0]
	}
	// One round trip failed for all alike, most likely: say it once.
	return fmt.Errorf("%w (and %d more leases not renewed)", failed[0], len(failed)-1)
}
