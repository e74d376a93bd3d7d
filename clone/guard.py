# offshoot clone guard: a Job in the sync wave before the CNPG Cluster of an
# environment; Argo CD applies the Cluster only once it has completed, and
# it completes only when CNPG can bootstrap that Cluster. Exit 0: go on.
# Exit 3: refused for good (the Job fails at once: podFailurePolicy).
# Anything else is retried. Once the Cluster exists the guard Job is made
# a dependent of it (ownerReferences), so that deleting the Cluster deletes
# the guard too and Argo CD's self-heal re-creates and re-runs both, guard
# first (GUARD_MODE=adopt: a Job in the Cluster's wave that does it, for the
# guard and for itself, once per generation). Inputs are environment variables set by offshoot (clone/guard.go).
import datetime
import json
import os
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

UTC = datetime.timezone.utc
E = os.environ
REFUSED = 3
SA = E.get("GUARD_SERVICEACCOUNT_DIR", "/var/run/secrets/kubernetes.io/serviceaccount")
NAMESPACE = E["GUARD_NAMESPACE"]
CLUSTER = E["GUARD_CLUSTER"]
OWN = E["GUARD_SERVER_NAME"]
DEST = E["GUARD_DESTINATION_PATH"]
ENDPOINT = E.get("GUARD_ENDPOINT_URL", "")
PARENT = E.get("GUARD_PARENT_SERVER_NAME", "")
PARENT_BRANCH = E.get("GUARD_PARENT_BRANCH", "")
TARGET = E.get("GUARD_TARGET_TIME", "")
POLL = int(E.get("GUARD_POLL_SECONDS", "15"))
JOB = E.get("GUARD_JOB", "")  # the guard Job (for the adopt Job)
SELF = E.get("GUARD_SELF", "")  # this Job
MODE = E.get("GUARD_MODE", "guard")


def log(msg):
    print(time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()) + " " + msg, flush=True)


def refuse(msg):
    log("REFUSED: " + msg)
    try:
        with open("/dev/termination-log", "w") as f:
            f.write(msg)
    except OSError:
        pass
    sys.exit(REFUSED)


def ready(msg):
    log("READY: " + msg)
    sys.exit(0)


def api(method, path, body=None):
    """(status, decoded JSON) of a call to the API server; raises on
    network and TLS errors."""
    host = E.get("KUBERNETES_SERVICE_HOST", "")
    if ":" in host:
        host = "[" + host + "]"
    url = "https://%s:%s%s" % (host, E.get("KUBERNETES_SERVICE_PORT", "443"), path)
    with open(SA + "/token") as f:
        token = f.read().strip()
    ctx = ssl.create_default_context(cafile=SA + "/ca.crt")
    headers = {"Authorization": "Bearer " + token, "Accept": "application/json"}
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        headers["Content-Type"] = "application/merge-patch+json"
    req = urllib.request.Request(url, data=data, headers=headers, method=method)
    try:
        with urllib.request.urlopen(req, context=ctx, timeout=10) as r:
            return r.status, json.loads(r.read() or b"{}")
    except urllib.error.HTTPError as e:
        return e.code, {}


CLUSTER_PATH = "/apis/postgresql.cnpg.io/v1/namespaces/%s/clusters/%s" % (NAMESPACE, CLUSTER)


def get_cluster():
    """The Cluster (a dict), False when it does not exist, None when the
    API server cannot tell."""
    try:
        code, obj = api("GET", CLUSTER_PATH)
    except Exception as e:  # network, TLS, missing token
        log("cannot read Cluster %s from the API server: %s" % (CLUSTER, e))
        return None
    if code == 200:
        return obj or {"metadata": {}}
    if code == 404:
        return False
    log("cannot read Cluster %s from the API server: HTTP %d (check the Role offshoot-clone-guard)" % (CLUSTER, code))
    return None


def adopt(cluster, job):
    """Make a Job a dependent of the Cluster: the garbage collector deletes
    it with the Cluster, so a re-created Cluster is guarded again."""
    uid = cluster.get("metadata", {}).get("uid", "")
    owner = {"apiVersion": "postgresql.cnpg.io/v1", "kind": "Cluster", "name": CLUSTER, "uid": uid,
             "controller": False, "blockOwnerDeletion": False}
    try:
        code, _ = api("PATCH", "/apis/batch/v1/namespaces/%s/jobs/%s" % (NAMESPACE, job),
                      {"metadata": {"ownerReferences": [owner]}})
    except Exception as e:
        log("cannot make Job %s a dependent of Cluster %s: %s" % (job, CLUSTER, e))
        return False
    if code != 200:
        log("cannot make Job %s a dependent of Cluster %s: HTTP %d" % (job, CLUSTER, code))
        return False
    log("Job %s is now deleted with Cluster %s (uid %s)" % (job, CLUSTER, uid))
    return True


