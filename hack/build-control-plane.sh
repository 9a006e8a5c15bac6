#!/usr/bin/env bash
# Builds the local control plane of DESIGN.md §6 from Debian's packages, once, into a cache
# outside the work tree: etcd (Debian's etcd-server), and kube-apiserver + kube-controller-manager
# v1.20.2 compiled from Debian bookworm's `kubernetes` source package with Debian's Go 1.19.
# A second run finds the binaries in the cache and returns in well under a second.
#
# Why the reflect2 swap: with Go >= 1.18 the vendored github.com/modern-go/reflect2 v1.0.1 makes the
# apiserver die with `fatal error: fault` in mapiterinit; v1.0.2 (Debian's -dev package) fixes it.
set -euo pipefail

CACHE_DIR="${TENANTRY_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/tenantry}"
K8S_VERSION="1.20.5+really1.20.2-1.1+deb12u1"
BIN_DIR="$CACHE_DIR/bin"
STAMP="$BIN_DIR/.built-$K8S_VERSION"

log() { printf '[control-plane] %s\n' "$*" >&2; }

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

apt_install() {
  local missing=()
  for pkg in "$@"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  log "installing Debian packages: ${missing[*]}"
  as_root apt-get update -qq
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# Runtime needs: etcd. kubectl is built from the same source (Debian's kubernetes-client clashes with other kubectl packages).
apt_install etcd-server ca-certificates

if [ -f "$STAMP" ] && [ -x "$BIN_DIR/kube-apiserver" ] && [ -x "$BIN_DIR/kube-controller-manager" ] && [ -x "$BIN_DIR/kubectl" ]; then
  exit 0
fi

apt_install golang-go rsync dpkg-dev golang-github-modern-go-reflect2-dev

SRC_LIST=/etc/apt/sources.list.d/tenantry-deb-src.sources
if ! grep -rqs "deb-src" /etc/apt/sources.list /etc/apt/sources.list.d/ 2>/dev/null; then
  log "adding a deb-src entry for bookworm (needed by apt-get source)"
  # Mirror whatever the machine already uses for binary packages.
  uris=$(grep -h '^URIs:' /etc/apt/sources.list.d/debian.sources 2>/dev/null | awk '{print $2}' | head -n1)
  sec_uris=$(grep -h '^URIs:' /etc/apt/sources.list.d/debian.sources 2>/dev/null | awk '{print $2}' | sed -n 2p)
  : "${uris:=$(awk '/^deb /{print $2; exit}' /etc/apt/sources.list)}"
  {
    printf 'Types: deb-src\nURIs: %s\nSuites: bookworm bookworm-updates\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' "$uris"
    if [ -n "$sec_uris" ]; then
      printf '\nTypes: deb-src\nURIs: %s\nSuites: bookworm-security\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' "$sec_uris"
    fi
  } | as_root tee "$SRC_LIST" >/dev/null
  as_root apt-get update -qq
fi

WORK="$CACHE_DIR/build"
rm -rf "$WORK"; mkdir -p "$WORK"; cd "$WORK"
log "fetching the kubernetes $K8S_VERSION source package"
apt-get source -qq --download-only "kubernetes=$K8S_VERSION" >/dev/null
dpkg-source -x --skip-patches ./*.dsc src >/dev/null 2>&1 || dpkg-source -x ./*.dsc src >/dev/null
cd src
# Apply Debian's own patches (security fixes of +deb12u1 included) when dpkg-source left them out.
if [ -f debian/patches/series ] && [ ! -d .pc ]; then
  while read -r p; do
    case "$p" in ''|'#'*) continue;; esac
    patch -p1 -s < "debian/patches/$p"
  done < debian/patches/series
fi

log "replacing vendored reflect2 v1.0.1 with Debian's v1.0.2"
rm -rf vendor/github.com/modern-go/reflect2
cp -r /usr/share/gocode/src/github.com/modern-go/reflect2 vendor/github.com/modern-go/reflect2
rm -rf vendor/github.com/modern-go/reflect2/.git* vendor/github.com/modern-go/reflect2/test* 2>/dev/null || true
sed -i 's#github.com/modern-go/reflect2 v1.0.1#github.com/modern-go/reflect2 v1.0.2#g' go.mod vendor/modules.txt
find staging -name go.mod -exec sed -i 's#github.com/modern-go/reflect2 v1.0.1#github.com/modern-go/reflect2 v1.0.2#g' {} +

log "building kube-apiserver, kube-controller-manager and kubectl (about 6 minutes on 2 cores)"
# The package's debian/rules builds inside a GOPATH with k8s.io/kubernetes linked to the source.
export GOPATH="$WORK/gopath" GOCACHE="$CACHE_DIR/go-build" GOFLAGS=-mod=vendor CGO_ENABLED=0 GO111MODULE=on
mkdir -p "$GOPATH/src/k8s.io"
ln -sfn "$WORK/src" "$GOPATH/src/k8s.io/kubernetes"
cd "$GOPATH/src/k8s.io/kubernetes"
export KUBE_GIT_VERSION=v1.20.2 KUBE_GIT_TREE_STATE=clean KUBE_GIT_COMMIT=faecb196815e248d3ecfb03c680a4507229c2a56
make WHAT="cmd/kube-apiserver cmd/kube-controller-manager cmd/kubectl" KUBE_BUILD_PLATFORMS=linux/$(go env GOARCH) >"$WORK/build.log" 2>&1 \
  || { tail -40 "$WORK/build.log" >&2; exit 1; }

mkdir -p "$BIN_DIR"
for b in kube-apiserver kube-controller-manager kubectl; do
  install -m 0755 "$(find _output -type f -name "$b" | head -n1)" "$BIN_DIR/$b"
done
touch "$STAMP"
cd "$CACHE_DIR"; rm -rf "$WORK"
log "built into $BIN_DIR"
