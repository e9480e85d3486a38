/* userdb.c - a `user =` value (a name or a uid) to the account procbusd runs a program as. */
#define _GNU_SOURCE
#include "userdb.h"

#include <errno.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* 1 and *uid when s is a plain decimal number that fits a uid_t. */
static int parse_uid(const char *s, uid_t *uid)
{
    char *end;
    unsigned long long v;

    if (*s < '0' || *s > '9')
        return 0;
    errno = 0;
    v = strtoull(s, &end, 10);
    if (errno != 0 || *end != '\0' || v > (uid_t)-2) /* (uid_t)-1 means "no change" */
        return 0;
    *uid = (uid_t)v;
    return 1;
}

static int copy_field(char *dst, size_t len, const char *src)
{
    return (size_t)snprintf(dst, len, "%s", src != NULL ? src : "") < len ? 0 : -ENAMETOOLONG;
}

int pbd_user_lookup(const char *user, struct pbd_user *out)
{
    struct passwd pw, *res = NULL;
    char buf[4096];
    uid_t uid;
    int rc;

    if (user == NULL || *user == '\0')
        return -EINVAL;
    rc = getpwnam_r(user, &pw, buf, sizeof(buf), &res);
    if (res == NULL && parse_uid(user, &uid))
        rc = getpwuid_r(uid, &pw, buf, sizeof(buf), &res);
    if (res == NULL)
        return rc != 0 && rc != ENOENT && rc != ESRCH ? -rc : -ENOENT;
    memset(out, 0, sizeof(*out));
    out->uid = pw.pw_uid;
    out->gid = pw.pw_gid;
    if (copy_field(out->name, sizeof(out->name), pw.pw_name) < 0 ||
        copy_field(out->home, sizeof(out->home), pw.pw_dir) < 0 ||
        copy_field(out->shell, sizeof(out->shell),
                   pw.pw_shell != NULL && *pw.pw_shell ? pw.pw_shell : "/bin/sh") < 0)
        return -ENAMETOOLONG;
    return 0;
}
