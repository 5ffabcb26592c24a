// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * Config file loading and checking (see config.h).
 *
 * The file is read once into memory and parsed twice: a libyaml event pass
 * builds a line map (section -> item -> key -> line), then libcyaml loads
 * the same bytes against a schema in which every scalar is a string.  Our
 * own conversions turn the strings into struct vsn_config, so integers,
 * rates and enums are parsed strictly and every error can be reported as
 * FILE:LINE: SECTION[INDEX].FIELD: reason.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <net/if.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <linux/types.h>

#include <cyaml/cyaml.h>
#include <yaml.h>

#include "config.h"

#define HOST_VM	      "host"
#define MAX_FILE_SIZE (16u << 20)
#define MAX_UPLINKS   VSN_MAX_IFINDEX

#define PORT_MIN       1
#define PORT_MAX       65535
#define VLAN_MIN       1
#define VLAN_MAX       4094
#define DSCP_MAX       63
#define ECN_MAX	       3
#define TTL_MIN	       1
#define TTL_MAX	       255
#define FLOW_LABEL_MAX 0xfffff
#define WEIGHT_MIN     1
#define WEIGHT_MAX     65535
#define WEIGHT_DEFAULT 100
#define TIER_MAX       7

/* Where errors go and how to find the line of a key (map may be NULL). */
struct line_map;
struct ectx {
	const char *file;
	struct vsn_err *err;
	const struct line_map *map;
};

/* ------------------------------------------------------------------ */
/* Line map, built by the libyaml pass                                 */

struct key_lines {
	char *key;
	unsigned line;
	unsigned *entries; /* lines of a sequence value's entries */
	unsigned n_entries;
};

struct item_lines {
	unsigned line;
	struct key_lines *keys;
	unsigned n_keys;
};

struct sec_lines {
	char *name;
	unsigned line;
	struct item_lines *items;
	unsigned n_items;
};

struct line_map {
	struct sec_lines *secs;
	unsigned n_secs;
	bool empty; /* no document, or a null root: nothing for libcyaml */
};

/*
 * Make room for element n of a growing array.  The capacity is implied (the
 * next power of two at or above n), so arrays need no separate size field.
 * Returns the (possibly moved) array, or NULL with arr still valid.
 */
static void *grow(void *arr, unsigned n, size_t size)
{
	if (n && (n & (n - 1)))
		return arr;
	return realloc(arr, (n ? 2 * (size_t)n : 1) * size);
}

static void map_free(struct line_map *m)
{
	unsigned s, i, k;

	for (s = 0; s < m->n_secs; s++) {
		struct sec_lines *sec = &m->secs[s];

		for (i = 0; i < sec->n_items; i++) {
			struct item_lines *it = &sec->items[i];

			for (k = 0; k < it->n_keys; k++) {
				free(it->keys[k].key);
				free(it->keys[k].entries);
			}
			free(it->keys);
		}
		free(sec->items);
		free(sec->name);
	}
	free(m->secs);
	m->secs = NULL;
	m->n_secs = 0;
}

static const struct sec_lines *map_sec(const struct line_map *m, const char *name)
{
	unsigned s;

	for (s = 0; s < m->n_secs; s++)
		if (!strcmp(m->secs[s].name, name))
			return &m->secs[s];
	return NULL;
}

static const struct key_lines *item_key(const struct item_lines *it, const char *key)
{
	unsigned k;

	for (k = 0; k < it->n_keys; k++)
		if (!strcmp(it->keys[k].key, key))
			return &it->keys[k];
	return NULL;
}

/* Best known line for sec[idx].key[sub]; 0 if nothing matches. */
static unsigned map_line(const struct line_map *m, const char *sec, long idx, const char *key,
			 long sub)
{
	const struct sec_lines *s;
	const struct item_lines *it;
	const struct key_lines *k;

	if (!m)
		return 0;
	if (!sec) {
		s = key ? map_sec(m, key) : NULL;
		return s ? s->line : 0;
	}
	s = map_sec(m, sec);
	if (!s)
		return 0;
	if (idx < 0 || (unsigned long)idx >= s->n_items)
		return s->line;
	it = &s->items[idx];
	k = key ? item_key(it, key) : NULL;
	if (!k)
		return it->line;
	if (sub >= 0 && (unsigned long)sub < k->n_entries)
		return k->entries[sub];
	return k->line;
}

/* ------------------------------------------------------------------ */
/* Error formatting                                                    */

/* "SEC[IDX].KEY[SUB]: ", any part may be absent. */
static void err_path(char *buf, size_t size, const char *sec, long idx, const char *key, long sub)
{
	char is[24] = "", ks[24] = "";

	if (!sec && !key) {
		buf[0] = '\0';
		return;
	}
	if (sec && idx >= 0)
		snprintf(is, sizeof(is), "[%ld]", idx);
	if (key && sub >= 0)
		snprintf(ks, sizeof(ks), "[%ld]", sub);
	snprintf(buf, size, "%s%s%s%s%s: ", sec ? sec : "", is, sec && key ? "." : "",
		 key ? key : "", ks);
}

/*
 * Format "FILE:LINE: SEC[IDX].KEY[SUB]: reason" into the error.  A line
 * from the map wins over the caller's (usually the item's) line.  Always
 * returns -EINVAL so callers can "return fail(...)".
 */
static int __attribute__((format(printf, 7, 8)))
fail(const struct ectx *c, const char *sec, long idx, unsigned line, const char *key, long sub,
     const char *fmt, ...)
{
	unsigned mline = map_line(c->map, sec, idx, key, sub);
	size_t size = sizeof(c->err->msg);
	char path[160], at[16] = "";
	int n;

	err_path(path, sizeof(path), sec, idx, key, sub);
	if (mline)
		line = mline;
	if (line)
		snprintf(at, sizeof(at), ":%u", line);
	n = snprintf(c->err->msg, size, "%s%s: %s", c->file, at, path);
	if (n >= 0 && (size_t)n < size) {
		va_list ap;

		va_start(ap, fmt);
		vsnprintf(c->err->msg + n, size - n, fmt, ap);
		va_end(ap);
	}
	return -EINVAL;
}

static int fail_oom(const struct ectx *c)
{
	fail(c, NULL, -1, 0, NULL, -1, "out of memory");
	return -ENOMEM;
}

/* ------------------------------------------------------------------ */
/* Pass 1: libyaml events -> line map                                  */

struct ypass {
	yaml_parser_t parser;
	const struct ectx *c; /* its map is NULL: lines are given directly */
	struct line_map *map;
};

static unsigned ev_line(const yaml_event_t *ev)
{
	return (unsigned)ev->start_mark.line + 1;
}

static int y_next(struct ypass *y, yaml_event_t *ev)
{
	const yaml_parser_t *p = &y->parser;

	if (yaml_parser_parse(&y->parser, ev))
		return 0;
	if (p->error == YAML_MEMORY_ERROR)
		return fail_oom(y->c);
	if (p->context)
		return fail(y->c, NULL, -1, (unsigned)p->problem_mark.line + 1, NULL, -1,
			    "syntax error: %s (%s at line %u)",
			    p->problem ? p->problem : "invalid YAML", p->context,
			    (unsigned)p->context_mark.line + 1);
	return fail(y->c, NULL, -1, (unsigned)p->problem_mark.line + 1, NULL, -1,
		    "syntax error: %s", p->problem ? p->problem : "invalid YAML");
}

/* Consume the rest of the node that starts with first. */
static int y_skip(struct ypass *y, const yaml_event_t *first)
{
	yaml_event_t ev;
	int depth = 0;

	if (first->type == YAML_SEQUENCE_START_EVENT || first->type == YAML_MAPPING_START_EVENT)
		depth = 1;
	while (depth > 0) {
		int ret = y_next(y, &ev);

		if (ret)
			return ret;
		if (ev.type == YAML_SEQUENCE_START_EVENT || ev.type == YAML_MAPPING_START_EVENT)
			depth++;
		else if (ev.type == YAML_SEQUENCE_END_EVENT || ev.type == YAML_MAPPING_END_EVENT)
			depth--;
		yaml_event_delete(&ev);
	}
	return 0;
}

/* Record the line of each entry of a sequence value (e.g. paths: [1, 2]). */
static int y_entries(struct ypass *y, struct key_lines *k)
{
	yaml_event_t ev;
	unsigned *p;

	for (;;) {
		int ret = y_next(y, &ev);

		if (ret)
			return ret;
		if (ev.type == YAML_SEQUENCE_END_EVENT)
			break;
		p = grow(k->entries, k->n_entries, sizeof(*k->entries));
		if (!p) {
			ret = fail_oom(y->c);
		} else {
			k->entries = p;
			k->entries[k->n_entries++] = ev_line(&ev);
			ret = y_skip(y, &ev);
		}
		yaml_event_delete(&ev);
		if (ret)
			return ret;
	}
	yaml_event_delete(&ev);
	return 0;
}

