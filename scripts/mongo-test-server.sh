#!/usr/bin/env bash
# MongoDB wire-protocol test server for local runs and CI (no MongoDB binary is needed).
#
# Usage:
#   URI=$(bash scripts/mongo-test-server.sh start)   # install if needed, start, print URI (last stdout line)
#   bash scripts/mongo-test-server.sh stop            # stop the server and delete its run directory
#   bash scripts/mongo-test-server.sh install         # only install the server (idempotent)
#   bash scripts/mongo-test-server.sh status          # print the URI and exit 0 if running, else exit 1
#   bash scripts/mongo-test-server.sh selftest [URI]  # exercise the node driver against a server
#                                                     # (starts and stops its own one when no URI is given)
#
# Servers (MONGO_TEST_SERVER):
#   ferretdb (default)  FerretDB v1.24.2, SQLite backend, built from source with Go (~2 min once).
#   java                mongo-java-server 1.47.0, in-memory backend, from Maven Central (~15 s once);
#                       needs java (17+) and mvn.
#
# Environment (all optional):
#   MONGO_TEST_SERVER      ferretdb | java (default ferretdb); `stop`/`status` find it from the run dir
#   MONGO_TEST_PORT        port to listen on (default: a free port picked at start)
#   MONGO_TEST_DIR         run directory: server.pid, port, uri, server.log, data/, state/
#                          (default: ${TMPDIR:-/tmp}/mongo-test-server-$UID; wiped at start and at stop)
#   MONGO_TEST_KEEP=1      keep MONGO_TEST_DIR on stop (e.g. to read server.log)
#   MONGO_TEST_TIMEOUT     seconds to wait for the server to answer (default 60)
#   MONGO_TEST_LOG_LEVEL   FerretDB log level: DEBUG, INFO, WARN, ERROR (default INFO)
#   MONGO_TEST_JAVA_OPTS   extra JVM options for the java server (e.g. -Xmx2g)
#   FERRETDB_BIN_DIR       FerretDB install dir (default: $HOME/.cache/ferretdb-1.24.2)
#   MONGO_JAVA_SERVER_DIR  mongo-java-server install dir (default: $HOME/.cache/mongo-java-server-1.47.0)
#
# Notes:
#   * `go install github.com/FerretDB/FerretDB/cmd/ferretdb@v1.24.2` cannot be used here: it asks the
#     module proxy for the version list (/@v/list), which is refused (403). Downloading the exact version
#     works, so the module is fetched with `go mod download`, copied out of the module cache, given
#     the build/version/version.txt file FerretDB panics without, and built with its own go.mod/go.sum.
#   * FerretDB v1's SQLite handler does NOT make update/findAndModify atomic across connections
#     (it reads, applies the update in Go, then writes; FerretDB issue #3040): concurrent $inc loses
#     updates and concurrent findOneAndUpdate can hand one document to several callers. And a $group
#     stage computes only its FIRST accumulator; the others come back as 0 without an error.
#   * mongo-java-server reports wire version 8 (MongoDB 4.2) at most, below the mongodb@7 driver's
#     minimum (9); the launcher below announces MongoDB 4.4.0 / wire version 9 instead.
set -euo pipefail

readonly FERRETDB_VERSION=v1.24.2
readonly FERRETDB_MODULE=github.com/FerretDB/FerretDB
readonly MJS_VERSION=1.47.0
readonly MJS_LAUNCHER=MongoTestServerLauncher

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_ROOT=$(cd "$SCRIPT_DIR/.." && pwd)
BIN_DIR=${FERRETDB_BIN_DIR:-${HOME:-/root}/.cache/ferretdb-${FERRETDB_VERSION#v}}
BIN=$BIN_DIR/ferretdb
MJS_DIR=${MONGO_JAVA_SERVER_DIR:-${HOME:-/root}/.cache/mongo-java-server-$MJS_VERSION}
RUN_DIR=${MONGO_TEST_DIR:-${TMPDIR:-/tmp}/mongo-test-server-$(id -u)}
PID_FILE=$RUN_DIR/server.pid
LOG_FILE=$RUN_DIR/server.log
URI_FILE=$RUN_DIR/uri
TIMEOUT=${MONGO_TEST_TIMEOUT:-60}
SERVER=${MONGO_TEST_SERVER:-ferretdb}
case $SERVER in ferretdb | java) ;; *) echo "MONGO_TEST_SERVER must be ferretdb or java" >&2; exit 2 ;; esac

