"""A single-node Apache Kafka (KRaft) on 127.0.0.1 from Maven Central jars, without Docker.

``kafka/pom.xml`` pins the version; ``mvn dependency:copy-dependencies`` fetches the jars
into ``.cache/kafka/libs`` (ignored by git). The broker is started with ``java``, its pid
written next to its data, and stopped by that pid.
"""

from __future__ import annotations

import base64
import shutil
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from streams.package_data import kafka_pom_path
from streams.procutil import alive, port_open, stop

REPO = Path(__file__).resolve().parents[2]
if not (REPO / "pyproject.toml").is_file():  # installed as a wheel: keep the jars under the cwd
    REPO = Path.cwd()
POM = kafka_pom_path()
LIBS = REPO / ".cache" / "kafka" / "libs"

LOG4J = """\
log4j.rootLogger=WARN, file
log4j.appender.file=org.apache.log4j.FileAppender
log4j.appender.file.File={log}
log4j.appender.file.layout=org.apache.log4j.PatternLayout
log4j.appender.file.layout.ConversionPattern=[%d] %p %m (%c)%n
log4j.logger.kafka.server.KafkaRaftServer=INFO
"""


@dataclass(frozen=True)
class LocalKafka:
    home: Path
    port: int = 9092
    controller_port: int = 9093
    heap: str = "768m"

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def pid_file(self) -> Path:
        return self.home / "kafka.pid"

    @property
    def log_file(self) -> Path:
        return self.home / "kafka.log"

    def properties(self) -> str:
        return "\n".join(
            [
                "process.roles=broker,controller",
                "node.id=1",
                f"controller.quorum.voters=1@127.0.0.1:{self.controller_port}",
                f"listeners=PLAINTEXT://127.0.0.1:{self.port},"
                f"CONTROLLER://127.0.0.1:{self.controller_port}",
                f"advertised.listeners=PLAINTEXT://127.0.0.1:{self.port}",
                "controller.listener.names=CONTROLLER",
                "listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
                f"log.dirs={self.home / 'data'}",
                "offsets.topic.replication.factor=1",
                "offsets.topic.num.partitions=10",
                "transaction.state.log.replication.factor=1",
                "transaction.state.log.min.isr=1",
                # a single local node: no reason to delay the first group join
                "group.initial.rebalance.delay.ms=0",
                "auto.create.topics.enable=false",
                "num.partitions=1",
                "log.retention.hours=168",
                "",
            ]
        )


def fetch_jars(quiet: bool = True) -> Path:
    """Download the broker's jars once; a no-op when they are already cached."""
    if LIBS.is_dir() and any(LIBS.glob("kafka_2.13-*.jar")):
        return LIBS
    mvn = shutil.which("mvn")
    if mvn is None:
        raise SystemExit("Maven (mvn) is needed to fetch Apache Kafka's jars; install it first")
    cmd = [mvn, "-B", "-f", str(POM), "dependency:copy-dependencies"]
    if quiet:
        cmd.insert(1, "-q")
    subprocess.run(cmd, check=True)
    return LIBS


def _cluster_id() -> str:
    # Kafka cluster ids are 16 random bytes, base64url without padding; one starting with
    # "-" (1 in 64) would be read by kafka-storage as an option, so draw again
    while True:
        cid = base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode()
        if not cid.startswith("-"):
            return cid


def _java() -> str:
    java = shutil.which("java")
    if java is None:
        raise SystemExit("Java 17+ is needed to run the local Kafka broker")
    return java


def _classpath() -> str:
    return f"{fetch_jars()}/*"


def read_pid(k: LocalKafka) -> int | None:
    try:
        pid = int(k.pid_file.read_text().strip())
    except (FileNotFoundError, ValueError):
        return None
    return pid if alive(pid) else None


def up(k: LocalKafka, timeout: float = 90.0) -> int:
    """Start the broker unless it already runs; wait until it answers. Returns its pid."""
    pid = read_pid(k)
    if pid is not None:
        return pid
    if port_open(k.port):
        raise SystemExit(f"port {k.port} is taken by another process; choose another port")
    k.home.mkdir(parents=True, exist_ok=True)
    props = k.home / "server.properties"
    props.write_text(k.properties())
    (k.home / "log4j.properties").write_text(LOG4J.format(log=k.home / "server.log"))
    cp = _classpath()
    if not (k.home / "data" / "meta.properties").exists():
        subprocess.run(
            [_java(), f"-Dlog4j.configuration=file:{k.home / 'log4j.properties'}",
             "-cp", cp, "kafka.tools.StorageTool", "format",
             "-t", _cluster_id(), "-c", str(props)],
            check=True, stdout=subprocess.DEVNULL,
        )  # fmt: skip
    log = k.log_file.open("ab")
    proc = subprocess.Popen(
        [_java(), f"-Xmx{k.heap}", f"-Xms{k.heap}", "-XX:+UseG1GC",
         f"-Dlog4j.configuration=file:{k.home / 'log4j.properties'}",
         "-cp", cp, "kafka.Kafka", str(props)],
        stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        start_new_session=True,  # survives the shell that started it; stopped by pid
    )  # fmt: skip
    k.pid_file.write_text(str(proc.pid))
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"Kafka exited with {proc.returncode}; see {k.log_file}")
        if port_open(k.port) and _ready(k.bootstrap):
            return proc.pid
        time.sleep(0.5)
    down(k)
    raise SystemExit(f"Kafka did not answer on {k.bootstrap} within {timeout:.0f}s")


def _ready(bootstrap: str) -> bool:
    """The broker answers a metadata request (the port alone opens before it serves)."""
    import asyncio

    from aiokafka.admin import AIOKafkaAdminClient

    async def probe() -> bool:
        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=3000)
        try:
            await admin.start()
            await admin.list_topics()
            return True
        except Exception:
            return False
        finally:
            await admin.close()

    return asyncio.run(probe())


def down(k: LocalKafka, timeout: float = 30.0) -> bool:
    """Stop the broker by its pid: SIGTERM, then SIGKILL. True when one was running."""
    pid = read_pid(k)
    if pid is None:
        k.pid_file.unlink(missing_ok=True)
        return False
    stop(pid, timeout)
    k.pid_file.unlink(missing_ok=True)
    return True


if __name__ == "__main__":  # pragma: no cover - debugging aid
    kk = LocalKafka(Path(sys.argv[1]) if len(sys.argv) > 1 else Path(".run/kafka"))
    print(up(kk))
