# shellcheck shell=bash
# etcd for tests, the bench and demos (sourced): one member or a cluster,
# in a network namespace or the current one, plain or TLS.
#
#   ETCD_NETNS=vsnE1           run members in this namespace ("": the current)
#   etcd_certs DIR [IP...]     CA, server (IP SANs: 127.0.0.1 and IP...) and client certs
#   etcd_start DIR SCHEME IP:CPORT:PPORT... [-- FLAG...]
#                              members m1..mN (client SCHEME://IP:CPORT, peers
#                              http://IP:PPORT), data and logs under DIR;
#                              waits until every member is healthy; sets
#                              ETCD_ENDPOINTS (comma-separated), adds to ETCD_PIDS
#   etcd_tls_flags DIR         the server flags for DIR's certs with client-cert auth
#   etcd_ctl ARGS...           etcdctl in ETCD_NETNS (ETCD_CTL_FLAGS added, e.g. certs)
#   etcd_pid DIR NAME          a member's pid
#   etcd_kill DIR NAME [SIG]   signal one member (default KILL; STOP and CONT work too)
#   etcd_leader                the endpoint of ETCD_ENDPOINTS that leads Raft
#   etcd_stop_all              stop every member started (for an EXIT trap)
#
# Members start with short Raft timers (heartbeat 50 ms, election 500 ms:
# a lost leader is replaced in about a second, and a lease's TTL can be 1 s)
# and a watch progress notification every second (etcd 3.4's default is
# 10 min), so a watch's idle_ms check can be tested in seconds.  Call
# etcd_start in the current shell, not in $(...): ETCD_PIDS must outlive it.

ETCD_NETNS=${ETCD_NETNS:-}
ETCD_PIDS=()
ETCD_ENDPOINTS=
ETCD_CTL_FLAGS=${ETCD_CTL_FLAGS:-}
ETCD_TEST_FLAGS=(--heartbeat-interval=50 --election-timeout=500
	--experimental-watch-progress-notify-interval=1s --logger=zap --log-level=warn)

# etcd_ns CMD...: run CMD in ETCD_NETNS.
etcd_ns() {
	if [ -n "$ETCD_NETNS" ]; then
		nsenter --net="/run/netns/$ETCD_NETNS" "$@"
	else
		"$@"
	fi
}

etcd_ctl() {
	# shellcheck disable=SC2086 # ETCD_CTL_FLAGS is a list of flags
	ETCDCTL_API=3 etcd_ns etcdctl --dial-timeout=1s --command-timeout=3s $ETCD_CTL_FLAGS "$@"
}

etcd_certs() { # DIR IP...
	local d=$1 san="IP:127.0.0.1" ip
	shift
	for ip in "$@"; do san="$san,IP:$ip"; done
	mkdir -p "$d" || return 1
	(
		set -e
		cd "$d"
		openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=vsn-test-ca \
			-keyout ca-key.pem -out ca.pem
		openssl req -newkey rsa:2048 -nodes -subj /CN=etcd -keyout server-key.pem \
			-out server.csr
		# clientAuth too: etcd 3.4's JSON gateway dials its own gRPC
		# server with the server certificate, which client-cert auth checks.
		printf 'subjectAltName=%s\nextendedKeyUsage=serverAuth,clientAuth\n' "$san" >server.ext
		openssl x509 -req -in server.csr -CA ca.pem -CAkey ca-key.pem -CAcreateserial \
			-days 2 -extfile server.ext -out server.pem
		openssl req -newkey rsa:2048 -nodes -subj /CN=vsn-client -keyout client-key.pem \
			-out client.csr
		printf 'extendedKeyUsage=clientAuth\n' >client.ext
		openssl x509 -req -in client.csr -CA ca.pem -CAkey ca-key.pem -CAcreateserial \
			-days 2 -extfile client.ext -out client.pem
	) >"$d/openssl.log" 2>&1
}

etcd_tls_flags() { # DIR
	echo "--cert-file=$1/server.pem --key-file=$1/server-key.pem" \
		"--client-cert-auth --trusted-ca-file=$1/ca.pem"
}

