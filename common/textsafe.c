/* textsafe.c - the one rule for untrusted text on its way to a terminal, JSON or a Prometheus
 * label (the table is in textsafe.h). */
#include "textsafe.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

/* Length of the valid UTF-8 sequence at s[0..n) (1-4), or 0 when s[0] does not start one. */
static size_t utf8_len(const unsigned char *s, size_t n, uint32_t *cp)
{
    uint32_t c = s[0], min;
    size_t len, i;

    if (c < 0x80) {
        *cp = c;
        return 1;
    }
    if (c >= 0xc2 && c <= 0xdf) {
        len = 2;
        c &= 0x1f;
        min = 0x80;
    } else if (c >= 0xe0 && c <= 0xef) {
        len = 3;
        c &= 0x0f;
        min = 0x800;
    } else if (c >= 0xf0 && c <= 0xf4) {
        len = 4;
        c &= 0x07;
        min = 0x10000;
    } else {
        return 0;
    }
    if (len > n)
        return 0;
    for (i = 1; i < len; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        c = (c << 6) | (s[i] & 0x3f);
    }
    if (c < min || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff))
        return 0;
    *cp = c;
    return len;
}

/* Appends to dst[cap] whole pieces only; counts what the whole result needs. */
struct out {
    char *dst;
    size_t cap, need, used;
    int full;
};

static void put(struct out *o, const char *piece, size_t n)
{
    if (!o->full && o->dst != NULL && o->used + n < o->cap) {
        memcpy(o->dst + o->used, piece, n);
        o->used += n;
    } else {
        o->full = 1; /* truncate on a piece boundary: never half a character or escape */
    }
    o->need += n;
}

static void put_hex(struct out *o, unsigned char b)
{
    char esc[5];
    snprintf(esc, sizeof(esc), "\\x%02x", b);
    put(o, esc, 4);
}

static const char replacement[] = "\xef\xbf\xbd"; /* U+FFFD */

/* Invisible format characters that can disguise text on a terminal (bidi overrides, zero-width
 * characters, the soft hyphen, the BOM). */
static int invisible(uint32_t cp)
{
    return cp == 0xad || (cp >= 0x200b && cp <= 0x200f) || (cp >= 0x202a && cp <= 0x202e) ||
           (cp >= 0x2060 && cp <= 0x206f) || cp == 0xfeff;
}

size_t pb_text_safe(char *dst, size_t cap, const char *src, size_t len, enum pb_text_target target)
{
    const unsigned char *s = (const unsigned char *)src;
    struct out o = {dst, cap, 0, 0, 0};
    size_t i = 0;

    if (src != NULL) {
        const void *nul = memchr(src, '\0', len);
        if (nul != NULL)
            len = (size_t)((const char *)nul - src);
    } else {
        len = 0;
    }
    while (i < len) {
        uint32_t cp = 0;
        size_t n = utf8_len(s + i, len - i, &cp);
        int control = n > 0 && (cp < 0x20 || cp == 0x7f || (cp >= 0x80 && cp <= 0x9f));

        if (n == 0) { /* not UTF-8 */
            if (target == PB_TEXT_TERMINAL)
                put_hex(&o, s[i]);
            else
                put(&o, replacement, 3);
            i++;
            continue;
        }
        if (target == PB_TEXT_TERMINAL) {
            if (cp == '\\')
                put(&o, "\\\\", 2);
            else if (cp == '\n')
                put(&o, "\\n", 2);
            else if (cp == '\t')
                put(&o, "\\t", 2);
            else if (cp == '\r')
                put(&o, "\\r", 2);
            else if (control)
                for (size_t k = 0; k < n; k++)
                    put_hex(&o, s[i + k]);
            else if (invisible(cp)) {
                char esc[16];
                snprintf(esc, sizeof(esc), "\\u%04x", (unsigned)(cp & 0xffff));
                put(&o, esc, 6);
            } else
                put(&o, (const char *)s + i, n);
        } else if (target == PB_TEXT_JSON) {
            if (cp == 0x7f || (cp >= 0x80 && cp <= 0x9f))
                put(&o, replacement, 3);
            else /* json-c escapes C0, quotes and backslashes */
                put(&o, (const char *)s + i, n);
        } else { /* PB_TEXT_PROM */
            if (cp == '\\')
                put(&o, "\\\\", 2);
            else if (cp == '"')
                put(&o, "\\\"", 2);
            else if (cp == '\n')
                put(&o, "\\n", 2);
            else if (control)
                put(&o, replacement, 3);
            else
                put(&o, (const char *)s + i, n);
        }
        i += n;
    }
    if (dst != NULL && cap > 0)
        dst[o.used] = '\0';
    return o.need;
}

/* A code point that may not be in a published name (see textsafe.h). */
static int unsafe_in_name(uint32_t cp)
{
    return cp <= 0x20 || cp == 0x7f || (cp >= 0x80 && cp <= 0xa0) || invisible(cp) ||
           cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200a) || (cp >= 0x2028 && cp <= 0x202f) ||
           cp == 0x205f || cp == 0x3000 || cp == ':' || cp == '/';
}

const char *pb_text_unsafe_in_name(const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t len = strlen(s), i = 0;

    while (i < len) {
        uint32_t cp = 0;
        size_t n = utf8_len(p + i, len - i, &cp);
        if (n == 0 || unsafe_in_name(cp))
            return s + i;
        i += n;
    }
    return NULL;
}
