"""Bulk jobs at cluster scale, on real engines: Ray on a local cluster, Spark in local mode and on
a standalone cluster (master and worker started here on 127.0.0.1), input, artifact and output on
a real S3 API (moto's server on the loopback). Every engine's rows equal the local engine's;
failed jobs leave nothing; killed workers cost retries, not rows."""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from albert_onnx import ArtifactError, InputError
from albert_onnx.batch import run_local
from albert_onnx.cli import main

from .test_batch import BAD, GOOD

pa = pytest.importorskip("pyarrow", reason="pyarrow is not installed: pip install -e '.[batch]'")
pq = pytest.importorskip("pyarrow.parquet", reason="pyarrow.parquet is not installed: pip install -e '.[batch]'")
pafs = pytest.importorskip("pyarrow.fs", reason="pyarrow.fs is not installed: pip install -e '.[batch]'")

pytestmark = pytest.mark.slow
ENGINES = ["ray", "spark"]


def run_engine(engine: str, *args: Any, **kwargs: Any) -> dict[str, Any]:
    if engine == "ray":
        pytest.importorskip("ray", reason="ray is not installed: pip install -e '.[ray]'")
        from albert_onnx.batch.engines import run_ray

        return run_ray(*args, **kwargs)
    pytest.importorskip("pyspark", reason="pyspark is not installed: pip install -e '.[spark]'")
    from albert_onnx.batch.engines import run_spark

    return run_spark(*args, **kwargs)


def output_rows(location: str) -> dict[str, dict[str, Any]]:
    """Every row of a job's output (a folder or a URI), each id once."""
    from albert_onnx.batch.storage import filesystem

    fs, path = filesystem(location)
    rows: dict[str, dict[str, Any]] = {}
    names = []
    for info in fs.get_file_info(pafs.FileSelector(path)):
        name = info.path.rsplit("/", 1)[-1]
        names.append(name)
        if name.endswith(".parquet"):
            with fs.open_input_file(info.path) as f:
                for row in pq.read_table(f).to_pylist():
                    assert row["id"] not in rows, f"row {row['id']} written twice"
                    rows[row["id"]] = row
    assert "_SUCCESS" in names and not [n for n in names if n.startswith(".")], names
    return rows


def make_inputs(folder: Path, copies: int = 2) -> int:
    """A .txt, a .jsonl (ids, bad lines, blank lines) and a Parquet file of several row groups."""
    folder.mkdir(parents=True)
    texts = (GOOD + BAD) * copies
    (folder / "a.txt").write_text("\n".join(texts[:30]) + "\n", encoding="utf-8")
    lines = [json.dumps({"text": t, "id": f"j{k}"}, ensure_ascii=False) for k, t in enumerate(texts[30:50])]
    lines[3:3] = ["{not json", "", json.dumps({"text": 5}), "  "]
    (folder / "b.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    rest = texts[50:] + [None]
    pq.write_table(pa.table({"text": rest}), folder / "c.parquet", row_group_size=6)
    return 30 + 22 + len(rest)


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory, tiny_artifact: Path) -> tuple[Path, dict[str, Any]]:
    """The inputs and the local engine's rows for them: what every engine must give."""
    root = tmp_path_factory.mktemp("cluster-in")
    n = make_inputs(root / "in")
    run_local(tiny_artifact, root / "in", root / "local", workers=1, threads=1, part_rows=7, progress=False)
    rows = output_rows(str(root / "local"))
    assert len(rows) == n
    return root / "in", rows


@pytest.mark.parametrize("engine", ENGINES)
def test_engine_rows_equal_the_local_engine(engine: str, tiny_artifact: Path, inputs: tuple[Path, Any],
                                            tmp_path: Path) -> None:
    src, want = inputs
    out = tmp_path / "out"
    summary = run_engine(engine, tiny_artifact, src.as_uri(), str(out), workers=2, threads=1, part_rows=7)
    assert output_rows(str(out)) == want
    assert summary["rows"] == summary["rows_run"] == len(want) and summary["parts"] >= 10
    assert json.loads((out / "_SUCCESS").read_text())["rows"] == len(want)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]  # committed by a rename: nothing beside it
    with pytest.raises(InputError, match="already exists"):
        run_engine(engine, tiny_artifact, src, str(out), workers=1)
    # a glob input, a tampered artifact: the job fails where the artifact is loaded, and leaves nothing
    bad = tmp_path / "bad-artifact"
    shutil.copytree(tiny_artifact, bad)
    model = next(p for p in bad.iterdir() if p.name == "model.onnx")
    model.write_bytes(model.read_bytes()[:-1] + b"\0")
    with pytest.raises(ArtifactError, match="model.onnx fails its SHA-256 check") as err:
        run_engine(engine, bad, str(src / "*.txt"), str(tmp_path / "failed"), workers=1)
    assert "Traceback" not in str(err.value) and str(bad) in str(err.value)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad-artifact", "out"]


