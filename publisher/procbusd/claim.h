/* A segment name claimed for a procbusd's lifetime, deleted file or not (claim.c). */
#ifndef PBD_CLAIM_H
#define PBD_CLAIM_H

#include <stddef.h>

/*
 * pbd_claim_segment - claim segment `spec` (procbus_segment_path's rule) for
 * this process: bind an abstract unix socket named after the segment's full
 * path (`@procbusd:PATH`, or `@procbusd:#HASH` for a long path). The kernel
 * frees the name when the last descriptor closes, kill -9 included, and no
 * file-system cleaner (tmpfiles, logind's RemoveIPC=) can remove it: while a
 * procbusd lives, a second one for the same segment is refused even in the
 * moment the first one's segment file is gone and not yet put back.
 * Context: before procbus_pub_open. Abstract names belong to the network
 * namespace: two procbusd in different network namespaces that share a
 * segment file rely on the segment's lock alone.
 * The socket listens (never accepted): a procbusd finding the name taken
 * connects and reads the holder's credentials (SO_PEERCRED). Abstract names
 * have no permissions, so a name held by a user other than root and our own
 * (or by a socket that does not listen) is a squatter, not a procbusd: the
 * caller goes on without the claim (the segment's lock still refuses a
 * second publisher while the file is there).
 * Returns: the socket (O_CLOEXEC; keep it open while publishing), or
 * -EBUSY (a procbusd of root or of our user holds the claim), -EPERM (another
 * user, or something that does not listen, holds the name: squatted),
 * -ENAMETOOLONG / -EINVAL
 * (procbus_segment_path's errors), or another negative errno from
 * socket(2)/bind(2). `what`, when not NULL, receives the name bound (or
 * tried), NUL-terminated, for messages ('@' for the leading NUL).
 */
int pbd_claim_segment(const char *spec, char *what, size_t cap);

#endif
