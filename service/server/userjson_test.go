package server

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/pacer-dev/pacer/service/store"
)

// FuzzAppendUser checks the hand-written encoder against encoding/json
// byte for byte.
func FuzzAppendUser(f *testing.F) {
	f.Add(int64(1), "Ada", "ada@example.com", int64(0))
	f.Add(int64(42), "quote \" back\\slash <tag> & \n\t\x01 \u2028 é 日本", "a+b@example.com", int64(1234567))
	f.Add(int64(-1), "\xff invalid", "", int64(-5))
	f.Fuzz(func(t *testing.T, id int64, name, email string, nanos int64) {
		at := time.Unix(1_700_000_000, nanos%1e9).UTC()
		u := store.User{ID: id, Name: name, Email: email, Version: id / 3, CreatedAt: at, UpdatedAt: at.Add(time.Hour)}
		want, err := json.Marshal(u)
		if err != nil {
			t.Fatal(err)
		}
		if got := appendUser(nil, u); string(got) != string(want) {
			t.Fatalf("appendUser =\n%s\nwant\n%s", got, want)
		}
	})
}

func TestAppendUsers(t *testing.T) {
	users := []store.User{{ID: 1, Name: "a"}, {ID: 2, Name: "b"}}
	want, _ := json.Marshal(users)
	if got := appendUsers(nil, users); string(got) != string(want) {
		t.Fatalf("appendUsers = %s, want %s", got, want)
	}
	if got := string(appendUsers(nil, nil)); got != "[]" {
		t.Fatalf("no users = %s", got)
	}
}
