package alertsapi_test

import (
	"testing"

	"vigil/alerts"
	"vigil/alerts/alertsapi"
)

// TestHTTPStatus: the one table from the domain's codes to HTTP statuses.
func TestHTTPStatus(t *testing.T) {
	for code, want := range map[alerts.Code]int{
		alerts.CodeNotFound:          404,
		alerts.CodeConflict:          409,
		alerts.CodeInvalidTransition: 409,
		alerts.CodeBadRequest:        400,
		alerts.CodeFeedbackRequired:  400,
		alerts.CodeTooLarge:          413,
		alerts.CodeUnavailable:       503,
		alerts.CodeInternal:          500,
		"no-such-code":               500,
	} {
		if got := alertsapi.HTTPStatus(code); got != want {
			t.Errorf("%q: status %d, want %d", code, got, want)
		}
	}
}
