//go:build tools

// Package tools records the helm command built from this module: the chart
// tests run `helm lint` and `helm template` with it.
package tools

import (
	_ "helm.sh/helm/v4/cmd/helm"
)
