#!/bin/bash
# make demo-cluster: vsn daemons of three hosts sharing what they see
# through etcd (docs/cluster.md), in network namespaces vsnD-* (the
# topology of tests/lib/hosts.sh: hosts h1..h3, each a VM and vsn on two
# uplinks; backends be1..be3, tests/cluster/hold.py servers with a
# configured capacity; one fabric; a 3-member etcd on a management
# network).  Every VM holds long-lived connections to its volumes (each
# from its own initiator address, hashed to a backend by vsn).
#
# Chapter 1, herding without the cluster vs spreading with it: load is
# already concentrated on be2 (volume 2 lives on be2 alone), then be1's
# server stops for everyone.  Run A: each daemon alone on its own file;
# run B: the cluster (vsn apply --cluster, the leader's headroom weights).
# Where do be1's connections land, against each backend's capacity?
#
# Chapter 2, a single host's path cut does not drain a healthy backend:
# (a) with the cluster, only h1's reach to be2 is cut (nft in the fabric):
# h1 suspects its own paths, nobody drains, no connection is reset; (b)
# the same cut without the cluster: h1 drains be2 and resets its VM's
# connections; (c) with the cluster, be2's server stops: every host
# drains it (quorum).
#
# The terminal shows what is done, what each host's daemon decided (from
# the decision logs) and the connections per backend.  Every phase checks
# its premise and says so in the summary when it did not hold.
#
# Results in build/demo-cluster/: summary.txt, summary.json,
# connections.svg (chapter 1), chapter2.svg, h1.log .. h3.log (decision
# logs), h1-vsn.prom .. (each host's metrics at the end), demo.log (this
# story), samples.jsonl, events.tsv and checks.tsv (the raw data),
# desired-chapter1.yaml and desired-chapter2.yaml (what vsn apply --cluster
# wrote) and h1-cluster.yaml (a host's own file in the cluster).
#
# Usage: scripts/demo_cluster.sh (root; `make demo-cluster` installs and
# builds first).  DEMO_CAP=60 (every backend's capacity, connections),
# DEMO_N1=15 (connections per VM to volume 1: be1..be3), DEMO_N2=17 (per
# VM to volume 2, on be2 alone, in chapter 1), DEMO_N2B=8 (per VM to
# volume 2, on be2 and be3, in chapter 2),
# DEMO_HOLD_S=3 (seconds shown after the connections settle).
# shellcheck disable=SC2016 # poll, premise and outcome run eval strings
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
export LC_ALL=C
ROOT=$PWD
OUT=$ROOT/build/demo-cluster
P=vsnD
VSN=$ROOT/build/vsn
PY=/usr/bin/python3
REPORT=$ROOT/scripts/demo_cluster_report.py
CAP=${DEMO_CAP:-60}
N1=${DEMO_N1:-15}
N2=${DEMO_N2:-17}
N2B=${DEMO_N2B:-8}
HOLD_S=${DEMO_HOLD_S:-3}
T=$(mktemp -d /tmp/vsnD-demo.XXXXXX)

# tests/lib/hosts.sh wants tap.sh's helpers (diag, ok, nok).
. tests/lib/tap.sh
. tests/lib/hosts.sh

TTY=0
[ -t 1 ] && TTY=1
LOG=$OUT/demo.log
T0=${EPOCHREALTIME/./}
PH_T0=$T0
EV_T=$EPOCHREALTIME
EV_KIND=start
PHASE=setup
SAMPLER=
CLEANED=0
SAVED=0

