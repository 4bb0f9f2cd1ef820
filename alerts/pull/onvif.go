package pull

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha1"
	"encoding/base64"
	"encoding/xml"
	"errors"
	"fmt"
	"html"
	"io"
	"net/http"
	"strings"
	"time"

	"vigil/alerts/vendor"
)

// ONVIF PullPoint settings (ONVIF Core 9.1 "Real-time Pull-Point
// Notification Interface").
const (
	onvifPullTimeout  = 10 * time.Second // PullMessages Timeout
	onvifMessageLimit = 100              // PullMessages MessageLimit
	onvifTermination  = 60 * time.Second // InitialTerminationTime and Renew
	// onvifRenewBefore: Renew once less than this is left of the
	// subscription, more than one PullMessages wait.
	onvifRenewBefore = 2 * onvifPullTimeout
)

// onvifSession subscribes to the camera's PullPoint and pulls until ctx
// ends or the camera fails, then unsubscribes.
func (c *Client) onvifSession(ctx context.Context) (up bool, err error) {
	offset, err := c.onvifClockOffset(ctx)
	if err != nil {
		return false, err
	}
	eventsURL, err := c.onvifEventsURL(ctx, offset)
	if err != nil {
		return false, err
	}
	var created struct {
		Address     string `xml:"Body>CreatePullPointSubscriptionResponse>SubscriptionReference>Address"`
		Current     string `xml:"Body>CreatePullPointSubscriptionResponse>CurrentTime"`
		Termination string `xml:"Body>CreatePullPointSubscriptionResponse>TerminationTime"`
	}
	body := `<tev:CreatePullPointSubscription><tev:InitialTerminationTime>` + xsDuration(onvifTermination) + `</tev:InitialTerminationTime></tev:CreatePullPointSubscription>`
	if err := c.soap(ctx, eventsURL, "http://www.onvif.org/ver10/events/wsdl/EventPortType/CreatePullPointSubscriptionRequest", body, offset, &created); err != nil {
		return false, fmt.Errorf("CreatePullPointSubscription: %w", err)
	}
	sub := strings.TrimSpace(created.Address)
	if sub == "" {
		return false, errors.New("CreatePullPointSubscription: no subscription address")
	}
	termination := c.onvifTerminationLocal(created.Current, created.Termination)
	// Unsubscribe on the way out, also when ctx ended: the camera holds
	// a limited number of subscriptions.
	defer func() {
		uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if err := c.soap(uctx, sub, "http://docs.oasis-open.org/wsn/bw-2/SubscriptionManager/UnsubscribeRequest", `<wsnt:Unsubscribe/>`, offset, nil); err != nil {
			c.log.Debug("ONVIF Unsubscribe failed", "err", err)
		}
	}()
	c.setStatus(Up, nil)
	c.log.Info("event stream up", "subscription", sub)
	pull := fmt.Sprintf(`<tev:PullMessages><tev:Timeout>%s</tev:Timeout><tev:MessageLimit>%d</tev:MessageLimit></tev:PullMessages>`, xsDuration(onvifPullTimeout), onvifMessageLimit)
	for ctx.Err() == nil {
		if !termination.IsZero() && termination.Sub(c.opts.Now()) < onvifRenewBefore {
			var renewed struct {
				Current     string `xml:"Body>RenewResponse>CurrentTime"`
				Termination string `xml:"Body>RenewResponse>TerminationTime"`
			}
			body := `<wsnt:Renew><wsnt:TerminationTime>` + xsDuration(onvifTermination) + `</wsnt:TerminationTime></wsnt:Renew>`
			if err := c.soap(ctx, sub, "http://docs.oasis-open.org/wsn/bw-2/SubscriptionManager/RenewRequest", body, offset, &renewed); err != nil {
				return true, fmt.Errorf("Renew: %w", err)
			}
			termination = c.onvifTerminationLocal(renewed.Current, renewed.Termination)
			if termination.IsZero() {
				termination = c.opts.Now().Add(onvifTermination)
			}
		}
		pctx, cancel := context.WithTimeout(ctx, onvifPullTimeout+c.opts.IdleTimeout)
		raw, err := c.soapRaw(pctx, sub, "http://www.onvif.org/ver10/events/wsdl/PullPointSubscription/PullMessagesRequest", pull, offset)
		cancel()
		if err != nil {
			return true, fmt.Errorf("PullMessages: %w", err)
		}
		evs, err := vendor.ParseONVIFNotify(c.opts.Name, raw, c.opts.Now())
		if err != nil {
			return true, fmt.Errorf("PullMessages: %w", err)
		}
		c.deliver(evs)
	}
	return true, nil
}

