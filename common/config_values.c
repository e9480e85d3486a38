/* config_values.c - the value syntaxes of configuration keys: text -> C values, with reasons. */
#define _GNU_SOURCE
#include "config_int.h"
#include "textsafe.h"

#include <errno.h>
#include <limits.h>
#include <grp.h>
#include <pwd.h>
#include <regex.h>
#include <stdint.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *const truthy[] = {"true", "yes", "on", "1", NULL};
static const char *const falsy[] = {"false", "no", "off", "0", NULL};

char *pbd_cfg_normpath(const char *p)
{
    char cwd[4096], *in = NULL, *out, *save = NULL, *w;
    size_t n = 0;
    if (p[0] == '/')
        in = strdup(p);
    else if (!getcwd(cwd, sizeof(cwd)) || asprintf(&in, "%s/%s", cwd, p) < 0)
        in = NULL;
    if (!in)
        return NULL;
    out = calloc(strlen(in) + 2, 1);
    if (!out) {
        free(in);
        return NULL;
    }
    for (w = strtok_r(in, "/", &save); w; w = strtok_r(NULL, "/", &save)) {
        if (!strcmp(w, "."))
            continue;
        if (!strcmp(w, "..")) {
            while (n > 0 && out[n - 1] != '/')
                n--;
            if (n > 0)
                n--;
            out[n] = '\0';
            continue;
        }
        out[n++] = '/';
        strcpy(out + n, w);
        n += strlen(w);
    }
    if (n == 0)
        strcpy(out, "/");
    free(in);
    return out;
}

/* "a/b/c.conf" -> "a/b"; "c.conf" -> "."; "/c.conf" -> "/". */
char *pbd_cfg_path_dir(const char *path)
{
    const char *slash = strrchr(path, '/');
    if (!slash)
        return strdup(".");
    while (slash > path && slash[-1] == '/')
        slash--;
    if (slash == path)
        return strdup("/");
    return strndup(path, (size_t)(slash - path));
}

/* "NAME=..." in env (n entries, or up to a NULL when n is SIZE_MAX): the value or NULL. */
const char *pbd_cfg_env_get(char *const *env, size_t n, const char *name, size_t nlen)
{
    if (!env)
        return NULL;
    for (size_t i = 0; i < n && env[i]; i++)
        if (strncmp(env[i], name, nlen) == 0 && env[i][nlen] == '=')
            return env[i] + nlen + 1;
    return NULL;
}

/* 0, -1 (not an integer), -2 (out of long long range) */
int pbd_cfg_parse_ll(const char *s, long long *v)
{
    char *end;
    long long r;
    s = lskip(s);
    if (!*s)
        return -1;
    errno = 0;
    r = strtoll(s, &end, 10);
    if (end == s || *lskip(end))
        return -1;
    if (errno == ERANGE)
        return -2;
    *v = r;
    return 0;
}

int pbd_cfg_get_int(const char *s, long long min, long long max, long long *out, char *why,
                    size_t wl)
{
    long long v = 0;
    int r = pbd_cfg_parse_ll(s, &v);
    if (r == -1 || (r == 0 && v < min)) {
        if (min == 0)
            snprintf(why, wl, "not a non-negative integer: '" SHOW "'", s);
        else if (min == 1)
            snprintf(why, wl, "not a positive integer: '" SHOW "'", s);
        else if (min > 1)
            snprintf(why, wl, "not an integer >= %lld: '" SHOW "'", min, s);
        else
            snprintf(why, wl, "not an integer: '" SHOW "'", s);
        return -EINVAL;
    }
    if (r == -2 || v > max) {
        snprintf(why, wl, "out of range (at most %lld): '" SHOW "'", max, s);
        return -EINVAL;
    }
    *out = v;
    return 0;
}

