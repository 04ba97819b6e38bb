"""Headless Chromium, driven over its DevTools protocol on a pipe.

Used by layout.py (does every page fit a phone?) and screenshots.py. The
browser is started with `--remote-debugging-pipe`: it reads commands on its
fd 3 and writes answers and events on its fd 4, JSON messages each ended
by a NUL byte. A headless window cannot be narrower than 500 px, so the
page's size is set by device emulation instead (as DevTools' phone view
does), which is also what makes `<meta name="viewport">` count.
"""

import fcntl
import json
import os
import select
import shutil
import subprocess
import tempfile
import time

NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


def find():
    for name in NAMES:
        path = shutil.which(name)
        if path:
            return path
    return None


class Error(Exception):
    pass


class Browser:
    """One headless browser with one tab; use it in a `with` block."""

    def __init__(self, path, timeout=60):
        self.timeout = timeout
        self.profile = tempfile.TemporaryDirectory(prefix="book-chromium-")
        commands_r, commands_w = os.pipe()
        answers_r, answers_w = os.pipe()
        # The child's ends, moved out of the way of 3 and 4 first.
        child_r = fcntl.fcntl(commands_r, fcntl.F_DUPFD, 10)
        child_w = fcntl.fcntl(answers_w, fcntl.F_DUPFD, 10)
        os.close(commands_r)
        os.close(answers_w)

        def plumb():
            os.dup2(child_r, 3)
            os.dup2(child_w, 4)

        self.proc = subprocess.Popen(
            [
                path,
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--disable-extensions",
                "--mute-audio",
                "--hide-scrollbars",
                f"--user-data-dir={self.profile.name}",
                "--remote-debugging-pipe",
                "about:blank",
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            pass_fds=(3, 4),
            preexec_fn=plumb,
        )
        os.close(child_r)
        os.close(child_w)
        self.out = commands_w
        self.inp = answers_r
        self.buffer = b""
        self.next_id = 0
        self.events = []
        self.session = None
        try:
            targets = self.call("Target.getTargets")["targetInfos"]
            pages = [t for t in targets if t["type"] == "page"]
            if pages:
                target = pages[0]["targetId"]
            else:
                target = self.call("Target.createTarget", url="about:blank")["targetId"]
            self.session = self.call(
                "Target.attachToTarget", targetId=target, flatten=True
            )["sessionId"]
            self.call("Page.enable", session=True)
            self.call("Runtime.enable", session=True)
        except BaseException:
            self.close()
            raise

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        if self.proc.poll() is None:
            try:
                self.send("Browser.close")
                self.proc.wait(timeout=10)
            except (Error, OSError, subprocess.TimeoutExpired):
                self.proc.kill()
                self.proc.wait()
        for fd in (self.out, self.inp):
            try:
                os.close(fd)
            except OSError:
                pass
        if self.proc.stderr:
            self.proc.stderr.close()
        self.profile.cleanup()

    def send(self, method, session=False, **params):
        self.next_id += 1
        message = {"id": self.next_id, "method": method, "params": params}
        if session:
            message["sessionId"] = self.session
        data = json.dumps(message).encode() + b"\0"
        while data:
            data = data[os.write(self.out, data):]
        return self.next_id

    def receive(self, deadline):
        while b"\0" not in self.buffer:
            left = deadline - time.monotonic()
            if left <= 0:
                raise Error(f"Chromium did not answer within {self.timeout} s")
            ready, _, _ = select.select([self.inp], [], [], left)
            if not ready:
                continue
            chunk = os.read(self.inp, 1 << 20)
            if not chunk:
                err = self.proc.stderr.read().decode(errors="replace") if self.proc.poll() is not None else ""
                raise Error(
                    "Chromium closed its pipe"
                    + (f": {err.strip().splitlines()[-1]}" if err.strip() else "")
                )
            self.buffer += chunk
        message, _, self.buffer = self.buffer.partition(b"\0")
        return json.loads(message)

    def call(self, method, session=False, **params):
        """Sends a command and returns its result; events met on the way
        are kept for `wait_event`."""
        wanted = self.send(method, session, **params)
        deadline = time.monotonic() + self.timeout
        while True:
            message = self.receive(deadline)
            if message.get("id") == wanted:
                if "error" in message:
                    raise Error(f"{method}: {message['error'].get('message')}")
                return message.get("result", {})
            if "method" in message:
                self.events.append(message)

    def wait_event(self, method):
        deadline = time.monotonic() + self.timeout
        while True:
            for i, event in enumerate(self.events):
                if event["method"] == method:
                    del self.events[i]
                    return event.get("params", {})
            self.events.append(self.receive(deadline))

    def open(self, url, width, height, scale=1):
        """Loads `url` in a viewport `width` x `height` CSS pixels."""
        self.call(
            "Emulation.setDeviceMetricsOverride",
            session=True,
            width=width,
            height=height,
            deviceScaleFactor=scale,
            mobile=width < 600,
        )
        self.events.clear()
        self.call("Page.navigate", session=True, url=url)
        self.wait_event("Page.loadEventFired")

    def evaluate(self, expression):
        """The value of a JavaScript expression (awaited if a promise)."""
        result = self.call(
            "Runtime.evaluate",
            session=True,
            expression=expression,
            awaitPromise=True,
            returnByValue=True,
        )
        if "exceptionDetails" in result:
            details = result["exceptionDetails"]
            text = details.get("exception", {}).get("description") or details.get("text")
            raise Error(f"script failed: {text}")
        return result["result"].get("value")

    def screenshot(self, width, height):
        """A PNG of the page's top `width` x `height` CSS pixels."""
        import base64

        data = self.call(
            "Page.captureScreenshot",
            session=True,
            format="png",
            captureBeyondViewport=True,
            clip={"x": 0, "y": 0, "width": width, "height": height, "scale": 1},
        )["data"]
        return base64.b64decode(data)
