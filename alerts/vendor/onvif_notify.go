package vendor

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"vigil/alerts"
)

// maxNotifications bounds the notifications read from one SOAP message.
const maxNotifications = 1000

// ParseONVIFNotify reads a SOAP message that carries WS-BaseNotification
// messages: the Notify a camera posts to a push subscription
// (POST /api/v1/hooks/{camera}/onvif), or the PullMessagesResponse of a
// PullPoint subscription. It returns one Event per wsnt:NotificationMessage
// found anywhere under the SOAP Body, in document order, read exactly as
// ParseONVIF reads them (topics, keys, states, state topics). A message
// with no notification gives no events and no error (an empty
// PullMessagesResponse is the usual answer); a SOAP Fault is an error that
// carries its reason. At most MaxPayloadBytes.
func ParseONVIFNotify(camera string, doc []byte, now time.Time) ([]alerts.Event, error) {
	if len(doc) > MaxPayloadBytes {
		return nil, fmt.Errorf("onvif notify: message of %d bytes: %w", len(doc), ErrPayloadTooLarge)
	}
	if len(bytes.TrimSpace(doc)) == 0 {
		return nil, errors.New("onvif notify: empty message")
	}
	d := parseNewXMLDecoder(doc)
	var events []alerts.Event
	n := 0
	root := ""
	for {
		tok, err := d.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("onvif notify: malformed XML: %w", err)
		}
		switch t := tok.(type) {
		case xml.StartElement:
			if root == "" {
				root = t.Name.Local
				if !strings.EqualFold(root, "Envelope") && root != "Notify" && root != "PullMessagesResponse" {
					return nil, fmt.Errorf("onvif notify: root element %s: want soap:Envelope", parseQuote(root))
				}
			}
			switch t.Name.Local {
			case "Fault":
				var f struct {
					Reason string `xml:"Reason>Text"`
					Code   string `xml:"Code>Subcode>Value"`
					S11    string `xml:"faultstring"`
				}
				if err := d.DecodeElement(&f, &t); err != nil {
					return nil, fmt.Errorf("onvif notify: malformed Fault: %w", err)
				}
				return nil, fmt.Errorf("onvif notify: SOAP fault %s: %s", parseQuote(strings.TrimSpace(f.Code)), parseQuote(strings.TrimSpace(f.Reason+f.S11)))
			case "NotificationMessage":
				n++
				if n > maxNotifications {
					return nil, fmt.Errorf("onvif notify: more than %d notifications", maxNotifications)
				}
				var nm onvifNotification
				if err := d.DecodeElement(&nm, &t); err != nil {
					return nil, fmt.Errorf("onvif notify: notification %d: malformed XML: %w", n, err)
				}
				e, err := nm.event(camera, now)
				if err != nil {
					return nil, fmt.Errorf("onvif notify: notification %d: %w", n, err)
				}
				events = append(events, e)
			}
		}
	}
	if root == "" {
		return nil, errors.New("onvif notify: no XML element")
	}
	return events, nil
}
