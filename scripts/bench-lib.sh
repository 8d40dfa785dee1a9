# Helpers for the goal benchmarks (scripts/bench-*.sh), sourced: each
# goal is a median of paired runs, printed as a ratio against its
# yardstick in bench.sh's format.

# now: seconds since the epoch, to the nanosecond.
now() { date +%s.%N; }

# since T: seconds elapsed since now printed T.
since() { echo "$(now) - $1" | bc; }

# median: the median of the numbers on stdin, one a line.
median() { sort -n | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

# freeport: a TCP port of 127.0.0.1 free now.
freeport() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

# goal NAME VALUE YARDSTICK GOAL: prints VALUE / YARDSTICK against GOAL.
goal() { printf '%-62s %8.3f  (goal %s)\n' "$1" "$(echo "scale=4; $2 / $3" | bc)" "$4"; }

# c2vm_bin DIR: $C2VM when set, else c2vm built from the repository into DIR.
c2vm_bin() {
	if [ -n "${C2VM:-}" ]; then
		echo "$C2VM"
		return
	fi
	(cd "$ROOT" && go build -o "$1/c2vm" ./cmd/c2vm) && echo "$1/c2vm"
}

# need WHAT TOOL...: exits the benchmark WHAT, saying so, when a tool is
# missing (scripts/install-deps.sh installs them).
need() {
	what=$1
	shift
	for t in "$@"; do
		command -v "$t" >/dev/null || { echo "$what: skipped (no $t)"; exit 0; }
	done
}
