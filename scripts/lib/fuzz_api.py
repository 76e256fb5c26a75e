"""Fuzzes the live system from its own OpenAPI document (run by scripts/fuzz-api).

Starts `hospital up` on a free port with a fresh data directory, logs in as the administrator,
registers a doctor with a login and one patient, nurse, appointment and record whose ids the
`{id}` of their routes are fixed to, and runs schemathesis once per role against
/api/openapi.json. Then it checks that the fuzzing left nothing half-written: every event in
HOSPITAL_EVENTS was caused by an acknowledged write (its correlation id is the request id of a
2xx write) or by the system itself (bootstrap, the cancellations a delete cascades to), no
acknowledged write caused more than one event, every entity a 201 answered has its `created`
event, and `hospital verify` finds the databases, outboxes and
read-models consistent with the stream. Prints the operations and examples tried.
"""

import argparse
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections import Counter

# No 5xx, every status code, content type and header documented, every body matching its
# schema; and a request the document forbids is refused (so its constraints are not stricter
# than the services'). The opposite check (positive_data_acceptance) is left out: a schema
# cannot say that a birth date is not in the future or that doctor_id names a doctor.
CHECKS = ",".join(
    [
        "not_a_server_error",
        "status_code_conformance",
        "content_type_conformance",
        "response_headers_conformance",
        "response_schema_conformance",
        "negative_data_rejection",
    ]
)
# The live feed never ends; logout would revoke the token the rest of the run uses (both are
# covered by cli/tests/api).
EXCLUDED_PATHS = ["/api/events/stream", "/auth/logout"]
WRITES = {"POST", "PUT", "DELETE"}


def log(message):
    print(f"==> fuzz: {message}", flush=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def call(base, method, path, body=None, token=None):
    """One JSON request; (status, parsed body). Sends its own request id, kept by the caller."""
    request_id = str(uuid.uuid4())
    headers = {"Content-Type": "application/json", "X-Request-Id": request_id}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(base + path, data=data, headers=headers, method=method)
    try:
        with urllib.request.urlopen(request, timeout=15) as response:
            return response.status, json.loads(response.read() or b"null"), request_id
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"null"), request_id


