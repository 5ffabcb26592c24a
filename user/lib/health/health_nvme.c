// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/* NVMe health sources (see health_nvme.h): log page decoding, the remote
 * probe over nvmf_admin, local controllers through libnvme, and the
 * background worker. */
#include <endian.h>
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "lib/health/health_nvme.h"

static uint64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void __attribute__((format(printf, 2, 3)))
set_error(struct nvme_health *h, const char *f, ...)
{
	va_list ap;

	va_start(ap, f);
	vsnprintf(h->error, sizeof(h->error), f, ap);
	va_end(ap);
	h->reachable = false;
}

/* ---------------------------------------------------------------- decoding */

const char *health_ana_state_name(uint8_t state)
{
	switch (state) {
	case NVME_ANA_STATE_OPTIMIZED:
		return "optimized";
	case NVME_ANA_STATE_NONOPTIMIZED:
		return "non-optimized";
	case NVME_ANA_STATE_INACCESSIBLE:
		return "inaccessible";
	case NVME_ANA_STATE_PERSISTENT_LOSS:
		return "persistent-loss";
	case NVME_ANA_STATE_CHANGE:
		return "change";
	default:
		return "invalid";
	}
}

void health_crit_names(uint8_t cw, char *buf, size_t len)
{
	static const char *const n[] = {"spare",	   "temperature",   "degraded", "read-only",
					"volatile-backup", "pmr-read-only", "bit6",	"bit7"};
	size_t used = 0;

	buf[0] = 0;
	for (unsigned i = 0; i < 8; i++) {
		int r;

		if (!(cw & (1u << i)))
			continue;
		r = snprintf(buf + used, len - used, "%s%s", used ? "," : "", n[i]);
		if (r < 0 || (size_t)r >= len - used)
			break;
		used += (size_t)r;
	}
	if (!used)
		snprintf(buf, len, "none");
}

/* 128-bit little-endian counter, saturated to 64 bits. */
static uint64_t u128(const __u8 *b)
{
	uint64_t lo = 0;

	for (int i = 8; i < 16; i++)
		if (b[i])
			return UINT64_MAX;
	for (int i = 7; i >= 0; i--)
		lo = lo << 8 | b[i];
	return lo;
}

void health_from_smart(struct nvme_health *h, const struct nvme_smart_log *l)
{
	h->critical_warning = l->critical_warning;
	h->temperature_k = (uint16_t)(l->temperature[0] | l->temperature[1] << 8);
	h->avail_spare = l->avail_spare;
	h->spare_thresh = l->spare_thresh;
	h->percent_used = l->percent_used;
	h->media_errors = u128(l->media_errors);
	h->num_err_log_entries = u128(l->num_err_log_entries);
	h->data_units_read = u128(l->data_units_read);
	h->data_units_written = u128(l->data_units_written);
	h->host_reads = u128(l->host_reads);
	h->host_writes = u128(l->host_writes);
	h->power_on_hours = u128(l->power_on_hours);
	h->unsafe_shutdowns = u128(l->unsafe_shutdowns);
}

/* Identify strings are space padded, not terminated. */
static void id_string(char *dst, size_t dlen, const char *src, size_t slen)
{
	size_t n = slen < dlen - 1 ? slen : dlen - 1;

	while (n && (src[n - 1] == ' ' || src[n - 1] == 0))
		n--;
	for (size_t i = 0; i < n; i++)
		dst[i] = src[i] >= 0x20 && src[i] < 0x7f ? src[i] : '?';
	dst[n] = 0;
}

void health_from_id(struct nvme_health *h, const struct nvme_id_ctrl *id)
{
	h->cntlid = le16toh(id->cntlid);
	id_string(h->model, sizeof(h->model), id->mn, sizeof(id->mn));
	id_string(h->serial, sizeof(h->serial), id->sn, sizeof(id->sn));
	id_string(h->firmware, sizeof(h->firmware), id->fr, sizeof(id->fr));
	if (!h->version)
		h->version = le32toh(id->ver);
	if (!h->subnqn[0])
		id_string(h->subnqn, sizeof(h->subnqn), id->subnqn, sizeof(id->subnqn));
	h->ana_supported = id->cmic & NVME_CTRL_CMIC_MULTI_ANA_REPORTING;
}