# --- a real S3 API on the loopback ---------------------------------------------------------------

@pytest.fixture(scope="module")
def s3() -> Iterator[str]:
    """moto's S3 server on 127.0.0.1; the AWS settings go to the environment, which the engines'
    workers inherit. Yields the bucket."""
    pytest.importorskip("moto.server", reason="moto.server is not installed: pip install -e '.[test]'")
    boto3 = pytest.importorskip("boto3", reason="boto3 is not installed: pip install -e '.[test]'")
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one line a request otherwise
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    env = {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test", "AWS_DEFAULT_REGION": "us-east-1",
           "AWS_ENDPOINT_URL": f"http://{host}:{port}", "AWS_EC2_METADATA_DISABLED": "true"}
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    boto3.client("s3").create_bucket(Bucket="jobs")
    try:
        yield "jobs"
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        server.stop()


def upload(local: Path, uri: str) -> None:
    fs, path = pafs.FileSystem.from_uri(uri)
    for f in sorted(local.rglob("*")):
        if f.is_file():
            with fs.open_output_stream(f"{path}/{f.relative_to(local).as_posix()}") as out:
                out.write(f.read_bytes())


@pytest.mark.parametrize("engine", ENGINES)
def test_s3_input_artifact_and_output(engine: str, s3: str, tiny_artifact: Path, inputs: tuple[Path, Any]) -> None:
    src, want = inputs
    upload(src, f"s3://{s3}/{engine}/in")
    upload(tiny_artifact, f"s3://{s3}/{engine}/artifact")
    out = f"s3://{s3}/{engine}/out"
    # Spark's Python workers take the executors' environment (a JVM started by an earlier test
    # lacks these), so the settings go as spark.executorEnv, as on a cluster
    extra = {"conf": {f"spark.executorEnv.{k}": v for k, v in os.environ.items() if k.startswith("AWS_")}}
    kw: dict[str, Any] = extra if engine == "spark" else {}
    summary = run_engine(engine, f"s3://{s3}/{engine}/artifact", f"s3://{s3}/{engine}/in", out, workers=2,
                         part_rows=7, **kw)
    assert output_rows(out) == want and summary["rows"] == len(want)
    with pytest.raises(InputError, match="already holds a finished job"):
        run_engine(engine, tiny_artifact, f"s3://{s3}/{engine}/in", out, workers=1)
    # a job that fails on S3 leaves no object under its output
    upload(tiny_artifact, f"s3://{s3}/{engine}/bad")
    fs, _ = pafs.FileSystem.from_uri(f"s3://{s3}")
    with fs.open_output_stream(f"{s3}/{engine}/bad/model.onnx") as f:
        f.write(b"not the model")
    with pytest.raises(ArtifactError, match="model.onnx is 13 bytes, the manifest says"):
        run_engine(engine, f"s3://{s3}/{engine}/bad", f"s3://{s3}/{engine}/in/b.jsonl", f"{out}-failed", workers=1,
                   **kw)
    left = fs.get_file_info(pafs.FileSelector(f"{s3}/{engine}/out-failed", allow_not_found=True, recursive=True))
    assert left == []


# --- resume after the driver was killed -------------------------------------------------------------

