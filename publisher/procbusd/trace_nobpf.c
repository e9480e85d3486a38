/* trace_nobpf.c - the eBPF feed's stand-in when built without the tracer: "not built with it". */
#include <errno.h>
#include <stdio.h>

#include "trace_int.h"

int pbd_ebpf_open(struct pbd_tracing *t, char *why, size_t whylen)
{
    (void)t;
    if (why != NULL && whylen > 0)
        snprintf(why, whylen, "this build has no eBPF tracer (no kernel BTF when it was built)");
    return -ENOTSUP;
}

int pbd_ebpf_fd(const struct pbd_tracing *t)
{
    (void)t;
    return -1;
}

int pbd_ebpf_consume(struct pbd_tracing *t)
{
    (void)t;
    return 0;
}

void pbd_ebpf_track(struct pbd_tracing *t, pid_t pid, uint64_t program_id)
{
    (void)t;
    (void)pid;
    (void)program_id;
}

uint64_t pbd_ebpf_tag(const struct pbd_tracing *t, pid_t pid)
{
    (void)t;
    (void)pid;
    return 0;
}

void pbd_ebpf_spawn_tag(struct pbd_tracing *t, uint64_t program_id)
{
    (void)t;
    (void)program_id;
}

int pbd_trace_pin_fs(const char *dir, char *why, size_t whylen)
{
    (void)dir;
    if (why != NULL && whylen > 0)
        snprintf(why, whylen, "this build has no eBPF tracer");
    return -ENOTSUP;
}

int pbd_trace_pin_remove(const char *dir)
{
    (void)dir;
    return -ENOTSUP;
}

int pbd_ebpf_release(struct pbd_tracing *t)
{
    (void)t;
    return 0;
}

int pbd_ebpf_reused(const struct pbd_tracing *t)
{
    (void)t;
    return 0;
}

int pbd_ebpf_pinned(const struct pbd_tracing *t)
{
    (void)t;
    return 0;
}

void pbd_ebpf_unpin(struct pbd_tracing *t)
{
    (void)t;
}

void pbd_ebpf_close(struct pbd_tracing *t)
{
    (void)t;
}
