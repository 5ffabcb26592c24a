#!/bin/bash
# Three hypervisors, one storage fabric, one etcd cluster (docs/cluster.md),
# in network namespaces vsnH-* (tests/lib/hosts.sh): hosts h1..h3, each
# with its VM (10.0.N.0/24: its clients are initiators 10.0.N.10, .11, ...,
# each hashed to a backend on its own), vsn attached on vmif and up0,up1
# and its own daemon; backends be1..be3 (tests/cluster/hold.py servers,
# health: tcp) behind the fabric; a 3-member etcd on the management
# network.  Every host's own file has only its cluster and controller
# sections; the rest is written once with 'vsn apply --cluster'.
#
#  1. start-up: every host registered, one leader for all; the applied
#     revision on every host; each host's maps hold its part only.
#  2. configuration through etcd: bad ones (written with etcdctl, past the
#     CLI's check; through the CLI; at a stale revision) refused, the maps
#     unchanged; a good change applied by all.
#  3. herd vs headroom: a backend fails while another is nearly full; its
#     connections land by headroom with the cluster, not without.
#  4. localisation: one host's cut to a backend re-paths there and drains
#     nothing; the backend's real failure is drained by quorum everywhere.
#  5. leader and etcd failures: a killed leader replaced within its lease,
#     its host's connections kept across its daemon's restart; one member
#     down is harmless; all down: every host decides alone and forwards (a
#     daemon restarted then keeps its maps); back: every host rejoins on
#     the same configuration.
#
# Output: "ok N - ..." / "not ok N - ..." lines, diagnostics prefixed "# ";
# on a failure every host's decision log (weights aside).  HOSTS_KEEP=1
# keeps the scratch directory (logs, configs, status files).
# Needs root, etcd and etcdctl (etcd-server, etcd-client), jq, nft.
# shellcheck disable=SC2016,SC2015,SC2034 # check runs eval strings (rc is read in one)
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 1
ROOT=$PWD

P=vsnH
VSN=$ROOT/build/vsn
PY=/usr/bin/python3
T=$(mktemp -d /tmp/vsnH-test.XXXXXX)
START=$(date +%s)

. tests/lib/tap.sh
. tests/lib/hosts.sh

cleanup() {
	hosts_cleanup
	if [ -n "${HOSTS_KEEP:-}" ]; then echo "# kept $T"; else rm -rf "$T"; fi
	echo "# runtime $(($(date +%s) - START))s"
}
trap cleanup EXIT
trap "exit 1" INT TERM # so that an interrupted run cleans up too

# ------------------------------------------------------------ helpers

# on_all CMD...: CMD N succeeds for every host N.
on_all() {
	local h
	for h in $HOSTS; do "$@" "$h" || return 1; done
}
# until_ok SECONDS CMD...: CMD succeeds within SECONDS (polled).
until_ok() {
	local end
	end=$(awk -v t="$(now)" -v s="$1" 'BEGIN { printf "%.3f", t + s }')
	shift
	while :; do
		"$@" && return 0
		lt "$end" "$(now)" && return 1
		sleep 0.1
	done
}
# stq N FILTER: host N's cluster status passes the jq FILTER.
stq() { jt "$(cstatus "$1")" "$2"; }
# all_stq FILTER: ... on every host.
all_stq() {
	local h
	for h in $HOSTS; do stq "$h" "$1" || return 1; done
}
# show_st: the hosts' cluster views on # lines.
show_st() {
	local h
	for h in $HOSTS; do
		cstatus "$h" | jq -c "{host, reachable, leader, running_revision, applied_error,
			hosts: [.hosts[]? | \"\(.name):\(.applied)\(if .error then \" \" + .error else \"\" end)\"],
			backends: [.backends[]? | {id, state, f: .hosts_failing, r: .hosts_reaching, c: .connections, w: .weight}]}" |
			diag
	done
}
# snap N FILE: host N's volumes, backends and paths as vsn shows them.
snap() {
	{
		hvsn "$1" -j show volumes
		hvsn "$1" -j show backends | jq -c 'map(del(.stats?, .counters?, .connections?))'
		hvsn "$1" -j show paths | jq -c 'map({id, uplink, next_hop: (.next_hop // .nh // null)})'
	} >"$2" 2>&1
}
same_snap() { # N FILE
	snap "$1" "$2.now"
	cmp -s "$2" "$2.now" && return 0
	diff "$2" "$2.now" | head -10 | diag
	return 1
}

