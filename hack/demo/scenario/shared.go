package scenario

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	pacerv1 "github.com/pacer-dev/pacer/api/v1alpha1"
)

// The shared-budget scenario (`make demo-budget` and TestSharedBudget):
// two TunedServices on one PostgreSQL database, joined to one
// ConnectionBudget. One stays light; the other spikes past what its fair
// share of the room can carry, borrows what the light one leaves unused,
// and gives it back after the spike.
const (
	SharedBudgetName = "shared-db"
	SharedSteady     = "steady"
	SharedSpiky      = "spiky"
)

// SharedMembers are the budget's members, in the order they are shown.
var SharedMembers = []string{SharedSteady, SharedSpiky}

// SharedBudget is the scenario's ConnectionBudget. A pod holds its pool
// of 2 and its health connection: 3. The room (18) is two fair shares
// of 9: three pods each. The light service wants one pod and room for
// one more (6), so the spiking one may borrow up to 12, four pods (all
// its bounds allow), which its fair share alone could not hold; back on
// two pods it wants 9 (two and room for a third), its fair share again.
func SharedBudget(namespace string) *pacerv1.ConnectionBudget {
	return &pacerv1.ConnectionBudget{
		ObjectMeta: metav1.ObjectMeta{Name: SharedBudgetName, Namespace: namespace},
		Spec:       pacerv1.ConnectionBudgetSpec{MaxConnections: 20, Reserved: 2},
	}
}

// SharedService is the demo's TunedService (tunedservice.yaml) as a
// member of the shared budget: named name, its own Secret (so its
// connections carry its name as application_name), the pool fixed at 2
// (the budget is then spent in whole pods, easy to read), no limit of its
// own beyond the budget's allocation, and a 10 s scale-down window so the
// spike's room comes back within the run.
func SharedService(namespace, name string) (*pacerv1.TunedService, error) {
	ts, err := TunedService(namespace)
	if err != nil {
		return nil, err
	}
	ts.Name = name
	db := &ts.Spec.Database
	db.URLSecretRef.Name = name + "-db"
	db.MaxTotalConnections = nil
	db.BudgetRef = &pacerv1.BudgetRef{Name: SharedBudgetName, Min: 3, Weight: 1}
	ts.Spec.Tuning.Bounds.PoolMaxConns = nil
	// A tenth of a core: a pod's capacity is then small enough that the
	// spike (2.6 pods' worth) leaves the loopback load generator room on
	// a 2-core machine, which carries both loads and five pods.
	tenth := resource.MustParse("100m")
	ts.Spec.Resources.Requests[corev1.ResourceCPU] = tenth
	ts.Spec.Resources.Limits[corev1.ResourceCPU] = tenth
	ts.Spec.Tuning.Stabilization.ScaleDown = &metav1.Duration{Duration: 10 * time.Second}
	return ts, nil
}

// SharedReady holds what a prepared shared-budget run needs.
type SharedReady struct {
	Cluster   *Cluster
	Budget    *pacerv1.ConnectionBudget
	Services  map[string]*pacerv1.TunedService
	Endpoints map[string]*Endpoints
	// IDs are seeded users; both services serve the same table.
	IDs      []int64
	PG       *pgx.Conn
	Database string

	adminDSN string
	stop     context.CancelFunc
}

