// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * vsn daemon: the controller.  One epoll loop over the telemetry ring
 * buffer, the decision tick, the silent-cut watch, rtnetlink events, the
 * API socket and signals.  It never detaches the datapath: stopped or
 * killed, it leaves the maps forwarding on the last mapping it wrote.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <getopt.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <sys/un.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "daemon/api.h"
#include "daemon/daemon.h"
#include "lib/rtnl.h"

#define CONN_COUNT_NS (10ull * 1000000000ull)

enum ev_src {
	EV_TICK = 1,
	EV_WATCH,
	EV_SIGNAL,
	EV_API,
	EV_RTNL,
	EV_RING,
	EV_HEALTH,
	EV_LOADER,
	EV_CLUSTER,
};

static int timer_arm(int fd, unsigned ms)
{
	struct itimerspec it = {
	    .it_interval = {ms / 1000, (long)(ms % 1000) * 1000000},
	    .it_value = {ms / 1000, (long)(ms % 1000) * 1000000},
	};

	return timerfd_settime(fd, 0, &it, NULL);
}

static int ep_add(struct ctl *c, int fd, enum ev_src src)
{
	struct epoll_event ev = {.events = EPOLLIN, .data.u32 = src};

	return epoll_ctl(c->epfd, EPOLL_CTL_ADD, fd, &ev);
}

/* systemd Type=notify without libsystemd: one datagram to $NOTIFY_SOCKET. */
static void sd_notify_ready(void)
{
	const char *path = getenv("NOTIFY_SOCKET");
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	static const char msg[] = "READY=1";
	socklen_t len;
	int fd;

	if (!path || (path[0] != '/' && path[0] != '@') || strlen(path) >= sizeof(sa.sun_path))
		return;
	memcpy(sa.sun_path, path, strlen(path) + 1);
	if (path[0] == '@')
		sa.sun_path[0] = '\0'; /* abstract namespace */
	len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + strlen(path));
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return;
	sendto(fd, msg, sizeof(msg) - 1, 0, (struct sockaddr *)&sa, len);
	close(fd);
}

static int on_ring(void *ctx, void *data, size_t size)
{
	if (size >= sizeof(struct vsn_event))
		ctl_event(ctx, data);
	return 0;
}

struct ring_buffer *ctl_ring_new(struct ctl *c, int events_fd)
{
	return ring_buffer__new(events_fd, on_ring, c, NULL);
}

int ctl_ring_swap(struct ctl *c, struct ring_buffer *rb)
{
	struct epoll_event ev = {.events = EPOLLIN, .data.u32 = EV_RING};
	int ret = 0;

	epoll_ctl(c->epfd, EPOLL_CTL_DEL, ring_buffer__epoll_fd(c->ring), NULL);
	if (epoll_ctl(c->epfd, EPOLL_CTL_ADD, ring_buffer__epoll_fd(rb), &ev))
		ret = -errno;
	ring_buffer__free(c->ring);
	c->ring = rb;
	return ret;
}

static void on_link(void *ctx, unsigned ifindex, bool carrier)
{
	ctl_link_event(ctx, ifindex, carrier, ctl_now_ns());
}

static void on_neigh(void *ctx, unsigned ifindex, const struct vsn_addr *a, bool failed)
{
	ctl_neigh_event(ctx, ifindex, a, failed, ctl_now_ns());
}

static void reload_rejected(struct ctl *c, const char *why)
{
	char esc[2 * VSN_ERR_MAX];

	ctl_log(c, CTL_WHY_RELOAD, "\"event\":\"reload-rejected\",\"error\":\"%s\"",
		ctl_esc(esc, sizeof(esc), why));
	vsn_err("reload: %s (keeping the running config)", why);
}

void ctl_reload(struct ctl *c)
{
	int ret = ctl_loader_submit(c, c->config_file, c->allow_empty ? CONFIG_ALLOW_EMPTY : 0,
				    LOADER_RELOAD, 0);

	if (ret == -EBUSY)
		vsn_warn("reload: a config is being read; reading %s again after it",
			 c->config_file);
	else if (ret)
		reload_rejected(c, strerror(-ret));
}

/* The cluster section is the running one's: the daemon joined with it,
 * and a change takes a restart (docs/cluster.md). */
