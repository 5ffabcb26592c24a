// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/* Prometheus text exposition writer: see prom.h. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/prom.h"

static const char *const hist_suffix[] = {"_bucket", "_sum", "_count"};
#define NSUFFIX (sizeof(hist_suffix) / sizeof(hist_suffix[0]))

static int fail(struct prom_buf *b, int err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int fail(struct prom_buf *b, int err, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(b->err, sizeof(b->err), fmt, ap);
	va_end(ap);
	return err;
}

void prom_init(struct prom_buf *b)
{
	memset(b, 0, sizeof(*b));
	b->cur = -1;
}

void prom_reset(struct prom_buf *b)
{
	for (unsigned i = 0; i < b->nfam; i++)
		free(b->names[i]);
	b->nfam = 0;
	b->len = 0;
	b->cur = -1;
	if (b->data)
		b->data[0] = '\0';
}

void prom_free(struct prom_buf *b)
{
	prom_reset(b);
	free(b->data);
	free(b->names);
	free(b->types);
	prom_init(b);
}

const char *prom_error(const struct prom_buf *b)
{
	return b->err[0] ? b->err : "no error";
}

static int reserve(struct prom_buf *b, size_t more)
{
	size_t cap = b->cap ? b->cap : 4096;
	char *p;

	if (b->len + more + 1 <= b->cap)
		return 0;
	while (cap < b->len + more + 1)
		cap *= 2;
	p = realloc(b->data, cap);
	if (!p)
		return -ENOMEM;
	b->data = p;
	b->cap = cap;
	return 0;
}

static int put(struct prom_buf *b, const char *s, size_t n)
{
	if (reserve(b, n))
		return -ENOMEM;
	memcpy(b->data + b->len, s, n);
	b->len += n;
	b->data[b->len] = '\0';
	return 0;
}

static int puts_(struct prom_buf *b, const char *s)
{
	return put(b, s, strlen(s));
}

/* HELP escapes backslash and newline; label values also the double quote. */
static int put_escaped(struct prom_buf *b, const char *s, bool quote)
{
	int err = 0;

	for (; *s && !err; s++) {
		if (*s == '\\')
			err = put(b, "\\\\", 2);
		else if (*s == '\n')
			err = put(b, "\\n", 2);
		else if (*s == '"' && quote)
			err = put(b, "\\\"", 2);
		else
			err = put(b, s, 1);
	}
	return err;
}

/* Shortest text that reads back as the same double; Go's parser takes it. */
static void fmt_double(char *out, size_t len, double v)
{
	if (isnan(v)) {
		snprintf(out, len, "NaN");
		return;
	}
	if (isinf(v)) {
		snprintf(out, len, v > 0 ? "+Inf" : "-Inf");
		return;
	}
	for (int prec = 1; prec <= 17; prec++) {
		snprintf(out, len, "%.*g", prec, v);
		if (strtod(out, NULL) == v)
			return;
	}
}

static bool valid_metric_name(const char *s)
{
	if (!s || !*s)
		return false;
	for (const char *p = s; *p; p++) {
		char c = *p;
		bool alpha =
		    (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':';

		if (!alpha && !(p > s && c >= '0' && c <= '9'))
			return false;
	}
	return true;
}

/* Label names: no colon, and "__" prefixes are Prometheus' own. */
static bool valid_label_name(const char *s)
{
	if (!valid_metric_name(s) || strchr(s, ':'))
		return false;
	return strncmp(s, "__", 2) != 0;
}

static bool ends_with(const char *s, const char *suffix)
{
	size_t a = strlen(s), b = strlen(suffix);

	return a >= b && !strcmp(s + a - b, suffix);
}

/* Does family NAME of TYPE write series SERIES? */
static bool writes_series(const char *name, enum prom_type type, const char *series)
{
	size_t n = strlen(name);

	if (!strcmp(name, series))
		return true;
	if (type != PROM_HISTOGRAM || strncmp(name, series, n))
		return false;
	for (unsigned i = 0; i < NSUFFIX; i++)
		if (!strcmp(series + n, hist_suffix[i]))
			return true;
	return false;
}

/* Would a new family clash with one already written? */
static const char *clash(const struct prom_buf *b, const char *name, enum prom_type type)
{
	char series[NSUFFIX + 1][256];
	unsigned ns = 1;

	snprintf(series[0], sizeof(series[0]), "%s", name);
	if (type == PROM_HISTOGRAM)
		for (unsigned i = 0; i < NSUFFIX; i++)
			snprintf(series[ns++], sizeof(series[0]), "%s%s", name, hist_suffix[i]);
	for (unsigned f = 0; f < b->nfam; f++) {
		for (unsigned i = 0; i < ns; i++)
			if (writes_series(b->names[f], b->types[f], series[i]))
				return b->names[f];
		/* The other way round: an older histogram's series is our name. */
		if (writes_series(name, type, b->names[f]))
			return b->names[f];
	}
	return NULL;
}

static int remember(struct prom_buf *b, const char *name, enum prom_type type)
{
	char *copy;

	if (b->nfam == b->capfam) {
		unsigned cap = b->capfam ? b->capfam * 2 : 32;
		char **names = realloc(b->names, cap * sizeof(*names));
		enum prom_type *types;

		if (!names)
			return -ENOMEM;
		b->names = names;
		types = realloc(b->types, cap * sizeof(*types));
		if (!types)
			return -ENOMEM;
		b->types = types;
		b->capfam = cap;
	}
	copy = strdup(name);
	if (!copy)
		return -ENOMEM;
	b->names[b->nfam] = copy;
	b->types[b->nfam] = type;
	b->cur = (int)b->nfam++;
	return 0;
}

int prom_family(struct prom_buf *b, const char *name, enum prom_type type, const char *help)
{
	static const char *const tname[] = {"counter", "gauge", "histogram"};
	size_t start = b->len;
	const char *other;
	int err;

	if (!valid_metric_name(name))
		return fail(b, -EINVAL, "metric name '%s' is not [a-zA-Z_:][a-zA-Z0-9_:]*",
			    name ? name : "(null)");
	if (strlen(name) > 200)
		return fail(b, -EINVAL, "metric name '%.40s...' is too long", name);
	if ((unsigned)type > PROM_HISTOGRAM)
		return fail(b, -EINVAL, "metric %s: unknown type %d", name, (int)type);
	if (type == PROM_COUNTER && !ends_with(name, "_total"))
		return fail(b, -EINVAL, "counter '%s' must end in _total", name);
	if (!help || !*help)
		return fail(b, -EINVAL, "metric %s needs a help text", name);
	other = clash(b, name, type);
	if (other)
		return fail(b, -EEXIST,
			    "metric family '%s' clashes with family '%s' written before", name,
			    other);

	err = puts_(b, "# HELP ");
	err = err ?: puts_(b, name);
	err = err ?: put(b, " ", 1);
	err = err ?: put_escaped(b, help, false);
	err = err ?: puts_(b, "\n# TYPE ");
	err = err ?: puts_(b, name);
	err = err ?: put(b, " ", 1);
	err = err ?: puts_(b, tname[type]);
	err = err ?: put(b, "\n", 1);
	err = err ?: remember(b, name, type);
	if (err) {
		b->len = start;
		return fail(b, err, "metric %s: out of memory", name);
	}
	return 0;
}

static int check_labels(struct prom_buf *b, const struct prom_label *l, unsigned nl, bool hist)
{
	const char *fam = b->names[b->cur];

	for (unsigned i = 0; i < nl; i++) {
		if (!l[i].key || !valid_label_name(l[i].key))
			return fail(b, -EINVAL,
				    "metric %s: label name '%s' is not [a-zA-Z_][a-zA-Z0-9_]*"
				    " (and may not start with __)",
				    fam, l[i].key ? l[i].key : "(null)");
		if (!l[i].value)
			return fail(b, -EINVAL, "metric %s: label %s has no value", fam, l[i].key);
		if (hist && !strcmp(l[i].key, "le"))
			return fail(b, -EINVAL, "metric %s: label 'le' is the histogram's own",
				    fam);
		for (unsigned k = 0; k < i; k++)
			if (!strcmp(l[k].key, l[i].key))
				return fail(b, -EINVAL, "metric %s: label %s given twice", fam,
					    l[i].key);
	}
	return 0;
}

/* NAME{k="v",...,le="x"} VALUE\n; le may be NULL. */
static int put_line(struct prom_buf *b, const char *suffix, const struct prom_label *l, unsigned nl,
		    const char *le, const char *value)
{
	int err;

	err = puts_(b, b->names[b->cur]);
	err = err ?: puts_(b, suffix);
	if (nl || le)
		err = err ?: put(b, "{", 1);
	for (unsigned i = 0; i < nl && !err; i++) {
		err = i ? put(b, ",", 1) : 0;
		err = err ?: puts_(b, l[i].key);
		err = err ?: put(b, "=\"", 2);
		err = err ?: put_escaped(b, l[i].value, true);
		err = err ?: put(b, "\"", 1);
	}
	if (le) {
		err = err ?: (nl ? put(b, ",", 1) : 0);
		err = err ?: puts_(b, "le=\"");
		err = err ?: puts_(b, le);
		err = err ?: put(b, "\"", 1);
	}
	if (nl || le)
		err = err ?: put(b, "}", 1);
	err = err ?: put(b, " ", 1);
	err = err ?: puts_(b, value);
	err = err ?: put(b, "\n", 1);
	return err;
}

static int open_family(struct prom_buf *b, bool hist)
{
	if (b->cur < 0)
		return fail(b, -EINVAL, "sample before any metric family: call prom_family first");
	if ((b->types[b->cur] == PROM_HISTOGRAM) != hist)
		return fail(b, -EINVAL, "metric %s: %s", b->names[b->cur],
			    hist ? "not a histogram: use prom_sample"
				 : "a histogram: use prom_histogram");
	return 0;
}

static int sample_text(struct prom_buf *b, const struct prom_label *l, unsigned nl,
		       const char *value)
{
	size_t start = b->len;
	int err;

	err = open_family(b, false);
	err = err ?: check_labels(b, l, nl, false);
	if (err)
		return err;
	err = put_line(b, "", l, nl, NULL, value);
	if (err) {
		b->len = start;
		return fail(b, err, "metric %s: out of memory", b->names[b->cur]);
	}
	return 0;
}

int prom_sample(struct prom_buf *b, const struct prom_label *l, unsigned nl, double value)
{
	char v[40];

	if (b->cur >= 0 && b->types[b->cur] == PROM_COUNTER && !(value >= 0))
		return fail(b, -EINVAL, "counter %s: value %g is not >= 0", b->names[b->cur],
			    value);
	fmt_double(v, sizeof(v), value);
	return sample_text(b, l, nl, v);
}

int prom_sample_u64(struct prom_buf *b, const struct prom_label *l, unsigned nl, uint64_t value)
{
	char v[24];

	/* Exact: a double would round counters above 2^53. */
	snprintf(v, sizeof(v), "%llu", (unsigned long long)value);
	return sample_text(b, l, nl, v);
}

static int check_buckets(struct prom_buf *b, const double *le, const uint64_t *cum, unsigned n,
			 uint64_t count)
{
	const char *fam = b->names[b->cur];

	for (unsigned i = 0; i < n; i++) {
		if (!isfinite(le[i]))
			return fail(b, -EINVAL,
				    "histogram %s: bound %u is not finite (+Inf is added)", fam, i);
		if (i && !(le[i] > le[i - 1]))
			return fail(b, -EINVAL, "histogram %s: bounds must increase (%g after %g)",
				    fam, le[i], le[i - 1]);
		if (i && cum[i] < cum[i - 1])
			return fail(
			    b, -EINVAL, "histogram %s: counts must be cumulative (%llu after %llu)",
			    fam, (unsigned long long)cum[i], (unsigned long long)cum[i - 1]);
	}
	if (n && count < cum[n - 1])
		return fail(b, -EINVAL, "histogram %s: count %llu is below the last bucket's %llu",
			    fam, (unsigned long long)count, (unsigned long long)cum[n - 1]);
	return 0;
}

int prom_histogram(struct prom_buf *b, const struct prom_label *l, unsigned nl, const double *le,
		   const uint64_t *cum, unsigned n, double sum, uint64_t count)
{
	size_t start = b->len;
	char v[40], bound[40];
	int err;

	err = open_family(b, true);
	err = err ?: check_labels(b, l, nl, true);
	err = err ?: check_buckets(b, le, cum, n, count);
	if (err)
		return err;
	for (unsigned i = 0; i < n && !err; i++) {
		fmt_double(bound, sizeof(bound), le[i]);
		snprintf(v, sizeof(v), "%llu", (unsigned long long)cum[i]);
		err = put_line(b, "_bucket", l, nl, bound, v);
	}
	snprintf(v, sizeof(v), "%llu", (unsigned long long)count);
	err = err ?: put_line(b, "_bucket", l, nl, "+Inf", v);
	fmt_double(v, sizeof(v), sum);
	err = err ?: put_line(b, "_sum", l, nl, NULL, v);
	snprintf(v, sizeof(v), "%llu", (unsigned long long)count);
	err = err ?: put_line(b, "_count", l, nl, NULL, v);
	if (err) {
		b->len = start;
		return fail(b, err, "histogram %s: out of memory", b->names[b->cur]);
	}
	return 0;
}

static int write_all(int fd, const char *p, size_t n)
{
	while (n) {
		ssize_t w = write(fd, p, n);

		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return -errno;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

int prom_write_atomic(const char *dir, const char *name, struct prom_buf *b)
{
	char tmp[PATH_MAX], dst[PATH_MAX];
	bool created = false;
	struct stat st;
	int fd = -1, dfd, err = 0;

	if (!name || strchr(name, '/') || name[0] == '.' || strlen(name) <= 5 ||
	    !ends_with(name, ".prom"))
		return fail(b, -EINVAL,
			    "metrics file name '%s' must be a plain name ending in .prom "
			    "(node_exporter's textfile collector reads only *.prom)",
			    name ? name : "(null)");
	if (stat(dir, &st)) {
		err = -errno;
		if (err == -ENOENT)
			return fail(
			    b, err,
			    "metrics directory %s does not exist: create it, or give the "
			    "directory node_exporter's --collector.textfile.directory reads",
			    dir);
		return fail(b, err, "metrics directory %s: %s", dir, strerror(-err));
	}
	if (!S_ISDIR(st.st_mode))
		return fail(b, -ENOTDIR, "metrics directory %s is not a directory", dir);
	if ((unsigned)snprintf(tmp, sizeof(tmp), "%s/.%s.tmp.%d", dir, name, (int)getpid()) >=
		sizeof(tmp) ||
	    (unsigned)snprintf(dst, sizeof(dst), "%s/%s", dir, name) >= sizeof(dst))
		return fail(b, -ENAMETOOLONG, "metrics path %s/%s is too long", dir, name);

	/* Not O_EXCL: a daemon restarted with the same PID (PID 1 in a
	 * container) must overwrite its own stale temporary file. */
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0644);
	if (fd < 0) {
		err = -errno;
		fail(b, err, "cannot create %s: %s (is %s writable?)", tmp, strerror(-err), dir);
		goto out;
	}
	created = true;
	err = write_all(fd, b->data ? b->data : "", b->len);
	if (err) {
		fail(b, err, "cannot write %s: %s", tmp, strerror(-err));
		goto out;
	}
	if (fsync(fd)) {
		err = -errno;
		fail(b, err, "cannot sync %s: %s", tmp, strerror(-err));
		goto out;
	}
	err = close(fd) ? -errno : 0;
	fd = -1;
	if (err) {
		fail(b, err, "cannot close %s: %s", tmp, strerror(-err));
		goto out;
	}
	if (rename(tmp, dst)) {
		err = -errno;
		fail(b, err, "cannot rename %s to %s: %s", tmp, dst, strerror(-err));
		goto out;
	}
	created = false;
	/* Make the rename itself durable; the file is complete either way,
	 * so a directory that cannot be synced is not an error. */
	dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd >= 0) {
		fsync(dfd);
		close(dfd);
	}
out:
	if (fd >= 0)
		close(fd);
	if (created)
		unlink(tmp);
	return err;
}
