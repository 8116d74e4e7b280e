package scenario

import (
	"bytes"
	"context"
	_ "embed"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"time"

	"github.com/jackc/pgx/v5"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	pacerv1 "github.com/pacer-dev/pacer/api/v1alpha1"
)

//go:embed tunedservice.yaml
var tunedServiceYAML []byte

// TunedService is the demo's TunedService (tunedservice.yaml).
func TunedService(namespace string) (*pacerv1.TunedService, error) {
	ts := &pacerv1.TunedService{}
	if err := yaml.UnmarshalStrict(tunedServiceYAML, ts); err != nil {
		return nil, err
	}
	ts.Namespace = namespace
	return ts, nil
}

// WithInterval sets the tuner's spec.tuning.interval (DEMO_INTERVAL);
// zero keeps tunedservice.yaml's 10 s. The API server checks the value.
func WithInterval(ts *pacerv1.TunedService, d time.Duration) *pacerv1.TunedService {
	if d > 0 {
		ts.Spec.Tuning.Interval = &metav1.Duration{Duration: d}
	}
	return ts
}

// PrepareDatabase (re)creates database name on the server of adminDSN and
// returns its DSN.
func PrepareDatabase(ctx context.Context, adminDSN, name string) (string, error) {
	conn, err := pgx.Connect(ctx, adminDSN)
	if err != nil {
		return "", fmt.Errorf("connect to PostgreSQL: %w", err)
	}
	defer conn.Close(ctx)
	ident := pgx.Identifier{name}.Sanitize()
	if _, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+ident+" WITH (FORCE)"); err != nil {
		return "", err
	}
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+ident); err != nil {
		return "", err
	}
	u, err := url.Parse(adminDSN)
	if err != nil {
		return "", err
	}
	u.Path = "/" + name
	return u.String(), nil
}

// DropDatabase removes the database (best effort).
func DropDatabase(adminDSN, name string) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, adminDSN)
	if err != nil {
		return
	}
	defer conn.Close(ctx)
	_, _ = conn.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)")
}

// Connections counts the open connections to database name.
func Connections(ctx context.Context, conn *pgx.Conn, name string) (int, error) {
	var n int
	err := conn.QueryRow(ctx, "SELECT count(*) FROM pg_stat_activity WHERE datname = $1", name).Scan(&n)
	return n, err
}

// Apply creates the Secret holding dsn and the TunedService.
func Apply(ctx context.Context, c client.Client, ts *pacerv1.TunedService, dsn string) error {
	secret := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: ts.Spec.Database.URLSecretRef.Name, Namespace: ts.Namespace},
		StringData: map[string]string{ts.Spec.Database.URLSecretRef.Key: dsn},
	}
	if err := c.Create(ctx, secret); err != nil {
		return fmt.Errorf("create secret: %w", err)
	}
	if err := c.Create(ctx, ts); err != nil {
		return fmt.Errorf("create TunedService: %w", err)
	}
	return nil
}

// SeededUsers is how many users a deployment starts with: five times the
// demo's cache of 1,000 entries, so reads miss it as reads of real users do.
const SeededUsers = 5000

// Seed creates n users through the API at addr, 500 per batch, and
// returns their ids.
func Seed(ctx context.Context, addr string, n int, tag string) ([]int64, error) {
	const batch = 500
	var ids []int64
	hc := &http.Client{Timeout: 10 * time.Second}
	for start := 0; start < n; start += batch {
		var body struct {
			Users []map[string]string `json:"users"`
		}
		for i := start; i < min(start+batch, n); i++ {
			body.Users = append(body.Users, map[string]string{"name": fmt.Sprintf("Seed %d", i), "email": fmt.Sprintf("seed-%s-%d@example.com", tag, i)})
		}
		b, _ := json.Marshal(body)
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+addr+"/v1/users/batch", bytes.NewReader(b))
		if err != nil {
			return nil, err
		}
		req.Header.Set("Content-Type", "application/json")
		res, err := hc.Do(req)
		if err != nil {
			return nil, err
		}
		var out struct {
			Users []struct {
				ID int64 `json:"id"`
			} `json:"users"`
		}
		err = json.NewDecoder(res.Body).Decode(&out)
		res.Body.Close()
		if res.StatusCode != http.StatusCreated || err != nil {
			return nil, fmt.Errorf("seed users: HTTP %d (%v)", res.StatusCode, err)
		}
		for _, u := range out.Users {
			ids = append(ids, u.ID)
		}
	}
	return ids, nil
}
