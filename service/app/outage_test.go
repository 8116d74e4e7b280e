package app

import (
	"fmt"
	"testing"

	"github.com/pacer-dev/pacer/internal/testenv"
	"github.com/pacer-dev/pacer/service/config"
)

// TestDatabaseDownAndBack cuts the link to PostgreSQL: requests get a clear
// 503 and /readyz turns false; when the link returns the service recovers
// by itself.
func TestDatabaseDownAndBack(t *testing.T) {
	t.Parallel()
	dsn := testenv.FreshDatabase(t)
	proxy := testenv.NewTCPProxy(t, testenv.HostPort(t, dsn))
	a := startApp(t, appOptions{dsn: testenv.WithHostPort(t, dsn, proxy.Addr()), mutate: func(c *config.Config) {
		c.Cache.TTL = config.D(0) // every read goes to the database
	}})
	u := createUser(t, a, "Dora", "dora@example.com")
	path := fmt.Sprintf("/v1/users/%d", u.ID)

	proxy.Cut()
	res := a.do(t, "GET", path, nil)
	if res.status != 503 || res.errorCode(t) != "database_unavailable" || res.header.Get("Retry-After") == "" {
		t.Fatalf("with the database down: %d %s", res.status, res.body)
	}
	if res := a.do(t, "POST", "/v1/users", `{"name":"x","email":"x@example.com"}`); res.status != 503 {
		t.Fatalf("write with the database down: %d %s", res.status, res.body)
	}
	eventually(t, "/readyz false", func() bool { return a.status(t, a.admin+"/readyz") == 503 })
	if a.status(t, a.admin+"/healthz") != 200 {
		t.Fatal("/healthz must stay true: the process is fine")
	}

	proxy.Restore()
	eventually(t, "/readyz true again", func() bool { return a.status(t, a.admin+"/readyz") == 200 })
	eventually(t, "reads served again", func() bool { return a.do(t, "GET", path, nil).status == 200 })
}

// TestStartsWhileDatabaseDown: the process starts, reports not ready, and
// migrates once the database appears.
func TestStartsWhileDatabaseDown(t *testing.T) {
	t.Parallel()
	dsn := testenv.FreshDatabase(t)
	proxy := testenv.NewTCPProxy(t, testenv.HostPort(t, dsn))
	proxy.Cut()
	ready := make(chan *testApp, 1)
	go func() {
		// startApp waits for /readyz, which needs the database.
		ready <- startApp(t, appOptions{dsn: testenv.WithHostPort(t, dsn, proxy.Addr())})
	}()
	select {
	case <-ready:
		t.Fatal("ready without a database")
	default:
	}
	proxy.Restore()
	a := <-ready
	createUser(t, a, "Late", "late@example.com")
}
