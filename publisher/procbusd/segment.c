/* segment.c - procbusd's upkeep of its segment: the stated heartbeat period, keeping its name. */
#define _GNU_SOURCE
#include <errno.h>
#include <string.h>

#include "daemon_int.h"
#include "procbus.h"
#include "procbus_pub.h"

/* The control socket removed behind procbusd (a tmp cleaner): listen at its path again. */
static void keep_socket(struct pbd_daemon *d)
{
    int fd = pbd_ctl_keep_path(&d->ctl);

    if (fd > 0) {
        pbd_watch_close(d, &d->ctl.listen_fd);
        d->ctl.listen_fd = fd;
        pbd_watch_add(d, fd, &d->w_listen);
        pbd_say(d, PBD_L_WARN,
                "control socket %s was removed behind procbusd (rm, a tmp cleaner); listening "
                "there again",
                d->ctl.path);
    } else if (fd < 0 && !d->ctl_path_lost) {
        pbd_say(d, PBD_L_ERR, "control socket %s was removed and cannot be made again: %s",
                d->ctl.path, strerror(-fd));
    }
    d->ctl_path_lost = fd < 0;
}

void pbd_segment_tick(struct pbd_daemon *d)
{
    int rc;

    keep_socket(d);

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