uint32_t health_ana_log_len(const struct nvme_id_ctrl *id)
{
	uint32_t ngrps = le32toh(id->nanagrpid), nns = le32toh(id->mnan);
	uint64_t len;

	/* Like Linux: one descriptor per group, and room for every namespace
	 * id unless group ids never change (then no namespace lists needed). */
	if (!nns)
		nns = le32toh(id->nn);
	if (!ngrps)
		ngrps = 1;
	len = sizeof(struct nvme_ana_log) + (uint64_t)ngrps * sizeof(struct nvme_ana_group_desc) +
	      (uint64_t)nns * 4;
	if (len > 65536)
		len = 65536;
	return (uint32_t)((len + 3) & ~3ull);
}

int health_parse_ana(struct nvme_health *h, const void *buf, size_t len)
{
	const uint8_t *b = buf;
	struct nvme_ana_log hdr;
	size_t off = sizeof(hdr);
	unsigned ngrps;

	h->n_ana = 0;
	h->ana_groups = 0;
	if (len < sizeof(hdr)) {
		set_error(h, "ANA log: %zu bytes, shorter than its header", len);
		return -1;
	}
	memcpy(&hdr, b, sizeof(hdr));
	h->ana_chgcnt = le64toh(hdr.chgcnt);
	ngrps = le16toh(hdr.ngrps);
	for (unsigned i = 0; i < ngrps; i++) {
		struct nvme_ana_group_desc d;
		uint32_t nn;

		if (len - off < sizeof(d)) {
			set_error(h,
				  "ANA log: group descriptor %u of %u lies beyond the %zu-byte log",
				  i + 1, ngrps, len);
			return -1;
		}
		memcpy(&d, b + off, sizeof(d));
		nn = le32toh(d.nnsids);
		off += sizeof(d);
		if (nn > (len - off) / 4) {
			set_error(h,
				  "ANA log: group %u lists %u namespaces beyond the %zu-byte log",
				  le32toh(d.grpid), nn, len);
			return -1;
		}
		off += (size_t)nn * 4;
		if (h->n_ana < HEALTH_ANA_MAX) {
			h->ana[h->n_ana].grpid = le32toh(d.grpid);
			h->ana[h->n_ana].state = d.state & 0x0f;
			h->ana[h->n_ana].nnsids = nn;
			h->n_ana++;
		}
	}
	h->ana_groups = ngrps;
	return 0;
}

bool health_changed(const struct nvme_health *a, const struct nvme_health *b)
{
	if (a->reachable != b->reachable || a->critical_warning != b->critical_warning ||
	    a->n_ana != b->n_ana)
		return true;
	for (unsigned i = 0; i < a->n_ana && i < HEALTH_ANA_MAX; i++)
		if (a->ana[i].grpid != b->ana[i].grpid || a->ana[i].state != b->ana[i].state)
			return true;
	return false;
}

/* ---------------------------------------------------------------- remote */

/* What a remote source keeps between polls on one admin connection. */
struct remote_ident {
	bool valid;
	struct nvme_health id; /* identity fields only */
	uint32_t ana_len;
	bool r2t;
};

static void copy_ident(struct nvme_health *h, const struct nvme_health *id)
{
	h->cntlid = id->cntlid;
	memcpy(h->model, id->model, sizeof(h->model));
	memcpy(h->serial, id->serial, sizeof(h->serial));
	memcpy(h->firmware, id->firmware, sizeof(h->firmware));
	h->version = id->version;
	h->ana_supported = id->ana_supported;
}

/* Bring the session up if needed (then Identify), read SMART and ANA, send
 * a Keep Alive.  Any failure closes the session: the next poll starts over. */
