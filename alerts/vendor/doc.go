// Package vendor owns the parsers of camera event payloads: ONVIF
// (tt:MetadataStream from the RTP metadata track, and WS-BaseNotification
// Notify / PullMessages bodies), Hikvision ISAPI EventNotificationAlert,
// Dahua event records (Code=…;action=…, DHIP JSON, eventManager multipart)
// and Vigil's generic JSON hook. Each parser turns outside bytes into
// alerts.Event values, never panics and reads at most MaxPayloadBytes; the
// per-camera or per-device topic mapping (events.map, events.ignore) and NVR
// channel mapping are applied here too (Mapping, Channels).
//
// It does not own how payloads arrive: the webhook endpoints are in
// alerts (Hooks), the pull subscriptions in alerts/pull, the RTP metadata
// track in ingest; internal/app connects them. The alerts core does not
// import this package, so adding a vendor never means editing the core.
package vendor
