// Package pull owns Vigil's event subscriptions to cameras and NVRs: the
// ONVIF PullPoint (WS-Security UsernameToken with PasswordDigest, the
// camera's clock offset from GetSystemDateAndTime, PullMessages, Renew,
// Unsubscribe), the Hikvision ISAPI alertStream and the Dahua
// eventManager.cgi attach stream (multipart over HTTP digest auth). A
// Client holds one subscription, reconnects with internal/backoff, pauses
// long after repeated refused logins, and reports its health.
//
// It is a package of its own, beside alerts/vendor, because it owns
// connections, credentials and timers, while vendor is pure byte parsing
// that is fuzzed on its own: the clients hand each payload to vendor's
// parsers and the events to a callback. It does not map channels or apply
// events.map (internal/app does, the same way for pushed events) and knows
// nothing of the engine.
package pull