static void keep_cluster_section(struct vsn_config *cfg, struct vsn_config *running)
{
	struct vsn_cfg_cluster tmp = cfg->cluster;

	cfg->cluster = running->cluster;
	running->cluster = tmp;
}

int ctl_adopt_config(struct ctl *c, struct vsn_config *cfg, struct vsn_error *err)
{
	if (strcmp(cfg->ctl.socket, c->cfg->ctl.socket))
		return vsn_error_set(err, -EINVAL,
				     "controller.socket changed: restart the daemon to move it");
	if (c->cfg->ctl.observe_only)
		cfg->ctl.observe_only = true; /* --observe-only holds */
	keep_cluster_section(cfg, c->cfg);
	if (ctl_apply_config(c, cfg, err)) {
		keep_cluster_section(cfg, c->cfg); /* back where it was */
		return -EINVAL;
	}
	c->reloads++;
	/* The timers follow the new tick_ms and watch_ms. */
	if (timer_arm(c->tick_fd, c->cfg->ctl.tick_ms) ||
	    timer_arm(c->watch_fd, c->cfg->ctl.watch_ms))
		vsn_warn("reload: cannot re-arm the timers: %s", strerror(errno));
	if (ctl_health_start(c, err))
		vsn_warn("reload: %s", err->msg);
	return 0;
}

void ctl_reload_loaded(struct ctl *c, struct vsn_config *cfg, const struct vsn_error *rerr)
{
	struct vsn_error err = {.msg = ""};
	char esc[2 * VSN_ERR_MAX];

	if (!cfg) {
		reload_rejected(c, rerr->msg);
		return;
	}
	if (ctl_fleet_config_rev(c)) {
		snprintf(err.msg, sizeof(err.msg),
			 "this host runs the cluster's configuration (revision %lld): change it "
			 "with 'vsn apply --cluster FILE'",
			 (long long)ctl_fleet_config_rev(c));
		reload_rejected(c, err.msg);
		config_free(cfg);
		return;
	}
	if (ctl_adopt_config(c, cfg, &err)) {
		reload_rejected(c, err.msg);
		config_free(cfg);
		return;
	}
	ctl_log(c, CTL_WHY_RELOAD, "\"event\":\"config-applied\",\"file\":\"%s\"",
		ctl_esc(esc, sizeof(esc), c->config_file));
}

/* The config applied when it started replaced: free the old one. */
static void drop_old_config(struct ctl *c, struct vsn_config **held)
{
	if (*held && *held != c->cfg) {
		config_free(*held);
		*held = c->cfg;
	}
}

static void tick(struct ctl *c)
{
	struct vsn_error err = {.msg = ""};
	uint64_t now = ctl_now_ns(), end;
	double secs;

	/* Detached: nothing to decide on maps no program reads; the metrics
	 * say so. */
	if (ctl_datapath_check(c, now)) {
		ctl_tick(c, now);
		if (now - c->last_conn_count_ns >= CONN_COUNT_NS) {
			ctl_count_conns(c);
			c->last_conn_count_ns = now;
		}
	}
	if (now - c->last_metrics_ns >= c->cfg->ctl.metrics_interval_ms * 1000000ull) {
		c->last_metrics_ns = now;
		if (ctl_metrics_write(c, &err))
			vsn_warn("%s", err.msg);
	}
	end = ctl_now_ns();
	secs = (end - now) / 1e9;
	c->tick_seconds_last = secs;
	if (secs > c->tick_seconds_max)
		c->tick_seconds_max = secs;
}

