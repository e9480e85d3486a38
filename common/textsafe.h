/* textsafe.h - the one rule for untrusted text (names, comms, command lines from the segment) on
 * its way to a terminal, into JSON, or into a Prometheus label. */
#ifndef PROCBUS_TEXTSAFE_H
#define PROCBUS_TEXTSAFE_H

#include <stddef.h>

/*
 * Bytes read from a segment are untrusted: a program name or command line may
 * hold ESC, BEL, newlines or bytes that are not UTF-8. Every tool (procbus's
 * commands, procbus-exporter) passes them through pb_text_safe before they
 * leave the process. The input is decoded as UTF-8 (strict: no overlong
 * forms, no surrogates, nothing above U+10FFFF) and each piece becomes:
 *
 *   input                          TERMINAL     JSON            PROM (label value)
 *   printable ASCII, valid UTF-8   as is        as is           as is
 *     >= U+00A0
 *   backslash                      \\           as is (*)       \\
 *   double quote                   as is        as is (*)       \"
 *   newline                        \n           as is (*)       \n
 *   tab, carriage return           \t, \r       as is (*)       U+FFFD
 *   other C0 controls, DEL         \xHH         C0 as is (*),   U+FFFD
 *                                                DEL U+FFFD
 *   C1 controls U+0080..U+009F     \xC2\xHH     U+FFFD          U+FFFD
 *   a byte that is not UTF-8       \xHH         U+FFFD          U+FFFD
 *
 * (*) the JSON writer (json-c) escapes these itself (\\, \", \n, \u001b ...).
 * So a terminal never receives a control character or a stray byte from the
 * segment, and JSON and the exposition text are always valid UTF-8 that
 * parse (jq, promtool). The TERMINAL form is unambiguous: a backslash in the
 * name is shown doubled. Program names are limited at load to a safe set
 * ([A-Za-z0-9_.@+-], docs/CONFIG.md), so a name procbusd publishes passes
 * through unchanged; the rule matters for other publishers, traced commands
 * and command lines.
 */
enum pb_text_target { PB_TEXT_TERMINAL, PB_TEXT_JSON, PB_TEXT_PROM };

/*
 * Write src[0..len) - up to its first NUL if there is one - as `target` wants
 * it into dst[cap], NUL-terminated (truncated on a character boundary when it
 * does not fit). Returns the length the whole result needs, without its NUL
 * (as snprintf: >= cap means truncated). dst may be NULL with cap 0 (to
 * measure). Never fails, never allocates; any thread.
 * The longest result is 4 x len (TERMINAL, \xHH per byte).
 */
size_t pb_text_safe(char *dst, size_t cap, const char *src, size_t len, enum pb_text_target target);

/* The room pb_text_safe may need for `n` input bytes, with the NUL. */
#define PB_TEXT_ROOM(n) (4 * (size_t)(n) + 1)

#endif /* PROCBUS_TEXTSAFE_H */
