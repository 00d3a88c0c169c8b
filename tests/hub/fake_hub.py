"""A loopback imitation of the Hugging Face hub's endpoints that huggingface_hub's downloads and
file metadata use: ``HEAD``/``GET /{repo}/resolve/{rev}/{file}`` (commit, ETag, size headers) and
``POST /api/models/{repo}/paths-info/{rev}`` (the LFS sha256). ``tamper`` changes the bytes served
while the hub's metadata keeps the sha256 of the published file, as a corrupted transfer would."""
import hashlib
import http.server
import json
import threading

COMMIT = "fedcba9876543210fedcba9876543210fedcba98"  # the first commit; each publish makes a new one


class FakeHub:
    """Serves published files; ``hits[(method, path)]`` counts requests."""

    def __init__(self):
        self.files, self.hits = {}, {}  # files[(repo, filename)] = {"data", "served", "lfs"}
        self.commit = None
        hub = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def _count(self, method):
                key = (method, self.path.split("?")[0])
                hub.hits[key] = hub.hits.get(key, 0) + 1

            def _resolve(self, body: bool):  # /org/name/resolve/<rev>/<file>
                parts = self.path.split("?")[0].lstrip("/").split("/")
                entry = hub.files.get(("/".join(parts[:2]), "/".join(parts[4:]))) if len(parts) > 4 else None
                if parts[2:3] != ["resolve"] or entry is None:
                    self.send_response(404)
                    self.send_header("X-Error-Code", "EntryNotFound")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                served = entry["served"]
                self.send_response(200)
                self.send_header("X-Repo-Commit", hub.commit)
                self.send_header("ETag", f'"{hub.etag(entry)}"')
                if entry["lfs"]:
                    self.send_header("X-Linked-Etag", f'"{hub.etag(entry)}"')
                    self.send_header("X-Linked-Size", str(len(entry["data"])))
                self.send_header("Content-Length", str(len(served)))
                self.end_headers()
                if body:
                    self.wfile.write(served)

            def do_HEAD(self):  # noqa: N802
                self._count("HEAD")
                self._resolve(body=False)

            def do_GET(self):  # noqa: N802
                self._count("GET")
                self._resolve(body=True)

            def do_POST(self):  # noqa: N802  /api/models/org/name/paths-info/<rev>
                self._count("POST")
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                parts = self.path.split("?")[0].lstrip("/").split("/")
                if parts[:2] != ["api", "models"] or parts[4:5] != ["paths-info"]:
                    self.send_error(404)
                    return
                repo = "/".join(parts[2:4])
                infos = [hub.path_info(fn, e) for (r, fn), e in hub.files.items() if r == repo]
                body = json.dumps(infos).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()
        self.endpoint = f"http://127.0.0.1:{self.httpd.server_address[1]}"

    @staticmethod
    def git_sha1(data: bytes) -> str:
        return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()

    def etag(self, entry) -> str:
        return hashlib.sha256(entry["data"]).hexdigest() if entry["lfs"] else self.git_sha1(entry["data"])

    def path_info(self, filename, entry):
        info = {"type": "file", "path": filename, "size": len(entry["data"]), "oid": self.git_sha1(entry["data"])}
        if entry["lfs"]:
            info["lfs"] = {"oid": hashlib.sha256(entry["data"]).hexdigest(), "size": len(entry["data"]),
                           "pointerSize": 134}
        return info

    def publish(self, repo: str, filename: str, data: bytes, lfs: bool = True) -> None:
        """Put ``data`` on the hub as ``repo/filename`` (an LFS file: its sha256 is in the metadata), in a
        new commit (``COMMIT`` the first time)."""
        self.files[(repo, filename)] = {"data": data, "served": data, "lfs": lfs}
        self.commit = COMMIT if self.commit is None else hashlib.sha1(self.commit.encode()).hexdigest()

    def tamper(self, repo: str, filename: str, served: bytes) -> None:
        """Serve ``served`` instead of the published bytes; the metadata still describes the published file."""
        self.files[(repo, filename)]["served"] = served

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()
