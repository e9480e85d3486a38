/* cmdline.h - split a command line into argv like a POSIX shell without expansions. */
#ifndef PROCBUS_CMDLINE_H
#define PROCBUS_CMDLINE_H

/*
 * Split a command line into argv like a POSIX shell without expansions:
 * whitespace (space, tab, newline ...) separates, '...' quotes literally,
 * "..." quotes with backslash escaping only $ ` " \ and newline, and outside
 * quotes a backslash escapes any character (backslash-newline joins lines).
 * Operators (| > && ;) are plain words. Returns a malloc'd NULL-terminated
 * vector (argv[0] non-NULL; free it with pbd_free_argv) or NULL with *why (if
 * why) set to a static reason: "empty command", "unterminated single quote",
 * "unterminated double quote", "trailing backslash", "out of memory".
 * cmd NULL is read as "".
 */
char **pbd_split_command(const char *cmd, const char **why);

/* Free a NULL-terminated vector of malloc'd strings and the vector. Safe on NULL. */
void pbd_free_argv(char **argv);

#endif /* PROCBUS_CMDLINE_H */
