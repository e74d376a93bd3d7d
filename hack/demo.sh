#!/usr/bin/env bash
# make demo: the scenario offshoot was born from, on this machine alone.
# One app ("shop") with a PostgreSQL database and the branches master,
# staging and feature_1; a throwaway app repo and environments repo served
# by a local git smart-HTTP server (git http-backend on 127.0.0.1). No
# cluster and no GitHub: the environments repo is what Argo CD would deploy.
set -euo pipefail
cd "$(dirname "$0")/.."
work=$(mktemp -d -t offshoot-demo.XXXXXX)
server_pid=""
cleanup() {
  [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT INT TERM

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
say() { printf '$ %s\n' "$*"; }

export GIT_CONFIG_NOSYSTEM=1 GIT_AUTHOR_NAME=dev GIT_AUTHOR_EMAIL=dev@shop.example \
  GIT_COMMITTER_NAME=dev GIT_COMMITTER_EMAIL=dev@shop.example
mkdir -p "$work/bin"
go build -o "$work/bin/offshoot" ./cmd/offshoot
go build -o "$work/bin/gitserver" ./hack/gitserver
offshoot() { say "offshoot $*"; "$work/bin/offshoot" --cache-dir "$work/cache" "$@"; }

step "a local git server with an app repo and an empty environments repo"
"$work/bin/gitserver" -root "$work/srv" -create shop,shop-environments >"$work/url" &
server_pid=$!
for _ in $(seq 100); do [ -s "$work/url" ] && break; sleep 0.1; done
base=$(head -n1 "$work/url")
app="$base/shop.git"
envs="$base/shop-environments.git"
echo "app repo:          $app"
echo "environments repo: $envs"

step "the app repo: master, staging cut from master, feature_1 cut from staging"
git init -q -b master "$work/shop"
(
  cd "$work/shop"
  echo "CREATE TABLE orders (id serial primary key);" >schema.sql
  git add . && git commit -qm "shop: first version"
  git checkout -qb staging && echo "-- staging tweak" >>schema.sql && git commit -qam "staging: release candidate"
  git checkout -qb feature_1 && echo "ALTER TABLE orders ADD note text;" >>schema.sql && git commit -qam "feature_1: order notes"
  git push -q "$app" master staging feature_1
)
sha() { git -C "$work/shop" rev-parse --short=7 "$1"; }
git -C "$work/shop" log --oneline --graph --all

step "offshoot init, then one environment per branch"
export OFFSHOOT_ENV_REPO="$envs"
offshoot init --app shop --image ghcr.io/example/shop --root-branch master --protected staging
offshoot sync master --sha "$(sha master)"
offshoot sync staging --parent master --sha "$(sha staging)"
offshoot sync feature_1 --parent staging --sha "$(sha feature_1)"

step "a new commit on feature_1: only its image tag changes; the same event again changes nothing"
(cd "$work/shop" && git checkout -q feature_1 && echo "-- index" >>schema.sql && git commit -qam "feature_1: index" && git push -q "$app" feature_1)
offshoot sync feature_1 --sha "$(sha feature_1)"
offshoot sync feature_1 --sha "$(sha feature_1)"

step "the environments"
offshoot list

step "the lineage: whose data each database is cloned from"
offshoot tree

step "the environments repo: its tree and its git log"
git clone -q "$envs" "$work/envs-checkout"
(cd "$work/envs-checkout" && git ls-tree -r --name-only HEAD && echo && git log --format='%h %s')

step "where each database's data comes from (offshoot render, as Argo CD will apply it)"
for b in master staging feature_1; do
  echo "-- $b"
  "$work/bin/offshoot" --cache-dir "$work/cache" render "$b" |
    awk '/^kind: Cluster$/{c=1} c&&/^---$/{c=0} c' |
    grep -E '^  name:|initdb:|recovery:|source: origin|barmanObjectName|serverName|isWALArchiver' | sed 's/^/   /'
done
echo
echo "master initialises a fresh database; staging recovers from master's archive and"
echo "feature_1 from staging's, each archiving under a serverName of its own."
