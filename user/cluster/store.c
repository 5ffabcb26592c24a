// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * The cluster's keys as records (store.h).  Values are small JSON objects;
 * one that does not parse is ignored (another version's, or damaged), so a
 * stranger in the key space cannot stop this host's view.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "cluster/store.h"
#include "lib/vsn.h"

void cl_store_init(struct cl_store *s)
{
	memset(s, 0, sizeof(*s));
}

void cl_store_clear(struct cl_store *s)
{
	for (unsigned i = 0; i < s->n_hosts; i++) {
		free(s->hosts[i].rec.backends);
		free(s->hosts[i].paths);
	}
	for (unsigned i = 0; i < s->n_cands; i++)
		free(s->cands[i].key);
	free(s->hosts);
	free(s->cands);
	free(s->config);
	cl_store_init(s);
}

static bool host_name_ok(const char *h, size_t n)
{
	return n && n < CL_HOST_MAX && !memchr(h, '/', n);
}

/* The record of host (n bytes of name); created when create. */
static struct cl_store_host *host_get(struct cl_store *s, const char *name, size_t n, bool create)
{
	struct cl_store_host *h;

	if (!host_name_ok(name, n))
		return NULL;
	for (unsigned i = 0; i < s->n_hosts; i++)
		if (!strncmp(s->hosts[i].rec.name, name, n) && !s->hosts[i].rec.name[n])
			return &s->hosts[i];
	if (!create)
		return NULL;
	if (s->n_hosts == s->cap_hosts) {
		unsigned cap = s->cap_hosts ? 2 * s->cap_hosts : 16;
		void *p = realloc(s->hosts, cap * sizeof(*s->hosts));

		if (!p)
			return NULL;
		s->hosts = p;
		s->cap_hosts = cap;
	}
	h = &s->hosts[s->n_hosts++];
	memset(h, 0, sizeof(*h));
	memcpy(h->rec.name, name, n);
	return h;
}

/* Drop host's record once nothing of it is left. */
static void host_maybe_drop(struct cl_store *s, struct cl_store_host *h)
{
	if (h->registered || h->rec.n_backends || h->n_paths)
		return;
	free(h->rec.backends);
	free(h->paths);
	*h = s->hosts[--s->n_hosts];
}

static double jnum(struct json_object *o, const char *k)
{
	struct json_object *v;

	return json_object_object_get_ex(o, k, &v) ? json_object_get_double(v) : 0;
}

static void jstr(struct json_object *o, const char *k, char *out, size_t len)
{
	struct json_object *v;

	out[0] = '\0';
	if (json_object_object_get_ex(o, k, &v) && json_object_is_type(v, json_type_string))
		snprintf(out, len, "%s", json_object_get_string(v));
}

static struct json_object *parse(const char *value, size_t len)
{
	struct json_tokener *tok = json_tokener_new();
	struct json_object *o;

	if (!tok)
		return NULL;
	o = json_tokener_parse_ex(tok, value, (int)len);
	json_tokener_free(tok);
	if (o && !json_object_is_type(o, json_type_object)) {
		json_object_put(o);
		o = NULL;
	}
	return o;
}

static unsigned apply_backend(struct cl_store_host *h, uint32_t id, struct json_object *o)
{
	struct cl_backend_obs *b = NULL, nb = {.id = id};
	unsigned i, ch = CL_CH_LOAD;

	for (i = 0; i < h->rec.n_backends; i++)
		if (h->rec.backends[i].id == id)
			b = &h->rec.backends[i];
	if (!o) {
		if (!b)
			return CL_CH_NONE;
		*b = h->rec.backends[--h->rec.n_backends];
		return CL_CH_VERDICT;
	}
	if (!b) {
		if (h->rec.n_backends == h->cap_backends) {
			unsigned cap = h->cap_backends ? 2 * h->cap_backends : 4;
			void *p = realloc(h->rec.backends, cap * sizeof(*b));

			if (!p)
				return CL_CH_NONE;
			h->rec.backends = p;
			h->cap_backends = cap;
		}
		b = &h->rec.backends[h->rec.n_backends++];
		b->verdict = 0xff; /* a new one counts as a verdict change */
	}
	nb.conns = (uint32_t)jnum(o, "conns");
	nb.iops = (float)jnum(o, "iops");
	nb.bps = (float)jnum(o, "bps");
	nb.p50_ms = (float)jnum(o, "p50_ms");
	nb.p99_ms = (float)jnum(o, "p99_ms");
	nb.err_rate = (float)jnum(o, "err_rate");
	nb.verdict = (uint8_t)jnum(o, "verdict");
	jstr(o, "reason", nb.reason, sizeof(nb.reason));
	if (nb.verdict != b->verdict)
		ch |= CL_CH_VERDICT;
	*b = nb;
	h->rec.obs_ts = jnum(o, "ts");
	return ch;
}

static unsigned apply_path(struct cl_store_host *h, uint32_t id, struct json_object *o)
{
	struct cl_path_obs *p = NULL;
	unsigned i;

	for (i = 0; i < h->n_paths; i++)
		if (h->paths[i].id == id)
			p = &h->paths[i];
	if (!o) {
		if (p)
			*p = h->paths[--h->n_paths];
		return p ? CL_CH_LOAD : CL_CH_NONE;
	}
	if (!p) {
		if (h->n_paths == h->cap_paths) {
			unsigned cap = h->cap_paths ? 2 * h->cap_paths : 4;
			void *np = realloc(h->paths, cap * sizeof(*p));

			if (!np)
				return CL_CH_NONE;
			h->paths = np;
			h->cap_paths = cap;
		}
		p = &h->paths[h->n_paths++];
	}
	memset(p, 0, sizeof(*p));
	p->id = id;
	jstr(o, "uplink", p->uplink, sizeof(p->uplink));
	p->bps = (float)jnum(o, "bps");
	p->util = (float)jnum(o, "util");
	p->lat_ms = (float)jnum(o, "lat_ms");
	p->verdict = (uint8_t)jnum(o, "verdict");
	jstr(o, "reason", p->reason, sizeof(p->reason));
	return CL_CH_LOAD;
}

/* obs/HOST/b/ID or obs/HOST/p/ID. */
static unsigned apply_obs(struct cl_store *s, const char *k, struct json_object *o)
{
	const char *slash = strchr(k, '/');
	struct cl_store_host *h;
	unsigned long id;
	unsigned ch;
	char kind, *end;

	if (!slash || (slash[1] != 'b' && slash[1] != 'p') || slash[2] != '/')
		return CL_CH_NONE;
	kind = slash[1];
	id = strtoul(slash + 3, &end, 10);
	if (*end || !id || id >= VSN_MAX_BACKENDS)
		return CL_CH_NONE;
	h = host_get(s, k, (size_t)(slash - k), o != NULL);
	if (!h)
		return CL_CH_NONE;
	ch = kind == 'b' ? apply_backend(h, (uint32_t)id, o) : apply_path(h, (uint32_t)id, o);
	host_maybe_drop(s, h);
	return ch;
}

static unsigned apply_host(struct cl_store *s, const char *name, struct json_object *o)
{
	struct cl_store_host *h = host_get(s, name, strlen(name), o != NULL);
	bool was;

	if (!h)
		return CL_CH_NONE;
	was = h->registered;
	h->registered = o != NULL;
	if (o) {
		h->rec.applied_rev = (int64_t)jnum(o, "applied");
		jstr(o, "error", h->rec.error, sizeof(h->rec.error));
	}
	host_maybe_drop(s, h);
	return was != (o != NULL) ? CL_CH_VERDICT : CL_CH_LOAD;
}

static unsigned apply_candidate(struct cl_store *s, const char *key, const char *value, size_t len,
				int64_t create_rev)
{
	const char *before = cl_store_leader(s);
	char was[CL_HOST_MAX];
	unsigned i;

	snprintf(was, sizeof(was), "%s", before);
	for (i = 0; i < s->n_cands && strcmp(s->cands[i].key, key); i++)
		;
	if (!value && i < s->n_cands) {
		free(s->cands[i].key);
		s->cands[i] = s->cands[--s->n_cands];
	} else if (value && i == s->n_cands) {
		if (s->n_cands == s->cap_cands) {
			unsigned cap = s->cap_cands ? 2 * s->cap_cands : 8;
			void *p = realloc(s->cands, cap * sizeof(*s->cands));

			if (!p)
				return CL_CH_NONE;
			s->cands = p;
			s->cap_cands = cap;
		}
		s->cands[i].key = strdup(key);
		if (!s->cands[i].key)
			return CL_CH_NONE;
		s->cands[i].create_rev = create_rev;
		snprintf(s->cands[i].host, sizeof(s->cands[i].host), "%.*s",
			 (int)(len < CL_HOST_MAX ? len : CL_HOST_MAX - 1), value);
		s->n_cands++;
	}
	return strcmp(was, cl_store_leader(s)) ? CL_CH_LEADER : CL_CH_NONE;
}

static unsigned apply_weights(struct cl_store *s, struct json_object *o, int64_t mod_rev)
{
	struct json_object *w;

	memset(s->weights, 0, sizeof(s->weights));
	s->weights_leader[0] = '\0';
	s->weights_rev = 0;
	if (o && json_object_object_get_ex(o, "weights", &w) &&
	    json_object_is_type(w, json_type_object)) {
		json_object_object_foreach(w, k, v)
		{
			unsigned long id = strtoul(k, NULL, 10);
			int64_t x = json_object_get_int64(v);

			if (id && id < VSN_MAX_BACKENDS && x > 0 && x <= UINT32_MAX)
				s->weights[id] = (uint32_t)x;
		}
		jstr(o, "leader", s->weights_leader, sizeof(s->weights_leader));
		s->weights_rev = mod_rev;
	}
	return CL_CH_WEIGHTS;
}

static unsigned apply_config(struct cl_store *s, const char *value, size_t len, int64_t mod_rev)
{
	char *c = NULL;

	if (value) {
		c = malloc(len + 1);
		if (!c)
			return CL_CH_NONE;
		memcpy(c, value, len);
		c[len] = '\0';
	}
	free(s->config);
	s->config = c;
	s->config_len = value ? len : 0;
	s->config_rev = value ? mod_rev : 0;
	return CL_CH_CONFIG;
}

unsigned cl_store_apply(struct cl_store *s, const char *key, const char *value, size_t len,
			int64_t create_rev, int64_t mod_rev)
{
	struct json_object *o = NULL;
	unsigned ch = CL_CH_NONE;

	if (!strncmp(key, CL_KEY_ELECTION "/", strlen(CL_KEY_ELECTION "/")))
		return apply_candidate(s, key, value, len, create_rev);
	if (!strcmp(key, CL_KEY_CONFIG))
		return apply_config(s, value, len, mod_rev);
	if (value) {
		o = parse(value, len);
		if (!o)
			return CL_CH_NONE; /* not ours to read: ignored */
	}
	if (!strncmp(key, CL_KEY_HOSTS, strlen(CL_KEY_HOSTS)))
		ch = apply_host(s, key + strlen(CL_KEY_HOSTS), o);
	else if (!strncmp(key, CL_KEY_OBS, strlen(CL_KEY_OBS)))
		ch = apply_obs(s, key + strlen(CL_KEY_OBS), o);
	else if (!strcmp(key, CL_KEY_WEIGHTS))
		ch = apply_weights(s, o, mod_rev);
	json_object_put(o);
	return ch;
}

const char *cl_store_leader(const struct cl_store *s)
{
	const struct cl_candidate *best = NULL;

	for (unsigned i = 0; i < s->n_cands; i++)
		if (!best || s->cands[i].create_rev < best->create_rev)
			best = &s->cands[i];
	return best ? best->host : "";
}

unsigned cl_store_hosts(const struct cl_store *s, struct cl_host_rec *out, unsigned max)
{
	unsigned n = 0;

	for (unsigned i = 0; i < s->n_hosts && n < max; i++)
		if (s->hosts[i].registered)
			out[n++] = s->hosts[i].rec;
	return n;
}

static char *dump(struct json_object *o)
{
	char *s = o ? strdup(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN)) : NULL;

	json_object_put(o);
	return s;
}

