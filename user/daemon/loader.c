// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * Config files are read and validated on a thread of their own: a file of
 * the size cap takes a few hundred milliseconds to parse, and the event
 * loop must not stop watching for silent cuts meanwhile.  One file at a
 * time; the loop applies the result (maps are written from the loop only).
 * A SIGHUP during a load is remembered and read once the load is done; an
 * API apply during one is refused with "try again".  'vsn apply --cluster'
 * is a job here too: its file checked for every host, then written to etcd
 * (which may take the cluster's timeout).
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/eventfd.h>

#include "cluster/cluster.h"
#include "daemon/daemon.h"

struct ctl_loader {
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t wake;
	int done_fd; /* eventfd: a result waits */
	bool busy, quit, reload_queued;
	/* The job (set by the loop, read by the worker). */
	char file[4096];
	unsigned flags;
	int client;	    /* API client slot, or LOADER_RELOAD */
	uint64_t ticket;    /* the client's, so that a reused slot is not answered */
	struct cluster *cl; /* a cluster put: where to */
	int64_t expect;	    /* its compare-and-swap revision */
	/* The result (set by the worker, taken by the loop). */
	struct vsn_config *cfg;
	struct vsn_error err;
	int64_t rev; /* a cluster put's new revision */
	char hosts[256];
	bool ready;
};

/* Read file whole (at most CL_CONFIG_MAX), for etcd. */
static char *slurp(const char *file, size_t *len, struct vsn_error *err)
{
	FILE *f = fopen(file, "rb");
	char *buf = NULL;
	size_t n;

	if (!f) {
		vsn_error_set(err, -errno, "%s: %s", file, strerror(errno));
		return NULL;
	}
	buf = malloc(CL_CONFIG_MAX + 2);
	if (!buf) {
		vsn_error_set(err, -ENOMEM, "out of memory");
		goto out;
	}
	n = fread(buf, 1, CL_CONFIG_MAX + 1, f);
	if (ferror(f) || n > CL_CONFIG_MAX) {
		vsn_error_set(err, -EFBIG, "%s: %s", file,
			      ferror(f) ? "cannot read it" : "larger than the 1 MiB etcd takes");
		free(buf);
		buf = NULL;
		goto out;
	}
	buf[n] = '\0';
	*len = n;
out:
	fclose(f);
	return buf;
}

/* The cluster job: check the file for every host, then compare-and-swap it
 * into etcd. */
static int64_t cluster_put(const char *file, struct cluster *cl, int64_t expect, char *hosts,
			   size_t hosts_len, struct vsn_error *err)
{
	size_t len = 0;
	char *text = slurp(file, &len, err);
	int64_t rev = 0;

	if (!text)
		return 0;
	if (!cluster_check_config(file, text, len, hosts, hosts_len, err) &&
	    cluster_put_config(cl, text, len, expect, &rev, err))
		rev = 0;
	free(text);
	return rev;
}

static void *worker(void *arg)
{
	struct ctl_loader *l = arg;
	char file[sizeof(l->file)], hosts[sizeof(l->hosts)];
	struct vsn_config *cfg;
	struct vsn_error err;
	uint64_t one = 1;

	pthread_mutex_lock(&l->lock);
	for (;;) {
		while (!l->quit && (!l->busy || l->ready))
			pthread_cond_wait(&l->wake, &l->lock);
		if (l->quit)
			break;
		memcpy(file, l->file, sizeof(file));
		unsigned flags = l->flags;
		struct cluster *cl = l->cl;
		int64_t expect = l->expect, rev = 0;

		pthread_mutex_unlock(&l->lock);
		memset(&err, 0, sizeof(err));
		cfg = NULL;
		hosts[0] = '\0';
		if (cl)
			rev = cluster_put(file, cl, expect, hosts, sizeof(hosts), &err);
		else
			cfg = config_read(file, flags, &err);

		pthread_mutex_lock(&l->lock);
		l->cfg = cfg;
		l->rev = rev;
		memcpy(l->hosts, hosts, sizeof(hosts));
		l->err = err;
		l->ready = true;
		if (write(l->done_fd, &one, sizeof(one)) < 0)
			vsn_warn("config loader: cannot wake the event loop: %s", strerror(errno));
	}
	pthread_mutex_unlock(&l->lock);
	return NULL;
}

int ctl_loader_start(struct ctl *c, struct vsn_error *err)
{
	struct ctl_loader *l = calloc(1, sizeof(*l));
	int ret;

	if (!l)
		return vsn_error_set(err, -ENOMEM, "out of memory");
	pthread_mutex_init(&l->lock, NULL);
	pthread_cond_init(&l->wake, NULL);
	l->done_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (l->done_fd < 0) {
		ret = vsn_error_set(err, -errno, "eventfd: %s", strerror(errno));
		goto fail;
	}
	ret = -pthread_create(&l->thread, NULL, worker, l);
	if (ret) {
		vsn_error_set(err, ret, "cannot start the config loader: %s", strerror(-ret));
		close(l->done_fd);
		goto fail;
	}
	c->loader = l;
	c->loader_fd = l->done_fd;
	return 0;
fail:
	pthread_cond_destroy(&l->wake);
	pthread_mutex_destroy(&l->lock);
	free(l);
	return ret;
}

void ctl_loader_stop(struct ctl *c)
{
	struct ctl_loader *l = c->loader;

	if (!l)
		return;
	pthread_mutex_lock(&l->lock);
	l->quit = true;
	pthread_cond_signal(&l->wake);
	pthread_mutex_unlock(&l->lock);
	/* A load under way finishes first: at most one file of the cap. */
	pthread_join(l->thread, NULL);
	config_free(l->cfg);
	close(l->done_fd);
	pthread_cond_destroy(&l->wake);
	pthread_mutex_destroy(&l->lock);
	free(l);
	c->loader = NULL;
	c->loader_fd = -1;
}

int ctl_loader_submit(struct ctl *c, const char *file, unsigned flags, int client, uint64_t ticket)
{
	return ctl_loader_submit_cluster(c, file, flags, NULL, 0, client, ticket);
}

int ctl_loader_submit_cluster(struct ctl *c, const char *file, unsigned flags, struct cluster *cl,
			      int64_t expect, int client, uint64_t ticket)
{
	struct ctl_loader *l = c->loader;
	int ret = 0;

	if (strlen(file) >= sizeof(l->file))
		return -ENAMETOOLONG;
	pthread_mutex_lock(&l->lock);
	if (l->busy) {
		if (client == LOADER_RELOAD)
			l->reload_queued = true;
		ret = -EBUSY;
	} else {
		memcpy(l->file, file, strlen(file) + 1);
		l->flags = flags;
		l->client = client;
		l->ticket = ticket;
		l->cl = cl;
		l->expect = expect;
		l->busy = true;
		pthread_cond_signal(&l->wake);
	}
	pthread_mutex_unlock(&l->lock);
	return ret;
}

void ctl_loader_event(struct ctl *c)
{
	struct ctl_loader *l = c->loader;
	struct vsn_config *cfg;
	struct vsn_error err;
	uint64_t v, ticket;
	char hosts[sizeof(l->hosts)];
	struct cluster *cl;
	int64_t rev;
	bool again;
	int client;

	if (read(l->done_fd, &v, sizeof(v)) < 0 && errno != EAGAIN)
		vsn_warn("config loader: %s", strerror(errno));
	pthread_mutex_lock(&l->lock);
	if (!l->ready) {
		pthread_mutex_unlock(&l->lock);
		return;
	}
	cfg = l->cfg;
	err = l->err;
	client = l->client;
	ticket = l->ticket;
	cl = l->cl;
	rev = l->rev;
	memcpy(hosts, l->hosts, sizeof(hosts));
	l->cfg = NULL;
	l->ready = false;
	l->busy = false;
	again = l->reload_queued;
	l->reload_queued = false;
	pthread_mutex_unlock(&l->lock);

	if (cl)
		ctl_api_cluster_put_done(c, client, ticket, rev, hosts, &err);
	else if (client == LOADER_RELOAD)
		ctl_reload_loaded(c, cfg, &err);
	else
		ctl_api_apply_loaded(c, client, ticket, cfg, &err);
	if (again)
		ctl_reload(c);
}