etcd_pid() { cat "$1/$2.pid" 2>/dev/null; }

etcd_kill() { # DIR NAME [SIG]
	local pid
	pid=$(etcd_pid "$1" "$2") || return 1
	kill -"${3:-KILL}" "$pid"
}

# etcd_wait_healthy ENDPOINTS SECONDS
etcd_wait_healthy() {
	local end=$((SECONDS + $2))
	while [ $SECONDS -lt $end ]; do
		etcd_ctl --endpoints="$1" endpoint health >/dev/null 2>&1 && return 0
		sleep 0.2
	done
	etcd_ctl --endpoints="$1" endpoint health 2>&1 | sed 's/^/# /'
	return 1
}

etcd_start() { # DIR SCHEME IP:CPORT:PPORT... [-- FLAG...]
	local d=$1 scheme=$2 spec ip cport pport i=0 cluster='' eps='' name token=vsn-$$-$RANDOM
	local -a specs=() extra=() pre=()
	shift 2
	[ -n "$ETCD_NETNS" ] && pre=(nsenter --net="/run/netns/$ETCD_NETNS")
	while [ $# -gt 0 ] && [ "$1" != -- ]; do
		specs+=("$1")
		shift
	done
	[ $# -gt 0 ] && shift
	extra=("$@")
	for spec in "${specs[@]}"; do
		IFS=: read -r ip cport pport <<<"$spec"
		i=$((i + 1))
		cluster="$cluster${cluster:+,}m$i=http://$ip:$pport"
		eps="$eps${eps:+,}$scheme://$ip:$cport"
	done
	i=0
	for spec in "${specs[@]}"; do
		IFS=: read -r ip cport pport <<<"$spec"
		i=$((i + 1))
		name=m$i
		mkdir -p "$d/$name.data" && chmod 700 "$d/$name.data" || return 1
		# Not through etcd_ns: a function in the background is a
		# subshell, and $! must be etcd itself.
		"${pre[@]}" etcd --name "$name" --data-dir "$d/$name.data" \
			--listen-client-urls "$scheme://$ip:$cport" \
			--advertise-client-urls "$scheme://$ip:$cport" \
			--listen-peer-urls "http://$ip:$pport" \
			--initial-advertise-peer-urls "http://$ip:$pport" \
			--initial-cluster "$cluster" --initial-cluster-state new \
			--initial-cluster-token "$token" \
			"${ETCD_TEST_FLAGS[@]}" "${extra[@]}" >"$d/$name.log" 2>&1 &
		echo $! >"$d/$name.pid"
		ETCD_PIDS+=($!)
	done
	ETCD_ENDPOINTS=$eps
	if ! etcd_wait_healthy "$eps" 20; then
		for ((i = 1; i <= ${#specs[@]}; i++)); do
			tail -5 "$d/m$i.log" | sed "s/^/# m$i: /"
		done
		return 1
	fi
}

etcd_leader() {
	etcd_ctl --endpoints="$ETCD_ENDPOINTS" endpoint status -w json |
		jq -r '.[] | select(.Status.leader == .Status.header.member_id) | .Endpoint'
}

etcd_stop_all() {
	local p i alive
	[ ${#ETCD_PIDS[@]} -eq 0 ] && return 0
	# A stopped member takes its SIGTERM only once continued.
	for p in "${ETCD_PIDS[@]}"; do kill -CONT "$p" 2>/dev/null && kill -TERM "$p" 2>/dev/null; done
	for ((i = 0; i < 20; i++)); do
		alive=0
		for p in "${ETCD_PIDS[@]}"; do kill -0 "$p" 2>/dev/null && alive=1; done
		[ $alive = 0 ] && break
		sleep 0.1
	done
	for p in "${ETCD_PIDS[@]}"; do kill -KILL "$p" 2>/dev/null; done
	for p in "${ETCD_PIDS[@]}"; do wait "$p" 2>/dev/null; done
	ETCD_PIDS=()
}
