#!/usr/bin/env python3
"""Drives the official, unmodified PyPI `whop-sdk` 2.6.0 (Fern-generated) against a leads server.

Usage:  WHOP_API_KEY=... WHOP_BASE_URL=http://127.0.0.1:PORT/api/v1 \\
          py/.venv/bin/python py/driver.py <command> '<json args>'

Commands and their JSON args (same convention as ts/driver.mjs):
  list     {"params": {...}, "max_items"?: N}
           params: company_id (sent by this SDK as account_id) or account_id, first, last,
           after, before, created_after / created_before (RFC 3339 strings; this SDK only takes
           datetime objects and re-serialises them with Python's isoformat, see README.md),
           product_ids (list or string).
           -> {"ids": [...], "emails": [...], "requests": [...]}  (+ "error" if the walk failed)
  create   {"body": {...}, "idempotency_key"?: "..."}   body.company_id is sent as account_id
  retrieve {"id": "lead_..."}
  update   {"id": "lead_...", "body": {...}}
  webhooks_create {"body": {...}}          client.webhooks.create(**body)
  webhooks_list {"params": {...}}          client.webhooks.list(**params), walked to the end
           -> {"ids": [...], "items": [...], "requests": [...]}
  webhooks_retrieve {"id": "hook_..."}     webhooks_delete {"id": "hook_..."}
  webhooks_update {"id": "hook_...", "body": {...}}
  webhooks_list_deliveries {"id": "hook_...", "params": {...}}   walked to the end, like list
  webhooks_replay_delivery {"id": "hook_...", "delivery_id": "whdel_...", "body": {...}}
  webhooks_replay {"id": "hook_...", "body": {...}}
  webhooks_test {"id": "hook_...", "event": "lead.created"}
           -> as create below
  unwrap   {"body": "<raw body>", "headers": {...}, "key": "ws_..."}
           whop_sdk.lib.verify_webhook.unwrap -> {"ok": <event>} or {"refused": "<why>"}
  export_create {"body": {...}}                   client.exports.create(**body); body.company_id
                                                  is sent as account_id
  export_retrieve {"id": "exprt_..."}            client.exports.retrieve(id)
  export_list {"params": {...}}                  client.exports.list(**params)
  stats_list {}                                  client.stats.time_series.list()
  stats    {"metric": "new_leads", "params": {...}}
           client.stats.time_series.retrieve(metric, **params); params.from is passed as from_
           -> {"ok": <raw response JSON>, "parsed": <SDK model as JSON>, "status": 200, "requests": [...]}
              or {"error": {...}, "requests": [...]}

Optional in every args object: "max_retries" (default 0 here; the SDK default is 2),
"timeout_s" (request timeout in seconds, default 60 like the SDK).

"error" is {"class": type(e).__name__, "status": e.status_code, "body": e.body,
            "message": str(e), "headers": e.headers}.
Exit code 0 whenever the JSON line was printed (API errors included); 2 on a crash.
"""

import datetime as dt
import json
import os
import sys
import traceback

import httpx
from whop_sdk import Whop
from whop_sdk.core.api_error import ApiError
from whop_sdk.core.parse_error import ParsingError
from whop_sdk.environment import WhopEnvironment


def out(obj):
    sys.stdout.write(json.dumps(obj, default=str) + "\n")
    sys.stdout.flush()


def error_json(e):
    return {
        "class": type(e).__name__,
        "status": e.status_code,
        "body": e.body,
        "message": str(e),
        "headers": dict(e.headers) if e.headers is not None else None,
    }


def parse_ts(v):
    if v is None or isinstance(v, dt.datetime):
        return v
    return dt.datetime.fromisoformat(str(v).replace("Z", "+00:00"))