static int remote_poll_once(struct nvmf_admin *s, struct remote_ident *ri, struct nvme_health *h)
{
	struct nvme_smart_log smart;
	struct nvme_id_ctrl *id = NULL;
	void *ana = NULL;
	int r = -1;

	snprintf(h->source, sizeof(h->source), "%s", nvmf_admin_peer(s));
	if (!nvmf_admin_is_open(s) || !ri->valid) {
		ri->valid = false;
		id = malloc(sizeof(*id));
		if (!id) {
			set_error(h, "out of memory");
			goto out;
		}
		if (nvmf_admin_open(s) || nvmf_admin_identify_ctrl(s, id))
			goto fail;
		memset(&ri->id, 0, sizeof(ri->id));
		ri->id.version = nvmf_admin_vs(s);
		health_from_id(&ri->id, id);
		ri->ana_len = health_ana_log_len(id);
		ri->r2t = nvmf_admin_connect_used_r2t(s);
		ri->valid = true;
	}
	copy_ident(h, &ri->id);
	snprintf(h->connect_data, sizeof(h->connect_data), "%s", ri->r2t ? "r2t" : "in-capsule");
	if (nvmf_admin_get_log(s, NVME_LOG_LID_SMART, 0, NVME_NSID_ALL, &smart, sizeof(smart)))
		goto fail;
	h->rtt_ms = (double)nvmf_admin_last_rtt_ns(s) / 1e6;
	health_from_smart(h, &smart);
	if (h->ana_supported) {
		ana = ri->ana_len ? calloc(1, ri->ana_len) : NULL;
		if (!ana) {
			set_error(h, "out of memory");
			goto out;
		}
		if (nvmf_admin_get_log(s, NVME_LOG_LID_ANA, 0, NVME_NSID_ALL, ana, ri->ana_len))
			goto fail;
		if (health_parse_ana(h, ana, ri->ana_len)) {
			char msg[sizeof(h->error)];

			snprintf(msg, sizeof(msg), "%s", h->error);
			set_error(h, "%s: %s", nvmf_admin_peer(s), msg);
			goto out;
		}
	}
	if (nvmf_admin_keep_alive(s))
		goto fail;
	h->reachable = true;
	h->error[0] = 0;
	r = 0;
	goto out;
fail:
	set_error(h, "%s", nvmf_admin_error(s));
out:
	if (r)
		nvmf_admin_close(s);
	free(ana);
	free(id);
	return r;
}

/* A connection kept from an earlier poll may have been dropped meanwhile
 * (target restarted, port re-created): that is not news about the target,
 * so it gets one fresh connection before the poll counts as failed. */
static int remote_poll(struct nvmf_admin *s, struct remote_ident *ri, struct nvme_health *h)
{
	bool was_open = nvmf_admin_is_open(s) && ri->valid;

	if (!remote_poll_once(s, ri, h))
		return 0;
	if (!was_open || !nvmf_admin_conn_lost(s))
		return -1;
	return remote_poll_once(s, ri, h);
}

int health_probe_remote(const struct nvmf_target *t, const struct nvmf_admin_opts *o,
			struct nvme_health *h)
{
	struct remote_ident ri = {0};
	struct nvmf_admin *s = nvmf_admin_new(t, o);
	uint32_t id = h->backend_id;
	int r;

	memset(h, 0, sizeof(*h));
	h->backend_id = id;
	snprintf(h->subnqn, sizeof(h->subnqn), "%s", t->subnqn);
	if (!s) {
		set_error(h, "out of memory");
		h->ts_ns = mono_ns();
		return -1;
	}
	r = remote_poll(s, &ri, h);
	h->ts_ns = mono_ns();
	nvmf_admin_free(s);
	return r;
}

/* ---------------------------------------------------------------- local */