// DeploySharedBudget (re)creates database, applies the budget and its
// two members (each with a Secret whose URL names it as
// application_name), waits for a ready endpoint of each and seeds users.
func DeploySharedBudget(ctx context.Context, cl *Cluster, adminDSN, database string, log io.Writer) (*SharedReady, error) {
	ectx, stop := context.WithCancel(ctx)
	r := &SharedReady{Cluster: cl, Budget: SharedBudget("default"), Services: map[string]*pacerv1.TunedService{},
		Endpoints: map[string]*Endpoints{}, Database: database, adminDSN: adminDSN, stop: stop}
	fail := func(err error) (*SharedReady, error) {
		r.Close()
		return nil, err
	}
	dsn, err := PrepareDatabase(ctx, adminDSN, database)
	if err != nil {
		return fail(err)
	}
	if r.PG, err = pgx.Connect(ctx, adminDSN); err != nil {
		return fail(err)
	}
	if err := cl.Client.Create(ctx, r.Budget); err != nil {
		return fail(fmt.Errorf("create ConnectionBudget: %w", err))
	}
	for _, name := range SharedMembers {
		ts, err := SharedService("default", name)
		if err != nil {
			return fail(err)
		}
		named, err := withApplicationName(dsn, name)
		if err != nil {
			return fail(err)
		}
		if err := Apply(ctx, cl.Client, ts, named); err != nil {
			return fail(err)
		}
		r.Services[name] = ts
		r.Endpoints[name] = NewEndpoints(ectx, cl.Client, ts.Namespace, ts.Name, "http")
	}
	b := r.Budget.Spec
	fmt.Fprintf(log, "applied ConnectionBudget %s (max %d, reserved %d: room %d) and its members %v; waiting for a ready pod of each\n",
		r.Budget.Name, b.MaxConnections, b.Reserved, b.MaxConnections-b.Reserved, SharedMembers)
	deadline := time.Now().Add(3 * time.Minute)
	for _, name := range SharedMembers {
		for len(r.Endpoints[name].Addrs()) == 0 {
			if err := podsThatCannotRun(ctx, cl.Client, r.Services[name]); err != nil {
				return fail(err)
			}
			if time.Now().After(deadline) {
				return fail(fmt.Errorf("no ready endpoint of %s after 3 minutes; see the dev cluster's logs", name))
			}
			select {
			case <-ctx.Done():
				return fail(ctx.Err())
			case <-time.After(500 * time.Millisecond):
			}
		}
	}
	tag := strconv.FormatInt(time.Now().UnixNano(), 36)
	if r.IDs, err = Seed(ctx, r.Endpoints[SharedSteady].Pick(), 400, tag); err != nil {
		return fail(err)
	}
	return r, nil
}

// withApplicationName sets application_name in a PostgreSQL URL, which
// pgx sends at connect: pg_stat_activity then says whose a connection is.
func withApplicationName(dsn, name string) (string, error) {
	u, err := url.Parse(dsn)
	if err != nil {
		return "", err
	}
	q := u.Query()
	q.Set("application_name", name)
	u.RawQuery = q.Encode()
	return u.String(), nil
}

// Close stops following the endpoints, closes the database connection and
// stops the cluster; the caller drops the database.
func (r *SharedReady) Close() {
	if r.stop != nil {
		r.stop()
	}
	if r.PG != nil {
		_ = r.PG.Close(context.Background())
		r.PG = nil
	}
	r.Cluster.Stop()
}

// Room is the budget's room: maxConnections less reserved.
func (r *SharedReady) Room() int { return int(r.Budget.Spec.MaxConnections - r.Budget.Spec.Reserved) }

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

// SharedLoad is each member's load over d, sized by capacity (what one
// pod answers per second on this machine): the steady member at a
// quarter of it throughout (one pod, under the 70% target); the spiking
// one the same for the first 10%, then 2.6× capacity for 45% (two pods
// would run at 130%: the tuner wants more than its fair share holds;
// it takes two tuning intervals or more to get there), then a tenth of
// it for the rest, long enough for the tuner to scale down after its
// scale-down window, so its pods and its room are given back.
func SharedLoad(capacity float64, d time.Duration) map[string][]Phase {
	light := float64(int(capacity / 4))
	return map[string][]Phase{
		SharedSteady: {{Name: "steady", Duration: d, RPS: light}},
		SharedSpiky: {
			{Name: "calm", Duration: d * 10 / 100, RPS: light},
			{Name: "spike", Duration: d * 45 / 100, RPS: float64(int(SpikeLoad * capacity))},
			{Name: "after", Duration: d - d*10/100 - d*45/100, RPS: float64(int(capacity / 10))},
		},
	}
}

// SpikeLoad is the spike, in pods' capacity.
const SpikeLoad = 2.6

// PhaseSummary says what one member's load offered and got in each of
// its phases (requests per second), from its per-second bins.
func PhaseSummary(name string, bins []Bin, phases []Phase) string {
	parts := []string{}
	from := 0
	for _, p := range phases {
		to := min(from+int(p.Duration/time.Second), len(bins))
		if to <= from {
			break
		}
		w := Window(bins, from, to)
		secs := float64(to - from)
		parts = append(parts, fmt.Sprintf("%s: offered %.0f/s, ok %.0f/s, shed %d, failed %d",
			p.Name, float64(w.Offered)/secs, float64(w.OK)/secs, w.R429+w.R503, w.R5xx+w.Other+w.Net+w.NoEndpoint+w.Dropped))
		from = to
	}
	return name + ": " + strings.Join(parts, "; ")
}

// SharedRecord is what a shared-budget run saw.
type SharedRecord struct {
	Start   time.Time
	Phases  map[string][]Phase
	Samples []SharedSample
	Bins    map[string][]Bin
}

