/* procbus-bench-sides.h - procbus-bench's other sides: publisher, lock writer, socket server,
 * floor. */
#ifndef PBB_SIDES_H
#define PBB_SIDES_H

/*
 * Part of procbus-bench.c. The process across from the readers in each
 * benchmark: it fills the table, says pub_ready, waits for `go`, then either
 * idles or hammers its table at full speed (counting its updates in pub_ops)
 * until `stop`.
 */

/* ---- the procbus publisher ---- */

enum pub_mode { PUB_IDLE, PUB_CHURN, PUB_BUSY };

struct pub_args {
    struct ctl *ctl;
    const char *seg;
    uint32_t n;
    enum pub_mode mode; /* CHURN: commit CHURN_CHANGES changed records per commit at full
                           speed; BUSY: burn CPU without touching the segment (control) */
    int cpu;
};

static void publisher_main(void *v)
{
    struct pub_args *a = v;
    struct ctl *c = a->ctl;
    struct procbus_pub_opts o;
    struct procbus_pub *p = NULL;
    struct procbus_proc *recs;
    uint64_t k = 0, commits = 0;
    uint32_t i;
    int rc;

    pin(a->cpu);
    memset(&o, 0, sizeof(o));
    o.segment = a->seg;
    o.capacity = a->n;
    recs = calloc(a->n, sizeof(*recs));
    if (recs == NULL)
        child_fail(c->pub_msg, sizeof(c->pub_msg), &c->pub_err, "calloc", -ENOMEM);
    rc = procbus_pub_open(&p, &o);
    if (rc < 0)
        child_fail(c->pub_msg, sizeof(c->pub_msg), &c->pub_err, "procbus_pub_open", rc);
    for (i = 0; i < a->n; i++) {
        fill_rec(&recs[i], i);
        recs[i].id = procbus_pub_new_id(p);
        rc = procbus_pub_upsert(p, &recs[i]);
        if (rc < 0)
            child_fail(c->pub_msg, sizeof(c->pub_msg), &c->pub_err, "procbus_pub_upsert", rc);
    }
    rc = procbus_pub_commit(p);
    if (rc < 0)
        child_fail(c->pub_msg, sizeof(c->pub_msg), &c->pub_err, "procbus_pub_commit", rc);
    procbus_pub_heartbeat(p);
    st(&c->pub_ready, 1);

    if (a->mode == PUB_BUSY) {
        uint64_t x = 1;
        wait_go(c);
        while (!__atomic_load_n(&c->stop, __ATOMIC_RELAXED)) {
            int j;
            for (j = 0; j < 4096; j++)
                x = x * 6364136223846793005ull + 1442695040888963407ull;
            escape(&x);
        }
        sink ^= x;
    } else if (a->mode == PUB_CHURN) {
        wait_go(c);
        while (!__atomic_load_n(&c->stop, __ATOMIC_RELAXED)) {
            int j;
            for (j = 0; j < CHURN_CHANGES; j++) {
                struct procbus_proc *r = &recs[(k * 7919u) % a->n];
                churn_rec(r, k++);
                rc = procbus_pub_upsert(p, r);
                if (rc < 0)
                    child_fail(c->pub_msg, sizeof(c->pub_msg), &c->pub_err,
                               "procbus_pub_upsert (churn)", rc);
            }
            rc = procbus_pub_commit(p);
            if (rc < 0)
                child_fail(c->pub_msg, sizeof(c->pub_msg), &c->pub_err,
                           "procbus_pub_commit (churn)", rc);
            __atomic_store_n(&c->pub_ops, ++commits, __ATOMIC_RELAXED);
        }
    } else {
        while (!ld(&c->stop))
            sleep_us(1000);
    }
    c->pub_forced_laps = procbus_pub_forced_laps(p);
    c->pub_commits = commits;
    procbus_pub_close(p, PROCBUS_PUB_UNLINK);
    free(recs);
}

/* ---- the lock baselines' writer: the publisher's changes, under the write lock ---- */

struct writer_args {
    struct ctl *ctl;
    struct flat *f;
    int mutex; /* 1: pthread_mutex; 0: pthread_rwlock (write lock) */
    int cpu;
};

