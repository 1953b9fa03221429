"""What the benchmark drivers share: mounting each variant over a tree, and running one
mount-bench workload."""
import json
import os
import subprocess
import time

VARIANTS = ["native", "fuse-overlayfs", "digestfs-noverify", "digestfs"]


def measure(build, *args):
    """One mount-bench workload's single number."""
    bench = os.path.join(build, "tests/bench/mount-bench")
    done = subprocess.run([bench, *args], capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"benchmark: mount-bench {' '.join(args)} failed: {done.stderr.strip()}")
    return float(done.stdout)


def write_list(base, rel, name, tmp):
    """A list file for mount-bench: the relative paths `rel` under `base`."""
    path = os.path.join(tmp, name)
    with open(path, "w") as f:
        f.write("\n".join(os.path.join(base, r) for r in rel) + "\n")
    return path


def wait_mounted(path):
    for _ in range(4000):
        if os.path.ismount(path):
            return
        time.sleep(0.025)
    raise SystemExit(f"benchmark: {path} did not mount")


def mount(variant, build, root, keys, tmp):
    """Mounts `variant` over `root`; returns (where the tree is seen, the process or None).
    digestfs mounts once its digest cache is loaded (for a real /usr, a second or so)."""
    if variant == "native":
        return root, None
    mnt = os.path.join(tmp, "mnt-" + variant)
    os.makedirs(mnt, exist_ok=True)
    if variant == "fuse-overlayfs":
        upper, work = os.path.join(tmp, "upper"), os.path.join(tmp, "work")
        subprocess.run(["rm", "-rf", upper, work], check=True)
        os.makedirs(upper)
        os.makedirs(work)
        cmd = ["fuse-overlayfs", "-f", "-o", f"lowerdir={root},upperdir={upper},workdir={work}", mnt]
    else:
        opts = f"keys={keys},root={root}"
        if variant == "digestfs-noverify":
            opts += ",noverify"
        elif variant == "digestfs-noblocks":
            opts += ",block-checks=no"
        cmd = [os.path.join(build, "digestfs"), "-f", "-o", opts, root, mnt]
    proc = subprocess.Popen(cmd, stderr=subprocess.DEVNULL)
    wait_mounted(mnt)
    return mnt, proc


def status(mnt):
    """The JSON status document of a digestfs mount."""
    return json.loads(os.getxattr(mnt, "user.digestfs.status"))


def unmount(mnt, proc):
    if proc:
        subprocess.run(["fusermount3", "-u", mnt], check=True)
        proc.wait()


def rpm_va(root):
    """rpm's own check of every package in the root: the rescan's baseline."""
    return ["rpm", "-Va", "--nodeps", "--root", root, "--dbpath", "/var/lib/rpm"]


def rescan(build, root, keys):
    return [os.path.join(build, "tools/digestfs-rescan"), "--keys", keys, "--root", root]


def timed(cmd, cold=False, **kw):
    """Seconds of one run of `cmd` (output captured), and the finished process; with `cold`,
    the page cache is dropped first."""
    if cold:
        drop_caches()
    start = time.monotonic()
    done = subprocess.run(cmd, capture_output=True, text=True, **kw)
    return time.monotonic() - start, done


def drop_caches():
    subprocess.run(["sync"], check=True)
    with open("/proc/sys/vm/drop_caches", "w") as f:
        f.write("3\n")


def read_whole(root, rel):
    """Reads every file `rel` under `root` whole, in that order, 1 MiB at a time. Before a
    variant runs, this puts the lower tree in the page cache just then: once at the start is
    not enough on a host that pages out memory left untouched for a while (the machine of
    docs/PERFORMANCE.md runs DAMON's pageout scheme: pages idle for a minute, up to 128 MiB/s),
    where a later variant read from the disk."""
    buf = bytearray(1 << 20)
    for r in rel:
        with open(os.path.join(root, r), "rb", buffering=0) as f:
            while f.readinto(buf):
                pass


def plot_histograms(script):
    """Runs gnuplot on `script` (its outputs, titles and plot lines) after the style every
    chart of the benchmarks shares: clustered bars, one colour per variant, 1000x520 PNG."""
    style = """set terminal pngcairo size 1000,520
set style data histograms
set style histogram clustered gap 1
set style fill solid border -1
set key top left
set xtics nomirror
set grid ytics
"""
    subprocess.run(["gnuplot"], input=style + script, text=True, check=True)
