#!/usr/bin/env bash
# Builds the real helm CLI from the Go module proxy into $BIN_DIR (default
# bin/helm-v$HELM_VERSION), once: a stamp file recording the versions makes a
# second run a no-op. The install tests (test/install) use it; helm's release
# downloads are not reachable from this project's machines, the module proxy is.
#
# The version comes from hack/helm/go.mod (helm.sh/helm/v3); HELM_VERSION must
# match it. Cost on an empty module cache: about 30 s on 2 cores.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
HELM_VERSION=${HELM_VERSION:-3.22.0}
BIN_DIR=${BIN_DIR:-$root/bin/helm-v$HELM_VERSION}
stamp="$BIN_DIR/.stamp"
want="helm=v$HELM_VERSION go=$(go env GOVERSION)"

if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] && [ -x "$BIN_DIR/helm" ]; then
  exit 0
fi

pinned=$(cd "$root/hack/helm" && go list -m -f '{{.Version}}' helm.sh/helm/v3)
if [ "$pinned" != "v$HELM_VERSION" ]; then
  echo "hack/helm/go.mod pins helm.sh/helm/v3 $pinned, not v$HELM_VERSION: change both together" >&2
  exit 1
fi

mkdir -p "$BIN_DIR"
echo ">> building helm v$HELM_VERSION from the Go module proxy into $BIN_DIR"
(
  cd "$root/hack/helm"
  # Without the version ldflag helm calls itself by a bare default version.
  CGO_ENABLED=0 go build -trimpath \
    -ldflags "-s -w -X helm.sh/helm/v3/internal/version.version=v$HELM_VERSION -X helm.sh/helm/v3/internal/version.gitTreeState=clean" \
    -o "$BIN_DIR/helm" helm.sh/helm/v3/cmd/helm
)
"$BIN_DIR/helm" version --short >/dev/null
echo "$want" > "$stamp"
echo ">> helm ready: $BIN_DIR/helm ($("$BIN_DIR/helm" version --short))"
