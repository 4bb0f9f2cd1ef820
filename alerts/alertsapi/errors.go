package alertsapi

import (
	"net/http"

	"vigil/alerts"
)

// httpStatus is the one table from codes to HTTP statuses.
var httpStatus = map[alerts.Code]int{
	alerts.CodeNotFound:          http.StatusNotFound,
	alerts.CodeConflict:          http.StatusConflict,
	alerts.CodeInvalidTransition: http.StatusConflict,
	alerts.CodeBadRequest:        http.StatusBadRequest,
	alerts.CodeFeedbackRequired:  http.StatusBadRequest,
	alerts.CodeTooLarge:          http.StatusRequestEntityTooLarge,
	alerts.CodeUnavailable:       http.StatusServiceUnavailable,
	alerts.CodeInternal:          http.StatusInternalServerError,
}

// HTTPStatus maps a code to its HTTP status (500 for unknown codes).
func HTTPStatus(c alerts.Code) int {
	if s, ok := httpStatus[c]; ok {
		return s
	}
	return http.StatusInternalServerError
}

// codeError is a domain error without a cause, its message shown as is.
func codeError(code alerts.Code, msg string) *alerts.Error {
	return &alerts.Error{Code: code, Message: msg}
}