# ------------------------------------------------------------------ setup

[ "$(id -u)" = 0 ] || fatal "must run as root"
[ -x "$VSN" ] || fatal "$VSN not built (run make)"
for tool in etcd etcdctl jq nft; do
	command -v "$tool" >/dev/null || fatal "$tool is not installed (scripts/deps.sh)"
done
mountpoint -q /sys/fs/bpf || mount -t bpf bpf /sys/fs/bpf
hosts_lock 600 || fatal "another run kept the namespaces $P-* for 10 minutes"
hosts_down
hosts_rm_pins
hosts_up || fatal "topology set-up"
hosts_attach || fatal "vsn attach on every host"
hosts_etcd_start || fatal "etcd: 3 members in $P-mgmt"
echo "# etcd: $ETCD_ENDPOINTS (raft leader $(etcd_leader))"
for k in $BACKENDS; do hosts_server_start "$k" || fatal "backend server be$k"; done
for h in $HOSTS; do
	{
		hosts_cluster_yaml "$h"
		hosts_controller_yaml "$h"
	} >"$T/h$h/cluster.yaml"
	hosts_daemon_start "$h" "$T/h$h/cluster.yaml" || {
		diag <"$T/h$h/daemon.err"
		fatal "daemon of h$h starts and answers"
	}
done
ok "3 daemons start, each with only its cluster and controller sections"

# ------------------------------------------------------- 1. start-up

echo "# 1. start-up"
three_hosts() { stq "$1" '.reachable and ([.hosts[].name] | sort) == ["h1","h2","h3"]'; }
check "every host registered: cluster status lists h1, h2, h3 on each" until_ok 8 on_all three_hosts
one_leader() {
	local l
	l=$(for h in $HOSTS; do cstatus "$h" | jq -r '.leader'; done | sort -u)
	[ "$(wc -w <<<"$l")" = 1 ] && [[ $l =~ ^h[123]$ ]] || return 1
	LEADER=$l
	# ... and that host alone says it leads.
	[ "$(for h in $HOSTS; do cstatus "$h" | jq -r .leader_self; done | grep -c true)" = 1 ]
}
LEADER=
check "one leader, the same on every host" until_ok 5 one_leader
echo "# leader: $LEADER"
show_st

