/* pubcall.c - procbusd's fallible calls into the publisher library, each failure logged once. */
#include "pubcall.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "diag.h"
#include "procbus_pub.h"

/* How a log line names a record: its name, else its pid, else its id. */
static const char *who(const struct procbus_proc *rec, char *buf, size_t len)
{
    if (rec->name[0] != '\0')
        snprintf(buf, len, "%.*s", (int)sizeof(rec->name), rec->name);
    else if (rec->pid != 0)
        snprintf(buf, len, "pid %d", (int)rec->pid);
    else
        snprintf(buf, len, "record %llu", (unsigned long long)rec->id);
    return buf;
}

int pbd_pub_commit(struct procbus_pub *pub)
{
    int rc = procbus_pub_commit(pub);

    if (rc < 0)
        pbd_diag(PBD_L_ERR, "commit failed, readers still see the previous snapshot: %s",
                 strerror(-rc));
    return rc;
}

int pbd_pub_upsert(struct procbus_pub *pub, const struct procbus_proc *rec, unsigned flags)
{
    int rc = procbus_pub_upsert(pub, rec);
    char name[PROCBUS_NAME_LEN + 32];

    if (rc < 0 && !(rc == -ENOSPC && (flags & PBD_PUB_QUIET_FULL)))
        pbd_diag(PBD_L_ERR, "%s: cannot publish: %s", who(rec, name, sizeof(name)), strerror(-rc));
    return rc;
}

int pbd_pub_remove(struct procbus_pub *pub, uint64_t id)
{
    int rc = procbus_pub_remove(pub, id);

    if (rc < 0)
        pbd_diag(PBD_L_ERR, "record %llu: cannot remove: %s", (unsigned long long)id,
                 strerror(-rc));
    return rc;
}

int pbd_pub_event(struct procbus_pub *pub, uint16_t kind, const struct procbus_proc *rec)
{
    int rc = procbus_pub_event(pub, kind, rec);
    char name[PROCBUS_NAME_LEN + 32];

    if (rc < 0)
        pbd_diag(PBD_L_ERR, "%s: cannot stage event %u: %s", who(rec, name, sizeof(name)),
                 (unsigned)kind, strerror(-rc));
    return rc;
}
