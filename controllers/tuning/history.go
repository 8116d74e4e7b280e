package tuning

import (
	"time"

	pacerv1 "github.com/pacer-dev/pacer/api/v1alpha1"
)

// windows returns the latest window followed by the recent ones, newest first.
func windows(in Input) []Window {
	ws := make([]Window, 0, 1+len(in.Recent))
	ws = append(ws, in.Window)
	for _, w := range in.Recent {
		if w.End.Before(in.Window.End) {
			ws = append(ws, w)
		}
	}
	return ws
}

// lastApplied is the newest applied decision that changed setting, if any.
func lastApplied(history []pacerv1.Decision, setting string) (time.Time, pacerv1.Change, bool) {
	for _, d := range history {
		if !d.Applied {
			continue
		}
		for _, c := range d.Changes {
			if c.Setting == setting {
				return d.Time.Time, c, true
			}
		}
	}
	return time.Time{}, pacerv1.Change{}, false
}

// lastIncrease is the newest applied decision that raised setting, if any.
func lastIncrease(history []pacerv1.Decision, setting string) (time.Time, pacerv1.Change, bool) {
	for _, d := range history {
		if !d.Applied {
			continue
		}
		for _, c := range d.Changes {
			if c.Setting == setting && c.To > c.From {
				return d.Time.Time, c, true
			}
		}
	}
	return time.Time{}, pacerv1.Change{}, false
}

// beforeAfter returns the newest window that ended by t and the newest
// window that started at or after t.
func beforeAfter(ws []Window, t time.Time) (before, after Window, ok bool) {
	var hasB, hasA bool
	for _, w := range ws {
		if !hasA && !w.Start.Before(t) && w.Sufficient {
			after, hasA = w, true
		}
		if !hasB && !w.End.After(t) && w.Sufficient {
			before, hasB = w, true
		}
	}
	return before, after, hasB && hasA
}

// userSet says whether the newest applied change of setting was a user's
// edit: then its value is the user's, even outside the bounds.
func userSet(history []pacerv1.Decision, setting string) bool {
	_, c, ok := lastApplied(history, setting)
	return ok && c.Source == pacerv1.ChangeByUser
}
