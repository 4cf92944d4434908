"""A real SMTP server (aiosmtpd) and a real HTTP endpoint for userd's delivery tests:
every e-mail received and every SMS webhook call is written to standard output as one
JSON line, as soon as it arrives.

    notify_sink.py --smtp-port N --http-port M

Port 0 picks a free one. The first line says where it listens:
{"listening": {"smtp": N, "http": M}}. Stops on SIGTERM or when standard input closes.
Needs `aiosmtpd` (pip install -r scripts/requirements-api-test.txt).
"""

import argparse
import json
import signal
import socket
import sys
import threading
from email import message_from_bytes, policy
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from aiosmtpd.controller import Controller

lock = threading.Lock()


def emit(record):
    with lock:
        sys.stdout.write(json.dumps(record) + "\n")
        sys.stdout.flush()


class MailHandler:
    async def handle_DATA(self, server, session, envelope):
        mail = message_from_bytes(envelope.original_content, policy=policy.default)
        body = mail.get_body(preferencelist=("plain",))
        emit(
            {
                "kind": "email",
                "from": envelope.mail_from,
                "to": envelope.rcpt_tos,
                "subject": str(mail["subject"]),
                "text": body.get_content() if body else "",
            }
        )
        return "250 OK"


class SmsHandler(BaseHTTPRequestHandler):
    def do_POST(self):
        length = int(self.headers.get("content-length", "0"))
        payload = json.loads(self.rfile.read(length) or b"{}")
        emit({"kind": "sms", "path": self.path, "to": payload.get("to"), "text": payload.get("text")})
        self.send_response(200)
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--smtp-port", type=int, default=0)
    parser.add_argument("--http-port", type=int, default=0)
    args = parser.parse_args()

    smtp_port = args.smtp_port or free_port()
    controller = Controller(MailHandler(), hostname="127.0.0.1", port=smtp_port)
    controller.start()
    http = ThreadingHTTPServer(("127.0.0.1", args.http_port), SmsHandler)
    threading.Thread(target=http.serve_forever, daemon=True).start()
    emit({"listening": {"smtp": smtp_port, "http": http.server_address[1]}})

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    # The test that started it may die without a signal: its end closes standard input.
    threading.Thread(target=lambda: (sys.stdin.read(), stop.set()), daemon=True).start()
    stop.wait()
    http.shutdown()
    controller.stop()


if __name__ == "__main__":
    main()