/* expect: what the message says a value must be; NULL: every accepted spelling. */
int pbd_cfg_get_bool(const char *s, const char *expect, int *out, char *why, size_t wl)
{
    if (is_one_of(s, truthy))
        *out = 1;
    else if (is_one_of(s, falsy))
        *out = 0;
    else {
        snprintf(why, wl, "not %s: '" SHOW "'",
                 expect ? expect : "a boolean (true/false, yes/no, on/off, 1/0)", s);
        return -EINVAL;
    }
    return 0;
}

/* supervisord's byte_size: N, NKB, NMB, NGB (case-insensitive, powers of 1024). */
int pbd_cfg_get_bytes(const char *s, uint64_t *out, char *why, size_t wl)
{
    size_t n = strlen(s);
    uint64_t mult = 1;
    long long v;
    char num[64];
    if (n >= 2 && n < sizeof(num)) {
        const char *suf = s + n - 2;
        if (strcasecmp(suf, "kb") == 0)
            mult = 1024ull;
        else if (strcasecmp(suf, "mb") == 0)
            mult = 1024ull * 1024;
        else if (strcasecmp(suf, "gb") == 0)
            mult = 1024ull * 1024 * 1024;
    }
    if (n >= sizeof(num))
        goto bad;
    memcpy(num, s, n + 1);
    if (mult != 1)
        num[n - 2] = '\0';
    if (pbd_cfg_parse_ll(num, &v) != 0 || v < 0)
        goto bad;
    if ((uint64_t)v > UINT64_MAX / mult)
        goto bad;
    *out = (uint64_t)v * mult;
    return 0;
bad:
    snprintf(why, wl, "not a byte size (like 1024, 500KB, 50MB, 1GB): '" SHOW "'", s);
    return -EINVAL;
}

int pbd_cfg_get_umask(const char *s, mode_t *out, char *why, size_t wl)
{
    const char *p = s;
    unsigned v = 0;
    if (p[0] == '0' && (p[1] == 'o' || p[1] == 'O'))
        p += 2;
    if (!*p)
        goto bad;
    for (; *p; p++) {
        if (*p < '0' || *p > '7')
            goto bad;
        v = v * 8 + (unsigned)(*p - '0');
        if (v > 0777)
            goto bad;
    }
    *out = (mode_t)v;
    return 0;
bad:
    snprintf(why, wl, "not an octal umask from 000 to 777 (like 022): '" SHOW "'", s);
    return -EINVAL;
}

int pbd_cfg_get_exitcodes(const char *s, int *codes, int *n, char *why, size_t wl)
{
    const char *p = s;
    int k = 0;
    if (!*lskip(s)) { /* supervisord: an empty list, every exit is unexpected */
        *n = 0;
        return 0;
    }
    for (;;) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        char item[32];
        long long v;
        if (len >= sizeof(item))
            goto bad;
        memcpy(item, p, len);
        item[len] = '\0';
        if (pbd_cfg_parse_ll(item, &v) != 0 || v < 0 || v > 255)
            goto bad;
        if (k == PBD_MAX_EXITCODES) {
            snprintf(why, wl, "more than %d exit codes: '" SHOW "'", PBD_MAX_EXITCODES, s);
            return -EINVAL;
        }
        codes[k++] = (int)v;
        if (!comma)
            break;
        p = comma + 1;
    }
    *n = k;
    return 0;
bad:
    snprintf(why, wl, "not a comma-separated list of exit codes 0-255: '" SHOW "'", s);
    return -EINVAL;
}

int pbd_cfg_env_set(char ***v, size_t *n, size_t *cap, const char *key, size_t klen,
                    const char *val, size_t vlen)
{
    char *e = malloc(klen + vlen + 2);
    char **nv;
    if (!e)
        return -ENOMEM;
    memcpy(e, key, klen);
    e[klen] = '=';
    memcpy(e + klen + 1, val, vlen);
    e[klen + 1 + vlen] = '\0';
    for (size_t i = 0; i < *n; i++) {
        if (strncmp((*v)[i], key, klen) == 0 && (*v)[i][klen] == '=') {
            free((*v)[i]);
            (*v)[i] = e;
            return 0;
        }
    }
    nv = grow(*v, cap, *n + 2, sizeof(**v));
    if (!nv) {
        free(e);
        return -ENOMEM;
    }
    *v = nv;
    (*v)[(*n)++] = e;
    (*v)[*n] = NULL;
    return 0;
}

