package alerts

import "errors"

// Code classifies a domain error for callers; alertsapi maps it to HTTP.
type Code string

// Error codes of the alerts domain.
const (
	CodeNotFound          Code = "not_found"
	CodeConflict          Code = "conflict"           // stale version: retry with the current alert
	CodeInvalidTransition Code = "invalid_transition" // not allowed from the alert's status
	CodeBadRequest        Code = "bad_request"
	CodeFeedbackRequired  Code = "feedback_required" // resolve without 办结反馈
	CodeTooLarge          Code = "too_large"         // request body over its limit
	CodeUnavailable       Code = "unavailable"       // queue full, journal unreachable
	CodeInternal          Code = "internal"
)

// Error is a domain error with a code. Message is safe to show to users.
type Error struct {
	Code    Code
	Message string
	Err     error // the cause, may be nil
}

func (e *Error) Error() string {
	if e.Err != nil {
		return e.Message + ": " + e.Err.Error()
	}
	return e.Message
}

func (e *Error) Unwrap() error { return e.Err }

func errorf(code Code, msg string, cause error) *Error {
	return &Error{Code: code, Message: msg, Err: cause}
}

// ErrorCode classifies any error: an *Error's code, the Journal's sentinel
// errors, CodeInternal otherwise, "" for nil.
func ErrorCode(err error) Code {
	var e *Error
	switch {
	case err == nil:
		return ""
	case errors.As(err, &e):
		return e.Code
	case errors.Is(err, ErrConflict):
		return CodeConflict
	case errors.Is(err, ErrNotFound):
		return CodeNotFound
	case errors.Is(err, ErrBadCursor):
		return CodeBadRequest
	case errors.Is(err, ErrQueueFull), errors.Is(err, ErrUnavailable):
		return CodeUnavailable
	}
	return CodeInternal
}

// ErrorMessage is the text for users: an *Error's message, or a generic text
// for internal errors and an unreachable journal so that nothing internal
// (addresses, backend messages) leaks.
func ErrorMessage(err error) string {
	var e *Error
	switch {
	case errors.As(err, &e):
		return e.Message
	case ErrorCode(err) == CodeInternal:
		return "internal error"
	case errors.Is(err, ErrUnavailable):
		return "the alert journal is unavailable; retry later"
	}
	return err.Error()
}