log() { printf '[mongo-test-server] %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# ---------------------------------------------------------------- install: FerretDB

ferretdb_installed() {
	local out
	# (no `| grep -q` here: with pipefail, an early grep exit can fail the pipeline via SIGPIPE)
	[[ -x $BIN ]] && out=$("$BIN" --version 2>/dev/null) && [[ $out == *"version: $FERRETDB_VERSION"* ]]
}

ferretdb_install() {
	if ferretdb_installed; then
		log "FerretDB $FERRETDB_VERSION already installed at $BIN"
		return 0
	fi
	command -v go >/dev/null || die "go is required to build FerretDB"
	mkdir -p "$BIN_DIR"
	# Subshell: the lock fd, the Go environment and the build dir do not leak into the server.
	(
		# Serialise concurrent installs (the final mv is atomic anyway).
		if command -v flock >/dev/null; then
			flock 9
			if ferretdb_installed; then
				log "FerretDB $FERRETDB_VERSION installed by a concurrent run"
				exit 0
			fi
		fi
		start=$SECONDS
		work=$(mktemp -d "${TMPDIR:-/tmp}/ferretdb-build.XXXXXX")
		# shellcheck disable=SC2064
		trap "rm -rf '$work'" EXIT

		log "building FerretDB $FERRETDB_VERSION (one-off, about 2 minutes) ..."
		export GOWORK=off GO111MODULE=on GOFLAGS=-buildvcs=false CGO_ENABLED=0
		# Only the exact version is fetched: the proxy's /@v/list is not reachable here.
		json=$(go mod download -json "$FERRETDB_MODULE@$FERRETDB_VERSION") ||
			die "go mod download $FERRETDB_MODULE@$FERRETDB_VERSION failed: $json"
		mod_dir=$(sed -n 's/^[[:space:]]*"Dir": "\(.*\)",\{0,1\}$/\1/p' <<<"$json")
		[[ -n $mod_dir && -f $mod_dir/go.mod ]] || die "no module directory in: $json"

		cp -R "$mod_dir" "$work/src"
		chmod -R u+w "$work/src"
		# FerretDB panics at start-up without this file when built as the main module.
		echo "$FERRETDB_VERSION" >"$work/src/build/version/version.txt"
		echo "source" >"$work/src/build/version/package.txt"

		tmp_bin=$BIN_DIR/.ferretdb.tmp.$BASHPID
		(cd "$work/src" && go build -trimpath -o "$tmp_bin" ./cmd/ferretdb) >&2 ||
			die "go build of FerretDB failed"
		mv -f "$tmp_bin" "$BIN" # same directory: atomic
		ferretdb_installed || die "built binary does not report version $FERRETDB_VERSION"
		log "installed $BIN in $((SECONDS - start))s"
	) 9>"$BIN_DIR/.install.lock"
}

# ---------------------------------------------------------------- install: mongo-java-server

mjs_classpath() { cat "$MJS_DIR/classpath.txt"; }

mjs_installed() {
	[[ -f $MJS_DIR/classes/$MJS_LAUNCHER.class && -s $MJS_DIR/classpath.txt ]] || return 1
	local jar
	while IFS= read -r jar; do [[ -f $jar ]] || return 1; done < <(tr ':' '\n' <"$MJS_DIR/classpath.txt")
}

mjs_install() {
	if mjs_installed; then
		log "mongo-java-server $MJS_VERSION already installed in $MJS_DIR"
		return 0
	fi
	command -v mvn >/dev/null || die "mvn is required for MONGO_TEST_SERVER=java"
	command -v javac >/dev/null || die "a JDK (javac) is required for MONGO_TEST_SERVER=java"
	mkdir -p "$MJS_DIR"
	(
		if command -v flock >/dev/null; then
			flock 9
			if mjs_installed; then exit 0; fi
		fi
		start=$SECONDS
		log "installing mongo-java-server $MJS_VERSION from Maven Central ..."
		cat >"$MJS_DIR/pom.xml" <<POM
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>local.test</groupId>
  <artifactId>mongo-test-server</artifactId>
  <version>1</version>
  <dependencies>
    <dependency><groupId>de.bwaldvogel</groupId><artifactId>mongo-java-server</artifactId><version>$MJS_VERSION</version></dependency>
    <dependency><groupId>org.slf4j</groupId><artifactId>slf4j-simple</artifactId><version>2.0.16</version></dependency>
  </dependencies>
</project>
POM
		cat >"$MJS_DIR/$MJS_LAUNCHER.java" <<'JAVA'
import de.bwaldvogel.mongo.MongoServer;
import de.bwaldvogel.mongo.MongoVersion;
import de.bwaldvogel.mongo.backend.memory.MemoryBackend;
import java.util.List;

/** Args: port. Binds 127.0.0.1 only; in-memory data; announces MongoDB 4.4.0 (wire version 9). */
public final class MongoTestServerLauncher {
    public static void main(String[] args) throws Exception {
        String host = "127.0.0.1";
        int port = Integer.parseInt(args[0]);
        MemoryBackend backend = new MemoryBackend();
        // mongo-java-server's own versions stop at wire version 8, which mongodb@7 refuses.
        backend.version(new MongoVersion() {
            @Override public List<Integer> getVersionArray() { return List.of(4, 4, 0); }
            @Override public int getWireVersion() { return 9; }
        });
        MongoServer server = new MongoServer(backend);
        server.bind(host, port);
        Runtime.getRuntime().addShutdownHook(new Thread(server::shutdownNow));
        System.out.println("mongo-java-server listening on " + host + ":" + port);
        System.out.flush();
        Thread.currentThread().join();
    }
}
JAVA
		tmp_cp=$MJS_DIR/.classpath.tmp.$BASHPID
		(cd "$MJS_DIR" && mvn -B -q -Dstyle.color=never org.apache.maven.plugins:maven-dependency-plugin:3.8.1:build-classpath \
			-Dmdep.outputFile="$tmp_cp") >&2 || die "mvn could not resolve mongo-java-server $MJS_VERSION"
		rm -rf "$MJS_DIR/classes"
		javac -nowarn -d "$MJS_DIR/classes" -cp "$(cat "$tmp_cp")" "$MJS_DIR/$MJS_LAUNCHER.java" >&2 ||
			die "javac of the launcher failed"
		mv -f "$tmp_cp" "$MJS_DIR/classpath.txt"
		log "installed mongo-java-server $MJS_VERSION in $MJS_DIR in $((SECONDS - start))s"
	) 9>"$MJS_DIR/.install.lock"
}

do_install() {
	case $SERVER in
	ferretdb) ferretdb_install ;;
	java) mjs_install ;;
	esac
}

