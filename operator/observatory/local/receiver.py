"""The local stand-in for Slack, PagerDuty, e-mail and webhooks: records what Alertmanager sends.

HTTP `POST /<kind>/<namespace>/<object>/<receiver>` takes Slack, PagerDuty Events v2 and webhook
payloads; a minimal SMTP server takes e-mail. Every notification is appended to a JSON-lines log
and served back at `GET /notifications`.
"""

from __future__ import annotations

import email
import email.policy
import json
import socketserver
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from .amconfig import RECEIVER_HEADER


@dataclass(frozen=True)
class Notification:
    kind: str  # slack | pagerduty | webhook | email
    receiver: str  # namespace/object/receiver of the AlertmanagerConfig
    status: str  # firing | resolved
    title: str  # Alertmanager's subject: [FIRING:n] <group label values> ...
    received_at: float

    def mentions(self, alertname: str, severity: str = "") -> bool:
        """The title names the alert (and the severity: routes group by alertname and severity)."""
        words = self.title.replace("(", " ").replace(")", " ").split()
        return alertname in words and (not severity or severity in words)


def _webhook_title(payload: dict[str, Any]) -> str:
    status = payload.get("status", "firing")
    firing = sum(1 for a in payload.get("alerts", []) if a.get("status") == "firing")
    values = " ".join(v for _, v in sorted((payload.get("groupLabels") or {}).items()))
    return f"[{status.upper()}{':' + str(firing) if status == 'firing' else ''}] {values}"


def parse_http(kind: str, payload: dict[str, Any]) -> tuple[str, str]:
    """(status, title) of a Slack, PagerDuty or webhook payload as Alertmanager sends it."""
    if kind == "slack":
        attachment = (payload.get("attachments") or [{}])[0]
        title = attachment.get("title") or payload.get("text", "")
        return ("resolved" if title.startswith("[RESOLVED") else "firing"), title
    if kind == "pagerduty":
        title = (payload.get("payload") or {}).get("summary") or payload.get("description", "")
        return ("resolved" if payload.get("event_action") == "resolve" else "firing"), title
    return payload.get("status", "firing"), _webhook_title(payload)


class LocalReceiver:
    """HTTP and SMTP listeners on 127.0.0.1 (free ports), recording into `log_path`."""

    def __init__(self, log_path: Path, echo: Callable[[Notification], None] | None = None):
        self.log_path = log_path
        self.echo = echo
        self._lock = threading.Lock()
        self._notifications: list[Notification] = []
        log_path.parent.mkdir(parents=True, exist_ok=True)
        receiver = self

        class HTTPHandler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                parts = self.path.strip("/").split("/", 1)
                length = int(self.headers.get("Content-Length") or 0)
                try:
                    payload = json.loads(self.rfile.read(length) or b"{}")
                except ValueError:
                    self.send_error(400, "body is not JSON")
                    return
                if len(parts) != 2 or parts[0] not in ("slack", "pagerduty", "webhook"):
                    self.send_error(404, "POST /slack|pagerduty|webhook/<namespace>/<object>/<receiver>")
                    return
                status, title = parse_http(parts[0], payload)
                receiver.record(Notification(parts[0], parts[1], status, title, time.time()))
                # PagerDuty answers 202 with a JSON body; Slack "ok"; webhooks anything 2xx.
                body = b'{"status":"success"}' if parts[0] == "pagerduty" else b"ok"
                self.send_response(202 if parts[0] == "pagerduty" else 200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self) -> None:
                if self.path.rstrip("/") != "/notifications":
                    self.send_error(404, "GET /notifications")
                    return
                body = json.dumps([asdict(n) for n in receiver.notifications()]).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:  # keep stdout for the notifications
                pass

        class SMTPHandler(socketserver.StreamRequestHandler):
            def reply(self, line: str) -> None:
                self.wfile.write(line.encode() + b"\r\n")

            def handle(self) -> None:
                self.reply("220 observatory-local-receiver ESMTP")
                while line := self.rfile.readline():
                    verb = line.decode(errors="replace").strip().split(" ", 1)[0].upper()
                    if verb in ("EHLO", "HELO"):
                        self.reply("250 observatory-local-receiver")
                    elif verb == "DATA":
                        self.reply("354 end with <CRLF>.<CRLF>")
                        lines = []
                        while (data := self.rfile.readline()) not in (b".\r\n", b""):
                            lines.append(data[1:] if data.startswith(b"..") else data)  # undo dot-stuffing
                        receiver.record_mail(b"".join(lines))
                        self.reply("250 queued")
                    elif verb == "QUIT":
                        self.reply("221 bye")
                        return
                    else:  # MAIL, RCPT, RSET, NOOP
                        self.reply("250 ok")

        self._http = ThreadingHTTPServer(("127.0.0.1", 0), HTTPHandler)
        self._smtp = socketserver.ThreadingTCPServer(("127.0.0.1", 0), SMTPHandler)
        for server in (self._http, self._smtp):
            server.daemon_threads = True
        self._threads: list[threading.Thread] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._http.server_address[1]}"

    @property
    def smtp_hostport(self) -> str:
        return f"127.0.0.1:{self._smtp.server_address[1]}"

    @property
    def ports(self) -> list[int]:
        return [self._http.server_address[1], self._smtp.server_address[1]]

    def start(self) -> None:
        for server in (self._http, self._smtp):
            thread = threading.Thread(target=server.serve_forever, name=f"receiver-{type(server).__name__}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self) -> None:
        for server in (self._http, self._smtp):
            if self._threads:
                server.shutdown()
            server.server_close()
        for thread in self._threads:
            thread.join(timeout=5)
        self._threads.clear()

    def record(self, notification: Notification) -> None:
        with self._lock:
            self._notifications.append(notification)
            with self.log_path.open("a") as log:
                log.write(json.dumps(asdict(notification)) + "\n")
        if self.echo:
            self.echo(notification)

    def record_mail(self, data: bytes) -> None:
        message = email.message_from_bytes(data, policy=email.policy.default)
        title = str(message.get("Subject", ""))
        status = "resolved" if title.startswith("[RESOLVED") else "firing"
        self.record(Notification("email", str(message.get(RECEIVER_HEADER, "")), status, title, time.time()))

    def notifications(self) -> list[Notification]:
        with self._lock:
            return list(self._notifications)


def read_notifications(url: str) -> list[Notification]:
    """The notifications a running receiver recorded (for notebooks and other processes)."""
    from .net import get_json

    return [Notification(**n) for n in get_json(f"{url.rstrip('/')}/notifications")]
