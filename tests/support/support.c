/* support.c - helpers shared by the cmocka tests: unique segment names, records, children,
 * whole files. */
#define _GNU_SOURCE
#include "support.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "procbus.h"
#include "procbus_pub.h"

const char *pbt_name(char buf[64])
{
    static unsigned n;
    snprintf(buf, 64, "pbt-%d-%u", (int)getpid(), n++);
    return buf;
}

const char *pbt_path(const char *name, char buf[128])
{
    if (procbus_segment_path(name, buf, 128) < 0)
        buf[0] = '\0';
    return buf;
}

void pbt_unlink(const char *name)
{
    char path[128];
    unlink(pbt_path(name, path));
}

void pbt_fill(struct procbus_proc *r, uint64_t id, int32_t pid, const char *name, uint16_t state)
{
    memset(r, 0, sizeof(*r));
    r->id = id;
    r->pid = pid;
    r->ppid = 1;
    r->pgid = pid;
    r->state = state;
    r->start_realtime_ns = 1700000000000000000ull + id;
    r->start_boot_ns = 1000 + id;
    r->state_since_ns = r->start_realtime_ns;
    snprintf(r->name, sizeof(r->name), "%s", name);
    snprintf(r->comm, sizeof(r->comm), "%.15s", name);
    r->cmdline_len = (uint32_t)snprintf(r->cmdline, sizeof(r->cmdline), "/bin/%s", name) + 1;
}

struct procbus_pub *pbt_pub(const char *name, uint32_t capacity, uint32_t slots)
{
    struct procbus_pub_opts o = {0};
    struct procbus_pub *p = NULL;
    int rc;

    o.segment = name;
    o.capacity = capacity;
    o.snap_slots = slots;
    rc = procbus_pub_open(&p, &o);
    if (rc < 0) {
        fprintf(stderr, "procbus_pub_open(%s): %s\n", name, strerror(-rc));
        return NULL;
    }
    return p;
}

int pbt_wait_child(pid_t pid)
{
    int st;
    while (waitpid(pid, &st, 0) < 0)
        ;
    if (WIFEXITED(st))
        return WEXITSTATUS(st);
    return 128 + WTERMSIG(st);
}

/* /proc/PID/stat: the state letter (0 if gone); if asked, the parent and the start in ticks. */
char pbt_proc_stat(pid_t pid, pid_t *ppid, unsigned long long *start)
{
    char path[64], buf[1024], *p;
    unsigned long long v = 0;
    FILE *f;
    int i;

    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    f = fopen(path, "r");
    if (f == NULL)
        return 0;
    p = fgets(buf, sizeof(buf), f);
    fclose(f);
    p = p ? strrchr(buf, ')') : NULL;
    if (p == NULL || p[1] == '\0')
        return 0;
    if (ppid != NULL && sscanf(p + 2, "%*c %d", ppid) != 1)
        *ppid = 0;
    if (start) { /* field 22; p + 2 is field 3 */
        char *q = p + 2;
        for (i = 3; i < 22 && q != NULL; i++) {
            q = strchr(q, ' ');
            if (q)
                q++;
        }
        if (q)
            v = strtoull(q, NULL, 10);
        *start = v;
    }
    return p[2];
}

int pbt_scan_pids(int (*match)(pid_t pid, void *arg), void *arg, pid_t *out, int max)
{
    DIR *d = opendir("/proc");
    struct dirent *e;
    int n = 0;

    while (d != NULL && n < max && (e = readdir(d)) != NULL) {
        pid_t pid = (pid_t)atoi(e->d_name);
        if (pid > 0 && match(pid, arg))
            out[n++] = pid;
    }
    if (d != NULL)
        closedir(d);
    return n;
}

char *pbt_slurp(const char *path, size_t *len)
{
    size_t n = 0, cap = 4096;
    char *buf = malloc(cap);
    int fd = open(path, O_RDONLY | O_CLOEXEC), err;

    if (fd < 0 || buf == NULL)
        goto fail;
    for (;;) {
        ssize_t r;
        if (n + 1 >= cap) {
            char *bigger = realloc(buf, cap * 2);
            if (bigger == NULL)
                goto fail;
            buf = bigger;
            cap *= 2;
        }
        r = read(fd, buf + n, cap - 1 - n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            goto fail;
        if (r == 0)
            break;
        n += (size_t)r;
    }
    close(fd);
    buf[n] = '\0';
    if (len != NULL)
        *len = n;
    return buf;
fail:
    err = errno;
    if (fd >= 0)
        close(fd);
    free(buf);
    errno = err;
    return NULL;
}

char *pbt_proc_comm(pid_t pid, char *buf, size_t len)
{
    char path[64], *s;

    if (pid == 0)
        snprintf(path, sizeof(path), "/proc/self/comm");
    else
        snprintf(path, sizeof(path), "/proc/%d/comm", (int)pid);
    buf[0] = '\0';
    s = pbt_slurp(path, NULL);
    if (s == NULL)
        return NULL;
    snprintf(buf, len, "%.*s", (int)strcspn(s, "\n"), s);
    free(s);
    return buf;
}

double pbt_scale(void)
{
    const char *s = getenv("PROCBUS_TEST_SCALE");
    if (s != NULL && strcmp(s, "asan") == 0)
        return 0.25;
    return s != NULL && atof(s) > 0 ? atof(s) : 1.0;
}
