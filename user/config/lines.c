// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * The line map: a libyaml event pass over the file that remembers the line
 * of every section, item, key and list entry, because libcyaml and our own
 * checks only know where a value belongs, not where it stands.  The pass
 * is also the syntax check: libyaml's problem_mark gives the line.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <yaml.h>

#include "config/internal.h"

/*
 * The map follows the file: the root holds one key per section, a key
 * whose value is a sequence one item per entry, and an item of a section
 * one key per field.  Deeper nodes get no entry of their own.
 */
struct key_lines;

struct item_lines {
	unsigned line;
	struct key_lines *keys;
	unsigned n_keys;
};

struct key_lines {
	char *key;
	unsigned line;
	struct item_lines *items; /* the entries of a sequence value */
	unsigned n_items;
	bool single; /* a section that is one mapping (controller): items[0] */
};

struct vsn_line_map {
	struct item_lines root; /* its keys are the sections */
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

static void item_lines_free(struct item_lines *it)
{
	unsigned k, i;

	for (k = 0; k < it->n_keys; k++) {
		struct key_lines *kl = &it->keys[k];

		for (i = 0; i < kl->n_items; i++)
			item_lines_free(&kl->items[i]);
		free(kl->items);
		free(kl->key);
	}
	free(it->keys);
}

void cfg_lines_free(struct vsn_line_map *map)
{
	if (!map)
		return;
	item_lines_free(&map->root);
	free(map);
}

static const struct key_lines *find_key(const struct item_lines *it, const char *key)
{
	unsigned k;

	for (k = 0; k < it->n_keys; k++)
		if (!strcmp(it->keys[k].key, key))
			return &it->keys[k];
	return NULL;
}

unsigned cfg_line(const struct vsn_line_map *map, const char *sec, long idx, const char *key,
		  long sub)
{
	const struct key_lines *s, *k;
	const struct item_lines *it;

	if (!map)
		return 0;
	if (!sec) {
		s = key ? find_key(&map->root, key) : NULL;
		return s ? s->line : 0;
	}
	s = find_key(&map->root, sec);
	if (!s)
		return 0;
	if (s->single && s->n_items)
		idx = 0;
	if (idx < 0 || (unsigned long)idx >= s->n_items)
		return s->line;
	it = &s->items[idx];
	k = key ? find_key(it, key) : NULL;
	if (!k)
		return it->line;
	if (sub >= 0 && (unsigned long)sub < k->n_items)
		return k->items[sub].line;
	return k->line;
}

unsigned cfg_lines_count(const struct vsn_line_map *map, const char *sec)
{
	const struct key_lines *s = map ? find_key(&map->root, sec) : NULL;

	return s ? s->n_items : 0;
}

/* ------------------------------------------------------------------ */
/* The libyaml pass                                                    */

struct ypass {
	yaml_parser_t parser;
	const struct ectx *c; /* its map is NULL: lines are given directly */
	const char *buf;      /* the file, for the line of a reader error */
	size_t len;
	unsigned depth; /* sequences and mappings open */
	bool empty;
};

static unsigned ev_line(const yaml_event_t *ev)
{
	return (unsigned)ev->start_mark.line + 1;
}

/* The line of byte offset off: a reader error (a NUL, invalid UTF-8) has
 * only the offset, its mark stays at the start. */
static unsigned offset_line(const struct ypass *y, size_t off)
{
	unsigned line = 1;
	size_t i;

	for (i = 0; i < off && i < y->len; i++)
		line += y->buf[i] == '\n';
	return line;
}

static int y_next(struct ypass *y, yaml_event_t *ev)
{
	const yaml_parser_t *p = &y->parser;

	if (yaml_parser_parse(&y->parser, ev)) {
		if (ev->type == YAML_SEQUENCE_START_EVENT || ev->type == YAML_MAPPING_START_EVENT) {
			if (++y->depth > CFG_MAX_DEPTH) {
				unsigned line = ev_line(ev);

				yaml_event_delete(ev);
				return cfg_fail(y->c, NULL, -1, line, NULL, -1,
						"nested deeper than %u levels (a vsn config has "
						"4: sections, items, their lists)",
						CFG_MAX_DEPTH);
			}
		} else if (ev->type == YAML_SEQUENCE_END_EVENT ||
			   ev->type == YAML_MAPPING_END_EVENT) {
			y->depth--;
		}
		return 0;
	}
	if (p->error == YAML_MEMORY_ERROR)
		return cfg_fail_oom(y->c);
	if (p->error == YAML_READER_ERROR)
		return cfg_fail(y->c, NULL, -1, offset_line(y, p->problem_offset), NULL, -1,
				"syntax error: %s (byte %zu)",
				p->problem ? p->problem : "unreadable", p->problem_offset);
	if (p->context)
		return cfg_fail(y->c, NULL, -1, (unsigned)p->problem_mark.line + 1, NULL, -1,
				"syntax error: %s (%s at line %u)",
				p->problem ? p->problem : "invalid YAML", p->context,
				(unsigned)p->context_mark.line + 1);
	return cfg_fail(y->c, NULL, -1, (unsigned)p->problem_mark.line + 1, NULL, -1,
			"syntax error: %s", p->problem ? p->problem : "invalid YAML");
}

/*
 * The next event inside a sequence or mapping: 1 with ev to handle, 0 once
 * the end event is consumed, or an error.
 */
static int y_next_in(struct ypass *y, yaml_event_t *ev, yaml_event_type_t end)
{
	int ret = y_next(y, ev);

	if (ret)
		return ret;
	if (ev->type != end)
		return 1;
	yaml_event_delete(ev);
	return 0;
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

static int y_mapping(struct ypass *y, struct item_lines *it, const char *sec, long idx);

/*
 * The entries of key k's sequence.  Only a section's entries (items) are
 * mappings we look into; a field's (paths: [1, 2]) just get their lines.
 */
static int y_sequence(struct ypass *y, struct key_lines *k, bool items)
{
	struct item_lines *it;
	yaml_event_t ev;
	int ret;

	while ((ret = y_next_in(y, &ev, YAML_SEQUENCE_END_EVENT)) > 0) {
		it = grow(k->items, k->n_items, sizeof(*k->items));
		if (!it) {
			ret = cfg_fail_oom(y->c);
		} else {
			k->items = it;
			it = &k->items[k->n_items++];
			memset(it, 0, sizeof(*it));
			it->line = ev_line(&ev);
			if (items && ev.type == YAML_MAPPING_START_EVENT)
				ret = y_mapping(y, it, k->key, (long)k->n_items - 1);
			else
				ret = y_skip(y, &ev);
		}
		yaml_event_delete(&ev);
		if (ret)
			break;
	}
	return ret;
}

/* One "key: value" of item sec[idx], or of the top level (NULL, -1). */
static int y_key(struct ypass *y, struct item_lines *it, const char *sec, long idx,
		 const yaml_event_t *key)
{
	struct key_lines *k;
	const char *name;
	yaml_event_t val;
	int ret;

	if (key->type != YAML_SCALAR_EVENT)
		return cfg_fail(y->c, sec, idx, ev_line(key), NULL, -1,
				"mapping keys must be plain names");
	name = (const char *)key->data.scalar.value;
	if (find_key(it, name)) {
		if (!cfg_key_shown(name)) /* not a name: not echoed (not YAML of ours) */
			return cfg_fail(y->c, sec, idx, ev_line(key), NULL, -1,
					"a key that is not a name, twice (is this a vsn config?)");
		return cfg_fail(y->c, sec, idx, ev_line(key), name, -1, "duplicate key");
	}
	k = grow(it->keys, it->n_keys, sizeof(*it->keys));
	if (!k)
		return cfg_fail_oom(y->c);
	it->keys = k;
	k = &it->keys[it->n_keys];
	memset(k, 0, sizeof(*k));
	k->key = strdup(name);
	if (!k->key)
		return cfg_fail_oom(y->c);
	k->line = ev_line(key);
	it->n_keys++;

	ret = y_next(y, &val);
	if (ret)
		return ret;
	if (val.type == YAML_SEQUENCE_START_EVENT) {
		ret = y_sequence(y, k, !sec);
	} else if (val.type == YAML_MAPPING_START_EVENT && !sec) {
		/* A section that is one mapping: its keys get lines too. */
		k->items = calloc(1, sizeof(*k->items));
		if (!k->items)
			ret = cfg_fail_oom(y->c);
		else {
			k->n_items = 1;
			k->single = true;
			k->items[0].line = ev_line(&val);
			ret = y_mapping(y, &k->items[0], k->key, -1);
		}
	} else {
		ret = y_skip(y, &val);
	}
	yaml_event_delete(&val);
	return ret;
}

static int y_mapping(struct ypass *y, struct item_lines *it, const char *sec, long idx)
{
	yaml_event_t key;
	int ret;

	while ((ret = y_next_in(y, &key, YAML_MAPPING_END_EVENT)) > 0) {
		ret = y_key(y, it, sec, idx, &key);
		yaml_event_delete(&key);
		if (ret)
			break;
	}
	return ret;
}

static bool is_null_scalar(const yaml_event_t *ev)
{
	const char *v;

	if (ev->type != YAML_SCALAR_EVENT || ev->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
		return false;
	v = (const char *)ev->data.scalar.value;
	return !*v || !strcmp(v, "~") || !strcasecmp(v, "null");
}

/* The whole stream: exactly one document whose root is a mapping (or empty). */
static int y_document(struct ypass *y, struct item_lines *root)
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
		y->empty = true;
		goto out;
	}
	yaml_event_delete(&ev);
	ret = y_next(y, &ev); /* the root node */
	if (ret)
		goto out;
	if (ev.type == YAML_MAPPING_START_EVENT) {
		ret = y_mapping(y, root, NULL, -1);
	} else if (is_null_scalar(&ev)) {
		y->empty = true;
	} else {
		ret = cfg_fail(y->c, NULL, -1, ev_line(&ev), NULL, -1,
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
		ret = cfg_fail(y->c, NULL, -1, ev_line(&ev), NULL, -1,
			       "only one YAML document is allowed");
out:
	yaml_event_delete(&ev);
	return ret;
}

int cfg_lines_build(const struct ectx *c, const char *buf, size_t len, struct vsn_line_map **map,
		    bool *empty)
{
	struct ypass y = {.c = c, .buf = buf, .len = len, .depth = 0, .empty = false};
	struct vsn_line_map *m;
	int ret;

	*map = NULL;
	m = calloc(1, sizeof(*m));
	if (!m)
		return cfg_fail_oom(c);
	if (!yaml_parser_initialize(&y.parser)) {
		ret = cfg_fail_oom(c);
		goto out;
	}
	yaml_parser_set_input_string(&y.parser, (const unsigned char *)buf, len);
	ret = y_document(&y, &m->root);
	yaml_parser_delete(&y.parser);
out:
	if (ret) {
		cfg_lines_free(m);
		return ret;
	}
	*map = m;
	*empty = y.empty;
	return 0;
}
