/* test_config_keys.c - the config key table: docs/CONFIG.md lists exactly its keys, and every row's
 * range, choices and default hold when loaded. */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <ctype.h>
#include <errno.h>
#include <libgen.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "config.h"

static const enum pbd_config_section all_sections[] = {
    PBD_SECTION_DAEMON,      PBD_SECTION_PROGRAM,   PBD_SECTION_INCLUDE,
    PBD_SECTION_SUPERVISORD, PBD_SECTION_GROUP,     PBD_SECTION_EVENTLISTENER,
    PBD_SECTION_FCGI,        PBD_SECTION_UNIX_HTTP, PBD_SECTION_INET_HTTP};
#define N_SECTIONS (sizeof(all_sections) / sizeof(all_sections[0]))

/* The sections whose values the range, spelling and default tests load (the others have only
 * text keys): the daemon's, the programs', [supervisord], [group:x], the listeners, fcgi. */
static const enum pbd_config_section loaded_sections[] = {
    PBD_SECTION_DAEMON, PBD_SECTION_PROGRAM,       PBD_SECTION_SUPERVISORD,
    PBD_SECTION_GROUP,  PBD_SECTION_EVENTLISTENER, PBD_SECTION_FCGI};
#define N_LOADED (sizeof(loaded_sections) / sizeof(loaded_sections[0]))

/* ------------------------------------------------------------------ helpers */

/* 1 if dir holds the source tree (docs/CONFIG.md next to common/config_keys.c). */
static int is_srcdir(const char *dir)
{
    char a[PATH_MAX], b[PATH_MAX];
    snprintf(a, sizeof(a), "%s/docs/CONFIG.md", dir);
    snprintf(b, sizeof(b), "%s/common/config_keys.c", dir);
    return access(a, R_OK) == 0 && access(b, R_OK) == 0;
}

/* Walk up from start (a folder) to the source tree; 1 with out filled, else 0. */
static int walk_up(const char *start, char *out, size_t n)
{
    char dir[PATH_MAX];
    if (!start || !realpath(start, dir))
        return 0;
    for (int depth = 0; depth < 16; depth++) {
        if (is_srcdir(dir)) {
            snprintf(out, n, "%s", dir);
            return 1;
        }
        char *slash = strrchr(dir, '/');
        if (!slash || !strcmp(dir, "/"))
            return 0;
        slash[slash == dir] = '\0'; /* the parent ("/x" -> "/") */
    }
    return 0;
}

/* The source tree: $PROCBUS_SRCDIR, else up from the current folder (tests/run.sh runs from the
 * root), else up from this binary (build/tests/, build/asan/tests/ ...). */
static void find_srcdir(char *out, size_t n)
{
    const char *env = getenv("PROCBUS_SRCDIR");
    char exe[PATH_MAX];
    ssize_t len;
    if (env && *env && is_srcdir(env)) {
        snprintf(out, n, "%s", env);
        return;
    }
    if (walk_up(".", out, n))
        return;
    len = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
    if (len > 0) {
        exe[len] = '\0';
        if (walk_up(dirname(exe), out, n))
            return;
    }
    fail_msg("cannot find the source tree (docs/CONFIG.md): set PROCBUS_SRCDIR");
}

struct warns {
    int n;
    char msg[32][512];
};

static void collect(void *arg, const char *msg)
{
    struct warns *w = arg;
    if (w->n < 32)
        snprintf(w->msg[w->n++], sizeof(w->msg[0]), "%s", msg);
}

static char tmpdir[] = "/tmp/pbt-config-keys-XXXXXX";

