/* config_ini.c - reading the INI files (inih glue, line continuations, [include]). */
#define _GNU_SOURCE
#include "config_int.h"

#include <errno.h>
#include <glob.h>
#include <ini.h>
#include <sys/stat.h>
#include <unistd.h>

static int add_section(struct loader *L, const char *name)
{
    struct section *ns = grow(L->secs, &L->cap_secs, L->n_secs + 1, sizeof(*L->secs));
    struct section *s;
    if (!ns)
        return pbd_cfg_oom(L);
    L->secs = ns;
    s = &L->secs[L->n_secs];
    memset(s, 0, sizeof(*s));
    s->name = strdup(name);
    if (!s->name)
        return pbd_cfg_oom(L);
    s->file = L->file;
    s->line = L->lineno;
    L->cur_sec = (long)L->n_secs++;
    L->last_kv = -1;
    return 0;
}

/*
 * inih's reader. Counts lines for messages (Debian's inih has no line
 * numbers), strips Python configparser's inline comments (';' or '#' after
 * whitespace: inih only knows ';'), tracks the section itself (inih cuts
 * section names at 49 bytes), reports syntax errors precisely, and replaces a
 * line longer than inih's 200-byte buffer by a short stand-in whose real
 * key/value the handler takes from the loader.
 */
static char *ini_reader_cb(char *buf, int num, void *stream)
{
    struct loader *L = stream;
    struct loc at;
    ssize_t n;
    char *p, *s, *eq;

    L->cont = 0;
    L->long_pending = 0;
    if (L->rc || num < 8)
        return NULL;
    errno = 0;
    n = getline(&L->line, &L->linecap, L->fp);
    if (n < 0) {
        if (ferror(L->fp)) {
            int e = errno ? errno : EIO;
            at = (struct loc){L->files[L->file].path, L->lineno + 1, NULL, NULL};
            pbd_cfg_fail(L, -e, &at, "read error: %s", strerror(e));
        }
        return NULL;
    }
    L->lineno++;
    at = (struct loc){L->files[L->file].path, L->lineno, NULL, NULL};
    if (memchr(L->line, '\0', (size_t)n)) {
        pbd_cfg_fail(L, -EINVAL, &at, "the line holds a NUL byte (is this a text file?)");
        return NULL;
    }
    p = L->line;
    if (L->lineno == 1 && (unsigned char)p[0] == 0xEF && (unsigned char)p[1] == 0xBB &&
        (unsigned char)p[2] == 0xBF)
        p += 3;
    rstrip(p);
    s = lskip(p);
    if (!*s || *s == ';' || *s == '#') {
        snprintf(buf, (size_t)num, "\n");
        return buf;
    }
    for (char *c = s + 1; *c; c++) {
        if ((*c == ';' || *c == '#') && isspace((unsigned char)c[-1])) {
            *c = '\0';
            break;
        }
    }
    rstrip(s);
    if (s > p && L->last_kv >= 0) { /* indented: continues the previous value */
        L->cont = 1;
        if (strlen(s) + 3 <= (size_t)num) {
            snprintf(buf, (size_t)num, " %s\n", s);
        } else {
            L->long_pending = 1;
            L->long_val = s;
            snprintf(buf, (size_t)num, " -\n");
        }
        return buf;
    }
    if (*s == '[') {
        char *close = strchr(s + 1, ']');
        if (!close) {
            pbd_cfg_fail(L, -EINVAL, &at, "a section header needs a closing ']': '" SHOW "'", s);
            return NULL;
        }
        if (close[1]) {
            pbd_cfg_fail(L, -EINVAL, &at, "unexpected text after ']': '" SHOW "'", s);
            return NULL;
        }
        *close = '\0';
        if (!s[1]) {
            pbd_cfg_fail(L, -EINVAL, &at, "empty section name '[]'");
            return NULL;
        }
        if (add_section(L, s + 1) < 0)
            return NULL;
        snprintf(buf, (size_t)num, "[s]\n");
        return buf;
    }
    eq = strpbrk(s, "=:");
    if (!eq) {
        if (L->cur_sec >= 0)
            at.section = L->secs[L->cur_sec].name;
        pbd_cfg_fail(L, -EINVAL, &at,
                     "expected 'key = value', a [section] header or a comment: '" SHOW "'", s);
        return NULL;
    }
    if (strlen(s) + 2 <= (size_t)num) {
        snprintf(buf, (size_t)num, "%s\n", s);
        return buf;
    }
    *eq = '\0';
    rstrip(s);
    L->long_key = s;
    L->long_val = lskip(eq + 1);
    L->long_pending = 1;
    snprintf(buf, (size_t)num, "k=v\n");
    return buf;
}

