package server

import (
	"encoding/json"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/pacer-dev/pacer/service/store"
)

// appendUser appends u as JSON, exactly as json.Marshal would write it,
// without reflection: users are encoded on every database read, so this is
// the hot path of uncached reads, batch reads and writes.
func appendUser(b []byte, u store.User) []byte {
	start := len(b)
	b = append(b, `{"id":`...)
	b = strconv.AppendInt(b, u.ID, 10)
	b = append(b, `,"name":`...)
	b, okName := appendString(b, u.Name)
	b = append(b, `,"email":`...)
	b, okEmail := appendString(b, u.Email)
	if !okName || !okEmail {
		// json.Marshal's replacement of invalid UTF-8 is rare enough to borrow.
		raw, _ := json.Marshal(u)
		return append(b[:start], raw...)
	}
	b = append(b, `,"version":`...)
	b = strconv.AppendInt(b, u.Version, 10)
	b = append(b, `,"created_at":"`...)
	b = u.CreatedAt.AppendFormat(b, time.RFC3339Nano)
	b = append(b, `","updated_at":"`...)
	b = u.UpdatedAt.AppendFormat(b, time.RFC3339Nano)
	return append(b, `"}`...)
}

func appendUsers(b []byte, users []store.User) []byte {
	b = append(b, '[')
	for i, u := range users {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendUser(b, u)
	}
	return append(b, ']')
}

const hexDigits = "0123456789abcdef"

// plainASCII marks the bytes encoding/json writes as they are (HTML-safe:
// <, > and & are escaped).
var plainASCII = func() (t [utf8.RuneSelf]bool) {
	for c := 0x20; c < utf8.RuneSelf; c++ {
		t[c] = c != '"' && c != '\\' && c != '<' && c != '>' && c != '&'
	}
	return t
}()

// appendString appends s as a JSON string with the escapes encoding/json
// uses, HTML-safe ones included. It reports false if s is not valid UTF-8
// (json.Marshal replaces such bytes; the caller falls back to it).
func appendString(b []byte, s string) ([]byte, bool) {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if plainASCII[c] {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			return b, false
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"'), true
}