def test_spark_resume_after_a_killed_driver(tiny_artifact: Path, tmp_path: Path) -> None:
    pytest.importorskip("pyspark", reason="pyspark is not installed: pip install -e '.[spark]'")
    src = tmp_path / "in.txt"
    texts = (GOOD * 40)[:1200]
    src.write_text("\n".join(texts) + "\n", encoding="utf-8")
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "albert_onnx.cli", "batch", str(tiny_artifact), str(src), "-o", str(out),
           "--engine", "spark", "--workers", "1", "--part-rows", "5", "--resume"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    partial = tmp_path / ".out.partial"
    deadline = time.time() + 180
    while time.time() < deadline and len(list(partial.glob("part-*.parquet"))) < 3:
        time.sleep(0.1)
    os.killpg(proc.pid, signal.SIGKILL)  # the driver and its JVM
    proc.wait()
    written = len(list(partial.glob("part-*.parquet")))
    assert 3 <= written < 240 and not out.exists(), written
    summary = json.loads(_cli(cmd[3:]))
    assert summary["rows_resumed"] >= 15 and summary["rows_run"] + summary["rows_resumed"] == 1200
    rows = output_rows(str(out))
    assert sorted(rows, key=int) == [str(n) for n in range(1200)]
    assert all(r["error"] is None for r in rows.values())


def _cli(argv: list[str]) -> str:
    import contextlib
    import io

    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        assert main(argv) == 0
    return buf.getvalue()


# --- Spark standalone cluster -----------------------------------------------------------------------

