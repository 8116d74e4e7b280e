package jobs

import (
	"testing"
	"time"
)

func TestRetryBacksOffExponentiallyThenGivesUp(t *testing.T) {
	r := Retry{MaxAttempts: 6, Base: time.Second, Max: 10 * time.Second}
	want := []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second, 10 * time.Second}
	for i, w := range want {
		got, again := r.After(i + 1)
		if !again || got != w {
			t.Fatalf("after attempt %d: %s, %v; want %s and a retry", i+1, got, again, w)
		}
	}
	if _, again := r.After(6); again {
		t.Fatal("retried after the last allowed attempt")
	}
	var d Retry
	d.defaults()
	if got, again := d.After(1); !again || got != time.Second {
		t.Fatalf("defaults after attempt 1: %s, %v; want 1s and a retry", got, again)
	}
	if _, again := d.After(10); again {
		t.Fatal("defaults: retried after the 10th attempt")
	}
}
