// Package observability holds the checks of Pacer's observability assets:
// the alert rules (promtool), the Grafana dashboard (every query parsed with
// Prometheus's parser and naming only metrics the project exports; the
// committed JSON equal to what the generator makes) and the Helm chart
// (helm lint and template; the rendered objects equal to config/'s).
package observability
