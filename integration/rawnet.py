"""Network pieces for the tests that misbehave on purpose: a raw HTTP/2 client
(python3-h2 over a plain socket) that opens gRPC streams and never sends their
message, and a TCP proxy in front of a database that can be switched to
refuse (accept and close at once) or to stall (accept and never answer)."""
import select
import socket
import struct
import threading
import time

import h2.config
import h2.connection
import h2.events
import h2.settings


def grpc_frame(message):
    """A gRPC length-prefixed message (uncompressed)."""
    return b"\x00" + struct.pack(">I", len(message)) + message


class RawH2:
    """One HTTP/2 connection to a gRPC server, driven by hand. Every stream's
    response headers and trailers end up in `headers[stream]` (a dict), the time
    it ended in `ended[stream]`, and the server's first SETTINGS in `settings`."""

    def __init__(self, port, host="127.0.0.1", timeout=10):
        self.authority = "%s:%d" % (host, port)
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True,
                                                                         header_encoding="utf-8"))
        self.conn.initiate_connection()
        self.flush()
        self.settings = None
        self.headers, self.ended, self.reset, self.opened = {}, {}, {}, {}
        self.terminated = None
        self.ack = True  # False: like a client that stopped reading, no WINDOW_UPDATE is sent
        self.wait(lambda: self.settings is not None, timeout)
        if self.settings is None:
            raise AssertionError("no SETTINGS from the server within %s s" % timeout)

    def flush(self):
        data = self.conn.data_to_send()
        if data:
            self.sock.sendall(data)

    def open(self, path, metadata=(), message=None):
        """Starts a call: HEADERS only, or (message given) HEADERS and the one
        message with END_STREAM. Returns the stream id."""
        sid = self.conn.get_next_available_stream_id()
        headers = [(":method", "POST"), (":scheme", "http"), (":path", path),
                   (":authority", self.authority), ("content-type", "application/grpc"),
                   ("te", "trailers")] + list(metadata)
        self.conn.send_headers(sid, headers, end_stream=False)
        if message is not None:
            self.conn.send_data(sid, grpc_frame(message), end_stream=True)
        self.flush()
        self.opened[sid] = time.monotonic()
        return sid

    def pump(self, timeout):
        """Reads what the server sent within `timeout` seconds."""
        ready, _, _ = select.select([self.sock], [], [], max(timeout, 0))
        if not ready:
            return
        try:
            data = self.sock.recv(1 << 20)
        except OSError:
            data = b""
        if not data:
            if self.terminated is None:
                self.terminated = "socket closed"
            return
        for ev in self.conn.receive_data(data):
            sid = getattr(ev, "stream_id", None)
            if isinstance(ev, h2.events.RemoteSettingsChanged) and self.settings is None:
                self.settings = {int(k): v.new_value for k, v in ev.changed_settings.items()}
            elif isinstance(ev, (h2.events.ResponseReceived, h2.events.TrailersReceived)):
                self.headers.setdefault(sid, {}).update(dict(ev.headers))
            elif isinstance(ev, h2.events.DataReceived):
                if self.ack:
                    self.conn.acknowledge_received_data(ev.flow_controlled_length, sid)
            elif isinstance(ev, h2.events.StreamEnded):
                self.ended[sid] = time.monotonic()
            elif isinstance(ev, h2.events.StreamReset):
                self.reset[sid] = ev.error_code
                self.ended[sid] = time.monotonic()
            elif isinstance(ev, h2.events.ConnectionTerminated):
                self.terminated = "GOAWAY %s" % ev.error_code
        try:
            self.flush()
        except OSError:
            pass

    def wait(self, cond, timeout):
        """Pumps until cond() holds or the time is up; returns cond()."""
        end = time.monotonic() + timeout
        while not cond() and self.terminated is None:
            left = end - time.monotonic()
            if left <= 0:
                break
            self.pump(min(left, 0.2))
        return cond()

    def status(self, sid):
        """The grpc-status of a stream (int), or None while it has none."""
        s = self.headers.get(sid, {}).get("grpc-status")
        return None if s is None else int(s)

    def max_concurrent_streams(self):
        """The server's advertised SETTINGS_MAX_CONCURRENT_STREAMS, or None when not sent."""
        return self.settings.get(int(h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS))

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


class FaultProxy:
    """A TCP listener on a free loopback port. Modes: "forward" relays to
    `target` (host, port); "close" accepts and closes at once; "hang" accepts
    and never answers. `accepts` counts connections accepted since the last
    set_mode, which also drops every connection open so far."""

    def __init__(self, target=None, mode=None):
        self.target = target
        self.mode = mode or ("forward" if target else "hang")
        self.lock = threading.Lock()
        self.accepts = 0
        self.open = []
        self.listener = socket.socket()
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(1024)
        self.port = self.listener.getsockname()[1]
        self.closed = False
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def set_mode(self, mode):
        with self.lock:
            self.mode = mode
            self.accepts = 0
            dropped, self.open = self.open, []
        for s in dropped:
            self._shut(s)

    @staticmethod
    def _shut(s):
        try:
            s.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        s.close()

    def _accept(self):
        while not self.closed:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            with self.lock:
                self.accepts += 1
                mode = self.mode
                if mode != "close":
                    self.open.append(conn)
            if mode == "close":
                self._shut(conn)
            elif mode == "forward":
                try:
                    up = socket.create_connection(self.target, timeout=5)
                except OSError:
                    self._shut(conn)
                    continue
                with self.lock:
                    self.open.append(up)
                threading.Thread(target=self._relay, args=(conn, up), daemon=True).start()

    def _relay(self, a, b):
        peers = {a: b, b: a}
        try:
            while True:
                ready, _, _ = select.select([a, b], [], [], 1.0)
                if self.closed:
                    break
                for s in ready:
                    data = s.recv(65536)
                    if not data:
                        raise OSError("closed")
                    peers[s].sendall(data)
        except (OSError, ValueError):
            pass
        finally:
            self._shut(a)
            self._shut(b)

    def close(self):
        self.closed = True
        self.listener.close()
        self.set_mode("close")

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
