package tuning

// HealthPoolConns is the connections a pacer-api pod holds besides its
// request pool: the one-connection pool /readyz pings through, so a busy
// request pool never fails readiness.
const HealthPoolConns = 1

// PodConnections is every connection one pod may open with a request pool
// of poolMaxConns: the pool and the health pool. Budgets count this, never
// poolMaxConns alone.
func PodConnections(poolMaxConns int32) int64 {
	return int64(max(poolMaxConns, 0)) + HealthPoolConns
}

// WorstCaseConnections is what pods pods (ready, starting, surging or
// terminating) may hold at once with a request pool of poolMaxConns each.
func WorstCaseConnections(pods, poolMaxConns int32) int64 {
	return int64(max(pods, 0)) * PodConnections(poolMaxConns)
}
