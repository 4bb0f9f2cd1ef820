package notify

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"vigil/alerts"
)

var testMessage = Message{
	Kind: alerts.KindRaised, AlertID: "01JDTEST", Severity: alerts.Critical, Site: "key-site", Type: alerts.Intrusion,
	Title: "【紧急】新告警 重点部位 区域入侵", Text: "**【紧急】新告警 重点部位 区域入侵**\n\n[查看告警](https://desk.example/?alert=01JDTEST)",
	URL: "https://desk.example/?alert=01JDTEST",
}

// captured is one request an httptest receiver saw.
type captured struct {
	query  url.Values
	header http.Header
	body   []byte
}

func robotServer(t *testing.T, reply string) (*httptest.Server, <-chan captured) {
	got := make(chan captured, 10)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got <- captured{query: r.URL.Query(), header: r.Header.Clone(), body: b}
		io.WriteString(w, reply)
	}))
	t.Cleanup(srv.Close)
	return srv, got
}

func fixedNow() time.Time { return time.Date(2026, 12, 6, 8, 30, 0, 123e6, time.UTC) }

func TestWeComMarkdown(t *testing.T) {
	srv, got := robotServer(t, `{"errcode":0,"errmsg":"ok"}`)
	r, err := NewReceiver(ReceiverConfig{ID: "duty", Kind: KindWeCom, URL: srv.URL + "/cgi-bin/webhook/send?key=SECRETKEY"}, srv.Client(), fixedNow)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Send(t.Context(), testMessage, 1); err != nil {
		t.Fatal(err)
	}
	c := <-got
	if c.query.Get("key") != "SECRETKEY" {
		t.Errorf("key %q", c.query.Get("key"))
	}
	var body struct {
		MsgType  string `json:"msgtype"`
		Markdown struct {
			Content string `json:"content"`
		} `json:"markdown"`
	}
	if err := json.Unmarshal(c.body, &body); err != nil {
		t.Fatal(err)
	}
	if body.MsgType != "markdown" || body.Markdown.Content != testMessage.Text {
		t.Errorf("body %s", c.body)
	}
	if ct := c.header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("content type %q", ct)
	}
}

func TestRobotErrcodeFails(t *testing.T) {
	srv, _ := robotServer(t, `{"errcode":45009,"errmsg":"api freq out of limit"}`)
	r, _ := NewReceiver(ReceiverConfig{ID: "duty", Kind: KindWeCom, URL: srv.URL + "/?key=SECRETKEY"}, srv.Client(), fixedNow)
	err := r.Send(t.Context(), testMessage, 1)
	if err == nil || !strings.Contains(err.Error(), "45009") {
		t.Fatalf("errcode reply: %v, want an error naming 45009", err)
	}
}

func TestDingTalkSignature(t *testing.T) {
	srv, got := robotServer(t, `{"errcode":0,"errmsg":"ok"}`)
	const secret = "SECabc123"
	r, err := NewReceiver(ReceiverConfig{ID: "ding", Kind: KindDingTalk, URL: srv.URL + "/robot/send?access_token=TOKEN", Secret: secret}, srv.Client(), fixedNow)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Send(t.Context(), testMessage, 1); err != nil {
		t.Fatal(err)
	}
	c := <-got
	// Computed independently of DingTalkSign, as DingTalk documents it:
	// stringToSign = timestamp + "\n" + secret; HmacSHA256 with the secret;
	// Base64; URL-encoded in the query.
	ts := fixedNow().UnixMilli()
	if c.query.Get("timestamp") != strconv.FormatInt(ts, 10) {
		t.Errorf("timestamp %q, want %d", c.query.Get("timestamp"), ts)
	}
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(strconv.FormatInt(ts, 10) + "\n" + secret))
	want := base64.StdEncoding.EncodeToString(mac.Sum(nil))
	if c.query.Get("sign") != want {
		t.Errorf("sign %q, want %q", c.query.Get("sign"), want)
	}
	if c.query.Get("access_token") != "TOKEN" {
		t.Errorf("access_token lost: %v", c.query)
	}
	var body struct {
		MsgType  string `json:"msgtype"`
		Markdown struct {
			Title string `json:"title"`
			Text  string `json:"text"`
		} `json:"markdown"`
	}
	if err := json.Unmarshal(c.body, &body); err != nil {
		t.Fatal(err)
	}
	if body.MsgType != "markdown" || body.Markdown.Title != testMessage.Title || body.Markdown.Text != testMessage.Text {
		t.Errorf("body %s", c.body)
	}
}

func TestWebhookSignature(t *testing.T) {
	srv, got := robotServer(t, ``)
	const secret = "hook-secret"
	r, err := NewReceiver(ReceiverConfig{ID: "ops", Kind: KindWebhook, URL: srv.URL + "/hook", Secret: secret}, srv.Client(), fixedNow)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Send(t.Context(), testMessage, 77); err != nil {
		t.Fatal(err)
	}
	c := <-got
	ts := c.header.Get(HeaderTimestamp)
	if ts != strconv.FormatInt(fixedNow().Unix(), 10) {
		t.Errorf("timestamp header %q", ts)
	}
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(ts + "."))
	mac.Write(c.body)
	if want := "sha256=" + hex.EncodeToString(mac.Sum(nil)); c.header.Get(HeaderSignature) != want {
		t.Errorf("signature %q, want %q", c.header.Get(HeaderSignature), want)
	}
	if c.header.Get(HeaderDelivery) != "77" {
		t.Errorf("delivery %q", c.header.Get(HeaderDelivery))
	}
	var m Message
	if err := json.Unmarshal(c.body, &m); err != nil || m.AlertID != testMessage.AlertID || m.Title != testMessage.Title {
		t.Errorf("body %s: %v", c.body, err)
	}
}

// A receiver that cannot be reached fails with an error that names it but
// not its URL, which carries the robot's token; the log line says the same.
func TestSecretsNotInErrorsOrLogs(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	dead := srv.URL
	srv.Close()
	r, err := NewReceiver(ReceiverConfig{ID: "duty", Kind: KindDingTalk, URL: dead + "/robot/send?access_token=TOPSECRET", Secret: "SIGNSECRET"}, nil, fixedNow)
	if err != nil {
		t.Fatal(err)
	}
	err = r.Send(t.Context(), testMessage, 1)
	if err == nil {
		t.Fatal("send to a closed server succeeded")
	}
	var logs bytes.Buffer
	slog.New(slog.NewTextHandler(&logs, nil)).Error("delivery", "receiver", r.ID(), "err", err)
	for _, s := range []string{"TOPSECRET", "SIGNSECRET", "access_token"} {
		if strings.Contains(err.Error(), s) || strings.Contains(logs.String(), s) {
			t.Errorf("%q leaked: %v", s, err)
		}
	}
	if !strings.Contains(err.Error(), "duty") {
		t.Errorf("error does not name the receiver: %v", err)
	}
}

func TestNewReceiverRejects(t *testing.T) {
	for name, c := range map[string]ReceiverConfig{
		"no id":              {Kind: KindWeCom, URL: "https://x/"},
		"bad kind":           {ID: "a", Kind: "sms", URL: "https://x/"},
		"bad scheme":         {ID: "a", Kind: KindWeCom, URL: "ftp://x/"},
		"webhook, no secret": {ID: "a", Kind: KindWebhook, URL: "https://x/"},
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := NewReceiver(c, nil, nil); err == nil {
				t.Fatal("accepted")
			}
		})
	}
}