/*
 * supervisord's environment syntax: KEY=VALUE pairs separated by commas;
 * a value may be "double" or 'single' quoted (then it may hold commas and
 * spaces; quotes are not kept, there are no escapes). Pairs are added to *v.
 */
int pbd_cfg_env_pairs(const char *s, char ***v, size_t *n, size_t *cap, char *why, size_t wl)
{
    const char *p = s;
    for (;;) {
        const char *k, *vs, *ve;
        size_t klen;
        p = lskip(p);
        if (!*p)
            return 0;
        k = p;
        while (*p && *p != '=' && *p != ',' && *p != '"' && *p != '\'' &&
               !isspace((unsigned char)*p))
            p++;
        klen = (size_t)(p - k);
        p = lskip(p);
        if (!klen || *p != '=') {
            snprintf(why, wl, "expected KEY=VALUE at '%.40s'", k);
            return -EINVAL;
        }
        p = lskip(p + 1);
        if (*p == '"' || *p == '\'') {
            char q = *p++;
            vs = p;
            ve = strchr(p, q);
            if (!ve) {
                snprintf(why, wl, "unterminated %s quote in the value of %.*s",
                         q == '"' ? "double" : "single", (int)klen, k);
                return -EINVAL;
            }
            p = ve + 1;
        } else {
            vs = p;
            while (*p && *p != ',' && !isspace((unsigned char)*p))
                p++;
            ve = p;
        }
        p = lskip(p);
        if (*p == ',')
            p++;
        else if (*p) {
            snprintf(why, wl,
                     "expected ',' after the value of %.*s (quote a value that holds spaces or "
                     "commas): '%.40s'",
                     (int)klen, k, p);
            return -EINVAL;
        }
        if (pbd_cfg_env_set(v, n, cap, k, klen, vs, (size_t)(ve - vs)) < 0) {
            snprintf(why, wl, "out of memory");
            return -ENOMEM;
        }
    }
}

/* "~" and "~user" at the start of a path, like Python's os.path.expanduser. */
static char *expand_user(const struct loader *L, const char *path)
{
    const char *rest, *home = NULL;
    struct passwd pw, *res = NULL;
    char buf[4096], *out;
    if (path[0] != '~')
        return strdup(path);
    rest = path + 1;
    while (*rest && *rest != '/')
        rest++;
    if (rest == path + 1) {
        home = pbd_cfg_env_get(L->env, SIZE_MAX, "HOME", 4);
        if (!home && getpwuid_r(getuid(), &pw, buf, sizeof(buf), &res) == 0 && res)
            home = pw.pw_dir;
    } else {
        char user[256];
        size_t ulen = (size_t)(rest - path - 1);
        if (ulen < sizeof(user)) {
            memcpy(user, path + 1, ulen);
            user[ulen] = '\0';
            if (getpwnam_r(user, &pw, buf, sizeof(buf), &res) == 0 && res)
                home = pw.pw_dir;
        }
    }
    if (!home)
        return strdup(path);
    if (asprintf(&out, "%s%s", home, rest) < 0)
        return NULL;
    return out;
}

/* A valid program or process name (what: "program name" ...): not empty, < 64 bytes, no ' ', ':'
 * or '/' (as supervisord), and nothing outside the safe set names are published with
 * (pb_text_unsafe_in_name: UTF-8, no control, space or invisible format character), so that no
 * name procbusd publishes can drive a terminal or break JSON or a Prometheus label. The name is
 * shown escaped in the message (it may hold what a terminal must not get). */
