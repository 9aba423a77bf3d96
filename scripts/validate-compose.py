#!/usr/bin/env python3
"""Checks the security and start-up rules of a resolved compose file; exits 1 listing each
breach. Input: the output of `docker compose -f deploy/compose.yml --profile ... config`.

  validate-compose.py RESOLVED.yml

- capture-agent: host network, all capabilities dropped but NET_RAW and NET_ADMIN, read-only
  root file system, and no no-new-privileges (it would switch the file capabilities off).
- every other netpipe service (built from the netpipe image): no capability at all, read-only
  root file system, no-new-privileges.
- a service that depends on redis or rabbitmq waits until it is healthy, and those two have a
  health check and a volume for their data.
"""

import sys

import yaml

CAPTURE_CAPS = {"NET_RAW", "NET_ADMIN"}
BROKERS = {"redis", "rabbitmq"}


def breaches(services):
    for name, svc in sorted(services.items()):
        netpipe = str(svc.get("image", "")).startswith("netpipe")
        caps_dropped = [c.upper() for c in svc.get("cap_drop") or []]
        caps_added = {c.upper() for c in svc.get("cap_add") or []}
        no_new_privs = any("no-new-privileges" in o and not o.endswith("false")
                           for o in svc.get("security_opt") or [])
        if name == "capture-agent":
            if svc.get("network_mode") != "host":
                yield "capture-agent: network_mode must be host"
            if caps_dropped != ["ALL"] or caps_added != CAPTURE_CAPS:
                yield "capture-agent: must drop ALL and add exactly NET_RAW, NET_ADMIN"
            if no_new_privs:
                yield "capture-agent: no-new-privileges would disable its file capabilities"
        elif netpipe:
            if caps_dropped != ["ALL"] or caps_added:
                yield "%s: must drop ALL capabilities and add none" % name
            if not no_new_privs:
                yield "%s: must set no-new-privileges" % name
        if netpipe and svc.get("read_only") is not True:
            yield "%s: root file system must be read-only" % name
        depends = svc.get("depends_on") or {}
        for broker in BROKERS & set(depends):
            condition = depends[broker].get("condition") if isinstance(depends, dict) else None
            if condition != "service_healthy":
                yield "%s: must wait for %s to be healthy" % (name, broker)
        if name in BROKERS:
            if not (svc.get("healthcheck") or {}).get("test"):
                yield "%s: needs a health check" % name
            if not svc.get("volumes"):
                yield "%s: needs a volume for its data" % name


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    with open(sys.argv[1]) as f:
        config = yaml.safe_load(f) or {}
    services = config.get("services") or {}
    found = list(breaches(services))
    for breach in found:
        print("ERROR compose: " + breach, file=sys.stderr)
    if not services:
        print("ERROR compose: no services", file=sys.stderr)
        return 1
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