static void writer_main(void *v)
{
    struct writer_args *a = v;
    struct ctl *c = a->ctl;
    struct procbus_proc *recs = flat_recs(a->f);
    uint64_t k = 0, ops = 0;

    pin(a->cpu);
    st(&c->pub_ready, 1);
    wait_go(c);
    while (!__atomic_load_n(&c->stop, __ATOMIC_RELAXED)) {
        int j, e = a->mutex ? pthread_mutex_lock(&a->f->mu) : pthread_rwlock_wrlock(&a->f->rw);
        if (e != 0)
            child_fail(c->pub_msg, sizeof(c->pub_msg), &c->pub_err, "write lock", e);
        for (j = 0; j < CHURN_CHANGES; j++) {
            churn_rec(&recs[(k * 7919u) % a->f->n], k);
            k++;
        }
        e = a->mutex ? pthread_mutex_unlock(&a->f->mu) : pthread_rwlock_unlock(&a->f->rw);
        if (e != 0)
            child_fail(c->pub_msg, sizeof(c->pub_msg), &c->pub_err, "write unlock", e);
        __atomic_store_n(&c->pub_ops, ++ops, __ATOMIC_RELAXED);
    }
    c->pub_commits = ops;
}

/* ---- the socket baseline: a query server and a writer feeding it updates ---- */

/* A reader asks with its pid (int32); the server answers with the state (int32, -1: none).
 * The writer sends SOCK_UPDATE messages, CHURN_CHANGES per write, as a commit would. */
struct sock_update {
    int32_t pid, k;
};
#define SOCK_WRITER_CHUNK 256 /* bytes of updates the server takes per poll round */

/* Every socket-pair end of the run (the parent's list): each child closes all but its own, so a
 * reader that exits is an end of file at the server. */
static int sock_ends[2 * (NREADERS + 1)];
static int nsock_ends;

static void close_ends_but(const int *keep, int nkeep)
{
    int i, j;

    for (i = 0; i < nsock_ends; i++) {
        for (j = 0; j < nkeep && keep[j] != sock_ends[i]; j++)
            ;
        if (j == nkeep)
            close(sock_ends[i]);
    }
}

struct server_args {
    struct ctl *ctl;
    int fds[NREADERS]; /* the server's ends of the readers' socket pairs */
    int nfds;
    int wfd; /* the writer's socket pair end, or -1 */
    uint32_t n;
    int cpu;
};

static void server_main(void *v)
{
    struct server_args *a = v;
    struct ctl *c = a->ctl;
    uint32_t buckets;
    struct flat *f = calloc(1, flat_size(a->n, &buckets));
    struct pollfd pfd[NREADERS + 1];
    unsigned char wbuf[SOCK_WRITER_CHUNK + sizeof(struct sock_update)];
    size_t wlen = 0;
    int i, open = a->nfds, np = a->nfds + (a->wfd >= 0);

    int keep[NREADERS + 1];

    for (i = 0; i < a->nfds; i++)
        keep[i] = a->fds[i];
    keep[a->nfds] = a->wfd;
    close_ends_but(keep, a->nfds + 1);
    pin(a->cpu);
    if (f == NULL || flat_build(f, a->n, 0) < 0)
        child_fail(c->pub_msg, sizeof(c->pub_msg), &c->pub_err, "server table", -ENOMEM);
    for (i = 0; i < a->nfds; i++)
        pfd[i] = (struct pollfd){a->fds[i], POLLIN, 0};
    if (a->wfd >= 0)
        pfd[a->nfds] = (struct pollfd){a->wfd, POLLIN, 0};
    st(&c->pub_ready, 1);
    while (open > 0) {
        int rc = poll(pfd, (nfds_t)np, 100);
        if (rc < 0 && errno != EINTR)
            break;
        if (rc <= 0) {
            if (__atomic_load_n(&c->stop, __ATOMIC_RELAXED))
                break; /* a reader that failed may have left its end open */
            continue;
        }
        for (i = 0; i < a->nfds; i++) {
            int32_t pid, ans;
            int k;
            if (pfd[i].fd < 0 || !(pfd[i].revents & (POLLIN | POLLHUP | POLLERR)))
                continue;
            if (pb_read_all(pfd[i].fd, &pid, sizeof(pid)) != 0) {
                close(pfd[i].fd);
                pfd[i].fd = -1;
                open--;
                continue;
            }
            k = flat_find(f, pid);
            ans = k >= 0 ? (int32_t)flat_recs(f)[k].state : -1;
            if (pb_write_all(pfd[i].fd, &ans, sizeof(ans)) < 0) {
                close(pfd[i].fd);
                pfd[i].fd = -1;
                open--;
            }
        }
        if (a->wfd >= 0 && (pfd[a->nfds].revents & POLLIN)) {
            ssize_t got = read(a->wfd, wbuf + wlen, SOCK_WRITER_CHUNK);
            size_t j, whole;
            if (got <= 0) {
                pfd[a->nfds].fd = -1;
                continue;
            }
            wlen += (size_t)got;
            whole = wlen / sizeof(struct sock_update) * sizeof(struct sock_update);
            for (j = 0; j < whole; j += sizeof(struct sock_update)) {
                struct sock_update u;
                int k;
                memcpy(&u, wbuf + j, sizeof(u));
                if ((k = flat_find(f, u.pid)) >= 0)
                    churn_rec(&flat_recs(f)[k], (uint64_t)u.k);
            }
            memmove(wbuf, wbuf + whole, wlen - whole);
            wlen -= whole;
        }
    }
    free(f);
}