def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def spark_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A Spark standalone master and one worker (2 cores) on 127.0.0.1, from pyspark's own
    spark-class; yields the master URL."""
    pyspark = pytest.importorskip("pyspark", reason="pyspark is not installed: pip install -e '.[spark]'")
    spark_class = Path(pyspark.__file__).parent / "bin" / "spark-class"
    work = tmp_path_factory.mktemp("spark-standalone")
    env = {**os.environ, "SPARK_LOCAL_IP": "127.0.0.1", "SPARK_HOME": str(spark_class.parents[1])}
    port, ui = _free_port(), _free_port()
    master = subprocess.Popen([str(spark_class), "org.apache.spark.deploy.master.Master", "--host", "127.0.0.1",
                               "--port", str(port), "--webui-port", str(ui)], env=env,
                              stdout=open(work / "master.log", "wb"), stderr=subprocess.STDOUT)
    url = f"spark://127.0.0.1:{port}"
    worker = subprocess.Popen([str(spark_class), "org.apache.spark.deploy.worker.Worker", url, "--host",
                               "127.0.0.1", "--cores", "2", "--memory", "2g", "--webui-port", str(_free_port()),
                               "--work-dir", str(work / "work")], env=env,
                              stdout=open(work / "worker.log", "wb"), stderr=subprocess.STDOUT)
    try:
        deadline = time.time() + 120
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{ui}/json/", timeout=2) as r:
                    if json.loads(r.read()).get("aliveworkers", 0) >= 1:
                        break
            except OSError:
                pass
            if time.time() > deadline:
                pytest.fail("the Spark standalone cluster did not start: " + (work / "worker.log").read_text()[-2000:])
            time.sleep(0.5)
        yield url
    finally:
        for p in (worker, master):
            p.terminate()
        for p in (worker, master):
            try:
                p.wait(30)
            except subprocess.TimeoutExpired:
                p.kill()


CLUSTER_CONF = {"spark.driver.host": "127.0.0.1", "spark.driver.bindAddress": "127.0.0.1",
                "spark.pyspark.python": sys.executable, "spark.executor.memory": "1g"}


def test_spark_standalone_cluster(spark_cluster: str, tiny_artifact: Path, inputs: tuple[Path, Any],
                                  tmp_path: Path) -> None:
    src, want = inputs
    summary = run_engine("spark", tiny_artifact, src, str(tmp_path / "out"), master=spark_cluster,
                         conf=CLUSTER_CONF, part_rows=7)
    assert output_rows(str(tmp_path / "out")) == want and summary["rows"] == len(want)


def kill_mid_job(engine: str, artifact: Path, tmp_path: Path, victims: Any, **kwargs: Any) -> int:
    """Run a 2,000-row job of 200 parts, kill ``victims()`` (processes) once 5 parts are
    written, and check that every row arrives once; returns the parts written at the kill."""
    src = tmp_path / "in.txt"
    src.write_text("\n".join((GOOD * 60)[:2000]) + "\n", encoding="utf-8")
    result: dict[str, Any] = {}

    def job() -> None:
        try:
            result["summary"] = run_engine(engine, artifact, src, str(tmp_path / "out"), part_rows=10, **kwargs)
        except BaseException as exc:  # noqa: BLE001 - reported below
            result["error"] = exc

    thread = threading.Thread(target=job)
    thread.start()
    partial = tmp_path / ".out.partial"
    deadline = time.time() + 180
    while time.time() < deadline and len(list(partial.glob("part-*.parquet"))) < 5:
        time.sleep(0.05)
    processes = victims()
    assert processes, "nothing to kill"
    for p in processes:
        p.kill()
    killed_at = len(list(partial.glob("part-*.parquet")))
    thread.join(300)
    assert "error" not in result, result.get("error")
    assert killed_at < 200, "the job ended before the kill"
    rows = output_rows(str(tmp_path / "out"))
    assert sorted(rows, key=int) == [str(n) for n in range(2000)]
    assert result["summary"]["rows_run"] == 2000
    return killed_at


def test_spark_submit_on_the_standalone_cluster(spark_cluster: str, tiny_artifact: Path, inputs: tuple[Path, Any],
                                                tmp_path: Path) -> None:
    """The job as users submit it: spark-submit sets the master, run_spark takes it."""
    import pyspark

    src, want = inputs
    job = tmp_path / "job.py"
    job.write_text("import json, sys\nfrom albert_onnx.batch.engines import run_spark\n"
                   "print(json.dumps(run_spark(sys.argv[1], sys.argv[2], sys.argv[3], part_rows=7)))\n")
    submit = Path(pyspark.__file__).parent / "bin" / "spark-submit"
    conf = [x for k, v in CLUSTER_CONF.items() for x in ("--conf", f"{k}={v}")]
    proc = subprocess.run([str(submit), "--master", spark_cluster, *conf, str(job), str(tiny_artifact), str(src),
                           str(tmp_path / "out")], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "PYSPARK_PYTHON": sys.executable})
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert json.loads(proc.stdout.strip().splitlines()[-1])["rows"] == len(want)
    assert output_rows(str(tmp_path / "out")) == want


def test_spark_executor_killed_mid_job(spark_cluster: str, tiny_artifact: Path, tmp_path: Path) -> None:
    psutil = pytest.importorskip("psutil", reason="psutil is not installed: pip install -e '.[test]'")

    def executors() -> list[Any]:
        return [p for p in psutil.process_iter(["cmdline"])
                if any("CoarseGrainedExecutorBackend" in c for c in (p.info["cmdline"] or []))]

    kill_mid_job("spark", tiny_artifact, tmp_path, executors, master=spark_cluster, conf=CLUSTER_CONF)


def test_spark_workers_without_albert_onnx(spark_cluster: str, tiny_artifact: Path, tmp_path: Path) -> None:
    """Executors whose Python lacks the package: one clear error naming what to install."""
    bare = shutil.which("python3", path="/usr/bin:/bin")
    if bare is None or subprocess.run([bare, "-c", "import albert_onnx"], capture_output=True).returncode == 0:
        pytest.skip("no Python without albert_onnx on this machine")
    version = subprocess.run([bare, "-c", "import sys; print(sys.version_info[:2])"], capture_output=True,
                             text=True).stdout.strip()
    if version != str(sys.version_info[:2]):
        pytest.skip(f"{bare} is Python {version}; Spark needs the driver's minor version")
    (tmp_path / "in.txt").write_text(GOOD[0] + "\n", encoding="utf-8")
    with pytest.raises(InputError, match=r"cannot import albert_onnx.*pip install 'albert-onnx\[batch\]'"):
        run_engine("spark", tiny_artifact, tmp_path / "in.txt", str(tmp_path / "out"), master=spark_cluster,
                   conf={**CLUSTER_CONF, "spark.pyspark.python": bare, "spark.task.maxFailures": "1"})
    assert not (tmp_path / "out").exists()


# --- Ray: an actor killed mid-job ------------------------------------------------------------------

@pytest.fixture()
def ray_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A Ray head started with ``ray start`` on 127.0.0.1 (3 CPUs) for one test (one Ray node on
    this machine at a time); yields its address, which the job joins as ``--address`` does."""
    pytest.importorskip("ray", reason="ray is not installed: pip install -e '.[ray]'")
    ray_bin = Path(sys.executable).parent / "ray"
    port = _free_port()
    # loopback only, and no token: the driver's Ray connects without one (a test-only cluster)
    env = {**os.environ, "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "RAY_AUTH_MODE": "disabled"}
    temp = tmp_path_factory.mktemp("ray-head")
    start = subprocess.run([str(ray_bin), "start", "--head", "--node-ip-address", "127.0.0.1", "--port", str(port),
                            "--num-cpus", "3", "--include-dashboard", "false", "--disable-usage-stats",
                            "--temp-dir", str(temp)], env=env, capture_output=True, text=True, timeout=180)
    if start.returncode != 0:
        pytest.fail("ray start failed: " + start.stderr[-2000:])
    try:
        yield f"127.0.0.1:{port}"
    finally:
        subprocess.run([str(ray_bin), "stop", "--force"], env=env, capture_output=True, timeout=120)


def test_ray_on_a_started_cluster(ray_cluster: str, tiny_artifact: Path, inputs: tuple[Path, Any],
                                  tmp_path: Path) -> None:
    """The CLI joins the running cluster (its own process: one Ray session a process, as a
    driver on a cluster is)."""
    src, want = inputs
    proc = subprocess.run([sys.executable, "-m", "albert_onnx.cli", "batch", str(tiny_artifact), str(src), "-o",
                           str(tmp_path / "out"), "--engine", "ray", "--address", ray_cluster, "--part-rows", "7"],
                          capture_output=True, text=True, timeout=300,
                          env={**os.environ, "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "RAY_AUTH_MODE": "disabled"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert json.loads(proc.stdout.strip().splitlines()[-1])["rows"] == len(want)
    assert output_rows(str(tmp_path / "out")) == want


def test_ray_actor_killed_mid_job(tiny_artifact: Path, tmp_path: Path) -> None:
    pytest.importorskip("ray", reason="ray is not installed: pip install -e '.[ray]'")
    psutil = pytest.importorskip("psutil", reason="psutil is not installed: pip install -e '.[test]'")

    def one_actor() -> list[Any]:
        actors = [p for p in psutil.process_iter(["cmdline"]) if "SegmentRunner" in " ".join(p.info["cmdline"] or [])]
        return actors[:1]

    kill_mid_job("ray", tiny_artifact, tmp_path, one_actor, workers=2)


def test_ray_workers_without_albert_onnx(tiny_artifact: Path, tmp_path: Path) -> None:
    """Ray workers that cannot import the package (their PYTHONPATH, through the job's
    runtime_env, puts first an albert_onnx that is not there): one clear error, nothing written."""
    pytest.importorskip("ray", reason="ray is not installed: pip install -e '.[ray]'")
    shadow = tmp_path / "shadow" / "albert_onnx"
    shadow.mkdir(parents=True)
    (shadow / "__init__.py").write_text("raise ModuleNotFoundError(\"No module named 'albert_onnx'\")\n")
    (tmp_path / "in.txt").write_text(GOOD[0] + "\n", encoding="utf-8")
    with pytest.raises(InputError, match=r"cannot import albert_onnx.*pip install 'albert-onnx\[batch\]'"):
        run_engine("ray", tiny_artifact, tmp_path / "in.txt", str(tmp_path / "out"), workers=1,
                   runtime_env={"env_vars": {"PYTHONPATH": str(shadow.parent)}})
    assert not (tmp_path / "out").exists() and not (tmp_path / ".out.partial").exists()


# --- the driver's memory ----------------------------------------------------------------------------

@pytest.mark.parametrize("engine", ENGINES)
def test_driver_memory_does_not_grow_with_the_input(engine: str, tiny_artifact: Path, tmp_path: Path) -> None:
    """300,000 rows with 250-character ids (most without text) against 600: the driver's peak RSS
    (its own process, VmHWM) grows by at most 30 MB."""
    pytest.importorskip(engine if engine == "ray" else "pyspark")
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
    from bench_cluster import driver_memory

    result = driver_memory(engine, tiny_artifact, tmp_path, GOOD[0])
    assert result["delta_mb"] <= 30, result
