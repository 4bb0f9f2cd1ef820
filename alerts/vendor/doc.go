// Package vendor owns the parsers of camera event payloads: ONVIF
// (tt:MetadataStream from the RTP metadata track, and WS-BaseNotification
// Notify / PullMessages bodies), Hikvision ISAPI EventNotificationAlert,
// Dahua event records (Code=…;action=…, DHIP JSON, eventManager multipart)
// and Vigil's generic JSON hook. Each parser turns outside bytes into
// alerts.Event values, never panics and reads at most MaxPayloadBytes. It
// also holds what turns parsed events into a camera's events, for
// internal/app to apply alike to pushed, pulled and metadata events:
// Mapping (events.map, events.ignore, ONVIF state topics), Channels (an
// NVR's channels to cameras) and DahuaStops (a Stop without its rule).
//
// It does not own how payloads arrive: the webhook endpoints are in
// alerts (Hooks), the pull subscriptions in alerts/pull, the RTP metadata
// track in ingest; internal/app connects them. The alerts core does not
// import this package, so adding a vendor never means editing the core.
package vendor