// SharedDriveOptions say how to drive a shared-budget run.
type SharedDriveOptions struct {
	Phases map[string][]Phase
	Seed   uint64
	// HPA, when set, names an HPA to sample.
	HPA string
	// Out receives the live table; TableEvery is its period.
	Out        io.Writer
	TableEvery time.Duration
}

// DriveShared sends each member its phases' load at once, samples
// pg_stat_activity and the budget every second until the longest load
// ends, prints a table row every TableEvery, and returns the record.
func DriveShared(ctx context.Context, r *SharedReady, o SharedDriveOptions) (*SharedRecord, error) {
	rec := &SharedRecord{Phases: o.Phases, Bins: map[string][]Bin{}}
	loads := map[string]*Load{}
	done := make(chan struct{}, len(o.Phases))
	tag := strconv.FormatInt(time.Now().UnixNano(), 36)
	rec.Start = time.Now()
	for i, name := range SharedMembers {
		phases, ok := o.Phases[name]
		if !ok {
			continue
		}
		l := &Load{Endpoints: r.Endpoints[name], IDs: r.IDs, WriteShare: 0.1, MaxInFlight: 256, Seed: o.Seed + uint64(i), Tag: tag + name}
		loads[name] = l
		fmt.Fprintf(o.Out, "load of %s: %s\n", name, describePhases(phases))
		go func() { l.Run(ctx, phases); done <- struct{}{} }()
	}
	sampler := &SharedSampler{R: r, HPA: o.HPA}
	fmt.Fprint(o.Out, "\n"+SharedTableHeader(r.Room()))
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	every := max(o.TableEvery, time.Second)
	lastRow := time.Now()
	for left := len(loads); left > 0; {
		select {
		case <-ctx.Done():
			for ; left > 0; left-- {
				<-done
			}
			return nil, ctx.Err()
		case <-done:
			left--
		case <-tick.C:
		}
		sctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		s, err := sampler.Take(sctx)
		cancel()
		if s.At.IsZero() || (err != nil && s.Total == 0 && len(s.Open) == 0) {
			continue
		}
		s.Seconds = s.At.Sub(rec.Start).Seconds()
		rec.Samples = append(rec.Samples, s)
		if time.Since(lastRow) >= every || left == 0 {
			lastRow = time.Now()
			phase := ""
			if l := loads[SharedSpiky]; l != nil {
				phase = l.Phase()
			}
			fmt.Fprint(o.Out, SharedRow(s, phase, r.Room()))
		}
	}
	for _, name := range SharedMembers {
		if l := loads[name]; l != nil {
			rec.Bins[name] = l.Bins()
			fmt.Fprintln(o.Out, PhaseSummary(name, rec.Bins[name], o.Phases[name]))
		}
	}
	return rec, nil
}

// SharedTableHeader heads the live table.
func SharedTableHeader(room int) string {
	return fmt.Sprintf("%5s %-6s | %-24s | %-24s | %s\n", "t(s)", "phase",
		"steady open/alloc pods", "spiky open/alloc pods", fmt.Sprintf("total/room %d, free", room))
}

// SharedRow is one line of the live table.
func SharedRow(s SharedSample, phase string, room int) string {
	cell := func(m string) string {
		return fmt.Sprintf("%3d / %3d   %d pods", s.Open[m], s.Allocated[m], s.Pods[m])
	}
	mark := ""
	if s.Total > room {
		mark = "  OVER THE BUDGET"
	}
	hpa := ""
	if s.HPA != nil {
		hpa = "  " + s.HPA.String()
	}
	return fmt.Sprintf("%5.0f %-6s | %-24s | %-24s | %3d / %d, %d free%s%s\n", s.Seconds, phase, cell(SharedSteady), cell(SharedSpiky), s.Total, room, s.Free, mark, hpa)
}

// AddHPA puts a real HPA (autoscaling/v2, hpa.go) on member name through
// its scale subresource and returns its name.
func (r *SharedReady) AddHPA(ctx context.Context, name string) (string, error) {
	cur := &pacerv1.TunedService{}
	if err := r.Cluster.Client.Get(ctx, client.ObjectKeyFromObject(r.Services[name]), cur); err != nil {
		return "", err
	}
	hpa, err := HPA(cur)
	if err != nil {
		return "", err
	}
	if err := r.Cluster.Client.Create(ctx, hpa); err != nil && !apierrors.IsAlreadyExists(err) {
		return "", err
	}
	return hpa.Name, nil
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
