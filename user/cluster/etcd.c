// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/* etcd's v3 API through its JSON gateway (etcd.h). */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>
#include <json-c/json.h>

#include "cluster/etcd.h"

/* etcd takes at most 1.5 MiB per request, but a range of many keys can
 * answer with more; this bounds what a confused server can make us keep. */
#define ETCD_MAX_ANSWER (64u << 20)
/* How often a transfer's loop looks at the stop flag and the clocks. */
#define ETCD_POLL_MS 100

/*
 * One easy handle (its connections reused from call to call) driven by a
 * private multi handle: curl_easy_perform() would look at a stop flag only
 * about once a second while a stream is quiet, curl_multi_poll() returns
 * every ETCD_POLL_MS.
 */
struct etcd {
	CURL *curl;
	CURLM *multi;
	struct curl_slist *headers;
	char *ep[ETCD_MAX_ENDPOINTS];
	unsigned n_ep;
	unsigned cur; /* the endpoint to try first: the last that answered */
	char *ca_file, *cert_file, *key_file;
	unsigned timeout_ms;
	char curl_err[CURL_ERROR_SIZE];
};

struct xfer;
/* A streamed answer's objects, one by one: < 0 ends the transfer with that
 * error, > 0 ends it with that result, 0 waits for more. */
typedef int (*obj_fn)(struct xfer *x, struct json_object *o);

/* What one call asks of the transfer. */
struct call {
	const char *path;
	const char *body;
	/* A stream (watch, observe) or a wait (campaign): no total timeout. */
	bool stream;
	/* May be sent again to the next endpoint when the first may have got it. */
	bool idempotent;
	/* The first object must come within the timeout (a watch's "created"). */
	bool first_in_time;
	unsigned idle_ms;
	const volatile bool *stop;
	obj_fn on_obj; /* NULL: the whole answer is one object */
	void *arg;
};

/* One transfer to one endpoint. */
struct xfer {
	const struct call *c;
	const char *ep;
	struct vsn_error *err;
	char *body;
	size_t len, cap;
	json_tokener *tok;
	unsigned n_obj;
	bool got_data;
	int ret; /* why on_data ended the transfer */
	uint64_t last_ms;
};

static pthread_once_t global_once = PTHREAD_ONCE_INIT;
static CURLcode global_rc;

