/* segment.c - procbusd's upkeep of its segment: the stated heartbeat period, keeping its name. */
#define _GNU_SOURCE
#include <errno.h>
#include <string.h>

#include "daemon_int.h"
#include "procbus.h"
#include "procbus_pub.h"

void pbd_segment_tick(struct pbd_daemon *d)
{
    int rc;

    procbus_pub_set_heartbeat_interval(d->pub, (uint64_t)d->cfg.daemon.heartbeat_ms * 1000000ull);
    rc = procbus_pub_keep_name(d->pub);
    if (rc == 1) {
        pbd_say(d, PBD_L_WARN,
                "segment %s was removed behind procbusd (rm, a tmp cleaner, or systemd-logind's "
                "RemoveIPC= for a non-root user); re-created it (epoch %llu)",
                procbus_pub_path(d->pub), (unsigned long long)procbus_pub_epoch(d->pub));
        rc = 0;
    }
    if (rc == d->seg_name_state)
        return;
    d->seg_name_state = rc;
    if (rc == 0)
        pbd_say(d, PBD_L_INFO, "segment %s is at its name again", procbus_pub_path(d->pub));
    else if (rc == -EBUSY)
        pbd_say(d, PBD_L_ERR,
                "segment %s: the name was removed and another publisher now holds it; readers "
                "see that one, not this procbusd (stop one of the two)",
                procbus_pub_path(d->pub));
    else
        pbd_say(d, PBD_L_ERR, "segment %s was removed and cannot be re-created: %s",
                procbus_pub_path(d->pub), procbus_strerror(rc));
}