# ------------------------------------------------------------------ output
us() { echo "${EPOCHREALTIME/./}"; }
secs_since() { local d=$(($(us) - $1)); printf '%d.%d' $((d / 1000000)) $((d / 100000 % 10)); }
# out STYLE TEXT: one line of the story, on the terminal and in demo.log.
out() {
	local ts style=$1
	shift
	ts=$(printf '%6ss' "$(secs_since "$T0")")
	if [ "$TTY" = 1 ]; then
		case $style in
		head) printf '\n\033[1;36m[%s] %s\033[0m\n' "$ts" "$*" ;;
		event) printf '\033[1;33m[%s] %s\033[0m\n' "$ts" "$*" ;;
		vsn) printf '\033[32m[%s] %s\033[0m\n' "$ts" "$*" ;;
		bad) printf '\033[1;31m[%s] %s\033[0m\n' "$ts" "$*" ;;
		dim) printf '\033[2m[%s] %s\033[0m\n' "$ts" "$*" ;;
		*) printf '[%s] %s\n' "$ts" "$*" ;;
		esac
	else
		[ "$style" = head ] && echo
		printf '[%s] %s\n' "$ts" "$*"
	fi
	[ "$style" = head ] && echo >>"$LOG"
	printf '[%s] %s\n' "$ts" "$*" >>"$LOG"
}
say() { out plain "$@"; }
die() {
	out bad "demo: error: $*"
	exit 1
}
# hosts.sh calls fatal when a step it cannot go on from fails.
fatal() { die "$*"; }

# ------------------------------------------------------------------ cleanup
save_results() {
	local h
	[ "$SAVED" = 1 ] && return 0
	SAVED=1
	for h in $HOSTS; do
		cp -f "$(hlog "$h")" "$OUT/h$h.log" 2>/dev/null
		cp -f "$T/h$h/vsn.prom" "$OUT/h$h-vsn.prom" 2>/dev/null
	done
	return 0
}
cleanup() {
	[ "$CLEANED" = 1 ] && return
	CLEANED=1
	[ -n "$SAMPLER" ] && kill "$SAMPLER" 2>/dev/null && wait "$SAMPLER" 2>/dev/null
	save_results
	echo "[$(printf '%6ss' "$(secs_since "$T0")")] cleaning up: clients, daemons, etcd, servers, vsn, namespaces, pins" |
		tee -a "$LOG"
	hosts_cleanup >/dev/null 2>&1
	rm -rf "$T"
	return 0
}
trap cleanup EXIT
trap 'echo; echo "interrupted"; exit 130' INT TERM

# ------------------------------------------------------------------ records
# event KIND TEXT: on the timeline (events.tsv: time, phase, kind, text).
event() {
	local t=$EPOCHREALTIME
	decisions
	printf '%s\t%s\t%s\t%s\n' "$t" "$PHASE" "$1" "$2" >>"$OUT/events.tsv"
	EV_T=$t EV_KIND=$1
	out event "t+$(secs_since "$PH_T0") >> $2"
}
# phase ID TITLE: a new phase of the story (its own panel and table).
phase() {
	decisions
	PHASE=$1
	PH_T0=$(us)
	printf '%s\t%s\t%s\t%s\n' "$EPOCHREALTIME" "$PHASE" phase "$2" >>"$OUT/events.tsv"
	out head "=== $1: $2 ==="
}
# note KIND TEXT: a fact for the summary (checks.tsv: phase, kind, ok, text).
# premise TEXT CMD...: what the phase stands on; outcome TEXT CMD...: what
# it shows.  Each runs CMD and records whether it held.
note() { printf '%s\t%s\t%s\t%s\n' "$PHASE" "$1" "$2" "$3" >>"$OUT/checks.tsv"; }
premise() {
	local text=$1
	shift
	if "$@"; then
		note premise ok "$text"
		out dim "  premise held: $text"
	else
		note premise failed "$text"
		out bad "  PREMISE DID NOT HOLD: $text"
	fi
}
outcome() {
	local text=$1
	shift
	if "$@"; then
		note outcome ok "$text"
		out plain "  yes: $text"
	else
		note outcome failed "$text"
		out bad "  NO: $text"
	fi
}