// onvifTerminationLocal turns the camera's termination time into local
// time, through the camera's own CurrentTime of the same answer.
func (c *Client) onvifTerminationLocal(current, termination string) time.Time {
	cur, err1 := time.Parse(time.RFC3339Nano, strings.TrimSpace(current))
	term, err2 := time.Parse(time.RFC3339Nano, strings.TrimSpace(termination))
	if err2 != nil {
		return time.Time{}
	}
	if err1 != nil {
		return term
	}
	return c.opts.Now().Add(term.Sub(cur))
}

// onvifClockOffset asks the camera for its clock (no authentication, as
// the standard allows) and returns camera time minus local time: WS-Security
// Created must be in the camera's time or it refuses the request.
func (c *Client) onvifClockOffset(ctx context.Context) (time.Duration, error) {
	var r struct {
		D struct {
			Year   int `xml:"Date>Year"`
			Month  int `xml:"Date>Month"`
			Day    int `xml:"Date>Day"`
			Hour   int `xml:"Time>Hour"`
			Minute int `xml:"Time>Minute"`
			Second int `xml:"Time>Second"`
		} `xml:"Body>GetSystemDateAndTimeResponse>SystemDateAndTime>UTCDateTime"`
	}
	sent := c.opts.Now()
	const action = "http://www.onvif.org/ver10/device/wsdl/GetSystemDateAndTime"
	if err := c.soapCall(ctx, c.opts.URL, action, `<tds:GetSystemDateAndTime/>`, 0, false, &r); err != nil {
		// Some firmware wants this one authenticated too, against the
		// standard; try with the local clock.
		if err2 := c.soapCall(ctx, c.opts.URL, action, `<tds:GetSystemDateAndTime/>`, 0, true, &r); err2 != nil {
			return 0, fmt.Errorf("GetSystemDateAndTime: %w", err)
		}
	}
	if r.D.Year == 0 {
		return 0, nil // no UTC clock given: assume it agrees
	}
	cam := time.Date(r.D.Year, time.Month(r.D.Month), r.D.Day, r.D.Hour, r.D.Minute, r.D.Second, 0, time.UTC)
	return cam.Sub(sent), nil
}

// onvifEventsURL finds the event service: GetCapabilities' Events XAddr.
func (c *Client) onvifEventsURL(ctx context.Context, offset time.Duration) (string, error) {
	var r struct {
		XAddr string `xml:"Body>GetCapabilitiesResponse>Capabilities>Events>XAddr"`
	}
	body := `<tds:GetCapabilities><tds:Category>Events</tds:Category></tds:GetCapabilities>`
	if err := c.soap(ctx, c.opts.URL, "http://www.onvif.org/ver10/device/wsdl/GetCapabilities", body, offset, &r); err != nil {
		return "", fmt.Errorf("GetCapabilities: %w", err)
	}
	if x := strings.TrimSpace(r.XAddr); x != "" {
		return x, nil
	}
	return "", errors.New("GetCapabilities: the camera has no event service")
}

func (c *Client) soap(ctx context.Context, target, action, body string, offset time.Duration, out any) error {
	return c.soapCall(ctx, target, action, body, offset, true, out)
}

func (c *Client) soapCall(ctx context.Context, target, action, body string, offset time.Duration, auth bool, out any) error {
	raw, err := c.soapPost(ctx, target, action, body, offset, auth)
	if err != nil {
		return err
	}
	if out == nil {
		return nil
	}
	if err := xml.Unmarshal(raw, out); err != nil {
		return fmt.Errorf("malformed answer: %w", err)
	}
	return nil
}

func (c *Client) soapRaw(ctx context.Context, target, action, body string, offset time.Duration) ([]byte, error) {
	return c.soapPost(ctx, target, action, body, offset, true)
}

