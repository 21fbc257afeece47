"""Stand-ins for OpenAI (GET /v1/models, POST /v1/responses with structured output) and Twilio (account fetch, the account's numbers, placing a call)
for the desktop end-to-end test.

Accepts exactly one OpenAI key and one Twilio SID/token pair and answers everything else the way the
real services do (401 with their error shapes). Prints the port on stdout, then serves until killed.

    python3 fake_providers.py --openai-key sk-… --account-sid AC… --auth-token …
"""

import argparse
import base64
import json
import sys
import uuid
from urllib.parse import parse_qsl
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def sample(schema: dict):
    """A value that fits `schema` (the strict subset structured outputs allow)."""
    if "enum" in schema:
        return schema["enum"][0]
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if kind == "object":
        return {name: sample(sub) for name, sub in schema.get("properties", {}).items()}
    return {"string": "ORD-1001", "number": 1.5, "integer": 2, "boolean": True, "null": None}.get(kind)


def structured_answer(request: dict) -> dict:
    """A Responses API answer whose output text fits the request's JSON schema."""
    schema = request["text"]["format"]["schema"]
    answer = sample(schema)
    if isinstance(answer, dict) and "summary" in answer:
        answer["summary"] = "The caller asked about an order; the agent answered and the call ended politely."
    text = json.dumps(answer)
    return {
        "id": "resp_" + uuid.uuid4().hex, "object": "response", "created_at": 1764900000, "status": "completed",
        "model": request.get("model"), "error": None, "incomplete_details": None,
        "output": [{"type": "message", "id": "msg_" + uuid.uuid4().hex, "status": "completed", "role": "assistant",
                    "content": [{"type": "output_text", "text": text, "annotations": []}]}],
        "usage": {"input_tokens": 420, "input_tokens_details": {"cached_tokens": 0}, "output_tokens": 60,
                  "output_tokens_details": {"reasoning_tokens": 0}, "total_tokens": 480},
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--openai-key", required=True)
    parser.add_argument("--account-sid", required=True)
    parser.add_argument("--auth-token", required=True)
    args = parser.parse_args()
    last_call: dict = {}
    # The last request to the HTTP tool below: its signature header and raw body, for the test to verify.
    last_tool: dict = {}
    basic = "Basic " + base64.b64encode(f"{args.account_sid}:{args.auth_token}".encode()).decode()

    account = f"/2010-04-01/Accounts/{args.account_sid}"
    number = {"sid": "PN" + "0" * 32, "phone_number": "+15005550006", "friendly_name": "E2E line",
              "voice_url": None}

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, fmt, *a):  # keep the test output clean (and keys out of it)
            pass

        def reply(self, status, body):
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self):
            auth = self.headers.get("Authorization", "")
            if self.path == "/_test/last-call":  # for the test: the form of the last call created
                return self.reply(200, last_call)
            if self.path == "/_test/last-tool":
                return self.reply(200, last_tool)
            if self.path == "/v1/models":
                if auth == f"Bearer {args.openai_key}":
                    models = ["gpt-4o", "gpt-realtime-2.1", "gpt-realtime-mini", "gpt-realtime-2099-01-01"]
                    return self.reply(200, {"object": "list", "data": [{"id": m, "object": "model"} for m in models]})
                return self.reply(401, {"error": {"message": "Incorrect API key provided.", "code": "invalid_api_key"}})
            if self.path == f"/2010-04-01/Accounts/{args.account_sid}.json":
                if auth == basic:
                    return self.reply(200, {"sid": args.account_sid, "friendly_name": "E2E test account",
                                            "status": "active", "type": "Full"})
                return self.reply(401, {"code": 20003, "message": "Authenticate", "status": 401})
            if self.path.startswith(f"{account}/IncomingPhoneNumbers.json"):
                if auth == basic:
                    return self.reply(200, {"incoming_phone_numbers": [number], "next_page_uri": None})
                return self.reply(401, {"code": 20003, "message": "Authenticate", "status": 401})
            return self.reply(404, {"code": 20404, "message": "The requested resource was not found", "status": 404})

        def do_POST(self):
            auth = self.headers.get("Authorization", "")
            length = int(self.headers.get("Content-Length", "0"))
            raw = self.rfile.read(length)
            if self.path == "/tools/lookup_order":  # an HTTP tool of the session (issue 14)
                last_tool.clear()
                last_tool.update({"signature": self.headers.get("X-Verbio-Signature"), "body": raw.decode()})
                order = json.loads(raw).get("arguments", {}).get("order")
                return self.reply(200, {"order": order, "status": "shipped", "arrives": "Thursday"})
            if self.path == "/v1/responses":  # the post-call summary (issue 15)
                if auth != f"Bearer {args.openai_key}":
                    return self.reply(401, {"error": {"message": "Incorrect API key provided.",
                                                      "type": "invalid_request_error", "code": "invalid_api_key"}})
                return self.reply(200, structured_answer(json.loads(raw)))
            form = dict(parse_qsl(raw.decode()))
            if self.path == f"{account}/Calls.json":
                if auth != basic:
                    return self.reply(401, {"code": 20003, "message": "Authenticate", "status": 401})
                last_call.clear()
                last_call.update(form)
                return self.reply(201, {"sid": "CA" + uuid.uuid4().hex, "status": "queued", "direction": "outbound-api",
                                        "from": form.get("From"), "to": form.get("To")})
            if self.path.startswith(f"{account}/Calls/CA") and self.path.endswith(".json"):
                if auth != basic:
                    return self.reply(401, {"code": 20003, "message": "Authenticate", "status": 401})
                sid = self.path.rsplit("/", 1)[1][: -len(".json")]
                return self.reply(200, {"sid": sid, "status": form.get("Status", "in-progress")})
            return self.reply(404, {"code": 20404, "message": "The requested resource was not found", "status": 404})

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    print(server.server_address[1], flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    sys.exit(0)


if __name__ == "__main__":
    main()
