package config

import "sigs.k8s.io/yaml"

// SchemaVersion is the version of the config file format this pacer-api
// reads. The operator writes it into every file it renders; it goes up
// when the operator starts writing a field an older pacer-api does not know.
//
// Version skew (docs/operator.md): a file of this version or older is
// decoded strictly, so a typo is an error. A file of a newer version comes
// from a newer operator, mid-rollout, before this pod is replaced: its
// unknown fields are ignored (and logged), so the pod keeps serving.
//
// 2: server.maxConnections, server.maxConnectionsPerClient, jobs.retention.
const SchemaVersion = 2

// schemaVersionOf reads only the schemaVersion of a file; 0 when it has none
// (files from before versions were written) or cannot be read.
func schemaVersionOf(data []byte) int {
	var v struct {
		SchemaVersion int `json:"schemaVersion"`
	}
	if yaml.Unmarshal(data, &v) != nil {
		return 0
	}
	return v.SchemaVersion
}