static int setup(struct ctl *c, struct vsn_error *err)
{
	sigset_t mask;
	bool keep_maps;
	int fd;

	/* Blocked before any thread starts (the health pollers inherit the
	 * mask), so that only the signalfd ever sees these. */
	sigemptyset(&mask);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGHUP);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	c->live_len = VSN_MAX_PATHS * sizeof(struct vsn_path_live);
	c->live = mmap(NULL, c->live_len, PROT_READ | PROT_WRITE, MAP_SHARED, c->m.path_live, 0);
	if (c->live == MAP_FAILED) {
		c->live = NULL;
		vsn_error_set(err, 0, "cannot map %s: %s (re-attach with this version of vsn)",
			      VSN_MAP_PATH_LV, strerror(errno));
		return -errno;
	}
	c->cmds_len = (size_t)VSN_MAX_CMDS * sizeof(struct vsn_cmd_slot);
	c->cmds = mmap(NULL, c->cmds_len, PROT_READ, MAP_SHARED, c->m.cmds, 0);
	if (c->cmds == MAP_FAILED) {
		c->cmds = NULL;
		vsn_error_set(err, 0, "cannot map %s: %s (re-attach with this version of vsn)",
			      VSN_MAP_CMDS, strerror(errno));
		return -errno;
	}
	c->moves = calloc(CTL_MOVE_SLOTS, sizeof(*c->moves));
	c->vols = calloc(VSN_MAX_VOLUMES, sizeof(*c->vols));
	if (!c->moves || !c->vols) {
		vsn_error_set(err, 0, "out of memory");
		return -ENOMEM;
	}
	if (rtnl_open(&c->rtnl, err))
		return -EIO;
	c->health_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (c->health_fd < 0) {
		vsn_error_set(err, 0, "eventfd: %s", strerror(errno));
		return -errno;
	}
	/* A host of a cluster whose own file maps nothing (its cluster and
	 * controller sections only) keeps the maps it finds until the
	 * cluster's configuration arrives: restarted while etcd is out of
	 * reach, it forwards on the last mapping instead of none. */
	keep_maps = c->cfg->cluster.enabled && config_is_empty(c->cfg);
	if ((keep_maps ? ctl_model_build(c, err) : ctl_apply_config(c, c->cfg, err)) ||
	    ctl_health_start(c, err) || ctl_loader_start(c, err))
		return -EINVAL;
	if (ctl_api_open(c, err))
		return -EADDRINUSE;
	c->epfd = epoll_create1(EPOLL_CLOEXEC);
	c->tick_fd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	c->watch_fd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	c->sig_fd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
	if (c->epfd < 0 || c->tick_fd < 0 || c->watch_fd < 0 || c->sig_fd < 0 ||
	    timer_arm(c->tick_fd, c->cfg->ctl.tick_ms) ||
	    timer_arm(c->watch_fd, c->cfg->ctl.watch_ms)) {
		vsn_error_set(err, 0, "event loop set-up: %s", strerror(errno));
		return -errno;
	}
	c->ring = ring_buffer__new(c->m.events, on_ring, c, NULL);
	if (!c->ring) {
		vsn_error_set(err, 0, "cannot read the telemetry ring %s: %s", VSN_MAP_EVENTS,
			      strerror(errno));
		return -errno;
	}
	fd = ring_buffer__epoll_fd(c->ring);
	if (ep_add(c, c->tick_fd, EV_TICK) || ep_add(c, c->watch_fd, EV_WATCH) ||
	    ep_add(c, c->sig_fd, EV_SIGNAL) || ep_add(c, c->api_fd, EV_API) ||
	    ep_add(c, rtnl_fd(c->rtnl), EV_RTNL) || ep_add(c, fd, EV_RING) ||
	    ep_add(c, c->health_fd, EV_HEALTH) || ep_add(c, c->loader_fd, EV_LOADER)) {
		vsn_error_set(err, 0, "epoll: %s", strerror(errno));
		return -errno;
	}
	/* Last: the maps are set up, so observations mean something. */
	if (ctl_fleet_start(c, err))
		return -EIO;
	if (c->fleet && ep_add(c, ctl_fleet_fd(c), EV_CLUSTER)) {
		vsn_error_set(err, 0, "epoll: %s", strerror(errno));
		return -errno;
	}
	return 0;
}