int health_local_sel_parse(const char *s, struct health_local_sel *sel, char *err, size_t len)
{
	struct nvmf_target t = {0};
	const char *d = s;
	size_t colons = 0;

	memset(sel, 0, sizeof(*sel));
	if (!s || !*s)
		return 0;
	if (!strncmp(d, "/dev/", 5))
		d += 5;
	if (!strncmp(d, "nvme", 4) && d[4] >= '0' && d[4] <= '9') {
		if (strlen(d) >= sizeof(sel->dev) || strspn(d + 4, "0123456789") != strlen(d + 4)) {
			snprintf(err, len, "'%s': a controller is named nvmeN (see 'nvme list')",
				 s);
			return -1;
		}
		snprintf(sel->dev, sizeof(sel->dev), "%s", d);
		return 0;
	}
	if (nvmf_parse_addr(s, &t, err, len))
		return -1;
	for (const char *p = s; *p; p++)
		colons += *p == ':';
	snprintf(sel->traddr, sizeof(sel->traddr), "%s", t.addr);
	/* A port only when one was written: "A:P", "[V6]:P". */
	if ((s[0] == '[' && strstr(s, "]:")) || (s[0] != '[' && colons == 1))
		sel->trsvcid = t.port;
	return 0;
}

static bool sel_match(const struct health_local_sel *sel, nvme_ctrl_t c)
{
	const char *v;

	if (sel->dev[0])
		return !strcmp(nvme_ctrl_get_name(c), sel->dev);
	if (sel->traddr[0]) {
		v = nvme_ctrl_get_traddr(c);
		if (!v || strcmp(v, sel->traddr))
			return false;
		v = nvme_ctrl_get_trsvcid(c);
		if (sel->trsvcid && (!v || strtoul(v, NULL, 10) != sel->trsvcid))
			return false;
	}
	if (sel->subnqn[0]) {
		v = nvme_ctrl_get_subsysnqn(c);
		if (!v || strcmp(v, sel->subnqn))
			return false;
	}
	return true;
}

/* Identify, SMART and ANA through the controller's character device. */
static int local_read(nvme_ctrl_t c, struct nvme_health *h)
{
	const char *name = nvme_ctrl_get_name(c), *v;
	struct nvme_id_ctrl *id = malloc(sizeof(*id));
	struct nvme_smart_log smart;
	uint32_t alen = 0;
	void *ana = NULL;
	uint64_t t0;
	int fd, r = -1, st;

	snprintf(h->source, sizeof(h->source), "%s", name);
	snprintf(h->transport, sizeof(h->transport), "%s",
		 (v = nvme_ctrl_get_transport(c)) ? v : "");
	snprintf(h->traddr, sizeof(h->traddr), "%s", (v = nvme_ctrl_get_traddr(c)) ? v : "");
	h->trsvcid = (v = nvme_ctrl_get_trsvcid(c)) ? (uint16_t)strtoul(v, NULL, 10) : 0;
	snprintf(h->state, sizeof(h->state), "%s", (v = nvme_ctrl_get_state(c)) ? v : "");
	snprintf(h->subnqn, sizeof(h->subnqn), "%s", (v = nvme_ctrl_get_subsysnqn(c)) ? v : "");
	if (!id) {
		set_error(h, "%s: out of memory", name);
		goto out;
	}
	fd = nvme_ctrl_get_fd(c);
	if (fd < 0) {
		set_error(h, "%s: cannot open /dev/%s: %s", name, name, strerror(errno));
		goto out;
	}
	st = nvme_identify_ctrl(fd, id);
	if (st) {
		set_error(h, "%s: Identify Controller: %s (controller state %s)", name,
			  nvme_status_to_string(st, false), h->state);
		goto out;
	}
	health_from_id(h, id);
	t0 = mono_ns();
	st = nvme_get_log_smart(fd, NVME_NSID_ALL, false, &smart);
	if (st) {
		set_error(h, "%s: Get Log Page SMART/Health: %s", name,
			  nvme_status_to_string(st, false));
		goto out;
	}
	h->rtt_ms = (double)(mono_ns() - t0) / 1e6;
	health_from_smart(h, &smart);
	if (h->ana_supported) {
		struct nvme_get_log_args a = {
		    .args_size = sizeof(a),
		    .fd = fd,
		    .lid = NVME_LOG_LID_ANA,
		    .nsid = NVME_NSID_ALL,
		    .csi = NVME_CSI_NVM,
		    .lsi = NVME_LOG_LSI_NONE,
		    .lsp = NVME_LOG_ANA_LSP_RGO_NAMESPACES,
		    .uuidx = NVME_UUID_NONE,
		};

		alen = health_ana_log_len(id);
		ana = calloc(1, alen);
		if (!ana) {
			set_error(h, "%s: out of memory", name);
			goto out;
		}
		/* One command for the whole log, as the kernel reads it: some
		 * targets (Linux nvmet) ignore the log page offset. */
		a.log = ana;
		a.len = alen;
		st = nvme_get_log(&a);
		if (st) {
			set_error(h, "%s: Get Log Page ANA: %s", name,
				  nvme_status_to_string(st, false));
			goto out;
		}
		if (health_parse_ana(h, ana, alen)) {
			char msg[sizeof(h->error)];

			snprintf(msg, sizeof(msg), "%s", h->error);
			set_error(h, "%s: %s", name, msg);
			goto out;
		}
	}
	h->reachable = true;
	h->error[0] = 0;
	r = 0;
out:
	h->ts_ns = mono_ns();
	free(ana);
	free(id);
	return r;
}

