#!/usr/bin/env python3
# sv_dump.py - what supervisord's own parser (supervisor 4.2.5, ServerOptions) makes of a
# configuration, one "NAME FIELD VALUE" line per field: the reference side of the corpus test
# (tests/unit/test_parity_corpus.c prints procbusd's in the same form and compares).
# Usage: sv_dump.py FILE   (exit 2 with the reason when supervisord refuses the file)
import json
import os
import shlex
import socket
import sys

from supervisor import events, options
from supervisor.datatypes import Automatic, RestartUnconditionally, RestartWhenExitUnexpected
from supervisor.loggers import LevelsByName

# procbusd's event types (common/config.h enum pbd_evtype), leaves only
LEAVES = ["PROCESS_STATE_STOPPED", "PROCESS_STATE_EXITED", "PROCESS_STATE_STARTING",
          "PROCESS_STATE_STOPPING", "PROCESS_STATE_BACKOFF", "PROCESS_STATE_FATAL",
          "PROCESS_STATE_RUNNING", "PROCESS_STATE_UNKNOWN", "PROCESS_COMMUNICATION_STDOUT",
          "PROCESS_COMMUNICATION_STDERR", "PROCESS_LOG_STDOUT", "PROCESS_LOG_STDERR",
          "REMOTE_COMMUNICATION", "SUPERVISOR_STATE_CHANGE_RUNNING",
          "SUPERVISOR_STATE_CHANGE_STOPPING", "TICK_5", "TICK_60", "TICK_3600",
          "PROCESS_GROUP_ADDED", "PROCESS_GROUP_REMOVED"]


def logname(v):
    return "AUTO" if v is Automatic else v


def octal(v):
    return None if v is None else oct(v)


def namespec(group, name):
    return name if group == name else "%s:%s" % (group, name)


def level_name(level):
    # procbusd's levels: error (critical too), warn, info, debug (trace, blather too)
    if level >= LevelsByName.ERRO:
        return "error"
    if level >= LevelsByName.WARN:
        return "warn"
    if level >= LevelsByName.INFO:
        return "info"
    return "debug"


def main():
    path = sys.argv[1]
    o = options.ServerOptions()
    o.stderr = open(os.devnull, "w")  # realize() prints usage there on errors
    try:
        o.realize(args=["-c", path], doc="")
    except SystemExit:
        print("supervisord refuses %s" % path, file=sys.stderr)
        sys.exit(2)
    out = []

    def put(name, field, value):
        # values as JSON (strings quoted, None as null): test_parity_corpus.c prints the same
        out.append("%s %s %s" % (name, field, json.dumps(value, ensure_ascii=False)))

    d = "[daemon]"
    put(d, "childlogdir", o.childlogdir)
    put(d, "identifier", o.identifier)
    put(d, "logfile", o.logfile)
    put(d, "logfile_maxbytes", o.logfile_maxbytes)
    put(d, "logfile_backups", o.logfile_backups)
    put(d, "loglevel", level_name(o.loglevel))
    put(d, "pidfile", o.pidfile)
    put(d, "nocleanup", int(bool(o.nocleanup)))
    put(d, "strip_ansi", int(bool(o.strip_ansi)))
    put(d, "nodaemon", int(bool(o.nodaemon)))
    put(d, "silent", int(bool(o.silent)))
    put(d, "umask", octal(o.umask))
    put(d, "minfds", o.minfds)
    put(d, "minprocs", o.minprocs)
    put(d, "user", o.uid)
    put(d, "directory", o.directory)
    for group in o.process_group_configs:
        for p in group.process_configs:
            n = namespec(group.name, p.name)
            kind = {"EventListenerConfig": "eventlistener",
                    "FastCGIProcessConfig": "fcgi-program"}.get(type(p).__name__, "program")
            put(n, "kind", kind)
            put(n, "group", group.name)
            put(n, "group_priority", group.priority)
            put(n, "command", p.command)
            put(n, "argv", shlex.split(p.command))  # supervisord's get_execv_args
            put(n, "directory", p.directory)
            put(n, "umask", octal(p.umask))
            put(n, "priority", p.priority)
            put(n, "autostart", int(bool(p.autostart)))
            put(n, "autorestart", "true" if p.autorestart is RestartUnconditionally
                else "unexpected" if p.autorestart is RestartWhenExitUnexpected else "false")
            put(n, "startsecs", p.startsecs)
            put(n, "startretries", p.startretries)
            put(n, "stopsignal", int(p.stopsignal))
            put(n, "stopwaitsecs", p.stopwaitsecs)
            put(n, "stopasgroup", int(bool(p.stopasgroup)))
            put(n, "killasgroup", int(bool(p.killasgroup)))
            put(n, "exitcodes", ",".join(str(c) for c in sorted(p.exitcodes)))
            put(n, "redirect_stderr", int(bool(p.redirect_stderr)))
            put(n, "user", p.uid)
            for ch in ("stdout", "stderr"):
                put(n, ch + "_logfile", logname(getattr(p, ch + "_logfile")))
                put(n, ch + "_logfile_maxbytes", getattr(p, ch + "_logfile_maxbytes"))
                put(n, ch + "_logfile_backups", getattr(p, ch + "_logfile_backups"))
                put(n, ch + "_events_enabled", int(bool(getattr(p, ch + "_events_enabled"))))
                put(n, ch + "_capture_maxbytes", getattr(p, ch + "_capture_maxbytes"))
            env = p.environment or {}
            put(n, "environment", ";".join("%s=%s" % kv for kv in sorted(env.items())))
            put(n, "serverurl", p.serverurl or o.serverurl)  # as process.py does
            if kind == "eventlistener":
                leaves = [e for e in LEAVES
                          if any(issubclass(getattr(events.EventTypes, e), t)
                                 for t in group.pool_events)]
                put(n, "events", ",".join(leaves))
                put(n, "buffer_size", group.buffer_size)
            if kind == "fcgi-program":
                sc = group.socket_config
                put(n, "socket", sc.url)
                owner = getattr(sc, "owner", None)
                put(n, "socket_owner", None if owner is None else "%d:%d" % owner)
                put(n, "socket_mode", octal(getattr(sc, "mode", None)))
                put(n, "socket_backlog", sc.get_backlog() or socket.SOMAXCONN)
    for line in out:
        print(line)


if __name__ == "__main__":
    main()