static void loop(struct ctl *c, struct vsn_config **held)
{
	struct epoll_event evs[16];

	while (!c->stop) {
		int n = epoll_wait(c->epfd, evs, 16, -1);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			vsn_err("epoll_wait: %s", strerror(errno));
			break;
		}
		for (int i = 0; i < n; i++) {
			uint64_t exp;

			switch (evs[i].data.u32) {
			case EV_TICK:
				if (read(c->tick_fd, &exp, sizeof(exp)) > 0)
					tick(c);
				break;
			case EV_WATCH:
				if (read(c->watch_fd, &exp, sizeof(exp)) > 0) {
					uint64_t now = ctl_now_ns();

					/* Clients are swept even while detached: they
					 * are told why their changes are refused. */
					if (!c->detached)
						ctl_watch(c, now);
					ctl_api_sweep(c, now);
				}
				break;
			case EV_SIGNAL: {
				struct signalfd_siginfo si;

				while (read(c->sig_fd, &si, sizeof(si)) == sizeof(si)) {
					if (si.ssi_signo == SIGHUP)
						ctl_reload(c);
					else
						c->stop = true;
				}
				break;
			}
			case EV_API:
				ctl_api_accept(c);
				break;
			case EV_RTNL:
				rtnl_drain(c->rtnl, on_link, on_neigh, c);
				break;
			case EV_RING:
				ring_buffer__consume(c->ring);
				break;
			case EV_LOADER:
				ctl_loader_event(c);
				break;
			case EV_CLUSTER:
				ctl_fleet_wake(c, ctl_now_ns());
				break;
			case EV_HEALTH: {
				uint64_t now = ctl_now_ns();

				ctl_health_update(c, now);
				ctl_judge_pending(c, now);
				break;
			}
			default:
				if (evs[i].data.u32 >= CTL_EV_API_CLIENT)
					ctl_api_client_event(c, evs[i].data.u32 - CTL_EV_API_CLIENT,
							     evs[i].events);
				break;
			}
			drop_old_config(c, held);
		}
	}
}

static void teardown(struct ctl *c)
{
	int fds[] = {c->epfd, c->tick_fd, c->watch_fd, c->sig_fd, c->health_fd};

	ctl_api_close(c);
	ctl_loader_stop(c);
	ctl_fleet_stop(c); /* its keys go with its lease */
	ctl_probe_stop(c);
	ctl_health_stop(c);
	ring_buffer__free(c->ring);
	rtnl_close(c->rtnl);
	if (c->live)
		munmap(c->live, c->live_len);
	if (c->cmds)
		munmap((void *)c->cmds, c->cmds_len);
	for (unsigned i = 0; i < sizeof(fds) / sizeof(fds[0]); i++)
		if (fds[i] >= 0)
			close(fds[i]);
	if (c->logf && c->logf != stdout)
		fclose(c->logf);
	ctl_model_free(c);
	free(c->moves);
	free(c->vols);
	pins_close(&c->m);
	config_free(c->cfg);
}

/*
 * Run the controller on cfg (validated; the daemon owns it from here) until
 * SIGTERM/SIGINT.  logf: the decision log (stdout, or a file the daemon
 * closes).  allow_empty: reloads may take an empty file (--allow-empty).
 * Returns the process exit status.
 */
int daemon_run(const struct vsn_opts *o, const char *config_file, struct vsn_config *cfg,
	       FILE *logf, bool allow_empty)
{
	struct ctl c = {.o = o,
			.allow_empty = allow_empty,
			.config_file = config_file,
			.cfg = cfg,
			.logf = logf,
			.m = VSN_MAPS_NONE,
			.epfd = -1,
			.tick_fd = -1,
			.watch_fd = -1,
			.sig_fd = -1,
			.api_fd = -1,
			.health_fd = -1,
			.loader_fd = -1};
	struct vsn_error err = {.msg = ""};
	struct vsn_config *held = cfg;
	char esc[2 * PATH_MAX];
	int ret = 1;

	if (pins_open(o, &c.m))
		goto out;
	if (setup(&c, &err)) {
		vsn_err("daemon: %s", err.msg);
		goto out;
	}
	ctl_datapath_init(&c);
	ctl_log(&c, CTL_WHY_RELOAD,
		"\"event\":\"started\",\"config\":\"%s\",\"paths\":%u,\"backends\":%u,"
		"\"observe_only\":%s",
		ctl_esc(esc, sizeof(esc), c.config_file), c.n_paths, c.n_backends,
		c.cfg->ctl.observe_only ? "true" : "false");
	sd_notify_ready();
	loop(&c, &held);
	ctl_log(&c, CTL_WHY_RELOAD, "\"event\":\"stopped\",\"datapath\":\"left forwarding\"");
	if (ctl_metrics_write(&c, &err))
		vsn_warn("%s", err.msg);
	ret = 0;
out:
	teardown(&c);
	return ret;
}