/* Figures rounded: a value that only jitters is not a change to publish. */
static struct json_object *num(double v)
{
	return json_object_new_double((double)(int64_t)(v * 100 + (v < 0 ? -0.5 : 0.5)) / 100);
}

char *cl_obs_backend_json(const struct cl_backend_obs *b, double ts)
{
	struct json_object *o = json_object_new_object();

	if (!o)
		return NULL;
	json_object_object_add(o, "conns", json_object_new_int64(b->conns));
	json_object_object_add(o, "iops", num(b->iops));
	json_object_object_add(o, "bps", num(b->bps));
	json_object_object_add(o, "p50_ms", num(b->p50_ms));
	json_object_object_add(o, "p99_ms", num(b->p99_ms));
	json_object_object_add(o, "err_rate", num(b->err_rate));
	json_object_object_add(o, "verdict", json_object_new_int(b->verdict));
	json_object_object_add(o, "reason", json_object_new_string(b->reason));
	json_object_object_add(o, "ts", num(ts));
	return dump(o);
}

char *cl_obs_path_json(const struct cl_path_obs *p, double ts)
{
	struct json_object *o = json_object_new_object();

	if (!o)
		return NULL;
	json_object_object_add(o, "uplink", json_object_new_string(p->uplink));
	json_object_object_add(o, "bps", num(p->bps));
	json_object_object_add(o, "util", num(p->util));
	json_object_object_add(o, "lat_ms", num(p->lat_ms));
	json_object_object_add(o, "verdict", json_object_new_int(p->verdict));
	json_object_object_add(o, "reason", json_object_new_string(p->reason));
	json_object_object_add(o, "ts", num(ts));
	return dump(o);
}

char *cl_host_json(const char *version, double started, int64_t applied, const char *error)
{
	struct json_object *o = json_object_new_object();

	if (!o)
		return NULL;
	json_object_object_add(o, "version", json_object_new_string(version ? version : ""));
	json_object_object_add(o, "started", num(started));
	json_object_object_add(o, "applied", json_object_new_int64(applied));
	if (error && *error)
		json_object_object_add(o, "error", json_object_new_string(error));
	return dump(o);
}

char *cl_weights_json(const char *leader, const uint32_t *w, const struct cl_backend_cfg *cfg,
		      unsigned n)
{
	struct json_object *o = json_object_new_object(), *ws = json_object_new_object();
	char id[16];

	if (!o || !ws) {
		json_object_put(o);
		json_object_put(ws);
		return NULL;
	}
	json_object_object_add(o, "leader", json_object_new_string(leader));
	for (unsigned i = 0; i < n; i++) {
		snprintf(id, sizeof(id), "%u", cfg[i].id);
		json_object_object_add(ws, id, json_object_new_int64(w[i]));
	}
	json_object_object_add(o, "weights", ws);
	return dump(o);
}
