/* config_check.c - checks across programs: unique names, dependencies, capacity, users. */
#define _GNU_SOURCE
#include "config_int.h"

#include <errno.h>
#include <stdint.h>
#include <unistd.h>

#include "userdb.h"

struct name_ix {
    const char *name;
    size_t i;
};

static int cmp_name_ix(const void *a, const void *b)
{
    const struct name_ix *x = a, *y = b;
    int c = strcmp(x->name, y->name);
    if (c)
        return c;
    return x->i < y->i ? -1 : x->i > y->i;
}

static int check_names(struct loader *L, const struct pbd_config *cfg, const struct pmeta *meta,
                       struct name_ix *ix)
{
    size_t dup = SIZE_MAX, orig = 0;
    for (size_t i = 0; i < cfg->n_progs; i++)
        ix[i] = (struct name_ix){cfg->progs[i].name, i};
    qsort(ix, cfg->n_progs, sizeof(*ix), cmp_name_ix);
    for (size_t i = 1; i < cfg->n_progs; i++) {
        if (!strcmp(ix[i].name, ix[i - 1].name) && (i < 2 || strcmp(ix[i].name, ix[i - 2].name)) &&
            ix[i].i < dup) {
            dup = ix[i].i; /* the second definition of a name; the earliest such */
            orig = ix[i - 1].i;
        }
    }
    if (dup != SIZE_MAX) {
        const struct pbd_program *a = &cfg->progs[orig], *b = &cfg->progs[dup];
        const struct section *S = &L->secs[meta[dup].sec];
        struct loc at = {b->source_file, meta[dup].name_line, S->name, "process_name"};
        return pbd_cfg_fail(L, -EINVAL, &at,
                            "duplicate process name '%s' (also made by [program:%s] at %s:%d)",
                            b->name, a->program, a->source_file, a->source_line);
    }
    return 0;
}

static const struct name_ix *find_ix(const struct name_ix *ix, size_t n, const char *name)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(ix[mid].name, name);
        if (c == 0)
            return &ix[mid];
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

/*
 * Every dependency names a known instance or program; "ready" targets have
 * readiness configured; the graph has no cycle. ix is sorted by name.
 */
static int check_deps(struct loader *L, const struct pbd_config *cfg, const struct pmeta *meta,
                      const struct name_ix *ix)
{
    size_t n = cfg->n_progs, n_edges = 0, e = 0, top;
    size_t *start = NULL, *adj = NULL, *stk = NULL, *pos = NULL;
    unsigned char *color = NULL;
    int r = 0;

    /* pass 1: resolve and count; pass 2: fill the adjacency (CSR) */
    start = calloc(n + 1, sizeof(*start));
    if (!start)
        return pbd_cfg_oom(L);
    for (int pass = 0; pass < 2 && !r; pass++) {
        if (pass == 1) {
            adj = calloc(n_edges + 1, sizeof(*adj));
            if (!adj) {
                r = pbd_cfg_oom(L);
                break;
            }
        }
        e = 0;
        for (size_t i = 0; i < n && !r; i++) {
            const struct pbd_program *p = &cfg->progs[i];
            start[i] = e;
            for (int d = 0; d < p->n_deps && !r; d++) {
                const struct pbd_dep *dep = &p->deps[d];
                const struct name_ix *hit = find_ix(ix, n, dep->name);
                size_t lo = hit ? hit->i : 0, hi = hit ? hit->i + 1 : n, found = 0;
                for (size_t j = lo; j < hi; j++) {
                    const struct pbd_program *t = &cfg->progs[j];
                    if (!hit && strcmp(t->group, dep->name) && strcmp(t->program, dep->name))
                        continue;
                    found++;
                    if (pass == 0 && dep->cond == PBD_DEP_READY && t->ready_fd < 0 &&
                        !t->ready_log) {
                        struct loc at = {p->source_file, meta[i].dep_line,
                                         L->secs[meta[i].sec].name, "depends_on"};
                        r = pbd_cfg_fail(
                            L, -EINVAL, &at,
                            "'%s:ready' but %s has neither ready_fd nor ready_log, so it "
                            "never becomes ready",
                            dep->name, t->name);
                        break;
                    }
                    if (pass == 1)
                        adj[e] = j;
                    e++;
                }
                if (!found && !r) {
                    struct loc at = {p->source_file, meta[i].dep_line, L->secs[meta[i].sec].name,
                                     "depends_on"};
                    r = pbd_cfg_fail(L, -EINVAL, &at, "unknown program '%s'", dep->name);
                }
            }
        }
        start[n] = e;
        n_edges = e;
    }
    if (r)
        goto out;

    /* iterative DFS; a grey target is a cycle */
    color = calloc(n ? n : 1, 1);
    stk = calloc(n ? n : 1, sizeof(*stk));
    pos = calloc(n ? n : 1, sizeof(*pos));
    if (!color || !stk || !pos) {
        r = pbd_cfg_oom(L);
        goto out;
    }
    for (size_t s = 0; s < n && !r; s++) {
        if (color[s])
            continue;
        top = 0;
        stk[top] = s;
        pos[top] = start[s];
        color[s] = 1;
        for (;;) {
            size_t u = stk[top];
            if (pos[top] < start[u + 1]) {
                size_t v = adj[pos[top]++];
                if (color[v] == 1) {
                    struct sbuf b = {0};
                    size_t k = 0;
                    struct loc at = {cfg->progs[v].source_file, meta[v].dep_line,
                                     L->secs[meta[v].sec].name, "depends_on"};
                    while (stk[k] != v)
                        k++;
                    for (; k <= top; k++) {
                        sb_add(&b, cfg->progs[stk[k]].name);
                        sb_add(&b, " -> ");
                    }
                    sb_add(&b, cfg->progs[v].name);
                    if (b.oom) {
                        free(sb_take(&b));
                        r = pbd_cfg_oom(L);
                    } else {
                        r = pbd_cfg_fail(L, -EINVAL, &at, "dependency cycle: %s", b.p);
                        free(sb_take(&b));
                    }
                    break;
                }
                if (color[v] == 0) {
                    color[v] = 1;
                    stk[++top] = v;
                    pos[top] = start[v];
                }
            } else {
                color[u] = 2;
                if (top == 0)
                    break;
                top--;
            }
        }
    }
out:
    free(start);
    free(adj);
    free(color);
    free(stk);
    free(pos);
    return r;
}