# ---------------------------------------------------------------- helpers

free_port() {
	node -e '
const s = require("net").createServer();
s.listen(0, "127.0.0.1", () => { const p = s.address().port; s.close(() => console.log(p)); });'
}

pid_alive() {
	local pid cmdline
	[[ -f $PID_FILE ]] || return 1
	pid=$(<"$PID_FILE")
	[[ $pid =~ ^[0-9]+$ ]] || return 1
	kill -0 "$pid" 2>/dev/null || return 1
	# guard against a recycled PID
	cmdline=$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null) || return 1
	[[ $cmdline == *ferretdb* || $cmdline == *"$MJS_LAUNCHER"* ]]
}

tcp_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# Wire-protocol ping: with the mongodb driver of this repo when it is installed, otherwise with
# a hand-made OP_MSG {ping: 1, $db: "admin"} (so it works before `npm ci`).
wire_ping() {
	# shellcheck disable=SC2016 # JavaScript, not shell
	MONGO_TEST_PING_PORT=$1 MONGO_TEST_REPO_ROOT=$REPO_ROOT node -e '
const port = Number(process.env.MONGO_TEST_PING_PORT);
const uri = `mongodb://127.0.0.1:${port}/`;
const fail = (e) => { console.error(String(e && e.message || e)); process.exit(1); };
setTimeout(() => fail("ping timeout"), 5000).unref();
let driverPath = null;
try { driverPath = require.resolve("mongodb", { paths: [process.env.MONGO_TEST_REPO_ROOT] }); } catch {}
if (driverPath) {
  const { MongoClient } = require(driverPath);
  const c = new MongoClient(uri, { serverSelectionTimeoutMS: 3000, directConnection: true });
  c.connect().then(() => c.db("admin").command({ ping: 1 }))
    .then((r) => { if (r.ok !== 1) throw new Error("ping not ok"); return c.close(); })
    .then(() => process.exit(0), fail);
} else {
  const cstr = (s) => Buffer.concat([Buffer.from(s), Buffer.from([0])]);
  const i32 = (n) => { const b = Buffer.alloc(4); b.writeInt32LE(n); return b; };
  const body = Buffer.concat([
    Buffer.from([0x10]), cstr("ping"), i32(1),
    Buffer.from([0x02]), cstr("$db"), i32(6), cstr("admin"), Buffer.from([0]),
  ]);
  const doc = Buffer.concat([i32(body.length + 4), body]);
  const payload = Buffer.concat([i32(0), Buffer.from([0]), doc]);
  const msg = Buffer.concat([i32(16 + payload.length), i32(1), i32(0), i32(2013), payload]);
  const sock = require("net").connect(port, "127.0.0.1", () => sock.write(msg));
  let buf = Buffer.alloc(0);
  sock.on("data", (d) => {
    buf = Buffer.concat([buf, d]);
    if (buf.length >= 4 && buf.length >= buf.readInt32LE(0)) {
      const okDouble = Buffer.concat([Buffer.from([0x01]), cstr("ok")]);
      const at = buf.indexOf(okDouble);
      if (buf.readInt32LE(12) === 2013 && at > 0 && buf.readDoubleLE(at + 4) === 1) process.exit(0);
      fail("unexpected ping reply");
    }
  });
  sock.on("error", fail);
}'
}