/* Scan what the kernel sees; call fn for every matching controller until
 * it returns non-zero. */
static int scan_local(const struct health_local_sel *sel, int (*fn)(nvme_ctrl_t, void *), void *arg,
		      char *err, size_t len)
{
	nvme_root_t root = nvme_create_root(NULL, LOG_ERR);
	nvme_host_t host;
	nvme_subsystem_t sub;
	nvme_ctrl_t c;
	int r = 0;

	if (!root) {
		snprintf(err, len, "libnvme: %s", strerror(errno));
		return -1;
	}
	if (nvme_scan_topology(root, NULL, NULL) && errno != ENOENT) {
		snprintf(err, len, "libnvme: scanning /sys/class/nvme: %s", strerror(errno));
		r = -1;
		goto out;
	}
	nvme_for_each_host(root, host)
	{
		nvme_for_each_subsystem(host, sub)
		{
			nvme_subsystem_for_each_ctrl(sub, c)
			{
				if (sel_match(sel, c) && fn(c, arg))
					goto out;
			}
		}
	}
out:
	nvme_free_tree(root);
	return r;
}

struct list_ctx {
	struct nvme_health *v;
	int n, cap;
	bool first_only;
	bool oom;
};

static int list_one(nvme_ctrl_t c, void *arg)
{
	struct list_ctx *x = arg;

	if (x->n == x->cap) {
		int cap = x->cap ? x->cap * 2 : 4;
		struct nvme_health *v = realloc(x->v, (size_t)cap * sizeof(*v));

		if (!v) {
			x->oom = true;
			return 1;
		}
		x->v = v;
		x->cap = cap;
	}
	memset(&x->v[x->n], 0, sizeof(x->v[x->n]));
	local_read(c, &x->v[x->n]);
	x->n++;
	return x->first_only;
}

int health_list_local(const struct health_local_sel *sel, struct nvme_health **out, char *err,
		      size_t len)
{
	struct list_ctx x = {0};

	*out = NULL;
	if (scan_local(sel, list_one, &x, err, len) || x.oom) {
		if (x.oom)
			snprintf(err, len, "out of memory");
		free(x.v);
		return -1;
	}
	*out = x.v;
	return x.n;
}

static void sel_describe(const struct health_local_sel *sel, char *buf, size_t len)
{
	if (sel->dev[0])
		snprintf(buf, len, "%s", sel->dev);
	else if (sel->traddr[0] && sel->trsvcid)
		snprintf(buf, len, strchr(sel->traddr, ':') ? "[%s]:%u" : "%s:%u", sel->traddr,
			 sel->trsvcid);
	else if (sel->traddr[0])
		snprintf(buf, len, "%s", sel->traddr);
	else
		snprintf(buf, len, "local");
}

