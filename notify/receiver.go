package notify

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// Receiver kinds (notify.receivers[].kind).
const (
	KindWeCom    = "wecom"
	KindDingTalk = "dingtalk"
	KindWebhook  = "webhook"
)

// Receiver delivers messages to one destination. Send returns nil once the
// destination accepted the message; its errors never contain the URL or
// the secret (robot URLs carry their access token).
type Receiver interface {
	ID() string
	Send(ctx context.Context, m Message, delivery uint64) error
}

// ReceiverConfig describes one receiver; URL and Secret are secrets.
type ReceiverConfig struct {
	ID     string
	Kind   string // wecom | dingtalk | webhook
	URL    string
	Secret string // dingtalk: the robot's 加签 secret; webhook: the HMAC key
}

// NewReceiver returns the receiver of c. client nil: a client with a 10 s
// timeout; now nil: time.Now (DingTalk and webhook signatures carry the
// time).
func NewReceiver(c ReceiverConfig, client *http.Client, now func() time.Time) (Receiver, error) {
	if client == nil {
		client = &http.Client{Timeout: 10 * time.Second}
	}
	if now == nil {
		now = time.Now
	}
	if c.ID == "" {
		return nil, errors.New("receiver: id is required")
	}
	u, err := url.Parse(c.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("receiver %s: url must be http or https", c.ID)
	}
	p := poster{id: c.ID, url: c.URL, client: client}
	switch c.Kind {
	case KindWeCom:
		return &weCom{p}, nil
	case KindDingTalk:
		return &dingTalk{poster: p, secret: c.Secret, now: now}, nil
	case KindWebhook:
		if c.Secret == "" {
			return nil, fmt.Errorf("receiver %s: a webhook needs a secret to sign with", c.ID)
		}
		return &webhook{poster: p, secret: c.Secret, now: now}, nil
	}
	return nil, fmt.Errorf("receiver %s: unknown kind %q (want wecom, dingtalk or webhook)", c.ID, c.Kind)
}

// poster sends a JSON body and reads the reply; its errors name the
// receiver, never the URL.
type poster struct {
	id     string
	url    string
	client *http.Client
}

func (p poster) ID() string { return p.id }

// maxReply bounds the reply body read.
const maxReply = 64 << 10

func (p poster) post(ctx context.Context, target string, body []byte, header http.Header) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("receiver %s: build request failed", p.id)
	}
	req.Header.Set("Content-Type", "application/json; charset=utf-8")
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := p.client.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // the URL carries the robot's token
		}
		return nil, fmt.Errorf("receiver %s: post: %w", p.id, err)
	}
	defer resp.Body.Close()
	reply, err := io.ReadAll(io.LimitReader(resp.Body, maxReply))
	if err != nil {
		return nil, fmt.Errorf("receiver %s: read reply: %w", p.id, err)
	}
	if resp.StatusCode/100 != 2 {
		return nil, fmt.Errorf("receiver %s: HTTP %d", p.id, resp.StatusCode)
	}
	return reply, nil
}

// robotReply is the reply of the WeCom and DingTalk robots.
type robotReply struct {
	ErrCode int    `json:"errcode"`
	ErrMsg  string `json:"errmsg"`
}

func (p poster) robot(reply []byte) error {
	var r robotReply
	if err := json.Unmarshal(reply, &r); err != nil {
		return fmt.Errorf("receiver %s: reply is not the robot's JSON", p.id)
	}
	if r.ErrCode != 0 {
		return fmt.Errorf("receiver %s: errcode %d: %.200s", p.id, r.ErrCode, r.ErrMsg)
	}
	return nil
}

// weCom is a 企业微信 group robot: {"msgtype":"markdown","markdown":{"content":…}}.
type weCom struct{ poster }

func (w *weCom) Send(ctx context.Context, m Message, _ uint64) error {
	body, _ := json.Marshal(map[string]any{
		"msgtype":  "markdown",
		"markdown": map[string]string{"content": m.Text},
	})
	reply, err := w.post(ctx, w.url, body, nil)
	if err != nil {
		return err
	}
	return w.robot(reply)
}

// dingTalk is a 钉钉 group robot with 加签: the URL gets timestamp (ms) and
// sign = base64(HMAC-SHA256(secret, timestamp+"\n"+secret)).
type dingTalk struct {
	poster
	secret string
	now    func() time.Time
}

// DingTalkSign is the sign parameter of a DingTalk robot request.
func DingTalkSign(secret string, timestampMillis int64) string {
	mac := hmac.New(sha256.New, []byte(secret))
	fmt.Fprintf(mac, "%d\n%s", timestampMillis, secret)
	return base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

func (d *dingTalk) Send(ctx context.Context, m Message, _ uint64) error {
	body, _ := json.Marshal(map[string]any{
		"msgtype":  "markdown",
		"markdown": map[string]string{"title": m.Title, "text": m.Text},
	})
	target := d.url
	if d.secret != "" {
		u, _ := url.Parse(d.url) // checked by NewReceiver
		ts := d.now().UnixMilli()
		q := u.Query()
		q.Set("timestamp", strconv.FormatInt(ts, 10))
		q.Set("sign", DingTalkSign(d.secret, ts))
		u.RawQuery = q.Encode()
		target = u.String()
	}
	reply, err := d.post(ctx, target, body, nil)
	if err != nil {
		return err
	}
	return d.robot(reply)
}

// Webhook headers: the receiver checks X-Vigil-Signature against
// "sha256=" + hex(HMAC-SHA256(secret, timestamp + "." + body)) and may
// drop a repeated X-Vigil-Delivery (delivery is at least once).
const (
	HeaderTimestamp = "X-Vigil-Timestamp"
	HeaderSignature = "X-Vigil-Signature"
	HeaderDelivery  = "X-Vigil-Delivery"
)

// WebhookSignature is the X-Vigil-Signature of body sent at timestamp (Unix
// seconds).
func WebhookSignature(secret string, timestamp int64, body []byte) string {
	mac := hmac.New(sha256.New, []byte(secret))
	fmt.Fprintf(mac, "%d.", timestamp)
	mac.Write(body)
	return "sha256=" + hex.EncodeToString(mac.Sum(nil))
}

// webhook posts the Message as JSON, signed.
type webhook struct {
	poster
	secret string
	now    func() time.Time
}

func (w *webhook) Send(ctx context.Context, m Message, delivery uint64) error {
	body, err := json.Marshal(m)
	if err != nil {
		return fmt.Errorf("receiver %s: %w", w.id, err)
	}
	ts := w.now().Unix()
	h := http.Header{}
	h.Set(HeaderTimestamp, strconv.FormatInt(ts, 10))
	h.Set(HeaderSignature, WebhookSignature(w.secret, ts, body))
	h.Set(HeaderDelivery, strconv.FormatUint(delivery, 10))
	_, err = w.post(ctx, w.url, body, h)
	return err
}
