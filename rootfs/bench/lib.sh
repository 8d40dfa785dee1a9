# shellcheck shell=sh
# Shared by rootfs/squashfs/bench/compare.sh and rootfs/erofs/bench/compare.sh
# (sourced, with ROOT and CACHE set): builds the bench command into $W and
# makes the generated tree when it is missing, and defines measure.
W=$(mktemp -d "${TMPDIR:-/tmp}/rootfsbench-XXXXXX")
trap 'rm -rf "$W"' EXIT
mkdir -p "$CACHE"
(cd "$ROOT" && go build -o "$W/bench" ./rootfs/bench)
if [ ! -f "$CACHE/gen.tar" ]; then
	rm -rf "$CACHE/gen"
	"$W/bench" gen -tar "$CACHE/gen.tar.tmp" -dir "$CACHE/gen"
	mv "$CACHE/gen.tar.tmp" "$CACHE/gen.tar"
fi

# measure NAME OUTPUT CMD...: runs CMD under GNU time and prints wall and
# CPU seconds, peak RSS and the output's size.
measure() {
	name=$1 out=$2
	shift 2
	rm -f "$out"
	sync
	/usr/bin/time -f '%e %U %S %M' -o "$W/time" "$@" >/dev/null 2>"$W/err" || { cat "$W/err" >&2; exit 1; }
	# shellcheck disable=SC2046 # split on purpose: four numbers
	set -- $(cat "$W/time")
	printf '%-34s %8s %8s %12d %14d\n' "$name" "$1" "$(echo "$2 + $3" | bc)" $(($4 / 1024)) "$(stat -c %s "$out")"
	rm -f "$out"
}

printf '%-34s %8s %8s %12s %14s\n' "tree / writer" "wall s" "cpu s" "peak RSS MB" "output bytes"
