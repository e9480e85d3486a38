/* registry.c - the supervisor's in-process registry: liburcu cds_lfht lookups by id, pid, name. */
#define _GNU_SOURCE
#include "registry.h"

#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <urcu/urcu-memb.h>
#include <urcu/rculfhash.h>

struct reg_node {
    struct cds_lfht_node by_id, by_pid, by_name;
    struct rcu_head rcu;
    struct reg_node *next_spare; /* in procbus_registry.spare, before it is added */
    uint32_t name_hash;
    struct procbus_proc rec; /* immutable once added */
};

struct procbus_registry {
    struct cds_lfht *by_id, *by_pid, *by_name;
    size_t count;           /* writer-maintained */
    struct reg_node *spare; /* nodes procbus_registry_reserve set aside (writer only) */
    size_t nspare;
};

static __thread int thread_online;

int procbus_registry_thread_online(void)
{
    if (thread_online)
        return 0;
    urcu_memb_register_thread();
    thread_online = 1;
    return 1;
}

void procbus_registry_thread_offline(void)
{
    if (!thread_online)
        return;
    urcu_memb_unregister_thread();
    thread_online = 0;
}

static unsigned long mix64(uint64_t v)
{
    v ^= v >> 33;
    v *= 0xff51afd7ed558ccdULL;
    v ^= v >> 33;
    return (unsigned long)v;
}

static int match_id(struct cds_lfht_node *n, const void *key)
{
    return caa_container_of(n, struct reg_node, by_id)->rec.id == *(const uint64_t *)key;
}

static int match_pid(struct cds_lfht_node *n, const void *key)
{
    return caa_container_of(n, struct reg_node, by_pid)->rec.pid == *(const int32_t *)key;
}

static int match_name(struct cds_lfht_node *n, const void *key)
{
    return strncmp(caa_container_of(n, struct reg_node, by_name)->rec.name, (const char *)key,
                   PROCBUS_NAME_LEN) == 0;
}

int procbus_registry_new(struct procbus_registry **out)
{
    struct procbus_registry *reg = calloc(1, sizeof(*reg));
    const int flags = CDS_LFHT_AUTO_RESIZE | CDS_LFHT_ACCOUNTING;

    if (reg == NULL)
        return -ENOMEM;
    reg->by_id = cds_lfht_new_flavor(64, 64, 0, flags, &urcu_memb_flavor, NULL);
    reg->by_pid = cds_lfht_new_flavor(64, 64, 0, flags, &urcu_memb_flavor, NULL);
    reg->by_name = cds_lfht_new_flavor(64, 64, 0, flags, &urcu_memb_flavor, NULL);
    if (!reg->by_id || !reg->by_pid || !reg->by_name) {
        procbus_registry_free(reg);
        return -ENOMEM;
    }
    *out = reg;
    return 0;
}

static void free_node(struct rcu_head *head)
{
    free(caa_container_of(head, struct reg_node, rcu));
}

/* Unlink a node from all three tables and free it after a grace period. */
static void unlink_node(struct procbus_registry *reg, struct reg_node *n)
{
    cds_lfht_del(reg->by_id, &n->by_id);
    if (n->rec.pid > 0)
        cds_lfht_del(reg->by_pid, &n->by_pid);
    if (n->rec.name[0] != '\0')
        cds_lfht_del(reg->by_name, &n->by_name);
    urcu_memb_call_rcu(&n->rcu, free_node);
}

void procbus_registry_free(struct procbus_registry *reg)
{
    struct cds_lfht_iter it;
    struct cds_lfht_node *node;
    struct reg_node *n;
    int online;

    if (reg == NULL)
        return;
    if (reg->by_id != NULL) {
        online = procbus_registry_thread_online();
        urcu_memb_read_lock();
        cds_lfht_first(reg->by_id, &it);
        while ((node = cds_lfht_iter_get_node(&it)) != NULL) {
            n = caa_container_of(node, struct reg_node, by_id);
            cds_lfht_next(reg->by_id, &it);
            unlink_node(reg, n);
        }
        urcu_memb_read_unlock();
        if (online)
            procbus_registry_thread_offline();
        urcu_memb_barrier(); /* every free_node has run */
    }
    while (reg->spare != NULL) {
        struct reg_node *s = reg->spare;
        reg->spare = s->next_spare;
        free(s);
    }
    if (reg->by_id)
        cds_lfht_destroy(reg->by_id, NULL);
    if (reg->by_pid)
        cds_lfht_destroy(reg->by_pid, NULL);
    if (reg->by_name)
        cds_lfht_destroy(reg->by_name, NULL);
    free(reg);
}

static struct reg_node *find_id(struct procbus_registry *reg, uint64_t id)
{
    struct cds_lfht_iter it;
    struct cds_lfht_node *n;

    cds_lfht_lookup(reg->by_id, mix64(id), match_id, &id, &it);
    n = cds_lfht_iter_get_node(&it);
    return n ? caa_container_of(n, struct reg_node, by_id) : NULL;
}

