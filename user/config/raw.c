// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * The libcyaml pass: load the file against a schema in which every scalar
 * is a string (struct raw_config), so that load.c can convert
 * integers, rates and enums strictly and name the field of each error.
 * libcyaml's own errors are re-issued in our format.
 */
#include <stdio.h>
#include <string.h>

#include <cyaml/cyaml.h>

#include "config/internal.h"

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

/* The schema of one kind of item, from its key list (config_int.h). */
#define RAW_FIELD_STR(T, key)  RAW_STR(#key, T, key),
#define RAW_FIELD_LIST(T, key) RAW_LIST(#key, T, key, &raw_str_entry),
#define RAW_SCHEMA(kind, KEYS)                                                                     \
	static const cyaml_schema_field_t raw_##kind##_fields[] = {                                \
	    KEYS(RAW_FIELD_STR, RAW_FIELD_LIST, struct raw_##kind) CYAML_FIELD_END};               \
	static const cyaml_schema_value_t raw_##kind##_schema __attribute__((unused)) = {          \
	    CYAML_VALUE_MAPPING(CYAML_FLAG_DEFAULT, struct raw_##kind, raw_##kind##_fields),       \
	}

RAW_SCHEMA(vm, RAW_VM_KEYS);
RAW_SCHEMA(uplink, RAW_UPLINK_KEYS);
RAW_SCHEMA(backend, RAW_BACKEND_KEYS);
RAW_SCHEMA(path, RAW_PATH_KEYS);
RAW_SCHEMA(volume, RAW_VOLUME_KEYS);
RAW_SCHEMA(route, RAW_ROUTE_KEYS);
RAW_SCHEMA(controller, RAW_CONTROLLER_KEYS);
RAW_SCHEMA(cluster, RAW_CLUSTER_KEYS);

static const cyaml_schema_field_t raw_config_fields[] = {
    RAW_LIST("vms", struct raw_config, vms, &raw_vm_schema),
    RAW_LIST("uplinks", struct raw_config, uplinks, &raw_uplink_schema),
    RAW_LIST("backends", struct raw_config, backends, &raw_backend_schema),
    RAW_LIST("paths", struct raw_config, paths, &raw_path_schema),
    RAW_LIST("volumes", struct raw_config, volumes, &raw_volume_schema),
    RAW_LIST("routes", struct raw_config, routes, &raw_route_schema),
    CYAML_FIELD_MAPPING_PTR("controller", CYAML_FLAG_POINTER_NULL_STR | CYAML_FLAG_OPTIONAL,
			    struct raw_config, controller, raw_controller_fields),
    CYAML_FIELD_MAPPING_PTR("cluster", CYAML_FLAG_POINTER_NULL_STR | CYAML_FLAG_OPTIONAL,
			    struct raw_config, cluster, raw_cluster_fields),
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

	if (!strncmp(log->reason, "Unexpected key: ", strlen("Unexpected key: "))) {
		const char *k = cfg_key_shown(log->reason + strlen("Unexpected key: "));

		/* A line of a file that is no config (/etc/shadow) is not echoed. */
		if (!k)
			return cfg_fail(c, sec, idx, line, NULL, -1,
					"unknown key, not a name (not shown): is this a vsn "
					"config? (see docs/config.md)");
		return cfg_fail(c, sec, idx, line, k, -1, "unknown key");
	}
	if (sscanf(log->reason, "Expecting %31[A-Z_], got event: %31[A-Z_]", want, got) == 2) {
		const char *w = cy_kind_name(want);
		const char *g = cy_kind_name(got);

		if (w && g)
			return cfg_fail(c, sec, idx, line, key, sub, "expected %s, got %s", w, g);
	}
	if (!strncmp(log->reason,
		     "Mapping field already seen: ", strlen("Mapping field already seen: ")))
		return cfg_fail(c, sec, idx, line, key, sub, "duplicate key");
	if (log->reason[0])
		return cfg_fail(c, sec, idx, line, key, sub, "%s", log->reason);
	return cfg_fail(c, sec, idx, line, key, sub, "%s", cyaml_strerror(rc));
}

int cfg_raw_load(const struct ectx *c, const char *buf, size_t len, struct raw_config **raw)
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
		return cfg_fail_oom(c);
	return cy_error(c, &log, rc);
}

void cfg_raw_free(struct raw_config *raw)
{
	const cyaml_config_t cy = {
	    .mem_fn = cyaml_mem,
	    .log_level = CYAML_LOG_ERROR,
	};

	if (raw)
		cyaml_free(&cy, &raw_config_schema, raw, 0);
}
