/* verbs.h - what the control verbs' files share: one request being answered, and the handlers
 * of supervisorctl's verbs (verbs_sv.c) that verbs.c's table names. */
#ifndef PROCBUSD_VERBS_H
#define PROCBUSD_VERBS_H

#include <stddef.h>

#include "daemon_int.h"

/* One request being answered (ctl.h: detail lines at once, then one final OK/ERR line). */
struct req {
    int slot;    /* the connection: detail lines go there (pbd_ctl_reply) */
    int argc;    /* argv[0] is the verb */
    char **argv; /* NULL-terminated */
    char *final; /* the final line, "OK\n" or "ERR <reason>\n" */
    size_t flen;
    int named; /* the current target was named exactly (NAME, GROUP:NAME), not GROUP:* or all */
};

/* What a per-target handler did with one instance. */
enum target_rc {
    TARGET_OK = 0, /* done; a detail line said so */
    TARGET_ERROR,  /* refused; a detail line "NAME: ERROR (...)" said why (counted) */
    TARGET_ABORT,  /* the whole request is wrong: rq->final is set, no more targets */
};

/* The instances `sel` names (NAME, GROUP:NAME, GROUP:* or GROUP:, or all), up to max; how
 * many. Sets *named when sel names one process exactly. */
int pbd_verb_select(struct pbd_daemon *d, const char *sel, struct pbd_inst **out, size_t max,
                    int *named);

/* verbs_sv.c: whole-daemon handlers (they write rq->final) */
void pbd_verb_reread(struct pbd_daemon *d, struct req *rq);
void pbd_verb_update(struct pbd_daemon *d, struct req *rq); /* update and reload */
void pbd_verb_add(struct pbd_daemon *d, struct req *rq);
void pbd_verb_remove(struct pbd_daemon *d, struct req *rq);
void pbd_verb_avail(struct pbd_daemon *d, struct req *rq);
void pbd_verb_logfile(struct pbd_daemon *d, struct req *rq);
void pbd_verb_mainlog(struct pbd_daemon *d, struct req *rq);
void pbd_verb_names(struct pbd_daemon *d, struct req *rq);

/* verbs_sv.c: per-target handler of `clear` */
enum target_rc pbd_verb_clear_one(struct pbd_daemon *d, struct req *rq, struct pbd_inst *in);

#endif /* PROCBUSD_VERBS_H */
