"""A fault-injecting HTTP reverse proxy for the S3 store's tests.

Usage: python3 fault_proxy.py UPSTREAM_PORT PORT_FILE

Listens on 127.0.0.1 on a free port (written to PORT_FILE once listening) and forwards
every request unchanged, Host header included so SigV4 signatures still verify, to
moto_server on 127.0.0.1:UPSTREAM_PORT. The test arms faults through a control path the
proxy answers itself:

  POST /__faults__  {"faults": ["503", "500", "drop", ...], "match": "PUT"}
      the next requests (whose "METHOD path?query" contains `match`, if given) meet
      these faults in order, one each, then requests pass again:
        "503"       503 SlowDown with S3's XML error body, not forwarded
        "500"       500 InternalError, not forwarded
        "drop"      the connection is closed without an answer, not forwarded
        "truncate"  forwarded; the answer's headers and half its body, then close
        "lose"      forwarded (S3 acts on it); the connection is closed before the
                    answer, as when a network fails after the server committed
        "404:NoSuchUpload" (any STATUS:Code) that S3 error, not forwarded
  GET  /__faults__  {"injected": N, "forwarded": M, "pending": [...]} as JSON

Bounded: it serves until killed by the test (by PID), and only on loopback.
"""

import http.client
import json
import os
import socket
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

UPSTREAM_PORT = int(sys.argv[1])
PORT_FILE = sys.argv[2]

lock = threading.Lock()
state = {"faults": [], "match": None, "injected": 0, "forwarded": 0}

HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade",
              "proxy-authorization", "proxy-authenticate"}


def next_fault(description):
    with lock:
        if not state["faults"]:
            return None
        if state["match"] and state["match"] not in description:
            return None
        state["injected"] += 1
        return state["faults"].pop(0)


class Proxy(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format, *args):
        pass

    def control(self, body):
        if self.command == "POST":
            armed = json.loads(body or b"{}")
            with lock:
                state["faults"] = list(armed.get("faults", []))
                state["match"] = armed.get("match")
                state["injected"] = 0
                state["forwarded"] = 0
        with lock:
            answer = json.dumps({"injected": state["injected"], "forwarded": state["forwarded"],
                                 "pending": state["faults"]}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def s3_error(self, status, code, message):
        body = ("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>%s</Code><Message>%s</Message>"
                "<RequestId>fault-proxy</RequestId></Error>" % (code, message)).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/xml")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def drop(self):
        self.close_connection = True
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def handle_any(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        if self.path.startswith("/__faults__"):
            return self.control(body)
        fault = next_fault("%s %s" % (self.command, self.path))
        if fault == "503":
            return self.s3_error(503, "SlowDown", "Please reduce your request rate.")
        if fault == "500":
            return self.s3_error(500, "InternalError", "We encountered an internal error. Please try again.")
        if fault == "drop":
            return self.drop()
        if fault and ":" in fault:
            status, code = fault.split(":", 1)
            return self.s3_error(int(status), code, "Injected by the fault proxy.")
        upstream = http.client.HTTPConnection("127.0.0.1", UPSTREAM_PORT, timeout=60)
        headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
        upstream.request(self.command, self.path, body=body if (body or length) else None, headers=headers)
        response = upstream.getresponse()
        payload = response.read()
        upstream.close()
        with lock:
            state["forwarded"] += 1
        if fault == "lose":
            return self.drop()
        self.send_response_only(response.status, response.reason)
        for name, value in response.getheaders():
            if name.lower() in HOP_BY_HOP or (name.lower() == "content-length" and self.command != "HEAD"):
                continue
            self.send_header(name, value)
        if self.command == "HEAD":
            self.end_headers()
            return
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if fault == "truncate":
            self.wfile.write(payload[: len(payload) // 2])
            self.wfile.flush()
            return self.drop()
        self.wfile.write(payload)

    do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = handle_any


class Server(ThreadingHTTPServer):
    daemon_threads = True


server = Server(("127.0.0.1", 0), Proxy)
with open(PORT_FILE + ".tmp", "w") as f:
    f.write(str(server.server_address[1]))
os.rename(PORT_FILE + ".tmp", PORT_FILE)
server.serve_forever()
