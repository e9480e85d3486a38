/* rxbuf.h - the byte format of an upgrade's state (reexec.c): values appended, read back in order.
 */
#ifndef PROCBUSD_RXBUF_H
#define PROCBUSD_RXBUF_H

#include <stddef.h>
#include <stdint.h>

/*
 * The old image appends, the new image (the same build or a newer one, reading the version the
 * old one wrote) reads back in the same order. Values are host-endian: both images run on the
 * same machine. A writer that runs out of memory, or a reader that runs past the end, sets
 * `err` (-ENOMEM, -EPROTO) and every later call does nothing (reads give 0 / NULL): check `err`
 * once at the end.
 */
struct pbd_rxbuf {
    unsigned char *p; /* malloc'd */
    size_t len, cap;
    int err;
};

struct pbd_rxrd {
    const unsigned char *p;
    size_t len, off;
    int err;
};

void pbd_rx_u64(struct pbd_rxbuf *b, uint64_t v);
/* n bytes, their count first (data may be NULL when n is 0). */
void pbd_rx_bytes(struct pbd_rxbuf *b, const void *data, size_t n);
/* A string, or NULL (told apart from ""). */
void pbd_rx_str(struct pbd_rxbuf *b, const char *s);

uint64_t pbd_rx_get_u64(struct pbd_rxrd *r);
/* What pbd_rx_bytes wrote, malloc'd and NUL-terminated (beyond *n); NULL when empty (*n 0), out
 * of memory or past the end (r->err set then). */
char *pbd_rx_get_bytes(struct pbd_rxrd *r, size_t *n);
/* What pbd_rx_str wrote, malloc'd; NULL for a NULL (or an error, r->err set). */
char *pbd_rx_get_str(struct pbd_rxrd *r);

#endif /* PROCBUSD_RXBUF_H */
