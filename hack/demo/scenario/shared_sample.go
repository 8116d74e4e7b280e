package scenario

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"sigs.k8s.io/controller-runtime/pkg/client"

	pacerv1 "github.com/pacer-dev/pacer/api/v1alpha1"
)

// SharedSample is the shared budget at one moment: what PostgreSQL sees
// open for each member, and what the budget allocated it.
type SharedSample struct {
	At      time.Time `json:"-"`
	Seconds float64   `json:"t"`
	// Open are the connections to the database by application_name
	// (a member's name); Total counts every connection to the database,
	// a member's or not.
	Open  map[string]int `json:"open"`
	Total int            `json:"total"`
	// Allocated, Target and WorstCase are the budget's status entries of
	// each member; Free is the room no member holds.
	Allocated map[string]int32 `json:"allocated"`
	Target    map[string]int32 `json:"target"`
	WorstCase map[string]int32 `json:"worstCase"`
	Free      int32            `json:"free"`
	// Replicas are the members' effective replicas, Pods their pods.
	Replicas map[string]int32 `json:"replicas"`
	Pods     map[string]int   `json:"pods"`
	// Autoscaled is each member's Autoscaled condition ("" when absent):
	// "<status> <reason>".
	Autoscaled map[string]string `json:"autoscaled,omitempty"`
	// HPA is the HPA's state, when one scales a member.
	HPA *HPASample `json:"hpa,omitempty"`
}

// SharedSampler reads pg_stat_activity, the budget and its members.
type SharedSampler struct {
	R *SharedReady
	// HPA, when set, names an HPA to sample too.
	HPA string
}

