package server

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/mail"
	"os"
	"reflect"
	"strings"
	"unicode/utf8"

	"github.com/pacer-dev/pacer/service/store"
)

// Limits of the API.
const (
	maxNameLen     = 200
	maxEmailLen    = 254
	maxBatchCreate = 1000
	maxBatchRead   = 100
	defaultPage    = 50
	maxPage        = 1000
)

// decodeJSON reads exactly one JSON value into v. Unknown fields, wrong
// types and trailing data are 400; a body over the limit is 413.
func decodeJSON(r io.Reader, v any) error {
	dec := json.NewDecoder(r)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return decodeError(err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		if err != nil {
			return decodeError(err)
		}
		return badJSON("body must hold a single JSON object")
	}
	return nil
}

func decodeError(err error) error {
	var tooLarge *http.MaxBytesError
	var syntax *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &tooLarge):
		return &apiError{status: http.StatusRequestEntityTooLarge, code: codeBodyTooLarge,
			message: fmt.Sprintf("request body over %d bytes", tooLarge.Limit)}
	case isTimeout(err):
		return &apiError{status: http.StatusRequestTimeout, code: codeBodyTimeout,
			message: "request body not received within the request timeout"}
	case errors.Is(err, io.EOF):
		return badJSON("request body is empty")
	case truncated(err):
		return badJSON("request body is truncated JSON")
	case errors.As(err, &syntax):
		return badJSON(fmt.Sprintf("malformed JSON at byte %d", syntax.Offset))
	case errors.As(err, &typ):
		// Name JSON types, never Go ones: the client knows no store.NewUser.
		if typ.Field != "" {
			return badJSON(fmt.Sprintf("%s: must be %s, got %s", typ.Field, jsonKind(typ.Type), typ.Value))
		}
		return badJSON(fmt.Sprintf("body must be %s, got %s", jsonKind(typ.Type), typ.Value))
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		return badJSON(strings.TrimPrefix(err.Error(), "json: "))
	}
	return badJSON("malformed JSON")
}

// truncated reports a body that stops inside a JSON value. Since Go 1.27
// (encoding/json over json/v2) a Decoder says so with a SyntaxError of
// this text where it returned io.ErrUnexpectedEOF before; Unmarshal has
// always used that text.
func truncated(err error) bool {
	var syntax *json.SyntaxError
	return errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.As(err, &syntax) && syntax.Error() == "unexpected end of JSON input"
}

// nulMessage explains why U+0000 is refused: PostgreSQL text cannot hold it.
const nulMessage = "must not contain the NUL character (U+0000)"

// jsonKind names the JSON type that decodes into t.
func jsonKind(t reflect.Type) string {
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "a boolean"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64,
		reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.Slice, reflect.Array:
		return "an array"
	case reflect.Pointer:
		return jsonKind(t.Elem())
	}
	return "a JSON object"
}

func badJSON(msg string) error {
	return &apiError{status: http.StatusBadRequest, code: codeInvalidJSON, message: msg}
}

func invalid(field, msg string) *apiError {
	return &apiError{status: http.StatusUnprocessableEntity, code: codeValidation, message: field + ": " + msg}
}

func validateName(field, name string) *apiError {
	if !utf8.ValidString(name) {
		return invalid(field, "must be valid UTF-8")
	}
	if strings.IndexByte(name, 0) >= 0 {
		return invalid(field, nulMessage)
	}
	if strings.TrimSpace(name) == "" {
		return invalid(field, "must not be blank")
	}
	if utf8.RuneCountInString(name) > maxNameLen {
		return invalid(field, fmt.Sprintf("must be at most %d characters", maxNameLen))
	}
	return nil
}

func validateEmail(field, email string) *apiError {
	if email == "" {
		return invalid(field, "is required")
	}
	if strings.IndexByte(email, 0) >= 0 {
		return invalid(field, nulMessage)
	}
	if len(email) > maxEmailLen {
		return invalid(field, fmt.Sprintf("must be at most %d characters", maxEmailLen))
	}
	addr, err := mail.ParseAddress(email)
	// Only a bare address: no display name, comments or angle brackets.
	if err != nil || addr.Address != email || !strings.Contains(email[strings.LastIndexByte(email, '@')+1:], ".") {
		return invalid(field, "must be a valid email address such as ada@example.com")
	}
	return nil
}

func validateNewUser(prefix string, n store.NewUser) *apiError {
	if err := validateName(prefix+"name", n.Name); err != nil {
		return err
	}
	return validateEmail(prefix+"email", n.Email)
}

func validatePatch(p store.UserPatch) *apiError {
	if p.Name == nil && p.Email == nil {
		return invalid("body", "must set name or email")
	}
	if p.Name != nil {
		if err := validateName("name", *p.Name); err != nil {
			return err
		}
	}
	if p.Email != nil {
		if err := validateEmail("email", *p.Email); err != nil {
			return err
		}
	}
	return nil
}

// batchCreateRequest is the body of POST /v1/users/batch.
type batchCreateRequest struct {
	Users []store.NewUser `json:"users"`
}

// validateBatch checks every item, and emails repeated within the batch,
// before anything reaches the database.
func validateBatch(req batchCreateRequest) *apiError {
	if len(req.Users) == 0 {
		return invalid("users", "must hold at least one user")
	}
	if len(req.Users) > maxBatchCreate {
		return invalid("users", fmt.Sprintf("must hold at most %d users, got %d", maxBatchCreate, len(req.Users)))
	}
	seen := make(map[string]int, len(req.Users))
	for i, n := range req.Users {
		if err := validateNewUser(fmt.Sprintf("users[%d].", i), n); err != nil {
			err.index = &i
			return err
		}
		key := strings.ToLower(n.Email)
		if first, dup := seen[key]; dup {
			return &apiError{status: http.StatusConflict, code: codeDuplicateEmail, index: &i,
				message: fmt.Sprintf("users[%d].email: repeats users[%d].email; nothing was created", i, first)}
		}
		seen[key] = i
	}
	return nil
}

// isTimeout reports whether a read or write on the connection hit its
// deadline (the body's, withBodyLimit; the answer's, recorder.go).
func isTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, os.ErrDeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout())
}
