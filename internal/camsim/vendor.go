package camsim

import (
	"fmt"
	"net/http"
	"strings"
	"time"
)

// Vendor event streams a simulated camera can serve instead of writing its
// events into the metadata track (CameraSpec.Vendor).
const (
	VendorHikvision = "hikvision" // ISAPI /ISAPI/Event/notification/alertStream
	VendorDahua     = "dahua"     // /cgi-bin/eventManager.cgi?action=attach
)

// vendorHeartbeat is how often a vendor stream sends its heartbeat (real
// time): Dahua's attach asks for heartbeat=5, Hikvision sends one about
// every 10 s.
const vendorHeartbeat = 5 * time.Second

// VendorURL is the HTTP base URL of a camera's vendor event stream (the
// URL to configure as events.url), or "" when it serves none.
func (s *Server) VendorURL(path string) string {
	c, ok := s.cams[path]
	if !ok || c.vendor == nil || s.vendorLn == nil {
		return ""
	}
	return "http://" + s.vendorLn.Addr().String() + "/" + path
}

// vendorHandler serves every camera's vendor stream under /{path}/.
func (s *Server) vendorHandler() http.Handler {
	mux := http.NewServeMux()
	for _, c := range s.order {
		if c.vendor != nil {
			mux.Handle("/"+c.path+"/", http.StripPrefix("/"+c.path, c.vendor))
		}
	}
	return mux
}

// sendHeartbeats keeps every vendor stream alive.
func (s *Server) sendHeartbeats() {
	for _, c := range s.order {
		if c.vendor == nil {
			continue
		}
		switch c.vendorKind {
		case VendorHikvision:
			c.vendor.Send("application/xml; charset=UTF-8", hikvisionAlert("videoloss", false, 0, time.Now()))
		case VendorDahua:
			c.vendor.Send("text/plain", "Heartbeat")
		}
	}
}

// vendorSend writes a triggered event to the camera's vendor stream.
func (c *camera) vendorSend(typ string, on bool, key string, now time.Time) {
	switch c.vendorKind {
	case VendorHikvision:
		et := map[string]string{Motion: "VMD", CellMotion: "VMD", Intrusion: "fielddetection", LineCrossing: "linedetection", Tamper: "shelteralarm"}[typ]
		posts := 1
		if !on {
			posts = 0
		}
		c.vendor.Send("application/xml; charset=UTF-8", hikvisionAlert(et, on, posts, now))
	case VendorDahua:
		code := map[string]string{Motion: "VideoMotion", CellMotion: "VideoMotion", Intrusion: "CrossRegionDetection", LineCrossing: "CrossLineDetection", Tamper: "VideoBlind"}[typ]
		action := "Start"
		switch {
		case typ == LineCrossing:
			action = "Pulse"
		case !on:
			action = "Stop"
		}
		data := ""
		if typ == Intrusion || typ == LineCrossing {
			data = fmt.Sprintf(`;data={"Name":"Rule1","Object":{"ObjectID":%q,"ObjectType":"Human"},"UTC":%d}`, key, now.Unix())
		}
		c.vendor.Send("text/plain", "Code="+code+";action="+action+";index=0"+data)
	}
}

func hikvisionAlert(eventType string, on bool, posts int, now time.Time) string {
	state := "inactive"
	if on {
		state = "active"
	}
	return `<?xml version="1.0" encoding="UTF-8"?>
<EventNotificationAlert version="2.0" xmlns="http://www.hikvision.com/ver20/XMLSchema">
<ipAddress>127.0.0.1</ipAddress><portNo>80</portNo><protocol>HTTP</protocol><macAddress>00:00:5e:00:53:01</macAddress>
<channelID>1</channelID><dateTime>` + now.UTC().Format("2006-01-02T15:04:05Z") + `</dateTime>
<activePostCount>` + fmt.Sprint(posts) + `</activePostCount><eventType>` + eventType + `</eventType><eventState>` + state + `</eventState>
<eventDescription>` + strings.ToUpper(eventType[:1]) + eventType[1:] + ` alarm</eventDescription><channelName>Camera 01</channelName>
</EventNotificationAlert>`
}