int health_read_local(const struct health_local_sel *sel, struct nvme_health *h)
{
	struct list_ctx x = {.first_only = true};
	uint32_t id = h->backend_id;
	char err[256] = "", what[96];

	memset(h, 0, sizeof(*h));
	h->backend_id = id;
	sel_describe(sel, what, sizeof(what));
	snprintf(h->source, sizeof(h->source), "%s", what);
	if (scan_local(sel, list_one, &x, err, sizeof(err)) || x.oom) {
		set_error(h, "%s: %s", what, x.oom ? "out of memory" : err);
		h->ts_ns = mono_ns();
		free(x.v);
		return -1;
	}
	if (!x.n) {
		set_error(h, "%s: no such NVMe controller on this host (see 'nvme list-subsys')",
			  what);
		h->ts_ns = mono_ns();
		return -1;
	}
	*h = x.v[0];
	h->backend_id = id;
	free(x.v);
	return h->reachable ? 0 : -1;
}

/* ---------------------------------------------------------------- worker */

struct health_slot {
	struct health_worker *w;
	struct health_src src;
	struct nvme_health cur; /* under w->mu */
	bool have;
	bool started;
	bool rebind; /* src.remote.ifname changed: reconnect (under w->mu) */
	pthread_t th;
};

struct health_worker {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool stop;
	int cancel_fd; /* readable once stopping: aborts probes in flight */
	int notify_fd;
	unsigned n, interval_ms, timeout_ms;
	struct health_slot slot[];
};

static void notify(int fd)
{
	uint64_t one = 1;

	/* eventfd: a full counter already means "look" */
	if (fd >= 0 && write(fd, &one, sizeof(one)) < 0 && errno != EAGAIN)
		fprintf(stderr, "vsn: warning: health: notify: %s\n", strerror(errno));
}

static void *slot_main(void *arg)
{
	struct health_slot *sl = arg;
	struct health_worker *w = sl->w;
	struct nvmf_admin_opts o = {
	    .timeout_ms = w->timeout_ms,
	    .cancel_fd = w->cancel_fd,
	    /* kept alive by our own polls: room for two missed ones */
	    .kato_ms = 3 * w->interval_ms + w->timeout_ms,
	};
	struct remote_ident ri = {0};
	struct nvmf_admin *s = NULL;
	struct nvme_health *h = malloc(sizeof(*h));

	if (!h)
		return NULL;
	if (!sl->src.local)
		s = nvmf_admin_new(&sl->src.remote, &o);
	for (;;) {
		struct timespec until;
		uint64_t t;
		bool changed;

		pthread_mutex_lock(&w->mu);
		if (sl->rebind && !sl->src.local) {
			/* The storage traffic's interface changed: so does ours. */
			nvmf_admin_free(s);
			s = nvmf_admin_new(&sl->src.remote, &o);
			sl->rebind = false;
		}
		pthread_mutex_unlock(&w->mu);
		memset(h, 0, sizeof(*h));
		h->backend_id = sl->src.backend_id;
		if (sl->src.local) {
			health_read_local(&sl->src.sel, h);
		} else if (!s) {
			set_error(h, "out of memory");
		} else {
			snprintf(h->subnqn, sizeof(h->subnqn), "%s", sl->src.remote.subnqn);
			remote_poll(s, &ri, h);
		}
		h->ts_ns = mono_ns();

		pthread_mutex_lock(&w->mu);
		if (w->stop) {
			pthread_mutex_unlock(&w->mu);
			break; /* a cancelled probe says nothing about the target */
		}
		changed = !sl->have || health_changed(&sl->cur, h);
		sl->cur = *h;
		sl->have = true;
		pthread_mutex_unlock(&w->mu);
		if (changed)
			notify(w->notify_fd);

		t = h->ts_ns + (uint64_t)w->interval_ms * 1000000ull;
		until.tv_sec = (time_t)(t / 1000000000ull);
		until.tv_nsec = (long)(t % 1000000000ull);
		pthread_mutex_lock(&w->mu);
		while (!w->stop && pthread_cond_timedwait(&w->cv, &w->mu, &until) != ETIMEDOUT)
			;
		if (w->stop) {
			pthread_mutex_unlock(&w->mu);
			break;
		}
		pthread_mutex_unlock(&w->mu);
	}
	nvmf_admin_free(s);
	free(h);
	return NULL;
}