// Take one sample; pg_stat_activity first, so the count is never missed
// when the API server is slow.
func (s *SharedSampler) Take(ctx context.Context) (SharedSample, error) {
	r := s.R
	out := SharedSample{At: time.Now(), Open: map[string]int{}, Allocated: map[string]int32{}, Target: map[string]int32{},
		WorstCase: map[string]int32{}, Replicas: map[string]int32{}, Pods: map[string]int{}, Autoscaled: map[string]string{}}
	rows, err := r.PG.Query(ctx, "SELECT application_name, count(*) FROM pg_stat_activity WHERE datname = $1 GROUP BY 1", r.Database)
	if err != nil {
		return out, err
	}
	for rows.Next() {
		var app string
		var n int
		if err := rows.Scan(&app, &n); err != nil {
			rows.Close()
			return out, err
		}
		out.Total += n
		if _, ok := r.Services[app]; ok {
			out.Open[app] += n
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return out, err
	}
	var errs []error
	b := &pacerv1.ConnectionBudget{}
	if err := r.Cluster.Client.Get(ctx, client.ObjectKeyFromObject(r.Budget), b); err == nil {
		out.Free = b.Status.Free
		for _, m := range b.Status.Members {
			out.Allocated[m.Name], out.Target[m.Name], out.WorstCase[m.Name] = m.Allocated, m.Target, m.WorstCaseInUse
		}
	} else {
		errs = append(errs, err)
	}
	for name, ts := range r.Services {
		cur := &pacerv1.TunedService{}
		if err := r.Cluster.Client.Get(ctx, client.ObjectKeyFromObject(ts), cur); err != nil {
			errs = append(errs, err)
			continue
		}
		if e := cur.Status.Effective; e != nil {
			out.Replicas[name] = e.Replicas
		}
		if c := meta.FindStatusCondition(cur.Status.Conditions, pacerv1.ConditionAutoscaled); c != nil {
			out.Autoscaled[name] = string(c.Status) + " " + c.Reason
		}
		var pods corev1.PodList
		if err := r.Cluster.Client.List(ctx, &pods, client.InNamespace(ts.Namespace), SelectorLabels(ts)); err == nil {
			for _, p := range pods.Items {
				if p.Status.Phase != corev1.PodSucceeded && p.Status.Phase != corev1.PodFailed {
					out.Pods[name]++
				}
			}
		}
	}
	if s.HPA != "" {
		if h, err := SampleHPA(ctx, r.Cluster.Client, "default", s.HPA); err == nil {
			out.HPA = h
		}
	}
	// The count is the sample's point: kept even when a status read failed.
	return out, errors.Join(errs...)
}

// OverBudget lists the samples whose open connections to the database
// exceed limit.
func OverBudget(samples []SharedSample, limit int) []SharedSample {
	var over []SharedSample
	for _, s := range samples {
		if s.Total > limit {
			over = append(over, s)
		}
	}
	return over
}

// SharedStats sums up a shared-budget run for the report and the test.
type SharedStats struct {
	Samples int `json:"samples"`
	// PeakTotal is the most connections open to the database in a sample.
	PeakTotal int `json:"peakTotal"`
	Room      int `json:"room"`
	// FairShare is the room divided evenly (the members' weights are equal).
	FairShare int `json:"fairShare"`
	// PeakOpen and PeakAllocated are each member's most; LastAllocated
	// its allocation in the last sample.
	PeakOpen      map[string]int   `json:"peakOpen"`
	PeakAllocated map[string]int32 `json:"peakAllocated"`
	LastAllocated map[string]int32 `json:"lastAllocated"`
	// BorrowedAt is when a member's allocation first exceeded its fair
	// share (seconds; absent: never), and GaveBackAt when it was back
	// within it afterwards.
	BorrowedAt map[string]float64 `json:"borrowedAt,omitempty"`
	GaveBackAt map[string]float64 `json:"gaveBackAt,omitempty"`
	// Over are the samples over the room.
	Over int `json:"overBudget"`
}

// Stats computes SharedStats over samples.
func Stats(samples []SharedSample, room int, members []string) SharedStats {
	st := SharedStats{Samples: len(samples), Room: room, FairShare: room / max(len(members), 1),
		PeakOpen: map[string]int{}, PeakAllocated: map[string]int32{}, LastAllocated: map[string]int32{},
		BorrowedAt: map[string]float64{}, GaveBackAt: map[string]float64{}, Over: len(OverBudget(samples, room))}
	for _, s := range samples {
		st.PeakTotal = max(st.PeakTotal, s.Total)
		for _, m := range members {
			st.PeakOpen[m] = max(st.PeakOpen[m], s.Open[m])
			st.PeakAllocated[m] = max(st.PeakAllocated[m], s.Allocated[m])
			a, ok := s.Allocated[m]
			if !ok {
				continue
			}
			st.LastAllocated[m] = a
			_, borrowed := st.BorrowedAt[m]
			_, gave := st.GaveBackAt[m]
			switch {
			case !borrowed && int(a) > st.FairShare:
				st.BorrowedAt[m] = s.Seconds
			case borrowed && !gave && int(a) <= st.FairShare:
				st.GaveBackAt[m] = s.Seconds
			}
		}
	}
	return st
}

// String is the run's summary in one paragraph.
func (st SharedStats) String() string {
	s := fmt.Sprintf("%d samples of pg_stat_activity: peak %d open connections, room %d (fair share %d each), %d samples over the room",
		st.Samples, st.PeakTotal, st.Room, st.FairShare, st.Over)
	names := make([]string, 0, len(st.PeakOpen))
	for m := range st.PeakOpen {
		names = append(names, m)
	}
	sort.Strings(names)
	for _, m := range names {
		s += fmt.Sprintf("\n  %s: peak open %d, peak allocation %d, last allocation %d", m, st.PeakOpen[m], st.PeakAllocated[m], st.LastAllocated[m])
		if t, ok := st.BorrowedAt[m]; ok {
			s += fmt.Sprintf("; above its fair share from %.0f s", t)
		}
		if t, ok := st.GaveBackAt[m]; ok {
			s += fmt.Sprintf(", back within it at %.0f s", t)
		}
	}
	return s
}

// SharedAutoscaled is the Autoscaled condition of member name in the
// last sample that has one ("" if none did).
func SharedAutoscaled(samples []SharedSample, name string) string {
	for i := len(samples) - 1; i >= 0; i-- {
		if a := samples[i].Autoscaled[name]; a != "" {
			return a
		}
	}
	return ""
}
