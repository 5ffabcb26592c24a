// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * Config files are read and validated on a thread of their own: a file of
 * the size cap takes a few hundred milliseconds to parse, and the event
 * loop must not stop watching for silent cuts meanwhile.  One file at a
 * time; the loop applies the result (maps are written from the loop only).
 * A SIGHUP during a load is remembered and read once the load is done; an
 * API apply during one is refused with "try again".
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/eventfd.h>

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
	int client;	 /* API client slot, or LOADER_RELOAD */
	uint64_t ticket; /* the client's, so that a reused slot is not answered */
	/* The result (set by the worker, taken by the loop). */
	struct vsn_config *cfg;
	struct vsn_error err;
	bool ready;
};

static void *worker(void *arg)
{
	struct ctl_loader *l = arg;
	struct vsn_error err;
	struct vsn_config *cfg;
	char file[sizeof(l->file)];
	unsigned flags;
	uint64_t one = 1;

	pthread_mutex_lock(&l->lock);
	for (;;) {
		while (!l->quit && (!l->busy || l->ready))
			pthread_cond_wait(&l->wake, &l->lock);
		if (l->quit)
			break;
		memcpy(file, l->file, sizeof(file));
		flags = l->flags;
		pthread_mutex_unlock(&l->lock);

		memset(&err, 0, sizeof(err));
		cfg = config_read(file, flags, &err);

		pthread_mutex_lock(&l->lock);
		l->cfg = cfg;
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
	l->cfg = NULL;
	l->ready = false;
	l->busy = false;
	again = l->reload_queued;
	l->reload_queued = false;
	pthread_mutex_unlock(&l->lock);

	if (client == LOADER_RELOAD)
		ctl_reload_loaded(c, cfg, &err);
	else
		ctl_api_apply_loaded(c, client, ticket, cfg, &err);
	if (again)
		ctl_reload(c);
}
