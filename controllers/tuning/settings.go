package tuning

import (
	"math"

	pacerv1 "github.com/pacer-dev/pacer/api/v1alpha1"
)

// Tunable is one setting the tuner may change. Tunables is the one list of
// them: Decide, the budget fit, the loop, status and metrics iterate it.
type Tunable struct {
	// Name is the setting as spelled in pacerv1.Settings' JSON.
	Name string
	// BoundsField is its field in tuning.bounds.
	BoundsField string
	// Field points at the setting's value in a Settings.
	Field func(*pacerv1.Settings) *int32
	// Bounds returns its bounds, nil when the setting is not tuned.
	Bounds func(*pacerv1.TuningBounds) *pacerv1.Int32Range
	// Up and Down limit one step: at most ×Up (at least +1) and at least
	// ×Down (at most −1) per interval.
	Up, Down float64
}

// Get returns the setting's value in s.
func (t Tunable) Get(s pacerv1.Settings) int32 { return *t.Field(&s) }

// StepUp is the highest value one step from cur may reach. Replicas follow
// the HPA's default limit: double, or four more pods, whichever is more.
func (t Tunable) StepUp(cur int32) int32 {
	if t.Name == SettingReplicas {
		return max(2*cur, cur+4)
	}
	return max(cur+1, int32(math.Floor(float64(cur)*t.Up)))
}

// StepDown is the lowest value one step from cur may reach.
func (t Tunable) StepDown(cur int32) int32 {
	return min(max(cur-1, 0), int32(math.Ceil(float64(cur)*t.Down)))
}

// Tunables lists the tuned settings in the order changes are reported.
var Tunables = []Tunable{
	{Name: SettingReplicas, BoundsField: "replicas", Up: 2, Down: 0.5,
		Field:  func(s *pacerv1.Settings) *int32 { return &s.Replicas },
		Bounds: func(b *pacerv1.TuningBounds) *pacerv1.Int32Range { return b.Replicas }},
	{Name: SettingWorkers, BoundsField: "workers", Up: 2, Down: 0.25,
		Field:  func(s *pacerv1.Settings) *int32 { return &s.MaxInFlight },
		Bounds: func(b *pacerv1.TuningBounds) *pacerv1.Int32Range { return b.Workers }},
	{Name: SettingPool, BoundsField: "poolMaxConns", Up: 2, Down: 0.5,
		Field:  func(s *pacerv1.Settings) *int32 { return &s.PoolMaxConns },
		Bounds: func(b *pacerv1.TuningBounds) *pacerv1.Int32Range { return b.PoolMaxConns }},
	{Name: SettingCache, BoundsField: "cacheMaxEntries", Up: 2, Down: 0.5,
		Field:  func(s *pacerv1.Settings) *int32 { return &s.CacheMaxEntries },
		Bounds: func(b *pacerv1.TuningBounds) *pacerv1.Int32Range { return b.CacheMaxEntries }},
}

// tunable returns the entry of Tunables named name.
func tunable(name string) Tunable {
	for _, t := range Tunables {
		if t.Name == name {
			return t
		}
	}
	panic("tuning: unknown setting " + name)
}

func get(s pacerv1.Settings, name string) int32 { return tunable(name).Get(s) }

func set(s *pacerv1.Settings, name string, v int32) { *tunable(name).Field(s) = v }

func (p params) boundsOf(name string) *pacerv1.Int32Range { return tunable(name).Bounds(&p.bounds) }

// boundsField is the name of a setting's field in tuning.bounds.
func boundsField(name string) string { return tunable(name).BoundsField }