struct sock_writer_args {
    struct ctl *ctl;
    int fd;
    uint32_t n;
    int cpu;
};

static void sock_writer_main(void *v)
{
    struct sock_writer_args *a = v;
    struct ctl *c = a->ctl;
    struct sock_update u[CHURN_CHANGES];
    uint64_t k = 0, ops = 0;

    close_ends_but(&a->fd, 1);
    pin(a->cpu);
    st(&c->pub_ready, 1);
    wait_go(c);
    while (!__atomic_load_n(&c->stop, __ATOMIC_RELAXED)) {
        int j;
        for (j = 0; j < CHURN_CHANGES; j++, k++)
            u[j] = (struct sock_update){pid_of((uint32_t)((k * 7919u) % a->n)), (int32_t)k};
        if (pb_write_all(a->fd, u, sizeof(u)) < 0)
            break; /* the server has gone */
        __atomic_store_n(&c->pub_ops, ++ops, __ATOMIC_RELAXED);
    }
    close(a->fd);
    c->pub_commits = ops;
}

/* ---- the floor's writer: one cache line rewritten under the seqlock at full speed ---- */

struct floor_args {
    struct ctl *ctl;
    struct floor_line *line;
    int cpu;
};

static void floor_writer_main(void *v)
{
    struct floor_args *a = v;
    struct ctl *c = a->ctl;
    uint64_t k = 0;

    pin(a->cpu);
    st(&c->pub_ready, 1);
    wait_go(c);
    while (!__atomic_load_n(&c->stop, __ATOMIC_RELAXED)) {
        floor_write(a->line, ++k);
        __atomic_store_n(&c->pub_ops, k, __ATOMIC_RELAXED);
    }
    c->pub_commits = k;
}

/* ---- commits: one changed record per commit, no readers ---- */

struct commit_args {
    struct ctl *ctl;
    const char *seg;
    uint32_t n;
    int cpu;
    unsigned warm, batches, ops;
};

static void commit_main(void *v)
{
    struct commit_args *a = v;
    struct ctl *c = a->ctl;
    struct stat_out *res = &c->res[0];
    struct procbus_pub_opts o;
    struct procbus_pub *p = NULL;
    struct procbus_proc *recs = calloc(a->n, sizeof(*recs));
    uint64_t k = 0;
    uint32_t i;
    unsigned b, j;
    int rc;

    pin(a->cpu);
    if (recs == NULL || a->batches > MAX_BATCHES)
        child_fail(res->msg, sizeof(res->msg), &res->err, "calloc", -ENOMEM);
    memset(&o, 0, sizeof(o));
    o.segment = a->seg;
    o.capacity = a->n;
    rc = procbus_pub_open(&p, &o);
    if (rc < 0)
        child_fail(res->msg, sizeof(res->msg), &res->err, "procbus_pub_open", rc);
    for (i = 0; i < a->n; i++) {
        fill_rec(&recs[i], i);
        recs[i].id = procbus_pub_new_id(p);
        if ((rc = procbus_pub_upsert(p, &recs[i])) < 0)
            child_fail(res->msg, sizeof(res->msg), &res->err, "procbus_pub_upsert", rc);
    }
    if ((rc = procbus_pub_commit(p)) < 0)
        child_fail(res->msg, sizeof(res->msg), &res->err, "procbus_pub_commit", rc);

    for (b = 0; b < a->warm + a->batches; b++) {
        double t0 = (double)mono(), t1;
        for (j = 0; j < a->ops; j++) {
            struct procbus_proc *r = &recs[(k * 7919u) % a->n];
            churn_rec(r, k++);
            rc = procbus_pub_upsert(p, r);
            if (rc == 0)
                rc = procbus_pub_commit(p);
            if (rc < 0)
                child_fail(res->msg, sizeof(res->msg), &res->err, "upsert/commit", rc);
        }
        t1 = (double)mono();
        if (b >= a->warm)
            c->samples[0][b - a->warm] = (t1 - t0) / a->ops;
    }
    res->ops = (uint64_t)a->batches * a->ops;
    res->batches = a->batches;
    c->pub_forced_laps = procbus_pub_forced_laps(p);
    procbus_pub_close(p, PROCBUS_PUB_UNLINK);
    free(recs);
    res->done = 1;
}

#endif /* PBB_SIDES_H */