static int ini_handler_cb(void *user, const char *section, const char *name, const char *value)
{
    struct loader *L = user;
    struct section *S;
    struct loc at = {L->files[L->file].path, L->lineno, NULL, NULL};
    char *key, *val;
    (void)section; /* inih truncates it; the reader keeps the real one */

    if (L->rc)
        return 1;
    if (L->long_pending) {
        if (!L->cont)
            name = L->long_key;
        value = L->long_val;
    }
    if (L->cur_sec < 0) {
        at.key = name;
        pbd_cfg_fail(L, -EINVAL, &at, "key outside of any [section]");
        return 1;
    }
    S = &L->secs[L->cur_sec];
    at.section = S->name;
    if (L->cont) {
        struct kv *kv = &S->kv[L->last_kv];
        char *nv;
        if (!*kv->val)
            nv = strdup(value);
        else if (asprintf(&nv, "%s\n%s", kv->val, value) < 0)
            nv = NULL;
        if (!nv) {
            pbd_cfg_oom(L);
            return 1;
        }
        free(kv->val);
        kv->val = nv;
        return 1;
    }
    if (!*name) {
        pbd_cfg_fail(L, -EINVAL, &at, "a value without a key before '='");
        return 1;
    }
    key = strdup(name);
    val = strdup(value);
    if (!key || !val) {
        free(key);
        free(val);
        pbd_cfg_oom(L);
        return 1;
    }
    for (char *c = key; *c; c++)
        *c = (char)tolower((unsigned char)*c);
    for (size_t i = 0; i < S->n_kv; i++) {
        if (strcmp(S->kv[i].key, key) == 0) {
            at.key = key;
            pbd_cfg_warn(L, &at, "set again: this value replaces the one of line %d",
                         S->kv[i].line);
            free(key);
            free(S->kv[i].val);
            S->kv[i].val = val;
            S->kv[i].line = L->lineno;
            L->last_kv = (long)i;
            return 1;
        }
    }
    {
        struct kv *nkv = grow(S->kv, &S->cap_kv, S->n_kv + 1, sizeof(*S->kv));
        if (!nkv) {
            free(key);
            free(val);
            pbd_cfg_oom(L);
            return 1;
        }
        S->kv = nkv;
        S->kv[S->n_kv] = (struct kv){key, val, L->lineno};
        L->last_kv = (long)S->n_kv++;
    }
    return 1;
}

/* Glob special characters in a literal folder name are escaped for glob(3). */
static char *glob_escape(const char *s)
{
    struct sbuf b = {0};
    for (; *s; s++) {
        if (strchr("*?[]\\", *s))
            sb_addc(&b, '\\');
        sb_addc(&b, *s);
    }
    return sb_take(&b);
}

static int do_include(struct loader *L, size_t si, int depth)
{
    const struct section *S = &L->secs[si];
    size_t file = S->file;
    struct loc at = {L->files[file].path, S->line, "include", "files"};
    const struct kv *fkv = NULL;
    struct xctx x = {.here = L->files[file].here};
    char why[512], *val = NULL, *dir = NULL, *edir = NULL, *save = NULL, *w;
    int r;

    for (size_t i = 0; i < S->n_kv; i++) {
        const struct pbd_config_key *row = pbd_config_key_find(PBD_SECTION_INCLUDE, S->kv[i].key);
        if (row && row->stage == PBD_STAGE_READ) { /* "files", the only key */
            fkv = &S->kv[i];
        } else {
            struct loc k = {at.file, S->kv[i].line, "include", S->kv[i].key};
            pbd_cfg_warn(L, &k, "unknown key, ignored");
        }
    }
    if (!fkv)
        return pbd_cfg_fail(L, -EINVAL, &at,
                            "missing: an [include] section needs 'files = GLOB ...'");
    at.line = fkv->line;
    if (depth >= MAX_INCLUDE_DEPTH)
        return pbd_cfg_fail(L, -EINVAL, &at, "includes nested deeper than %d files",
                            MAX_INCLUDE_DEPTH);
    r = pbd_cfg_expand(L, &x, fkv->val, &val, why, sizeof(why));
    if (r == -ENOMEM)
        return pbd_cfg_oom(L);
    if (r)
        return pbd_cfg_fail(L, r, &at, "%s", why);
    /* from here on S and L->files may move: use only copies */
    dir = pbd_cfg_path_dir(at.file);
    edir = dir ? glob_escape(dir) : NULL;
    if (!edir) {
        r = pbd_cfg_oom(L);
        goto out;
    }
    w = strtok_r(val, " \t\r\n\f\v", &save);
    if (!w)
        pbd_cfg_warn(L, &at, "lists no file");
    for (; w && !L->rc; w = strtok_r(NULL, " \t\r\n\f\v", &save)) {
        char *pattern;
        glob_t g;
        int gr;
        if (w[0] == '/' || strcmp(dir, ".") == 0)
            pattern = strdup(w);
        else if (asprintf(&pattern, "%s%s%s", edir, dir[strlen(dir) - 1] == '/' ? "" : "/", w) < 0)
            pattern = NULL;
        if (!pattern) {
            r = pbd_cfg_oom(L);
            goto out;
        }
        gr = glob(pattern, 0, NULL, &g);
        if (gr == GLOB_NOMATCH) {
            pbd_cfg_warn(L, &at, "no file matches '" SHOW "'", pattern);
        } else if (gr != 0) {
            pbd_cfg_fail(L, gr == GLOB_NOSPACE ? -ENOMEM : -EIO, &at, "cannot expand '" SHOW "'",
                         pattern);
        } else {
            for (size_t k = 0; k < g.gl_pathc && !L->rc; k++) {
                struct stat st;
                if (stat(g.gl_pathv[k], &st) == 0 && S_ISDIR(st.st_mode)) {
                    pbd_cfg_warn(L, &at, "'" SHOW "' is a folder, skipped", g.gl_pathv[k]);
                    continue;
                }
                pbd_cfg_read_file(L, g.gl_pathv[k], &at, depth + 1);
            }
            globfree(&g);
        }
        free(pattern);
    }
    r = L->rc;
out:
    free(val);
    free(dir);
    free(edir);
    return r;
}

