"""Home Assistant's MQTT discovery (`--ha-discovery`): retained config messages under `homeassistant/` that make
the entities by themselves, each one a device per camera, unavailable whenever `<prefix>/available` says
`offline`.

- a sensor per class: the objects of that class in view now (`<prefix>/<camera>/<class>`);
- a sensor per line and direction: its crossings so far, read from the retained `<prefix>/<camera>/counts`;
- a camera per class on its retained best picture (`<prefix>/<camera>/<class>/snapshot`), and with
  `--snapshots` one per camera on the latest event's picture (`<prefix>/<camera>/snapshot`).

The keys are those Home Assistant documents for MQTT sensors and cameras
(https://www.home-assistant.io/integrations/sensor.mqtt/, .../camera.mqtt/), with the `origin` its discovery
section asks for (https://www.home-assistant.io/integrations/mqtt/#discovery-payload).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from . import __version__
from .inview import level

PREFIX = "homeassistant"  # Home Assistant's default discovery prefix


@dataclass(frozen=True)
class Discovery:
    """What one camera announces: its lines (the classes come as they are known)."""

    lines: tuple[str, ...] = ()
    snapshots: bool = False  # --snapshots: the events' pictures on `<camera>/snapshot`


def object_id(*parts: str) -> str:
    """An id of the characters discovery topics allow (`[a-zA-Z0-9_-]`)."""
    return re.sub(r"[^a-zA-Z0-9_-]", "_", "_".join(parts))


class Announcer:
    """The config messages of one camera under one broker prefix, each `(topic, JSON bytes)`."""

    def __init__(self, prefix: str, camera: str, discovery: Discovery) -> None:
        self.prefix, self.camera, self.discovery = prefix, camera, discovery
        self._base = f"{prefix}/{level(camera)}"
        self._device = {"identifiers": [object_id("vidpipe", prefix, camera)], "name": f"vidpipe {camera}",
                        "manufacturer": "vidpipe", "model": "object detection and tracking",
                        "sw_version": __version__}

    def start(self) -> list[tuple[str, bytes]]:
        """The camera's own entities: its lines' totals, and its events' picture with --snapshots."""
        out = [self._config("sensor", object_id(line, direction), f"{line} {direction}", {
            "state_topic": f"{self._base}/counts", "state_class": "total_increasing",
            "value_template": f"{{{{ value_json['lines'][{json.dumps(line)}]['{direction}'] }}}}"})
            for line in self.discovery.lines for direction in ("in", "out")]
        if self.discovery.snapshots:
            out.append(self._config("camera", "snapshot", "latest event", {"topic": f"{self._base}/snapshot"}))
        return out

    def classes(self, names: list[str]) -> list[tuple[str, bytes]]:
        """Each class's sensor (objects in view) and camera (its best recent picture)."""
        out = []
        for name in names:
            out.append(self._config("sensor", object_id(name), f"{name} in view", {
                "state_topic": f"{self._base}/{level(name)}", "state_class": "measurement",
                "unit_of_measurement": "objects"}))
            out.append(self._config("camera", object_id(name, "snapshot"), f"{name} snapshot",
                                    {"topic": f"{self._base}/{level(name)}/snapshot"}))
        return out

    def _config(self, component: str, what: str, name: str, fields: dict) -> tuple[str, bytes]:
        unique = object_id("vidpipe", self.prefix, self.camera, what)
        payload = {"name": name, "unique_id": unique, "availability_topic": f"{self.prefix}/available",
                   "device": self._device, "origin": {"name": "vidpipe", "sw_version": __version__}, **fields}
        return f"{PREFIX}/{component}/{unique}/config", json.dumps(payload).encode()
