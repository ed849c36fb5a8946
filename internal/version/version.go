// Package version holds the operator's version, stamped at build time with
// -ldflags "-X github.com/meetergo-operator/meetergo-operator/internal/version.Version=v1.2.3".
package version

// Version is the operator's version; "dev" when not stamped.
var Version = "dev"