static void global_init(void)
{
	global_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static int nomem(struct vsn_error *err)
{
	return vsn_error_set(err, -ENOMEM, "etcd: out of memory");
}

/* base64 (RFC 4648, padded), as the gateway writes bytes fields. */
static const char b64_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static char *b64_encode(const void *data, size_t len)
{
	const unsigned char *p = data;
	char *out = malloc(len / 3 * 4 + 5), *o = out;
	size_t i;

	if (!out)
		return NULL;
	for (i = 0; i + 3 <= len; i += 3) {
		uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8 | p[i + 2];

		*o++ = b64_alphabet[v >> 18 & 63];
		*o++ = b64_alphabet[v >> 12 & 63];
		*o++ = b64_alphabet[v >> 6 & 63];
		*o++ = b64_alphabet[v & 63];
	}
	if (len - i == 1) {
		uint32_t v = (uint32_t)p[i] << 16;

		*o++ = b64_alphabet[v >> 18 & 63];
		*o++ = b64_alphabet[v >> 12 & 63];
		*o++ = '=';
		*o++ = '=';
	} else if (len - i == 2) {
		uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8;

		*o++ = b64_alphabet[v >> 18 & 63];
		*o++ = b64_alphabet[v >> 12 & 63];
		*o++ = b64_alphabet[v >> 6 & 63];
		*o++ = '=';
	}
	*o = '\0';
	return out;
}

static int b64_digit(char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

/* *out: a NUL-terminated copy (the bytes may hold NULs too). */
static int b64_decode(const char *s, char **out, size_t *out_len)
{
	size_t len = strlen(s), i, n = 0;
	unsigned bits = 0;
	uint32_t acc = 0;
	char *buf;

	if (len % 4)
		return -EPROTO;
	if (len && s[len - 1] == '=')
		len--;
	if (len && s[len - 1] == '=')
		len--;
	buf = malloc(len / 4 * 3 + 3);
	if (!buf)
		return -ENOMEM;
	for (i = 0; i < len; i++) {
		int d = b64_digit(s[i]);

		if (d < 0) {
			free(buf);
			return -EPROTO;
		}
		acc = acc << 6 | (uint32_t)d;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			buf[n++] = (char)(acc >> bits & 0xff);
		}
	}
	buf[n] = '\0';
	*out = buf;
	*out_len = n;
	return 0;
}

/* Reading answers: the gateway leaves out fields that are 0, false or
 * empty, and writes int64 fields as strings. */

static struct json_object *j_get(struct json_object *o, const char *k)
{
	struct json_object *f;

	if (!json_object_object_get_ex(o, k, &f) || json_object_is_type(f, json_type_null))
		return NULL;
	return f;
}

static int j_int(struct json_object *o, const char *k, int64_t *v)
{
	struct json_object *f = j_get(o, k);
	const char *s;
	char *end;

	*v = 0;
	if (!f)
		return 0;
	if (json_object_is_type(f, json_type_int)) {
		*v = json_object_get_int64(f);
		return 0;
	}
	if (!json_object_is_type(f, json_type_string))
		return -EPROTO;
	s = json_object_get_string(f);
	errno = 0;
	*v = strtoll(s, &end, 10);
	if (errno || end == s || *end)
		return -EPROTO;
	return 0;
}

static int j_bool(struct json_object *o, const char *k, bool *v)
{
	struct json_object *f = j_get(o, k);

	*v = false;
	if (!f)
		return 0;
	if (!json_object_is_type(f, json_type_boolean))
		return -EPROTO;
	*v = json_object_get_boolean(f);
	return 0;
}

/* A bytes field, decoded; absent: empty. */
static int j_bytes(struct json_object *o, const char *k, char **out, size_t *len)
{
	struct json_object *f = j_get(o, k);

	if (f && !json_object_is_type(f, json_type_string))
		return -EPROTO;
	return b64_decode(f ? json_object_get_string(f) : "", out, len);
}

static int j_rev(struct json_object *o, int64_t *rev)
{
	struct json_object *h = j_get(o, "header");

	*rev = 0;
	return h ? j_int(h, "revision", rev) : 0;
}

/* Writing requests: int64 as strings too, bytes as base64. */

static int j_add(struct json_object *o, const char *k, struct json_object *v)
{
	if (!v)
		return -ENOMEM;
	if (json_object_object_add(o, k, v)) {
		json_object_put(v);
		return -ENOMEM;
	}
	return 0;
}

static int j_add_bytes(struct json_object *o, const char *k, const void *p, size_t len)
{
	char *s = b64_encode(p, len);
	int ret;

	if (!s)
		return -ENOMEM;
	ret = j_add(o, k, json_object_new_string(s));
	free(s);
	return ret;
}

static int j_add_int(struct json_object *o, const char *k, int64_t v)
{
	char s[24];

	snprintf(s, sizeof(s), "%" PRId64, v);
	return j_add(o, k, json_object_new_string(s));
}

/*
 * key, and with prefix the range_end that ends it: the key with its last
 * byte plus one (trailing 0xff bytes dropped first, as they cannot grow).
 * An empty prefix, or one of 0xff only, is every key from key on: etcd
 * spells that range_end "\0", and wants a key of at least one byte.
 */
static int j_add_key(struct json_object *o, const char *key, bool prefix)
{
	size_t len = strlen(key);
	char *end;
	int ret;

	if (!prefix)
		return j_add_bytes(o, "key", key, len);
	ret = len ? j_add_bytes(o, "key", key, len) : j_add_bytes(o, "key", "", 1);
	if (ret)
		return ret;
	end = strdup(key);
	if (!end)
		return -ENOMEM;
	while (len && (unsigned char)end[len - 1] == 0xff)
		len--;
	if (len)
		end[len - 1] = (char)((unsigned char)end[len - 1] + 1);
	ret = len ? j_add_bytes(o, "range_end", end, len) : j_add_bytes(o, "range_end", "", 1);
	free(end);
	return ret;
}

static struct json_object *j_new(struct json_object **slot)
{
	*slot = json_object_new_object();
	return *slot;
}

void etcd_kv_free(struct etcd_kv *kv)
{
	if (!kv)
		return;
	free(kv->key);
	free(kv->value);
	memset(kv, 0, sizeof(*kv));
}

static int kv_parse(struct json_object *o, struct etcd_kv *kv)
{
	int ret;

	memset(kv, 0, sizeof(*kv));
	if (!json_object_is_type(o, json_type_object))
		return -EPROTO;
	ret = j_bytes(o, "key", &kv->key, &kv->key_len);
	if (!ret)
		ret = j_bytes(o, "value", &kv->value, &kv->value_len);
	if (!ret)
		ret = j_int(o, "create_revision", &kv->create_rev);
	if (!ret)
		ret = j_int(o, "mod_revision", &kv->mod_rev);
	if (!ret)
		ret = j_int(o, "version", &kv->version);
	if (!ret)
		ret = j_int(o, "lease", &kv->lease);
	if (ret)
		etcd_kv_free(kv);
	return ret;
}

void etcd_range_free(struct etcd_range *r)
{
	unsigned i;

	if (!r)
		return;
	for (i = 0; i < r->n; i++)
		etcd_kv_free(&r->kvs[i]);
	free(r->kvs);
	memset(r, 0, sizeof(*r));
}

static int range_parse(struct json_object *o, struct etcd_range *r)
{
	struct json_object *kvs = j_get(o, "kvs");
	size_t i, n;
	int ret;

	memset(r, 0, sizeof(*r));
	ret = j_rev(o, &r->revision);
	if (!ret)
		ret = j_int(o, "count", &r->count);
	if (ret || !kvs)
		return ret;
	if (!json_object_is_type(kvs, json_type_array))
		return -EPROTO;
	n = json_object_array_length(kvs);
	if (!n)
		return 0;
	r->kvs = calloc(n, sizeof(*r->kvs));
	if (!r->kvs)
		return -ENOMEM;
	for (i = 0; i < n && !ret; i++) {
		ret = kv_parse(json_object_array_get_idx(kvs, i), &r->kvs[i]);
		if (!ret)
			r->n++;
	}
	if (ret)
		etcd_range_free(r);
	return ret;
}

/*
 * etcd's answer when it is an error: {"error": "...", "code": N,
 * "message": "..."}, or in a stream {"error": {"grpc_code": N, "message":
 * "..."}}.  0 when it is not one.  *unavailable: the member could not serve
 * it (no quorum, overloaded), another member may.
 */
static int etcd_error(const char *ep, struct json_object *o, bool *unavailable,
		      struct vsn_error *err)
{
	struct json_object *f = j_get(o, "error"), *m;
	const char *msg = NULL;
	int64_t code = 0;

	*unavailable = false;
	if (!f)
		return 0;
	if (json_object_is_type(f, json_type_object)) {
		j_int(f, "grpc_code", &code);
		m = j_get(f, "message");
	} else {
		if (json_object_is_type(f, json_type_string) && !json_object_get_string_len(f))
			return 0; /* LeaseGrantResponse's own "error" field, empty */
		j_int(o, "code", &code);
		m = j_get(o, "message");
		if (!m)
			m = f;
	}
	if (m && json_object_is_type(m, json_type_string))
		msg = json_object_get_string(m);
	if (!msg)
		msg = "an error without a message";
	if (strstr(msg, "lease not found"))
		return vsn_error_set(err, -ENOENT, "etcd at %s: %s", ep, msg);
	if (strstr(msg, "election: no leader"))
		return vsn_error_set(err, -ENOENT, "etcd at %s: %s", ep, msg);
	if (strstr(msg, "compacted"))
		return vsn_error_set(err, -ESTALE, "etcd at %s: %s: read the current state again",
				     ep, msg);
	/* gRPC's UNAVAILABLE and DEADLINE_EXCEEDED */
	if (code == 14 || code == 4) {
		*unavailable = true;
		return vsn_error_set(err, -ETIMEDOUT,
				     "etcd at %s: %s: the member cannot reach its cluster's "
				     "quorum, or is overloaded",
				     ep, msg);
	}
	/* PERMISSION_DENIED and UNAUTHENTICATED */
	if (code == 7 || code == 16)
		return vsn_error_set(err, -EACCES, "etcd at %s: %s", ep, msg);
	return vsn_error_set(err, -EIO, "etcd at %s: %s", ep, msg);
}

static int append(struct xfer *x, const char *p, size_t n)
{
	if (x->len + n + 1 > ETCD_MAX_ANSWER)
		return -EMSGSIZE;
	if (x->len + n + 1 > x->cap) {
		size_t cap = x->cap ? x->cap : 4096;
		char *b;

		while (cap < x->len + n + 1)
			cap *= 2;
		b = realloc(x->body, cap);
		if (!b)
			return -ENOMEM;
		x->body = b;
		x->cap = cap;
	}
	memcpy(x->body + x->len, p, n);
	x->len += n;
	x->body[x->len] = '\0';
	return 0;
}

/* libcurl's write callback: keeps a short answer, or hands a stream's
 * objects to on_obj as they complete. */
static size_t on_data(char *p, size_t size, size_t nmemb, void *arg)
{
	struct xfer *x = arg;
	size_t n = size * nmemb, off = 0;

	x->last_ms = now_ms();
	x->got_data = true;
	if (!x->c->on_obj) {
		x->ret = append(x, p, n);
		if (x->ret == -ENOMEM)
			nomem(x->err);
		else if (x->ret)
			vsn_error_set(x->err, x->ret, "etcd at %s: an answer over %u MiB", x->ep,
				      ETCD_MAX_ANSWER >> 20);
		return x->ret ? 0 : n;
	}
	while (off < n) {
		struct json_object *o = json_tokener_parse_ex(x->tok, p + off, (int)(n - off));
		enum json_tokener_error te = json_tokener_get_error(x->tok);

		if (!o && te == json_tokener_continue)
			return n;
		if (!o) {
			x->ret = vsn_error_set(x->err, -EPROTO,
					       "etcd at %s: a stream that is not JSON (%s): is "
					       "this etcd's client URL? (cluster.endpoints)",
					       x->ep, json_tokener_error_desc(te));
			return 0;
		}
		off += json_tokener_get_parse_end(x->tok);
		json_tokener_reset(x->tok);
		x->n_obj++;
		x->ret = x->c->on_obj(x, o);
		json_object_put(o);
		if (x->ret)
			return 0;
	}
	return n;
}

#define SETOPT(opt, val)                                                                           \
	do {                                                                                       \
		if (rc == CURLE_OK)                                                                \
			rc = curl_easy_setopt(e->curl, opt, val);                                  \
	} while (0)

static CURLcode set_options(struct etcd *e, const char *url, const struct call *c, struct xfer *x,
			    long connect_ms, long total_ms)
{
	CURLcode rc = CURLE_OK;

	curl_easy_reset(e->curl); /* keeps the connections */
	SETOPT(CURLOPT_URL, url);
	SETOPT(CURLOPT_PROTOCOLS_STR, "http,https");
	SETOPT(CURLOPT_NOSIGNAL, 1L);
	/* etcd serves gRPC on HTTP/2 on the same port; the gateway is HTTP/1.1. */
	SETOPT(CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
	SETOPT(CURLOPT_HTTPHEADER, e->headers);
	SETOPT(CURLOPT_POSTFIELDS, c->body);
	SETOPT(CURLOPT_POSTFIELDSIZE, (long)strlen(c->body));
	SETOPT(CURLOPT_WRITEFUNCTION, on_data);
	SETOPT(CURLOPT_WRITEDATA, x);
	SETOPT(CURLOPT_ERRORBUFFER, e->curl_err);
	SETOPT(CURLOPT_CONNECTTIMEOUT_MS, connect_ms);
	SETOPT(CURLOPT_TIMEOUT_MS, total_ms);
	if (c->stream) {
		/* A peer that vanished without a FIN ends a long wait too. */
		SETOPT(CURLOPT_TCP_KEEPALIVE, 1L);
		SETOPT(CURLOPT_TCP_KEEPIDLE, 5L);
		SETOPT(CURLOPT_TCP_KEEPINTVL, 5L);
	}
	if (e->ca_file)
		SETOPT(CURLOPT_CAINFO, e->ca_file);
	if (e->cert_file)
		SETOPT(CURLOPT_SSLCERT, e->cert_file);
	if (e->key_file)
		SETOPT(CURLOPT_SSLKEY, e->key_file);
	return rc;
}

/* How a transfer ended, for the endpoint loop. */
enum outcome {
	ANSWERED, /* the endpoint answered (a result or etcd's error) */
	MOVE_ON,  /* the endpoint failed; the request can go to the next */
	FAILED,	  /* the endpoint failed; the request may have reached it */
	LOCAL,	  /* the stop flag, or a failure here (memory, libcurl) */
};

static int curl_failure(struct etcd *e, const struct xfer *x, CURLcode res, bool got_data,
			enum outcome *how, struct vsn_error *err)
{
	const char *why = e->curl_err[0] ? e->curl_err : curl_easy_strerror(res);
	bool tls = !strncmp(x->ep, "https:", 6);
	long os_errno = 0, connected = 0;
	curl_off_t t_conn = 0;

	*how = got_data ? FAILED : MOVE_ON;
	if (curl_easy_getinfo(e->curl, CURLINFO_OS_ERRNO, &os_errno) != CURLE_OK)
		os_errno = 0;
	if (curl_easy_getinfo(e->curl, tls ? CURLINFO_APPCONNECT_TIME_T : CURLINFO_CONNECT_TIME_T,
			      &t_conn) == CURLE_OK)
		connected = t_conn > 0;
	switch (res) {
	case CURLE_COULDNT_CONNECT:
		if (os_errno == ECONNREFUSED)
			return vsn_error_set(err, -ECONNREFUSED,
					     "etcd at %s: connection refused: is etcd running? "
					     "(cluster.endpoints)",
					     x->ep);
		return vsn_error_set(err, os_errno == ETIMEDOUT ? -ETIMEDOUT : -EHOSTUNREACH,
				     "etcd at %s: cannot connect: %s: is the address right? "
				     "(cluster.endpoints)",
				     x->ep, why);
	case CURLE_COULDNT_RESOLVE_HOST:
		return vsn_error_set(err, -EHOSTUNREACH, "etcd at %s: %s (cluster.endpoints)",
				     x->ep, why);
	case CURLE_OPERATION_TIMEDOUT:
		if (!connected)
			return vsn_error_set(err, -ETIMEDOUT,
					     "etcd at %s: no connection within %u ms: is the "
					     "address right and the member up? (cluster.endpoints)",
					     x->ep, e->timeout_ms);
		*how = x->c->idempotent ? MOVE_ON : FAILED;
		return vsn_error_set(err, -ETIMEDOUT,
				     "etcd at %s: no answer within %u ms: is the member stopped "
				     "or overloaded? (cluster.endpoints)",
				     x->ep, e->timeout_ms);
	case CURLE_PEER_FAILED_VERIFICATION:
	case CURLE_SSL_CACERT_BADFILE:
		*how = FAILED;
		return vsn_error_set(err, -EACCES,
				     "etcd at %s: TLS: %s: is cluster.ca_file the CA that signed "
				     "etcd's certificate, with the endpoint's address in it?",
				     x->ep, why);
	case CURLE_SSL_CERTPROBLEM:
	case CURLE_SSL_ENGINE_INITFAILED:
		*how = FAILED;
		return vsn_error_set(err, -EACCES,
				     "etcd at %s: TLS: %s: check cluster.cert_file and "
				     "cluster.key_file",
				     x->ep, why);
	case CURLE_SSL_CONNECT_ERROR:
		return vsn_error_set(err, -EACCES,
				     "etcd at %s: TLS handshake failed: %s: is it an https "
				     "endpoint, and are cluster.cert_file and cluster.key_file "
				     "set when etcd asks for a client certificate?",
				     x->ep, why);
	case CURLE_RECV_ERROR:
	case CURLE_SEND_ERROR:
		/* TLS 1.3 tells a refused client certificate after the
		 * handshake, as an alert on the first read. */
		if (tls && strstr(why, "alert")) {
			*how = FAILED;
			return vsn_error_set(err, -EACCES,
					     "etcd at %s: TLS: %s: etcd refused the client "
					     "certificate: are cluster.cert_file and "
					     "cluster.key_file set, and signed by the CA etcd "
					     "trusts?",
					     x->ep, why);
		}
		if (x->c->idempotent && !x->c->stream)
			*how = MOVE_ON;
		else if (connected)
			*how = FAILED;
		return vsn_error_set(err, -ECONNRESET, "etcd at %s: %s: did the member stop?",
				     x->ep, why);
	case CURLE_GOT_NOTHING:
		*how = x->c->idempotent ? MOVE_ON : FAILED;
		return vsn_error_set(err, -ECONNRESET,
				     "etcd at %s: empty reply: did the member stop, or does it "
				     "speak %s? (cluster.endpoints)",
				     x->ep, tls ? "http" : "https");
	default:
		*how = FAILED;
		return vsn_error_set(err, -EIO, "etcd at %s: %s", x->ep, why);
	}
}

/* Drives the transfer set up on e->curl to its end, the stop flag, or a
 * clock; *res: libcurl's result when it ended by itself. */
static int drive(struct etcd *e, struct xfer *x, uint64_t deadline, CURLcode *res)
{
	const struct call *c = x->c;
	CURLMcode mc;
	CURLMsg *msg;
	int left, ret = 0;

	*res = CURLE_OK;
	for (;;) {
		int running = 0;
		uint64_t t;

		mc = curl_multi_perform(e->multi, &running);
		if (mc != CURLM_OK || !running)
			break;
		t = now_ms();
		if (c->stop && *c->stop) {
			ret = -ECANCELED;
			break;
		}
		if (c->first_in_time && !x->n_obj && t >= deadline) {
			ret = -ETIMEDOUT;
			break;
		}
		if (c->idle_ms && x->n_obj && t - x->last_ms >= c->idle_ms) {
			ret = -ETIMEDOUT;
			break;
		}
		mc = curl_multi_poll(e->multi, NULL, 0, ETCD_POLL_MS, NULL);
		if (mc != CURLM_OK)
			break;
	}
	if (mc != CURLM_OK)
		return vsn_error_set(x->err, -EIO, "libcurl: %s", curl_multi_strerror(mc));
	if (ret)
		return ret;
	msg = curl_multi_info_read(e->multi, &left);
	if (!msg || msg->msg != CURLMSG_DONE)
		return vsn_error_set(x->err, -EIO, "libcurl: a transfer ended without a result");
	*res = msg->data.result;
	return 0;
}

/* One request to endpoint i; *resp: the answer when the call has no
 * on_obj. */
static int exchange(struct etcd *e, unsigned i, const struct call *c, uint64_t deadline,
		    unsigned n_left, struct json_object **resp, enum outcome *how,
		    struct vsn_error *err)
{
	struct xfer x = {.c = c, .ep = e->ep[i], .err = err, .last_ms = now_ms()};
	uint64_t t = x.last_ms, left_ms = deadline > t ? deadline - t : 1;
	bool unavailable, added = false;
	struct json_object *o = NULL;
	char url[512];
	CURLcode res;
	CURLMcode mc;
	long status = 0;
	int ret;

	*how = LOCAL;
	e->curl_err[0] = '\0';
	snprintf(url, sizeof(url), "%s%s", e->ep[i], c->path);
	if (c->on_obj) {
		x.tok = json_tokener_new();
		if (!x.tok) {
			ret = nomem(err);
			goto out;
		}
	}
	/* Each endpoint left gets its share of the time to connect. */
	res = set_options(e, url, c, &x, (long)((left_ms / n_left) ? (left_ms / n_left) : 1),
			  c->stream ? 0L : (long)left_ms);
	if (res != CURLE_OK) {
		ret = vsn_error_set(err, -EIO, "libcurl: %s", curl_easy_strerror(res));
		goto out;
	}
	mc = curl_multi_add_handle(e->multi, e->curl);
	if (mc != CURLM_OK) {
		ret = vsn_error_set(err, -EIO, "libcurl: %s", curl_multi_strerror(mc));
		goto out;
	}
	added = true;
	ret = drive(e, &x, deadline, &res);
	if (ret == -ECANCELED) {
		ret = vsn_error_set(err, ret, "etcd at %s: %s stopped", x.ep, c->path);
		goto out;
	}
	if (ret == -ETIMEDOUT) {
		*how = x.n_obj ? FAILED : MOVE_ON;
		if (x.n_obj)
			ret = vsn_error_set(err, ret,
					    "etcd at %s: nothing came for %u ms, not even a "
					    "progress notification: is the member alive? "
					    "(cluster.endpoints)",
					    x.ep, c->idle_ms);
		else
			ret = vsn_error_set(err, ret,
					    "etcd at %s: no answer within %u ms: is the member "
					    "stopped or overloaded? (cluster.endpoints)",
					    x.ep, e->timeout_ms);
		goto out;
	}
	if (ret)
		goto out;
	/* on_obj ended it: its result (or its error, already in err) */
	if (res == CURLE_WRITE_ERROR && x.ret) {
		ret = x.ret;
		*how = ANSWERED;
		goto out;
	}
	if (res != CURLE_OK) {
		ret = curl_failure(e, &x, res, x.got_data, how, err);
		goto out;
	}
	*how = ANSWERED;
	if (c->on_obj) {
		ret = vsn_error_set(err, -ECONNRESET, "etcd at %s: the %s stream ended", x.ep,
				    c->path);
		goto out;
	}
	if (curl_easy_getinfo(e->curl, CURLINFO_RESPONSE_CODE, &status) != CURLE_OK)
		status = 0;
	o = x.body ? json_tokener_parse(x.body) : NULL;
	if (!o || !json_object_is_type(o, json_type_object)) {
		ret = vsn_error_set(err, -EPROTO,
				    "etcd at %s: HTTP %ld with an answer that is not etcd's JSON: "
				    "is this etcd's client URL? (cluster.endpoints)",
				    x.ep, status);
		goto out;
	}
	ret = etcd_error(x.ep, o, &unavailable, err);
	if (ret) {
		if (unavailable)
			*how = c->idempotent ? MOVE_ON : FAILED;
		goto out;
	}
	if (resp) {
		*resp = o;
		o = NULL;
	}
out:
	if (added) {
		mc = curl_multi_remove_handle(e->multi, e->curl);
		if (mc != CURLM_OK && ret >= 0)
			ret = vsn_error_set(err, -EIO, "libcurl: %s", curl_multi_strerror(mc));
	}
	json_object_put(o);
	if (x.tok)
		json_tokener_free(x.tok);
	free(x.body);
	return ret;
}

/*
 * One call: the endpoints in turn from the last one that answered, within
 * the handle's timeout (a stream: its connection only).  Returns 0 (or an
 * on_obj's result), *resp being the answer when the call has no on_obj.
 */
static int call(struct etcd *e, const struct call *c, struct json_object **resp,
		struct vsn_error *err)
{
	uint64_t deadline = now_ms() + e->timeout_ms;
	unsigned k, first = e->cur, tried = 0;
	enum outcome how = FAILED;
	int ret = -EIO;

	if (resp)
		*resp = NULL;
	for (k = 0; k < e->n_ep; k++) {
		unsigned i = (first + k) % e->n_ep;

		if (k && now_ms() >= deadline)
			break;
		tried++;
		ret = exchange(e, i, c, deadline, e->n_ep - k, resp, &how, err);
		if (how == ANSWERED)
			e->cur = i;
		if (how == ANSWERED || how == LOCAL)
			return ret;
		/* A failed endpoint is tried last next time. */
		e->cur = (i + 1) % e->n_ep;
		if (how == FAILED)
			break;
	}
	if (tried > 1) {
		char last[VSN_ERR_MAX];

		memcpy(last, err->msg, sizeof(last));
		last[sizeof(last) - 1] = '\0';
		vsn_error_set(err, ret, "none of %u etcd endpoints answered; %s", tried, last);
	}
	return ret;
}

static int proto_err(struct etcd *e, const char *path, int ret, struct vsn_error *err)
{
	if (ret == -ENOMEM)
		return nomem(err);
	return vsn_error_set(err, -EPROTO,
			     "etcd at %s: an answer to %s that is not what the API says",
			     etcd_endpoint(e), path);
}

/* A short call: the request object as JSON, the answer object back. */
static int call_json(struct etcd *e, const char *path, struct json_object *req, bool idempotent,
		     struct json_object **resp, struct vsn_error *err)
{
	struct call c = {.path = path, .idempotent = idempotent};

	c.body = json_object_to_json_string_ext(req, JSON_C_TO_STRING_PLAIN);
	if (!c.body)
		return nomem(err);
	return call(e, &c, resp, err);
}

struct etcd *etcd_open(const struct etcd_opts *o, struct vsn_error *err)
{
	struct etcd *e = NULL;
	struct curl_slist *h;
	unsigned i;

	if (pthread_once(&global_once, global_init) || global_rc != CURLE_OK) {
		vsn_error_set(err, -EIO, "libcurl: cannot initialise: %s",
			      curl_easy_strerror(global_rc));
		return NULL;
	}
	if (!o->n_endpoints || o->n_endpoints > ETCD_MAX_ENDPOINTS) {
		vsn_error_set(err, -EINVAL, "etcd: %u endpoints: give 1 to %d (cluster.endpoints)",
			      o->n_endpoints, ETCD_MAX_ENDPOINTS);
		return NULL;
	}
	for (i = 0; i < o->n_endpoints; i++) {
		const char *ep = o->endpoints[i];

		if (!ep || (strncmp(ep, "http://", 7) && strncmp(ep, "https://", 8)) ||
		    strlen(ep) > 256) {
			vsn_error_set(err, -EINVAL,
				      "etcd endpoint '%s': not http://HOST:PORT or "
				      "https://HOST:PORT (cluster.endpoints)",
				      ep ? ep : "");
			return NULL;
		}
	}
	e = calloc(1, sizeof(*e));
	if (!e)
		goto nomem;
	e->timeout_ms = o->timeout_ms ? o->timeout_ms : 2000;
	for (i = 0; i < o->n_endpoints; i++) {
		size_t len;

		e->ep[i] = strdup(o->endpoints[i]);
		if (!e->ep[i])
			goto nomem;
		e->n_ep++;
		len = strlen(e->ep[i]);
		while (len && e->ep[i][len - 1] == '/')
			e->ep[i][--len] = '\0';
	}
	if ((o->ca_file && !(e->ca_file = strdup(o->ca_file))) ||
	    (o->cert_file && !(e->cert_file = strdup(o->cert_file))) ||
	    (o->key_file && !(e->key_file = strdup(o->key_file))))
		goto nomem;
	/* "Expect:" off: curl would wait for a 100-continue on large bodies. */
	h = curl_slist_append(NULL, "Content-Type: application/json");
	if (!h)
		goto nomem;
	e->headers = h;
	h = curl_slist_append(e->headers, "Expect:");
	if (!h)
		goto nomem;
	e->curl = curl_easy_init();
	e->multi = curl_multi_init();
	if (!e->curl || !e->multi) {
		vsn_error_set(err, -ENOMEM, "libcurl: cannot make a handle");
		goto fail;
	}
	return e;
nomem:
	nomem(err);
fail:
	etcd_close(e);
	return NULL;
}

void etcd_close(struct etcd *e)
{
	unsigned i;

	if (!e)
		return;
	if (e->multi)
		curl_multi_cleanup(e->multi);
	if (e->curl)
		curl_easy_cleanup(e->curl);
	curl_slist_free_all(e->headers);
	for (i = 0; i < e->n_ep; i++)
		free(e->ep[i]);
	free(e->ca_file);
	free(e->cert_file);
	free(e->key_file);
	free(e);
}

const char *etcd_endpoint(const struct etcd *e)
{
	return e->ep[e->cur];
}

int etcd_range(struct etcd *e, const char *key, bool prefix, int64_t rev, int64_t limit,
	       struct etcd_range *out, struct vsn_error *err)
{
	struct json_object *req, *resp = NULL;
	int ret;

	memset(out, 0, sizeof(*out));
	if (!j_new(&req))
		return nomem(err);
	ret = j_add_key(req, key, prefix);
	if (!ret && rev)
		ret = j_add_int(req, "revision", rev);
	if (!ret && limit)
		ret = j_add_int(req, "limit", limit);
	if (ret) {
		ret = nomem(err);
		goto out;
	}
	ret = call_json(e, "/v3/kv/range", req, true, &resp, err);
	if (ret)
		goto out;
	ret = range_parse(resp, out);
	if (ret)
		ret = proto_err(e, "/v3/kv/range", ret, err);
out:
	json_object_put(req);
	json_object_put(resp);
	return ret;
}

int etcd_put(struct etcd *e, const char *key, const void *value, size_t len, int64_t lease,
	     int64_t *rev, struct vsn_error *err)
{
	struct json_object *req, *resp = NULL;
	int64_t r = 0;
	int ret;

	if (!j_new(&req))
		return nomem(err);
	ret = j_add_key(req, key, false);
	if (!ret)
		ret = j_add_bytes(req, "value", len ? value : "", len);
	if (!ret && lease)
		ret = j_add_int(req, "lease", lease);
	if (ret) {
		ret = nomem(err);
		goto out;
	}
	/* Sent again after a lost answer, a put only makes one more revision. */
	ret = call_json(e, "/v3/kv/put", req, true, &resp, err);
	if (ret)
		goto out;
	ret = j_rev(resp, &r);
	if (ret)
		ret = proto_err(e, "/v3/kv/put", ret, err);
	if (rev)
		*rev = r;
out:
	json_object_put(req);
	json_object_put(resp);
	return ret;
}

int etcd_delete(struct etcd *e, const char *key, bool prefix, int64_t *deleted,
		struct vsn_error *err)
{
	struct json_object *req, *resp = NULL;
	int64_t d = 0;
	int ret;

	if (!j_new(&req))
		return nomem(err);
	ret = j_add_key(req, key, prefix);
	if (ret) {
		ret = nomem(err);
		goto out;
	}
	ret = call_json(e, "/v3/kv/deleterange", req, true, &resp, err);
	if (ret)
		goto out;
	ret = j_int(resp, "deleted", &d);
	if (ret)
		ret = proto_err(e, "/v3/kv/deleterange", ret, err);
	if (deleted)
		*deleted = d;
out:
	json_object_put(req);
	json_object_put(resp);
	return ret;
}

/* A compare's target: its name in the gateway's enum, and the field that
 * holds the number (or the value). */
static const struct {
	const char *name, *field;
} targets[] = {
    [ETCD_VERSION] = {"VERSION", "version"}, [ETCD_CREATE] = {"CREATE", "create_revision"},
    [ETCD_MOD] = {"MOD", "mod_revision"},    [ETCD_VALUE] = {"VALUE", "value"},
    [ETCD_LEASE] = {"LEASE", "lease"},
};
static const char *const result_names[] = {
    [ETCD_EQUAL] = "EQUAL",
    [ETCD_GREATER] = "GREATER",
    [ETCD_LESS] = "LESS",
    [ETCD_NOT_EQUAL] = "NOT_EQUAL",
};

static int cmp_json(const struct etcd_cmp *c, struct json_object *arr)
{
	struct json_object *o = json_object_new_object();
	int ret;

	if (!o)
		return -ENOMEM;
	if ((unsigned)c->target > ETCD_LEASE || (unsigned)c->result > ETCD_NOT_EQUAL) {
		json_object_put(o);
		return -EINVAL;
	}
	ret = j_add_key(o, c->key, false);
	if (!ret)
		ret = j_add(o, "target", json_object_new_string(targets[c->target].name));
	if (!ret)
		ret = j_add(o, "result", json_object_new_string(result_names[c->result]));
	if (!ret && c->target == ETCD_VALUE)
		ret = j_add_bytes(o, "value", c->value_len ? c->value : "", c->value_len);
	else if (!ret)
		ret = j_add_int(o, targets[c->target].field, c->num);
	if (!ret && json_object_array_add(arr, o))
		ret = -ENOMEM;
	if (ret)
		json_object_put(o);
	return ret;
}

static int op_json(const struct etcd_op *op, struct json_object *arr)
{
	struct json_object *o = json_object_new_object(), *inner = json_object_new_object();
	static const char *const names[] = {
	    [ETCD_OP_PUT] = "request_put",
	    [ETCD_OP_DELETE] = "request_delete_range",
	    [ETCD_OP_RANGE] = "request_range",
	};
	int ret = 0;

	if (!o || !inner) {
		ret = -ENOMEM;
		goto fail;
	}
	if ((unsigned)op->type > ETCD_OP_RANGE) {
		ret = -EINVAL;
		goto fail;
	}
	ret = j_add_key(inner, op->key, op->type != ETCD_OP_PUT && op->prefix);
	if (!ret && op->type == ETCD_OP_PUT)
		ret = j_add_bytes(inner, "value", op->value_len ? op->value : "", op->value_len);
	if (!ret && op->type == ETCD_OP_PUT && op->lease)
		ret = j_add_int(inner, "lease", op->lease);
	if (ret)
		goto fail;
	ret = j_add(o, names[op->type], inner);
	inner = NULL; /* o's now, or freed */
	if (!ret && json_object_array_add(arr, o))
		ret = -ENOMEM;
	if (!ret)
		return 0;
fail:
	json_object_put(inner);
	json_object_put(o);
	return ret;
}

void etcd_txn_result_free(struct etcd_txn_result *r)
{
	unsigned i;

	if (!r)
		return;
	for (i = 0; i < r->n_ranges; i++)
		etcd_range_free(&r->ranges[i]);
	free(r->ranges);
	memset(r, 0, sizeof(*r));
}

static int txn_parse(struct json_object *resp, unsigned n_ops, struct etcd_txn_result *out)
{
	struct json_object *rs = j_get(resp, "responses");
	unsigned i;
	int ret;

	ret = j_rev(resp, &out->revision);
	if (ret)
		return ret;
	if (rs && !json_object_is_type(rs, json_type_array))
		return -EPROTO;
	if ((rs ? json_object_array_length(rs) : 0) != n_ops)
		return -EPROTO;
	if (!n_ops)
		return 0;
	out->ranges = calloc(n_ops, sizeof(*out->ranges));
	if (!out->ranges)
		return -ENOMEM;
	out->n_ranges = n_ops;
	for (i = 0; i < n_ops && !ret; i++) {
		struct json_object *r = j_get(json_object_array_get_idx(rs, i), "response_range");

		if (r)
			ret = range_parse(r, &out->ranges[i]);
	}
	return ret;
}

int etcd_txn(struct etcd *e, const struct etcd_cmp *cmp, unsigned n_cmp,
	     const struct etcd_op *success, unsigned n_success, const struct etcd_op *failure,
	     unsigned n_failure, struct etcd_txn_result *out, struct vsn_error *err)
{
	struct json_object *req, *resp = NULL, *a_cmp = NULL, *a_succ = NULL, *a_fail = NULL;
	unsigned i;
	int ret = 0;

	memset(out, 0, sizeof(*out));
	if (!j_new(&req))
		return nomem(err);
	a_cmp = json_object_new_array();
	a_succ = json_object_new_array();
	a_fail = json_object_new_array();
	if (!a_cmp || !a_succ || !a_fail)
		ret = -ENOMEM;
	for (i = 0; i < n_cmp && !ret; i++)
		ret = cmp_json(&cmp[i], a_cmp);
	for (i = 0; i < n_success && !ret; i++)
		ret = op_json(&success[i], a_succ);
	for (i = 0; i < n_failure && !ret; i++)
		ret = op_json(&failure[i], a_fail);
	if (ret) {
		ret = ret == -EINVAL ? vsn_error_set(err, ret, "etcd txn: an unknown compare or op")
				     : nomem(err);
		goto out;
	}
	ret = j_add(req, "compare", a_cmp);
	a_cmp = NULL;
	if (!ret)
		ret = j_add(req, "success", a_succ);
	a_succ = NULL;
	if (!ret)
		ret = j_add(req, "failure", a_fail);
	a_fail = NULL;
	if (ret) {
		ret = nomem(err);
		goto out;
	}
	/* Not sent twice: the first may have applied, and the second would
	 * see its own write and take the other branch. */
	ret = call_json(e, "/v3/kv/txn", req, false, &resp, err);
	if (ret)
		goto out;
	ret = j_bool(resp, "succeeded", &out->succeeded);
	if (!ret)
		ret = txn_parse(resp, out->succeeded ? n_success : n_failure, out);
	if (ret) {
		etcd_txn_result_free(out);
		ret = proto_err(e, "/v3/kv/txn", ret, err);
	}
out:
	json_object_put(a_cmp);
	json_object_put(a_succ);
	json_object_put(a_fail);
	json_object_put(req);
	json_object_put(resp);
	return ret;
}

int etcd_lease_grant(struct etcd *e, int64_t ttl, int64_t *id, int64_t *granted_ttl,
		     struct vsn_error *err)
{
	struct json_object *req, *resp = NULL;
	int64_t i = 0, t = 0;
	int ret;

	if (!j_new(&req))
		return nomem(err);
	ret = j_add_int(req, "TTL", ttl);
	if (ret) {
		ret = nomem(err);
		goto out;
	}
	/* A lease granted twice: the one nobody keeps alive expires. */
	ret = call_json(e, "/v3/lease/grant", req, true, &resp, err);
	if (ret)
		goto out;
	ret = j_int(resp, "ID", &i);
	if (!ret)
		ret = j_int(resp, "TTL", &t);
	if (ret || !i)
		ret = proto_err(e, "/v3/lease/grant", ret ? ret : -EPROTO, err);
	*id = i;
	if (granted_ttl)
		*granted_ttl = t;
out:
	json_object_put(req);
	json_object_put(resp);
	return ret;
}

struct keepalive {
	int64_t id, ttl;
};

/* The first object of the keep-alive stream is all we wait for. */
static int keepalive_obj(struct xfer *x, struct json_object *o)
{
	struct keepalive *k = x->c->arg;
	struct json_object *r;
	bool unavailable;
	int ret;

	ret = etcd_error(x->ep, o, &unavailable, x->err);
	if (ret)
		return ret;
	r = j_get(o, "result");
	if (!r || j_int(r, "TTL", &k->ttl))
		return vsn_error_set(
		    x->err, -EPROTO,
		    "etcd at %s: a keep-alive answer that is not what the API says", x->ep);
	if (k->ttl <= 0)
		return vsn_error_set(x->err, -ENOENT,
				     "etcd at %s: lease %" PRId64 " has expired or was revoked",
				     x->ep, k->id);
	return 1;
}

int etcd_lease_keepalive(struct etcd *e, int64_t id, int64_t *ttl_left, struct vsn_error *err)
{
	struct keepalive k = {.id = id};
	struct call c = {
	    .path = "/v3/lease/keepalive", .idempotent = true, .on_obj = keepalive_obj, .arg = &k};
	struct json_object *req;
	int ret;

	if (!j_new(&req))
		return nomem(err);
	ret = j_add_int(req, "ID", id);
	c.body = ret ? NULL : json_object_to_json_string_ext(req, JSON_C_TO_STRING_PLAIN);
	if (!c.body) {
		ret = nomem(err);
		goto out;
	}
	ret = call(e, &c, NULL, err);
	if (ret > 0)
		ret = 0;
	if (!ret && ttl_left)
		*ttl_left = k.ttl;
out:
	json_object_put(req);
	return ret;
}

int etcd_lease_revoke(struct etcd *e, int64_t id, struct vsn_error *err)
{
	struct json_object *req, *resp = NULL;
	int ret;

	if (!j_new(&req))
		return nomem(err);
	ret = j_add_int(req, "ID", id);
	if (ret) {
		ret = nomem(err);
		goto out;
	}
	ret = call_json(e, "/v3/lease/revoke", req, true, &resp, err);
out:
	json_object_put(req);
	json_object_put(resp);
	return ret;
}

struct watch {
	const struct etcd_watch_opts *o;
	etcd_watch_cb cb;
	void *arg;
};

static int watch_obj(struct xfer *x, struct json_object *o)
{
	struct watch *w = x->c->arg;
	struct json_object *r, *evs;
	struct etcd_event *ev = NULL;
	int64_t rev = 0, compact = 0;
	bool unavailable, flag;
	size_t i, n = 0;
	int ret;

	ret = etcd_error(x->ep, o, &unavailable, x->err);
	if (ret)
		return ret;
	r = j_get(o, "result");
	if (!r || j_rev(r, &rev) || j_int(r, "compact_revision", &compact) ||
	    j_bool(r, "canceled", &flag))
		goto proto;
	if (flag && compact) {
		if (w->o->compact_rev)
			*w->o->compact_rev = compact;
		return vsn_error_set(x->err, -ESTALE,
				     "etcd at %s: watch from revision %" PRId64
				     ": compacted up to %" PRId64 ": read the state again",
				     x->ep, w->o->start_rev, compact);
	}
	if (flag) {
		struct json_object *why = j_get(r, "cancel_reason");

		return vsn_error_set(x->err, -EIO, "etcd at %s: etcd canceled the watch: %s", x->ep,
				     why ? json_object_get_string(why) : "no reason given");
	}
	if (j_bool(r, "created", &flag))
		goto proto;
	if (flag)
		return 0;
	evs = j_get(r, "events");
	if (evs && !json_object_is_type(evs, json_type_array))
		goto proto;
	n = evs ? json_object_array_length(evs) : 0;
	if (n) {
		ev = calloc(n, sizeof(*ev));
		if (!ev)
			return nomem(x->err);
	}
	for (i = 0; i < n; i++) {
		struct json_object *je = json_object_array_get_idx(evs, i), *t = j_get(je, "type");

		ev[i].deleted = t && !strcmp(json_object_get_string(t), "DELETE");
		ret = kv_parse(j_get(je, "kv"), &ev[i].kv);
		if (ret)
			break;
	}
	/* n = 0: a progress notification */
	if (!ret) {
		ret = w->cb(w->arg, rev, ev, (unsigned)n);
		if (ret)
			vsn_error_set(x->err, ret, "etcd watch: ended by its callback (%d)", ret);
	} else
		ret =
		    vsn_error_set(x->err, ret == -ENOMEM ? -ENOMEM : -EPROTO,
				  "etcd at %s: a watch event that is not what the API says", x->ep);
	for (i = 0; i < n; i++)
		etcd_kv_free(&ev[i].kv);
	free(ev);
	return ret;
proto:
	return vsn_error_set(x->err, -EPROTO,
			     "etcd at %s: a watch answer that is not what the API says", x->ep);
}

int etcd_watch(struct etcd *e, const struct etcd_watch_opts *o, etcd_watch_cb cb, void *arg,
	       struct vsn_error *err)
{
	struct watch w = {.o = o, .cb = cb, .arg = arg};
	struct call c = {.path = "/v3/watch",
			 .stream = true,
			 .first_in_time = true,
			 .idle_ms = o->idle_ms,
			 .stop = o->stop,
			 .on_obj = watch_obj,
			 .arg = &w};
	struct json_object *req, *cr;
	int ret;

	if (!j_new(&req))
		return nomem(err);
	cr = json_object_new_object();
	ret = cr ? j_add_key(cr, o->key, o->prefix) : -ENOMEM;
	if (!ret && o->start_rev)
		ret = j_add_int(cr, "start_revision", o->start_rev);
	if (!ret && o->idle_ms)
		ret = j_add(cr, "progress_notify", json_object_new_boolean(1));
	if (!ret)
		ret = j_add(req, "create_request", cr);
	else
		json_object_put(cr);
	c.body = ret ? NULL : json_object_to_json_string_ext(req, JSON_C_TO_STRING_PLAIN);
	if (!c.body) {
		ret = nomem(err);
		goto out;
	}
	ret = call(e, &c, NULL, err);
out:
	json_object_put(req);
	return ret;
}

void etcd_leader_key_free(struct etcd_leader_key *k)
{
	if (!k)
		return;
	free(k->name);
	free(k->key);
	memset(k, 0, sizeof(*k));
}

int etcd_campaign(struct etcd *e, const char *name, int64_t lease, const char *value,
		  const volatile bool *stop, struct etcd_leader_key *out, struct vsn_error *err)
{
	struct call c = {.path = "/v3/election/campaign", .stream = true, .stop = stop};
	struct json_object *req, *resp = NULL, *l;
	size_t len;
	int ret;

	memset(out, 0, sizeof(*out));
	if (!j_new(&req))
		return nomem(err);
	ret = j_add_bytes(req, "name", name, strlen(name));
	if (!ret)
		ret = j_add_int(req, "lease", lease);
	if (!ret)
		ret = j_add_bytes(req, "value", value, strlen(value));
	c.body = ret ? NULL : json_object_to_json_string_ext(req, JSON_C_TO_STRING_PLAIN);
	if (!c.body) {
		ret = nomem(err);
		goto out;
	}
	ret = call(e, &c, &resp, err);
	if (ret)
		goto out;
	l = j_get(resp, "leader");
	ret = l ? j_bytes(l, "name", &out->name, &len) : -EPROTO;
	if (!ret)
		ret = j_bytes(l, "key", &out->key, &len);
	if (!ret)
		ret = j_int(l, "rev", &out->rev);
	if (!ret)
		ret = j_int(l, "lease", &out->lease);
	if (ret) {
		etcd_leader_key_free(out);
		ret = proto_err(e, c.path, ret, err);
	}
out:
	json_object_put(req);
	json_object_put(resp);
	return ret;
}

int etcd_leader(struct etcd *e, const char *name, struct etcd_kv *out, struct vsn_error *err)
{
	struct json_object *req, *resp = NULL, *kv;
	int ret;

	memset(out, 0, sizeof(*out));
	if (!j_new(&req))
		return nomem(err);
	ret = j_add_bytes(req, "name", name, strlen(name));
	if (ret) {
		ret = nomem(err);
		goto out;
	}
	ret = call_json(e, "/v3/election/leader", req, true, &resp, err);
	if (ret)
		goto out;
	kv = j_get(resp, "kv");
	ret = kv ? kv_parse(kv, out) : -EPROTO;
	if (ret)
		ret = proto_err(e, "/v3/election/leader", ret, err);
out:
	json_object_put(req);
	json_object_put(resp);
	return ret;
}

int etcd_resign(struct etcd *e, const struct etcd_leader_key *k, struct vsn_error *err)
{
	struct json_object *req, *resp = NULL, *l;
	int ret;

	if (!j_new(&req))
		return nomem(err);
	l = json_object_new_object();
	ret = l ? j_add_bytes(l, "name", k->name, strlen(k->name)) : -ENOMEM;
	if (!ret)
		ret = j_add_bytes(l, "key", k->key, strlen(k->key));
	if (!ret)
		ret = j_add_int(l, "rev", k->rev);
	if (!ret)
		ret = j_add_int(l, "lease", k->lease);
	if (!ret)
		ret = j_add(req, "leader", l);
	else
		json_object_put(l);
	if (ret) {
		ret = nomem(err);
		goto out;
	}
	/* Resigning twice is resigning: the second finds nothing to delete. */
	ret = call_json(e, "/v3/election/resign", req, true, &resp, err);
out:
	json_object_put(req);
	json_object_put(resp);
	return ret;
}

struct observe {
	etcd_watch_cb cb;
	void *arg;
};

static int observe_obj(struct xfer *x, struct json_object *o)
{
	struct observe *ob = x->c->arg;
	struct etcd_event ev = {0};
	struct json_object *r;
	bool unavailable;
	int64_t rev = 0;
	int ret;

	ret = etcd_error(x->ep, o, &unavailable, x->err);
	if (ret)
		return ret;
	r = j_get(o, "result");
	ret = r ? j_rev(r, &rev) : -EPROTO;
	if (!ret)
		ret = kv_parse(j_get(r, "kv"), &ev.kv);
	if (ret)
		return vsn_error_set(x->err, ret == -ENOMEM ? -ENOMEM : -EPROTO,
				     "etcd at %s: an observe answer that is not what the API says",
				     x->ep);
	ret = ob->cb(ob->arg, rev, &ev, 1);
	if (ret)
		vsn_error_set(x->err, ret, "etcd observe: ended by its callback (%d)", ret);
	etcd_kv_free(&ev.kv);
	return ret;
}

int etcd_observe(struct etcd *e, const char *name, const volatile bool *stop, etcd_watch_cb cb,
		 void *arg, struct vsn_error *err)
{
	struct observe ob = {.cb = cb, .arg = arg};
	struct call c = {.path = "/v3/election/observe",
			 .stream = true,
			 .stop = stop,
			 .on_obj = observe_obj,
			 .arg = &ob};
	struct json_object *req;
	int ret;

	if (!j_new(&req))
		return nomem(err);
	ret = j_add_bytes(req, "name", name, strlen(name));
	c.body = ret ? NULL : json_object_to_json_string_ext(req, JSON_C_TO_STRING_PLAIN);
	if (!c.body) {
		ret = nomem(err);
		goto out;
	}
	ret = call(e, &c, NULL, err);
out:
	json_object_put(req);
	return ret;
}
