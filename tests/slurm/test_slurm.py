#!/usr/bin/env python3
"""vahanorm on a cluster, for real: the SLURM array script, its submit helper, the gather
step, resuming after interruptions, the output lock, and a single-node SLURM started here.

Each case is run by CTest on its own:
    test_slurm.py --vahanorm PATH --shared DIR --scripts DIR --case NAME

cases:
  scripts      vahanorm-array.sh and submit.sh with a stand-in vahanorm and sbatch
  gather       vahanorm-gather on hand-made reports
  resume       the array script run by hand: skip, redo partial outputs, SIGTERM, SIGKILL
  output_lock  two vahanorm processes given the same output
  cluster      slurmctld + slurmd + munged started here, a job array through submit.sh and
               sbatch --wait, a corrupt slide, a rerun, a task killed mid-slide, the gather

The cluster case needs Debian's slurmctld, slurmd, slurm-client and munge; it installs
nothing. Without them it prints "[SKIPPED] slurm not installed" (CTest: skipped), except
under CI=true, where it fails. It runs its own munged (key and socket in a temporary
directory) and SLURM daemons on free ports, and stops exactly the processes it started.
"""
import argparse
import csv
import ctypes
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import traceback

OK, PARTIAL, USAGE, DATA, INPUT, OUTPUT, INTERRUPTED = 0, 3, 64, 65, 66, 73, 75
TEMP_MARKER = ".vahanorm-tmp-"
LOCK_SUFFIX = ".vahanorm-lock"

ARGS = None


class Failure(Exception):
    pass


class Skip(Exception):
    pass


def check(cond, what):
    if not cond:
        raise Failure(what)


def log(msg):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def script(name):
    return os.path.join(ARGS.scripts, name)


def shared(rel):
    p = os.path.join(ARGS.shared, rel)
    check(os.path.exists(p), f"shared test data missing: {p}")
    return p


def clean_env(extra=None):
    """The environment without anything from a SLURM job this test may itself run in."""
    e = {k: v for k, v in os.environ.items() if not k.startswith(("SLURM_", "SBATCH_", "SRUN_", "SALLOC_"))}
    for k in ("VAHANORM_TARGET", "VAHANORM_BIN", "VAHANORM_PER_TASK", "VAHANORM_DEVICE", "VAHANORM_THREADS",
              "VAHANORM_TASK_ID", "VAHANORM_RUN_NAME", "VAHANORM_MAX_RUNNING", "CUDA_VISIBLE_DEVICES"):
        e.pop(k, None)
    if extra:
        e.update(extra)
    return e


def run(cmd, env=None, cwd=None, timeout=300):
    p = subprocess.run(cmd, cwd=cwd, env=env if env is not None else clean_env(), capture_output=True, text=True,
                       timeout=timeout)
    return p.returncode, p.stdout, p.stderr


def expect(cmd, code, env=None, cwd=None, needle=None, timeout=300):
    rc, out, err = run(cmd, env, cwd, timeout)
    check(rc == code, f"{' '.join(cmd)}: exit {rc}, expected {code}\nstdout: {out}\nstderr: {err}")
    if needle is not None:
        check(needle in out + err, f"{' '.join(cmd)}: output lacks {needle!r}\nstdout: {out}\nstderr: {err}")
    return out, err


def wait_for(pred, timeout, interval=0.01):
    deadline = time.time() + timeout
    while time.time() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(interval)
    return pred()


def temp_files(d):
    return sorted(f for f in os.listdir(d) if TEMP_MARKER in f)


def lock_files(d):
    return sorted(f for f in os.listdir(d) if f.endswith(LOCK_SUFFIX))


def temp_of(d, stem):
    """Temporary files of output <stem>.tif in d."""
    return sorted(f for f in os.listdir(d) if f.startswith(f".{stem}.tif{TEMP_MARKER}"))


def pid_of_temp(name):
    # .NAME.vahanorm-tmp-<pid>-<counter>-<hex>
    return int(name.split(TEMP_MARKER, 1)[1].split("-", 1)[0])


def slide_dims(path):
    try:
        import openslide  # Debian's python3-openslide (VAHANORM_TEST_PYTHON)
    except ImportError:
        raise Failure(f"{sys.executable} cannot import openslide (install python3-openslide)")
    try:
        s = openslide.OpenSlide(path)
        dims = s.dimensions
        last = s.level_count - 1
        lw, lh = s.level_dimensions[last]
        s.read_region((0, 0), 0, (16, 16))
        s.read_region((0, 0), last, (lw, lh))
        s.close()
        return dims
    except Exception as e:  # openslide raises several kinds
        raise Failure(f"{path}: not a valid slide: {e}")


def load_json(p):
    with open(p, encoding="utf-8") as f:
        return json.load(f)


