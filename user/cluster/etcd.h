/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * A client of etcd's v3 API through its JSON gateway (etcd 3.4: POST
 * /v3/kv/range|put|txn|deleterange, /v3/lease/grant|keepalive|revoke,
 * /v3/watch, /v3/election/campaign|leader|observe|resign), over libcurl
 * with json-c.  Keys and values travel base64-encoded; a prefix's
 * range_end is the key with its last byte plus one.
 *
 * One struct etcd per thread: a handle is not shared between threads.
 * Every call is bounded by the handle's timeout (the streaming calls by
 * their own rules, below), tries the endpoints in turn from the last one
 * that answered, and returns 0 or a negative errno with err filled:
 *   -ETIMEDOUT / -ECONNREFUSED / -EHOSTUNREACH: no endpoint answered
 *                 (-ETIMEDOUT too when a member answered that it has no
 *                 quorum);
 *   -ECONNRESET:  a member went away in the middle of an answer or stream;
 *   -EACCES:      TLS refused (the CA, the client certificate);
 *   -ENOENT:      a lease that no longer exists, an election without leader;
 *   -ECANCELED:   a watch, observe or campaign stopped by its stop flag;
 *   -ESTALE:      a watch's (or range's) revision was compacted
 *                 (*compact_rev says from where the state must be re-read);
 *   -EPROTO:      an answer that is not what the API says;
 *   -EIO:         an error etcd reported (its message in err).
 *
 * The timeout bounds the whole call, whatever the number of endpoints:
 * each endpoint left gets its share of it to connect (a refused or
 * unreachable one costs little), the one that connects the rest to answer.
 * A member that accepts but does not answer (stopped, overloaded) fails
 * the call with -ETIMEDOUT and is tried last by the next one.  A call that
 * cannot have reached a member goes on to the next endpoint; one that may
 * have, goes on only when sending it twice does no harm (not a txn).
 */
#ifndef VSN_ETCD_H
#define VSN_ETCD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/err.h"

#define ETCD_MAX_ENDPOINTS 7

struct etcd_opts {
	const char *endpoints[ETCD_MAX_ENDPOINTS]; /* "http://h:2379" or "https://..." */
	unsigned n_endpoints;
	/* TLS: CA to check the server against; client certificate and key. */
	const char *ca_file, *cert_file, *key_file;
	unsigned timeout_ms; /* per request; 0: 2000 */
};

struct etcd;

struct etcd *etcd_open(const struct etcd_opts *o, struct vsn_error *err);
void etcd_close(struct etcd *e);
/* The endpoint that answered last (for messages and metrics). */
const char *etcd_endpoint(const struct etcd *e);

/* A key and its value, both owned by their range or event (NUL-terminated
 * copies, lengths without the NUL). */
struct etcd_kv {
	char *key;
	size_t key_len;
	char *value;
	size_t value_len;
	int64_t create_rev, mod_rev, version, lease;
};

struct etcd_range {
	struct etcd_kv *kvs;
	unsigned n;
	int64_t revision; /* of the store when it answered */
	int64_t count;	  /* keys in the range (more than n when limited) */
};

/* key, or every key starting with key when prefix; rev 0: the latest;
 * limit 0: all. */
int etcd_range(struct etcd *e, const char *key, bool prefix, int64_t rev, int64_t limit,
	       struct etcd_range *out, struct vsn_error *err);
void etcd_range_free(struct etcd_range *r);

/* lease 0: none.  *rev (may be NULL): the revision it made. */
int etcd_put(struct etcd *e, const char *key, const void *value, size_t len, int64_t lease,
	     int64_t *rev, struct vsn_error *err);
/* *deleted (may be NULL): how many keys went. */
int etcd_delete(struct etcd *e, const char *key, bool prefix, int64_t *deleted,
		struct vsn_error *err);

enum etcd_target { ETCD_VERSION, ETCD_CREATE, ETCD_MOD, ETCD_VALUE, ETCD_LEASE };
enum etcd_result { ETCD_EQUAL, ETCD_GREATER, ETCD_LESS, ETCD_NOT_EQUAL };

struct etcd_cmp {
	const char *key;
	enum etcd_target target;
	enum etcd_result result;
	int64_t num; /* version, create/mod revision or lease */
	const char *value;
	size_t value_len;
};

