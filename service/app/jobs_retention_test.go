package app

import (
	"context"
	"testing"
	"time"

	"github.com/pacer-dev/pacer/internal/testenv"
	"github.com/pacer-dev/pacer/service/config"
)

// Issue 20, "pacer-api jobs": failed rows were never purged. Now the
// workers purge the ones that failed longer ago than jobs.retention (the
// first purge runs when they start), and keep a recent failure.
func TestAdversarialFailedJobsPurgedAfterRetention(t *testing.T) {
	t.Parallel()
	dsn := testenv.FreshDatabase(t)
	seedDirect(t, dsn, 1) // the schema, before the app's workers start
	conn := connect(t, dsn)
	ctx := context.Background()
	if _, err := conn.Exec(ctx, `INSERT INTO jobs (kind, user_id, state, finished_at) VALUES
		('welcome', 1, 'failed', now() - interval '2 hours'), ('welcome', 1, 'failed', now())`); err != nil {
		t.Fatal(err)
	}
	startApp(t, appOptions{dsn: dsn, mutate: func(c *config.Config) { c.Jobs.Retention = config.D(time.Hour) }})
	eventually(t, "the old failure purged, the recent one kept", func() bool {
		var old, recent int
		err := conn.QueryRow(ctx, `SELECT count(*) FILTER (WHERE finished_at < now() - interval '1 hour'),
			count(*) FILTER (WHERE finished_at >= now() - interval '1 hour') FROM jobs`).Scan(&old, &recent)
		return err == nil && old == 0 && recent == 1
	})
}
