"""A stand-in app for the local backend's tests (until the reference app is used).

Listens on 127.0.0.1:$PORT. GET /env answers the environment the backend rendered,
GET /health answers 200, or $HEALTH_STATUS when set (to test a health check that never
passes). With $FAIL_AT_START it prints a message to stderr and exits 3 at once; with
$CRASH_AFTER (seconds) it says so on stderr and exits 9 that long after starting, mid-load.
"""
import http.server
import json
import os
import sys
import threading

if os.environ.get("FAIL_AT_START"):
    print("testapp: " + os.environ["FAIL_AT_START"], file=sys.stderr, flush=True)
    sys.exit(3)

if os.environ.get("CRASH_AFTER"):
    def crash():
        print("testapp: crashing on purpose", file=sys.stderr, flush=True)
        os._exit(9)

    threading.Timer(float(os.environ["CRASH_AFTER"]), crash).start()


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        status = 200
        if self.path == "/env":
            body = {k: os.environ.get(k) for k in ("DATABASE_URL", "REDIS_URL", "LISTEN_ADDR", "PORT", "GITHUB_TOKEN")}
            body["argv"] = sys.argv[1:]
        else:
            status = int(os.environ.get("HEALTH_STATUS", "200"))
            body = {"status": "ok" if status == 200 else "failing"}
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, fmt, *args):
        print("testapp: " + fmt % args, file=sys.stderr, flush=True)


print("testapp: listening on " + os.environ["LISTEN_ADDR"], file=sys.stderr, flush=True)
http.server.HTTPServer(("127.0.0.1", int(os.environ["PORT"])), Handler).serve_forever()
