package scenario

import (
	"context"
	"fmt"
	"io"
	"net/url"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
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
// of 9: three pods each. The light service keeps its one pod (its
// bounds) and wants 3, so the spiking one may borrow up to 12, four pods
// (all its bounds allow), which its fair share alone could not hold; back
// on two pods it wants 9 (two and room for a third), its fair share again.
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
	// spike (twice a pod's worth) leaves the loopback load generator room on
	// a 2-core machine, which carries both loads and five pods.
	tenth := resource.MustParse("100m")
	ts.Spec.Resources.Requests[corev1.ResourceCPU] = tenth
	ts.Spec.Resources.Limits[corev1.ResourceCPU] = tenth
	if name == SharedSteady {
		// The steady member keeps its one pod: the room it leaves is then
		// the budget's doing, not its tuner's. When the spike crowded the
		// two cores, its tuner rightly added a pod (its CPU per request
		// rose) and took its whole fair share, leaving nothing to lend
		// (seen once in CI).
		ts.Spec.Tuning.Bounds.Replicas = &pacerv1.Int32Range{Min: 1, Max: 1}
	}
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
