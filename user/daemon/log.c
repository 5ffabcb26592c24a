// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * The decision log: every change the controller makes, one JSON object per
 * line with its reason, kept in memory for 'vsn daemon status', written to
 * the log file, and counted per reason for the metrics.
 */
#include <stdarg.h>
#include <stdio.h>
#include <time.h>

#include "daemon/daemon.h"

static const char *const why_names[CTL_WHY_MAX] = {
    [CTL_WHY_CARRIER] = "carrier",   [CTL_WHY_SILENT] = "silent",
    [CTL_WHY_NEIGH] = "neighbour",   [CTL_WHY_CONGESTION] = "congestion",
    [CTL_WHY_BACKEND] = "backend",   [CTL_WHY_RECOVERED] = "recovered",
    [CTL_WHY_OPERATOR] = "operator", [CTL_WHY_RELOAD] = "reload",
    [CTL_WHY_CLASS] = "workload",    [CTL_WHY_TENANT] = "tenant",
    [CTL_WHY_CLUSTER] = "cluster",
};

const char *ctl_why_name(enum ctl_why why)
{
	return why < CTL_WHY_MAX ? why_names[why] : "unknown";
}

const char *ctl_esc(char *out, size_t len, const char *s)
{
	size_t o = 0;

	for (; *s && o + 7 < len; s++) {
		unsigned char ch = (unsigned char)*s;

		if (ch == '"' || ch == '\\') {
			out[o++] = '\\';
			out[o++] = (char)ch;
		} else if (ch < 0x20) {
			o += (size_t)snprintf(out + o, len - o, "\\u%04x", ch);
		} else {
			out[o++] = (char)ch;
		}
	}
	out[o] = '\0';
	return out;
}

void ctl_log(struct ctl *c, enum ctl_why why, const char *fmt, ...)
{
	struct ctl_log_entry *e = &c->log[c->n_log % CTL_LOG_KEEP];
	struct timespec ts;
	const char *leader;
	char body[CTL_LOG_BODY];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(body, sizeof(body), fmt, ap);
	va_end(ap);
	/* Cut JSON is no JSON: the line says so instead, and stderr has it. */
	if (n < 0 || (size_t)n >= sizeof(body)) {
		vsn_warn("decision log: a line of %d bytes was too long: %s...", n, body);
		snprintf(body, sizeof(body), "\"event\":\"log-line-too-long\",\"bytes\":%d", n);
	}
	clock_gettime(CLOCK_REALTIME, &ts);
	e->ts_ns = ctl_now_ns();
	leader = ctl_fleet_leader(c);
	snprintf(e->line, sizeof(e->line), "{\"ts\":%lld.%03ld,\"reason\":\"%s\",%s%s%s%s}",
		 (long long)ts.tv_sec, ts.tv_nsec / 1000000, ctl_why_name(why), body,
		 leader ? ",\"leader\":\"" : "", leader ? leader : "", leader ? "\"" : "");
	c->n_log++;
	if (why < CTL_WHY_MAX)
		c->decisions[why]++;
	if (c->logf) {
		fprintf(c->logf, "%s\n", e->line);
		fflush(c->logf);
	}
}