static void slot_describe(const struct health_src *src, char *buf, size_t len)
{
	if (src->local)
		sel_describe(&src->sel, buf, len);
	else
		snprintf(buf, len, strchr(src->remote.addr, ':') ? "[%s]:%u" : "%s:%u",
			 src->remote.addr, src->remote.port ? src->remote.port : 4420);
}

int health_worker_start(struct health_worker **wp, const struct health_src *srcs, unsigned n,
			unsigned interval_ms, unsigned timeout_ms, int notify_fd)
{
	struct health_worker *w;
	pthread_condattr_t ca;
	pthread_attr_t ta;
	int r = 0;

	*wp = NULL;
	w = calloc(1, sizeof(*w) + (size_t)n * sizeof(w->slot[0]));
	if (!w)
		return -ENOMEM;
	w->n = n;
	w->interval_ms = interval_ms ? interval_ms : 1000;
	w->timeout_ms = timeout_ms ? timeout_ms : 2000;
	w->notify_fd = notify_fd;
	w->cancel_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (w->cancel_fd < 0) {
		r = -errno;
		free(w);
		return r;
	}
	pthread_mutex_init(&w->mu, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC); /* sleeps ignore wall-clock jumps */
	pthread_cond_init(&w->cv, &ca);
	pthread_condattr_destroy(&ca);
	pthread_attr_init(&ta);
	pthread_attr_setstacksize(&ta, (size_t)256 * 1024);
	for (unsigned i = 0; i < n; i++) {
		struct health_slot *sl = &w->slot[i];

		sl->w = w;
		sl->src = srcs[i];
		sl->cur.backend_id = srcs[i].backend_id;
		slot_describe(&srcs[i], sl->cur.source, sizeof(sl->cur.source));
		snprintf(sl->cur.error, sizeof(sl->cur.error), "%s: not probed yet",
			 sl->cur.source);
	}
	for (unsigned i = 0; i < n; i++) {
		r = -pthread_create(&w->slot[i].th, &ta, slot_main, &w->slot[i]);
		if (r)
			break;
		w->slot[i].started = true;
	}
	pthread_attr_destroy(&ta);
	if (r) {
		health_worker_stop(w);
		return r;
	}
	*wp = w;
	return 0;
}

int health_worker_snapshot(struct health_worker *w, struct nvme_health *out, unsigned n)
{
	unsigned k = n < w->n ? n : w->n;

	pthread_mutex_lock(&w->mu);
	for (unsigned i = 0; i < k; i++)
		out[i] = w->slot[i].cur;
	pthread_mutex_unlock(&w->mu);
	return (int)k;
}

void health_worker_set_ifname(struct health_worker *w, unsigned idx, const char *ifname)
{
	struct health_slot *sl;

	if (!w || idx >= w->n)
		return;
	sl = &w->slot[idx];
	pthread_mutex_lock(&w->mu);
	if (!sl->src.local && strcmp(sl->src.remote.ifname, ifname)) {
		snprintf(sl->src.remote.ifname, sizeof(sl->src.remote.ifname), "%s", ifname);
		sl->rebind = true;
	}
	pthread_mutex_unlock(&w->mu);
}

void health_worker_stop(struct health_worker *w)
{
	uint64_t one = 1;

	if (!w)
		return;
	pthread_mutex_lock(&w->mu);
	w->stop = true;
	pthread_cond_broadcast(&w->cv);
	pthread_mutex_unlock(&w->mu);
	if (write(w->cancel_fd, &one, sizeof(one)) < 0)
		fprintf(stderr, "vsn: warning: health: cancel: %s\n", strerror(errno));
	for (unsigned i = 0; i < w->n; i++)
		if (w->slot[i].started)
			pthread_join(w->slot[i].th, NULL);
	pthread_cond_destroy(&w->cv);
	pthread_mutex_destroy(&w->mu);
	close(w->cancel_fd);
	free(w);
}
