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
 *   invisible format characters    \uXXXX       as is           as is
 *     (U+00AD, U+200B..U+200F,
 *     U+202A..U+202E bidi,
 *     U+2060..U+206F, U+FEFF)
 *   a byte that is not UTF-8       \xHH         U+FFFD          U+FFFD
 *
 * (*) the JSON writer (json-c) escapes these itself (\\, \", \n, \u001b ...).
 * So a terminal never receives a control character or a stray byte from the
 * segment, and JSON and the exposition text are always valid UTF-8 that
 * parse (jq, promtool). The TERMINAL form is unambiguous: a backslash in the
 * name is shown doubled. Program names are limited at load to a safe set
 * (pb_text_unsafe_in_name, docs/CONFIG.md), so a name procbusd publishes passes
 * through unchanged; the rule matters for other publishers, traced commands
 * and command lines. (The name rule is pb_text_unsafe_in_name below.)
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

/*
 * The safe set for names procbusd publishes (program and process names; the
 * rule behind docs/CONFIG.md's): valid UTF-8 without controls (C0, DEL, C1),
 * without any kind of space (U+0020, U+00A0, U+1680, U+2000..U+200A,
 * U+2028, U+2029, U+202F, U+205F, U+3000), without invisible format
 * characters that can disguise a name on a terminal (U+00AD, U+200B..U+200F,
 * U+202A..U+202E, U+2060..U+206F, U+FEFF), and without ':' or '/' (group
 * separator, path). Returns NULL when `s` (NUL-terminated) is all safe, else a
 * pointer to its first offending byte.
 */
const char *pb_text_unsafe_in_name(const char *s);

/* The room pb_text_safe may need for `n` input bytes, with the NUL. */
#define PB_TEXT_ROOM(n) (4 * (size_t)(n) + 1)

#endif /* PROCBUS_TEXTSAFE_H */
