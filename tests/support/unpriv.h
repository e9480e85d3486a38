/* unpriv.h - helpers of the hardening tests (header-only): act as a second, unprivileged user,
 * wait for a file to say something. */
#ifndef PROCBUS_TEST_UNPRIV_H
#define PROCBUS_TEST_UNPRIV_H

#include <grp.h>
#include <pwd.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>

#include "support.h"

/* The unprivileged user the tests act as ("nobody"), when the tests run as root and it exists;
 * NULL otherwise (the caller skips, saying why). */
static inline const struct passwd *pbt_nobody(void)
{
    static struct passwd pw;
    struct passwd *p;

    if (geteuid() != 0 || (p = getpwnam("nobody")) == NULL)
        return NULL;
    pw = *p;
    return &pw;
}

/* In a child: become `pw` (no supplementary groups), run fn(arg), exit with what it returns
 * (100: the switch failed). Returns the child's status as pbt_wait_child does. */
static inline int pbt_as_user(const struct passwd *pw, int (*fn)(void *arg), void *arg)
{
    pid_t pid = fork();

    if (pid == 0) {
        if (setgroups(0, NULL) < 0 || setresgid(pw->pw_gid, pw->pw_gid, pw->pw_gid) < 0 ||
            setresuid(pw->pw_uid, pw->pw_uid, pw->pw_uid) < 0)
            _exit(100);
        _exit(fn(arg));
    }
    return pid < 0 ? -1 : pbt_wait_child(pid);
}

/* Wait until file `path` contains `text` (polling, up to timeout_ms); 1 if it does. */
static inline int pbt_file_has(const char *path, const char *text, int timeout_ms)
{
    long end = pbt_now_ms() + timeout_ms;

    for (;;) {
        char *s = pbt_slurp(path, NULL);
        int found = s != NULL && strstr(s, text) != NULL;
        free(s);
        if (found)
            return 1;
        if (pbt_now_ms() > end)
            return 0;
        usleep(20000);
    }
}

/* How many times `text` occurs in file `path` (0 if unreadable). */
static inline int pbt_file_count(const char *path, const char *text)
{
    char *s = pbt_slurp(path, NULL), *p = s;
    int n = 0;

    while (p != NULL && (p = strstr(p, text)) != NULL) {
        n++;
        p += strlen(text);
    }
    free(s);
    return n;
}

#endif /* PROCBUS_TEST_UNPRIV_H */
