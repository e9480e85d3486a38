/* userdb.h - a `user =` value (a name or a uid) to the account procbusd runs a program as. */
#ifndef PROCBUS_USERDB_H
#define PROCBUS_USERDB_H

#include <sys/types.h>

/* One account, copied out of the passwd database (no pointer into libc's buffers). */
struct pbd_user {
    uid_t uid;
    gid_t gid;       /* its primary group */
    char name[64];   /* pw_name: what initgroups() and USER/LOGNAME get */
    char home[256];  /* pw_dir: HOME */
    char shell[256]; /* pw_shell: SHELL ("/bin/sh" when the entry has none) */
};

/*
 * Look `user` up: a name (getpwnam_r), else a decimal uid (getpwuid_r), so that
 * both `user = nobody` and `user = 65534` work. Returns 0 with *out filled,
 * -ENOENT when there is no such account (a uid is accepted only with a passwd
 * entry: initgroups needs its name), -ENAMETOOLONG when a field does not fit,
 * or another negative errno from the passwd lookup. Not async-signal-safe (NSS):
 * call it before fork, never in a child.
 */
int pbd_user_lookup(const char *user, struct pbd_user *out);

#endif /* PROCBUS_USERDB_H */