# ---------------------------------------------------------------- start / stop

server_name() {
	case $SERVER in
	ferretdb) echo "FerretDB $FERRETDB_VERSION (sqlite)" ;;
	java) echo "mongo-java-server $MJS_VERSION (memory)" ;;
	esac
}

# Starts the server in the background, in its own session, on 127.0.0.1:$1; sets $pid.
launch() {
	local port=$1
	case $SERVER in
	ferretdb)
		# Loopback only; telemetry off three ways (flag, DO_NOT_TRACK, loopback reporting URL);
		# no debug/metrics HTTP listener (--debug-addr=-); state.json kept in the run dir.
		DO_NOT_TRACK=1 setsid "$BIN" \
			--handler=sqlite \
			--sqlite-url="file:$RUN_DIR/data/" \
			--state-dir="$RUN_DIR/state" \
			--listen-addr="127.0.0.1:$port" \
			--debug-addr=- \
			--telemetry=disable \
			--test-telemetry-url=http://127.0.0.1:9/ \
			--log-level="${MONGO_TEST_LOG_LEVEL:-INFO}" \
			--log-format=text \
			</dev/null >>"$LOG_FILE" 2>&1 &
		;;
	java)
		# shellcheck disable=SC2086 # MONGO_TEST_JAVA_OPTS is a list of options
		setsid java -XX:+UseSerialGC -XX:TieredStopAtLevel=1 -Djava.io.tmpdir="$RUN_DIR/state" \
			${MONGO_TEST_JAVA_OPTS:-} -cp "$MJS_DIR/classes:$(mjs_classpath)" "$MJS_LAUNCHER" "$port" \
			</dev/null >>"$LOG_FILE" 2>&1 &
		;;
	esac
	pid=$!
}