// soapPost sends one SOAP 1.2 request, with a WS-Security UsernameToken
// (PasswordDigest) when auth is set, and returns the answer's body.
func (c *Client) soapPost(ctx context.Context, target, action, body string, offset time.Duration, auth bool) ([]byte, error) {
	var env bytes.Buffer
	env.WriteString(`<?xml version="1.0" encoding="UTF-8"?>` +
		`<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope" xmlns:wsa="http://www.w3.org/2005/08/addressing"` +
		` xmlns:tds="http://www.onvif.org/ver10/device/wsdl" xmlns:tev="http://www.onvif.org/ver10/events/wsdl"` +
		` xmlns:wsnt="http://docs.oasis-open.org/wsn/b-2"><s:Header>`)
	env.WriteString(`<wsa:Action>` + html.EscapeString(action) + `</wsa:Action><wsa:To>` + html.EscapeString(target) + `</wsa:To>`)
	if auth && c.opts.Username != "" {
		env.WriteString(wsSecurity(c.opts.Username, c.opts.Password, c.opts.Now().Add(offset)))
	}
	env.WriteString(`</s:Header><s:Body>` + body + `</s:Body></s:Envelope>`)
	// Some cameras also (or only) want HTTP digest authentication on the
	// SOAP request: answer a Digest challenge once.
	var resp *http.Response
	var raw []byte
	authz := ""
	for attempt := 0; attempt < 2; attempt++ {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, bytes.NewReader(env.Bytes()))
		if err != nil {
			return nil, err
		}
		req.Header.Set("Content-Type", `application/soap+xml; charset=utf-8; action="`+action+`"`)
		if authz != "" {
			req.Header.Set("Authorization", authz)
		}
		if resp, err = c.opts.HTTP.Do(req); err != nil {
			return nil, err
		}
		raw, err = io.ReadAll(io.LimitReader(resp.Body, MaxPartBytes+1))
		resp.Body.Close()
		if err != nil {
			return nil, err
		}
		if len(raw) > MaxPartBytes {
			return nil, errPartTooLarge
		}
		if resp.StatusCode != http.StatusUnauthorized || authz != "" || c.opts.Username == "" {
			break
		}
		ch, ok := parseDigestChallenge(resp.Header)
		if !ok {
			break
		}
		if authz, err = ch.authorization(http.MethodPost, req.URL.RequestURI(), c.opts.Username, c.opts.Password, 1); err != nil {
			return nil, err
		}
	}
	if resp.StatusCode == http.StatusUnauthorized {
		return nil, ErrUnauthorized
	}
	if resp.StatusCode != http.StatusOK {
		if _, err := vendor.ParseONVIFNotify(c.opts.Name, raw, c.opts.Now()); err != nil && strings.Contains(err.Error(), "NotAuthorized") {
			return nil, fmt.Errorf("%w: %v", ErrUnauthorized, err)
		} else if err != nil {
			return nil, fmt.Errorf("HTTP %d: %v", resp.StatusCode, err)
		}
		return nil, fmt.Errorf("HTTP %d", resp.StatusCode)
	}
	return raw, nil
}

// wsSecurity is the WS-Security header with a UsernameToken whose
// PasswordDigest is Base64(SHA-1(nonce + created + password)).
func wsSecurity(user, pass string, created time.Time) string {
	var nonce [16]byte
	_, _ = rand.Read(nonce[:])
	ts := created.UTC().Format("2006-01-02T15:04:05.000Z")
	h := sha1.New()
	h.Write(nonce[:])
	h.Write([]byte(ts))
	h.Write([]byte(pass))
	return `<wsse:Security s:mustUnderstand="1" xmlns:wsse="http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"` +
		` xmlns:wsu="http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd"><wsse:UsernameToken>` +
		`<wsse:Username>` + html.EscapeString(user) + `</wsse:Username>` +
		`<wsse:Password Type="http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-username-token-profile-1.0#PasswordDigest">` + base64.StdEncoding.EncodeToString(h.Sum(nil)) + `</wsse:Password>` +
		`<wsse:Nonce EncodingType="http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-soap-message-security-1.0#Base64Binary">` + base64.StdEncoding.EncodeToString(nonce[:]) + `</wsse:Nonce>` +
		`<wsu:Created>` + ts + `</wsu:Created></wsse:UsernameToken></wsse:Security>`
}

// xsDuration writes d as an xs:duration ("PT60S").
func xsDuration(d time.Duration) string { return fmt.Sprintf("PT%dS", int(d/time.Second)) }