int pbd_cfg_check_name(const char *name, const char *what, char *why, size_t wl)
{
    char shown[PB_TEXT_ROOM(64)];
    const char *bad;
    if (!*name) {
        snprintf(why, wl, "empty %s", what);
        return -EINVAL;
    }
    pb_text_safe(shown, sizeof(shown), name, 63, PB_TEXT_TERMINAL);
    if (strlen(name) >= 64) {
        snprintf(why, wl, "%s longer than 63 bytes: '" SHOW "'", what, shown);
        return -EINVAL;
    }
    bad = strpbrk(name, " :/");
    if (bad) {
        snprintf(why, wl, "invalid %s '" SHOW "': '%c' is not allowed", what, shown, *bad);
        return -EINVAL;
    }
    bad = pb_text_unsafe_in_name(name);
    if (bad) {
        snprintf(why, wl,
                 "invalid %s '" SHOW "': byte %d (0x%02x) is not allowed (names are UTF-8 "
                 "without control characters, spaces or invisible format characters)",
                 what, shown, (int)(bad - name) + 1, (unsigned)(unsigned char)*bad);
        return -EINVAL;
    }
    return 0;
}

int pbd_cfg_get_user(const char *v, char *why, size_t wl)
{
    struct passwd pw, *res = NULL;
    char buf[4096];
    long long uid;
    int found;
    if (!*v) {
        snprintf(why, wl, "empty (remove the line to keep procbusd's user)");
        return -EINVAL;
    }
    if (pbd_cfg_parse_ll(v, &uid) == 0)
        found = uid >= 0 && uid <= UINT32_MAX &&
                getpwuid_r((uid_t)uid, &pw, buf, sizeof(buf), &res) == 0 && res;
    else
        found = getpwnam_r(v, &pw, buf, sizeof(buf), &res) == 0 && res;
    if (!found) {
        snprintf(why, wl, "unknown user: '" SHOW "'", v);
        return -EINVAL;
    }
    return 0;
}

int pbd_cfg_get_group(const char *v, long long *gid, char *why, size_t wl)
{
    struct group gr, *res = NULL;
    char buf[4096];
    long long n;
    int found;
    if (!strcasecmp(v, "none")) {
        *gid = -1;
        return 0;
    }
    if (pbd_cfg_parse_ll(v, &n) == 0)
        found = n >= 0 && n < UINT32_MAX &&
                getgrgid_r((gid_t)n, &gr, buf, sizeof(buf), &res) == 0 && res;
    else
        found = getgrnam_r(v, &gr, buf, sizeof(buf), &res) == 0 && res;
    if (!found) {
        snprintf(why, wl, "unknown group (a group name, a gid, or none): '" SHOW "'", v);
        return -EINVAL;
    }
    *gid = (long long)res->gr_gid;
    return 0;
}

int pbd_cfg_get_deps(const char *v, struct pbd_program *p, char *why, size_t wl)
{
    char *copy = strdup(v), *save = NULL, *item;
    int r = 0;
    if (!copy)
        return -ENOMEM;
    p->n_deps = 0;
    for (item = strtok_r(copy, ",", &save); item; item = strtok_r(NULL, ",", &save)) {
        char *colon = strchr(item, ':');
        enum pbd_dep_cond cond = PBD_DEP_RUNNING;
        if (colon) {
            char *c = colon + 1;
            *colon = '\0';
            trim(c);
            if (!strcasecmp(c, "started"))
                cond = PBD_DEP_STARTED;
            else if (!strcasecmp(c, "running"))
                cond = PBD_DEP_RUNNING;
            else if (!strcasecmp(c, "ready"))
                cond = PBD_DEP_READY;
            else if (!strcasecmp(c, "completed"))
                cond = PBD_DEP_COMPLETED;
            else {
                trim(item);
                snprintf(why, wl,
                         "unknown condition '%.40s' for '%.64s' (started, running, ready or "
                         "completed)",
                         c, item);
                r = -EINVAL;
                break;
            }
        }
        trim(item);
        if (!*item) {
            if (colon) {
                snprintf(why, wl, "a condition without a program name: '" SHOW "'", v);
                r = -EINVAL;
                break;
            }
            continue; /* "a, b," */
        }
        if (pbd_cfg_check_name(item, "program name", why, wl) < 0) {
            r = -EINVAL;
            break;
        }
        if (p->n_deps == PBD_MAX_DEPS) {
            snprintf(why, wl, "more than %d dependencies", PBD_MAX_DEPS);
            r = -EINVAL;
            break;
        }
        snprintf(p->deps[p->n_deps].name, sizeof(p->deps[0].name), "%s", item);
        p->deps[p->n_deps++].cond = cond;
    }
    free(copy);
    return r;
}