do_start() {
	local wanted=$SERVER running=""
	if [[ -f $RUN_DIR/server ]]; then running=$(<"$RUN_DIR/server"); fi
	if pid_alive; then
		if [[ $running == "$wanted" && -f $URI_FILE ]] && wire_ping "$(<"$RUN_DIR/port")" 2>/dev/null; then
			log "$(server_name) already running (pid $(<"$PID_FILE"), dir $RUN_DIR)"
			cat "$URI_FILE"
			return 0
		fi
		do_stop
		SERVER=$wanted
	fi
	do_install
	command -v node >/dev/null || die "node is required"

	local attempt port pid t0=$SECONDS deadline
	for attempt in 1 2 3; do
		rm -rf "$RUN_DIR"
		mkdir -p "$RUN_DIR/data" "$RUN_DIR/state"
		port=${MONGO_TEST_PORT:-$(free_port)}
		if tcp_open "$port"; then
			[[ -z ${MONGO_TEST_PORT:-} ]] || die "port $port on 127.0.0.1 is already in use"
			continue
		fi
		echo "$port" >"$RUN_DIR/port"

		echo "$SERVER" >"$RUN_DIR/server"
		launch "$port"
		echo "$pid" >"$PID_FILE"

		deadline=$((SECONDS + TIMEOUT))
		while ((SECONDS < deadline)); do
			if ! kill -0 "$pid" 2>/dev/null; then
				break
			fi
			# our own process must be the one listening (not another server on a reused port)
			if grep -Eqsi "listening on (TCP )?127\.0\.0\.1:$port" "$LOG_FILE" && tcp_open "$port" &&
				wire_ping "$port" 2>/dev/null && kill -0 "$pid" 2>/dev/null; then
				local uri="mongodb://127.0.0.1:$port/"
				echo "$uri" >"$URI_FILE"
				log "$(server_name) up in $((SECONDS - t0))s: pid $pid, dir $RUN_DIR, log $LOG_FILE"
				log "stop with: bash $SCRIPT_DIR/$(basename "${BASH_SOURCE[0]}") stop   (or kill $pid)"
				echo "$uri"
				return 0
			fi
			sleep 0.2
		done

		if kill -0 "$pid" 2>/dev/null; then
			kill "$pid" 2>/dev/null || true
			tail -n 20 "$LOG_FILE" >&2 || true
			die "server did not answer on 127.0.0.1:$port within ${TIMEOUT}s (log: $LOG_FILE)"
		fi
		log "server exited during start-up (attempt $attempt); last log lines:"
		tail -n 5 "$LOG_FILE" >&2 || true
		# only retry when the port was picked by us (it may have been taken meanwhile)
		[[ -z ${MONGO_TEST_PORT:-} ]] || break
	done
	die "could not start $(server_name) (log: $LOG_FILE)"
}

do_stop() {
	if [[ -f $RUN_DIR/server ]]; then SERVER=$(<"$RUN_DIR/server"); fi
	if pid_alive; then
		local pid
		pid=$(<"$PID_FILE")
		kill "$pid" 2>/dev/null || true
		for _ in $(seq 1 50); do
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.1
		done
		if kill -0 "$pid" 2>/dev/null; then
			log "pid $pid did not stop on SIGTERM; sending SIGKILL"
			kill -9 "$pid" 2>/dev/null || true
		fi
		log "stopped pid $pid"
	else
		log "not running"
	fi
	if [[ ${MONGO_TEST_KEEP:-0} == 1 ]]; then
		rm -f "$PID_FILE" "$URI_FILE"
		log "kept $RUN_DIR"
	else
		rm -rf "$RUN_DIR"
	fi
}

do_status() {
	if [[ -f $RUN_DIR/server ]]; then SERVER=$(<"$RUN_DIR/server"); fi
	if pid_alive && [[ -f $URI_FILE ]]; then
		log "running $(server_name): pid $(<"$PID_FILE"), dir $RUN_DIR"
		cat "$URI_FILE"
	else
		log "not running"
		return 1
	fi
}

# ---------------------------------------------------------------- selftest