/* Where [procbusd] capacity is set (its line), else the main file. */
static struct loc capacity_loc(const struct loader *L)
{
    struct loc at = {L->n_files ? L->files[0].path : "?", 0, "procbusd", "capacity"};
    for (size_t si = 0; si < L->n_secs; si++) {
        const struct section *S = &L->secs[si];
        if (strcmp(S->name, "procbusd"))
            continue;
        for (size_t k = 0; k < S->n_kv; k++) {
            if (!strcmp(S->kv[k].key, "capacity")) {
                at.file = L->files[S->file].path;
                at.line = S->kv[k].line;
            }
        }
    }
    return at;
}

/*
 * Every program instance needs a record of its own in the segment, which holds
 * `capacity` records: more instances than that is an error (they would run
 * unseen); with tracing, descendants need records too, so less headroom than
 * one record per instance is worth a warning.
 */
static int check_capacity(struct loader *L, const struct pbd_config *cfg)
{
    uint64_t cap = cfg->daemon.capacity, n = cfg->n_progs;
    struct loc at;

    if (n <= cap && (cfg->daemon.trace == PBD_TRACE_OFF || 2 * n <= cap))
        return 0;
    at = capacity_loc(L);
    if (n > cap)
        return pbd_cfg_fail(L, -EINVAL, &at,
                            "%llu program instances need %llu records, but capacity is %llu: "
                            "raise [procbusd] capacity (each instance needs one record, each "
                            "traced descendant one more)",
                            (unsigned long long)n, (unsigned long long)n, (unsigned long long)cap);
    pbd_cfg_warn(L, &at,
                 "%llu leaves room for %llu traced descendants of %llu program instances: "
                 "descendants beyond that are not published (raise [procbusd] capacity)",
                 (unsigned long long)cap, (unsigned long long)(cap - n), (unsigned long long)n);
    return 0;
}

int pbd_config_check_runner(const struct pbd_config *cfg, uid_t euid, char *err, size_t errlen)
{
    for (size_t i = 0; i < cfg->n_progs; i++) {
        const struct pbd_program *p = &cfg->progs[i];
        struct pbd_user u;
        int rc;
        if (p->user == NULL)
            continue;
        rc = pbd_user_lookup(p->user, &u);
        if (rc < 0) {
            snprintf(err, errlen, "%s:%d: [program:%s] user: '%s': %s", p->source_file,
                     p->source_line, p->program, p->user,
                     rc == -ENOENT ? "no such user" : strerror(-rc));
            return -EINVAL;
        }
        if (euid != 0 && u.uid != euid) {
            snprintf(err, errlen,
                     "%s:%d: [program:%s] user: procbusd runs as uid %u, not root, so it cannot "
                     "run programs as '%s' (uid %u): remove the key, or run procbusd as root",
                     p->source_file, p->source_line, p->program, (unsigned)euid, p->user,
                     (unsigned)u.uid);
            return -EPERM;
        }
    }
    return 0;
}

int pbd_cfg_check_programs(struct loader *L, const struct pbd_config *cfg, const struct pmeta *meta)
{
    struct name_ix *ix;
    int r = check_capacity(L, cfg);
    if (r || !cfg->n_progs)
        return r;
    ix = calloc(cfg->n_progs, sizeof(*ix));
    if (!ix)
        return pbd_cfg_oom(L);
    r = check_names(L, cfg, meta, ix);
    if (!r)
        r = check_deps(L, cfg, meta, ix);
    free(ix);
    return r;
}
