#!/usr/bin/env bash
# Build kube-apiserver and kube-controller-manager 1.20.2 from Debian's `kubernetes` source
# package, once, into $OUT (default ~/.cache/tenantry/kube-1.20.2/bin).
#
# Why from source: Debian bookworm ships no kube-apiserver binary, and this machine reaches only
# package registries. Why the reflect2 swap: the vendored modern-go/reflect2 v1.0.1 crashes
# (SIGSEGV in map iteration) under Go >= 1.18 on the first custom-resource create; Debian's
# 1.0.2 source fixes it.
set -euo pipefail

OUT=${OUT:-$HOME/.cache/tenantry/kube-1.20.2/bin}
WORK=${WORK:-$HOME/.cache/tenantry/build}
if [[ -x $OUT/kube-apiserver && -x $OUT/kube-controller-manager ]]; then
  echo "kube binaries already built in $OUT"
  exit 0
fi
say() { printf '[build-kube] %s\n' "$*" >&2; }

say "first run: building kube-apiserver + kube-controller-manager 1.20.2 from Debian source"
say "this takes about 5-10 minutes on 2 cores; the result is cached in $OUT"

export DEBIAN_FRONTEND=noninteractive
need=()
for pkg in golang-go rsync jq dpkg-dev golang-github-modern-go-reflect2-dev; do
  dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg")
done
if ((${#need[@]})); then
  say "installing build dependencies: ${need[*]}"
  apt-get install -y -qq "${need[@]}" >/dev/null
fi

mkdir -p "$WORK"
cd "$WORK"
if [[ ! -d kubernetes-src ]]; then
  # A deb-src list derived from the machine's own binary sources (same URIs and suites), so no
  # mirror host name is ever written into this repository.
  srcdir="$WORK/apt-src"
  mkdir -p "$srcdir/sources.list.d" "$srcdir/lists/partial"
  : > "$srcdir/sources.list"
  for f in /etc/apt/sources.list.d/*.sources; do
    [[ -e $f ]] || continue
    sed -e 's/^Types: *deb$/Types: deb-src/' "$f" > "$srcdir/sources.list.d/$(basename "$f")"
  done
  if [[ -f /etc/apt/sources.list ]]; then
    grep -E '^deb ' /etc/apt/sources.list | grep -i debian | sed 's/^deb /deb-src /' \
      >> "$srcdir/sources.list" || true
  fi
  aptopts=(-o "Dir::Etc::sourcelist=$srcdir/sources.list"
           -o "Dir::Etc::sourceparts=$srcdir/sources.list.d"
           -o "Dir::State::Lists=$srcdir/lists")
  say "fetching the kubernetes source package"
  apt-get "${aptopts[@]}" update -qq >/dev/null 2>&1 || true
  rm -rf dl && mkdir dl && cd dl
  apt-get "${aptopts[@]}" source --download-only -qq kubernetes >/dev/null
  dpkg-source --no-check -x ./*.dsc ../kubernetes-src >/dev/null
  cd .. && rm -rf dl
fi

cd kubernetes-src
say "replacing vendored modern-go/reflect2 with Debian's 1.0.2"
rm -rf vendor/github.com/modern-go/reflect2
cp -r /usr/share/gocode/src/github.com/modern-go/reflect2 vendor/github.com/modern-go/reflect2
rm -rf vendor/github.com/modern-go/reflect2/.git* vendor/github.com/modern-go/reflect2/*_test.go

# As Debian's debian/rules does: a GOPATH whose k8s.io/kubernetes is this tree.
export GOPATH="$WORK/gopath" GOCACHE="$WORK/gocache" GOFLAGS=-mod=vendor GO111MODULE=off
mkdir -p "$GOPATH/src/k8s.io"
ln -sfn "$PWD" "$GOPATH/src/k8s.io/kubernetes"
cd "$GOPATH/src/k8s.io/kubernetes"
export CGO_ENABLED=0 KUBE_GIT_VERSION=v1.20.2 KUBE_GIT_TREE_STATE=clean
for what in kube-apiserver kube-controller-manager; do
  say "compiling $what"
  make WHAT=cmd/$what >"$WORK/$what.log" 2>&1 || { tail -40 "$WORK/$what.log" >&2; exit 1; }
done
mkdir -p "$OUT"
for what in kube-apiserver kube-controller-manager; do
  install -m 0755 "$(find _output -type f -name "$what" | head -1)" "$OUT/$what"
done
rm -rf "$WORK"  # 2 GiB of sources and build cache; the binaries are all we keep
say "done: $OUT"
