#!/usr/bin/env python3
"""The NATS contract, checked with a client this project did not write (nats-py).

Given NATS_URL, it reads the HOSPITAL_EVENTS stream from the first event with an ordered
consumer and lists the services through the NATS service API ($SRV.PING, $SRV.INFO), as the
`operator` user; it sends commands straight to hospital.patient.* as the `gateway` user (the only
one nats.conf lets send them), and checks that the operator may not. It prints what it checked
and exits 1 on any failure.

Credentials: NATS_OPERATOR_USER/NATS_OPERATOR_PASSWORD and NATS_GATEWAY_USER/
NATS_GATEWAY_PASSWORD, else the passwords `hospital up` keeps in <data dir>/nats-credentials
(HOSPITAL_DATA_DIR, default ./data).

    NATS_URL=$(cat data/nats-url) python3 tests/independent/test_nats_contract.py
"""

import asyncio
import json
import os
import re
import sys
import uuid

import nats
from nats.js.api import DeliverPolicy

STREAM = "HOSPITAL_EVENTS"
AGGREGATES = ("patient", "staff", "appointment", "record")
SUBJECT = re.compile(
    r"^hospital\.events\.(patient|staff|appointment|record)\.([0-9a-f-]{36})\.([a-z_]+)$"
)
ENVELOPE_KEYS = {
    "event_id", "type", "aggregate", "aggregate_id", "aggregate_version",
    "occurred_at", "actor", "correlation_id", "data",
}
failures = []


def check(condition, what):
    print(("ok    " if condition else "FAIL  ") + what)
    if not condition:
        failures.append(what)


async def check_stream(nc):
    js = nc.jetstream()
    info = await js.stream_info(STREAM)
    total = info.state.messages
    print(f"stream {STREAM} subjects {info.config.subjects} messages {total} "
          f"sequences {info.state.first_seq}..{info.state.last_seq}")
    check(info.config.subjects == ["hospital.events.>"], "the stream holds hospital.events.>")
    check(total > 0, "the stream has events")
    sub = await js.subscribe("hospital.events.>", ordered_consumer=True,
                             deliver_policy=DeliverPolicy.ALL)
    bad = []
    seen = 0
    last_seq = 0
    try:
        while seen < total:
            msg = await sub.next_msg(timeout=5)
            seen += 1
            last_seq = msg.metadata.sequence.stream
            problem = envelope_problem(msg)
            if problem:
                bad.append(f"seq {last_seq} {msg.subject}: {problem}")
            else:
                print(f"  {last_seq} {msg.subject} Nats-Msg-Id: {msg.headers['Nats-Msg-Id']}")
    finally:
        await sub.unsubscribe()
    check(seen == total, f"read all {total} events in order (last sequence {last_seq})")
    for line in bad:
        print("  " + line)
    check(not bad, "every payload is an envelope matching its subject and Nats-Msg-Id")


def envelope_problem(msg):
    """Why this message is not a well-formed event, or None."""
    match = SUBJECT.match(msg.subject)
    if not match:
        return "subject is not hospital.events.<aggregate>.<id>.<verb>"
    try:
        env = json.loads(msg.data)
    except ValueError:
        return "payload is not JSON"
    if not isinstance(env, dict) or not ENVELOPE_KEYS <= env.keys():
        return f"missing envelope fields {sorted(ENVELOPE_KEYS - set(env or {}))}"
    aggregate, aggregate_id, verb = match.groups()
    if env["aggregate"] != aggregate or env["aggregate_id"] != aggregate_id:
        return "aggregate or aggregate_id differs from the subject"
    if env["type"] != f"{aggregate}.{verb}":
        return f"type {env['type']} differs from the subject"
    if not isinstance(env["aggregate_version"], int) or env["aggregate_version"] < 1:
        return "aggregate_version is not a positive integer"
    if set(env["actor"]) != {"id", "role"}:
        return "actor is not {id, role}"
    msg_id = (msg.headers or {}).get("Nats-Msg-Id")
    if msg_id != env["event_id"]:
        return f"Nats-Msg-Id {msg_id} differs from event_id {env['event_id']}"
    return None


async def gather(nc, subject, wait=0.5):
    """Every reply to one request on `subject` within `wait` seconds (one per service)."""
    inbox = nc.new_inbox()
    sub = await nc.subscribe(inbox)
    await nc.publish(subject, b"", reply=inbox)
    replies = []
    try:
        while True:
            msg = await sub.next_msg(timeout=wait)
            replies.append(json.loads(msg.data))
    except nats.errors.TimeoutError:
        pass
    finally:
        await sub.unsubscribe()
    return replies


