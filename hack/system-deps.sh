#!/usr/bin/env bash
# Debian packages the local control plane and the tests need (etcd, openssl, BIND 9 for the DNS
# tests, Prometheus for promtool and the dashboard queries, curl as an independent gzip client of
# /metrics, the Go toolchain for the one-off kube-apiserver build, Chromium and its WebDriver for
# the portal's browser tests); installs only what is missing.
set -euo pipefail
packages=(etcd-server openssl bind9 bind9-utils prometheus curl golang-go rsync jq dpkg-dev golang-github-modern-go-reflect2-dev chromium chromium-driver shellcheck)
missing=()
for pkg in "${packages[@]}"; do
  dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
done
command -v kubectl >/dev/null || missing+=(kubernetes-client)
((${#missing[@]} == 0)) && exit 0
echo "[deps] installing Debian packages: ${missing[*]}" >&2
SUDO=""; [[ $(id -u) -ne 0 ]] && SUDO=sudo
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