def start_system(hospital, frontend, data_dir, port, admin_password):
    env = dict(os.environ, HOSPITAL_ADMIN_PASSWORD=admin_password, HOSPITAL_FRONTEND_DIR=frontend)
    log_file = open(os.path.join(data_dir, "hospital.log"), "w")
    process = subprocess.Popen(
        [hospital, "up", "--data-dir", data_dir, "--http-addr", f"127.0.0.1:{port}"],
        stdout=log_file,
        stderr=subprocess.STDOUT,
        env=env,
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        with open(log_file.name) as f:
            if "is up" in f.read():
                return process
        if process.poll() is not None:
            raise SystemExit("the system exited before it was up")
        time.sleep(0.2)
    raise SystemExit("the system was not up within 120 s")


def stop_system(process):
    if process.poll() is None:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def seed(base, admin, doctor, doctor_id, setup_writes):
    """Real entities for the `{id}` of each resource, so that fuzzed reads and writes reach the
    services' logic instead of a 404: {path prefix: id}."""

    def create(path, body, token):
        status, entity, request_id = call(base, "POST", path, body, token)
        assert status == 201, (path, entity)
        setup_writes[request_id] = "POST"
        return entity["id"]

    patient = create("/api/patients", {"name": "Fuzz Patient", "birth_date": "1980-01-01", "sex": "other"}, admin)
    nurse = create("/api/staff", {"name": "Fuzz Nurse", "role": "nurse"}, admin)
    start = time.strftime("%Y-%m-%dT09:00:00Z", time.gmtime(time.time() + 30 * 86400))
    appointment = create(
        "/api/appointments", {"patient_id": patient, "doctor_id": doctor_id, "start": start}, doctor
    )
    record = create(
        "/api/records", {"patient_id": patient, "kind": "note", "title": "Fuzz note", "body": "Seen."}, doctor
    )
    return {"patients": patient, "staff": nurse, "appointments": appointment, "records": record}


# What refusing a request may look like: schemathesis' list plus 412 (an unreadable If-Match is
# refused before the body is read), 413 and the 404 of an id that is not a UUID.
REFUSALS = [400, 401, 403, 404, 405, 406, 409, 412, 413, 415, 422, 428, 429]


def config_file(ids, report_dir):
    """A schemathesis.toml that fixes `{id}` per resource to the seeded entities."""
    path = os.path.join(report_dir, "schemathesis.toml")
    with open(path, "w") as f:
        f.write("[checks.negative_data_rejection]\n")
        f.write(f"expected-statuses = {json.dumps(REFUSALS)}\n\n")
        for resource, entity_id in ids.items():
            f.write("[[operations]]\n")
            f.write(f'include-path-regex = "^/api/{resource}/\\\\{{id\\\\}}"\n')
            f.write(f'parameters = {{ id = "{entity_id}" }}\n\n')
    return path


def fuzz(schemathesis, base, token, role, examples, report_dir, config):
    """Runs schemathesis as one role; (exit status, operations tested, test cases, HAR path)."""
    har = os.path.join(report_dir, f"{role}.har")
    command = [
        schemathesis,
        "--config-file",
        config,
        "run",
        f"{base}/api/openapi.json",
        "--checks",
        os.environ.get("FUZZ_CHECKS", CHECKS),
        "--max-examples",
        str(examples),
        "--header",
        f"Authorization: Bearer {token}",
        "--request-timeout",
        "10",
        "--workers",
        "2",
        "--seed",
        os.environ.get("FUZZ_SEED", "20261206"),
        "--report",
        "har",
        "--report-har-path",
        har,
        "--no-color",
    ]
    for path in EXCLUDED_PATHS:
        command += ["--exclude-path", path]
    log(f"schemathesis as {role}: {examples} examples per operation")
    # In the data directory: schemathesis keeps a cache in its working directory.
    run = subprocess.run(command, capture_output=True, text=True, cwd=report_dir)
    output = run.stdout + run.stderr
    tested = re.search(r"Tested:\s+(\d+)", output)
    generated = re.search(r"(\d+) generated", output)
    if run.returncode != 0:
        print(output)
    else:
        # The summary only: the per-phase lines and the findings when there are any.
        summary = output[output.find("=== SUMMARY") :] if "=== SUMMARY" in output else output
        print(summary.strip())
    return (
        run.returncode,
        int(tested.group(1)) if tested else 0,
        int(generated.group(1)) if generated else 0,
        har,
    )


def acknowledged_writes(har_paths, setup_writes, created):
    """{request id: method} of every 2xx POST/PUT/DELETE on /api, and every request sent; adds
    the id of every entity a 201 answered to `created`."""
    writes = dict(setup_writes)
    requests = 0
    for path in har_paths:
        with open(path) as f:
            entries = json.load(f)["log"]["entries"]
        for entry in entries:
            requests += 1
            method = entry["request"]["method"]
            url = entry["request"]["url"]
            status = entry["response"]["status"]
            if method not in WRITES or "/api/" not in url or not 200 <= status < 300:
                continue
            ids = [h["value"] for h in entry["response"]["headers"] if h["name"].lower() == "x-request-id"]
            writes[ids[0]] = method
            if status == 201:
                created.add(json.loads(entry["response"]["content"]["text"])["id"])
    return writes, requests


def stream_events(hospital, data_dir):
    stats = subprocess.run(
        [hospital, "events", "stats", "--data-dir", data_dir], capture_output=True, text=True, check=True
    ).stdout
    count = int(re.search(r"HOSPITAL_EVENTS: (\d+) messages", stats).group(1))
    tail = subprocess.run(
        [hospital, "events", "tail", "--from-seq", "1", "--json", "--limit", str(count), "--data-dir", data_dir],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
    return [json.loads(line) for line in tail.splitlines() if line.strip()]


def check_events(events, writes, created):
    """Problems: an event no acknowledged write caused, an acknowledged write that caused more
    than one event, a created entity without its `created` event. (A write may cause none: a
    change to the same values, a repeat of a cancellation, a replay of an Idempotency-Key.)"""
    problems = []
    by_request = Counter()
    first_versions = {e["aggregate_id"] for e in events if e["aggregate_version"] == 1}
    for entity in sorted(created - first_versions):
        problems.append(f"created entity {entity} has no version-1 event")
    for event in events:
        if event["actor"]["id"] == "system":
            # Bootstrap and the cascades a delete causes (their own, later transactions).
            continue
        request = event.get("correlation_id")
        if request not in writes:
            problems.append(f"event {event['type']} {event['aggregate_id']} v{event['aggregate_version']} "
                            f"from request {request}, which was not acknowledged")
        by_request[request] += 1
    for request, method in writes.items():
        if by_request[request] > 1:
            problems.append(f"acknowledged {method} {request} caused {by_request[request]} events")
    return problems


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--hospital", required=True)
    parser.add_argument("--schemathesis", required=True)
    parser.add_argument("--frontend", required=True)
    parser.add_argument("--examples", type=int, default=20)
    args = parser.parse_args()

    started = time.monotonic()
    data_dir = tempfile.mkdtemp(prefix="hospital-fuzz.")
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    admin_password = "fuzz-admin-" + secrets.token_hex(8)
    log(f"starting the system on {base} (data {data_dir})")
    process = start_system(args.hospital, args.frontend, data_dir, port, admin_password)
    status = 1
    try:
        status_code, token, _ = call(base, "POST", "/auth/login", {"username": "admin", "password": admin_password})
        assert status_code == 200, token
        admin = token["access_token"]
        doctor_password = "fuzz-doctor-" + secrets.token_hex(8)
        status_code, doctor, request_id = call(
            base,
            "POST",
            "/api/staff",
            {"name": "Dr Fuzz", "role": "doctor", "username": "drfuzz", "password": doctor_password},
            admin,
        )
        assert status_code == 201, doctor
        setup_writes = {request_id: "POST"}
        status_code, token, _ = call(base, "POST", "/auth/login", {"username": "drfuzz", "password": doctor_password})
        assert status_code == 200, token
        ids = seed(base, admin, token["access_token"], doctor["id"], setup_writes)
        config = config_file(ids, data_dir)
        # The doctor first: the administrator's run may change the doctor's account (its
        # stateful phase follows ids from lists), which revokes the doctor's tokens.
        roles = ["doctor", "admin"]
        runs = [
            fuzz(args.schemathesis, base, token["access_token"], "doctor", args.examples, data_dir, config),
            fuzz(args.schemathesis, base, admin, "admin", args.examples, data_dir, config),
        ]
        created = set(ids.values()) | {doctor["id"]}
        writes, requests = acknowledged_writes([har for *_, har in runs], setup_writes, created)
        events = stream_events(args.hospital, data_dir)
        problems = check_events(events, writes, created)
        changes = sum(1 for e in events if e["correlation_id"] in writes and e["actor"]["id"] != "system")
        verify = subprocess.run(
            [args.hospital, "verify", "--data-dir", data_dir], capture_output=True, text=True
        )
        if verify.returncode != 0:
            problems.append("hospital verify found differences:\n" + verify.stdout + verify.stderr)
        for problem in problems:
            print(f"  {problem}")
        fuzz_failed = [role for role, run in zip(roles, runs) if run[0] != 0]
        operations = ", ".join(
            f"{role}: {run[1]} operations, {run[2]} examples" for role, run in zip(roles, runs)
        )
        log(
            f"{operations}; {requests} requests, {len(writes)} acknowledged writes ({changes} changed "
            f"something, each one event; {len(created)} entities created), {len(events)} events in the "
            f"stream ({len(events) - changes} by the system), verify {'ok' if verify.returncode == 0 else 'FAILED'} "
            f"({time.monotonic() - started:.0f} s)"
        )
        if fuzz_failed:
            log(f"schemathesis found failures as {', '.join(fuzz_failed)}")
        status = 1 if (problems or fuzz_failed) else 0
    finally:
        stop_system(process)
        if status != 0:
            with open(os.path.join(data_dir, "hospital.log")) as f:
                lines = [l for l in f if "http request" not in l]
            log("last lines of the system's log:")
            sys.stdout.writelines(lines[-30:])
        shutil.rmtree(data_dir, ignore_errors=True)
    sys.exit(status)


if __name__ == "__main__":
    main()