/* stdout_logfile / stderr_logfile: *path is a malloc'd path, PBD_LOG_AUTO, or NULL (not
 * captured). */
int pbd_cfg_get_logfile(struct pbd_key_ctx *c, const char *v, char **path)
{
    char *p, *dir;
    struct stat st;
    *path = NULL;
    if (!strcasecmp(v, "none") || !strcasecmp(v, "off"))
        return 0;
    if (!strcasecmp(v, "auto")) {
        *path = strdup(PBD_LOG_AUTO);
        return *path ? 0 : -ENOMEM;
    }
    if (!strcasecmp(v, "syslog")) {
        if (c->first)
            pbd_cfg_warn(c->L, c->at,
                         "syslog is not supported by procbusd: the output is discarded");
        return 0;
    }
    if (!*v) {
        snprintf(c->why, c->wl, "empty (use NONE to discard the output)");
        return -EINVAL;
    }
    p = expand_user(c->L, v);
    if (!p)
        return -ENOMEM;
    if (strchr(p, '/')) {
        dir = pbd_cfg_path_dir(p);
        if (!dir) {
            free(p);
            return -ENOMEM;
        }
        if (stat(dir, &st) < 0 || !S_ISDIR(st.st_mode)) {
            snprintf(c->why, c->wl, "the folder '" SHOW "' does not exist", dir);
            free(dir);
            free(p);
            return -EINVAL;
        }
        free(dir);
    }
    *path = p;
    return 0;
}

int pbd_cfg_get_list(const char *v, char ***out, char *why, size_t wl)
{
    size_t n = 0, cap = 0;
    const char *p = v;
    *out = NULL;
    if (!*v)
        return 0;
    for (;;) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        char *item = strndup(p, len), **nv;
        if (!item)
            goto nomem;
        trim(item);
        if (!*item) {
            free(item);
            snprintf(why, wl, "an empty item in the list: '" SHOW "'", v);
            pbd_free_argv(*out);
            *out = NULL;
            return -EINVAL;
        }
        nv = grow(*out, &cap, n + 2, sizeof(**out));
        if (!nv) {
            free(item);
            goto nomem;
        }
        *out = nv;
        (*out)[n++] = item;
        (*out)[n] = NULL;
        if (!comma)
            return 0;
        p = comma + 1;
    }
nomem:
    pbd_free_argv(*out);
    *out = NULL;
    return -ENOMEM;
}

int pbd_cfg_get_folder(const char *v, char *why, size_t wl)
{
    struct stat st;
    if (!*v) {
        snprintf(why, wl, "empty (remove the line for the default)");
        return -EINVAL;
    }
    if (stat(v, &st) < 0 || !S_ISDIR(st.st_mode)) {
        snprintf(why, wl, "not an existing folder: '" SHOW "'", v);
        return -EINVAL;
    }
    return 0;
}

/* ready_log: a POSIX extended regular expression that compiles. */
int pbd_cfg_get_regex(const char *v, char *why, size_t wl)
{
    regex_t re;
    int rc;
    if (!*v) {
        snprintf(why, wl, "empty regular expression");
        return -EINVAL;
    }
    rc = regcomp(&re, v, REG_EXTENDED | REG_NOSUB);
    if (rc) {
        char msg[128];
        regerror(rc, &re, msg, sizeof(msg));
        snprintf(why, wl, "bad regular expression '" SHOW "': %s", v, msg);
        return -EINVAL;
    }
    regfree(&re);
    return 0;
}
