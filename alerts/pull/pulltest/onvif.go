package pulltest

import (
	"crypto/sha1"
	"encoding/base64"
	"encoding/xml"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"
)

// ONVIF serves an ONVIF device with a PullPoint event service:
// GetSystemDateAndTime (no authentication), GetCapabilities,
// CreatePullPointSubscription, PullMessages, Renew and Unsubscribe. Every
// request but the first is checked for a WS-Security UsernameToken whose
// PasswordDigest matches and whose Created lies within MaxSkew of the
// device's clock (Now), as cameras check it; others get a
// ter:NotAuthorized fault.
type ONVIF struct {
	Username, Password string
	// Now is the device's clock; default time.Now. A test gives it an
	// offset from its own to check that the client uses the camera's time.
	Now func() time.Time
	// MaxSkew is how far Created may be from Now; default 5s.
	MaxSkew time.Duration
	// Termination is the subscription's life given on create and renew;
	// default 60s.
	Termination time.Duration
	// PullWait is how long PullMessages waits for a message; default 0
	// (answer at once, with what is queued).
	PullWait time.Duration
	// OnPull runs at every PullMessages, before it answers (a test
	// advances its clock there).
	OnPull func()
	// HTTPDigest also requires HTTP digest authentication on every
	// request, as some firmware does.
	HTTPDigest bool

	mu           sync.Mutex
	base         string
	queue        []string // NotificationMessage elements
	subscribed   int
	active       bool
	termination  time.Time
	renews       int
	unsubscribes int
	refused      int
	pulls        int
	changed      chan struct{}
}

// NewONVIF returns a device for the given account.
func NewONVIF(user, pass string) *ONVIF {
	return &ONVIF{Username: user, Password: pass, changed: make(chan struct{})}
}

// Counts of the device's subscription traffic.
type Counts struct {
	Subscribed, Renews, Unsubscribes, Refused, Pulls int
	Active                                           bool
}

// Counts returns what the device saw so far.
func (o *ONVIF) Counts() Counts {
	o.mu.Lock()
	defer o.mu.Unlock()
	return Counts{o.subscribed, o.renews, o.unsubscribes, o.refused, o.pulls, o.active}
}

// Changed returns a channel closed at the next request the device handles.
func (o *ONVIF) Changed() <-chan struct{} {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.changed
}

// Publish queues a notification for the next PullMessages: topic, the
// tt:Message attributes' UtcTime and PropertyOperation, source and data
// SimpleItems written as "Name=Value".
func (o *ONVIF) Publish(topic, utc, op string, source, data []string) {
	items := func(kvs []string) string {
		var b strings.Builder
		for _, kv := range kvs {
			k, v, _ := strings.Cut(kv, "=")
			fmt.Fprintf(&b, `<tt:SimpleItem Name=%q Value=%q/>`, k, v)
		}
		return b.String()
	}
	msg := fmt.Sprintf(`<wsnt:NotificationMessage><wsnt:Topic Dialect="http://www.onvif.org/ver10/tev/topicExpression/ConcreteSet">%s</wsnt:Topic>`+
		`<wsnt:Message><tt:Message UtcTime=%q PropertyOperation=%q><tt:Source>%s</tt:Source><tt:Data>%s</tt:Data></tt:Message></wsnt:Message></wsnt:NotificationMessage>`,
		topic, utc, op, items(source), items(data))
	o.mu.Lock()
	o.queue = append(o.queue, msg)
	o.mu.Unlock()
}

func (o *ONVIF) now() time.Time {
	if o.Now != nil {
		return o.Now()
	}
	return time.Now()
}

func (o *ONVIF) touch() {
	close(o.changed)
	o.changed = make(chan struct{})
}

