#!/usr/bin/env node
// Drives the official, unmodified npm `@whop/sdk` (pinned in package.json) against a leads server.
//
// Usage:  WHOP_API_KEY=... WHOP_BASE_URL=http://127.0.0.1:PORT/api/v1 \
//           node driver.mjs <command> '<json args>'
//
// Commands and their JSON args:
//   list     {"params": {...LeadListParams, e.g. company_id, first, product_ids...}, "max_items"?: N}
//            -> {"ids": [...], "emails": [...], "requests": [...]}
//               (plus "error" if the walk failed part-way)
//   create   {"body": {...}, "idempotency_key"?: "..."}
//   retrieve {"id": "lead_..."}
//   update   {"id": "lead_...", "body": {...}}
//            -> {"ok": <lead>, "requests": [...]}  or  {"error": {...}, "requests": [...]}
//   webhooks_create {"body": {...}}      client.webhooks.create(body), answered as create
//   unwrap   {"body": "<raw body>", "headers": {...}, "key": "ws_..."}
//            client.webhooks.unwrap(body, {headers, key: btoa(key)})
//            -> {"ok": <event>} or {"refused": "<why>"}
//
// Optional in every args object: "max_retries" (default 0 here; the SDK default is 2),
// "timeout_ms" (request timeout).
//
// "error" is {"class": err.constructor.name, "status": err.status, "body": err.error,
//             "message": err.message, "headers": {...response headers}}.
// "requests" lists every HTTP request the SDK made, as {"method", "url"} with url being
// path + query string exactly as sent (relative to the server origin).
//
// Exit code 0 whenever the JSON line was printed (API errors included); 2 on a crash
// (bad usage, connection failure, anything that is not an HTTP status error).

import Whop, { APIError } from '@whop/sdk';

function out(obj) {
  process.stdout.write(JSON.stringify(obj) + '\n');
}

function errorJson(err) {
  let headers;
  try {
    headers = err.headers ? Object.fromEntries(err.headers.entries()) : undefined;
  } catch {
    headers = undefined;
  }
  return {
    class: err.constructor.name,
    status: err.status ?? null,
    body: err.error ?? null,
    message: err.message,
    headers: headers ?? null,
  };
}

// An HTTP status error reported by the SDK (not a connection failure or a bug).
function isStatusError(err) {
  return err instanceof APIError && typeof err.status === 'number';
}

async function main() {
  const command = process.argv[2];
  const args = process.argv[3] ? JSON.parse(process.argv[3]) : {};
  if (!command) throw new Error('usage: driver.mjs <list|create|retrieve|update> <json args>');

  const requests = [];
  const recordingFetch = async (url, init) => {
    const u = new URL(typeof url === 'string' ? url : url.url ?? String(url));
    requests.push({ method: (init?.method ?? 'GET').toUpperCase(), url: u.pathname + u.search });
    return globalThis.fetch(url, init);
  };

  const opts = {
    // apiKey and baseURL come from WHOP_API_KEY / WHOP_BASE_URL, as the SDK itself reads them.
    maxRetries: args.max_retries ?? 0,
    fetch: recordingFetch,
  };
  if (args.timeout_ms !== undefined) opts.timeout = args.timeout_ms;
  const client = new Whop(opts);

  switch (command) {
    case 'list': {
      const params = args.params ?? {};
      const maxItems = args.max_items ?? 100000;
      const ids = [];
      const emails = [];
      try {
        for await (const lead of client.leads.list(params)) {
          ids.push(lead.id);
          emails.push(lead.user?.email ?? null);
          if (ids.length > maxItems) {
            out({
              ids,
              emails,
              requests,
              error: { class: 'DriverItemLimitExceeded', status: null, body: null, message: `more than ${maxItems} items yielded` },
            });
            return;
          }
        }
      } catch (err) {
        if (!isStatusError(err)) throw err;
        out({ ids, emails, requests, error: errorJson(err) });
        return;
      }
      out({ ids, emails, requests });
      return;
    }
    case 'create':
    case 'retrieve':
    case 'update': {
      let promise;
      if (command === 'create') {
        const reqOpts = {};
        if (args.idempotency_key !== undefined && args.idempotency_key !== null) {
          reqOpts.headers = { 'Idempotency-Key': args.idempotency_key };
        }
        promise = client.leads.create(args.body ?? {}, reqOpts);
      } else if (command === 'retrieve') {
        promise = client.leads.retrieve(args.id);
      } else {
        promise = client.leads.update(args.id, args.body ?? {});
      }
      try {
        const { data, response } = await promise.withResponse();
        out({ ok: data, status: response.status, requests });
      } catch (err) {
        if (!isStatusError(err)) throw err;
        out({ error: errorJson(err), requests });
      }
      return;
    }
    case 'webhooks_create': {
      try {
        const { data, response } = await client.webhooks.create(args.body ?? {}).withResponse();
        out({ ok: data, status: response.status, requests });
      } catch (err) {
        if (!isStatusError(err)) throw err;
        out({ error: errorJson(err), requests });
      }
      return;
    }
    case 'unwrap': {
      // The SDK hands the key to standardwebhooks, which base64-decodes it: the secret's
      // literal bytes, as Whop signs with, are its base64 encoding.
      try {
        const event = client.webhooks.unwrap(args.body, { headers: args.headers, key: btoa(args.key) });
        out({ ok: event });
      } catch (err) {
        out({ refused: `${err.constructor.name}: ${err.message}` });
      }
      return;
    }
    default:
      throw new Error(`unknown command ${JSON.stringify(command)}`);
  }
}

main().then(
  () => process.exit(0),
  (err) => {
    process.stderr.write(`driver crashed: ${err && err.stack ? err.stack : String(err)}\n`);
    process.exit(2);
  },
);
