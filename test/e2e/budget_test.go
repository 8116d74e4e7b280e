//go:build e2e

package e2e

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pacer-dev/pacer/hack/demo/scenario"
)

// TestSharedBudget is a shortened `make demo-budget` with assertions: two
// TunedServices on one database, one ConnectionBudget. pg_stat_activity is
// sampled every second for the whole run; in no sample may the database's
// open connections exceed the budget's room. The spiking member's
// allocation must rise above its fair share while the steady one leaves
// room (it borrows) and fall back after the spike (it gives back). Then
// the same with a real HPA on the spiking member: still never over the
// budget, and the member says it handed its replicas over (Autoscaled).
func TestSharedBudget(t *testing.T) {
	env := needDevCluster(t, "test-e2e")
	dsn := env.dsn

	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	dir := t.TempDir()
	logPath := filepath.Join(dir, "devcluster.log")
	clusterLog, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer clusterLog.Close()
	defer func() {
		if t.Failed() {
			b, _ := os.ReadFile(logPath)
			t.Logf("dev cluster log:\n%s", tailLines(string(b), 60))
		}
	}()
	database := "pacer_e2e_budget_" + strconv.Itoa(os.Getpid())
	defer scenario.DropDatabase(dsn, database)

	start := time.Now()
	r, err := scenario.PrepareShared(ctx, scenario.Options{
		Cluster:  env.cluster(clusterLog),
		AdminDSN: dsn, Database: database,
	}, testWriter{t})
	if err != nil {
		t.Fatalf("prepare: %v", err)
	}
	defer r.Close()
	t.Logf("cluster, database, budget, two members and seed data ready in %s", time.Since(start).Round(time.Second))
	room := r.Room()

	capacity := scenario.ProbeShared(ctx, r)
	if capacity < 30 {
		t.Fatalf("one pod answered %.0f req/s in a closed-loop probe: too few to size a load by", capacity)
	}
	t.Logf("one pod answers %.0f req/s on this machine", capacity)
	rec, err := scenario.DriveShared(ctx, r, scenario.SharedDriveOptions{
		Phases: scenario.SharedLoad(capacity, 120*time.Second), Seed: 1, Out: testWriter{t}, TableEvery: 5 * time.Second,
	})
	if err != nil {
		t.Fatalf("drive: %v", err)
	}
	st := scenario.Stats(rec.Samples, room, scenario.SharedMembers)
	t.Logf("without an HPA: %s", st)

	t.Run("the database's open connections never exceed the budget", func(t *testing.T) {
		checkSamples(t, rec.Samples, room, 100)
	})

	t.Run("the spiking member borrows the steady one's room and gives it back", func(t *testing.T) {
		spiky := scenario.SharedSpiky
		if _, ok := st.BorrowedAt[spiky]; !ok {
			t.Fatalf("%s's allocation never rose above its fair share %d (peak %d)", spiky, st.FairShare, st.PeakAllocated[spiky])
		}
		// While it borrowed, the steady member held less than its own fair
		// share: the room lent was the steady member's.
		for _, s := range rec.Samples {
			if int(s.Allocated[spiky]) > st.FairShare && int(s.Allocated[scenario.SharedSteady]) >= st.FairShare {
				t.Errorf("at %.0f s both members were allocated at least their fair share %d (%v): nothing was borrowed", s.Seconds, st.FairShare, s.Allocated)
			}
		}
		if _, ok := st.GaveBackAt[spiky]; !ok {
			t.Errorf("%s's allocation did not return within its fair share %d after the spike (last %d, peak %d)",
				spiky, st.FairShare, st.LastAllocated[spiky], st.PeakAllocated[spiky])
		}
		if st.PeakOpen[spiky] <= st.FairShare {
			t.Logf("note: %s's pods held at most %d connections, within its fair share (its allocation went to %d)", spiky, st.PeakOpen[spiky], st.PeakAllocated[spiky])
		}
	})

	// The HPA reads the pods' CPU from the resource metrics API.
	need(t, r.Cluster.ResourceMetrics == "ready", "the dev cluster's resource metrics, which the HPA reads (it said: "+r.Cluster.ResourceMetrics+")")
	// 60 s: the HPA reads CPU through metrics-server (a scrape every
	// 15 s) and syncs every 15 s, so it scales 15-35 s into the spike.
	hpa, err := r.AddHPA(ctx, scenario.SharedSpiky)
	if err != nil {
		t.Fatalf("HPA: %v", err)
	}
	hrec, err := scenario.DriveShared(ctx, r, scenario.SharedDriveOptions{
		Phases: scenario.SharedHPALoad(capacity, 60*time.Second), Seed: 11, HPA: hpa, Out: testWriter{t}, TableEvery: 5 * time.Second,
	})
	if err != nil {
		t.Fatalf("drive with an HPA: %v", err)
	}
	hst := scenario.Stats(hrec.Samples, room, scenario.SharedMembers)
	t.Logf("with an HPA on %s: %s", scenario.SharedSpiky, hst)

	t.Run("with a real HPA on a member the connections still never exceed the budget", func(t *testing.T) {
		checkSamples(t, hrec.Samples, room, 50)
	})

	t.Run("the HPA scaled the member it targets", func(t *testing.T) {
		most := int32(0)
		for _, s := range hrec.Samples {
			if s.HPA != nil {
				most = max(most, s.HPA.CurrentReplicas, s.HPA.DesiredReplicas)
			}
		}
		if most < 2 {
			t.Errorf("the HPA never asked for more than %d replicas of %s under a spike of %.1f pods' capacity: the budget was not tested beside a scaling HPA",
				most, scenario.SharedSpiky, scenario.SpikeLoad)
		}
		t.Logf("the HPA asked for at most %d replicas of %s", most, scenario.SharedSpiky)
	})

	t.Run("the member an HPA scales reports the handover", func(t *testing.T) {
		got := scenario.SharedAutoscaled(hrec.Samples, scenario.SharedSpiky)
		if !strings.HasPrefix(got, "True ") {
			t.Fatalf("%s's Autoscaled condition is %q, want True (replicas handed to the HPA)", scenario.SharedSpiky, got)
		}
		t.Logf("%s: Autoscaled %s", scenario.SharedSpiky, got)
	})

	if err := scenario.WriteSharedReport(filepath.Join(dir, "report"), r, capacity, rec, hrec); err != nil {
		t.Errorf("report: %v", err)
	}
	t.Logf("shared budget end to end in %s", time.Since(start).Round(time.Second))
}

// checkSamples fails for every sample over room, and when fewer than
// least samples were taken (the check would then prove little).
func checkSamples(t *testing.T, samples []scenario.SharedSample, room, least int) {
	t.Helper()
	if len(samples) < least {
		t.Errorf("only %d samples of pg_stat_activity, want at least %d", len(samples), least)
	}
	for _, s := range scenario.OverBudget(samples, room) {
		t.Errorf("at %.0f s: %d connections open to the database (%v) > the budget's room %d", s.Seconds, s.Total, s.Open, room)
	}
	peak := 0
	for _, s := range samples {
		peak = max(peak, s.Total)
	}
	if peak == 0 {
		t.Error("no sample saw a connection: the sampling is broken")
	}
	t.Logf("%d samples, peak %d open connections, room %d", len(samples), peak, room)
}
