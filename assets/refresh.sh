#!/usr/bin/env bash
# Refreshes the vendored front-end libraries from the npm registry.
# Usage: assets/refresh.sh [HTMX_VERSION] [UPLOT_VERSION]
# Pin the versions here; review the diff before committing.
set -euo pipefail
htmx=${1:-2.0.11}
uplot=${2:-1.6.32}
here=$(cd "$(dirname "$0")" && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cd "$tmp"
npm pack --silent "htmx.org@$htmx" "uplot@$uplot" >/dev/null
mkdir htmx uplot
tar -xzf "htmx.org-$htmx.tgz" -C htmx
tar -xzf "uplot-$uplot.tgz" -C uplot
out="$here/vendor"
mkdir -p "$out"
cp htmx/package/dist/htmx.min.js "$out/htmx.min.js"
cp htmx/package/LICENSE "$out/htmx.LICENSE"
cp uplot/package/dist/uPlot.iife.min.js "$out/uPlot.iife.min.js"
cp uplot/package/dist/uPlot.min.css "$out/uPlot.min.css"
cp uplot/package/LICENSE "$out/uPlot.LICENSE"
printf 'htmx.org %s\nuplot %s\n' "$htmx" "$uplot" >"$out/VERSIONS"
echo "vendored htmx.org $htmx and uplot $uplot into $out"