// ServeHTTP serves the device service at /onvif/device_service, the event
// service at /onvif/event and the subscription at /onvif/subscription.
func (o *ONVIF) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil || r.Method != http.MethodPost {
		http.Error(w, "bad request", http.StatusBadRequest)
		return
	}
	var env struct {
		Header struct {
			Username string `xml:"Security>UsernameToken>Username"`
			Password string `xml:"Security>UsernameToken>Password"`
			Nonce    string `xml:"Security>UsernameToken>Nonce"`
			Created  string `xml:"Security>UsernameToken>Created"`
		} `xml:"Header"`
		Body struct {
			Inner struct {
				XMLName xml.Name
			} `xml:",any"`
		} `xml:"Body"`
	}
	if err := xml.Unmarshal(body, &env); err != nil {
		o.fault(w, "env:Sender", "ter:WellFormed", "malformed SOAP envelope")
		return
	}
	op := env.Body.Inner.XMLName.Local
	if o.HTTPDigest && !digestOK(r, o.Username, o.Password, "onvif-nonce") {
		challenge(w, "onvif-nonce")
		return
	}
	o.mu.Lock()
	if o.base == "" {
		o.base = "http://" + r.Host
	}
	o.touch()
	o.mu.Unlock()
	if op != "GetSystemDateAndTime" {
		if why := o.checkToken(env.Header.Username, env.Header.Password, env.Header.Nonce, env.Header.Created); why != "" {
			o.mu.Lock()
			o.refused++
			o.mu.Unlock()
			o.fault(w, "env:Sender", "ter:NotAuthorized", "Sender not Authorized: "+why)
			return
		}
	}
	now := o.now().UTC()
	ts := func(t time.Time) string { return t.UTC().Format(time.RFC3339) }
	life := o.Termination
	if life <= 0 {
		life = 60 * time.Second
	}
	switch {
	case op == "GetSystemDateAndTime" && r.URL.Path == "/onvif/device_service":
		o.answer(w, fmt.Sprintf(`<tds:GetSystemDateAndTimeResponse><tds:SystemDateAndTime><tt:DateTimeType>NTP</tt:DateTimeType><tt:DaylightSavings>false</tt:DaylightSavings>`+
			`<tt:UTCDateTime><tt:Time><tt:Hour>%d</tt:Hour><tt:Minute>%d</tt:Minute><tt:Second>%d</tt:Second></tt:Time><tt:Date><tt:Year>%d</tt:Year><tt:Month>%d</tt:Month><tt:Day>%d</tt:Day></tt:Date></tt:UTCDateTime>`+
			`</tds:SystemDateAndTime></tds:GetSystemDateAndTimeResponse>`, now.Hour(), now.Minute(), now.Second(), now.Year(), int(now.Month()), now.Day()))
	case op == "GetCapabilities" && r.URL.Path == "/onvif/device_service":
		o.answer(w, `<tds:GetCapabilitiesResponse><tds:Capabilities><tt:Events><tt:XAddr>`+o.base+`/onvif/event</tt:XAddr>`+
			`<tt:WSSubscriptionPolicySupport>false</tt:WSSubscriptionPolicySupport><tt:WSPullPointSupport>true</tt:WSPullPointSupport></tt:Events></tds:Capabilities></tds:GetCapabilitiesResponse>`)
	case op == "CreatePullPointSubscription" && r.URL.Path == "/onvif/event":
		o.mu.Lock()
		o.subscribed++
		o.active = true
		o.termination = now.Add(life)
		o.mu.Unlock()
		o.answer(w, `<tev:CreatePullPointSubscriptionResponse><tev:SubscriptionReference><wsa:Address>`+o.base+`/onvif/subscription</wsa:Address></tev:SubscriptionReference>`+
			`<wsnt:CurrentTime>`+ts(now)+`</wsnt:CurrentTime><wsnt:TerminationTime>`+ts(now.Add(life))+`</wsnt:TerminationTime></tev:CreatePullPointSubscriptionResponse>`)
	case r.URL.Path == "/onvif/subscription" && (op == "PullMessages" || op == "Renew" || op == "Unsubscribe"):
		o.subscription(w, r, op, now, life)
	default:
		o.fault(w, "env:Receiver", "ter:ActionNotSupported", "operation "+op+" not supported at "+r.URL.Path)
	}
}