/* One "key: value" of a sequence item's mapping. */
static int y_item_key(struct ypass *y, struct sec_lines *sec, struct item_lines *it,
		      const yaml_event_t *key)
{
	long idx = (long)sec->n_items - 1;
	struct key_lines *k;
	const char *name;
	yaml_event_t val;
	int ret;

	if (key->type != YAML_SCALAR_EVENT)
		return fail(y->c, sec->name, idx, ev_line(key), NULL, -1,
			    "mapping keys must be plain names");
	name = (const char *)key->data.scalar.value;
	if (item_key(it, name))
		return fail(y->c, sec->name, idx, ev_line(key), name, -1, "duplicate key");
	k = grow(it->keys, it->n_keys, sizeof(*it->keys));
	if (!k)
		return fail_oom(y->c);
	it->keys = k;
	k = &it->keys[it->n_keys];
	memset(k, 0, sizeof(*k));
	k->key = strdup(name);
	if (!k->key)
		return fail_oom(y->c);
	k->line = ev_line(key);
	it->n_keys++;

	ret = y_next(y, &val);
	if (ret)
		return ret;
	if (val.type == YAML_SEQUENCE_START_EVENT)
		ret = y_entries(y, k);
	else
		ret = y_skip(y, &val);
	yaml_event_delete(&val);
	return ret;
}

static int y_item(struct ypass *y, struct sec_lines *sec, struct item_lines *it)
{
	yaml_event_t key;

	for (;;) {
		int ret = y_next(y, &key);

		if (ret)
			return ret;
		if (key.type == YAML_MAPPING_END_EVENT)
			break;
		ret = y_item_key(y, sec, it, &key);
		yaml_event_delete(&key);
		if (ret)
			return ret;
	}
	yaml_event_delete(&key);
	return 0;
}

static int y_items(struct ypass *y, struct sec_lines *sec)
{
	struct item_lines *it;
	yaml_event_t ev;

	for (;;) {
		int ret = y_next(y, &ev);

		if (ret)
			return ret;
		if (ev.type == YAML_SEQUENCE_END_EVENT)
			break;
		it = grow(sec->items, sec->n_items, sizeof(*sec->items));
		if (!it) {
			ret = fail_oom(y->c);
		} else {
			sec->items = it;
			it = &sec->items[sec->n_items++];
			memset(it, 0, sizeof(*it));
			it->line = ev_line(&ev);
			if (ev.type == YAML_MAPPING_START_EVENT)
				ret = y_item(y, sec, it);
			else
				ret = y_skip(y, &ev);
		}
		yaml_event_delete(&ev);
		if (ret)
			return ret;
	}
	yaml_event_delete(&ev);
	return 0;
}

/* One "section: value" of the top-level mapping. */
static int y_section(struct ypass *y, const yaml_event_t *key)
{
	struct line_map *m = y->map;
	struct sec_lines *sec;
	const char *name;
	yaml_event_t val;
	int ret;

	if (key->type != YAML_SCALAR_EVENT)
		return fail(y->c, NULL, -1, ev_line(key), NULL, -1,
			    "mapping keys must be plain names");
	name = (const char *)key->data.scalar.value;
	if (map_sec(m, name))
		return fail(y->c, NULL, -1, ev_line(key), name, -1, "duplicate key");
	sec = grow(m->secs, m->n_secs, sizeof(*m->secs));
	if (!sec)
		return fail_oom(y->c);
	m->secs = sec;
	sec = &m->secs[m->n_secs];
	memset(sec, 0, sizeof(*sec));
	sec->name = strdup(name);
	if (!sec->name)
		return fail_oom(y->c);
	sec->line = ev_line(key);
	m->n_secs++;

	ret = y_next(y, &val);
	if (ret)
		return ret;
	if (val.type == YAML_SEQUENCE_START_EVENT)
		ret = y_items(y, sec);
	else
		ret = y_skip(y, &val);
	yaml_event_delete(&val);
	return ret;
}

static int y_top_mapping(struct ypass *y)
{
	yaml_event_t key;

	for (;;) {
		int ret = y_next(y, &key);

		if (ret)
			return ret;
		if (key.type == YAML_MAPPING_END_EVENT)
			break;
		ret = y_section(y, &key);
		yaml_event_delete(&key);
		if (ret)
			return ret;
	}
	yaml_event_delete(&key);
	return 0;
}