def credentials():
    """The object store keys of the credentials Secret (a volume, so a
    Secret filled later by a replicator shows up without a restart)."""
    d = E["GUARD_CREDENTIALS_DIR"]
    out, missing = {}, []
    for var, key in (("AWS_ACCESS_KEY_ID", E["GUARD_ACCESS_KEY_ID_KEY"]),
                     ("AWS_SECRET_ACCESS_KEY", E["GUARD_SECRET_ACCESS_KEY_KEY"])):
        try:
            with open(os.path.join(d, key)) as f:
                value = f.read()
        except OSError:
            value = ""
        if value == "":
            missing.append(key)
        else:
            out[var] = value
    return out, missing


def barman(cmd, creds, *args):
    argv = [cmd]
    if ENDPOINT:
        argv += ["--endpoint-url", ENDPOINT]
    argv += list(args)
    env = dict(E)
    env.update(creds)
    return subprocess.run(argv, env=env, capture_output=True, text=True, timeout=300)


def last_line(r):
    lines = (r.stderr or r.stdout or "").strip().splitlines()
    return lines[-1] if lines else "exit %d" % r.returncode


def parse_time(b, key):
    iso = b.get(key + "_iso")
    if iso:
        return datetime.datetime.fromisoformat(iso).astimezone(UTC)
    s = b.get(key)
    if not s:
        return None
    return datetime.datetime.strptime(s, "%a %b %d %H:%M:%S %Y").replace(tzinfo=UTC)


def completed_backups(creds, server):
    """End times of the completed base backups of server, or None."""
    r = barman("barman-cloud-backup-list", creds, "--format", "json", DEST, server)
    if r.returncode != 0:
        log("cannot list the backups of %s: %s" % (server, last_line(r)))
        return None
    ends = []
    for b in json.loads(r.stdout).get("backups_list", []):
        end = parse_time(b, "end_time")
        if b.get("status") == "DONE" and end is not None:
            ends.append(end)
    return sorted(ends)


def wal_written_after(creds, server, t):
    """Whether the WAL archive of server holds a segment written after t;
    None when this store cannot say (not S3, or no boto3)."""
    u = urllib.parse.urlparse(DEST)
    if u.scheme != "s3":
        return None
    try:
        import boto3
    except ImportError:
        return None
    prefix = "/".join(p for p in (u.path.strip("/"), server, "wals") if p) + "/"
    s3 = boto3.client("s3", endpoint_url=ENDPOINT or None,
                      aws_access_key_id=creds["AWS_ACCESS_KEY_ID"],
                      aws_secret_access_key=creds["AWS_SECRET_ACCESS_KEY"])
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=u.netloc, Prefix=prefix):
        for o in page.get("Contents", []):
            name = o["Key"].rsplit("/", 1)[-1]
            if ".history" in name or ".backup" in name or ".partial" in name:
                continue
            if o["LastModified"] > t:
                return True
    return False