hosts_desired 50 >"$T/desired1.yaml"
out=$(hvsn 2 -j apply --cluster "$T/desired1.yaml" 2>&1)
echo "$out" | diag
R=$(jq -r '.revision // empty' <<<"$out" 2>/dev/null)
check "vsn apply --cluster writes the configuration (revision $R)" test -n "$R"
applied_all() { all_stq "(.hosts | length) == 3 and all(.hosts[]; .applied == $1 and (.error | not)) and .running_revision == $1"; }
check "every host reports applied $R (cluster status hosts[].applied, on each host)" until_ok 5 applied_all "$R"
show_st
# part_ok N: host N's maps hold its VM's two volumes, the three shared
# backends, and two paths whose next hops are its own fabric links.
part_ok() {
	local v p b
	v=$(hvsn "$1" -j show volumes)
	p=$(hvsn "$1" -j show paths)
	b=$(hvsn "$1" -j show backends)
	jt "$v" "length == 2 and ([.[] | [.volume, .vm, .address, .backends]] | sort) ==
		[[1, 1, \"$VIP1\", [1, 2, 3]], [2, 1, \"$VIP2\", [${V2_BACKENDS:-2}]]]" &&
		jt "$b" 'length == 3' &&
		jt "$p" "([.[] | [.id, .uplink, .next_hop]] | sort) ==
			[[1, \"up0\", \"$(fmac "$1" 0)\"], [2, \"up1\", \"$(fmac "$1" 1)\"]]" || {
		echo "# h$1 volumes: $(jq -c . <<<"$v")"
		echo "# h$1 paths: $(jq -c '[.[] | {id, uplink, next_hop}]' <<<"$p")"
		return 1
	}
}
check "each host's maps hold its own part only: its 2 volumes, 3 backends, 2 paths to its own fabric links" \
	on_all part_ok

# ------------------------------------------- 2. configuration through etcd

echo "# 2. configuration through etcd"
for h in $HOSTS; do snap "$h" "$T/h$h/maps.2"; done
mark_all
# Duplicate backend ids, written past the CLI's check: bad for every host
# (three errors: a long reason, the decision log must stay JSON).
sed -e 's/^  - {id: 3, name: be3,/  - {id: 2, name: be3,/' \
	-e 's/^backends:$/backends:\n  - {id: 1, name: be4, address: 10.3.4.2, paths: [1, 2]}/' \
	"$T/desired1.yaml" >"$T/bad-dup.yaml"
grep 'name: be' "$T/bad-dup.yaml" | diag
etcd_ctl --endpoints="$ETCD_ENDPOINTS" put /vsn/config <"$T/bad-dup.yaml" 2>&1 | diag
RBAD=$(etcd_ctl --endpoints="$ETCD_ENDPOINTS" get /vsn/config -w json | jq -r '.kvs[0].mod_revision')
echo "# etcdctl wrote the bad configuration as revision $RBAD"
refused_all() { all_stq "all(.hosts[]; .applied == $R and (.error // \"\" | test(\"$1\"))) and .running_revision == $R"; }
check "duplicate backend ids written with etcdctl (revision $RBAD): every host keeps $R, hosts[].error says why" \
	until_ok 5 refused_all 'is already used'
show_st
refused_logged() { [ -n "$(hlogq "$1" "${MARK[$1]}" ".event == \"cluster-config-refused\" and .revision == $RBAD and .running == $R")" ]; }
check "every host logs cluster-config-refused for revision $RBAD, running $R (a JSON line)" on_all refused_logged
hlogq 1 "${MARK[1]}" '.event == "cluster-config-refused"' | diag
maps_kept() { same_snap "$1" "$T/h$1/maps.2"; }
check "every host's volumes, backends and paths are unchanged" on_all maps_kept

# Through the CLI: refused before anything is written, naming the host.
sed 's/^  - {id: 2, uplink: up1, next_hop: \("[^"]*"\), host: h2}/  - {id: 2, uplink: up9, next_hop: \1, host: h2}/' \
	"$T/desired1.yaml" >"$T/bad-h2.yaml"
out=$(hvsn 1 apply --cluster "$T/bad-h2.yaml" 2>&1)
rc=$?
echo "$out" | diag
rev_now() { etcd_ctl --endpoints="$ETCD_ENDPOINTS" get /vsn/config -w json | jq -r '.kvs[0].mod_revision'; }
check "vsn apply --cluster of a file with h2's path on a missing uplink: refused, naming h2 and up9" \
	eval '[ $rc -ne 0 ] && grep -q "h2" <<<"$out" && grep -q "up9" <<<"$out" && [ "$(rev_now)" = "$RBAD" ]'
# A stale revision: compare-and-swap.
hosts_desired 60 >"$T/desired2.yaml"
out=$(hvsn 3 apply --cluster --revision "$R" "$T/desired2.yaml" 2>&1)
rc=$?
echo "$out" | diag
check "vsn apply --cluster --revision $R (stale: etcd is at $RBAD) is refused, nothing written" \
	eval '[ $rc -ne 0 ] && grep -q "revision $RBAD" <<<"$out" && [ "$(rev_now)" = "$RBAD" ]'
# A good one (capacity 50 -> 60).
mark_all
out=$(hvsn 3 -j apply --cluster "$T/desired2.yaml" 2>&1)
echo "$out" | diag
R2=$(jq -r '.revision // empty' <<<"$out" 2>/dev/null)
check "vsn apply --cluster of a good change (capacity 60) is written (revision $R2)" test -n "$R2"
R=${R2:-$R}
check "every host applies revision $R, no error left" until_ok 5 applied_all "$R"
applied_logged() { [ -n "$(hlogq "$1" "${MARK[$1]}" ".event == \"cluster-config-applied\" and .revision == $R")" ]; }
check "every host logs cluster-config-applied for revision $R" on_all applied_logged
show_st

# ----------------------------------------------- 3. herd vs headroom

# Every backend serves CAP connections well.  Each host holds N2
# connections on volume 2 (be2 only): be2 is nearly full cluster-wide.
# Each host holds N1 on volume 1 (be1..be3).  Then be1's server stops:
# every host's be1 connections must go elsewhere at once.
CAP=60 N2=17 N1=15
BOUND=$((CAP + CAP / 10))
echo "# 3. herd vs headroom: capacity $CAP per backend; per host $N2 connections on volume 2 (be2), $N1 on volume 1 (be1..be3)"

# backends_healthy N: host N's daemon has every backend healthy.
backends_healthy() { jt "$(hvsn "$1" -j daemon status 2>/dev/null)" '(.backends | length) == 3 and all(.backends[]; .state == "healthy")'; }
drained_all() { # BACKEND: every host logged its drain since MARK
	local h
	for h in $HOSTS; do
		[ -n "$(hlogq "$h" "${MARK[$h]}" ".event == \"drain\" and .backend == $1")" ] || return 1
	done
}
# herd PHASE: be1's server stops under both clients; prints the figures,
# sets MOVED, GAIN2, GAIN3 (all hosts) and AFTER (per backend, JSON).
herd() {
	local before h m2 m3 h1c
	check "$1: every host's clients hold their connections ($((N1 + N2)) each)" clients_settled 15 v1 v2
	before=$(per_backend v1 v2)
	echo "# $1 before: $before (volume 1: $(per_backend v1); volume 2: $(per_backend v2))"
	for h in $HOSTS; do eval "B1_$h=\$(cli_stat $h v1 '.per_backend.be1 // 0')"; done
	for h in $HOSTS; do eval "B2_$h=\$(cli_stat $h v1 '.per_backend.be2 // 0')"; done
	for h in $HOSTS; do eval "B3_$h=\$(cli_stat $h v1 '.per_backend.be3 // 0')"; done
	mark_all
	hosts_server_stop 1
	check "$1: every host drains be1 after its server stopped" until_ok 8 drained_all 1
	check "$1: every host's clients hold all their connections again, none on be1" \
		eval 'clients_settled 15 v1 v2 && [ "$(per_backend v1 v2 | jq ".be1 // 0")" = 0 ]'
	AFTER=$(per_backend v1 v2)
	MOVED=0 GAIN2=0 GAIN3=0
	for h in $HOSTS; do
		h1c=$(eval echo "\$B1_$h")
		m2=$(($(cli_stat "$h" v1 '.per_backend.be2 // 0') - $(eval echo "\$B2_$h")))
		m3=$(($(cli_stat "$h" v1 '.per_backend.be3 // 0') - $(eval echo "\$B3_$h")))
		echo "# $1 h$h: $h1c connections were on be1; $m2 went to be2, $m3 to be3"
		MOVED=$((MOVED + h1c)) GAIN2=$((GAIN2 + m2)) GAIN3=$((GAIN3 + m3))
	done
	echo "# $1 after: $AFTER; moved $MOVED: $GAIN2 to be2, $GAIN3 to be3 (capacity $CAP each)"
}

echo "# 3a. without the cluster: each daemon on its own file"
for h in $HOSTS; do
	{
		hosts_desired "$CAP" "$h"
		hosts_controller_yaml "$h"
	} >"$T/h$h/local.yaml"
	hosts_daemon_stop "$h" TERM
	hosts_daemon_start "$h" "$T/h$h/local.yaml" || diag <"$T/h$h/daemon.err"
done
check "3a: the daemons run their own files, every backend healthy" until_ok 5 on_all backends_healthy
for h in $HOSTS; do hosts_client_start "$h" v2 "$VIP2" "$N2" 50; done
for h in $HOSTS; do hosts_client_start "$h" v1 "$VIP1" "$N1" 10; done
herd 3a
A_BE2=$(jq '.be2 // 0' <<<"$AFTER")
check "3a: without the cluster be2 ends above its capacity ($A_BE2 > $CAP; it took $GAIN2 of $MOVED moved)" \
	test "$A_BE2" -gt "$CAP"
hosts_clients_stop
hosts_server_start 1 || fatal "backend server be1 again"

echo "# 3b. with the cluster"
for h in $HOSTS; do
	hosts_daemon_stop "$h" TERM
	hosts_daemon_start "$h" "$T/h$h/cluster.yaml" || diag <"$T/h$h/daemon.err"
done
check "3b: the daemons rejoin and run revision $R, every backend healthy" \
	until_ok 8 eval 'applied_all $R && on_all backends_healthy'
LEADER=
until_ok 5 one_leader
echo "# leader: $LEADER"
mark_all
for h in $HOSTS; do hosts_client_start "$h" v2 "$VIP2" "$N2" 50; done
clients_settled 15 v2 || echo "# volume 2 clients not settled"
# be2 holds 3 x N2 of CAP: the leader steps its weight down to its headroom.
W2=$((100 * (CAP - 3 * N2) / CAP + 5))
be2_light() {
	stq "$1" "(.backends[] | select(.id == 2) | .weight) <= $W2" &&
		jt "$(hvsn "$1" -j show backends)" ".[] | select(.id == 2) | .weight <= $W2"
}
check "3b: the leader's weight for be2 drops to its headroom (<= $W2) on every host: its status and its maps" \
	until_ok 8 on_all be2_light
show_st
weights_from_leader() { jt "$(hlogq "$1" "${MARK[$1]}" '.event == "weights"' | jq -s .)" "length > 0 and all(.[]; .from == \"$LEADER\" and .leader == \"$LEADER\")"; }
check "3b: every host logged weights events, each from the leader $LEADER and carrying \"leader\":\"$LEADER\"" \
	on_all weights_from_leader
hlogq 2 "${MARK[2]}" '.event == "weights"' | tail -2 | diag
for h in $HOSTS; do hosts_client_start "$h" v1 "$VIP1" "$N1" 10; done
herd 3b
show_st
B_MAX=$(jq '[.[]] | max' <<<"$AFTER")
check "3b: with the cluster no backend ends above its capacity + 10 % (max $B_MAX <= $BOUND)" \
	test "$B_MAX" -le "$BOUND"
check "3b: be3 took most of the moved connections ($GAIN3 of $MOVED; be2 $GAIN2)" \
	test $((GAIN3 * 4)) -ge $((MOVED * 3))
mark_all
hosts_server_start 1 || fatal "backend server be1 again"
undrained_all() {
	local h
	for h in $HOSTS; do
		[ -n "$(hlogq "$h" "${MARK[$h]}" ".event == \"undrain\" and .backend == $1")" ] || return 1
	done
}
until_ok 8 undrained_all 1 || echo "# be1 not undrained everywhere"

# ------------------------------------------------------ 4. localisation

echo "# 4. localisation: only h1's reach to be2 is cut"
# be2 is volume 2's only backend: the daemon never drains a volume's last
# backend up.  Volume 2 over [2, 3] from now on.
mark_all
# lost_counts: every host's clients' lost connections so far.
lost_counts() {
	local h
	for h in $HOSTS; do printf 'h%s:%s ' "$h" "$(($(cli_stat "$h" v1 .lost) + $(cli_stat "$h" v2 .lost)))"; done
}
LOST0=$(lost_counts)
V2_BACKENDS="2, 3"
hosts_desired "$CAP" >"$T/desired3.yaml"
out=$(hvsn 1 -j apply --cluster "$T/desired3.yaml" 2>&1)
R3=$(jq -r '.revision // empty' <<<"$out" 2>/dev/null)
if [ -n "$R3" ]; then R=$R3; else echo "$out" | diag; fi
check "4: volume 2 over backends 2 and 3 (revision $R): every host applies it" until_ok 5 applied_all "$R"
v2_both() { jt "$(hvsn "$1" -j show volumes)" '.[] | select(.volume == 2) | .backends == [2, 3]'; }
check "4: ... and its maps have volume 2 over [2, 3]" on_all v2_both
echo "# lost connections per host before the change: $LOST0; after: $(lost_counts)"
check "4: no connection was lost to the configuration change" test "$LOST0" = "$(lost_counts)"
check "4: the clients hold their connections again, every backend healthy on every host" \
	eval 'clients_settled 15 v1 v2 && until_ok 3 on_all backends_healthy'
LOST0=$(lost_counts)
mark_all
t0=$(now)
hosts_cut 1 2 on
ev=$(hwait_log 1 "${MARK[1]}" '.event == "backend-suspect-local" and .backend == 2' 4)
echo "# $ev"
[ -n "$ev" ] && echo "# h1: backend-suspect-local $(sub "$(jq -r .ts <<<"$ev")" "$t0")s after the cut"
check "4: h1 logs backend-suspect-local for backend 2 (1 host failing of 3, quorum 2)" \
	jt "$ev" '.hosts_failing == 1 and .hosts_reaching == 3 and .quorum == 2 and .leader != null'
ev=$(hwait_log 1 "${MARK[1]}" '.event == "backend-repathed" and .backend == 2' 1)
echo "# $ev"
check "4: h1 logs backend-repathed for backend 2" test -n "$ev"
b2_local() { stq "$1" '.backends[] | select(.id == 2) | .hosts_failing == 1 and .hosts_reaching == 3 and .state == "healthy" and .failing_hosts == "h1"'; }
check "4: cluster status on every host: backend 2 failing on 1 host (h1) of 3, state healthy" \
	until_ok 3 on_all b2_local
sleep 1.5 # what the other hosts would do, they do within this
show_st
no_drain2() { [ -z "$(hlogq "$1" "${MARK[$1]}" '(.event == "drain" or .event == "backend-quorum") and .backend == 2')" ]; }
check "4: no host logs a drain (or a quorum) of backend 2" on_all no_drain2
LOST1=$(lost_counts)
echo "# lost connections per host before the cut: $LOST0; now: $LOST1"
check "4: no connection on h2 or h3 was reset or closed (their clients' counts unchanged)" \
	test "$(cut -d' ' -f2-3 <<<"$LOST0")" = "$(cut -d' ' -f2-3 <<<"$LOST1")"
hosts_cut 1 2 off
b2_clear() { stq "$1" '.backends[] | select(.id == 2) | .hosts_failing == 0 and .state == "healthy"'; }
check "4: cut lifted: backend 2 failing on no host again" until_ok 5 on_all b2_clear

echo "# 4b. be2's server stops: every host sees it"
mark_all
t0=$(now)
hosts_server_stop 2
quorum_drain() {
	local q d
	q=$(hwait_log "$1" "${MARK[$1]}" '.event == "backend-quorum" and .backend == 2' 4)
	d=$(hwait_log "$1" "${MARK[$1]}" '.event == "drain" and .backend == 2' 1)
	if [ -z "$q" ] || [ -z "$d" ]; then
		hlogq "$1" "${MARK[$1]}" '.backend == 2' | sed "s/^/# h$1: /"
		return 1
	fi
	echo "# h$1: backend-quorum $(sub "$(jq -r .ts <<<"$q")" "$t0")s, drain $(sub "$(jq -r .ts <<<"$d")" "$t0")s after the stop; $(jq -c '{hosts_failing, quorum, failing_hosts}' <<<"$q")"
	jt "$q" '(.failing_hosts | split(",")) as $f | .hosts_failing >= 2 and .quorum == 2 and
		($f | length) == .hosts_failing and ($f | length) == ($f | unique | length)'
}
check "4b: every host logs backend-quorum (>= 2 of 3 failing, each named once) and drain for backend 2 within 4 s" \
	on_all quorum_drain
mark_all
hosts_server_start 2 || fatal "backend server be2 again"
until_ok 8 undrained_all 2 || echo "# be2 not undrained everywhere"

# ------------------------------------------ 5. leader and etcd failures

echo "# 5. leader and etcd failures"
check "5: clients settled, one leader" eval 'clients_settled 15 v1 v2 && until_ok 3 one_leader'
OLD=$LEADER
REST=$(for h in $HOSTS; do [ "h$h" = "$OLD" ] || echo "$h"; done | xargs)
echo "# leader $OLD; the others: h${REST// / h}"
# new_leader: every remaining host names the same leader, not the old one.
new_leader() {
	local l h
	l=$(for h in $REST; do cstatus "$h" | jq -r '.leader'; done | sort -u)
	[ "$(wc -w <<<"$l")" = 1 ] && [[ $l =~ ^h[123]$ ]] && [ "$l" != "$OLD" ] && NEW=$l
}
NEW=
t0=$(now)
hosts_daemon_stop "${OLD#h}" KILL
until_ok 6 new_leader
dt=$(sub "$(now)" "$t0")
echo "# new leader $NEW ${dt}s after kill -9 of $OLD's daemon (lease_ttl_s 2)"
check "5: kill -9 of the leader's daemon: the others agree on a new leader within 3.5 s ($NEW, ${dt}s)" \
	eval '[ -n "$NEW" ] && lt "$dt" 3.5'
mark_all
{
	echo "# after $OLD's death"
	cat "$T/desired3.yaml"
} >"$T/desired4.yaml"
out=$(hvsn "${NEW#h}" -j apply --cluster "$T/desired4.yaml" 2>&1)
R4=$(jq -r '.revision // empty' <<<"$out" 2>/dev/null)
if [ -n "$R4" ]; then R=$R4; else echo "$out" | diag; fi
new_leader_logged() { jt "$(hwait_log "$1" "${MARK[$1]}" ".event == \"cluster-config-applied\" and .revision == $R" 4)" ".leader == \"$NEW\""; }
check "5: a decision after that (cluster-config-applied, revision $R) carries \"leader\":\"$NEW\" on the other hosts" \
	eval 'for h in $REST; do new_leader_logged $h || exit 1; done'
LOSTK=$(cli_stat "${OLD#h}" v1 .lost)/$(cli_stat "${OLD#h}" v2 .lost)
mark_all
hosts_daemon_start "${OLD#h}" "$T/${OLD}/cluster.yaml" || diag <"$T/$OLD/daemon.err"
check "5: $OLD's daemon restarted: 3 hosts registered, all on revision $R, $NEW still leads" \
	until_ok 6 eval 'applied_all $R && on_all three_hosts && stq 1 ".leader == \"$NEW\""'
sleep 1
echo "# $OLD's clients' lost connections across its daemon's restart: $LOSTK -> $(cli_stat "${OLD#h}" v1 .lost)/$(cli_stat "${OLD#h}" v2 .lost)"
check "5: $OLD's VM kept its connections across its daemon's restart: each still passes data both ways" \
	eval 'test "$LOSTK" = "$(cli_stat "${OLD#h}" v1 .lost)/$(cli_stat "${OLD#h}" v2 .lost)" && hosts_poke_ok 3 "${OLD#h}" v1 v2'

echo "# 5b. one etcd member killed (m1, the first endpoint)"
mark_all
etcd_kill "$ETCD_DIR" m1 KILL
sleep 3 # more than a lease
reachable_all() { all_stq '.reachable and (.hosts | length) == 3'; }
check "5b: every host still reaches the cluster (reachable, 3 hosts) 3 s after" reachable_all
no_unreach() { [ -z "$(hlogq "$1" "${MARK[$1]}" '.event == "cluster-unreachable"')" ]; }
check "5b: no host logged cluster-unreachable" on_all no_unreach
{
	echo "# with m1 down"
	cat "$T/desired3.yaml"
} >"$T/desired5.yaml"
out=$(hvsn 2 -j apply --cluster "$T/desired5.yaml" 2>&1)
echo "$out" | diag
R5=$(jq -r '.revision // empty' <<<"$out" 2>/dev/null)
check "5b: vsn apply --cluster still works (revision $R5)" test -n "$R5"
R=${R5:-$R}
check "5b: every host applies revision $R" until_ok 5 applied_all "$R"

echo "# 5c. every etcd member stopped"
mark_all
LOST0=$(lost_counts)
t0=$(now)
etcd_stop_all
unreach_logged() { [ -n "$(hlogq "$1" "${MARK[$1]}" '.event == "cluster-unreachable"')" ]; }
check "5c: every host logs cluster-unreachable within 4 s" until_ok 4 on_all unreach_logged
echo "# cluster-unreachable $(sub "$(hlogq 1 "${MARK[1]}" '.event == "cluster-unreachable"' | jq -r .ts | head -1)" "$t0")s after the members stopped (h1)"
pings() {
	local out
	out=$(nsx "vm$1" "$PY" "$HOLD" ping --dst "$VIP1" --port 4420)
	echo "# h$1 ping: $out"
	jt "$out" '.echo'
}
check "5c: forwarding goes on: a new connection from every host's VM passes data" on_all pings
poke_all() { hosts_poke_ok 3 "$1" v1 v2; }
check "5c: ... and so does every connection the VMs held (none lost, each echoes a line)" on_all poke_all
mark_all
nsx fab ip link set h2f0 down
ev=$(hwait_log 2 "${MARK[2]}" '.event == "failover" and .path == 1' 3)
echo "# $ev"
check "5c: local failover still works: carrier loss on h2's up0 -> failover of path 1 on h2" \
	jt "$ev" '.reason == "carrier"'
nsx fab ip link set h2f0 up
nsx fab ip route replace 10.0.2.0/24 via 10.1.2.1 # admin down removed it
hosts_server_stop 3
alone() {
	[ -n "$(hwait_log "$1" "${MARK[$1]}" '.event == "backend-decided-alone" and .backend == 3' 4)" ] &&
		[ -n "$(hwait_log "$1" "${MARK[$1]}" '.event == "drain" and .backend == 3' 1)" ] && return 0
	hlogq "$1" "${MARK[$1]}" '.backend == 3' | sed "s/^/# h$1: /"
	return 1
}
check "5c: be3 stops then: every host decides alone (backend-decided-alone) and drains it" on_all alone
hlogq 1 "${MARK[1]}" '.event == "backend-decided-alone"' | diag
hosts_server_start 3 || fatal "backend server be3 again"
# A daemon restarted now cannot read the cluster's configuration: the
# host's maps must stay as they are, not follow its file (no mappings).
hosts_daemon_stop 3 TERM
hosts_daemon_start 3 "$T/h3/cluster.yaml" || diag <"$T/h3/daemon.err"
sleep 0.5
hlogq 3 "${MARK[3]}" '.event == "started"' | diag
check "5c: h3's daemon restarted while etcd is out of reach: its maps still hold its part" part_ok 3
check "5c: ... and a new connection from h3's VM passes data" pings 3

echo "# 5d. the members restart (same data)"
mark_all
t0=$(now)
hosts_etcd_start || echo "# etcd did not restart"
reach_logged() { [ -n "$(hlogq "$1" "${MARK[$1]}" '.event == "cluster-reachable"')" ]; }
check "5d: every host logs cluster-reachable" until_ok 6 on_all reach_logged
echo "# cluster-reachable $(sub "$(hlogq 1 "${MARK[1]}" '.event == "cluster-reachable"' | jq -r .ts | head -1)" "$t0")s after the members started (h1)"
check "5d: every host re-registered (3 hosts listed on each), all still on revision $R" \
	until_ok 6 eval 'on_all three_hosts && applied_all $R'
show_st

log_json() { # N: every line of host N's decision log is a JSON object with ts and event
	local bad
	bad=$(jq -R 'fromjson? // "bad" | select(type != "object" or (.ts | type) != "number" or (.event | type) != "string")' "$(hlog "$1")" | wc -l)
	[ "$bad" = 0 ] || grep -v '^{.*}$' "$(hlog "$1")" | head -3 | sed "s/^/# h$1 bad line: /"
	[ "$bad" = 0 ] && [ -s "$(hlog "$1")" ]
}
check "every line of every host's decision log is a JSON object with ts and event" on_all log_json
if [ "$failed" -ne 0 ]; then
	for h in $HOSTS; do
		jq -cR 'fromjson? | select(.event != "weights")' "$(hlog "$h")" | sed "s/^/# log h$h: /"
	done
fi
echo "1..$n"
[ "$failed" -eq 0 ]