static int setup(void **state)
{
    (void)state;
    return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown(void **state)
{
    char path[PATH_MAX];
    (void)state;
    snprintf(path, sizeof(path), "%s/t.conf", tmpdir);
    unlink(path);
    return rmdir(tmpdir);
}

/* Load text as a configuration file (tmpdir/t.conf). Returns pbd_config_load's result. */
static int load_text(const char *text, struct pbd_config *c, struct warns *w, char *err,
                     size_t errlen)
{
    static char *env[] = {"HOME=/root", "PATH=/usr/bin:/bin", NULL};
    char path[PATH_MAX];
    FILE *f;
    snprintf(path, sizeof(path), "%s/t.conf", tmpdir);
    f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
    memset(w, 0, sizeof(*w));
    return pbd_config_load(c, path, env, err, errlen, collect, w);
}

/* A configuration that sets key = value in the row's section, with one program
 * (several instances are allowed by its process_name); the key is on line 2, 3 or 4. */
static void config_with(char *buf, size_t n, const struct pbd_config_key *k, const char *value)
{
    if (k->section == PBD_SECTION_DAEMON || k->section == PBD_SECTION_SUPERVISORD)
        snprintf(buf, n, "[%s]\n%s = %s\n[program:t]\ncommand = /bin/true\n",
                 pbd_config_section_name(k->section), k->name, value);
    else if (k->section == PBD_SECTION_GROUP)
        snprintf(buf, n, "[group:t]\n%s\n%s = %s\n[program:p]\ncommand = /bin/true\n",
                 strcmp(k->name, "programs") ? "programs = p" : "", k->name, value);
    else if (k->section == PBD_SECTION_EVENTLISTENER)
        snprintf(buf, n,
                 "[eventlistener:t]\ncommand = /bin/true\nprocess_name = t_%%(process_num)d\n"
                 "%s = %s\n%s\n",
                 k->name, value, strcmp(k->name, "events") ? "events = TICK_5" : "");
    else if (k->section == PBD_SECTION_FCGI)
        snprintf(buf, n,
                 "[fcgi-program:t]\ncommand = /bin/true\nprocess_name = t_%%(process_num)d\n"
                 "%s = %s\n%s\n",
                 k->name, value, strcmp(k->name, "socket") ? "socket = unix:///tmp/t.sock" : "");
    else
        snprintf(buf, n,
                 "[program:t]\ncommand = /bin/true\nprocess_name = t_%%(process_num)d\n%s = %s\n",
                 k->name, value);
}

/* The struct a row lands in, in a loaded configuration. */
static const void *base_of(const struct pbd_config *c, const struct pbd_config_key *k)
{
    if (k->section == PBD_SECTION_DAEMON || k->section == PBD_SECTION_SUPERVISORD)
        return &c->daemon;
    if (k->section == PBD_SECTION_GROUP) {
        assert_true(c->n_groups >= 1);
        return &c->groups[0];
    }
    assert_true(c->n_progs >= 1);
    return &c->progs[0];
}

/* "procbusd", "program:t" ...: how messages name the section of config_with. */
static const char *shown_section(const struct pbd_config_key *k, char *buf, size_t n)
{
    const char *name = pbd_config_section_name(k->section);
    const char *colon = strchr(name, ':');
    if (colon)
        snprintf(buf, n, "%.*s:t", (int)(colon - name), name);
    else
        snprintf(buf, n, "%s", name);
    return buf;
}

/* An integer field's value (int, uint32_t or uint64_t, by the row's size and range). */
static long long read_int(const struct pbd_config_key *k, const void *base)
{
    const char *f = (const char *)base + k->offset;
    if (k->size == sizeof(uint64_t)) {
        uint64_t v;
        memcpy(&v, f, sizeof(v));
        return (long long)v;
    }
    assert_int_equal(k->size, sizeof(int32_t));
    if (k->max > INT32_MAX) {
        uint32_t v;
        memcpy(&v, f, sizeof(v));
        return v;
    }
    {
        int32_t v;
        memcpy(&v, f, sizeof(v));
        return v;
    }
}

/* Load key = value: it must load and the field must read `want`. */
static void expect_int(const struct pbd_config_key *k, const char *value, long long want)
{
    char text[1024], err[1024];
    struct pbd_config c;
    struct warns w;
    int r;
    config_with(text, sizeof(text), k, value);
    r = load_text(text, &c, &w, err, sizeof(err));
    if (r != 0)
        fail_msg("%s = %s: %s", k->name, value, err);
    assert_int_equal(read_int(k, base_of(&c, k)), want);
    pbd_config_free(&c);
}

/* Load key = value: it must fail at the key's line, naming the section and the key. */
static void expect_error(const struct pbd_config_key *k, const char *value)
{
    char text[1024], err[1024], want[256], sec[64];
    struct pbd_config c;
    struct warns w;
    int r;
    config_with(text, sizeof(text), k, value);
    r = load_text(text, &c, &w, err, sizeof(err));
    if (r != -EINVAL)
        fail_msg("%s = %s: loaded (rc %d), expected an error", k->name, value, r);
    snprintf(want, sizeof(want), ":%d: [%s] %s: ",
             k->section == PBD_SECTION_DAEMON || k->section == PBD_SECTION_SUPERVISORD ? 2
             : k->section == PBD_SECTION_GROUP                                         ? 3
                                                                                       : 4,
             shown_section(k, sec, sizeof(sec)), k->name);
    if (!strstr(err, want))
        fail_msg("%s = %s: '%s' does not hold '%s'", k->name, value, err, want);
}

/* ---------------------------------------------------------- the table itself */

static void test_table_shape(void **state)
{
    (void)state;
    for (size_t s = 0; s < N_SECTIONS; s++) {
        size_t n;
        const struct pbd_config_key *k = pbd_config_keys(all_sections[s], &n);
        enum pbd_config_section sec = all_sections[s];
        size_t struct_size = sec == PBD_SECTION_DAEMON || sec == PBD_SECTION_SUPERVISORD ||
                                     sec == PBD_SECTION_UNIX_HTTP || sec == PBD_SECTION_INET_HTTP
                                 ? sizeof(struct pbd_daemon_conf)
                             : sec == PBD_SECTION_PROGRAM || sec == PBD_SECTION_EVENTLISTENER ||
                                     sec == PBD_SECTION_FCGI
                                 ? sizeof(struct pbd_program)
                             : sec == PBD_SECTION_GROUP ? sizeof(struct pbd_group)
                                                        : 0;
        assert_non_null(k);
        assert_true(n > 0);
        assert_string_not_equal(pbd_config_section_name(all_sections[s]), "?");
        for (size_t i = 0; i < n; i++) {
            const struct pbd_config_key *r = &k[i];
            assert_int_equal(r->section, all_sections[s]);
            for (const char *c = r->name; *c; c++)
                if (!islower((unsigned char)*c) && *c != '_')
                    fail_msg("key '%s': not lower case", r->name);
            for (size_t j = 0; j < i; j++)
                if (!strcmp(k[j].name, r->name))
                    fail_msg("key '%s' twice in [%s]", r->name,
                             pbd_config_section_name(r->section));
            assert_ptr_equal(pbd_config_key_find(r->section, r->name), r);
            assert_string_not_equal(pbd_config_type_name(r->type), "?");
            if (!r->doc || !*r->doc || strchr(r->doc, '\n'))
                fail_msg("key '%s': needs a one-line doc", r->name);
            if (r->offset == PBD_KEY_NOWHERE) {
                assert_int_equal(r->size, 0);
            } else {
                if (r->size == 0 || r->offset + r->size > struct_size)
                    fail_msg("key '%s': field outside its struct", r->name);
            }
            if (r->type == PBD_KT_INT) {
                assert_true(r->min <= r->max);
                assert_true(r->size == 4 || r->size == 8);
            }
            if (r->type == PBD_KT_BOOL)
                assert_int_equal(r->size, sizeof(int));
            if (r->type == PBD_KT_ENUM) {
                assert_non_null(r->choices);
                assert_non_null(r->expect);
                assert_int_equal(r->size, sizeof(int));
            }
            if (r->type == PBD_KT_IGNORED || r->type == PBD_KT_GLOBS)
                assert_int_equal(r->offset, PBD_KEY_NOWHERE);
            /* defaults are applied to a template shared by every instance: no pointer fields */
            if (r->def && r->stage != PBD_STAGE_LAST &&
                (r->type == PBD_KT_STRING || r->type == PBD_KT_USER || r->type == PBD_KT_REGEX ||
                 r->type == PBD_KT_ENV || r->type == PBD_KT_DEPS))
                fail_msg("key '%s': a default for a type that allocates", r->name);
        }
    }
    assert_null(pbd_config_keys(PBD_SECTION__COUNT, NULL));
    assert_null(pbd_config_key_find(PBD_SECTION_PROGRAM, "no_such_key"));
    assert_string_equal(pbd_config_type_name(PBD_KT__COUNT), "?");
}

/* Each integer key accepts its min and max (stored as is) and rejects min-1 and max+1. */
static void test_int_ranges(void **state)
{
    (void)state;
    for (size_t s = 0; s < N_LOADED; s++) {
        size_t n;
        const struct pbd_config_key *k = pbd_config_keys(loaded_sections[s], &n);
        for (size_t i = 0; i < n; i++) {
            char v[32];
            if (k[i].type != PBD_KT_INT)
                continue;
            snprintf(v, sizeof(v), "%lld", k[i].min);
            expect_int(&k[i], v, k[i].min);
            /* numprocs = max would build 100000 instances: its max is checked through max+1 */
            if ((k[i].stage != PBD_STAGE_SECTION || k[i].max <= 1000) &&
                strcmp(k[i].name, "minfds") != 0 && strcmp(k[i].name, "minprocs") != 0) {
                snprintf(v, sizeof(v), "%lld", k[i].max);
                expect_int(&k[i], v, k[i].max);
            }
            snprintf(v, sizeof(v), "%lld", k[i].min - 1);
            expect_error(&k[i], v);
            snprintf(v, sizeof(v), "%lld", k[i].max + 1);
            expect_error(&k[i], v);
            expect_error(&k[i], "twelve");
        }
    }
}

/* Each bool key reads its spellings; each enum key reads every choice; both reject nonsense
 * with the row's wording. */
static void test_bools_and_enums(void **state)
{
    (void)state;
    for (size_t s = 0; s < N_LOADED; s++) {
        size_t n;
        const struct pbd_config_key *k = pbd_config_keys(loaded_sections[s], &n);
        for (size_t i = 0; i < n; i++) {
            if (k[i].type == PBD_KT_BOOL) {
                expect_int(&k[i], "Yes", 1);
                expect_int(&k[i], "off", 0);
                expect_error(&k[i], "perhaps");
            } else if (k[i].type == PBD_KT_ENUM) {
                for (const struct pbd_config_choice *c = k[i].choices; c->name; c++)
                    expect_int(&k[i], c->name, c->value);
                expect_error(&k[i], "perhaps");
            }
        }
    }
}

/* A key absent and the same key set to the row's default load the same field. */
static void test_defaults(void **state)
{
    char err[1024], text[1024];
    struct pbd_config dflt, set;
    struct warns w;
    (void)state;
    for (size_t s = 0; s < N_LOADED; s++) {
        size_t n;
        const struct pbd_config_key *k = pbd_config_keys(loaded_sections[s], &n);
        struct pbd_config_key none = {.name = "no_such_key_x", .section = loaded_sections[s]};
        config_with(text, sizeof(text), &none, "1"); /* the section with its defaults */
        assert_int_equal(load_text(text, &dflt, &w, err, sizeof(err)), 0);
        for (size_t i = 0; i < n; i++) {
            const void *a, *b;
            int r;
            if (!k[i].def || k[i].stage == PBD_STAGE_LAST)
                continue;
            config_with(text, sizeof(text), &k[i], k[i].def);
            r = load_text(text, &set, &w, err, sizeof(err));
            if (r)
                fail_msg("%s = %s (its default): %s", k[i].name, k[i].def, err);
            a = (const char *)base_of(&dflt, &k[i]) + k[i].offset;
            b = (const char *)base_of(&set, &k[i]) + k[i].offset;
            if (k[i].type == PBD_KT_LOGFILE) { /* a string (AUTO): compare what it says */
                const char *sa, *sb;
                memcpy(&sa, a, sizeof(sa));
                memcpy(&sb, b, sizeof(sb));
                if ((sa == NULL) != (sb == NULL) || (sa && strcmp(sa, sb)))
                    fail_msg("%s: absent and '%s' differ", k[i].name, k[i].def);
            } else if (memcmp(a, b, k[i].size) != 0) {
                fail_msg("%s: absent and '%s' differ", k[i].name, k[i].def);
            }
            pbd_config_free(&set);
        }
        pbd_config_free(&dflt);
    }
}

/* Ignored supervisord keys warn as such; a required key missing is an error naming it. */
static void test_ignored_and_required(void **state)
{
    char err[1024], text[1024];
    struct pbd_config c;
    struct warns w;
    size_t n;
    const struct pbd_config_key *k = pbd_config_keys(PBD_SECTION_PROGRAM, &n);
    (void)state;
    for (size_t i = 0; i < n; i++) {
        if (k[i].type == PBD_KT_IGNORED) {
            config_with(text, sizeof(text), &k[i], "1");
            assert_int_equal(load_text(text, &c, &w, err, sizeof(err)), 0);
            assert_int_equal(w.n, 1);
            assert_non_null(strstr(w.msg[0], k[i].name));
            assert_non_null(strstr(w.msg[0], "supervisord key ignored by procbusd"));
            pbd_config_free(&c);
        }
        if (k[i].flags & PBD_KEY_REQUIRED) {
            char want[128];
            snprintf(text, sizeof(text), "[program:t]\n%s\n",
                     strcmp(k[i].name, "command") ? "command = /bin/true" : "priority = 1");
            assert_int_equal(load_text(text, &c, &w, err, sizeof(err)), -EINVAL);
            snprintf(want, sizeof(want), "[program:t] %s: missing", k[i].name);
            assert_non_null(strstr(err, want));
        }
    }
}

/* ------------------------------------------------------ docs/CONFIG.md */

#define MAX_DOC_KEYS 128

struct doc_key {
    char name[64];
    enum pbd_config_section section;
    char dflt[512]; /* the row's default cell, "" without a default column */
    int has_dflt;
    int line;
};

/* Split a table line into cells (a '|' inside `...` is text). Returns the count. */
static int split_cells(char *line, char **cells, int max)
{
    int n = 0, tick = 0;
    char *p = line, *start;
    if (*p == '|')
        p++;
    start = p;
    for (; *p && n < max; p++) {
        if (*p == '`')
            tick = !tick;
        else if (*p == '|' && !tick) {
            *p = '\0';
            cells[n++] = start;
            start = p + 1;
        }
    }
    for (int i = 0; i < n; i++) {
        while (isspace((unsigned char)*cells[i]))
            cells[i]++;
        for (size_t l = strlen(cells[i]); l && isspace((unsigned char)cells[i][l - 1]); l--)
            cells[i][l - 1] = '\0';
    }
    return n;
}

/*
 * The keys docs/CONFIG.md lists: the first cell of every row of a table whose header starts with
 * "key", under a heading naming the section (### `[procbusd]`, `[program:NAME]`, `[include]`,
 * `[supervisord]`; #### subheadings keep it; ## ends it). A cell may hold several `key`s.
 */
static size_t read_doc(const char *path, struct doc_key *out, size_t max)
{
    FILE *f = fopen(path, "r");
    char line[4096];
    int lineno = 0, section = -1, in_table = 0, key_table = 0, dflt_col = -1;
    size_t n = 0;
    if (!f)
        fail_msg("cannot open %s", path);
    while (fgets(line, sizeof(line), f)) {
        char *cells[16];
        int nc;
        lineno++;
        line[strcspn(line, "\n")] = '\0';
        if (line[0] == '#') {
            int level = (int)strspn(line, "#"), found = -1;
            /* "### `[group:NAME]`": the section whose name (up to its ':' or end) follows '[' */
            for (size_t k = 0; k < N_SECTIONS && found < 0; k++) {
                char head[64];
                const char *name = pbd_config_section_name(all_sections[k]);
                if (strchr(name, ':'))
                    snprintf(head, sizeof(head), "[%.*s", (int)(strchr(name, ':') - name + 1),
                             name);
                else
                    snprintf(head, sizeof(head), "[%s]", name);
                if (strstr(line, head))
                    found = (int)all_sections[k];
            }
            if (found >= 0)
                section = found;
            else if (level <= 3)
                section = -1;
            in_table = 0;
            continue;
        }
        if (line[0] != '|') {
            in_table = 0;
            continue;
        }
        nc = split_cells(line, cells, 16);
        if (!in_table) { /* the header */
            in_table = 1;
            key_table = nc > 0 && !strcasecmp(cells[0], "key");
            dflt_col = -1;
            for (int i = 0; i < nc; i++)
                if (!strcasecmp(cells[i], "default"))
                    dflt_col = i;
            if (key_table && section < 0)
                fail_msg("%s:%d: a key table outside a section heading", path, lineno);
            continue;
        }
        if (!key_table || nc == 0 || strspn(cells[0], "-: ") == strlen(cells[0]))
            continue; /* another table, or the |---| line */
        for (char *p = cells[0]; (p = strchr(p, '`'));) {
            char *end = strchr(p + 1, '`');
            size_t len;
            if (!end)
                break;
            len = (size_t)(end - p - 1);
            assert_true(n < max);
            assert_true(len < sizeof(out[n].name));
            memcpy(out[n].name, p + 1, len);
            out[n].name[len] = '\0';
            out[n].section = (enum pbd_config_section)section;
            out[n].line = lineno;
            out[n].has_dflt = dflt_col >= 0 && dflt_col < nc;
            snprintf(out[n].dflt, sizeof(out[n].dflt), "%s",
                     out[n].has_dflt ? cells[dflt_col] : "");
            n++;
            p = end + 1;
        }
    }
    fclose(f);
    return n;
}

static void test_doc_lists_the_table(void **state)
{
    static struct doc_key doc[MAX_DOC_KEYS];
    char src[PATH_MAX], path[PATH_MAX + 32];
    size_t nd, table_keys = 0;
    int bad = 0;
    (void)state;

    find_srcdir(src, sizeof(src));
    snprintf(path, sizeof(path), "%s/docs/CONFIG.md", src);
    nd = read_doc(path, doc, MAX_DOC_KEYS);

    /* every key the doc lists is a key of the table, in that section, listed once */
    for (size_t i = 0; i < nd; i++) {
        const struct pbd_config_key *k = pbd_config_key_find(doc[i].section, doc[i].name);
        if (!k) {
            print_error("docs/CONFIG.md:%d: `%s` is not a key of [%s] in the key table\n",
                        doc[i].line, doc[i].name, pbd_config_section_name(doc[i].section));
            bad++;
            continue;
        }
        for (size_t j = 0; j < i; j++) {
            if (doc[j].section == doc[i].section && !strcmp(doc[j].name, doc[i].name)) {
                print_error("docs/CONFIG.md:%d: `%s` listed again (first at line %d)\n",
                            doc[i].line, doc[i].name, doc[j].line);
                bad++;
            }
        }
        /* the default the doc shows is the table's */
        if (k->def && doc[i].has_dflt) {
            char want[256];
            int found = 0;
            snprintf(want, sizeof(want), "`%s`", k->def);
            for (const char *p = doc[i].dflt; *p && !found; p++)
                found = !strncasecmp(p, want, strlen(want));
            if (!found) {
                print_error("docs/CONFIG.md:%d: `%s`: the default cell '%s' does not show %s\n",
                            doc[i].line, doc[i].name, doc[i].dflt, want);
                bad++;
            }
        }
    }
    /* every key of the table is in the doc */
    for (size_t s = 0; s < N_SECTIONS; s++) {
        size_t n;
        const struct pbd_config_key *k = pbd_config_keys(all_sections[s], &n);
        for (size_t i = 0; i < n; i++) {
            int found = 0;
            table_keys++;
            for (size_t j = 0; j < nd && !found; j++)
                found = doc[j].section == k[i].section && !strcmp(doc[j].name, k[i].name);
            if (!found) {
                print_error("docs/CONFIG.md: key '%s' of [%s] is missing from its key tables\n",
                            k[i].name, pbd_config_section_name(k[i].section));
                bad++;
            }
        }
    }
    print_message("  %zu keys in the table, %zu in docs/CONFIG.md\n", table_keys, nd);
    assert_int_equal(bad, 0);
    assert_int_equal(nd, table_keys);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_table_shape),          cmocka_unit_test(test_int_ranges),
        cmocka_unit_test(test_bools_and_enums),      cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_ignored_and_required), cmocka_unit_test(test_doc_lists_the_table),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
