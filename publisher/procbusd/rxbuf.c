/* rxbuf.c - the byte format of an upgrade's state (rxbuf.h). */
#include "rxbuf.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define RX_NULL UINT64_MAX /* the length of a NULL string */

static void put(struct pbd_rxbuf *b, const void *data, size_t n)
{
    if (b->err != 0 || n == 0)
        return;
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        unsigned char *np;
        while (cap < b->len + n)
            cap *= 2;
        np = realloc(b->p, cap);
        if (np == NULL) {
            b->err = -ENOMEM;
            return;
        }
        b->p = np;
        b->cap = cap;
    }
    memcpy(b->p + b->len, data, n);
    b->len += n;
}

void pbd_rx_u64(struct pbd_rxbuf *b, uint64_t v)
{
    put(b, &v, sizeof(v));
}

void pbd_rx_bytes(struct pbd_rxbuf *b, const void *data, size_t n)
{
    pbd_rx_u64(b, n);
    put(b, data, n);
}

void pbd_rx_str(struct pbd_rxbuf *b, const char *s)
{
    if (s == NULL)
        pbd_rx_u64(b, RX_NULL);
    else
        pbd_rx_bytes(b, s, strlen(s));
}

uint64_t pbd_rx_get_u64(struct pbd_rxrd *r)
{
    uint64_t v = 0;

    if (r->err != 0)
        return 0;
    if (r->len - r->off < sizeof(v)) {
        r->err = -EPROTO;
        return 0;
    }
    memcpy(&v, r->p + r->off, sizeof(v));
    r->off += sizeof(v);
    return v;
}

/* n bytes of the state, copied (NUL-terminated); NULL on error. */
static char *take(struct pbd_rxrd *r, uint64_t n)
{
    char *s;

    if (r->err != 0)
        return NULL;
    if (n > r->len - r->off) {
        r->err = -EPROTO;
        return NULL;
    }
    s = malloc((size_t)n + 1);
    if (s == NULL) {
        r->err = -ENOMEM;
        return NULL;
    }
    memcpy(s, r->p + r->off, (size_t)n);
    s[n] = '\0';
    r->off += (size_t)n;
    return s;
}

char *pbd_rx_get_bytes(struct pbd_rxrd *r, size_t *n)
{
    uint64_t len = pbd_rx_get_u64(r);
    char *s;

    *n = 0;
    if (r->err != 0 || len == 0)
        return NULL;
    s = take(r, len);
    if (s != NULL)
        *n = (size_t)len;
    return s;
}

char *pbd_rx_get_str(struct pbd_rxrd *r)
{
    uint64_t len = pbd_rx_get_u64(r);

    if (r->err != 0 || len == RX_NULL)
        return NULL;
    return take(r, len);
}