func (o *ONVIF) subscription(w http.ResponseWriter, r *http.Request, op string, now time.Time, life time.Duration) {
	ts := func(t time.Time) string { return t.UTC().Format(time.RFC3339) }
	o.mu.Lock()
	if !o.active || now.After(o.termination) {
		o.active = false
		o.mu.Unlock()
		o.fault(w, "env:Receiver", "wsrf-rw:ResourceUnknownFault", "no such subscription (expired or unsubscribed)")
		return
	}
	switch op {
	case "Renew":
		o.renews++
		o.termination = now.Add(life)
		o.mu.Unlock()
		o.answer(w, `<wsnt:RenewResponse><wsnt:TerminationTime>`+ts(now.Add(life))+`</wsnt:TerminationTime><wsnt:CurrentTime>`+ts(now)+`</wsnt:CurrentTime></wsnt:RenewResponse>`)
		return
	case "Unsubscribe":
		o.unsubscribes++
		o.active = false
		o.mu.Unlock()
		o.answer(w, `<wsnt:UnsubscribeResponse/>`)
		return
	}
	o.pulls++
	onPull := o.OnPull
	o.mu.Unlock()
	if onPull != nil {
		onPull()
	}
	if o.PullWait > 0 {
		select {
		case <-time.After(o.PullWait):
		case <-r.Context().Done():
			return
		}
	}
	o.mu.Lock()
	msgs := strings.Join(o.queue, "")
	o.queue = nil
	term := o.termination
	o.mu.Unlock()
	now = o.now().UTC()
	o.answer(w, `<tev:PullMessagesResponse><tev:CurrentTime>`+ts(now)+`</tev:CurrentTime><tev:TerminationTime>`+ts(term)+`</tev:TerminationTime>`+msgs+`</tev:PullMessagesResponse>`)
}

// checkToken returns why a UsernameToken is refused, "" when it is good.
func (o *ONVIF) checkToken(user, digest, nonce, created string) string {
	if user != o.Username {
		return "unknown user"
	}
	n, err := base64.StdEncoding.DecodeString(strings.TrimSpace(nonce))
	if err != nil || len(n) == 0 {
		return "no nonce"
	}
	h := sha1.New()
	h.Write(n)
	h.Write([]byte(strings.TrimSpace(created)))
	h.Write([]byte(o.Password))
	if base64.StdEncoding.EncodeToString(h.Sum(nil)) != strings.TrimSpace(digest) {
		return "wrong password digest"
	}
	t, err := time.Parse(time.RFC3339Nano, strings.TrimSpace(created))
	if err != nil {
		return "unreadable Created"
	}
	skew := o.MaxSkew
	if skew <= 0 {
		skew = 5 * time.Second
	}
	if d := t.Sub(o.now()); d > skew || d < -skew {
		return fmt.Sprintf("Created %s is %s from the device clock", created, d.Round(time.Second))
	}
	return ""
}

const envOpen = `<?xml version="1.0" encoding="UTF-8"?><env:Envelope xmlns:env="http://www.w3.org/2003/05/soap-envelope" xmlns:tt="http://www.onvif.org/ver10/schema"` +
	` xmlns:tds="http://www.onvif.org/ver10/device/wsdl" xmlns:tev="http://www.onvif.org/ver10/events/wsdl" xmlns:wsnt="http://docs.oasis-open.org/wsn/b-2"` +
	` xmlns:wsa="http://www.w3.org/2005/08/addressing" xmlns:ter="http://www.onvif.org/ver10/error" xmlns:tns1="http://www.onvif.org/ver10/topics"><env:Body>`

func (o *ONVIF) answer(w http.ResponseWriter, body string) {
	w.Header().Set("Content-Type", "application/soap+xml; charset=utf-8")
	io.WriteString(w, envOpen+body+`</env:Body></env:Envelope>`)
}

func (o *ONVIF) fault(w http.ResponseWriter, code, sub, reason string) {
	w.Header().Set("Content-Type", "application/soap+xml; charset=utf-8")
	w.WriteHeader(http.StatusBadRequest)
	fmt.Fprintf(w, `%s<env:Fault><env:Code><env:Value>%s</env:Value><env:Subcode><env:Value>%s</env:Value></env:Subcode></env:Code><env:Reason><env:Text xml:lang="en">%s</env:Text></env:Reason></env:Fault></env:Body></env:Envelope>`,
		envOpen, code, sub, reason)
}
