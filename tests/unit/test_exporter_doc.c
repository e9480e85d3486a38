/* test_exporter_doc.c - docs/EXPORTER.md lists exactly the exporter's metric families (the table).
 */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "support.h"

/*
 * The exporter's metric families are one table (readers/exporter/families.c),
 * printed by `procbus-exporter --list-metrics` as NAME TAB TYPE TAB LABELS TAB
 * HELP. docs/EXPORTER.md describes them in its "| metric | type | meaning |"
 * table, one row each: "| `NAME{LABELS}` | TYPE | ... |" (no braces when there
 * are no labels). Every family must have exactly one row with its type and its
 * labels, and every row must be a family.
 */

#define MAX_FAM 64

struct fam {
    char name[96], type[16], labels[64];
    int line; /* docs: the line it is on */
};

struct fams {
    int n;
    struct fam f[MAX_FAM];
};

/* 1 if dir holds the source tree (docs/EXPORTER.md next to readers/exporter/). */
static int is_srcdir(const char *dir)
{
    char a[PATH_MAX], b[PATH_MAX];
    snprintf(a, sizeof(a), "%s/docs/EXPORTER.md", dir);
    snprintf(b, sizeof(b), "%s/readers/exporter/families.c", dir);
    return access(a, R_OK) == 0 && access(b, R_OK) == 0;
}

static int walk_up(const char *start, char *out, size_t n)
{
    char dir[PATH_MAX];
    if (!start || !realpath(start, dir))
        return 0;
    for (int depth = 0; depth < 16; depth++) {
        char *slash;
        if (is_srcdir(dir)) {
            snprintf(out, n, "%s", dir);
            return 1;
        }
        slash = strrchr(dir, '/');
        if (!slash || !strcmp(dir, "/"))
            return 0;
        slash[slash == dir] = '\0';
    }
    return 0;
}

/* The source tree: $PROCBUS_SRCDIR, else up from the current folder, else up from this binary. */
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
    fail_msg("cannot find the source tree (docs/EXPORTER.md): set PROCBUS_SRCDIR");
}

/* The exporter's table, from `procbus-exporter --list-metrics`. */
static void table_families(struct fams *t)
{
    char cmd[PATH_MAX + 32], line[1024];
    FILE *p;
    int st;

    snprintf(cmd, sizeof(cmd), "%s/procbus-exporter --list-metrics", PROCBUS_BUILD_DIR);
    p = popen(cmd, "r");
    assert_non_null(p);
    t->n = 0;
    while (fgets(line, sizeof(line), p) != NULL) {
        struct fam *f = &t->f[t->n];
        char *name = strtok(line, "\t"), *type = strtok(NULL, "\t"), *labels = strtok(NULL, "\t"),
             *help = strtok(NULL, "\n");
        if (name == NULL || type == NULL || labels == NULL || help == NULL || help[0] == '\0')
            fail_msg("--list-metrics: a line without name, type, labels and help");
        assert_true(t->n < MAX_FAM);
        snprintf(f->name, sizeof(f->name), "%s", name);
        snprintf(f->type, sizeof(f->type), "%s", type);
        snprintf(f->labels, sizeof(f->labels), "%s", strcmp(labels, "-") == 0 ? "" : labels);
        t->n++;
    }
    st = pclose(p);
    assert_int_equal(st, 0);
    assert_true(t->n > 0);
}

/* The rows of the "| metric | type | meaning |" table of a document's text (modified in place). */
static void doc_families(char *text, struct fams *d)
{
    int in_table = 0, lineno = 0;
    char *line, *save = NULL;

    d->n = 0;
    for (line = strtok_r(text, "\n", &save); line != NULL; line = strtok_r(NULL, "\n", &save)) {
        char *c1, *c2, *brace, *tick;
        struct fam *f;

        lineno++;
        if (strncmp(line, "| metric | type |", 17) == 0) {
            in_table = 1;
            continue;
        }
        if (!in_table || strncmp(line, "|---", 4) == 0)
            continue;
        if (line[0] != '|') {
            in_table = 0;
            continue;
        }
        /* | `name{labels}` | type | meaning | */
        c1 = strchr(line + 1, '`');
        tick = c1 ? strchr(c1 + 1, '`') : NULL;
        c2 = tick ? strchr(tick, '|') : NULL;
        if (c1 == NULL || tick == NULL || c2 == NULL)
            fail_msg("docs/EXPORTER.md:%d: a metric row without `name`: %s", lineno, line);
        assert_true(d->n < MAX_FAM);
        f = &d->f[d->n++];
        f->line = lineno;
        *tick = '\0';
        brace = strchr(c1 + 1, '{');
        if (brace != NULL) {
            char *close = strchr(brace, '}');
            if (close == NULL)
                fail_msg("docs/EXPORTER.md:%d: labels without '}'", lineno);
            *close = '\0';
            snprintf(f->labels, sizeof(f->labels), "%s", brace + 1);
            *brace = '\0';
        } else {
            f->labels[0] = '\0';
        }
        snprintf(f->name, sizeof(f->name), "%s", c1 + 1);
        c2++;
        while (*c2 == ' ')
            c2++;
        snprintf(f->type, sizeof(f->type), "%.*s", (int)strcspn(c2, " |"), c2);
    }
}

