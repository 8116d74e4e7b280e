//go:build tools

// Package tools records the commands built from this module: govulncheck,
// and indexdb, which turns the OSV files of golang.org/x/vulndb (the Go
// vulnerability database's source, served by the module proxy) into the
// database folder govulncheck reads with -db file://... .
package tools

import (
	_ "golang.org/x/vuln/cmd/govulncheck"
	_ "golang.org/x/vulndb/cmd/indexdb"
)