# ------------------------------------------------------------------ measurements
# The sampler (demo_cluster_report.py sample) writes every 0.5 s the
# clients' connections per host and backend, their lost and reset counts,
# and since when they stopped changing.
last_sample() { tail -n 1 "$OUT/samples.jsonl" 2>/dev/null; }
# meter [SECONDS]: the connections per backend against capacity and the
# connections lost per host, when they changed since last shown (and at
# least SECONDS ago: default 0).
METER_LAST=
METER_T=0
meter() {
	local line
	[ $(($(us) - METER_T)) -ge $((${1:-0} * 1000000)) ] || return 0
	line=$(last_sample | jq -r --argjson cap "$CAP" '
		def pct: if . > $cap then " (+\((. - $cap) * 100 / $cap | floor)%)" else "" end;
		"connections: " + ([.be | to_entries[] | "\(.key) \(.value)/\($cap)\(.value | pct)"] | join("  "))
		+ "   lost: " + ([.lost | to_entries[] | "\(.key) \(.value)"] | join(" "))' 2>/dev/null)
	[ -n "$line" ] && [ "$line" != "$METER_LAST" ] || return 0
	METER_LAST=$line
	METER_T=$(us)
	out dim "  t+$(secs_since "$PH_T0") $line"
}
# settled: every client holds all its connections, nothing changed for 1 s.
settled() { jt "$(last_sample)" '.complete and .clients > 0 and (.ts - .stable_since) >= 1.0'; }
# be_of H B: host H's clients' connections on backend B now; be_all B: all hosts'.
be_of() { last_sample | jq -r ".by_host.h$1.be$2 // 0"; }
be_all() { last_sample | jq -r ".be.be$1 // 0"; }
lost_of() { last_sample | jq -r ".lost.h$1 // 0"; }
resets_of() { last_sample | jq -r ".resets.h$1 // 0"; }

# New lines of every host's decision log, rendered short, in time order
# (jq: time, host, the leader it follows, text, time since the last event).
declare -A DL_SEEN=()
declare -A WCUR=() # the weights in the leader's last weights event, by backend
declare -A FOLLOWS=()
LAST_W=
# shellcheck disable=SC2016
JQ_DECISION='def be: "be\(.backend)";
	def after: (((.ts - ($t | tonumber)) * 10 | floor) / 10 | tostring) + " s after " + $k;
	(fromjson? // {}) | select(.ts != null and (.event | IN("started", "stopped",
		"datapath-attached", "cluster-joined", "config-applied") | not)) |
	[(.ts | tostring), $h, (.leader // "-"),
	 (if .event == "drain" then "drain \(be): \(.rst_sent) connections reset (RST to the VM), \(.connections_reset) table entries dropped (\(.why // .reason))"
	  elif .event == "undrain" then "undrain \(be)"
	  elif .event == "backend-failed" then "backend-failed \(be): \(.why)"
	  elif .event == "backend-healthy" then "backend-healthy \(be)"
	  elif .event == "backend-quorum" then "backend-quorum \(be): failing on \(.hosts_failing) of \(.hosts_reaching) hosts (\(.failing_hosts)), quorum \(.quorum)"
	  elif .event == "backend-suspect-local" then "backend-suspect-local \(be): failing here only (\(.hosts_failing) of \(.hosts_reaching) hosts, quorum \(.quorum)): \(.action)"
	  elif .event == "backend-repathed" then "backend-repathed \(be): \(.routes_moved) routes, \(.connections_moved) connections to another path"
	  elif .event == "backend-decided-alone" then "backend-decided-alone \(be): \(.why)"
	  elif .event == "weights" then "weights \(.from) " + ([.weights | to_entries[] | "be\(.key) \(.value)"] | join(" "))
	  elif .event == "cluster-config-applied" then "applied the cluster configuration, revision \(.revision)"
	  elif .event == "cluster-config-written" then "wrote the cluster configuration, revision \(.revision)"
	  elif .event == "cluster-reachable" then "etcd reachable: registered"
	  else .event + " " + ([to_entries[] | select(.key | IN("ts", "event", "reason", "leader") | not)
		| "\(.key)=\(.value)"] | join(" ")) end),
	 after] | join("\t")'
decisions() {
	local h n s ts host leader text after b w full i wl
	: >"$T/dl.new"
	for h in $HOSTS; do
		n=$(hlines "$h")
		s=${DL_SEEN[$h]:-0}
		[ "$n" -gt "$s" ] || continue
		sed -n "$((s + 1)),${n}p" "$(hlog "$h")" |
			jq -R -r --arg h "h$h" --arg t "$EV_T" --arg k "$EV_KIND" "$JQ_DECISION" \
				>>"$T/dl.new" 2>/dev/null
		DL_SEEN[$h]=$n
	done
	while IFS=$'\t' read -r ts host leader text after; do
		if [ "$leader" != - ] && [ "${FOLLOWS[$host]:-}" != "$leader" ]; then
			FOLLOWS[$host]=$leader
			out vsn "    $host: follows the leader $leader"
		fi
		if [[ $text == weights* ]]; then
			# Every host logs the leader's weights (the changed ones):
			# shown once, all of them.
			read -r -a wl <<<"$text"
			w=${wl[1]}
			for ((i = 2; i + 1 < ${#wl[@]}; i += 2)); do WCUR[${wl[i]}]=${wl[i + 1]}; done
			full=
			for b in $BACKENDS; do full+=" be$b ${WCUR[be$b]:-100}"; done
			[ "$full" = "$LAST_W" ] && continue
			LAST_W=$full
			out vsn "    weights from the leader $w, in every host's tables:$full  ($after)"
			continue
		fi
		out vsn "    $host: $text  ($after)"
	done < <(sort -n "$T/dl.new")
}
# Skip what is in the logs now (a new phase shows only its own lines).
decisions_skip() {
	local h
	for h in $HOSTS; do DL_SEEN[$h]=$(hlines "$h"); done
}

# poll SECONDS CMD...: until CMD succeeds (every 0.25 s), showing new
# decisions as they come and the meter when it changed (at most every
# second).
poll() {
	local end now
	end=$(($(us) + $1 * 1000000))
	shift
	while :; do
		decisions
		now=$(us)
		meter 1
		if "$@"; then
			decisions
			return 0
		fi
		[ "$now" -ge "$end" ] && return 1
		sleep 0.25
	done
}
# show S: S seconds of the story.
show() { poll "$1" false; }

# ------------------------------------------------------------------ hosts
on_all() {
	local h
	for h in $HOSTS; do "$@" "$h" || return 1; done
}
backends_healthy() { jt "$(hvsn "$1" -j daemon status 2>/dev/null)" '(.backends | length) == 3 and all(.backends[]; .state == "healthy")'; }
stq() { jt "$(cstatus "$1")" "$2"; }
applied_all() {
	local h
	for h in $HOSTS; do
		stq "$h" "(.hosts | length) == 3 and all(.hosts[]; .applied == $1 and (.error | not)) and .running_revision == $1" || return 1
	done
}
LEADER=
one_leader() {
	local l
	l=$(for h in $HOSTS; do cstatus "$h" | jq -r '.leader'; done | sort -u)
	[ "$(wc -w <<<"$l")" = 1 ] && [[ $l =~ ^h[123]$ ]] && LEADER=$l
}
# logged H FILTER: host H's log has a line FILTER selects since MARK.
logged() { [ -n "$(hlogq "$1" "${MARK[$1]}" "$2")" ]; }
logged_all() {
	local h
	for h in $HOSTS; do logged "$h" "$1" || return 1; done
}
logged_none() {
	local h
	for h in $HOSTS; do logged "$h" "$1" && return 1; done
	return 0
}

# daemons FILE: every host's daemon stopped, then started again on
# T/hN/FILE.yaml: alone (local, local2: its own part and no cluster
# section) or cluster (only its cluster and controller sections).
daemons() {
	local h f
	decisions
	for h in $HOSTS; do hosts_daemon_stop "$h" TERM; done
	decisions_skip
	WCUR=()
	LAST_W=
	FOLLOWS=()
	for h in $HOSTS; do
		f=$T/h$h/$1.yaml
		hosts_daemon_start "$h" "$f" || {
			tail -5 "$T/h$h/daemon.err" | sed "s/^/    h$h: /"
			die "the daemon of h$h did not start on $f"
		}
	done
}
# apply_cluster FILE: vsn apply --cluster from h1; REV is the revision.
REV=
apply_cluster() {
	local o
	o=$(hvsn 1 -j apply --cluster "$1" 2>&1)
	REV=$(jq -r '.revision // empty' <<<"$o" 2>/dev/null)
	[ -n "$REV" ] || {
		diag <<<"$o"
		die "vsn apply --cluster $1"
	}
	say "vsn apply --cluster: the configuration for every host written to etcd (revision $REV)"
}
clients_start() { # TAG ADDR COUNT FIRST
	local h
	for h in $HOSTS; do hosts_client_start "$h" "$1" "$2" "$3" "$4"; done
}
clients_stop() {
	hosts_clients_stop
	rm -f "$T"/h*/v*.json
}
wait_settled() { # SECONDS WHAT
	poll "$1" settled && return 0
	out bad "  (the clients did not settle within $1 s: $2)"
	return 1
}
# reach H K: host H's own stack connects to backend K's port (1 s).
reach() { nse "h$1" timeout 2 "$PY" "$HOLD" ping --dst "10.3.$2.2" --port 4420 --timeout 1 >/dev/null 2>&1; }
not_reach() { ! reach "$@"; }

# ------------------------------------------------------------------ start
[ "$(id -u)" = 0 ] || die "must run as root"
[ -x "$VSN" ] || die "$VSN not built (run make)"
for tool in etcd etcdctl jq nft; do
	command -v "$tool" >/dev/null || die "$tool is not installed (scripts/deps.sh)"
done
mountpoint -q /sys/fs/bpf || mount -t bpf bpf /sys/fs/bpf
mkdir -p "$OUT"
rm -f "$OUT"/*.log "$OUT"/*.prom "$OUT"/*.tsv "$OUT"/*.jsonl "$OUT"/*.svg "$OUT"/summary.*
out head "=== vsn demo: many hosts, one fabric, etcd ==="
say "three hosts h1..h3 (each a VM and vsn on two uplinks), backends be1..be3 (capacity $CAP connections each), one fabric, etcd on a management network"
# One run at a time on these namespaces (a test or another demo waits);
# the lock is also what lets the exit trap take them down.
hosts_lock 600 || die "another run kept the namespaces $P-* for 10 minutes"
hosts_down
hosts_rm_pins
hosts_up || die "topology set-up"
hosts_attach || die "vsn attach on every host"
say "vsn attached on every host (VM interface vmif, uplinks up0, up1)"
hosts_etcd_start || die "etcd: 3 members in $P-mgmt"
say "etcd: 3 members on the management network ($ETCD_ENDPOINTS)"
for k in $BACKENDS; do hosts_server_start "$k" || die "backend server be$k"; done
say "backends be1..be3 serve on port 4420 (hold.py: each connection held open)"

# Each host's files: cluster.yaml (its cluster and controller sections:
# the rest comes from etcd), local.yaml and local2.yaml (its own part of
# chapter 1's and chapter 2's configuration and its controller section, no
# cluster); desired1.yaml and desired2.yaml, every host's part, for
# vsn apply --cluster.
for h in $HOSTS; do
	{
		hosts_cluster_yaml "$h"
		hosts_controller_yaml "$h"
	} >"$T/h$h/cluster.yaml"
	{
		V2_BACKENDS=2 hosts_desired "$CAP" "$h"
		hosts_controller_yaml "$h"
	} >"$T/h$h/local.yaml"
	{
		V2_BACKENDS="2, 3" hosts_desired "$CAP" "$h"
		hosts_controller_yaml "$h"
	} >"$T/h$h/local2.yaml"
done
V2_BACKENDS=2 hosts_desired "$CAP" >"$T/desired1.yaml"
V2_BACKENDS="2, 3" hosts_desired "$CAP" >"$T/desired2.yaml"
cp "$T/desired1.yaml" "$OUT/desired-chapter1.yaml"
cp "$T/desired2.yaml" "$OUT/desired-chapter2.yaml"
cp "$T/h1/cluster.yaml" "$OUT/h1-cluster.yaml"
printf '%s\t%s\t%s\t%s\n' "$EPOCHREALTIME" setup config \
	"{\"capacity\": $CAP, \"n1\": $N1, \"n2\": $N2, \"n2b\": $N2B, \"hosts\": \"$HOSTS\"}" >"$OUT/events.tsv"
: >"$OUT/checks.tsv"
"$PY" "$REPORT" sample "$T" "$OUT/samples.jsonl" &
SAMPLER=$!

# ------------------------------------------------------------------ chapter 1
W2=$((100 * (CAP - 3 * N2) / CAP + 5))
# herd: the clients of every host on volume 2 (be2 only), then on volume
# 1 (be1..be3); be1's server stops; the connections land elsewhere.
herd() {
	local h b1
	event clients-v2 "every VM opens $N2 connections to volume 2 ($VIP2, on be2 alone): $((3 * N2)) of be2's $CAP"
	clients_start v2 "$VIP2" "$N2" 50
	wait_settled 20 "volume 2"
	if [ "$1" = cluster ]; then
		say "the leader weights be2 down by its headroom ($CAP - $((3 * N2)) of $CAP) in every host's tables"
		be2_light() {
			stq "$1" "(.backends[] | select(.id == 2) | .weight) <= $W2" &&
				jt "$(hvsn "$1" -j show backends)" ".[] | select(.id == 2) | .weight <= $W2"
		}
		poll 10 on_all be2_light
		premise "the leader's weight for be2 is down to its headroom (<= $W2) in every host's maps before volume 1's connections open" \
			on_all be2_light
	fi
	show 1
	event clients-v1 "every VM opens $N1 connections to volume 1 ($VIP1, on be1, be2, be3)"
	clients_start v1 "$VIP1" "$N1" 10
	wait_settled 20 "volumes 1 and 2"
	show "$HOLD_S"
	meter
	b1=$(be_all 1)
	premise "every VM holds all its $((N1 + N2)) connections before be1 fails" settled
	premise "be1 carries connections when it fails ($b1)" test "$b1" -gt 0
	premise "load is concentrated on be2: $(be_all 2) of $CAP (at least 80 %)" \
		test $(($(be_all 2) * 5)) -ge $((CAP * 4))
	local b2 b3
	b2=$(be_all 2) b3=$(be_all 3)
	mark_all
	event fail "be1's server stops (every host's connections to it end)"
	hosts_server_stop 1
	poll 10 logged_all '.event == "drain" and .backend == 1'
	outcome "every host drained be1" logged_all '.event == "drain" and .backend == 1'
	wait_settled 20 "after be1 failed"
	show "$HOLD_S"
	meter
	outcome "every VM holds all its connections again, none on be1" \
		eval 'settled && [ "$(be_all 1)" = 0 ]'
	say "be1's $b1 connections landed: $(($(be_all 2) - b2)) on be2 (now $(be_all 2) of $CAP), $(($(be_all 3) - b3)) on be3 (now $(be_all 3) of $CAP)"
	event end "end of the run: be2 $(be_all 2)/$CAP, be3 $(be_all 3)/$CAP"
	clients_stop
	hosts_server_start 1 || die "backend server be1 again"
}

phase 1a "herding without the cluster: each host alone on its own file"
daemons local
say "daemons h1..h3 run their own files (no cluster section): each applies the configuration locally"
poll 10 on_all backends_healthy || true
premise "every host's daemon runs its own file and sees every backend healthy" on_all backends_healthy
decisions_skip
herd alone

phase 1b "spreading with the cluster: etcd, vsn apply --cluster, the leader's weights"
daemons cluster
say "daemons h1..h3 restarted with only their cluster and controller sections"
apply_cluster "$T/desired1.yaml"
poll 15 eval 'applied_all $REV && on_all backends_healthy && one_leader' || true
premise "every host runs revision $REV of the cluster's configuration, every backend healthy" \
	eval 'applied_all $REV && on_all backends_healthy'
premise "one leader for all hosts (${LEADER:-none})" one_leader
say "leader: ${LEADER:-none}"
printf '%s\t%s\t%s\t%s\n' "$EPOCHREALTIME" "$PHASE" leader "${LEADER:-}" >>"$OUT/events.tsv"
herd cluster
# be1 back in every host's tables before chapter 2.
mark_all
poll 10 logged_all '.event == "undrain" and .backend == 1' || true

# ------------------------------------------------------------------ chapter 2
# lost_line: every host's lost connections, as "h1:0 h2:0 h3:0".
lost_line() {
	local h
	for h in $HOSTS; do printf 'h%s:%s ' "$h" "$(lost_of "$h")"; done
}
phase 2a "a cut of h1's paths to be2, with the cluster"
apply_cluster "$T/desired2.yaml"
say "volume 2 now over be2 and be3 (a volume's last backend is never drained)"
poll 10 eval 'applied_all $REV && on_all backends_healthy' || true
premise "every host runs revision $REV, every backend healthy" \
	eval 'applied_all $REV && on_all backends_healthy'
event clients "every VM opens $N1 connections to volume 1 and $N2B to volume 2"
clients_start v1 "$VIP1" "$N1" 10
clients_start v2 "$VIP2" "$N2B" 50
wait_settled 20 "chapter 2"
show "$HOLD_S"
meter
premise "every host's VM holds connections on be2 (h1 $(be_of 1 2), h2 $(be_of 2 2), h3 $(be_of 3 2))" \
	eval '[ "$(be_of 1 2)" -gt 0 ] && [ "$(be_of 2 2)" -gt 0 ] && [ "$(be_of 3 2)" -gt 0 ]'
one_leader
printf '%s\t%s\t%s\t%s\n' "$EPOCHREALTIME" "$PHASE" leader "${LEADER:-}" >>"$OUT/events.tsv"
LOST0=$(lost_line)
mark_all
event cut "the fabric drops h1's packets to be2 (both of h1's paths; h2 and h3 unaffected)"
hosts_cut 1 2 on
premise "the cut affects h1: h1 cannot reach be2, h2 and h3 can" \
	eval 'not_reach 1 2 && reach 2 2 && reach 3 2'
poll 6 logged 1 '.event == "backend-suspect-local" and .backend == 2'
outcome "h1 logs backend-suspect-local for be2" logged 1 '.event == "backend-suspect-local" and .backend == 2'
poll 2 logged 1 '.event == "backend-repathed" and .backend == 2'
outcome "h1 logs backend-repathed for be2" logged 1 '.event == "backend-repathed" and .backend == 2'
show 3 # what the other hosts would do, they do within this
meter
outcome "no host drains be2 (no drain, no quorum)" \
	logged_none '(.event == "drain" or .event == "backend-quorum") and .backend == 2'
LOST1=$(lost_line)
outcome "no connection was reset or lost on any host (lost before the cut: $LOST0; now: $LOST1)" \
	test "$LOST0" = "$LOST1"
event heal "the cut is lifted"
hosts_cut 1 2 off
poll 5 eval 'reach 1 2' || true
outcome "h1's VM kept every connection through the cut: each echoes a line now" \
	hosts_poke_ok 3 1 v1 v2
show 2
event end "end of 2a"

phase 2b "the same cut without the cluster (for contrast)"
daemons local2
say "daemons h1..h3 restarted on their own files (no cluster section); the VMs keep their connections"
poll 10 on_all backends_healthy || true
premise "every host's daemon runs its own file and sees every backend healthy" on_all backends_healthy
decisions_skip
premise "every host's VM holds connections on be2 (h1 $(be_of 1 2), h2 $(be_of 2 2), h3 $(be_of 3 2))" \
	eval '[ "$(be_of 1 2)" -gt 0 ] && [ "$(be_of 2 2)" -gt 0 ] && [ "$(be_of 3 2)" -gt 0 ]'
H1B2=$(be_of 1 2)
LOST0=$(lost_line)
mark_all
event cut "the fabric drops h1's packets to be2 again"
hosts_cut 1 2 on
premise "the cut affects h1: h1 cannot reach be2, h2 and h3 can" \
	eval 'not_reach 1 2 && reach 2 2 && reach 3 2'
poll 6 logged 1 '.event == "drain" and .backend == 2'
outcome "h1 drains be2 on its own view" logged 1 '.event == "drain" and .backend == 2'
wait_settled 10 "after h1's drain"
show 2
meter
LOST1=$(lost_line)
say "lost connections before the cut: $LOST0; now: $LOST1 (h1 had $H1B2 on be2)"
outcome "h2 and h3 lost no connection" test "$(cut -d' ' -f2-3 <<<"$LOST0")" = "$(cut -d' ' -f2-3 <<<"$LOST1")"
event heal "the cut is lifted"
hosts_cut 1 2 off
poll 10 logged 1 '.event == "undrain" and .backend == 2' || true
event end "end of 2b"

phase 2c "be2's server stops, with the cluster"
daemons cluster
say "daemons h1..h3 restarted with only their cluster sections (revision $REV from etcd)"
poll 15 eval 'applied_all $REV && on_all backends_healthy && one_leader' || true
premise "every host runs revision $REV, every backend healthy, one leader (${LEADER:-none})" \
	eval 'applied_all $REV && on_all backends_healthy && one_leader'
printf '%s\t%s\t%s\t%s\n' "$EPOCHREALTIME" "$PHASE" leader "${LEADER:-}" >>"$OUT/events.tsv"
decisions_skip
clients_stop
event clients "the VMs open their connections again (h1's moved off be2 in 2b)"
clients_start v1 "$VIP1" "$N1" 10
clients_start v2 "$VIP2" "$N2B" 50
wait_settled 20 "chapter 2c"
show "$HOLD_S"
meter
premise "be2 carries connections of every host when it fails (h1 $(be_of 1 2), h2 $(be_of 2 2), h3 $(be_of 3 2))" \
	eval '[ "$(be_of 1 2)" -gt 0 ] && [ "$(be_of 2 2)" -gt 0 ] && [ "$(be_of 3 2)" -gt 0 ]'
mark_all
event fail "be2's server stops (every host sees it)"
hosts_server_stop 2
poll 8 logged_all '.event == "drain" and .backend == 2'
outcome "every host logs backend-quorum for be2" logged_all '.event == "backend-quorum" and .backend == 2'
outcome "every host drains be2" logged_all '.event == "drain" and .backend == 2'
wait_settled 20 "after be2 failed"
show "$HOLD_S"
meter
outcome "every VM holds all its connections again, none on be2" eval 'settled && [ "$(be_all 2)" = 0 ]'
event end "end of 2c"

# ------------------------------------------------------------------ report
decisions
save_results
kill "$SAMPLER" 2>/dev/null
wait "$SAMPLER" 2>/dev/null
SAMPLER=
out head "=== summary ==="
"$PY" "$REPORT" report "$OUT" | tee -a "$LOG"
say "demo took $(secs_since "$T0") s; results in $OUT: summary.txt, summary.json, connections.svg, chapter2.svg, h1.log..h3.log (decision logs), h1-vsn.prom..h3-vsn.prom, demo.log"