static bool is_null_scalar(const yaml_event_t *ev)
{
	const char *v;

	if (ev->type != YAML_SCALAR_EVENT || ev->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
		return false;
	v = (const char *)ev->data.scalar.value;
	return !*v || !strcmp(v, "~") || !strcasecmp(v, "null");
}

/*
 * Walk the whole stream: exactly one document whose root is a mapping (or
 * empty).  Also the syntax check: libyaml's problem_mark gives the line.
 */
static int y_document(struct ypass *y)
{
	yaml_event_t ev = {.type = YAML_NO_EVENT};
	int ret;

	ret = y_next(y, &ev); /* stream start */
	if (ret)
		return ret;
	yaml_event_delete(&ev);
	ret = y_next(y, &ev);
	if (ret)
		goto out;
	if (ev.type == YAML_STREAM_END_EVENT) {
		y->map->empty = true;
		goto out;
	}
	yaml_event_delete(&ev);
	ret = y_next(y, &ev); /* the root node */
	if (ret)
		goto out;
	if (ev.type == YAML_MAPPING_START_EVENT) {
		ret = y_top_mapping(y);
	} else if (is_null_scalar(&ev)) {
		y->map->empty = true;
	} else {
		ret = fail(y->c, NULL, -1, ev_line(&ev), NULL, -1,
			   "top level: expected a mapping of sections (vms, uplinks, paths, "
			   "backends, volumes, routes)");
	}
	if (ret)
		goto out;
	yaml_event_delete(&ev);
	ret = y_next(y, &ev); /* document end */
	if (ret)
		goto out;
	yaml_event_delete(&ev);
	ret = y_next(y, &ev);
	if (!ret && ev.type != YAML_STREAM_END_EVENT)
		ret = fail(y->c, NULL, -1, ev_line(&ev), NULL, -1,
			   "only one YAML document is allowed");
out:
	yaml_event_delete(&ev);
	return ret;
}

static int map_build(struct line_map *m, const char *buf, size_t len, const struct ectx *c)
{
	struct ypass y = {.c = c, .map = m};
	int ret;

	if (!yaml_parser_initialize(&y.parser))
		return fail_oom(c);
	yaml_parser_set_input_string(&y.parser, (const unsigned char *)buf, len);
	ret = y_document(&y);
	yaml_parser_delete(&y.parser);
	return ret;
}

/* ------------------------------------------------------------------ */
/* Pass 2: libcyaml schema load, every scalar as a string              */

struct raw_vm {
	char *name;
	char *id;
	char *interface;
};

struct raw_uplink {
	char *interface;
	char *capacity;
};

struct raw_backend {
	char *id;
	char *name;
	char *address;
	char *port;
	char *state;
	char *weight;
	char *tier;
	char **paths;
	unsigned paths_count;
};

struct raw_path {
	char *id;
	char *uplink;
	char *next_hop;
	char *source_mac;
	char *vlan;
	char *dscp;
	char *ecn;
	char *ttl;
	char *flow_label;
	char *source_address;
};

struct raw_volume {
	char *id;
	char *vm;
	char *address;
	char *port;
	char *protocol;
	char **backends;
	unsigned backends_count;
};

struct raw_route {
	char *vm;
	char *volume;
	char *backend;
	char *path;
};

struct raw_config {
	struct raw_vm *vms;
	unsigned vms_count;
	struct raw_uplink *uplinks;
	unsigned uplinks_count;
	struct raw_backend *backends;
	unsigned backends_count;
	struct raw_path *paths;
	unsigned paths_count;
	struct raw_volume *volumes;
	unsigned volumes_count;
	struct raw_route *routes;
	unsigned routes_count;
};

/* Optional scalar; empty, "~" and "null" load as NULL (= default). */
#define RAW_STR(_key, _type, _member)                                                              \
	CYAML_FIELD_STRING_PTR(_key, CYAML_FLAG_POINTER_NULL_STR | CYAML_FLAG_OPTIONAL, _type,     \
			       _member, 0, CYAML_UNLIMITED)
#define RAW_LIST(_key, _type, _member, _entry)                                                     \
	CYAML_FIELD_SEQUENCE(_key, CYAML_FLAG_POINTER_NULL_STR | CYAML_FLAG_OPTIONAL, _type,       \
			     _member, _entry, 0, CYAML_UNLIMITED)

static const cyaml_schema_value_t raw_str_entry = {
    CYAML_VALUE_STRING(CYAML_FLAG_POINTER, char, 0, CYAML_UNLIMITED),
};

static const cyaml_schema_field_t raw_vm_fields[] = {
    RAW_STR("name", struct raw_vm, name), RAW_STR("id", struct raw_vm, id),
    RAW_STR("interface", struct raw_vm, interface), CYAML_FIELD_END};

static const cyaml_schema_field_t raw_uplink_fields[] = {
    RAW_STR("interface", struct raw_uplink, interface),
    RAW_STR("capacity", struct raw_uplink, capacity), CYAML_FIELD_END};

static const cyaml_schema_field_t raw_backend_fields[] = {
    RAW_STR("id", struct raw_backend, id),
    RAW_STR("name", struct raw_backend, name),
    RAW_STR("address", struct raw_backend, address),
    RAW_STR("port", struct raw_backend, port),
    RAW_STR("state", struct raw_backend, state),
    RAW_STR("weight", struct raw_backend, weight),
    RAW_STR("tier", struct raw_backend, tier),
    RAW_LIST("paths", struct raw_backend, paths, &raw_str_entry),
    CYAML_FIELD_END};

static const cyaml_schema_field_t raw_path_fields[] = {
    RAW_STR("id", struct raw_path, id),
    RAW_STR("uplink", struct raw_path, uplink),
    RAW_STR("next_hop", struct raw_path, next_hop),
    RAW_STR("source_mac", struct raw_path, source_mac),
    RAW_STR("vlan", struct raw_path, vlan),
    RAW_STR("dscp", struct raw_path, dscp),
    RAW_STR("ecn", struct raw_path, ecn),
    RAW_STR("ttl", struct raw_path, ttl),
    RAW_STR("flow_label", struct raw_path, flow_label),
    RAW_STR("source_address", struct raw_path, source_address),
    CYAML_FIELD_END};

static const cyaml_schema_field_t raw_volume_fields[] = {
    RAW_STR("id", struct raw_volume, id),
    RAW_STR("vm", struct raw_volume, vm),
    RAW_STR("address", struct raw_volume, address),
    RAW_STR("port", struct raw_volume, port),
    RAW_STR("protocol", struct raw_volume, protocol),
    RAW_LIST("backends", struct raw_volume, backends, &raw_str_entry),
    CYAML_FIELD_END};

static const cyaml_schema_field_t raw_route_fields[] = {
    RAW_STR("vm", struct raw_route, vm), RAW_STR("volume", struct raw_route, volume),
    RAW_STR("backend", struct raw_route, backend), RAW_STR("path", struct raw_route, path),
    CYAML_FIELD_END};

static const cyaml_schema_value_t raw_vm_schema = {
    CYAML_VALUE_MAPPING(CYAML_FLAG_DEFAULT, struct raw_vm, raw_vm_fields),
};
static const cyaml_schema_value_t raw_uplink_schema = {
    CYAML_VALUE_MAPPING(CYAML_FLAG_DEFAULT, struct raw_uplink, raw_uplink_fields),
};
static const cyaml_schema_value_t raw_backend_schema = {
    CYAML_VALUE_MAPPING(CYAML_FLAG_DEFAULT, struct raw_backend, raw_backend_fields),
};
static const cyaml_schema_value_t raw_path_schema = {
    CYAML_VALUE_MAPPING(CYAML_FLAG_DEFAULT, struct raw_path, raw_path_fields),
};
static const cyaml_schema_value_t raw_volume_schema = {
    CYAML_VALUE_MAPPING(CYAML_FLAG_DEFAULT, struct raw_volume, raw_volume_fields),
};
static const cyaml_schema_value_t raw_route_schema = {
    CYAML_VALUE_MAPPING(CYAML_FLAG_DEFAULT, struct raw_route, raw_route_fields),
};

static const cyaml_schema_field_t raw_config_fields[] = {
    RAW_LIST("vms", struct raw_config, vms, &raw_vm_schema),
    RAW_LIST("uplinks", struct raw_config, uplinks, &raw_uplink_schema),
    RAW_LIST("backends", struct raw_config, backends, &raw_backend_schema),
    RAW_LIST("paths", struct raw_config, paths, &raw_path_schema),
    RAW_LIST("volumes", struct raw_config, volumes, &raw_volume_schema),
    RAW_LIST("routes", struct raw_config, routes, &raw_route_schema),
    CYAML_FIELD_END};

static const cyaml_schema_value_t raw_config_schema = {
    CYAML_VALUE_MAPPING(CYAML_FLAG_POINTER, struct raw_config, raw_config_fields),
};

/*
 * libcyaml reports an error as one message followed by a backtrace, one log
 * call per line, innermost frame first:
 *   "Load: Unexpected key: bogus"
 *   "Load: Backtrace:"
 *   "  in mapping (line: 3, column: 10)"
 *   "  in sequence entry '2' (line: 3, column: 5)"    (1-based)
 *   "  in mapping field 'backends' (line: 2, column: 3)"
 * Collect it so it can be re-issued in our format.
 */
#define CY_FRAMES 8

enum cy_frame_kind { CY_FIELD, CY_ENTRY, CY_MAPPING };

struct cy_frame {
	enum cy_frame_kind kind;
	char name[64];
	long index;
	unsigned line;
};

struct cy_log {
	char reason[VSN_ERR_MAX];
	bool in_backtrace;
	struct cy_frame frames[CY_FRAMES];
	unsigned n_frames;
};

static void cy_frame_parse(struct cy_log *log, const char *s)
{
	struct cy_frame f = {.line = 0};

	while (*s == ' ')
		s++;
	if (sscanf(s, "in mapping field '%63[^']' (line: %u", f.name, &f.line) >= 1)
		f.kind = CY_FIELD;
	else if (sscanf(s, "in sequence entry '%ld' (line: %u", &f.index, &f.line) >= 1)
		f.kind = CY_ENTRY;
	else if (!strncmp(s, "in mapping", strlen("in mapping")))
		f.kind = CY_MAPPING;
	else
		return;
	if (f.kind == CY_MAPPING && sscanf(s, "in mapping (line: %u", &f.line) != 1)
		f.line = 0;
	if (log->n_frames < CY_FRAMES)
		log->frames[log->n_frames++] = f;
}

static void cy_log_fn(cyaml_log_t level, void *ctx, const char *fmt, va_list args)
{
	struct cy_log *log = ctx;
	char buf[VSN_ERR_MAX];
	const char *s = buf;
	size_t n;

	if (level < CYAML_LOG_ERROR)
		return;
	vsnprintf(buf, sizeof(buf), fmt, args);
	n = strlen(buf);
	while (n && (buf[n - 1] == '\n' || buf[n - 1] == ' '))
		buf[--n] = '\0';
	if (!strncmp(s, "Load: ", strlen("Load: ")))
		s += strlen("Load: ");
	if (!strcmp(s, "Backtrace:"))
		log->in_backtrace = true;
	else if (log->in_backtrace)
		cy_frame_parse(log, s);
	else if (!log->reason[0])
		snprintf(log->reason, sizeof(log->reason), "%s", s);
}

static const char *cy_kind_name(const char *k)
{
	if (!strcmp(k, "SCALAR") || !strcmp(k, "STRING"))
		return "a scalar";
	if (!strncmp(k, "SEQUENCE", strlen("SEQUENCE")))
		return "a sequence";
	if (!strncmp(k, "MAPPING", strlen("MAPPING")))
		return "a mapping";
	if (!strcmp(k, "ALIAS"))
		return "an alias";
	return NULL;
}

/* Re-issue a libcyaml failure as FILE:LINE: path: reason. */
static int cy_error(const struct ectx *c, const struct cy_log *log, cyaml_err_t rc)
{
	const char *sec = NULL, *key = NULL;
	long idx = -1, sub = -1;
	unsigned line = log->n_frames ? log->frames[0].line : 0;
	char want[32], got[32];
	unsigned i;

	/* Frames are innermost first: walk outwards-in to rebuild the path. */
	for (i = log->n_frames; i-- > 0;) {
		const struct cy_frame *f = &log->frames[i];

		if (f->kind == CY_FIELD && !sec)
			sec = f->name;
		else if (f->kind == CY_FIELD && !key)
			key = f->name;
		else if (f->kind == CY_ENTRY && sec && !key && idx < 0)
			idx = f->index - 1;
		else if (f->kind == CY_ENTRY && key && sub < 0)
			sub = f->index - 1;
	}

	if (!strncmp(log->reason, "Unexpected key: ", strlen("Unexpected key: ")))
		return fail(c, sec, idx, line, log->reason + strlen("Unexpected key: "), -1,
			    "unknown key");
	if (sscanf(log->reason, "Expecting %31[A-Z_], got event: %31[A-Z_]", want, got) == 2) {
		const char *w = cy_kind_name(want);
		const char *g = cy_kind_name(got);

		if (w && g)
			return fail(c, sec, idx, line, key, sub, "expected %s, got %s", w, g);
	}
	if (!strncmp(log->reason,
		     "Mapping field already seen: ", strlen("Mapping field already seen: ")))
		return fail(c, sec, idx, line, key, sub, "duplicate key");
	if (log->reason[0])
		return fail(c, sec, idx, line, key, sub, "%s", log->reason);
	return fail(c, sec, idx, line, key, sub, "%s", cyaml_strerror(rc));
}

static int raw_load(const struct ectx *c, const char *buf, size_t len, struct raw_config **raw)
{
	struct cy_log log = {.in_backtrace = false};
	const cyaml_config_t cy = {
	    .log_fn = cy_log_fn,
	    .log_ctx = &log,
	    .mem_fn = cyaml_mem,
	    .log_level = CYAML_LOG_ERROR,
	    .flags = CYAML_CFG_DEFAULT,
	};
	cyaml_err_t rc;

	rc = cyaml_load_data((const uint8_t *)buf, len, &cy, &raw_config_schema,
			     (cyaml_data_t **)raw, NULL);
	if (rc == CYAML_OK)
		return 0;
	if (rc == CYAML_ERR_OOM)
		return fail_oom(c);
	return cy_error(c, &log, rc);
}

static void raw_free(struct raw_config *raw)
{
	const cyaml_config_t cy = {
	    .mem_fn = cyaml_mem,
	    .log_level = CYAML_LOG_ERROR,
	};

	if (raw)
		cyaml_free(&cy, &raw_config_schema, raw, 0);
}

/* ------------------------------------------------------------------ */
/* Parsers shared with the CLI                                         */

int parse_addr(const char *s, struct vsn_addr *out, bool *is_v6)
{
	struct in6_addr a6;
	struct in_addr a4;
	bool v6;

	if (!s || !out)
		return -EINVAL;
	if (inet_pton(AF_INET, s, &a4) == 1) {
		memset(&a6, 0, sizeof(a6));
		a6.s6_addr[10] = 0xff;
		a6.s6_addr[11] = 0xff;
		memcpy(&a6.s6_addr[12], &a4, sizeof(a4));
		v6 = false;
	} else if (inet_pton(AF_INET6, s, &a6) == 1) {
		/* "::ffff:a.b.c.d" is stored exactly like a.b.c.d: IPv4. */
		v6 = !IN6_IS_ADDR_V4MAPPED(&a6);
	} else {
		return -EINVAL;
	}
	memcpy(out, &a6, sizeof(*out));
	if (is_v6)
		*is_v6 = v6;
	return 0;
}

static int hexval(char ch)
{
	if (ch >= '0' && ch <= '9')
		return ch - '0';
	return tolower((unsigned char)ch) - 'a' + 10;
}

int parse_mac(const char *s, uint8_t mac[6])
{
	uint8_t tmp[6];
	unsigned i;

	if (!s || strlen(s) != 17)
		return -EINVAL;
	for (i = 0; i < 6; i++) {
		const char *p = s + 3 * (size_t)i;

		if (!isxdigit((unsigned char)p[0]) || !isxdigit((unsigned char)p[1]) ||
		    (i < 5 && p[2] != ':'))
			return -EINVAL;
		tmp[i] = (uint8_t)(hexval(p[0]) << 4 | hexval(p[1]));
	}
	memcpy(mac, tmp, sizeof(tmp));
	return 0;
}

int parse_rate(const char *s, uint64_t *bps)
{
	/* No "bps" units: tc reads those as bytes, which would confuse. */
	static const struct {
		const char *suffix;
		uint64_t mult;
	} units[] = {
	    {"", 1},
	    {"bit", 1},
	    {"k", 1000ULL},
	    {"kbit", 1000ULL},
	    {"m", 1000000ULL},
	    {"mbit", 1000000ULL},
	    {"g", 1000000000ULL},
	    {"gbit", 1000000000ULL},
	    {"t", 1000000000000ULL},
	    {"tbit", 1000000000000ULL},
	};
	const char *p = s;
	uint64_t v = 0;
	unsigned i;

	if (!s || !bps || !isdigit((unsigned char)*p))
		return -EINVAL;
	for (; isdigit((unsigned char)*p); p++)
		if (__builtin_mul_overflow(v, 10, &v) ||
		    __builtin_add_overflow(v, (uint64_t)(*p - '0'), &v))
			return -ERANGE;
	for (i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
		if (strcasecmp(p, units[i].suffix))
			continue;
		if (__builtin_mul_overflow(v, units[i].mult, &v))
			return -ERANGE;
		*bps = v;
		return 0;
	}
	return -EINVAL;
}

/* Decimal or 0x-hex; strtoll's base 0 would read "010" as octal. */
static int parse_int(const char *s, int64_t *out)
{
	const char *p = s;
	bool neg = false;
	uint64_t v = 0;
	int base = 10;

	if (*p == '-') {
		neg = true;
		p++;
	}
	if (p[0] == '0' && (p[1] == 'x' || p[1] == 'X')) {
		base = 16;
		p += 2;
	}
	if (!*p)
		return -EINVAL;
	for (; *p; p++) {
		if (base == 10 ? !isdigit((unsigned char)*p) : !isxdigit((unsigned char)*p))
			return -EINVAL;
		if (__builtin_mul_overflow(v, (uint64_t)base, &v) ||
		    __builtin_add_overflow(v, (uint64_t)hexval(*p), &v) || v > INT64_MAX)
			return -ERANGE;
	}
	*out = neg ? -(int64_t)v : (int64_t)v;
	return 0;
}

const struct vsn_cfg_vm *config_find_vm(const struct vsn_config *cfg, const char *name)
{
	unsigned i;

	if (!cfg || !name)
		return NULL;
	for (i = 0; i < cfg->n_vms; i++)
		if (cfg->vms[i].name && !strcmp(cfg->vms[i].name, name))
			return &cfg->vms[i];
	return NULL;
}

/* ------------------------------------------------------------------ */
/* Conversion of raw strings into struct vsn_config                    */

/* The item being converted or checked: its section, index and line. */
struct item {
	const struct ectx *c;
	const char *sec;
	long idx;
	unsigned line;
};

static struct item item_at(const struct ectx *c, const char *sec, unsigned idx, unsigned line)
{
	struct item it = {.c = c, .sec = sec, .idx = idx, .line = line};

	if (!line)
		it.line = map_line(c->map, sec, idx, NULL, -1);
	return it;
}

static int conv_str(const struct item *it, const char *key, const char *in, bool required,
		    char **out)
{
	if (!in) {
		if (required)
			return fail(it->c, it->sec, it->idx, it->line, key, -1, "missing or empty");
		*out = NULL;
		return 0;
	}
	*out = strdup(in);
	if (!*out)
		return fail_oom(it->c);
	return 0;
}

static int conv_int(const struct item *it, const char *key, long sub, const char *in, int64_t lo,
		    int64_t hi, int64_t *out)
{
	int64_t v;
	int ret;

	ret = parse_int(in, &v);
	if (ret == -EINVAL)
		return fail(it->c, it->sec, it->idx, it->line, key, sub,
			    "expected an integer, got '%s'", in);
	if (ret || v < lo || v > hi)
		return fail(it->c, it->sec, it->idx, it->line, key, sub,
			    "%s is out of range %lld..%lld", in, (long long)lo, (long long)hi);
	*out = v;
	return 0;
}

/* Optional integer: dflt when absent. */
static int conv_opt(const struct item *it, const char *key, const char *in, int64_t lo, int64_t hi,
		    int64_t dflt, int64_t *out)
{
	if (!in) {
		*out = dflt;
		return 0;
	}
	return conv_int(it, key, -1, in, lo, hi, out);
}

static int conv_req(const struct item *it, const char *key, const char *in, int64_t lo, int64_t hi,
		    int64_t *out)
{
	if (!in)
		return fail(it->c, it->sec, it->idx, it->line, key, -1, "missing or empty");
	return conv_int(it, key, -1, in, lo, hi, out);
}

static int conv_u32(const struct item *it, const char *key, const char *in, int64_t lo, int64_t hi,
		    uint32_t *out)
{
	int64_t v = 0;

	if (conv_req(it, key, in, lo, hi, &v))
		return -EINVAL;
	*out = (uint32_t)v;
	return 0;
}

/* A required, non-empty list of ids. */
static int conv_ids(const struct item *it, const char *key, char **in, unsigned n, int64_t hi,
		    uint32_t **out, unsigned *n_out)
{
	int64_t v = 0;
	unsigned i;

	if (!n)
		return fail(it->c, it->sec, it->idx, it->line, key, -1,
			    "at least one id is required");
	*out = calloc(n, sizeof(**out));
	if (!*out)
		return fail_oom(it->c);
	*n_out = n;
	for (i = 0; i < n; i++) {
		if (conv_int(it, key, i, in[i], 1, hi, &v))
			return -EINVAL;
		(*out)[i] = (uint32_t)v;
	}
	return 0;
}

static int conv_vm(const struct item *it, const struct raw_vm *r, struct vsn_cfg_vm *vm)
{
	if (conv_str(it, "name", r->name, true, &vm->name) ||
	    conv_u32(it, "id", r->id, 1, VSN_MAX_VMS - 1, &vm->id) ||
	    conv_str(it, "interface", r->interface, true, &vm->interface))
		return -EINVAL;
	return 0;
}

static int conv_uplink(const struct item *it, const struct raw_uplink *r, struct vsn_cfg_uplink *up)
{
	if (conv_str(it, "interface", r->interface, true, &up->interface))
		return -EINVAL;
	up->capacity_bps = 0;
	if (r->capacity && parse_rate(r->capacity, &up->capacity_bps))
		return fail(it->c, it->sec, it->idx, it->line, "capacity", -1,
			    "invalid rate '%s' (e.g. 10gbit, 100mbit, 1000000)", r->capacity);
	return 0;
}

static int conv_backend(const struct item *it, const struct raw_backend *r,
			struct vsn_cfg_backend *be)
{
	int64_t port = 0, weight = 0, tier = 0;

	if (conv_u32(it, "id", r->id, 1, VSN_MAX_BACKENDS - 1, &be->id) ||
	    conv_str(it, "name", r->name, false, &be->name) ||
	    conv_str(it, "address", r->address, true, &be->address) ||
	    conv_opt(it, "port", r->port, PORT_MIN, PORT_MAX, VSN_PORT_NVME_TCP, &port) ||
	    conv_opt(it, "weight", r->weight, WEIGHT_MIN, WEIGHT_MAX, WEIGHT_DEFAULT, &weight) ||
	    conv_opt(it, "tier", r->tier, 0, TIER_MAX, 0, &tier))
		return -EINVAL;
	be->port = (uint16_t)port;
	be->weight = (uint32_t)weight;
	be->tier = (uint8_t)tier;
	if (!r->state || !strcmp(r->state, "up"))
		be->state = VSN_BE_UP;
	else if (!strcmp(r->state, "down"))
		be->state = VSN_BE_DOWN;
	else if (!strcmp(r->state, "draining"))
		be->state = VSN_BE_DRAINING;
	else
		return fail(it->c, it->sec, it->idx, it->line, "state", -1,
			    "unknown state '%s' (up, down or draining)", r->state);
	return conv_ids(it, "paths", r->paths, r->paths_count, VSN_MAX_PATHS - 1, &be->paths,
			&be->n_paths);
}

static int conv_path(const struct item *it, const struct raw_path *r, struct vsn_cfg_path *p)
{
	int64_t vlan = -1, dscp = -1, ecn = -1, ttl = -1;
	uint8_t mac[6];

	if (conv_u32(it, "id", r->id, 1, VSN_MAX_PATHS - 1, &p->id) ||
	    conv_str(it, "uplink", r->uplink, true, &p->uplink) ||
	    conv_str(it, "source_mac", r->source_mac, false, &p->source_mac) ||
	    conv_opt(it, "vlan", r->vlan, VLAN_MIN, VLAN_MAX, -1, &vlan) ||
	    conv_opt(it, "dscp", r->dscp, 0, DSCP_MAX, -1, &dscp) ||
	    conv_opt(it, "ecn", r->ecn, 0, ECN_MAX, -1, &ecn) ||
	    conv_opt(it, "ttl", r->ttl, TTL_MIN, TTL_MAX, -1, &ttl) ||
	    conv_opt(it, "flow_label", r->flow_label, 0, FLOW_LABEL_MAX, -1, &p->flow_label) ||
	    conv_str(it, "source_address", r->source_address, false, &p->source_address))
		return -EINVAL;
	p->vlan = (int)vlan;
	p->dscp = (int)dscp;
	p->ecn = (int)ecn;
	p->ttl = (int)ttl;
	if (!r->next_hop)
		return fail(it->c, it->sec, it->idx, it->line, "next_hop", -1,
			    "missing or empty (a MAC address or \"fib\")");
	if (!strcmp(r->next_hop, "fib")) {
		p->fib = true;
		return 0;
	}
	if (parse_mac(r->next_hop, mac))
		return fail(it->c, it->sec, it->idx, it->line, "next_hop", -1,
			    "invalid MAC address '%s' (aa:bb:cc:dd:ee:ff or \"fib\")", r->next_hop);
	return conv_str(it, "next_hop", r->next_hop, true, &p->next_hop_mac);
}

static int conv_volume(const struct item *it, const struct raw_volume *r,
		       struct vsn_cfg_volume *vol)
{
	int64_t port = 0;

	if (!r->protocol || !strcmp(r->protocol, "nvme-tcp"))
		vol->proto = VSN_PROTO_NVME_TCP;
	else if (!strcmp(r->protocol, "roce"))
		vol->proto = VSN_PROTO_ROCEV2;
	else
		return fail(it->c, it->sec, it->idx, it->line, "protocol", -1,
			    "unknown protocol '%s' (nvme-tcp or roce)", r->protocol);
	if (conv_u32(it, "id", r->id, 1, VSN_MAX_VOLUMES - 1, &vol->id) ||
	    conv_str(it, "vm", r->vm, true, &vol->vm) ||
	    conv_str(it, "address", r->address, true, &vol->address) ||
	    conv_opt(it, "port", r->port, PORT_MIN, PORT_MAX,
		     vol->proto == VSN_PROTO_ROCEV2 ? VSN_PORT_ROCEV2 : VSN_PORT_NVME_TCP, &port))
		return -EINVAL;
	vol->port = (uint16_t)port;
	return conv_ids(it, "backends", r->backends, r->backends_count, VSN_MAX_BACKENDS - 1,
			&vol->backends, &vol->n_backends);
}

static int conv_route(const struct item *it, const struct raw_route *r, struct vsn_cfg_route *rt)
{
	if (conv_str(it, "vm", r->vm, true, &rt->vm) ||
	    conv_u32(it, "volume", r->volume, 1, VSN_MAX_VOLUMES - 1, &rt->volume) ||
	    conv_u32(it, "backend", r->backend, 1, VSN_MAX_BACKENDS - 1, &rt->backend) ||
	    conv_u32(it, "path", r->path, 1, VSN_MAX_PATHS - 1, &rt->path))
		return -EINVAL;
	return 0;
}

static int check_count(const struct ectx *c, const char *sec, unsigned n, unsigned max)
{
	if (n > max)
		return fail(c, NULL, -1, 0, sec, -1, "%u entries, at most %u are supported", n,
			    max);
	return 0;
}

/*
 * Allocate cfg->FIELD for raw->FIELD_count items and convert each with
 * conv_FN.  n_FIELD counts allocated items, so config_free() cleans up
 * after a failure half-way.
 */
#define CONV_SECTION(c, raw, cfg, field, fn, max)                                                  \
	({                                                                                         \
		unsigned _i;                                                                       \
		int _ret = check_count(c, #field, (raw)->field##_count, (max));                    \
		if (!_ret && (raw)->field##_count) {                                               \
			(cfg)->field = calloc((raw)->field##_count, sizeof(*(cfg)->field));        \
			if (!(cfg)->field)                                                         \
				_ret = fail_oom(c);                                                \
		}                                                                                  \
		for (_i = 0; !_ret && _i < (raw)->field##_count; _i++) {                           \
			struct item _it = item_at(c, #field, _i, 0);                               \
			(cfg)->n_##field = _i + 1;                                                 \
			(cfg)->field[_i].line = _it.line;                                          \
			_ret = conv_##fn(&_it, &(raw)->field[_i], &(cfg)->field[_i]);              \
		}                                                                                  \
		_ret;                                                                              \
	})

static int convert(const struct ectx *c, const struct raw_config *raw, struct vsn_config *cfg)
{
	if (!raw)
		return 0; /* empty document, or only empty sections */
	if (CONV_SECTION(c, raw, cfg, vms, vm, VSN_MAX_VMS - 1) ||
	    CONV_SECTION(c, raw, cfg, uplinks, uplink, MAX_UPLINKS) ||
	    CONV_SECTION(c, raw, cfg, paths, path, VSN_MAX_PATHS - 1) ||
	    CONV_SECTION(c, raw, cfg, backends, backend, VSN_MAX_BACKENDS - 1) ||
	    CONV_SECTION(c, raw, cfg, volumes, volume, VSN_MAX_VOLUMES - 1) ||
	    CONV_SECTION(c, raw, cfg, routes, route, VSN_MAX_ROUTES))
		return -EINVAL;
	return 0;
}

/* ------------------------------------------------------------------ */
/* Per-item checks (config_load and config_validate share them)        */

static int check_range(const struct item *it, const char *key, int64_t v, int64_t lo, int64_t hi)
{
	if (v < lo || v > hi)
		return fail(it->c, it->sec, it->idx, it->line, key, -1,
			    "%lld is out of range %lld..%lld", (long long)v, (long long)lo,
			    (long long)hi);
	return 0;
}

/* -1 means "keep" / "not set". */
static int check_opt(const struct item *it, const char *key, int64_t v, int64_t lo, int64_t hi)
{
	return v == -1 ? 0 : check_range(it, key, v, lo, hi);
}

static int check_name(const struct item *it, const char *key, const char *s)
{
	if (!s || !*s)
		return fail(it->c, it->sec, it->idx, it->line, key, -1, "must not be empty");
	return 0;
}

/* What the kernel's dev_valid_name() accepts. */
static int check_ifname(const struct item *it, const char *key, const char *s)
{
	const char *p;

	if (check_name(it, key, s))
		return -EINVAL;
	if (strlen(s) >= IFNAMSIZ || !strcmp(s, ".") || !strcmp(s, ".."))
		goto bad;
	for (p = s; *p; p++)
		if (*p == '/' || *p == ':' || isspace((unsigned char)*p))
			goto bad;
	return 0;
bad:
	return fail(it->c, it->sec, it->idx, it->line, key, -1,
		    "invalid interface name '%s' (at most %d characters, no '/', ':' or spaces)", s,
		    IFNAMSIZ - 1);
}

static int check_addr(const struct item *it, const char *key, const char *s, struct vsn_addr *out,
		      bool *v6)
{
	struct in6_addr a;

	if (check_name(it, key, s))
		return -EINVAL;
	if (parse_addr(s, out, v6))
		return fail(it->c, it->sec, it->idx, it->line, key, -1, "invalid IP address '%s'",
			    s);
	memcpy(&a, out, sizeof(a));
	if ((*v6 && (IN6_IS_ADDR_UNSPECIFIED(&a) || IN6_IS_ADDR_MULTICAST(&a))) ||
	    (!*v6 && (!memcmp(&a.s6_addr[12], "\0\0\0\0", 4) || (a.s6_addr[12] & 0xf0) == 0xe0 ||
		      !memcmp(&a.s6_addr[12], "\xff\xff\xff\xff", 4))))
		return fail(it->c, it->sec, it->idx, it->line, key, -1,
			    "'%s' is not a unicast address", s);
	return 0;
}

static int check_mac(const struct item *it, const char *key, const char *s)
{
	uint8_t mac[6];

	if (parse_mac(s, mac))
		return fail(it->c, it->sec, it->idx, it->line, key, -1, "invalid MAC address '%s'",
			    s);
	if ((mac[0] & 1) || !memcmp(mac, "\0\0\0\0\0\0", 6))
		return fail(it->c, it->sec, it->idx, it->line, key, -1,
			    "'%s' is not a unicast MAC address", s);
	return 0;
}

static int check_ids(const struct item *it, const char *key, const uint32_t *ids, unsigned n,
		     uint32_t max)
{
	unsigned i;

	if (!n)
		return fail(it->c, it->sec, it->idx, it->line, key, -1,
			    "at least one id is required");
	for (i = 0; i < n; i++)
		if (ids[i] < 1 || ids[i] > max)
			return fail(it->c, it->sec, it->idx, it->line, key, i,
				    "%u is out of range 1..%u", ids[i], max);
	return 0;
}

static int check_vm(const struct item *it, const struct vsn_cfg_vm *vm)
{
	if (check_name(it, "name", vm->name) || check_range(it, "id", vm->id, 1, VSN_MAX_VMS - 1) ||
	    check_ifname(it, "interface", vm->interface))
		return -EINVAL;
	if (!strcmp(vm->name, HOST_VM))
		return fail(it->c, it->sec, it->idx, it->line, "name", -1,
			    "\"" HOST_VM "\" is reserved for host-initiator volumes");
	return 0;
}

static int check_uplink(const struct item *it, const struct vsn_cfg_uplink *up)
{
	return check_ifname(it, "interface", up->interface);
}

static int check_backend(const struct item *it, const struct vsn_cfg_backend *be)
{
	struct vsn_addr a;
	bool v6;

	if (check_range(it, "id", be->id, 1, VSN_MAX_BACKENDS - 1) ||
	    (be->name && check_name(it, "name", be->name)) ||
	    check_addr(it, "address", be->address, &a, &v6) ||
	    check_range(it, "port", be->port, PORT_MIN, PORT_MAX) ||
	    check_range(it, "weight", be->weight, WEIGHT_MIN, WEIGHT_MAX) ||
	    check_range(it, "tier", be->tier, 0, TIER_MAX) ||
	    check_ids(it, "paths", be->paths, be->n_paths, VSN_MAX_PATHS - 1))
		return -EINVAL;
	if (be->state != VSN_BE_UP && be->state != VSN_BE_DOWN && be->state != VSN_BE_DRAINING)
		return fail(it->c, it->sec, it->idx, it->line, "state", -1, "invalid state %u",
			    be->state);
	return 0;
}

static int check_path(const struct item *it, const struct vsn_cfg_path *p)
{
	struct vsn_addr a;
	bool v6;

	if (check_range(it, "id", p->id, 1, VSN_MAX_PATHS - 1) ||
	    check_ifname(it, "uplink", p->uplink))
		return -EINVAL;
	if (!p->next_hop_mac && !p->fib)
		return fail(it->c, it->sec, it->idx, it->line, "next_hop", -1,
			    "required: a MAC address or \"fib\"");
	if (p->next_hop_mac && p->fib)
		return fail(it->c, it->sec, it->idx, it->line, "next_hop", -1,
			    "either a MAC address or \"fib\", not both");
	if ((p->next_hop_mac && check_mac(it, "next_hop", p->next_hop_mac)) ||
	    (p->source_mac && check_mac(it, "source_mac", p->source_mac)) ||
	    check_opt(it, "vlan", p->vlan, VLAN_MIN, VLAN_MAX) ||
	    check_opt(it, "dscp", p->dscp, 0, DSCP_MAX) ||
	    check_opt(it, "ecn", p->ecn, 0, ECN_MAX) ||
	    check_opt(it, "ttl", p->ttl, TTL_MIN, TTL_MAX) ||
	    check_opt(it, "flow_label", p->flow_label, 0, FLOW_LABEL_MAX) ||
	    (p->source_address && check_addr(it, "source_address", p->source_address, &a, &v6)))
		return -EINVAL;
	return 0;
}

static int check_volume(const struct item *it, const struct vsn_cfg_volume *vol)
{
	struct vsn_addr a;
	bool v6;

	if (check_range(it, "id", vol->id, 1, VSN_MAX_VOLUMES - 1) ||
	    check_name(it, "vm", vol->vm) || check_addr(it, "address", vol->address, &a, &v6) ||
	    check_range(it, "port", vol->port, PORT_MIN, PORT_MAX) ||
	    check_ids(it, "backends", vol->backends, vol->n_backends, VSN_MAX_BACKENDS - 1))
		return -EINVAL;
	if (vol->proto != VSN_PROTO_NVME_TCP && vol->proto != VSN_PROTO_ROCEV2)
		return fail(it->c, it->sec, it->idx, it->line, "protocol", -1,
			    "invalid protocol %u", vol->proto);
	return 0;
}

static int check_route(const struct item *it, const struct vsn_cfg_route *rt)
{
	if (check_name(it, "vm", rt->vm) ||
	    check_range(it, "volume", rt->volume, 1, VSN_MAX_VOLUMES - 1) ||
	    check_range(it, "backend", rt->backend, 1, VSN_MAX_BACKENDS - 1) ||
	    check_range(it, "path", rt->path, 1, VSN_MAX_PATHS - 1))
		return -EINVAL;
	return 0;
}

#define CHECK_SECTION(c, cfg, field, fn)                                                           \
	({                                                                                         \
		unsigned _i;                                                                       \
		int _ret = 0;                                                                      \
		for (_i = 0; !_ret && _i < (cfg)->n_##field; _i++) {                               \
			struct item _it = item_at(c, #field, _i, (cfg)->field[_i].line);           \
			_ret = check_##fn(&_it, &(cfg)->field[_i]);                                \
		}                                                                                  \
		_ret;                                                                              \
	})

static int check_items(const struct ectx *c, const struct vsn_config *cfg)
{
	if (check_count(c, "vms", cfg->n_vms, VSN_MAX_VMS - 1) ||
	    check_count(c, "uplinks", cfg->n_uplinks, MAX_UPLINKS) ||
	    check_count(c, "paths", cfg->n_paths, VSN_MAX_PATHS - 1) ||
	    check_count(c, "backends", cfg->n_backends, VSN_MAX_BACKENDS - 1) ||
	    check_count(c, "volumes", cfg->n_volumes, VSN_MAX_VOLUMES - 1) ||
	    check_count(c, "routes", cfg->n_routes, VSN_MAX_ROUTES) ||
	    CHECK_SECTION(c, cfg, vms, vm) || CHECK_SECTION(c, cfg, uplinks, uplink) ||
	    CHECK_SECTION(c, cfg, paths, path) || CHECK_SECTION(c, cfg, backends, backend) ||
	    CHECK_SECTION(c, cfg, volumes, volume) || CHECK_SECTION(c, cfg, routes, route))
		return -EINVAL;
	return 0;
}

/* ------------------------------------------------------------------ */
/* config_load / config_free                                           */

static int read_all(const struct ectx *c, char **buf, size_t *len)
{
	FILE *f = NULL;
	char *p = NULL;
	long size;
	int ret = 0;

	f = fopen(c->file, "rb");
	if (!f) {
		ret = fail(c, NULL, -1, 0, NULL, -1, "cannot open: %s", strerror(errno));
		goto out;
	}
	if (fseek(f, 0, SEEK_END) || (size = ftell(f)) < 0 || fseek(f, 0, SEEK_SET)) {
		ret = fail(c, NULL, -1, 0, NULL, -1, "cannot read: %s", strerror(errno));
		goto out;
	}
	if ((unsigned long)size > MAX_FILE_SIZE) {
		ret = fail(c, NULL, -1, 0, NULL, -1, "file too large (%ld bytes, at most %u)", size,
			   MAX_FILE_SIZE);
		goto out;
	}
	p = malloc((size_t)size + 1);
	if (!p) {
		ret = fail_oom(c);
		goto out;
	}
	if (fread(p, 1, (size_t)size, f) != (size_t)size) {
		ret = fail(c, NULL, -1, 0, NULL, -1, "short read");
		goto out;
	}
	p[size] = '\0';
	*buf = p;
	*len = (size_t)size;
	p = NULL;
out:
	free(p);
	if (f)
		fclose(f);
	return ret;
}

struct vsn_config *config_load(const char *file, struct vsn_err *err)
{
	struct vsn_err scratch = {.msg = ""};
	struct line_map map = {.n_secs = 0};
	struct ectx c = {
	    .file = file ? file : "(null)",
	    .err = err ? err : &scratch,
	    .map = NULL,
	};
	struct raw_config *raw = NULL;
	struct vsn_config *cfg = NULL;
	char *buf = NULL;
	size_t len = 0;
	int ret;

	c.err->msg[0] = '\0';
	if (!file) {
		ret = fail(&c, NULL, -1, 0, NULL, -1, "no file given");
		goto out;
	}
	ret = read_all(&c, &buf, &len);
	if (ret)
		goto out;
	ret = map_build(&map, buf, len, &c);
	if (ret)
		goto out;
	c.map = &map;
	if (!map.empty) {
		ret = raw_load(&c, buf, len, &raw);
		if (ret)
			goto out;
	}
	cfg = calloc(1, sizeof(*cfg));
	if (!cfg) {
		ret = fail_oom(&c);
		goto out;
	}
	cfg->file = strdup(file);
	if (!cfg->file) {
		ret = fail_oom(&c);
		goto out;
	}
	ret = convert(&c, raw, cfg);
	if (ret)
		goto out;
	ret = check_items(&c, cfg);
out:
	if (ret) {
		config_free(cfg);
		cfg = NULL;
	}
	raw_free(raw);
	map_free(&map);
	free(buf);
	return cfg;
}

void config_free(struct vsn_config *cfg)
{
	unsigned i;

	if (!cfg)
		return;
	for (i = 0; i < cfg->n_vms; i++) {
		free(cfg->vms[i].name);
		free(cfg->vms[i].interface);
	}
	for (i = 0; i < cfg->n_uplinks; i++)
		free(cfg->uplinks[i].interface);
	for (i = 0; i < cfg->n_backends; i++) {
		free(cfg->backends[i].name);
		free(cfg->backends[i].address);
		free(cfg->backends[i].paths);
	}
	for (i = 0; i < cfg->n_paths; i++) {
		free(cfg->paths[i].uplink);
		free(cfg->paths[i].next_hop_mac);
		free(cfg->paths[i].source_mac);
		free(cfg->paths[i].source_address);
	}
	for (i = 0; i < cfg->n_volumes; i++) {
		free(cfg->volumes[i].vm);
		free(cfg->volumes[i].address);
		free(cfg->volumes[i].backends);
	}
	for (i = 0; i < cfg->n_routes; i++)
		free(cfg->routes[i].vm);
	free(cfg->vms);
	free(cfg->uplinks);
	free(cfg->backends);
	free(cfg->paths);
	free(cfg->volumes);
	free(cfg->routes);
	free(cfg->file);
	free(cfg);
}

/* ------------------------------------------------------------------ */
/* config_validate: whole-model checks                                 */

struct paddr {
	struct vsn_addr a;
	bool v6;
};

#define BIT_SET(map, n)	 ((map)[(n) / 8] |= (uint8_t)(1u << ((n) % 8)))
#define BIT_TEST(map, n) (((map)[(n) / 8] >> ((n) % 8)) & 1)

/* Lookup tables; an index is stored +1 so that 0 means "no such id". */
struct vctx {
	const struct ectx *c;
	const struct vsn_config *cfg;
	unsigned vm_by_id[VSN_MAX_VMS];
	unsigned path_by_id[VSN_MAX_PATHS];
	unsigned be_by_id[VSN_MAX_BACKENDS];
	unsigned vol_by_id[VSN_MAX_VOLUMES];
	uint8_t be_has_path[VSN_MAX_BACKENDS][VSN_MAX_PATHS / 8];
	uint8_t vol_has_be[VSN_MAX_VOLUMES][VSN_MAX_BACKENDS / 8];
	uint8_t route_seen[VSN_MAX_VOLUMES][VSN_MAX_BACKENDS / 8];
	struct paddr *be_addr;
	struct paddr *vol_addr;
};

static struct item vitem(const struct vctx *v, const char *sec, unsigned idx, unsigned line)
{
	return item_at(v->c, sec, idx, line);
}

static const char *family(bool v6)
{
	return v6 ? "IPv6" : "IPv4";
}

static int validate_vms(struct vctx *v)
{
	const struct vsn_config *cfg = v->cfg;
	unsigned i, j;

	for (i = 0; i < cfg->n_vms; i++) {
		const struct vsn_cfg_vm *vm = &cfg->vms[i];
		struct item it = vitem(v, "vms", i, vm->line);

		if (v->vm_by_id[vm->id])
			return fail(v->c, it.sec, it.idx, it.line, "id", -1,
				    "id %u is already used by vms[%u]", vm->id,
				    v->vm_by_id[vm->id] - 1);
		v->vm_by_id[vm->id] = i + 1;
		for (j = 0; j < i; j++) {
			if (!strcmp(cfg->vms[j].name, vm->name))
				return fail(v->c, it.sec, it.idx, it.line, "name", -1,
					    "name '%s' is already used by vms[%u]", vm->name, j);
			if (!strcmp(cfg->vms[j].interface, vm->interface))
				return fail(v->c, it.sec, it.idx, it.line, "interface", -1,
					    "interface %s is already used by vms[%u]",
					    vm->interface, j);
		}
		for (j = 0; j < cfg->n_uplinks; j++)
			if (!strcmp(cfg->uplinks[j].interface, vm->interface))
				return fail(v->c, it.sec, it.idx, it.line, "interface", -1,
					    "%s is also an uplink (uplinks[%u])", vm->interface, j);
	}
	return 0;
}

static int validate_uplinks(const struct vctx *v)
{
	const struct vsn_config *cfg = v->cfg;
	unsigned i, j;

	for (i = 0; i < cfg->n_uplinks; i++)
		for (j = 0; j < i; j++)
			if (!strcmp(cfg->uplinks[j].interface, cfg->uplinks[i].interface))
				return fail(v->c, "uplinks", i, cfg->uplinks[i].line, "interface",
					    -1, "%s is already listed as uplinks[%u]",
					    cfg->uplinks[i].interface, j);
	return 0;
}

static int validate_paths(struct vctx *v)
{
	const struct vsn_config *cfg = v->cfg;
	unsigned i, j;

	for (i = 0; i < cfg->n_paths; i++) {
		const struct vsn_cfg_path *p = &cfg->paths[i];

		if (v->path_by_id[p->id])
			return fail(v->c, "paths", i, p->line, "id", -1,
				    "id %u is already used by paths[%u]", p->id,
				    v->path_by_id[p->id] - 1);
		v->path_by_id[p->id] = i + 1;
		for (j = 0; j < cfg->n_uplinks; j++)
			if (!strcmp(cfg->uplinks[j].interface, p->uplink))
				break;
		if (j == cfg->n_uplinks)
			return fail(v->c, "paths", i, p->line, "uplink", -1, "unknown uplink '%s'",
				    p->uplink);
	}
	return 0;
}

static int validate_backends(struct vctx *v)
{
	const struct vsn_config *cfg = v->cfg;
	unsigned i, j;

	for (i = 0; i < cfg->n_backends; i++) {
		const struct vsn_cfg_backend *be = &cfg->backends[i];
		struct paddr *ba = &v->be_addr[i];

		if (v->be_by_id[be->id])
			return fail(v->c, "backends", i, be->line, "id", -1,
				    "id %u is already used by backends[%u]", be->id,
				    v->be_by_id[be->id] - 1);
		v->be_by_id[be->id] = i + 1;
		if (parse_addr(be->address, &ba->a, &ba->v6))
			return -EINVAL; /* check_backend() vouched for it */
		for (j = 0; be->name && j < i; j++)
			if (cfg->backends[j].name && !strcmp(cfg->backends[j].name, be->name))
				return fail(v->c, "backends", i, be->line, "name", -1,
					    "name '%s' is already used by backends[%u]", be->name,
					    j);
		for (j = 0; j < be->n_paths; j++) {
			uint32_t pid = be->paths[j];
			const struct vsn_cfg_path *p;
			struct paddr sa;

			if (!v->path_by_id[pid])
				return fail(v->c, "backends", i, be->line, "paths", j,
					    "unknown path %u", pid);
			if (BIT_TEST(v->be_has_path[be->id], pid))
				return fail(v->c, "backends", i, be->line, "paths", j,
					    "path %u is listed twice", pid);
			BIT_SET(v->be_has_path[be->id], pid);
			p = &cfg->paths[v->path_by_id[pid] - 1];
			/* SNAT must produce an address the backend can answer. */
			if (p->source_address && !parse_addr(p->source_address, &sa.a, &sa.v6) &&
			    sa.v6 != ba->v6)
				return fail(
				    v->c, "backends", i, be->line, "paths", j,
				    "path %u's source_address %s is %s but the backend is %s", pid,
				    p->source_address, family(sa.v6), family(ba->v6));
		}
	}
	return 0;
}

static int validate_volume_backends(const struct vctx *v, unsigned i)
{
	const struct vsn_cfg_volume *vol = &v->cfg->volumes[i];
	const struct paddr *va = &v->vol_addr[i];
	const struct vsn_cfg_backend *be;
	const struct paddr *ba;
	unsigned j;

	for (j = 0; j < vol->n_backends; j++) {
		uint32_t bid = vol->backends[j];

		if (!v->be_by_id[bid])
			return fail(v->c, "volumes", i, vol->line, "backends", j,
				    "unknown backend %u", bid);
		ba = &v->be_addr[v->be_by_id[bid] - 1];
		if (ba->v6 != va->v6)
			return fail(v->c, "volumes", i, vol->line, "backends", j,
				    "backend %u is %s but the volume address %s is %s", bid,
				    family(ba->v6), vol->address, family(va->v6));
	}
	if (vol->proto != VSN_PROTO_ROCEV2)
		return 0;
	/* RoCE cannot be NATed: the ICRC covers addresses and ports. */
	if (vol->n_backends != 1)
		return fail(
		    v->c, "volumes", i, vol->line, "backends", -1,
		    "a roce volume needs exactly one backend (RoCE cannot be NATed or balanced)");
	be = &v->cfg->backends[v->be_by_id[vol->backends[0]] - 1];
	ba = &v->be_addr[v->be_by_id[vol->backends[0]] - 1];
	if (memcmp(&ba->a, &va->a, sizeof(va->a)))
		return fail(
		    v->c, "volumes", i, vol->line, "address", -1,
		    "roce volume address %s differs from backend %u's %s (RoCE cannot be NATed)",
		    vol->address, be->id, be->address);
	if (be->port != vol->port)
		return fail(
		    v->c, "volumes", i, vol->line, "port", -1,
		    "roce volume port %u differs from backend %u's %u (RoCE cannot be NATed)",
		    vol->port, be->id, be->port);
	return 0;
}

static int validate_volumes(struct vctx *v)
{
	const struct vsn_config *cfg = v->cfg;
	unsigned i, j;

	for (i = 0; i < cfg->n_volumes; i++) {
		const struct vsn_cfg_volume *vol = &cfg->volumes[i];
		struct paddr *va = &v->vol_addr[i];
		int ret;

		if (v->vol_by_id[vol->id])
			return fail(v->c, "volumes", i, vol->line, "id", -1,
				    "id %u is already used by volumes[%u]", vol->id,
				    v->vol_by_id[vol->id] - 1);
		v->vol_by_id[vol->id] = i + 1;
		if (strcmp(vol->vm, HOST_VM) && !config_find_vm(cfg, vol->vm))
			return fail(v->c, "volumes", i, vol->line, "vm", -1, "unknown vm '%s'",
				    vol->vm);
		if (parse_addr(vol->address, &va->a, &va->v6))
			return -EINVAL; /* check_volume() vouched for it */
		for (j = 0; j < vol->n_backends; j++) {
			if (BIT_TEST(v->vol_has_be[vol->id], vol->backends[j]))
				return fail(v->c, "volumes", i, vol->line, "backends", j,
					    "backend %u is listed twice", vol->backends[j]);
			BIT_SET(v->vol_has_be[vol->id], vol->backends[j]);
		}
		ret = validate_volume_backends(v, i);
		if (ret)
			return ret;
		for (j = 0; j < i; j++) {
			const struct vsn_cfg_volume *o = &cfg->volumes[j];

			if (!strcmp(o->vm, vol->vm) && o->port == vol->port &&
			    o->proto == vol->proto &&
			    !memcmp(&v->vol_addr[j].a, &va->a, sizeof(va->a)))
				return fail(
				    v->c, "volumes", i, vol->line, "address", -1,
				    "duplicate volume address %s%s%s:%u for %s (also volumes[%u])",
				    va->v6 ? "[" : "", vol->address, va->v6 ? "]" : "", vol->port,
				    vol->vm, j);
		}
	}
	return 0;
}

static int validate_routes(struct vctx *v)
{
	const struct vsn_config *cfg = v->cfg;
	unsigned i;

	for (i = 0; i < cfg->n_routes; i++) {
		const struct vsn_cfg_route *rt = &cfg->routes[i];
		const struct vsn_cfg_volume *vol;

		if (!v->vol_by_id[rt->volume])
			return fail(v->c, "routes", i, rt->line, "volume", -1, "unknown volume %u",
				    rt->volume);
		vol = &cfg->volumes[v->vol_by_id[rt->volume] - 1];
		if (strcmp(rt->vm, vol->vm)) {
			if (strcmp(rt->vm, HOST_VM) && !config_find_vm(cfg, rt->vm))
				return fail(v->c, "routes", i, rt->line, "vm", -1,
					    "unknown vm '%s'", rt->vm);
			return fail(v->c, "routes", i, rt->line, "vm", -1,
				    "volume %u belongs to '%s', not '%s'", rt->volume, vol->vm,
				    rt->vm);
		}
		if (!v->be_by_id[rt->backend])
			return fail(v->c, "routes", i, rt->line, "backend", -1,
				    "unknown backend %u", rt->backend);
		if (!BIT_TEST(v->vol_has_be[rt->volume], rt->backend))
			return fail(v->c, "routes", i, rt->line, "backend", -1,
				    "backend %u is not one of volume %u's backends", rt->backend,
				    rt->volume);
		if (!v->path_by_id[rt->path])
			return fail(v->c, "routes", i, rt->line, "path", -1, "unknown path %u",
				    rt->path);
		if (!BIT_TEST(v->be_has_path[rt->backend], rt->path))
			return fail(v->c, "routes", i, rt->line, "path", -1,
				    "path %u is not one of backend %u's paths", rt->path,
				    rt->backend);
		/* The route key is (vm, volume, backend); vm follows volume. */
		if (BIT_TEST(v->route_seen[rt->volume], rt->backend))
			return fail(v->c, "routes", i, rt->line, "backend", -1,
				    "duplicate route for %s volume %u backend %u", rt->vm,
				    rt->volume, rt->backend);
		BIT_SET(v->route_seen[rt->volume], rt->backend);
	}
	return 0;
}

int config_validate(const struct vsn_config *cfg, struct vsn_err *err)
{
	struct vsn_err scratch = {.msg = ""};
	struct ectx c = {
	    .file = cfg && cfg->file ? cfg->file : "(config)",
	    .err = err ? err : &scratch,
	    .map = NULL,
	};
	struct vctx *v = NULL;
	int ret;

	c.err->msg[0] = '\0';
	if (!cfg)
		return fail(&c, NULL, -1, 0, NULL, -1, "no config");
	ret = check_items(&c, cfg);
	if (ret)
		goto out;
	v = calloc(1, sizeof(*v));
	if (!v) {
		ret = fail_oom(&c);
		goto out;
	}
	v->c = &c;
	v->cfg = cfg;
	v->be_addr = calloc(cfg->n_backends + 1, sizeof(*v->be_addr));
	v->vol_addr = calloc(cfg->n_volumes + 1, sizeof(*v->vol_addr));
	if (!v->be_addr || !v->vol_addr) {
		ret = fail_oom(&c);
		goto out;
	}
	ret = validate_vms(v);
	if (!ret)
		ret = validate_uplinks(v);
	if (!ret)
		ret = validate_paths(v);
	if (!ret)
		ret = validate_backends(v);
	if (!ret)
		ret = validate_volumes(v);
	if (!ret)
		ret = validate_routes(v);
out:
	if (v) {
		free(v->be_addr);
		free(v->vol_addr);
	}
	free(v);
	return ret ? -EINVAL : 0;
}
