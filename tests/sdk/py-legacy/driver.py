#!/usr/bin/env python3
"""Drives the official, unmodified PyPI `whop-sdk` 0.0.41 (old Stainless-generated line, which
takes `base_url=` and sends `company_id`) against a leads server.

Usage:  WHOP_API_KEY=... WHOP_BASE_URL=http://127.0.0.1:PORT/api/v1 \\
          py-legacy/.venv/bin/python py-legacy/driver.py <command> '<json args>'

Same commands, args and output as ../ts/driver.mjs and ../py/driver.py:
  list     {"params": {...}, "max_items"?: N}
           params as the SDK takes them: company_id, first, last, after, before,
           created_after / created_before (strings are sent as given), product_ids (list).
           An "account_id" given instead of company_id is passed as company_id.
           -> {"ids": [...], "emails": [...], "requests": [...]}  (+ "error" if the walk failed)
  create   {"body": {...}, "idempotency_key"?: "..."}
  retrieve {"id": "lead_..."}
  update   {"id": "lead_...", "body": {...}}
           -> {"ok": <raw response JSON>, "parsed": <SDK model as JSON>, "status": 200, "requests": [...]}
              or {"error": {...}, "requests": [...]}

Optional in every args object: "max_retries" (default 0 here; the SDK default is 2),
"timeout_s" (request timeout in seconds).

"error" is {"class": type(e).__name__, "status": e.status_code, "body": e.body,
            "message": str(e), "headers": {...}}.
Exit code 0 whenever the JSON line was printed (API errors included); 2 on a crash.
"""

import json
import os
import sys
import traceback

import httpx
from whop_sdk import APIResponseValidationError, APIStatusError, Whop


def out(obj):
    sys.stdout.write(json.dumps(obj, default=str) + "\n")
    sys.stdout.flush()


def error_json(e):
    resp = getattr(e, "response", None)
    return {
        "class": type(e).__name__,
        "status": getattr(e, "status_code", None),
        "body": e.body,
        "message": str(e),
        "headers": dict(resp.headers) if resp is not None else None,
    }


def main():
    if len(sys.argv) < 2:
        raise SystemExit("usage: driver.py <list|create|retrieve|update> <json args>")
    command = sys.argv[1]
    args = json.loads(sys.argv[2]) if len(sys.argv) > 2 else {}

    requests = []

    def on_request(request: httpx.Request):
        requests.append({"method": request.method, "url": request.url.raw_path.decode("ascii")})

    kwargs = {}
    if "timeout_s" in args:
        kwargs["timeout"] = float(args["timeout_s"])
    client = Whop(
        api_key=os.environ["WHOP_API_KEY"],
        base_url=os.environ["WHOP_BASE_URL"],
        max_retries=int(args.get("max_retries", 0)),
        http_client=httpx.Client(follow_redirects=True, event_hooks={"request": [on_request]}),
        **kwargs,
    )

    if command == "list":
        params = dict(args.get("params") or {})
        if "account_id" in params and "company_id" not in params:
            params["company_id"] = params.pop("account_id")
        max_items = int(args.get("max_items", 100000))
        ids, emails = [], []
        try:
            for lead in client.leads.list(**params):
                ids.append(lead.id)
                emails.append(lead.user.email if lead.user is not None else None)
                if len(ids) > max_items:
                    out({"ids": ids, "emails": emails, "requests": requests,
                         "error": {"class": "DriverItemLimitExceeded", "status": None, "body": None,
                                   "message": f"more than {max_items} items yielded"}})
                    return
        except (APIStatusError, APIResponseValidationError) as e:
            out({"ids": ids, "emails": emails, "requests": requests, "error": error_json(e)})
            return
        out({"ids": ids, "emails": emails, "requests": requests})
        return

    if command in ("create", "retrieve", "update"):
        raw = client.leads.with_raw_response
        try:
            if command == "create":
                body = dict(args.get("body") or {})
                if "account_id" in body and "company_id" not in body:
                    body["company_id"] = body.pop("account_id")
                extra = {}
                if args.get("idempotency_key") is not None:
                    extra["extra_headers"] = {"Idempotency-Key": args["idempotency_key"]}
                resp = raw.create(**body, **extra)
            elif command == "retrieve":
                resp = raw.retrieve(args["id"])
            else:
                resp = raw.update(args["id"], **dict(args.get("body") or {}))
            parsed = resp.parse()
        except (APIStatusError, APIResponseValidationError) as e:
            out({"error": error_json(e), "requests": requests})
            return
        out({
            "ok": resp.http_response.json(),
            "parsed": json.loads(parsed.to_json()),
            "status": resp.status_code,
            "requests": requests,
        })
        return

    raise SystemExit(f"unknown command {command!r}")


if __name__ == "__main__":
    try:
        main()
    except SystemExit as e:
        if e.code not in (None, 0):
            sys.stderr.write(f"driver: {e.code}\n")
            sys.exit(2)
    except BaseException:
        sys.stderr.write("driver crashed:\n" + traceback.format_exc())
        sys.exit(2)
    sys.exit(0)