int procbus_registry_reserve(struct procbus_registry *reg, size_t n)
{
    while (reg->nspare < n) {
        struct reg_node *s = malloc(sizeof(*s));
        if (s == NULL)
            return -ENOMEM; /* the nodes set aside so far stay for the next call */
        s->next_spare = reg->spare;
        reg->spare = s;
        reg->nspare++;
    }
    return 0;
}

int procbus_registry_put(struct procbus_registry *reg, const struct procbus_proc *rec)
{
    struct reg_node *n, *old;

    if (reg->spare != NULL) {
        n = reg->spare;
        reg->spare = n->next_spare;
        reg->nspare--;
    } else {
        n = malloc(sizeof(*n));
        if (n == NULL)
            return -ENOMEM;
    }
    memset(n, 0, sizeof(*n));
    n->rec = *rec;
    n->name_hash = procbus_name_hash(rec->name, PROCBUS_NAME_LEN);
    cds_lfht_node_init(&n->by_id);
    cds_lfht_node_init(&n->by_pid);
    cds_lfht_node_init(&n->by_name);
    urcu_memb_read_lock();
    old = find_id(reg, rec->id);
    /* add the new version first: a lookup never misses a record that exists */
    cds_lfht_add(reg->by_id, mix64(rec->id), &n->by_id);
    if (rec->pid > 0)
        cds_lfht_add(reg->by_pid, mix64((uint64_t)(uint32_t)rec->pid), &n->by_pid);
    if (rec->name[0] != '\0')
        cds_lfht_add(reg->by_name, n->name_hash, &n->by_name);
    if (old != NULL)
        unlink_node(reg, old);
    else
        __atomic_fetch_add(&reg->count, 1, __ATOMIC_RELAXED);
    urcu_memb_read_unlock();
    return 0;
}

int procbus_registry_del(struct procbus_registry *reg, uint64_t id)
{
    struct reg_node *old;

    urcu_memb_read_lock();
    old = find_id(reg, id);
    if (old != NULL) {
        unlink_node(reg, old);
        __atomic_fetch_sub(&reg->count, 1, __ATOMIC_RELAXED);
    }
    urcu_memb_read_unlock();
    return old ? 0 : -ENOENT;
}

static int better(const struct procbus_proc *a, const struct procbus_proc *b)
{
    if (a->start_boot_ns != b->start_boot_ns)
        return a->start_boot_ns > b->start_boot_ns;
    return a->id > b->id;
}

int procbus_registry_get_id(struct procbus_registry *reg, uint64_t id, struct procbus_proc *out)
{
    struct reg_node *n;

    urcu_memb_read_lock();
    n = find_id(reg, id);
    if (n != NULL)
        *out = n->rec;
    urcu_memb_read_unlock();
    return n ? 0 : -ENOENT;
}

/*
 * The best of the nodes matching `key` in `ht`, whose node member sits at
 * `member` bytes into struct reg_node. Explicit loop: liburcu's for_each
 * macros apply container_of to NULL when they end (UBSan flags it).
 */
static struct reg_node *best_match(struct cds_lfht *ht, unsigned long hash,
                                   cds_lfht_match_fct match, const void *key, size_t member)
{
    struct cds_lfht_iter it;
    struct cds_lfht_node *node;
    struct reg_node *best = NULL;

    cds_lfht_lookup(ht, hash, match, key, &it);
    while ((node = cds_lfht_iter_get_node(&it)) != NULL) {
        struct reg_node *n = (struct reg_node *)(void *)((char *)node - member);
        if (best == NULL || better(&n->rec, &best->rec))
            best = n;
        cds_lfht_next_duplicate(ht, match, key, &it);
    }
    return best;
}

int procbus_registry_get_pid(struct procbus_registry *reg, int32_t pid, struct procbus_proc *out)
{
    struct reg_node *best;

    urcu_memb_read_lock();
    best = best_match(reg->by_pid, mix64((uint64_t)(uint32_t)pid), match_pid, &pid,
                      offsetof(struct reg_node, by_pid));
    if (best != NULL)
        *out = best->rec;
    urcu_memb_read_unlock();
    return best ? 0 : -ENOENT;
}

int procbus_registry_get_name(struct procbus_registry *reg, const char *name,
                              struct procbus_proc *out)
{
    struct reg_node *best;

    urcu_memb_read_lock();
    best = best_match(reg->by_name, procbus_name_hash(name, PROCBUS_NAME_LEN), match_name, name,
                      offsetof(struct reg_node, by_name));
    if (best != NULL)
        *out = best->rec;
    urcu_memb_read_unlock();
    return best ? 0 : -ENOENT;
}

size_t procbus_registry_count(struct procbus_registry *reg)
{
    return __atomic_load_n(&reg->count, __ATOMIC_RELAXED);
}
