package configs

import (
	"net/url"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Notify configures notifications out of Vigil (WeCom and DingTalk group
// robots, signed webhooks). It is read at start.
type Notify struct {
	// BaseURL is the desk's address; messages link to BaseURL?alert=ID.
	BaseURL string `json:"base_url"`
	// MaxAge: a notification not delivered this long after it was queued
	// is given up (counted as expired).
	MaxAge time.Duration `json:"max_age"`
	// RatePerMinute bounds the messages to one receiver in any minute;
	// beyond it they are merged into one summary.
	RatePerMinute int64            `json:"rate_per_minute"`
	Receivers     []NotifyReceiver `json:"receivers"`
	// Routes are tried in order; the first match wins.
	Routes []NotifyRoute `json:"routes"`
}

// NotifyReceiver is one destination. URL is a secret: robot URLs carry
// their access token.
type NotifyReceiver struct {
	ID     string `json:"id"`
	Kind   string `json:"kind"`
	URL    Secret `json:"url"`
	Secret Secret `json:"secret"`
}

// Notify receiver kinds.
const (
	ReceiverWeCom    = "wecom"
	ReceiverDingTalk = "dingtalk"
	ReceiverWebhook  = "webhook"
)

// NotifyRoute sends the matching changes to receivers.
type NotifyRoute struct {
	Match NotifyMatch `json:"match"`
	To    []string    `json:"to"`
}

// NotifyMatch selects changes; an empty field matches anything.
type NotifyMatch struct {
	Kind     string `json:"kind"` // raised | reopened | overdue | escalated
	Severity string `json:"severity"`
	Site     string `json:"site"`
	Type     string `json:"type"`
}

// NotifyKinds are the change kinds that leave Vigil.
func NotifyKinds() []string { return []string{"raised", "reopened", "overdue", "escalated"} }

// Receiver returns the notification receiver with the given ID.
func (n *Notify) Receiver(id string) (NotifyReceiver, bool) {
	for _, r := range n.Receivers {
		if r.ID == id {
			return r, true
		}
	}
	return NotifyReceiver{}, false
}

// receiverRef is a reference to a receiver ID, checked once all are known.
type receiverRef struct {
	node *yaml.Node
	path string
	id   string
}

func (d *decoder) strings(dst *[]string, refs *[]receiverRef) func(*yaml.Node, string) {
	return func(n *yaml.Node, path string) {
		*dst = nil
		d.list(n, path, func(i int, item *yaml.Node, path string) {
			if v, ok := d.scalar(item, path, "a string"); ok {
				*dst = append(*dst, v)
				if refs != nil {
					*refs = append(*refs, receiverRef{node: item, path: path, id: v})
				}
			}
		})
	}
}

func (d *decoder) notify(n *yaml.Node, path string, cfg *Config) map[string]*yaml.Node {
	no := &cfg.Notify
	return d.object(n, path, []field{
		{"base_url", func(n *yaml.Node, p string) {
			d.str(&no.BaseURL)(n, p)
			if u, err := url.Parse(no.BaseURL); no.BaseURL != "" && (err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "") {
				d.at(n, p, "want an http or https URL, got %q", no.BaseURL)
			}
		}},
		{"max_age", d.duration(&no.MaxAge)},
		{"rate_per_minute", d.integer(&no.RatePerMinute, 1)},
		{"receivers", func(n *yaml.Node, path string) {
			seen := map[string]*yaml.Node{}
			d.list(n, path, func(i int, item *yaml.Node, path string) {
				var r NotifyReceiver
				set := d.object(item, path, []field{
					{"id", d.str(&r.ID)},
					{"kind", enum(d, &r.Kind, ReceiverWeCom, ReceiverDingTalk, ReceiverWebhook)},
					{"url", d.secret(&r.URL)},
					{"secret", d.secret(&r.Secret)},
				})
				if item == nil || item.Kind != yaml.MappingNode {
					return
				}
				idNode, ok := set["id"]
				switch {
				case !ok:
					d.at(item, join(path, "id"), "required")
					return
				case !ValidID(r.ID):
					d.at(idNode, join(path, "id"), "invalid id %q (want lower-case letters, digits and '-', like duty-group)", r.ID)
				case seen[r.ID] != nil:
					d.at(idNode, join(path, "id"), "duplicate receiver id %q (first at line %d)", r.ID, seen[r.ID].Line)
					return
				}
				seen[r.ID] = idNode
				if _, ok := set["kind"]; !ok {
					d.at(item, join(path, "kind"), "required")
				}
				if un, ok := set["url"]; !ok {
					d.at(item, join(path, "url"), "required")
				} else if u, err := url.Parse(r.URL.Reveal()); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
					// The value is a secret (robot URLs carry a token): not shown.
					d.at(un, join(path, "url"), "want an http or https URL")
				}
				if r.Kind == ReceiverWebhook && r.Secret == "" {
					d.at(item, join(path, "secret"), "required for a webhook (its messages are signed)")
				}
				no.Receivers = append(no.Receivers, r)
			})
		}},
		{"routes", func(n *yaml.Node, path string) {
			d.list(n, path, func(i int, item *yaml.Node, path string) {
				var r NotifyRoute
				set := d.object(item, path, []field{
					{"match", func(n *yaml.Node, path string) {
						m := &r.Match
						mset := d.object(n, path, []field{
							{"kind", enum(d, &m.Kind, NotifyKinds()...)},
							{"severity", enum(d, &m.Severity, string(Critical), string(Major), string(Minor))},
							{"site", d.str(&m.Site)},
							{"type", enum(d, &m.Type, EventTypes()...)},
						})
						d.matches = append(d.matches, matchRef{path: path, site: mset["site"]})
					}},
					{"to", d.strings(&r.To, &d.receivers)},
				})
				if item == nil || item.Kind != yaml.MappingNode {
					return
				}
				if _, ok := set["to"]; !ok || len(r.To) == 0 {
					d.at(item, join(path, "to"), "required: at least one receiver")
				}
				no.Routes = append(no.Routes, r)
			})
		}},
	})
}

// validateReceivers checks that routes and rules name configured receivers.
func (d *decoder) validateReceivers(cfg *Config) {
	var ids []string
	for _, r := range cfg.Notify.Receivers {
		ids = append(ids, r.ID)
	}
	for _, ref := range d.receivers {
		if _, ok := cfg.Notify.Receiver(ref.id); !ok {
			hint := ""
			if len(ids) > 0 {
				hint = " (receivers: " + strings.Join(ids, ", ") + ")"
			}
			d.at(ref.node, ref.path, "unknown receiver %q%s", ref.id, hint)
		}
	}
}