def main():
    if len(sys.argv) < 2:
        raise SystemExit("usage: driver.py <list|create|retrieve|update|export_create|export_retrieve|export_list|stats_list|stats> <json args>")
    command = sys.argv[1]
    args = json.loads(sys.argv[2]) if len(sys.argv) > 2 else {}

    key = os.environ["WHOP_API_KEY"]
    base = os.environ["WHOP_BASE_URL"]

    requests = []

    def on_request(request: httpx.Request):
        url = request.url
        target = url.raw_path.decode("ascii")  # path + "?" + query exactly as sent
        requests.append({"method": request.method, "url": target})

    timeout = float(args.get("timeout_s", 60))
    client = Whop(
        token=key,
        environment=WhopEnvironment(api=base, vault=base),
        max_retries=int(args.get("max_retries", 0)),
        timeout=timeout,
        httpx_client=httpx.Client(timeout=timeout, follow_redirects=True, event_hooks={"request": [on_request]}),
    )

    if command == "list":
        params = dict(args.get("params") or {})
        if "company_id" in params:
            params["account_id"] = params.pop("company_id")
        for k in ("created_after", "created_before"):
            if k in params:
                params[k] = parse_ts(params[k])
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
        except (ApiError, ParsingError) as e:
            out({"ids": ids, "emails": emails, "requests": requests, "error": error_json(e)})
            return
        out({"ids": ids, "emails": emails, "requests": requests})
        return

    if command == "unwrap":
        from whop_sdk.lib.verify_webhook import WebhookVerificationError, unwrap
        try:
            event = unwrap(args["body"], headers=args["headers"], key=args["key"])
        except (WebhookVerificationError, ValueError) as e:
            out({"refused": f"{type(e).__name__}: {e}"})
            return
        out({"ok": event})
        return

    if command in ("webhooks_list", "webhooks_list_deliveries"):
        params = dict(args.get("params") or {})
        ids, items = [], []
        try:
            if command == "webhooks_list":
                pager = client.webhooks.list(**params)
            else:
                pager = client.webhooks.list_deliveries(args["id"], **params)
            for item in pager:
                ids.append(item.id)
                items.append(json.loads(item.json()))
        except (ApiError, ParsingError) as e:
            out({"ids": ids, "items": items, "requests": requests, "error": error_json(e)})
            return
        out({"ids": ids, "items": items, "requests": requests})
        return

    if command.startswith("webhooks_"):
        raw = client.webhooks.with_raw_response  # what client.webhooks.<op>() calls
        body = dict(args.get("body") or {})
        try:
            if command == "webhooks_create":
                resp = raw.create(**body)
            elif command == "webhooks_retrieve":
                resp = raw.retrieve(args["id"])
            elif command == "webhooks_update":
                resp = raw.update(args["id"], **body)
            elif command == "webhooks_delete":
                resp = raw.delete(args["id"])
            elif command == "webhooks_replay_delivery":
                resp = raw.replay_delivery(args["id"], args["delivery_id"], **body)
            elif command == "webhooks_replay":
                resp = raw.replay(args["id"], **body)
            elif command == "webhooks_test":
                resp = raw.test(args["id"], event=args["event"])
            else:
                raise SystemExit(f"unknown command {command!r}")
        except (ApiError, ParsingError) as e:
            out({"error": error_json(e), "requests": requests})
            return
        out({
            "ok": resp.response.json(),
            "parsed": json.loads(resp.data.json()),
            "status": resp.status_code,
            "requests": requests,
        })
        return

    if command in ("export_create", "export_retrieve", "export_list"):
        raw = client.exports.with_raw_response  # what client.exports.<op>() calls
        try:
            if command == "export_create":
                body = dict(args.get("body") or {})
                if "company_id" in body:
                    body["account_id"] = body.pop("company_id")
                resp = raw.create(**body)
            elif command == "export_retrieve":
                resp = raw.retrieve(args["id"])
            else:
                params = dict(args.get("params") or {})
                if "company_id" in params:
                    params["account_id"] = params.pop("company_id")
                resp = raw.list(**params)
        except (ApiError, ParsingError) as e:
            out({"error": error_json(e), "requests": requests})
            return
        out({
            "ok": resp.response.json(),
            "parsed": json.loads(resp.data.json()),
            "status": resp.status_code,
            "requests": requests,
        })
        return

    if command in ("stats_list", "stats"):
        raw = client.stats.time_series.with_raw_response  # what client.stats.time_series.<op>() calls
        try:
            if command == "stats_list":
                resp = raw.list()
            else:
                params = dict(args.get("params") or {})
                params["from_"] = params.pop("from")
                resp = raw.retrieve(args["metric"], **params)
        except (ApiError, ParsingError) as e:
            out({"error": error_json(e), "requests": requests})
            return
        out({
            "ok": resp.response.json(),
            "parsed": json.loads(resp.data.json()),
            "status": resp.status_code,
            "requests": requests,
        })
        return

    if command in ("create", "retrieve", "update"):
        raw = client.leads.with_raw_response  # what client.leads.<op>() calls, returning the HttpResponse too
        try:
            if command == "create":
                body = dict(args.get("body") or {})
                if "company_id" in body:
                    body["account_id"] = body.pop("company_id")
                ro = None
                if args.get("idempotency_key") is not None:
                    ro = {"additional_headers": {"Idempotency-Key": args["idempotency_key"]}}
                resp = raw.create(**body, request_options=ro)
            elif command == "retrieve":
                resp = raw.retrieve(args["id"])
            else:
                resp = raw.update(args["id"], **dict(args.get("body") or {}))
        except (ApiError, ParsingError) as e:
            out({"error": error_json(e), "requests": requests})
            return
        out({
            "ok": resp.response.json(),
            "parsed": json.loads(resp.data.json()),
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