/* Read one file (its sections and keys), then the files its [include] names. */
int pbd_cfg_read_file(struct loader *L, const char *path, const struct loc *from, int depth)
{
    FILE *fp = fopen(path, "re");
    struct srcfile *nf, *f;
    struct stat st;
    size_t idx, first_sec, end_sec;
    int r;

    if (!fp) {
        int e = errno;
        struct loc at = {path, 0, NULL, NULL};
        if (from) /* a configuration error: the line that includes it is wrong */
            return pbd_cfg_fail(L, e == ENOMEM ? -ENOMEM : -EINVAL, from,
                                "cannot open '" SHOW "': %s", path, strerror(e));
        return pbd_cfg_fail(L, -e, &at, "cannot open the configuration file: %s", strerror(e));
    }
    r = fstat(fileno(fp), &st) < 0 ? -errno : S_ISDIR(st.st_mode) ? -EISDIR : 0;
    if (r) {
        int e = -r;
        struct loc at = {path, 0, NULL, NULL};
        fclose(fp);
        if (from)
            return pbd_cfg_fail(L, -EINVAL, from, "cannot read '" SHOW "': %s", path, strerror(e));
        return pbd_cfg_fail(L, -e, &at, "cannot read the configuration file: %s", strerror(e));
    }
    for (size_t i = 0; i < L->n_files; i++) {
        if (L->files[i].dev == st.st_dev && L->files[i].ino == st.st_ino) {
            if (L->files[i].active)
                pbd_cfg_warn(L, from, "include loop: '" SHOW "' is being read already, skipped",
                             path);
            else
                pbd_cfg_warn(L, from, "'" SHOW "' was read already, skipped", path);
            fclose(fp);
            return 0;
        }
    }
    nf = grow(L->files, &L->cap_files, L->n_files + 1, sizeof(*L->files));
    if (!nf) {
        fclose(fp);
        return pbd_cfg_oom(L);
    }
    L->files = nf;
    idx = L->n_files;
    f = &L->files[idx];
    memset(f, 0, sizeof(*f));
    f->path = strdup(path);
    {
        char *dir = pbd_cfg_path_dir(path);
        f->here = dir ? realpath(dir, NULL) : NULL;
        if (!f->here && dir)
            f->here = strdup(dir);
        free(dir);
    }
    L->n_files++;
    if (!f->path || !f->here) {
        fclose(fp);
        return pbd_cfg_oom(L);
    }
    f->dev = st.st_dev;
    f->ino = st.st_ino;
    f->active = 1;

    L->fp = fp;
    L->file = idx;
    L->lineno = 0;
    L->cur_sec = -1;
    L->last_kv = -1;
    first_sec = L->n_secs;
    r = ini_parse_stream(ini_reader_cb, L, ini_handler_cb, L);
    fclose(fp);
    L->fp = NULL;
    if (!L->rc && r == -2)
        pbd_cfg_oom(L);
    else if (!L->rc && r != 0) {
        struct loc at = {path, r > 0 ? r : 0, NULL, NULL};
        pbd_cfg_fail(L, -EINVAL, &at, "syntax error");
    }
    if (L->rc)
        return L->rc;
    end_sec = L->n_secs;
    for (size_t si = first_sec; si < end_sec; si++) {
        if (L->secs[si].file == idx && strcmp(L->secs[si].name, "include") == 0) {
            r = do_include(L, si, depth);
            if (r)
                return r;
        }
    }
    L->files[idx].active = 0;
    return 0;
}

void pbd_cfg_loader_free(struct loader *L)
{
    for (size_t i = 0; i < L->n_secs; i++) {
        for (size_t k = 0; k < L->secs[i].n_kv; k++) {
            free(L->secs[i].kv[k].key);
            free(L->secs[i].kv[k].val);
        }
        free(L->secs[i].kv);
        free(L->secs[i].name);
    }
    free(L->secs);
    for (size_t i = 0; i < L->n_files; i++) {
        free(L->files[i].path);
        free(L->files[i].here);
    }
    free(L->files);
    pbd_free_argv(L->genv);
    free(L->line);
}