def check():
    """One round: returns when it must wait; exits when it knows."""
    cluster = get_cluster()
    if cluster is None:
        return "the API server"
    if cluster is not False and cluster.get("metadata", {}).get("deletionTimestamp"):
        return "Cluster %s to finish being deleted" % CLUSTER
    if cluster is not False:
        adopt(cluster, SELF)
        ready("Cluster %s exists: it was bootstrapped already, nothing to guard" % CLUSTER)
    creds, missing = credentials()
    if missing:
        return ("keys %s of Secret %s (the replicator or External Secrets fills it; see docs/database.md)"
                % (", ".join(missing), E["GUARD_SECRET_NAME"]))
    r = barman("barman-cloud-check-wal-archive", creds, DEST, OWN)
    if r.returncode != 0:
        if "Expected empty archive" in (r.stdout + r.stderr):
            refuse("the archive %s already holds WAL, but Cluster %s does not exist: this incarnation's Cluster "
                   "was deleted (by hand, or with its namespace) and CNPG would stop at 'Expected empty archive'. "
                   "Its data is in that archive. Make a new incarnation: offshoot refresh <branch> "
                   "(see docs/database.md, 'A Cluster deleted by hand')" % (OWN, CLUSTER))
        return "a check of this environment's own archive %s (%s)" % (OWN, last_line(r))
    if not PARENT:
        ready("own archive %s is empty; a fresh database can be created" % OWN)
    ends = completed_backups(creds, PARENT)
    if ends is None:
        return "the backup catalog of %s (%s)" % (PARENT_BRANCH, PARENT)
    if not TARGET:
        if ends:
            ready("%s (%s) has %d completed base backup(s), the latest ended at %s"
                  % (PARENT_BRANCH, PARENT, len(ends), ends[-1].isoformat()))
        return ("the first completed base backup of %s in %s (its ScheduledBackup takes one as soon as its "
                "Cluster is healthy)" % (PARENT_BRANCH, PARENT))
    t = datetime.datetime.fromisoformat(TARGET.replace("Z", "+00:00")).astimezone(UTC)
    now = datetime.datetime.now(UTC)
    if not [e for e in ends if e <= t]:
        if now > t:
            first = ends[0].isoformat() if ends else "none has completed yet"
            refuse("no base backup of %s (%s) ended at or before %s (the earliest: %s), and any later one ends "
                   "after it: recovery to that time is impossible; choose a later --at" % (PARENT_BRANCH, PARENT, TARGET, first))
        return "the point in time %s to pass" % TARGET
    if [e for e in ends if e > t]:
        ready("a base backup of %s ended at or before %s, and a later one proves WAL past it" % (PARENT_BRANCH, TARGET))
    w = wal_written_after(creds, PARENT, t)
    if w is None:
        ready("a base backup of %s ended at or before %s (this store cannot list WAL times: PostgreSQL checks the rest)"
              % (PARENT_BRANCH, TARGET))
    if w:
        ready("a base backup of %s ended at or before %s, and its WAL archive holds a segment written after it"
              % (PARENT_BRANCH, TARGET))
    return "WAL of %s written after %s to be archived (archive_timeout: 5 minutes by default)" % (PARENT_BRANCH, TARGET)


def main_adopt():
    start = time.time()
    while time.time() - start < 300:
        cluster = get_cluster()
        if cluster and adopt(cluster, JOB) and adopt(cluster, SELF):
            sys.exit(0)
        if cluster is False:
            log("Cluster %s does not exist: nothing to adopt the guard" % CLUSTER)
            sys.exit(0)
        time.sleep(max(POLL, 1))
    sys.exit(1)


def main_retire():
    """A protected environment's Cluster carries Prune=false, so Argo CD
    keeps the previous generation's Cluster (running and archiving) after a
    refresh: delete the older generations once this one is healthy. Their
    archives stay in the object store."""
    prefix = E["GUARD_ENV"] + "-pg"
    current = int(CLUSTER[len(prefix):])
    base = "/apis/postgresql.cnpg.io/v1/namespaces/%s/clusters" % NAMESPACE
    start = time.time()
    while True:
        try:
            code, lst = api("GET", base)
        except Exception as e:
            code, lst = 0, {}
            log("cannot list the Clusters of %s: %s" % (NAMESPACE, e))
        if code == 200:
            break
        if time.time() - start > 300:
            sys.exit(1)
        log("cannot list the Clusters of %s: HTTP %d" % (NAMESPACE, code))
        time.sleep(max(POLL, 1))
    failed = False
    for item in lst.get("items", []):
        name = item.get("metadata", {}).get("name", "")
        gen = name[len(prefix):]
        if not name.startswith(prefix) or not gen.isdigit() or int(gen) >= current:
            continue
        servers = [p.get("parameters", {}).get("serverName", "?") for p in item.get("spec", {}).get("plugins", [])]
        code, _ = api("DELETE", base + "/" + name)
        if code in (200, 202, 404):
            log("deleted Cluster %s (generation %s, replaced by %s); its archive %s stays in the object store"
                % (name, gen, CLUSTER, ", ".join(servers)))
        else:
            failed = True
            log("cannot delete Cluster %s: HTTP %d" % (name, code))
    sys.exit(1 if failed else 0)


def main():
    if MODE == "adopt":
        main_adopt()
    if MODE == "retire":
        main_retire()
    what = "a fresh database" if not PARENT else "a clone of %s (%s)%s" % (
        PARENT_BRANCH, PARENT, " at " + TARGET if TARGET else "")
    log("guarding Cluster %s/%s: %s, archiving to %s" % (NAMESPACE, CLUSTER, what, OWN))
    start = time.time()
    while True:
        try:
            waiting = check()
        except Exception as e:  # an unreadable catalog, a store that is down: try again
            waiting = "a retry after %s: %s" % (type(e).__name__, e)
        log("waiting for %s (%ds so far; the Job's activeDeadlineSeconds bounds the wait)" % (waiting, time.time() - start))
        time.sleep(POLL)


main()
