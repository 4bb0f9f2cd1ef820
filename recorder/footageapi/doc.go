// Package footageapi is the investigators' HTTP layer over the recorder:
// recordings listings with their gaps, segment downloads with Range,
// exports and their manifests (Server), and evidence holds placed and
// released by hand (HoldServer). It parses requests, maps the recorder's
// errors to statuses and audits every retrieval; planning, verifying and
// muxing footage stay in package recorder, and authentication, roles and
// routing are the app's (internal/app), applied through Register's wrap.
package footageapi