def read_csv(p):
    with open(p, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def write_lines(path, lines):
    with open(path, "w", encoding="utf-8") as f:
        f.write("".join(line + "\n" for line in lines))


def make_target(tmp):
    """A target model fitted on the built-in synthetic reference (no third-party data)."""
    expect([ARGS.vahanorm, "-q", "demo", "-o", os.path.join(tmp, "demo"), "--size", "256"], OK)
    return os.path.join(tmp, "demo", "target.json")


def make_slides(d, names_small, names_large=(), corrupt=True):
    """Copies of the shared slides under new names, plus (optionally) two corrupt ones."""
    os.makedirs(d, exist_ok=True)
    small = shared("slides/CMU-1-Small-Region.svs")
    large = shared("slides/tcga-cr-7395-01a-01-ts1.svs")
    paths = {}
    for n in names_small:
        paths[n] = os.path.join(d, n + ".svs")
        shutil.copy(small, paths[n])
    for n in names_large:
        paths[n] = os.path.join(d, n + ".svs")
        shutil.copy(large, paths[n])
    if corrupt:
        paths["bad"] = os.path.join(d, "bad.svs")
        with open(paths["bad"], "w") as f:
            f.write("this is a text file, not a slide\n")
        paths["trunc"] = os.path.join(d, "trunc.svs")
        data = open(small, "rb").read()
        with open(paths["trunc"], "wb") as f:
            f.write(data[: len(data) // 2])
    return paths


# ---- scripts: the array script and submit.sh with stand-ins --------------------------------

FAKE_VAHANORM = r"""#!/usr/bin/env bash
# Stand-in for vahanorm: records its pid and arguments, creates the --report file, and exits
# $FAKE_RC (or 75 on SIGTERM when FAKE_SLEEP is set).
printf '%s\n' "$$" > "$FAKE_DIR/pid"
printf '%s\n' "$@" > "$FAKE_DIR/args"
prev=
for a in "$@"; do [[ $prev == --report ]] && echo '{}' > "$a"; prev=$a; done
if [[ -n ${FAKE_SLEEP:-} ]]; then
    sleep "$FAKE_SLEEP" &
    trap 'kill $!; exit 75' TERM
    wait $!
fi
exit "${FAKE_RC:-0}"
"""

FAKE_SBATCH = r"""#!/usr/bin/env bash
printf '%s\n' "$@" > "$FAKE_DIR/sbatch-args"
echo "Submitted batch job 4242"
"""

FAKE_SCONTROL = r"""#!/usr/bin/env bash
echo "MaxArraySize            = ${FAKE_MAX_ARRAY:-1001}"
"""


def case_scripts(tmp):
    array, submit = script("vahanorm-array.sh"), script("submit.sh")
    fake_dir = os.path.join(tmp, "fake")
    os.makedirs(fake_dir)
    fakes = {}
    for name, text in (("vahanorm", FAKE_VAHANORM), ("sbatch", FAKE_SBATCH), ("scontrol", FAKE_SCONTROL)):
        fakes[name] = os.path.join(fake_dir, name)
        with open(fakes[name], "w") as f:
            f.write(text)
        os.chmod(fakes[name], 0o755)
    target = os.path.join(tmp, "target.json")
    write_lines(target, ["{}"])
    lst = os.path.join(tmp, "list.txt")
    write_lines(lst, ["a.svs", "b.svs", "", "# a comment", "c d.svs", "e.svs", "f.svs"])
    out = os.path.join(tmp, "out")
    base = {"VAHANORM_BIN": fakes["vahanorm"], "FAKE_DIR": fake_dir}

    def args_of_run():
        return open(os.path.join(fake_dir, "args")).read().splitlines()

    def after(args, opt):
        check(opt in args, f"{opt} missing from {args}")
        return args[args.index(opt) + 1]

    # Usage and argument errors.
    _, err = expect([array], USAGE, env=clean_env(base))
    check("usage:" in err, f"no usage text: {err}")
    expect([array, "--help"], USAGE, env=clean_env(base), needle="usage:")
    expect([array, lst, target], USAGE, env=clean_env(base), needle="usage:")
    expect([array, lst, target, out], USAGE, env=clean_env(base), needle="not an array task")
    expect([array, lst + ".missing", target, out], INPUT, env=clean_env(dict(base, VAHANORM_TASK_ID="0")),
           needle="list.txt.missing")
    expect([array, lst, target + ".missing", out], INPUT, env=clean_env(dict(base, VAHANORM_TASK_ID="0")),
           needle="target model")
    expect([array, "--per-task", "0", lst, target, out], USAGE, env=clean_env(dict(base, VAHANORM_TASK_ID="0")))
    expect([array, lst, target, out], 127, env=clean_env(dict(base, VAHANORM_TASK_ID="0",
                                                              VAHANORM_BIN=os.path.join(tmp, "nope"))),
           needle="not found")

    # One input per task, as an array task: lines, options, report name, device.
    slurm = dict(base, SLURM_ARRAY_TASK_ID="1", SLURM_ARRAY_JOB_ID="77", SLURM_JOB_ID="78", SLURM_CPUS_PER_TASK="2")
    expect([array, lst, target, out, "--format", "tiff"], OK, env=clean_env(slurm))
    a = args_of_run()
    check(a[0] == "apply", f"not an apply run: {a}")
    check("--skip-existing" in a, f"--skip-existing missing: {a}")
    check(after(a, "--target") == target, f"--target: {a}")
    check(after(a, "-o") == os.path.realpath(out) + "/", f"-o should be the absolute OUTDIR with '/': {a}")
    check(after(a, "--report") == os.path.join(os.path.realpath(out), "reports", "task-77-1.json"), f"--report: {a}")
    check(after(a, "--device") == "cpu", f"no GPUs: --device should be cpu: {a}")
    check("--threads" not in a, f"--threads given although vahanorm reads SLURM_CPUS_PER_TASK: {a}")
    check(after(a, "--format") == "tiff", f"extra apply options lost: {a}")
    check(a[a.index("--") + 1:] == ["b.svs"], f"task 1 should get line 2 only: {a}")
    # A rerun of the same task keeps the first report; a requeued run is named by its restart count.
    expect([array, lst, target, out], OK, env=clean_env(slurm))
    check(after(args_of_run(), "--report").endswith("/task-77-1-2.json"), f"report overwritten: {args_of_run()}")
    expect([array, lst, target, out], OK, env=clean_env(dict(slurm, SLURM_RESTART_COUNT="2")))
    check(after(args_of_run(), "--report").endswith("/task-77-1-r2.json"), f"requeue: {args_of_run()}")
    # Blank and comment lines hold their index but are not inputs; paths may have spaces.
    expect([array, lst, target, out], OK, env=clean_env(dict(slurm, SLURM_ARRAY_TASK_ID="4")))
    check(args_of_run()[-1] == "c d.svs", f"line 5: {args_of_run()}")
    os.unlink(os.path.join(fake_dir, "args"))
    _, err = expect([array, lst, target, out], OK, env=clean_env(dict(slurm, SLURM_ARRAY_TASK_ID="2")))
    check(not os.path.exists(os.path.join(fake_dir, "args")), "vahanorm ran for a blank line")
    check("nothing to do" in err, f"blank line: {err}")
    expect([array, lst, target, out], OK, env=clean_env(dict(slurm, SLURM_ARRAY_TASK_ID="99")), needle="nothing to do")

    # N per task: task i handles lines i*N .. i*N+N-1, by option or environment.
    expect([array, "--per-task", "3", lst, target, out], OK, env=clean_env(dict(slurm, SLURM_ARRAY_TASK_ID="0")))
    check(args_of_run()[-3:] == ["--", "a.svs", "b.svs"], f"task 0 of 3: {args_of_run()}")
    expect([array, lst, target, out], OK, env=clean_env(dict(slurm, SLURM_ARRAY_TASK_ID="1", VAHANORM_PER_TASK="3")))
    a = args_of_run()
    check(a[a.index("--") + 1:] == ["c d.svs", "e.svs"], f"task 1 of 3: {a}")
    expect([array, "--per-task=3", lst, target, out], OK, env=clean_env(dict(slurm, SLURM_ARRAY_TASK_ID="2")))
    a = args_of_run()
    check(a[a.index("--") + 1:] == ["f.svs"], f"task 2 of 3: {a}")

    # Devices: auto when SLURM gave GPUs, cpu otherwise, VAHANORM_DEVICE wins; threads override.
    for extra, want in (({"CUDA_VISIBLE_DEVICES": "0"}, "auto"), ({"SLURM_JOB_GPUS": "1"}, "auto"),
                        ({"CUDA_VISIBLE_DEVICES": ""}, "cpu"), ({"CUDA_VISIBLE_DEVICES": "NoDevFiles"}, "cpu"),
                        ({"CUDA_VISIBLE_DEVICES": "0", "VAHANORM_DEVICE": "cpu"}, "cpu"),
                        ({"VAHANORM_DEVICE": "cuda:1"}, "cuda:1")):
        expect([array, lst, target, out], OK, env=clean_env(dict(slurm, **extra)))
        check(after(args_of_run(), "--device") == want, f"{extra}: --device {after(args_of_run(), '--device')}")
    expect([array, lst, target, out], OK, env=clean_env(dict(slurm, VAHANORM_THREADS="3")))
    check(after(args_of_run(), "--threads") == "3", f"VAHANORM_THREADS: {args_of_run()}")

    # Outside SLURM (GNU parallel, xargs): VAHANORM_TASK_ID and a run name.
    expect([array, lst, target, out], OK, env=clean_env(dict(base, VAHANORM_TASK_ID="0", VAHANORM_RUN_NAME="p1")))
    check(after(args_of_run(), "--report").endswith("/reports/task-p1-0.json"), f"local report: {args_of_run()}")

    # The exit code is vahanorm's, and vahanorm replaces the shell (exec): SIGTERM reaches it.
    for rc in (PARTIAL, INPUT, OUTPUT, INTERRUPTED):
        expect([array, lst, target, out], rc, env=clean_env(dict(slurm, FAKE_RC=str(rc))))
    p = subprocess.Popen([array, lst, target, out], env=clean_env(dict(slurm, FAKE_SLEEP="60")),
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        check(wait_for(lambda: os.path.exists(os.path.join(fake_dir, "pid")) and
                       open(os.path.join(fake_dir, "pid")).read().strip() == str(p.pid), 10),
              "vahanorm did not replace the batch shell (no exec): SIGTERM would not reach it")
        time.sleep(0.2)
        p.send_signal(signal.SIGTERM)
        p.communicate(timeout=10)
        check(p.returncode == INTERRUPTED, f"after SIGTERM: exit {p.returncode}, expected {INTERRUPTED}")
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()

    # submit.sh: --array from the list length and the grouping; logs in OUTDIR/logs.
    senv = dict(base, SBATCH=fakes["sbatch"], SCONTROL=fakes["scontrol"])
    expect([submit], USAGE, env=clean_env(senv), needle="usage:")
    expect([submit, lst + ".missing", target, out], INPUT, env=clean_env(senv))
    ten = os.path.join(tmp, "ten.txt")
    write_lines(ten, [f"s{i}.svs" for i in range(10)])

    def sbatch_args():
        return open(os.path.join(fake_dir, "sbatch-args")).read().splitlines()

    expect([submit, ten, target, out, "--cpus-per-task=2", "--wait"], OK, env=clean_env(senv),
           needle="Submitted batch job")
    s = sbatch_args()
    check("--array=0-9" in s, f"10 inputs: {s}")
    check(f"--output={os.path.realpath(out)}/logs/%x-%A_%a.out" in s, f"log path: {s}")
    check(s.index("--cpus-per-task=2") > s.index("--array=0-9") and "--wait" in s, f"sbatch options: {s}")
    i = s.index(array)
    check(s[i + 1:] == ["--per-task", "1", os.path.realpath(ten), os.path.realpath(target), os.path.realpath(out)],
          f"script arguments: {s[i:]}")
    check(os.path.isdir(os.path.join(out, "logs")), "OUTDIR/logs not created")
    expect([submit, ten, target, out], OK, env=clean_env(dict(senv, VAHANORM_PER_TASK="4", VAHANORM_MAX_RUNNING="2")))
    s = sbatch_args()
    check("--array=0-2%2" in s and s[s.index(array) + 1:s.index(array) + 3] == ["--per-task", "4"],
          f"4 per task, at most 2 running: {s}")
    expect([submit, ten, target, out, "--time=1:00:00", "--", "--format", "tiff"], OK, env=clean_env(senv))
    s = sbatch_args()
    check(s[-2:] == ["--format", "tiff"] and s.index("--time=1:00:00") < s.index(array), f"apply options: {s}")
    # More tasks than MaxArraySize: refused, with the grouping that would fit.
    os.unlink(os.path.join(fake_dir, "sbatch-args"))
    expect([submit, ten, target, out], USAGE, env=clean_env(dict(senv, FAKE_MAX_ARRAY="4")),
           needle="VAHANORM_PER_TASK=3")
    check(not os.path.exists(os.path.join(fake_dir, "sbatch-args")), "sbatch called despite MaxArraySize")
    # Two inputs with one stem would write one output: refused.
    dup = os.path.join(tmp, "dup.txt")
    write_lines(dup, ["x/s1.svs", "y/s1.ndpi", "z/s2.svs"])
    expect([submit, dup, target, out], USAGE, env=clean_env(senv), needle="s1")
    check(not os.path.exists(os.path.join(fake_dir, "sbatch-args")), "sbatch called despite duplicate stems")


# ---- gather: hand-made reports ---------------------------------------------------------------

def report(inputs, finished, exit_code=0):
    return {"format": "vahanorm-report", "version": 1, "command": "apply", "device": "cpu (1 thread)",
            "started": finished, "finished": finished, "exit_code": exit_code, "inputs": inputs}


def case_gather(tmp):
    gather = script("vahanorm-gather")
    out = os.path.join(tmp, "out")
    rep = os.path.join(out, "reports")
    os.makedirs(rep)
    o = lambda n: os.path.join(out, n)  # noqa: E731
    for n in ("a.tif", "c.tif", "e.png", "g.tif"):
        open(o(n), "wb").close()
    qc = {"tissue_fraction": 0.5, "scale_ratio": [1.25, 0.75], "stain_angle_deg": 20.0}
    reports = {
        "task-1-0.json": report([
            {"input": "in/a.svs", "output": o("a.tif"), "status": "ok", "qc": qc, "warnings": ["w1", "w2"],
             "timings_s": {"read": 1.0, "normalize": 0.5, "wall": 2.0}},
            {"input": "in/b.svs", "output": o("b.tif"), "status": "failed", "exit_code": 66, "message": "corrupt"},
            {"input": "in/c.png", "output": o("c.tif"), "status": "ok", "qc": qc,
             "timings_ms": {"decode": 10.0, "normalize": 5.0, "encode": 20.0}},
            {"input": "in/d.svs", "output": o("d.tif"), "status": "ok"},
            {"input": "in/g.svs", "output": o("g.tif"), "status": "failed", "exit_code": 73, "message": "busy"},
        ], "2026-01-01T00:00:01Z", PARTIAL),
        "task-2-0.json": report([
            {"input": "in/a.svs", "output": o("a.tif"), "status": "skipped"},
            {"input": "in/b.svs", "output": o("b.tif"), "status": "failed", "exit_code": 66, "message": "corrupt again"},
            {"input": "in/c.png", "output": o("c.tif"), "status": "skipped"},
            {"input": "in/e.png", "output": o("e.png"), "status": "passed-through", "message": "no tissue"},
            {"input": "./in/g.svs", "output": o("g.tif"), "status": "ok"},
            {"input": "in/h.svs", "output": o("h.tif"), "status": "failed", "exit_code": 73,
             "message": "another vahanorm process is writing this output"},
        ], "2026-01-01T00:00:02Z", PARTIAL),
        # The oldest by its time stamp, whatever its name or mtime.
        "task-0-0.json": report([
            {"input": "in/a.svs", "output": o("a.tif"), "status": "failed", "exit_code": 65, "message": "old"},
        ], "2026-01-01T00:00:00Z", DATA),
        "task-3-0.json": report([], "2026-01-01T00:00:03Z", INTERRUPTED),
    }
    for name, r in reports.items():
        with open(os.path.join(rep, name), "w") as f:
            json.dump(r, f)
    with open(os.path.join(rep, "broken.json"), "w") as f:
        f.write("{ not json")
    lst = os.path.join(tmp, "list.txt")
    write_lines(lst, ["in/a.svs", "in/b.svs", "in/c.png", "in/d.svs", "in/e.png", "in/f.svs", "in/g.svs", "in/h.svs",
                      "", "# comment"])

    todo = os.path.join(tmp, "todo.txt")
    rc, stdout, err = run([gather, out, "--list", lst, "--todo", todo])
    check(rc == PARTIAL, f"gather: exit {rc}, expected {PARTIAL}\n{stdout}\n{err}")
    check("broken.json" in err, f"an unreadable report is not mentioned: {err}")
    rows = {r["input"]: r for r in read_csv(os.path.join(out, "summary.csv"))}
    check(set(rows) == {"in/a.svs", "in/b.svs", "in/c.png", "in/d.svs", "in/e.png", "in/f.svs", "./in/g.svs",
                        "in/h.svs"},
          f"rows: {sorted(rows)}")
    a = rows["in/a.svs"]
    check(a["status"] == "ok" and a["last_status"] == "skipped" and a["report"].endswith("task-1-0.json"),
          f"a later skip must keep the producing run's row: {a}")
    check(float(a["total_ms"]) == 2000.0 and float(a["ms_read"]) == 1000.0, f"slide timings (s -> ms): {a}")
    check(a["tissue_fraction"] == "0.5" and a["scale_ratio_h"] == "1.25" and a["scale_ratio_e"] == "0.75" and
          a["stain_angle_deg"] == "20.0" and a["warnings"] == "w1; w2" and a["runs"] == "3", f"QC columns: {a}")
    c = rows["in/c.png"]
    check(c["status"] == "ok" and float(c["total_ms"]) == 35.0 and float(c["ms_encode"]) == 20.0, f"tile row: {c}")
    b = rows["in/b.svs"]
    check(b["status"] == "failed" and b["exit_code"] == "66" and b["message"] == "corrupt again", f"latest wins: {b}")
    check(rows["in/d.svs"]["status"] == "missing-output", f"ok but output gone: {rows['in/d.svs']}")
    check(rows["in/e.png"]["status"] == "passed-through", f"e: {rows['in/e.png']}")
    check(rows["in/f.svs"]["status"] == "missing", f"never ran: {rows['in/f.svs']}")
    check(rows["./in/g.svs"]["status"] == "ok", f"a later ok after a failure wins: {rows['./in/g.svs']}")
    for needle in ("in/b.svs", "in/d.svs", "in/f.svs", "1 report(s) of interrupted runs"):
        check(needle in stdout, f"gather output lacks {needle!r}:\n{stdout}")
    s = load_json(os.path.join(out, "summary.json"))
    check(s["missing"] == ["in/f.svs"] and
          {f["input"] for f in s["failed"]} == {"in/b.svs", "in/d.svs", "in/f.svs", "in/h.svs"},
          f"summary.json: {s['missing']} {s['failed']}")
    check(s["counts"] == {"ok": 3, "failed": 2, "missing-output": 1, "passed-through": 1, "missing": 1},
          f"counts {s['counts']}")
    # Worth a rerun: missing, missing output, exit 73; not the corrupt one (66).
    check(sorted(open(todo).read().split()) == ["in/d.svs", "in/f.svs", "in/h.svs"], f"--todo: {open(todo).read()}")

    # An interrupted run: its unfinished input is "interrupted" (and worth a rerun) until a later
    # run finishes it; an earlier run's output survives a later interrupted run.
    intr = os.path.join(tmp, "intr")
    os.makedirs(os.path.join(intr, "reports"))
    oi = lambda n: os.path.join(intr, n)  # noqa: E731
    for n in ("y.tif", "z.tif"):
        open(oi(n), "wb").close()
    dump = lambda name, r: json.dump(r, open(os.path.join(intr, "reports", name), "w"))  # noqa: E731
    dump("task-1-0.json", report([{"input": "z.svs", "output": oi("z.tif"), "status": "ok"}], "2026-01-01T00:00:00Z"))
    dump("task-2-0.json", report([
        {"input": "y.svs", "output": oi("y.tif"), "status": "ok"},
        {"input": "x.svs", "output": oi("x.tif"), "status": "interrupted", "exit_code": INTERRUPTED,
         "message": "stopped by a signal while being written; nothing was left"},
        {"input": "z.svs", "output": oi("z.tif"), "status": "interrupted", "exit_code": INTERRUPTED,
         "message": "not started: the run was stopped by a signal"},
    ], "2026-01-01T00:00:01Z", INTERRUPTED))
    todo_i = os.path.join(tmp, "todo-intr.txt")
    rc, stdout, err = run([gather, intr, "--todo", todo_i])
    rows = {r["input"]: r for r in read_csv(os.path.join(intr, "summary.csv"))}
    check(rc == PARTIAL and rows["x.svs"]["status"] == "interrupted" and rows["x.svs"]["exit_code"] == "75",
          f"an interrupted input must be reported as interrupted (exit {rc}): {rows.get('x.svs')}\n{stdout}{err}")
    check(rows["z.svs"]["status"] == "ok" and rows["z.svs"]["last_status"] == "interrupted",
          f"an earlier output survives a later interrupted run: {rows['z.svs']}")
    check("1 report(s) of interrupted runs" in stdout and "interrupted" in stdout.split("not done:")[-1],
          f"gather output:\n{stdout}")
    check(open(todo_i).read().split() == ["x.svs"], f"--todo after an interruption: {open(todo_i).read()}")
    open(oi("x.tif"), "wb").close()
    dump("task-3-0.json", report([{"input": "x.svs", "output": oi("x.tif"), "status": "ok"}], "2026-01-01T00:00:02Z"))
    rc, stdout, err = run([gather, intr])
    check(rc == OK and "interrupted runs" not in stdout,
          f"once a rerun finished it, the interrupted run no longer counts (exit {rc}):\n{stdout}{err}")

    # All good: exit 0. No reports at all: 66. Bad arguments: 64.
    good = os.path.join(tmp, "good")
    os.makedirs(os.path.join(good, "reports"))
    open(os.path.join(good, "x.tif"), "wb").close()
    with open(os.path.join(good, "reports", "task-9-0.json"), "w") as f:
        json.dump(report([{"input": "x.svs", "output": os.path.join(good, "x.tif"), "status": "ok"}],
                         "2026-01-01T00:00:00Z"), f)
    expect([gather, good], OK, needle="1 ok")
    empty = os.path.join(tmp, "empty")
    os.makedirs(empty)
    expect([gather, empty], INPUT, needle="no reports")
    expect([gather], USAGE)
    expect([gather, good, "--stale-minutes", "soon"], USAGE)

    # Temporary files left by killed processes: listed; removed when stale and asked to.
    old = os.path.join(good, ".y.tif" + TEMP_MARKER + "123-0-abc")
    new = os.path.join(good, ".z.tif" + TEMP_MARKER + "456-0-def")
    for p in (old, new):
        open(p, "wb").close()
    os.utime(old, (time.time() - 7200, time.time() - 7200))
    out1, _ = expect([gather, good], OK)
    check(old in out1 and new in out1, f"temporary files not listed:\n{out1}")
    check(os.path.exists(old), "a temporary file was removed without --remove-stale-temp")
    out2, _ = expect([gather, good, "--remove-stale-temp"], OK)
    check(not os.path.exists(old) and os.path.exists(new), "--remove-stale-temp: only files idle for an hour go")
    expect([gather, good, "--remove-stale-temp", "--stale-minutes", "0"], OK)
    check(not os.path.exists(new), "--stale-minutes 0 should remove every temporary file")

    # Lock files: a stale one (its holder was killed) goes, a held one stays.
    import fcntl
    stale_lock = os.path.join(good, ".y.tif" + LOCK_SUFFIX)
    held_lock = os.path.join(good, ".z.tif" + LOCK_SUFFIX)
    open(stale_lock, "w").close()
    with open(held_lock, "w") as holder:
        fcntl.flock(holder, fcntl.LOCK_EX)
        out3, _ = expect([gather, good, "--remove-stale-temp", "--stale-minutes", "0"], OK)
        check(not os.path.exists(stale_lock) and os.path.exists(held_lock),
              f"stale lock removed: {not os.path.exists(stale_lock)}, held lock kept: {os.path.exists(held_lock)}")
        check("removed 1 stale lock file(s)" in out3, f"gather did not say it removed a lock file:\n{out3}")


# ---- resume: the array script by hand -----------------------------------------------------------

def array_task(lst, target, out, task, per_task, env=None):
    e = clean_env({"VAHANORM_BIN": ARGS.vahanorm, "VAHANORM_TASK_ID": str(task), "VAHANORM_RUN_NAME": "local",
                   "VAHANORM_THREADS": "1"})
    if env:
        e.update(env)
    return [script("vahanorm-array.sh"), "--per-task", str(per_task), lst, target, out], e


def statuses(report_path):
    r = load_json(report_path)
    return {os.path.basename(i["input"]): i["status"] for i in r["inputs"]}, r


def newest_report(out):
    d = os.path.join(out, "reports")
    return max((os.path.join(d, f) for f in os.listdir(d)), key=os.path.getmtime)


def case_resume(tmp):
    target = make_target(tmp)
    slides = make_slides(os.path.join(tmp, "in"), ["a", "b", "c"], ["k"], corrupt=False)
    lst = os.path.join(tmp, "list.txt")
    write_lines(lst, [slides[n] for n in ("a", "b", "c", "k")])
    out = os.path.join(tmp, "out")
    outs = {n: os.path.join(out, n + ".tif") for n in ("a", "b", "c", "k")}
    cmd, env = array_task(lst, target, out, 0, 4)

    expect(cmd, OK, env=env)
    dims = {n: slide_dims(slides[n]) for n in outs}
    for n, p in outs.items():
        check(slide_dims(p) == dims[n], f"{p}: size differs from its input")
    before = {n: os.stat(p) for n, p in outs.items()}

    # A truncated output at the final name and a leftover temporary file (no output) are redone;
    # complete outputs are skipped and left alone.
    data = open(outs["b"], "rb").read()
    with open(outs["b"], "wb") as f:
        f.write(data[: len(data) // 2])
    os.unlink(outs["c"])
    junk = os.path.join(out, ".c.tif" + TEMP_MARKER + "999999-0-dead")
    with open(junk, "wb") as f:
        f.write(data[:1000])
    expect(cmd, OK, env=env)
    st, _ = statuses(newest_report(out))
    check(st == {"a.svs": "skipped", "b.svs": "ok", "c.svs": "ok", "k.svs": "skipped"}, f"rerun statuses {st}")
    for n in ("a", "k"):
        s = os.stat(outs[n])
        check((s.st_ino, s.st_mtime_ns) == (before[n].st_ino, before[n].st_mtime_ns), f"{n}: rewritten on rerun")
    for n in ("b", "c"):
        check(slide_dims(outs[n]) == dims[n], f"{n}: not redone properly")
    check(os.path.exists(junk), "vahanorm should ignore (not delete) another process's temporary file")

    # SIGTERM while writing: stops within seconds, exit 75, nothing half-written left.
    os.unlink(outs["k"])
    p = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        seen = wait_for(lambda: temp_of(out, "k") or p.poll() is not None, 120)
        check(p.poll() is None and seen, "k.svs finished before it could be interrupted")
        p.send_signal(signal.SIGTERM)
        t0 = time.time()
        _, err = p.communicate(timeout=30)
        took = time.time() - t0
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    check(p.returncode == INTERRUPTED, f"after SIGTERM: exit {p.returncode}, expected {INTERRUPTED}\n{err}")
    check(took < 10, f"took {took:.1f} s to stop after SIGTERM")
    check(not os.path.exists(outs["k"]), "an output appeared although the run was stopped mid-write")
    check(not temp_of(out, "k") and not lock_files(out), f"left behind: {os.listdir(out)}")
    check(load_json(newest_report(out))["exit_code"] == INTERRUPTED, "the interrupted run's report lacks exit 75")

    # SIGKILL while writing: only a temporary file is left, nothing that looks finished.
    p = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        seen = wait_for(lambda: temp_of(out, "k") or p.poll() is not None, 120)
        check(p.poll() is None and seen, "k.svs finished before it could be killed")
        p.send_signal(signal.SIGSTOP)  # freeze it where it is, then kill
        p.kill()
        p.wait()
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    check(not os.path.exists(outs["k"]), "SIGKILL mid-write left a file at the final name")
    # The temporary output (and, if the kill came at that instant, a scratch file beside it
    # that was about to be unlinked), all named after the killed process.
    left = temp_of(out, "k")
    check(left and all(pid_of_temp(f) == p.pid for f in left), f"expected temporary files of pid {p.pid}: {left}")
    rc, stdout, _ = run([script("vahanorm-gather"), out, "--list", lst])
    check(rc == PARTIAL and "missing" in stdout and all(f in stdout for f in left),
          f"gather after the kill: exit {rc} (expected 3, k.svs missing, temporary files listed)\n{stdout}")

    # The rerun ignores the leftovers and completes k; the gather removes the stale temporary files.
    expect(cmd, OK, env=env)
    st, _ = statuses(newest_report(out))
    check(st == {"a.svs": "skipped", "b.svs": "skipped", "c.svs": "skipped", "k.svs": "ok"}, f"statuses {st}")
    check(slide_dims(outs["k"]) == dims["k"], "k not completed by the rerun")
    stdout, _ = expect([script("vahanorm-gather"), out, "--list", lst, "--remove-stale-temp", "--stale-minutes", "0"],
                       OK)
    check(f"removed {1 + len(left)} stale temporary file(s)" in stdout,
          f"gather did not remove the stale temporary files:\n{stdout}")
    rows = {os.path.basename(r["input"]): r for r in read_csv(os.path.join(out, "summary.csv"))}
    check({n: r["status"] for n, r in rows.items()} == {f"{n}.svs": "ok" for n in "abck"}, f"summary {rows}")
    check(sorted(os.listdir(out)) == ["a.tif", "b.tif", "c.tif", "k.tif", "reports", "summary.csv", "summary.json"],
          f"unexpected files in the output directory: {sorted(os.listdir(out))}")


# ---- output_lock: two processes, one output ----------------------------------------------------

def case_output_lock(tmp):
    import fcntl
    target = make_target(tmp)
    slides = make_slides(os.path.join(tmp, "in"), [], ["k"], corrupt=False)
    out = os.path.join(tmp, "out.tif")
    base = [ARGS.vahanorm, "--threads", "1", "apply", slides["k"], "--target", target, "-o", out]
    env = clean_env()
    failures = []

    # 1. A lock held by someone else: vahanorm gives up with exit 73 and says why.
    lockpath = os.path.join(tmp, ".out.tif" + LOCK_SUFFIX)
    with open(lockpath, "w") as holder:
        fcntl.flock(holder, fcntl.LOCK_EX)
        rc, _, err = run(base, env)
        fcntl.flock(holder, fcntl.LOCK_UN)
    if rc != OUTPUT or "another" not in err:
        failures.append(f"a held output lock: exit {rc} (expected {OUTPUT} and a message about another process)\n{err}")
    check(not os.path.exists(out), "an output was written although its lock was held")
    if os.path.exists(lockpath):
        os.unlink(lockpath)

    # 2. Two real processes: B starts while A writes (B has a saved source model, so it reaches
    #    its output at once); B must give up with 73, A must finish with a valid output.
    src_model = os.path.join(tmp, "k.json")
    expect([ARGS.vahanorm, "-q", "estimate", slides["k"], "-o", src_model], OK)
    a = subprocess.Popen(base, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        seen = wait_for(lambda: any(TEMP_MARKER in f for f in os.listdir(tmp)) or a.poll() is not None, 120)
        check(seen and a.poll() is None, "the first process finished before the second could start")
        t0 = time.time()
        rc_b, _, err_b = run(base + ["--source-model", src_model], env, timeout=120)
        took = time.time() - t0
        a_still_writing = a.poll() is None
        _, err_a = a.communicate(timeout=120)
    finally:
        if a.poll() is None:
            a.kill()
            a.wait()
    check(a.returncode == OK, f"the first writer: exit {a.returncode}\n{err_a}")
    dims = slide_dims(slides["k"])
    check(slide_dims(out) == dims, "the output is not the complete slide")
    if not a_still_writing:
        log(f"note: the first writer finished while the second ran ({took:.1f} s); the overlap was partial")
    if rc_b != OUTPUT or "another" not in err_b:
        failures.append(f"second writer while the first wrote: exit {rc_b} (expected {OUTPUT} and a message about "
                        f"another process)\n{err_b}")
    check(rc_b in (OK, OUTPUT), f"second writer: exit {rc_b}\n{err_b}")

    # 3. Started together, twice: never a corrupt output, every exit 0 or 73, one at least 0.
    for round_ in range(2):
        os.unlink(out)
        procs = [subprocess.Popen(base, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                 for _ in range(2)]
        results = [(p.wait(timeout=300), p.communicate()[1]) for p in procs]
        codes = sorted(r for r, _ in results)
        check(all(c in (OK, OUTPUT) for c in codes) and OK in codes, f"round {round_}: exits {codes}\n{results}")
        for c, err in results:
            check(c != OUTPUT or "another" in err, f"round {round_}: exit 73 without saying why:\n{err}")
        check(slide_dims(out) == dims, f"round {round_}: the output is not the complete slide")
        log(f"round {round_}: exits {codes}")
    left = [f for f in os.listdir(tmp) if TEMP_MARKER in f or f.endswith(LOCK_SUFFIX)]
    check(not left, f"left behind: {left}")
    check(not failures, "output lock:\n" + "\n".join(failures))


# ---- cluster: a real single-node SLURM -----------------------------------------------------------

SLURM_TOOLS = ("sbatch", "squeue", "scontrol", "scancel", "sinfo", "slurmctld", "slurmd", "munged", "mungekey",
               "munge", "unmunge")


def find_tool(name):
    path = os.environ.get("PATH", "") + ":/usr/sbin:/sbin:/usr/local/sbin"
    return shutil.which(name, path=path)


def free_ports(n):
    socks, ports = [], []
    for _ in range(n):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        socks.append(s)
        ports.append(s.getsockname()[1])
    for s in socks:
        s.close()
    return ports


def die_with_parent():
    # The daemons go when this test goes, even if it is killed (CTest timeout).
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except OSError:
        pass


class MiniSlurm:
    """munged + slurmctld + slurmd for this machine, configured and stopped by this test."""

    def __init__(self, root):
        self.root = root
        self.tools = {t: find_tool(t) for t in SLURM_TOOLS}
        self.procs = {}
        self.jobs = []
        self.env = None

    def start(self):
        r = self.root
        os.makedirs(r)
        for d in (os.path.dirname(r), r):
            os.chmod(d, 0o755)  # munged wants every directory above its socket searchable by all
        for d in ("state", "spool", "munge"):
            os.makedirs(os.path.join(r, d))
        key, sock = os.path.join(r, "munge", "munge.key"), os.path.join(r, "munge", "munge.sock")
        os.chmod(os.path.join(r, "munge"), 0o755)
        expect([self.tools["mungekey"], "--create", f"--keyfile={key}"], OK, env=clean_env())
        self.spawn("munged", [self.tools["munged"], "--foreground", f"--key-file={key}", f"--socket={sock}",
                              f"--pid-file={r}/munge/munged.pid", f"--log-file={r}/munge/munged.log",
                              f"--seed-file={r}/munge/munged.seed"])
        ok = wait_for(lambda: os.path.exists(sock) and subprocess.run(
            f"{self.tools['munge']} -S {sock} -n | {self.tools['unmunge']} -S {sock}", shell=True,
            capture_output=True).returncode == 0, 15, 0.05)
        check(ok, "munged did not come up:\n" + self.tail("munged"))

        host = socket.gethostname().split(".")[0]
        ctl_port, d_port = free_ports(2)
        conf = os.path.join(r, "slurm.conf")
        with open(conf, "w") as f:
            f.write(f"""# generated by tests/slurm/test_slurm.py
ClusterName=vahanormtest
SlurmctldHost={host}(127.0.0.1)
SlurmctldPort={ctl_port}
SlurmdPort={d_port}
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket={sock}
SlurmUser=root
SlurmdUser=root
StateSaveLocation={r}/state
SlurmdSpoolDir={r}/spool
SlurmctldPidFile={r}/slurmctld.pid
SlurmdPidFile={r}/slurmd.pid
SlurmctldLogFile={r}/slurmctld.log
SlurmdLogFile={r}/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
MpiDefault=none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
ReturnToService=2
SchedulerParameters=batch_sched_delay=0,sched_interval=1
KillWait=10
# sbatch --wait sleeps 2 s, then 4x longer while that is under MinJobAge/2 (up to 32 s): 8 s
# here, instead of 2, 8, 32, 32... Its exit code is the highest among the task records it
# sees, and a finished task's record is purged MinJobAge after it ended: the checks below
# rely only on the codes of the last tasks of an array (docs/hpc.md has the caveat).
MinJobAge=16
# Two CPUs whatever this machine has: --cpus-per-task=1 gives two tasks at once.
SlurmdParameters=config_overrides
NodeName={host} NodeAddr=127.0.0.1 CPUs=2 Boards=1 SocketsPerBoard=1 CoresPerSocket=2 ThreadsPerCore=1 RealMemory=4000 State=UNKNOWN
PartitionName=test Nodes={host} Default=YES MaxTime=INFINITE State=UP
""")
        self.env = clean_env({"SLURM_CONF": conf})
        self.spawn("slurmctld", [self.tools["slurmctld"], "-D", "-i", "-f", conf])
        self.spawn("slurmd", [self.tools["slurmd"], "-D", "-f", conf])
        t0 = time.time()

        def up():
            for name, p in self.procs.items():
                if p.poll() is not None:
                    raise Failure(f"{name} exited with {p.returncode}:\n{self.tail(name)}")
            if self.cmd("scontrol", "ping")[0] != 0:
                return False
            rc, out, _ = self.cmd("sinfo", "-h", "-N", "-o", "%T")
            return rc == 0 and out.strip() == "idle"
        check(wait_for(up, 30, 0.1), "SLURM did not come up:\n" + self.tail("slurmctld") + self.tail("slurmd"))
        log(f"SLURM up on {host} in {time.time() - t0:.2f} s (ports {ctl_port}, {d_port})")

    def spawn(self, name, cmd):
        logf = open(os.path.join(self.root, name + ".out"), "w")
        self.procs[name] = subprocess.Popen(cmd, stdout=logf, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                            env=self.env or clean_env(), preexec_fn=die_with_parent)
        logf.close()

    def tail(self, name, n=30):
        text = ""
        for suffix in (".out", ".log"):
            for p in (os.path.join(self.root, name + suffix), os.path.join(self.root, "munge", name + suffix)):
                if os.path.exists(p):
                    text += f"--- {p}\n" + "".join(open(p, errors="replace").readlines()[-n:])
        return text

    def cmd(self, *args, timeout=60):
        p = subprocess.run([self.tools[args[0]]] + list(args[1:]), env=self.env, capture_output=True, text=True,
                           timeout=timeout)
        return p.returncode, p.stdout, p.stderr

    def queue(self, job=None):
        args = ["squeue", "-h", "-r", "-o", "%i %T"] + (["-j", str(job)] if job else [])
        rc, out, _ = self.cmd(*args)
        return [line.split() for line in out.splitlines()] if rc == 0 else []

    def stop(self):
        if self.env and self.procs.get("slurmctld") and self.procs["slurmctld"].poll() is None:
            for job in self.jobs:
                self.cmd("scancel", str(job))
            if not wait_for(lambda: not self.queue(), 30, 0.2):
                log(f"warning: jobs still queued at the end: {self.queue()}")
        for name in ("slurmd", "slurmctld", "munged"):
            p = self.procs.get(name)
            if p and p.poll() is None:
                p.terminate()
                try:
                    p.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()


class Wrapper:
    """VAHANORM_BIN for the jobs: logs the pid (which vahanorm keeps: exec) with job and task."""

    def __init__(self, d):
        self.path = os.path.join(d, "vahanorm-logged")
        self.log = os.path.join(d, "pids.log")
        with open(self.path, "w") as f:
            f.write(f"""#!/usr/bin/env bash
echo "$$ ${{SLURM_ARRAY_JOB_ID:-}} ${{SLURM_ARRAY_TASK_ID:-}} $(date +%s.%N)" >> {self.log}
exec {ARGS.vahanorm} "$@"
""")
        os.chmod(self.path, 0o755)

    def entries(self):
        if not os.path.exists(self.log):
            return []
        out = []
        for line in open(self.log):
            f = line.split()
            if len(f) == 4:
                out.append({"pid": int(f[0]), "job": f[1], "task": int(f[2]), "start": float(f[3])})
        return out

    def kill_leftovers(self):
        for e in self.entries():
            try:
                with open(f"/proc/{e['pid']}/cmdline", "rb") as f:
                    if ARGS.vahanorm.encode() not in f.read():
                        continue
                os.kill(e["pid"], signal.SIGKILL)
                log(f"killed leftover vahanorm pid {e['pid']}")
            except OSError:
                pass


def submit(slurm, lst, target, out, per_task, sbatch_opts, env_extra, watch=None):
    """submit.sh ... --wait; returns (exit code, job id, max tasks running at once, output)."""
    env = dict(slurm.env, **env_extra, VAHANORM_PER_TASK=str(per_task))
    cmd = [script("submit.sh"), lst, target, out, "--wait", "--cpus-per-task=1", "--mem=300M", "--time=10",
           "--job-name=vntest"] + sbatch_opts
    t0 = time.time()
    p = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    chunks = {"out": "", "err": ""}

    def reader(stream, key):
        for line in stream:
            chunks[key] += line
    threads = [threading.Thread(target=reader, args=(p.stdout, "out")),
               threading.Thread(target=reader, args=(p.stderr, "err"))]
    for t in threads:
        t.start()
    job, max_running = None, 0
    deadline = time.time() + 400
    try:
        while p.poll() is None and time.time() < deadline:
            if job is None and "Submitted batch job" in chunks["out"]:
                job = int(chunks["out"].split("Submitted batch job")[1].split()[0])
                slurm.jobs.append(job)
            if job is not None:
                q = slurm.queue(job)
                max_running = max(max_running, sum(1 for _, state in q if state == "RUNNING"))
                if watch:
                    watch(job)
            time.sleep(0.05)
        if p.poll() is None:
            raise Failure(f"sbatch --wait still running after 400 s; queue: {slurm.queue()}")
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
        for t in threads:
            t.join()
    if job is None and "Submitted batch job" in chunks["out"]:
        job = int(chunks["out"].split("Submitted batch job")[1].split()[0])
        slurm.jobs.append(job)
    check(job is not None, f"no job submitted: exit {p.returncode}\n{chunks['out']}\n{chunks['err']}")
    log(f"job {job} ({os.path.basename(lst)}, {per_task} per task): sbatch --wait exit {p.returncode} after "
        f"{time.time() - t0:.1f} s")
    return p.returncode, job, max_running, chunks["out"] + chunks["err"]


def case_cluster(tmp):
    missing = [t for t in SLURM_TOOLS if not find_tool(t)]
    if missing:
        msg = (f"slurm not installed (missing: {' '.join(missing)}; apt-get install -y --no-install-recommends "
               f"slurmctld slurmd slurm-client munge)")
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            raise Failure(msg + " - required under CI=true")
        raise Skip(msg)
    if os.geteuid() != 0:
        msg = "the single-node SLURM of this test runs its daemons as root"
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            raise Failure(msg + "; CI runs as root")
        raise Skip(msg)

    t_start = time.time()
    target = make_target(tmp)
    good = [f"s{i}" for i in range(8)]
    slides = make_slides(os.path.join(tmp, "in"), good, ["k0", "k1"])
    dims = {n: slide_dims(slides[n]) for n in good + ["k0", "k1"]}
    lst = os.path.join(tmp, "slides.txt")
    names1 = good[:4] + ["bad"] + good[4:] + ["trunc"]
    write_lines(lst, [slides[n] for n in names1])
    out = os.path.join(tmp, "out")
    wrapper = Wrapper(tmp)
    jobenv = {"VAHANORM_BIN": wrapper.path}
    gather = script("vahanorm-gather")

    slurm = MiniSlurm(os.path.join(tmp, "slurm"))
    try:
        slurm.start()

        # 1. Ten inputs, one per task, two tasks at a time; the two corrupt ones fail.
        rc, job1, running, text = submit(slurm, lst, target, out, 1, [], jobenv)
        log(f"array 1 (job {job1}): exit {rc}, at most {running} task(s) running at once")
        check(rc == INPUT, f"sbatch --wait: exit {rc}, expected {INPUT} (the corrupt slides' code)\n{text}")
        starts = sorted(e["start"] for e in wrapper.entries() if e["job"] == str(job1))
        check(len(starts) == len(names1), f"{len(starts)} tasks ran vahanorm, expected {len(names1)}")
        check(running >= 2, f"never saw two tasks running at once (max {running})")
        outs = {n: os.path.join(out, n + ".tif") for n in good}
        for n in good:
            check(slide_dims(outs[n]) == dims[n], f"{n}: output size differs from its input")
        logs = os.listdir(os.path.join(out, "logs"))
        check(len([f for f in logs if f.startswith(f"vntest-{job1}_")]) == len(names1), f"logs: {logs}")
        some_log = open(os.path.join(out, "logs", f"vntest-{job1}_0.out")).read()
        check("cpu (1 thread)" in some_log, f"vahanorm did not use SLURM_CPUS_PER_TASK=1:\n{some_log}")
        rc, stdout, _ = run([gather, out, "--list", lst])
        check(rc == PARTIAL and "2 failed" in stdout and slides["bad"] in stdout and slides["trunc"] in stdout,
              f"gather after array 1: exit {rc}\n{stdout}")
        first = {n: os.stat(p) for n, p in outs.items()}

        # 2. The rerun (5 per task this time) skips everything done; the corrupt ones fail again.
        rc, job2, _, text = submit(slurm, lst, target, out, 5, [], jobenv)
        check(rc == PARTIAL, f"rerun: exit {rc}, expected {PARTIAL}\n{text}")
        for n, p in outs.items():
            s = os.stat(p)
            check((s.st_ino, s.st_mtime_ns) == (first[n].st_ino, first[n].st_mtime_ns), f"{n}: redone by the rerun")
        rc, stdout, _ = run([gather, out, "--list", lst])
        check(rc == PARTIAL, f"gather after the rerun: exit {rc}\n{stdout}")
        rows = {r["input"]: r for r in read_csv(os.path.join(out, "summary.csv"))}
        for n in good:
            r = rows[slides[n]]
            check(r["status"] == "ok" and r["last_status"] == "skipped" and f"task-{job1}-" in r["report"] and
                  r["total_ms"] and r["tissue_fraction"], f"{n}: the rerun's skip hid the producing run: {r}")

        # 3. Two more slides: one task is killed (SIGKILL) while writing, one cancelled (SIGTERM).
        lst2 = os.path.join(tmp, "slides2.txt")
        names2 = names1 + ["k0", "k1"]
        write_lines(lst2, [slides[n] for n in names2])
        state = {"killed": None, "cancelled": None, "cancel_time": None}

        def ours(pid, job):
            return any(e["pid"] == pid and e["job"] == str(job) for e in wrapper.entries())

        def watch(job):
            if state["killed"] is None:
                t = temp_of(out, "k0")
                if t and ours(pid_of_temp(t[0]), job):
                    pid = pid_of_temp(t[0])
                    os.kill(pid, signal.SIGSTOP)  # frozen mid-write, then killed
                    os.kill(pid, signal.SIGKILL)
                    state["killed"] = (pid, f".k0.tif{TEMP_MARKER}{pid}-")
                    log(f"killed vahanorm pid {pid} (k0) mid-write: {t[0]}")
            if state["cancelled"] is None:
                t = temp_of(out, "k1")
                if t and ours(pid_of_temp(t[0]), job):
                    task = names2.index("k1")
                    slurm.cmd("scancel", f"{job}_{task}")
                    state["cancelled"] = (pid_of_temp(t[0]), task)
                    state["cancel_time"] = time.time()
                    log(f"scancel {job}_{task} (k1, SIGTERM) mid-write")
        rc, job3, _, text = submit(slurm, lst2, target, out, 1, [], jobenv, watch=watch)
        check(state["killed"] and state["cancelled"], f"could not catch k0/k1 while writing: {state}\n{text}")
        check(rc != OK, f"array 3 had a killed and a cancelled task but sbatch --wait exited {rc}")
        check(not os.path.exists(os.path.join(out, "k0.tif")), "SIGKILL mid-write left a file at the final name")
        killed_left = temp_of(out, "k0")
        check(killed_left and all(f.startswith(state["killed"][1]) for f in killed_left),
              f"k0: expected only temporary files of the killed process: {killed_left}")
        check(not os.path.exists(os.path.join(out, "k1.tif")) and not temp_of(out, "k1"),
              f"k1 (SIGTERM) left something behind: {sorted(os.listdir(out))}")
        rep_k1 = os.path.join(out, "reports", f"task-{job3}-{state['cancelled'][1]}.json")
        check(os.path.exists(rep_k1) and load_json(rep_k1)["exit_code"] == INTERRUPTED,
              f"the cancelled task should have stopped with exit 75 and a report: {rep_k1}")
        took = os.path.getmtime(rep_k1) - state["cancel_time"]
        check(took < 10, f"the cancelled task took {took:.1f} s to stop")
        rc, stdout, _ = run([gather, out, "--list", lst2])
        k1_line = [line for line in stdout.splitlines() if line.strip().endswith(f"{slides['k1']}: stopped by a signal "
                                                                                  "while being written; nothing was left")]
        check(rc == PARTIAL and stdout.count("missing ") >= 1 and all(f in stdout for f in killed_left) and
              len(k1_line) == 1 and k1_line[0].split()[0] == "interrupted" and "1 report(s) of interrupted runs" in stdout,
              f"gather should list k0 as missing with its temporary files, and k1 as interrupted:\n{stdout}")

        # 4. The rerun (3 per task) completes k0 and k1 and skips the rest.
        rc, job4, _, text = submit(slurm, lst2, target, out, 3, [], jobenv)
        check(rc == PARTIAL, f"final rerun: exit {rc}, expected {PARTIAL}\n{text}")
        rc, stdout, _ = run([gather, out, "--list", lst2, "--remove-stale-temp", "--stale-minutes", "0"])
        log("gather:\n" + stdout.rstrip())
        check(rc == PARTIAL, f"gather: exit {rc}, expected {PARTIAL}\n{stdout}")
        s = load_json(os.path.join(out, "summary.json"))
        check(sorted(f["input"] for f in s["failed"]) == sorted([slides["bad"], slides["trunc"]]),
              f"failed inputs: {s['failed']}")
        check(not s["missing"] and s["counts"] == {"ok": 10, "failed": 2}, f"counts {s['counts']}, missing {s['missing']}")
        check(not s["interrupted_reports"] and "interrupted runs" not in stdout,
              f"the interrupted run still counted after the rerun finished k1:\n{stdout}")
        check(sorted(s["removed_temp_files"]) == sorted(os.path.join(out, f) for f in killed_left),
              f"removed temporary files: {s['removed_temp_files']}, expected {killed_left}")
        for n in good + ["k0", "k1"]:
            check(slide_dims(os.path.join(out, n + ".tif")) == dims[n], f"{n}: not a complete output")
        for n, p in outs.items():
            check(os.stat(p).st_ino == first[n].st_ino, f"{n}: rewritten by a rerun")
        expected = sorted([n + ".tif" for n in good + ["k0", "k1"]] + ["logs", "reports", "summary.csv",
                                                                       "summary.json"])
        check(sorted(os.listdir(out)) == expected, f"output directory: {sorted(os.listdir(out))}")
        log(f"cluster case: {time.time() - t_start:.0f} s")
    finally:
        slurm.stop()
        wrapper.kill_leftovers()


def main():
    global ARGS
    ap = argparse.ArgumentParser()
    ap.add_argument("--vahanorm", required=True)
    ap.add_argument("--shared", required=True)
    ap.add_argument("--scripts", required=True, help="scripts/slurm of the source tree")
    ap.add_argument("--case", required=True)
    ap.add_argument("--keep", action="store_true", help="keep the temporary directory (debugging)")
    ARGS = ap.parse_args()
    ARGS.vahanorm = os.path.abspath(ARGS.vahanorm)
    ARGS.scripts = os.path.abspath(ARGS.scripts)
    fn = globals().get("case_" + ARGS.case)
    if fn is None:
        print(f"no such case: {ARGS.case}")
        return 2
    # CTest's timeout and ^C: run the finally blocks (stop the daemons), then go.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(124))
    tmp = tempfile.mkdtemp(prefix="vahanorm-slurm-")
    try:
        fn(tmp)
    except Skip as s:
        print(f"[SKIPPED] {s}")
        return 0
    except Failure as f:
        print(f"FAILED {ARGS.case}: {f}")
        if ARGS.keep:
            print(f"kept {tmp}")
        return 1
    except Exception:
        traceback.print_exc()
        print(f"FAILED {ARGS.case}: unexpected error (above)")
        return 1
    finally:
        if not ARGS.keep:
            shutil.rmtree(tmp, ignore_errors=True)
    print(f"passed {ARGS.case}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
