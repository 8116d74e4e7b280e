package server

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/pacer-dev/pacer/service/store"
)

// decodeBatch reads the body of POST /v1/users/batch as a token stream and
// counts the items as they arrive: a body of a million `{}` is refused at
// item maxBatchCreate+1, never held in memory as a million structs.
func decodeBatch(r io.Reader) (batchCreateRequest, error) {
	dec := json.NewDecoder(r)
	dec.DisallowUnknownFields()
	var req batchCreateRequest
	if tok, err := dec.Token(); err != nil {
		return req, decodeError(err)
	} else if d, ok := tok.(json.Delim); !ok || d != '{' {
		return req, badJSON("body must be a JSON object, got " + tokenKind(tok))
	}
	seenUsers := false
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return req, midStreamError(err)
		}
		if key, _ := tok.(string); key != "users" {
			return req, badJSON(fmt.Sprintf("unknown field %q", key))
		}
		if seenUsers {
			return req, badJSON(`field "users" given twice`)
		}
		seenUsers = true
		if req.Users, err = decodeBatchItems(dec); err != nil {
			return req, err
		}
	}
	if _, err := dec.Token(); err != nil { // the closing '}'
		return req, midStreamError(err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		if err != nil {
			return req, decodeError(err)
		}
		return req, badJSON("body must hold a single JSON object")
	}
	return req, nil
}

// midStreamError is decodeError for a read after the first token, where
// the end of the body means truncated JSON, not an empty body.
func midStreamError(err error) error {
	if errors.Is(err, io.EOF) {
		err = io.ErrUnexpectedEOF
	}
	return decodeError(err)
}

func decodeBatchItems(dec *json.Decoder) ([]store.NewUser, error) {
	if err := expectDelim(dec, '[', "users: must be an array"); err != nil {
		return nil, err
	}
	users := make([]store.NewUser, 0, 16)
	for dec.More() {
		if len(users) == maxBatchCreate {
			return nil, invalid("users", fmt.Sprintf("must hold at most %d users", maxBatchCreate))
		}
		var n store.NewUser
		if err := dec.Decode(&n); err != nil {
			i := len(users)
			// A body cut off is no one user's fault.
			if ae, ok := decodeError(err).(*apiError); ok && ae.status == 400 && !truncated(err) {
				ae.message = fmt.Sprintf("users[%d]: %s", i, ae.message)
				ae.index = &i
				return nil, ae
			}
			return nil, midStreamError(err)
		}
		users = append(users, n)
	}
	if _, err := dec.Token(); err != nil { // the closing ']'
		return nil, midStreamError(err)
	}
	return users, nil
}

// expectDelim reads the next token (not the first) and fails with msg
// unless it is d.
func expectDelim(dec *json.Decoder, d json.Delim, msg string) error {
	tok, err := dec.Token()
	if err != nil {
		return midStreamError(err)
	}
	if got, ok := tok.(json.Delim); !ok || got != d {
		return badJSON(msg + ", got " + tokenKind(tok))
	}
	return nil
}

// tokenKind names a JSON token's type for error messages.
func tokenKind(tok json.Token) string {
	switch v := tok.(type) {
	case json.Delim:
		if v == '[' {
			return "array"
		}
		return "object"
	case string:
		return "string"
	case float64, json.Number:
		return "number"
	case bool:
		return "boolean"
	}
	return "null"
}