# Exercises the driver operations the service's store uses, and reports each one.
# Exit status is non-zero when one of the REQUIRED operations fails; INFO lines are
# known-limitation probes and never fail the run.
run_selftest() {
	# shellcheck disable=SC2016 # JavaScript, not shell
	MONGO_TEST_URI=$1 MONGO_TEST_REPO_ROOT=$REPO_ROOT node -e '
const m = require(require.resolve("mongodb", { paths: [process.env.MONGO_TEST_REPO_ROOT] }));
const results = [];
async function t(name, required, fn) {
  try {
    const r = await fn();
    results.push([required, true]);
    console.log(`${required ? "PASS" : "INFO ok  "} ${name}${r === undefined ? "" : " -> " + JSON.stringify(r)}`);
  } catch (e) {
    results.push([required, false]);
    console.log(`${required ? "FAIL" : "INFO err "} ${name} :: ${e.code ?? ""} ${e.codeName ?? ""} ${String(e.message).slice(0, 200)}`);
  }
}
(async () => {
  const client = new m.MongoClient(process.env.MONGO_TEST_URI, { serverSelectionTimeoutMS: 5000 });
  await client.connect();
  const db = client.db(`selftest_${process.pid}_${Date.now()}`);
  const col = db.collection("jobs");
  await t("insertMany", true, async () => (await col.insertMany([
    { _id: "a", owner: "u1", status: "pending", size: 10, n: 0 },
    { _id: "b", owner: "u1", status: "done", size: 20, n: 0 },
    { _id: "c", owner: "u2", status: "pending", size: 30, n: 0 },
    { _id: "d", owner: "u2", status: "pending", size: 40, n: 0 },
  ])).insertedCount);
  await t("updateOne $inc + $set", true, async () => {
    const r = await col.updateOne({ _id: "a" }, { $inc: { n: 1 }, $set: { status: "processing", at: new Date() } });
    const d = await col.findOne({ _id: "a" });
    if (d.n !== 1 || d.status !== "processing") throw new Error("wrong result " + JSON.stringify(d));
    return [r.matchedCount, r.modifiedCount];
  });
  await t("updateOne $inc nested field", true, async () => {
    await col.updateOne({ _id: "a" }, { $inc: { "stats.hits": 2 } });
    return (await col.findOne({ _id: "a" })).stats;
  });
  await t("updateOne upsert", true, async () => (await col.updateOne({ _id: "u" }, { $set: { status: "new" }, $setOnInsert: { n: 0 } }, { upsert: true })).upsertedId);
  await t("findOneAndUpdate filter, returnDocument after", true, async () => {
    const r = await col.findOneAndUpdate({ status: "pending", owner: "u2" }, { $set: { status: "claimed" }, $inc: { n: 1 } }, { returnDocument: "after" });
    if (!r || r.status !== "claimed" || r.n !== 1) throw new Error("wrong result " + JSON.stringify(r));
    return r._id;
  });
  await t("findOneAndUpdate with sort", true, async () => {
    const r = await col.findOneAndUpdate({ status: "pending" }, { $set: { status: "claimed" } }, { sort: { size: -1 }, returnDocument: "after" });
    if (!r || r._id !== "d") throw new Error("expected d, got " + JSON.stringify(r));
    return r._id;
  });
  await t("createIndex single", true, () => col.createIndex({ owner: 1 }));
  await t("createIndex compound", true, () => col.createIndex({ owner: 1, status: 1, size: -1 }));
  await t("createIndex unique", true, () => db.collection("users").createIndex({ email: 1 }, { unique: true }));
  await t("unique index rejects duplicate insert (E11000)", true, async () => {
    const u = db.collection("users");
    await u.insertOne({ email: "a@x" });
    try { await u.insertOne({ email: "a@x" }); } catch (e) { if (e.code === 11000) return e.code; throw e; }
    throw new Error("duplicate accepted");
  });
  await t("bulkWrite ordered:false", true, async () => {
    const r = await col.bulkWrite([
      { insertOne: { document: { _id: "e", owner: "u3", status: "pending", size: 50, n: 0 } } },
      { updateOne: { filter: { _id: "b" }, update: { $inc: { n: 2 } } } },
      { updateMany: { filter: { owner: "u1" }, update: { $set: { flag: true } } } },
      { updateOne: { filter: { _id: "x1" }, update: { $set: { status: "x" } }, upsert: true } },
      { deleteOne: { filter: { _id: "x1" } } },
    ], { ordered: false });
    return { inserted: r.insertedCount, matched: r.matchedCount, modified: r.modifiedCount, upserted: r.upsertedCount, deleted: r.deletedCount };
  });
  await t("bulkWrite ordered:false with a duplicate _id (11000, rest applied)", true, async () => {
    try { await col.bulkWrite([{ insertOne: { document: { _id: "a" } } }, { insertOne: { document: { _id: "f", size: 60 } } }], { ordered: false }); }
    catch (e) { if (e.code === 11000 && (await col.findOne({ _id: "f" }))) return [e.code, e.result.insertedCount]; throw e; }
    throw new Error("duplicate accepted");
  });
  await t("find sort/skip/limit", true, async () => {
    const ids = (await col.find({ size: { $gte: 10 } }).sort({ size: -1 }).skip(1).limit(3).toArray()).map((d) => d._id);
    if (ids.join() !== "e,d,c") throw new Error("got " + ids);
    return ids;
  });
  await t("countDocuments", true, async () => col.countDocuments({ owner: "u1" }));
  await t("aggregate $match/$group (one $sum accumulator)", true, async () => {
    const r = await col.aggregate([
      { $match: { owner: { $in: ["u1", "u2"] } } },
      { $group: { _id: "$owner", total: { $sum: "$size" } } },
      { $sort: { _id: 1 } },
    ]).toArray();
    if (JSON.stringify(r) !== JSON.stringify([{ _id: "u1", total: 30 }, { _id: "u2", total: 70 }])) throw new Error("got " + JSON.stringify(r));
    return r;
  });
  await t("deleteMany", true, async () => (await col.deleteMany({ owner: "u2" })).deletedCount);

  // Known limitations of the test servers (INFO only; see the notes at the top of this script).
  await t("aggregate $group with TWO accumulators (FerretDB: 2nd one silently 0)", false, async () => {
    const r = await col.aggregate([{ $match: { owner: "u1" } }, { $group: { _id: "$owner", total: { $sum: "$size" }, count: { $sum: 1 } } }]).toArray();
    return r[0].count === 2 ? "correct" : "WRONG RESULT " + JSON.stringify(r);
  });
  await t("aggregate $group $avg/$min/$max/$push", false, () => col.aggregate([{ $group: { _id: null, a: { $avg: "$size" } } }]).toArray());
  await t("aggregate $lookup", false, () => col.aggregate([{ $lookup: { from: "users", localField: "owner", foreignField: "o", as: "u" } }]).toArray());
  await t("findOneAndUpdate with projection", false, () => col.findOneAndUpdate({ _id: "a" }, { $inc: { n: 1 } }, { projection: { n: 1 } }));
  await t("createIndex TTL (expireAfterSeconds)", false, () => db.collection("ttl").createIndex({ at: 1 }, { expireAfterSeconds: 60 }));
  await t("createIndex unique + partialFilterExpression, then 2 docs without the key", false, async () => {
    const p = db.collection("partial");
    await p.createIndex({ k: 1 }, { unique: true, partialFilterExpression: { k: { $exists: true } } });
    try { await p.insertMany([{ a: 1 }, { a: 2 }]); return "accepted (correct)"; } catch (e) { return `rejected ${e.code} (filter ignored)`; }
  });
  await t("unique index: update into a duplicate -> code", false, async () => {
    const u = db.collection("users");
    await u.insertOne({ _id: "q", email: "q@x" });
    try { await u.updateOne({ _id: "q" }, { $set: { email: "a@x" } }); return "accepted"; } catch (e) { return `${e.code} ${e.codeName}`; }
  });
  await t("transaction (withTransaction)", false, async () => {
    const s = client.startSession();
    try { await s.withTransaction(() => col.insertOne({ _id: "tx" }, { session: s })); } finally { await s.endSession(); }
  });
  await t("unique index: a 2nd document missing the field (MongoDB rejects)", false, async () => {
    const u = db.collection("users");
    await u.insertOne({ other: 1 });
    try { await u.insertOne({ other: 2 }); return "accepted"; } catch (e) { return `rejected ${e.code}`; }
  });
  await t("concurrent $inc x50 from a pooled client (atomicity)", false, async () => {
    await col.insertOne({ _id: "cnt", n: 0 });
    await Promise.all(Array.from({ length: 50 }, () => col.updateOne({ _id: "cnt" }, { $inc: { n: 1 } })));
    return `${(await col.findOne({ _id: "cnt" })).n}/50`;
  });
  await t("concurrent findOneAndUpdate claims x20 over 10 docs (atomicity)", false, async () => {
    const q = db.collection("queue");
    await q.insertMany(Array.from({ length: 10 }, (_, i) => ({ i, st: "pending" })));
    const got = await Promise.all(Array.from({ length: 20 }, () => q.findOneAndUpdate({ st: "pending" }, { $set: { st: "taken" } }, { returnDocument: "after" })));
    const ids = got.filter(Boolean).map((d) => d.i);
    return `${ids.length} claims, ${new Set(ids).size} distinct docs (correct: 10, 10)`;
  });
  await db.dropDatabase();
  await client.close();
  const failed = results.filter(([req, ok]) => req && !ok).length;
  const passed = results.filter(([req, ok]) => req && ok).length;
  console.log(`${passed} passed, ${failed} failed`);
  process.exit(failed ? 1 : 0);
})().catch((e) => { console.error("selftest crashed:", e); process.exit(2); });'
}

do_selftest() {
	local uri=${1:-} own=0 rc=0
	if [[ -z $uri ]]; then
		uri=$(do_start | tail -n 1)
		own=1
	fi
	run_selftest "$uri" || rc=$?
	if ((own)); then do_stop; fi
	return "$rc"
}

# ---------------------------------------------------------------- main

case ${1:-} in
install) do_install ;;
start) do_start ;;
stop) do_stop ;;
status) do_status ;;
selftest) do_selftest "${2:-}" ;;
*)
	sed -n '2,/^set -euo pipefail/{/^#/p}' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
	exit 2
	;;
esac