/* How many disagreements between the table and the docs, each printed. */
static int compare(const struct fams *t, const struct fams *d)
{
    int bad = 0, i, j;

    for (i = 0; i < t->n; i++) {
        int found = 0;
        for (j = 0; j < d->n; j++) {
            if (strcmp(t->f[i].name, d->f[j].name) != 0)
                continue;
            if (found++)
                print_error("docs/EXPORTER.md:%d: %s listed twice\n", d->f[j].line, d->f[j].name),
                    bad++;
            if (strcmp(t->f[i].type, d->f[j].type) != 0)
                print_error("docs/EXPORTER.md:%d: %s is a %s, the docs say %s\n", d->f[j].line,
                            t->f[i].name, t->f[i].type, d->f[j].type),
                    bad++;
            if (strcmp(t->f[i].labels, d->f[j].labels) != 0)
                print_error("docs/EXPORTER.md:%d: %s has labels {%s}, the docs say {%s}\n",
                            d->f[j].line, t->f[i].name, t->f[i].labels, d->f[j].labels),
                    bad++;
        }
        if (!found)
            print_error("docs/EXPORTER.md: no row for %s (%s)\n", t->f[i].name, t->f[i].type),
                bad++;
    }
    for (j = 0; j < d->n; j++) {
        for (i = 0; i < t->n && strcmp(t->f[i].name, d->f[j].name) != 0; i++)
            ;
        if (i == t->n)
            print_error("docs/EXPORTER.md:%d: %s is not a metric family of the exporter\n",
                        d->f[j].line, d->f[j].name),
                bad++;
    }
    return bad;
}

static char *read_doc(void)
{
    char src[PATH_MAX], path[PATH_MAX + 32];
    size_t len;
    char *text;

    find_srcdir(src, sizeof(src));
    snprintf(path, sizeof(path), "%s/docs/EXPORTER.md", src);
    text = pbt_slurp(path, &len);
    assert_non_null(text);
    return text;
}

static void test_docs_list_exactly_the_families(void **state)
{
    static struct fams t, d;
    char *text = read_doc();
    (void)state;

    table_families(&t);
    doc_families(text, &d);
    print_message("the exporter's table: %d families; docs/EXPORTER.md: %d rows\n", t.n, d.n);
    assert_int_equal(compare(&t, &d), 0);
    free(text);
}

/* The check itself catches a missing row, an extra one, a wrong type and wrong labels. */
static void test_check_catches_drift(void **state)
{
    static struct fams t, d;
    static const char doc[] = "| metric | type | meaning |\n|---|---|---|\n"
                              "| `procbus_a{program}` | gauge | x |\n"
                              "| `procbus_b` | counter | y |\n\nafter\n";
    char text[sizeof(doc)];
    (void)state;

    print_message("four planted disagreements follow, each reported:\n");
    t.n = 2;
    snprintf(t.f[0].name, sizeof(t.f[0].name), "procbus_a");
    snprintf(t.f[0].type, sizeof(t.f[0].type), "gauge");
    snprintf(t.f[0].labels, sizeof(t.f[0].labels), "program");
    snprintf(t.f[1].name, sizeof(t.f[1].name), "procbus_b");
    snprintf(t.f[1].type, sizeof(t.f[1].type), "counter");
    t.f[1].labels[0] = '\0';
    memcpy(text, doc, sizeof(doc));
    doc_families(text, &d);
    assert_int_equal(d.n, 2);
    assert_int_equal(compare(&t, &d), 0);
    snprintf(t.f[1].type, sizeof(t.f[1].type), "gauge"); /* wrong type */
    assert_int_equal(compare(&t, &d), 1);
    snprintf(t.f[1].type, sizeof(t.f[1].type), "counter");
    snprintf(t.f[0].labels, sizeof(t.f[0].labels), "program,state"); /* wrong labels */
    assert_int_equal(compare(&t, &d), 1);
    snprintf(t.f[0].labels, sizeof(t.f[0].labels), "program");
    t.n = 3; /* a family the docs lack */
    snprintf(t.f[2].name, sizeof(t.f[2].name), "procbus_c");
    snprintf(t.f[2].type, sizeof(t.f[2].type), "gauge");
    t.f[2].labels[0] = '\0';
    assert_int_equal(compare(&t, &d), 1);
    t.n = 1; /* a row that is no family */
    assert_int_equal(compare(&t, &d), 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_check_catches_drift),
        cmocka_unit_test(test_docs_list_exactly_the_families),
    };
    return cmocka_run_group_tests_name("exporter_doc", tests, NULL, NULL);
}