async def check_services(nc):
    pings = await gather(nc, "$SRV.PING")
    names = sorted(p["name"] for p in pings)
    print(f"$SRV.PING answered by {names}")
    for aggregate in AGGREGATES:
        check(aggregate in names, f"service {aggregate} answers $SRV.PING")
    infos = {i["name"]: i for i in await gather(nc, "$SRV.INFO")}
    for aggregate in AGGREGATES:
        endpoints = sorted(e["subject"] for e in infos.get(aggregate, {}).get("endpoints", []))
        print(f"  {aggregate}: {endpoints}")
        check(bool(endpoints) and all(s.startswith(f"hospital.{aggregate}.") for s in endpoints),
              f"$SRV.INFO lists {aggregate}'s endpoints under hospital.{aggregate}.*")
    patient = {e["subject"] for e in infos.get("patient", {}).get("endpoints", [])}
    expected = {f"hospital.patient.{a}" for a in ("create", "get", "list", "update", "delete")}
    check(expected <= patient, "patient has create, get, list, update, delete")


async def check_commands(nc):
    reply = await nc.request("hospital.patient.list", b'{"limit": 5}', timeout=5)
    page = json.loads(reply.data)
    print(f"hospital.patient.list -> {len(page.get('items', []))} items")
    check(isinstance(page.get("items"), list), "hospital.patient.list answers a page of items")
    unknown = json.dumps({"id": str(uuid.uuid4())}).encode()
    reply = await nc.request("hospital.patient.get", unknown, timeout=5)
    code = (reply.headers or {}).get("Nats-Service-Error-Code")
    print(f"hospital.patient.get (unknown id) -> Nats-Service-Error-Code {code}, "
          f"Hospital-Error {(reply.headers or {}).get('Hospital-Error')}")
    check(code == "404", "an unknown patient is a 404 in Nats-Service-Error-Code")


async def check_operator_sends_no_commands(nc, errors):
    try:
        await nc.request("hospital.patient.list", b"{}", timeout=1)
        answered = True
    except (nats.errors.TimeoutError, nats.errors.NoRespondersError):
        answered = False
    await nc.flush()
    # nats-py lower-cases the server's -ERR text.
    refused = any("permissions violation for publish" in e.lower()
                  and "hospital.patient.list" in e for e in errors)
    print(f"hospital.patient.list as the operator -> server errors {errors}")
    check(not answered and refused, "the operator user may not send commands")


def credentials(user):
    """(user, password) from NATS_<USER>_USER/_PASSWORD, else the data directory's file."""
    role = user.upper()
    name = os.environ.get(f"NATS_{role}_USER", user)
    password = os.environ.get(f"NATS_{role}_PASSWORD")
    if password:
        return name, password
    path = os.path.join(os.environ.get("HOSPITAL_DATA_DIR", "data"), "nats-credentials")
    with open(path) as kept:
        for line in kept:
            key, _, value = line.strip().partition("=")
            if key == f"HOSPITAL_NATS_PASSWORD_{role}":
                return name, value
    raise SystemExit(f"no password for NATS user {user}: set NATS_{role}_PASSWORD")


async def connect(url, user, errors=None):
    name, password = credentials(user)

    async def error_cb(error):
        if errors is not None:
            errors.append(str(error))

    # Each user may receive replies only on its own inbox prefix (nats.conf); the operator
    # also on the default _INBOX, which the gateway may not use.
    return await nats.connect(url.split(","), user=name, password=password,
                              inbox_prefix=b"_INBOX_" + name.encode(), error_cb=error_cb,
                              connect_timeout=3, max_reconnect_attempts=0,
                              allow_reconnect=False)


async def main():
    url = os.environ.get("NATS_URL")
    if not url:
        print("NATS_URL is not set", file=sys.stderr)
        return 2
    errors = []
    operator = await connect(url, "operator", errors)
    gateway = await connect(url, "gateway")
    try:
        for step, nc in ((check_stream, operator), (check_services, operator),
                         (check_commands, gateway)):
            try:
                await step(nc)
            except Exception as error:  # a crash in one step must not hide the others
                check(False, f"{step.__name__} raised {type(error).__name__}: {error}")
        try:
            await check_operator_sends_no_commands(operator, errors)
        except Exception as error:
            check(False, f"check_operator_sends_no_commands raised {type(error).__name__}: {error}")
    finally:
        await operator.close()
        await gateway.close()
    print(f"{len(failures)} failure(s)" if failures else "all checks passed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
