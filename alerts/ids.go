package alerts

import "regexp"

var idPattern = regexp.MustCompile(`^[0-9A-Za-z_-]{1,64}$`)

// ValidAlertID reports whether id has the shape of an alert ID, so callers
// outside this package check a path value before looking it up.
func ValidAlertID(id string) bool { return idPattern.MatchString(id) }
