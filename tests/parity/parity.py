#!/usr/bin/env python3
# parity.py - the parity suite: each scenario runs under real supervisord (Debian's supervisor
# 4.2.5, with supervisorctl) and under procbusd (with procbus), and what they do is compared:
# transitions (recorded by the same event listener under both), files, command outputs and exit
# codes, normalized for pids, times and temp folders. tests/unit/test_parity.c runs one
# scenario per cmocka test.
# Usage: parity.py --build DIR SCENARIO   (exit 0: the same; 1: a difference, printed; 77: skip)
import argparse
import glob
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

TIMEOUT = float(os.environ.get("PARITY_TIMEOUT", "60"))  # generous: slow, loaded machines
PY = sys.executable

RECORDER = r'''
import sys
out = open(sys.argv[1], "a")
def w(s):
    sys.stdout.write(s)
    sys.stdout.flush()
while True:
    w("READY\n")
    line = sys.stdin.readline()
    if not line:
        break
    hdr = dict(x.split(":", 1) for x in line.split())
    payload = sys.stdin.read(int(hdr["len"]))
    out.write(hdr["eventname"] + " " + payload.replace("\n", "\\n") + "\n")
    out.flush()
    w("RESULT 2\nOK")
'''


class Skip(Exception):
    pass


class Daemon:
    """One daemon of a scenario: supervisord (kind "sv") or procbusd ("pb")."""

    def __init__(self, kind, build, top):
        self.kind = kind
        self.build = build
        self.dir = tempfile.mkdtemp(prefix="parity-%s-" % kind, dir=top)
        self.conf = os.path.join(self.dir, "daemon.conf")
        self.events = os.path.join(self.dir, "events.txt")
        self.proc = None
        self.sock = os.path.join(self.dir, "pb.sock")
        self.seg = os.path.join(self.dir, "pb.seg")
        with open(os.path.join(self.dir, "recorder.py"), "w") as f:
            f.write(RECORDER)

    # ---- configuration ----

    def write_conf(self, body, sv=None, recorder=True):
        opts = {"nodaemon": "true", "logfile": "%(here)s/main.log",
                "pidfile": "%(here)s/daemon.pid", "childlogdir": "%(here)s"}
        opts.update(sv or {})
        text = "[supervisord]\n" + "".join("%s = %s\n" % kv for kv in opts.items() if kv[1])
        text += ("[unix_http_server]\nfile = %(here)s/sv.sock\n"
                 "[rpcinterface:supervisor]\n"
                 "supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface\n"
                 "[supervisorctl]\nserverurl = unix://%(here)s/sv.sock\n"
                 "[procbusd]\nsegment = %(here)s/pb.seg\nsocket = %(here)s/pb.sock\n"
                 "trace = off\n")
        if recorder:
            text += ("[eventlistener:recorder]\ncommand = %s %%(here)s/recorder.py "
                     "%%(here)s/events.txt\nevents = PROCESS_STATE\nbuffer_size = 1000\npriority = -100\n"
                     "stdout_logfile = NONE\nstderr_logfile = %%(here)s/recorder.err\n" % PY)
        text += body.replace("@DIR@", self.dir).replace("@PY@", PY)
        with open(self.conf, "w") as f:
            f.write(text)

    # ---- running ----

    def env(self):
        return {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": self.dir, "LANG": "C.UTF-8",
                "TMPDIR": self.dir}

    def start(self, body, sv=None, recorder=True, wait=None):
        self.write_conf(body, sv, recorder)
        if self.kind == "sv":
            cmd = [shutil.which("supervisord"), "-c", self.conf]
        else:
            cmd = [os.path.join(self.build, "procbusd"), "-c", self.conf]
        self.out = open(os.path.join(self.dir, "daemon.out"), "w")
        self.proc = subprocess.Popen(cmd, cwd=self.dir, env=self.env(), stdout=self.out,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        self.until(lambda: self.ctl("status")[0] in (0, 3), "the daemon answers")
        if recorder:
            self.wait_state("recorder", "RUNNING")
        for name in wait or []:
            self.wait_state(name, "RUNNING")

    def ctl(self, *args, timeout=None):
        if self.kind == "sv":
            cmd = [shutil.which("supervisorctl"), "-c", self.conf] + list(args)
        else:
            cmd = [os.path.join(self.build, "procbus"), "-s", self.seg, "-S", self.sock,
                   "-t", "60"] + list(args)
        r = subprocess.run(cmd, cwd=self.dir, env=self.env(), stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, timeout=timeout or TIMEOUT)
        return r.returncode, self.norm(r.stdout.decode("utf-8", "replace"))

    def ctl_sorted(self, *args):
        """ctl, its lines sorted: supervisorctl prints a group's or all programs' results in
        the order they complete (its stopAllProcesses, startProcessGroup ...)."""
        rc, out = self.ctl(*args)
        return rc, "".join(sorted(out.splitlines(True)))

    def norm(self, s):
        s = s.replace(self.dir, "@DIR@")
        s = re.sub(r"pid \d+, uptime [0-9:]+", "pid N, uptime T", s)
        s = re.sub(r"\bpid:\d+", "pid:N", s)
        s = re.sub(r"with pid \d+", "with pid N", s)
        s = re.sub(r"---(\w+)-[a-z0-9_]{8}\.log", r"---\1-XXXXXXXX.log", s)
        s = re.sub(r"\b[A-Z][a-z]{2} \d\d \d\d:\d\d [AP]M\b", "DATE", s)  # stop times
        return s

    def until(self, cond, what, timeout=None):
        end = time.time() + (timeout or TIMEOUT)
        while time.time() < end:
            if self.proc is not None and self.proc.poll() is not None and what != "exit":
                raise AssertionError("%s: the daemon exited (%s) waiting for %s"
                                     % (self.kind, self.proc.returncode, what))
            v = cond()
            if v:
                return v
            time.sleep(0.1)
        raise AssertionError("%s: timed out waiting for %s" % (self.kind, what))

    def states(self):
        """{namespec: state} from `status`."""
        rc, out = self.ctl("status")
        st = {}
        for line in out.splitlines():
            f = line.split()
            if len(f) >= 2 and "ERROR" not in line:
                st[f[0]] = f[1]
        return st

    def wait_state(self, name, state):
        self.until(lambda: self.states().get(name) == state, "%s %s" % (name, state))

    def wait_event(self, pattern):
        """Until the recorder has recorded a line matching pattern."""
        def seen():
            try:
                with open(self.events) as f:
                    return re.search(pattern, f.read(), re.M)
            except OSError:
                return None
        self.until(seen, "event /%s/" % pattern)

    def transitions(self, skip=("recorder",)):
        """Per process, the sequence of state events (normalized), from the recorder."""
        seqs = {}
        try:
            lines = open(self.events).read().splitlines()
        except OSError:
            lines = []
        for line in lines:
            name, _, payload = line.partition(" ")
            kv = dict(x.split(":", 1) for x in payload.split("\\n")[0].split() if ":" in x)
            p = kv.get("processname")
            if p is None or p in skip:
                continue
            kv.pop("processname")
            if "pid" in kv:
                kv["pid"] = "N"
            seqs.setdefault(p, []).append(name + " " + " ".join(
                "%s:%s" % item for item in sorted(kv.items())))
        return seqs

    def file(self, rel):
        try:
            with open(os.path.join(self.dir, rel), "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return None

    def files(self, pattern):
        return sorted(self.norm(os.path.basename(p))
                      for p in glob.glob(os.path.join(self.dir, pattern)))

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=TIMEOUT)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        code = self.proc.returncode if self.proc is not None else None
        try:  # nothing of a scenario outlives it
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (OSError, AttributeError):
            pass
        return code


# ---------------------------------------------------------------------------- scenarios
# Each runs against one Daemon and returns what it saw; the suite compares the two dicts.
# A program that must fail before startsecs has startsecs = 3: supervisord's loop notices an
# exit up to a second late (its poll is retried after SIGCHLD), and with startsecs = 1 it may
# call RUNNING a program that exited at once (docs/SUPERVISORD.md, timing).
# DIFFERENT[scenario] lists the keys whose values differ on purpose: {key: (sv, pb)}.

def s_auto_logs(d):
    """AUTO logs: one file per stream in childlogdir, named as supervisord names them,
    readable with tail (by bytes, by stream)."""
    d.start("[program:web]\ncommand = sh -c 'echo out-line; echo err-line >&2; exec sleep 1000'\n"
            "startsecs = 0\n", wait=["web"])
    d.until(lambda: d.ctl("tail", "web")[1].startswith("out-line"), "web's output")
    d.until(lambda: d.ctl("tail", "web", "stderr")[1].startswith("err-line"), "web's stderr")
    return {"files": d.files("web-*.log"),
            "tail": d.ctl("tail", "web"),
            "tail stderr": d.ctl("tail", "web", "stderr"),
            "tail -4": d.ctl("tail", "-4", "web"),
            "tail nosuch": d.ctl("tail", "nosuch")[0] != 0}


def s_supervisord_section(d):
    """[supervisord] childlogdir, identifier, environment, logfile: AUTO names, environment."""
    os.mkdir(os.path.join(d.dir, "children"))
    d.start("[program:envy]\ncommand = sh -c 'echo G=$GLOBAL_A $GLOBAL_B; exec sleep 1000'\n"
            "startsecs = 0\n",
            sv={"childlogdir": "%(here)s/children", "identifier": "myid",
                "environment": 'GLOBAL_A="one",GLOBAL_B="two words"'}, wait=["envy"])
    d.until(lambda: d.ctl("tail", "envy")[1].startswith("G="), "envy's output")
    return {"files": d.files("children/*.log"), "tail": d.ctl("tail", "envy"),
            "main log": os.path.exists(os.path.join(d.dir, "main.log"))}


def s_group(d):
    """[group:g] programs=a,b: GROUP:NAME in status, stop/start g:*, g:a."""
    d.start("[program:a]\ncommand = sleep 1000\nstartsecs = 0\n"
            "[program:b]\ncommand = sleep 1001\nstartsecs = 0\n"
            "[program:c]\ncommand = sleep 1002\nstartsecs = 0\n"
            "[group:g]\nprograms = a,b\n", wait=["g:a", "g:b", "c"])
    r = {"status": d.ctl("status"),
         "stop g:*": d.ctl_sorted("stop", "g:*"),
         "status g:*": d.ctl("status", "g:*"),
         "start g:*": d.ctl_sorted("start", "g:*"),
         "stop g:a": d.ctl("stop", "g:a"),
         "status after": d.ctl("status"),
         "start g:a": d.ctl("start", "g:a")}
    d.wait_event(r"^PROCESS_STATE_RUNNING processname:a .*\n(.*\n)*PROCESS_STATE_RUNNING "
                 r"processname:a .*\n(.*\n)*PROCESS_STATE_RUNNING processname:a ")
    r["transitions"] = d.transitions()
    return r


def s_numprocs_names(d):
    """numprocs instances are GROUP:NAME (w:w_00) everywhere."""
    d.start("[program:w]\ncommand = sleep 1000\nnumprocs = 2\nstartsecs = 0\n"
            "process_name = %(program_name)s_%(process_num)02d\n", wait=["w:w_00", "w:w_01"])
    r = {"status": d.ctl("status"),
         "stop w:w_00": d.ctl("stop", "w:w_00"),
         "status w:w_00": d.ctl("status", "w:w_00"),
         "start w:*": d.ctl_sorted("start", "w:*"),
         "pid w:w_01": (lambda rc_out: (rc_out[0], rc_out[1].strip().isdigit()))(
             d.ctl("pid", "w:w_01"))}
    d.ctl("stop", "w:w_01")
    r["pid stopped"] = d.ctl("pid", "w:w_01")
    return r


def s_environment(d):
    """SUPERVISOR_* and the environment keys, as a program sees them."""
    d.start("[program:e]\ncommand = sh -c 'env | grep -E \"^(SUPERVISOR_|G_|P_)\" | sort; "
            "exec sleep 1000'\nstartsecs = 0\nenvironment = P_ONE=x,G_TWO=\"override\"\n"
            "[group:grp]\nprograms = e\n",
            sv={"environment": 'G_ONE=1,G_TWO="two"'}, wait=["grp:e"])
    d.until(lambda: "SUPERVISOR_SERVER_URL" in d.ctl("tail", "grp:e")[1], "e's environment")
    return {"env": d.ctl("tail", "grp:e")}


ROTATE = r'''
import os, sys, time
log, sizes = sys.argv[1], [int(x) for x in sys.argv[2].split(",")]
def seen(tag):
    for p in (log, log + ".1"):  # just written, or just rotated
        try:
            with open(p, "rb") as f:
                if f.read().endswith(tag):
                    return True
        except OSError:
            pass
    return False
for i, n in enumerate(sizes):
    tag = ("<%04d>\n" % i).encode()
    os.write(1, b"x" * (n - len(tag)) + tag)  # one write: one read by the daemon
    while not seen(tag):  # wait until it is in the log: no two writes are read as one
        time.sleep(0.01)
time.sleep(1000)
'''


def rotation(d, sizes):
    with open(os.path.join(d.dir, "rotate.py"), "w") as f:
        f.write(ROTATE)
    d.start("[program:r]\ncommand = @PY@ @DIR@/rotate.py @DIR@/r.log %s\nstartsecs = 0\n"
            "stdout_logfile = %%(here)s/r.log\nstdout_logfile_maxbytes = 1KB\n"
            "stdout_logfile_backups = 2\n" % ",".join(str(s) for s in sizes), wait=["r"])
    last = ("<%04d>\n" % (len(sizes) - 1))
    d.until(lambda: any((d.file(p) or "").endswith(last) for p in ("r.log", "r.log.1")),
            "the last write")
    return {name: d.file(name) for name in ("r.log", "r.log.1", "r.log.2", "r.log.3")}


def s_rotation_paced(d):
    """stdout_logfile_maxbytes = 1KB, backups = 2: lines of 100 bytes one at a time."""
    return rotation(d, [100] * 40)


def s_rotation_burst(d):
    """The same with bursts: big writes (one read each) and small ones."""
    return rotation(d, [3000, 500, 700, 700, 2048, 10, 1014, 20, 5000, 100])


def s_exit_codes(d):
    """status exits 3 when a program shown is stopped, 4 for an unknown name; start/stop of
    what is already started/stopped is said, not an error."""
    d.start("[program:a]\ncommand = sleep 1000\nstartsecs = 0\n"
            "[program:b]\ncommand = sleep 1001\nstartsecs = 0\n"
            "[program:m]\ncommand = sleep 1002\nstartsecs = 0\nautostart = false\n",
            wait=["a", "b"])
    r = {"status a": d.ctl("status", "a"),
         "status": d.ctl("status"),
         "status nosuch": d.ctl("status", "nosuch"),
         "status a nosuch": d.ctl("status", "a", "nosuch"),
         "start all": d.ctl_sorted("start", "all"),
         "status all running": d.ctl("status"),
         "start a": d.ctl("start", "a"),
         "stop m": d.ctl("stop", "m"),
         "stop m again": d.ctl("stop", "m"),
         "stop all": d.ctl_sorted("stop", "all"),
         "stop all again": d.ctl_sorted("stop", "all"),
         "start nosuch": d.ctl("start", "nosuch")}
    return r


def s_clear(d):
    """clear NAME empties the logs (the files stay)."""
    d.start("[program:c]\ncommand = sh -c 'echo something; echo else >&2; exec sleep 1000'\n"
            "startsecs = 0\n", wait=["c"])
    d.until(lambda: d.ctl("tail", "c")[1].startswith("something"), "c's output")
    d.until(lambda: d.ctl("tail", "c", "stderr")[1].startswith("else"), "c's stderr")
    return {"clear": d.ctl("clear", "c"), "tail": d.ctl("tail", "c"),
            "tail stderr": d.ctl("tail", "c", "stderr"), "files": d.files("c-*.log"),
            "clear nosuch": d.ctl("clear", "nosuch")[0] != 0}


SV_LINE = re.compile(r"^\S+ \S+ (INFO|WARN|ERRO|CRIT) ((spawned|success|exited|gave up|stopped|"
                     r"waiting for): .*)$|^\S+ \S+ (INFO|WARN) (waiting for \S+ to stop)$")


def s_maintail(d):
    """[supervisord] logfile: maintail shows supervisord's lines for the transitions."""
    d.start("[program:web]\ncommand = sleep 1000\nstartsecs = 1\n"
            "[program:bad]\ncommand = sh -c 'exit 3'\nstartsecs = 3\nstartretries = 1\n"
            "autostart = false\n", wait=["web"])
    d.ctl("start", "bad")
    d.wait_state("bad", "FATAL")
    d.ctl("stop", "web")
    d.until(lambda: "stopped: web" in (d.file("main.log") or ""), "stopped: web")
    rc, out = d.ctl("maintail", "-100000")
    lines = []
    for line in out.splitlines():
        m = SV_LINE.match(line)
        # "waiting for X to stop" depends on timing in both daemons (supervisord: whether a
        # turn of its loop saw X still STOPPING; procbusd: whether the exit came in the same
        # turn as the kill): not compared
        if m and "recorder" not in line and not m.group(5):
            lines.append((m.group(1) or m.group(4)) + " " + m.group(2))
    rc10, out10 = d.ctl("maintail", "-10")
    return {"maintail rc": rc, "lines": lines, "maintail -10 length": (rc10, len(out10))}


def s_reread_add_remove(d):
    """reread says what changed; add, remove, update apply it per group; avail lists it."""
    d.start("[program:a]\ncommand = sleep 1000\nstartsecs = 0\n"
            "[program:b]\ncommand = sleep 1001\nstartsecs = 0\n"
            "[program:c]\ncommand = sleep 1002\nstartsecs = 0\n", wait=["a", "b", "c"])
    r = {"reread unchanged": d.ctl("reread"), "avail before": d.ctl("avail")}
    d.write_conf("[program:b]\ncommand = sleep 2001\nstartsecs = 0\n"
                 "[program:c]\ncommand = sleep 1002\nstartsecs = 0\n"
                 "[program:d]\ncommand = sleep 1003\nstartsecs = 0\n")
    r["reread"] = d.ctl("reread")
    r["avail"] = d.ctl("avail")
    r["add d"] = d.ctl("add", "d")
    d.wait_state("d", "RUNNING")
    r["add d again"] = d.ctl("add", "d")
    r["remove a (running)"] = d.ctl("remove", "a")
    r["stop a"] = d.ctl("stop", "a")
    r["remove a"] = d.ctl("remove", "a")
    r["update"] = d.ctl("update")
    d.wait_state("b", "RUNNING")
    r["status"] = d.ctl("status")
    r["reread after"] = d.ctl("reread")
    return r


def s_update(d):
    """update applies additions, changes, removals, and says so per group."""
    d.start("[program:a]\ncommand = sleep 1000\nstartsecs = 0\n"
            "[program:b]\ncommand = sleep 1001\nstartsecs = 0\n", wait=["a", "b"])
    r = {"update unchanged": d.ctl("update")}
    d.write_conf("[program:b]\ncommand = sleep 2001\nstartsecs = 0\n"
                 "[program:n]\ncommand = sleep 1003\nstartsecs = 0\n")
    r["update"] = d.ctl("update")
    d.wait_state("b", "RUNNING")
    d.wait_state("n", "RUNNING")
    r["status"] = d.ctl("status")
    return r


def s_eventlistener_fatal(d):
    """The Docker watchdog: a listener on PROCESS_STATE_FATAL ends the daemon."""
    d.start("[eventlistener:watchdog]\ncommand = bash -c \"printf 'READY\\n' && while read line; "
            "do kill -SIGQUIT $PPID; done < /dev/stdin\"\nevents = PROCESS_STATE_FATAL\n"
            "[program:ok]\ncommand = sleep 1000\nstartsecs = 0\n"
            "[program:bad]\ncommand = sh -c 'exit 1'\nstartsecs = 3\nstartretries = 0\n"
            "autostart = false\n", wait=["watchdog", "ok"])
    d.ctl("start", "bad")
    d.until(lambda: d.proc.poll() is not None, "exit")
    # what the recorder gets while the daemon shuts down depends on when it is stopped itself:
    # bad's transitions (all before the shutdown) and ok's stop are compared
    return {"daemon exited": d.proc.returncode, "transitions bad": d.transitions().get("bad"),
            "ok was stopped": any("PROCESS_STATE_STOPPING" in e
                                  for e in d.transitions().get("ok", []))}


PICKY = r'''
import sys
out = open(sys.argv[1], "a")
first = True
def w(s):
    sys.stdout.write(s)
    sys.stdout.flush()
while True:
    w("READY\n")
    line = sys.stdin.readline()
    if not line:
        break
    hdr = dict(x.split(":", 1) for x in line.split())
    payload = sys.stdin.read(int(hdr["len"]))
    if first:  # the first event is rejected: it must come back
        out.write("rejected %s %s\n" % (hdr["serial"], hdr["eventname"]))
        out.flush()
        first = False
        w("RESULT 4\nFAIL")
        continue
    out.write("got %s %s %s\n" % (hdr["serial"], hdr["eventname"], payload.replace("\n", "\\n")))
    out.flush()
    w("RESULT 2\nOK")
'''


def s_events_log_tick(d):
    """PROCESS_LOG events (stdout/stderr_events_enabled), TICK_5, and a rejected event sent
    again, to a listener of its own."""
    with open(os.path.join(d.dir, "picky.py"), "w") as f:
        f.write(PICKY)
    d.start("[eventlistener:picky]\ncommand = @PY@ @DIR@/picky.py @DIR@/picky.txt\n"
            "events = PROCESS_LOG,TICK_5\n"
            "[program:talker]\ncommand = sh -c 'sleep 1; echo hello; sleep 0.5; echo world >&2; "
            "exec sleep 1000'\nstartsecs = 0\nstdout_events_enabled = true\n"
            "stderr_events_enabled = true\n", wait=["picky", "talker"])
    def lines():
        return (d.file("picky.txt") or "").splitlines()
    d.until(lambda: sum(l.startswith("got ") and "PROCESS_LOG" in l for l in lines()) >= 2 and
            any(l.startswith("got ") and "TICK_5" in l for l in lines()),
            "the log events and a tick")
    got = [l.split(" ", 3) for l in lines() if l.startswith("got ")]
    rejected = [l.split(" ")[1] for l in lines() if l.startswith("rejected ")]
    ticks = [g[3] for g in got if g[2] == "TICK_5"]
    return {"log events": sorted(d.norm(g[2] + " " + g[3]) for g in got if "PROCESS_LOG" in g[2]),
            "ticks on 5 s": all(int(t.split(":")[1]) % 5 == 0 for t in ticks) and len(ticks) > 0,
            "the rejected event came back": len(rejected) == 1 and
            any(g[1] == rejected[0] for g in got)}


def s_capture_mode(d):
    """stdout_capture_maxbytes: what is between supervisord's BEGIN and END tokens becomes a
    PROCESS_COMMUNICATION_STDOUT event, not log output."""
    d.start("[eventlistener:comm]\ncommand = @PY@ @DIR@/recorder.py @DIR@/comm.txt\n"
            "events = PROCESS_COMMUNICATION\n"
            "[program:talker]\ncommand = sh -c 'sleep 1; printf \"before\\\\n<!--XSUPERVISOR:BEGIN-->"
            "the captured data<!--XSUPERVISOR:END-->after and more, long enough to be logged\\\\n\"; exec sleep 1000'\n"
            "startsecs = 0\nstdout_capture_maxbytes = 1KB\nstdout_logfile = %(here)s/t.log\n",
            wait=["comm", "talker"])
    d.until(lambda: "PROCESS_COMMUNICATION" in (d.file("comm.txt") or ""), "the event")
    d.until(lambda: "after" in (d.file("t.log") or ""), "the output after the tokens")
    return {"event": d.norm(d.file("comm.txt")), "log": d.file("t.log")}


FCGI = r'''
import os, socket
s = socket.socket(fileno=0)  # the listening socket, as supervisord hands it over
while True:
    c, _ = s.accept()
    c.sendall(("hello from %s\n" % os.environ["SUPERVISOR_PROCESS_NAME"]).encode())
    c.close()
'''


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def s_fcgi(d):
    """[fcgi-program:f]: the daemon's listening socket is every instance's stdin."""
    with open(os.path.join(d.dir, "fcgi.py"), "w") as f:
        f.write(FCGI)
    port = free_port()
    d.start("[fcgi-program:f]\ncommand = @PY@ @DIR@/fcgi.py\nsocket = tcp://127.0.0.1:%d\n"
            "numprocs = 2\nprocess_name = %%(program_name)s_%%(process_num)02d\nstartsecs = 0\n"
            % port, wait=["f:f_00", "f:f_01"])
    answers = set()
    for _ in range(10):
        c = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
        answers.add(re.sub(r"f_0\d", "f_0N", c.recv(100).decode()))
        c.close()
    r = {"answers": sorted(answers), "status": d.ctl("status")}
    d.ctl("stop", "f:*")
    try:  # every instance stopped: the socket is closed
        socket.create_connection(("127.0.0.1", port), timeout=5).close()
        r["closed"] = False
    except OSError:
        r["closed"] = True
    return r


def s_shell_quoting(d):
    """No shell in either: quotes, $HOME, escaped spaces reach the program the same way."""
    d.start("[program:q]\ncommand = printf \"%%s|\\n\" \"two words\" 'single $HOME' "
            "escaped\\ space \"$HOME\" $HOME\nstartsecs = 0\nautorestart = false\n"
            "stdout_logfile = %(here)s/q.log\n")
    d.until(lambda: (d.file("q.log") or "").count("|") == 5, "q's output")
    return {"output": d.file("q.log"), "state": d.states().get("q")}


def s_transitions(d):
    """Startretries to FATAL, an expected exit, an unexpected one restarted: the same
    transitions, event by event."""
    d.start("[program:bad]\ncommand = sh -c 'exit 2'\nstartsecs = 3\nstartretries = 2\n"
            "[program:once]\ncommand = sh -c 'sleep 2; exit 0'\nstartsecs = 1\n"
            "autorestart = unexpected\n"
            "[program:flap]\ncommand = sh -c 'sleep 2; exit 5'\nstartsecs = 1\n"
            "autorestart = unexpected\n")
    d.wait_state("bad", "FATAL")
    d.wait_state("once", "EXITED")
    d.wait_event(r"^PROCESS_STATE_EXITED processname:flap (.*\n)*PROCESS_STATE_EXITED "
                 r"processname:flap ")
    d.ctl("stop", "flap")
    d.until(lambda: d.states().get("flap") == "STOPPED", "flap STOPPED")
    d.wait_event(r"^PROCESS_STATE_STOPPED processname:flap ")
    t = d.transitions()
    # flap restarts on its own until stopped: compare its first two runs and its end
    flap = t.get("flap", [])
    t["flap"] = flap[:6] + ["..."] + flap[-2:]
    return {"transitions": t, "status bad": d.ctl("status", "bad")[0]}


def s_stopasgroup_default(d):
    """A deliberate difference: without stopasgroup, supervisord signals the main process
    only and a background child outlives the stop; procbusd also kills what is left in the
    group (docs/SUPERVISORD.md)."""
    tag = "10%d" % os.getpid()
    d.start("[program:p]\ncommand = sh -c 'sleep %s & wait'\nstartsecs = 0\n" % tag,
            wait=["p"])
    d.until(lambda: subprocess.run(["pgrep", "-f", "sleep %s" % tag],
                                   stdout=subprocess.PIPE).returncode == 0, "the child")
    d.ctl("stop", "p")
    time.sleep(0.5)
    alive = subprocess.run(["pgrep", "-f", "sleep %s" % tag],
                           stdout=subprocess.PIPE).returncode == 0
    subprocess.run(["pkill", "-f", "sleep %s" % tag])
    return {"child survives the stop": alive}


SCENARIOS = {
    "auto_logs": s_auto_logs,
    "supervisord_section": s_supervisord_section,
    "group": s_group,
    "numprocs_names": s_numprocs_names,
    "environment": s_environment,
    "rotation_paced": s_rotation_paced,
    "rotation_burst": s_rotation_burst,
    "exit_codes": s_exit_codes,
    "clear": s_clear,
    "maintail": s_maintail,
    "reread_add_remove": s_reread_add_remove,
    "update": s_update,
    "eventlistener_fatal": s_eventlistener_fatal,
    "events_log_tick": s_events_log_tick,
    "capture_mode": s_capture_mode,
    "fcgi": s_fcgi,
    "shell_quoting": s_shell_quoting,
    "transitions": s_transitions,
    "stopasgroup_default": s_stopasgroup_default,
}

DIFFERENT = {
    "stopasgroup_default": {"child survives the stop": (True, False)},
}


def run(name, kind, build, top):
    d = Daemon(kind, build, top)
    try:
        obs = SCENARIOS[name](d)
    finally:
        code = d.stop()
    obs["daemon's exit status"] = code  # (under ASan, procbusd's leaks would show here)
    return obs, d


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", required=True)
    ap.add_argument("--keep", action="store_true", help="keep the temp folders")
    ap.add_argument("scenario", choices=sorted(SCENARIOS) + ["list"])
    a = ap.parse_args()
    if a.scenario == "list":
        print("\n".join(sorted(SCENARIOS)))
        return 0
    if not shutil.which("supervisord") or not shutil.which("supervisorctl"):
        print("skip: no supervisord (Debian's supervisor package)")
        return 77
    a.build = os.path.abspath(a.build)
    top = tempfile.mkdtemp(prefix="parity-")
    try:
        sv, dsv = run(a.scenario, "sv", a.build, top)
        pb, dpb = run(a.scenario, "pb", a.build, top)
    except AssertionError as e:
        print("FAIL %s: %s (folders in %s)" % (a.scenario, e, top))
        return 1
    bad = 0
    expect = DIFFERENT.get(a.scenario, {})
    for key in sorted(set(sv) | set(pb)):
        want = expect.get(key)
        same = sv.get(key) == pb.get(key)
        if want is not None:
            ok = (sv.get(key), pb.get(key)) == want
            print("%s %s: supervisord %r, procbusd %r (a deliberate difference)"
                  % ("ok  " if ok else "DIFF", key, sv.get(key), pb.get(key)))
        else:
            ok = same
            if ok:
                print("ok   %s: %s" % (key, repr(sv.get(key))[:150]))
            else:
                print("DIFF %s:\n  supervisord: %r\n  procbusd:    %r" % (key, sv.get(key),
                                                                       pb.get(key)))
        bad += not ok
    if bad:
        print("%s: %d difference(s) (folders kept in %s)" % (a.scenario, bad, top))
        return 1
    if not a.keep:
        shutil.rmtree(top, ignore_errors=True)
    print("%s: the same under supervisord and procbusd" % a.scenario)
    return 0


if __name__ == "__main__":
    sys.exit(main())