enum etcd_op_type { ETCD_OP_PUT, ETCD_OP_DELETE, ETCD_OP_RANGE };

struct etcd_op {
	enum etcd_op_type type;
	const char *key;
	bool prefix; /* delete and range */
	const void *value;
	size_t value_len;
	int64_t lease;
};

struct etcd_txn_result {
	bool succeeded; /* the compares held: the success ops ran */
	int64_t revision;
	/* One per op that ran, in order; range ops fill theirs, others n = 0. */
	struct etcd_range *ranges;
	unsigned n_ranges;
};

/* All compares hold: the success ops, else the failure ops, atomically. */
int etcd_txn(struct etcd *e, const struct etcd_cmp *cmp, unsigned n_cmp,
	     const struct etcd_op *success, unsigned n_success, const struct etcd_op *failure,
	     unsigned n_failure, struct etcd_txn_result *out, struct vsn_error *err);
void etcd_txn_result_free(struct etcd_txn_result *r);

/* Leases: ttl in seconds.  keepalive is one short POST (no stream); a
 * lease that expired gives -ENOENT. */
int etcd_lease_grant(struct etcd *e, int64_t ttl, int64_t *id, int64_t *granted_ttl,
		     struct vsn_error *err);
int etcd_lease_keepalive(struct etcd *e, int64_t id, int64_t *ttl_left, struct vsn_error *err);
int etcd_lease_revoke(struct etcd *e, int64_t id, struct vsn_error *err);

struct etcd_event {
	bool deleted; /* a DELETE (kv has the key and mod_rev), else a PUT */
	struct etcd_kv kv;
};

/*
 * Called with each batch of events (all of one revision or more), and with
 * n = 0 on a progress notification.  Returns 0 to go on, anything else to
 * end the watch (returned from etcd_watch).  It runs inside the transfer:
 * it must not use the same handle (use another one).
 */
typedef int (*etcd_watch_cb)(void *arg, int64_t revision, const struct etcd_event *ev, unsigned n);

struct etcd_watch_opts {
	const char *key;
	bool prefix;
	int64_t start_rev; /* 0: from now */
	/* Ask etcd for progress notifications; the watch fails with
	 * -ETIMEDOUT when nothing (event or progress) came for idle_ms (0:
	 * never), so a dead or partitioned member is noticed.  etcd 3.4 sends
	 * one every 10 min unless started with
	 * --experimental-watch-progress-notify-interval (the tests use 1s,
	 * tests/lib/etcd.sh): idle_ms must be a few of those intervals. */
	unsigned idle_ms;
	const volatile bool *stop; /* checked at least every 100 ms; may be NULL */
	int64_t *compact_rev;	   /* -ESTALE: the oldest revision still kept */
};

/* Blocks, streaming events to cb, until cb ends it, *stop, or an error.
 * Until etcd says the watch is created the handle's timeout applies, then
 * idle_ms only. */
int etcd_watch(struct etcd *e, const struct etcd_watch_opts *o, etcd_watch_cb cb, void *arg,
	       struct vsn_error *err);

/*
 * Elections (etcd's v3election service): campaign blocks until this value
 * leads election name (bound to lease) or *stop; leader_key identifies the
 * win for resign.  leader: the current leader's value (-ENOENT: none).
 * observe streams each new leader's value to cb (kv filled; n = 1), the
 * current one first, until cb ends it or *stop.  campaign and observe wait
 * without a timeout (only connecting has one): they end by *stop.
 */
struct etcd_leader_key {
	char *name, *key;
	int64_t rev, lease;
};

int etcd_campaign(struct etcd *e, const char *name, int64_t lease, const char *value,
		  const volatile bool *stop, struct etcd_leader_key *out, struct vsn_error *err);
int etcd_leader(struct etcd *e, const char *name, struct etcd_kv *out, struct vsn_error *err);
int etcd_resign(struct etcd *e, const struct etcd_leader_key *k, struct vsn_error *err);
int etcd_observe(struct etcd *e, const char *name, const volatile bool *stop, etcd_watch_cb cb,
		 void *arg, struct vsn_error *err);
void etcd_leader_key_free(struct etcd_leader_key *k);
void etcd_kv_free(struct etcd_kv *kv);

#endif /* VSN_ETCD_H */
