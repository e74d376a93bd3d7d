#!/usr/bin/env bash
# Where the git server's time goes during offshoot's new-SHA events:
# runs BenchmarkNewSHA at N environments with git's trace2 perf traces on
# for the server's processes (internal/gitserver passes GIT_TRACE2_PERF to
# git http-backend), then prints the median wall time of each process a push
# runs, over the pushes traced.
#
#   hack/trace-git-server.sh 10000 [events]
set -euo pipefail
n=${1:?usage: hack/trace-git-server.sh N [events]}
events=${2:-20}
cd "$(dirname "$0")/.."
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
chmod 777 "$dir"
GIT_TRACE2_PERF=$dir OFFSHOOT_BENCH_N=$n \
	go test ./bench -run '^$' -bench "^BenchmarkNewSHA\$/^N=$n\$" -benchtime "${events}x" >/dev/null
# child_start names a child ([chN] argv:[...]); child_exit gives its elapsed
# time. Only the pushes: http-backend runs that started receive-pack, and
# receive-pack's own children.
awk -F'|' '
	function name(argv,   w, b) {
		sub(/.*argv:\[/, "", argv); sub(/\].*/, "", argv)
		split(argv, w, " "); b = w[1]; sub(/.*\//, "", b)
		return (b == "git" ? w[2] : b)
	}
	function chan(msg) { match(msg, /\[ch[0-9]+\]/); return substr(msg, RSTART, RLENGTH) }
	FNR == 1 { parent = "" }
	$4 ~ /^ *start *$/ { parent = name("argv:[" $9 "]") }
	$4 ~ /child_start/ { c = name($9); child[FILENAME chan($9)] = c; if (c == "receive-pack") push[FILENAME] = 1 }
	$4 ~ /^ *exit *$/ && push[FILENAME] { t["git-http-backend (all)"] = t["git-http-backend (all)"] " " $6 * 1000 }
	$4 ~ /child_exit/ {
		c = child[FILENAME chan($9)]
		if (parent == "git-http-backend" && c == "receive-pack") t["receive-pack (all)"] = t["receive-pack (all)"] " " $7 * 1000
		if (parent == "receive-pack") t[c] = t[c] " " $7 * 1000
	}
	END { for (c in t) print c "\t" t[c] }
' "$dir"/* | while IFS=$'\t' read -r proc times; do
	printf '%-24s n=%-3s median %6.1f ms\n' "$proc" "$(wc -w <<<"$times")" \
		"$(tr ' ' '\n' <<<"$times" | sort -n | awk '{a[NR]=$1} END{print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}')"
done | sort
