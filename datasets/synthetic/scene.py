"""Random indoor scenes: a box-shaped room with primitives resting on the floor.

World frame: x right, y up, z forward; the camera sits at the origin. Everything is drawn from a
``numpy.random.Generator`` so a scene is a pure function of its seed.
"""

from __future__ import annotations

import colorsys
from dataclasses import dataclass, field

import numpy as np

CLASS_NAMES = ("floor", "wall", "ceiling", "sphere", "box", "cylinder", "picture")
FLOOR, WALL, CEILING, SPHERE, BOX, CYLINDER, PICTURE = range(len(CLASS_NAMES))


@dataclass
class Primitive:
    """One object: its class, its geometry parameters and its surface colour."""

    cls: int
    center: np.ndarray  # world position (for boxes/cylinders: centre of the base footprint)
    size: np.ndarray  # sphere: (r,); box: half extents (ex, ey, ez); cylinder: (r, height)
    yaw: float
    color: np.ndarray  # RGB albedo in [0, 1]


@dataclass
class Room:
    """Room extents relative to the camera, the planes' colours and the camera orientation."""

    floor_y: float  # negative: camera height above the floor
    ceiling_y: float
    half_width: float
    back_z: float
    colors: dict[int, np.ndarray]
    pitch: float  # radians, negative looks down
    yaw: float
    light: np.ndarray  # point light position (world)
    pictures: list[np.ndarray] = field(default_factory=list)  # (x0, x1, y0, y1) on the back wall


def _random_color(rng: np.random.Generator) -> np.ndarray:
    hue, sat, val = rng.uniform(0, 1), rng.uniform(0.25, 0.8), rng.uniform(0.45, 0.95)
    return np.array(colorsys.hsv_to_rgb(hue, sat, val))


def sample_room(rng: np.random.Generator) -> Room:
    floor_y = -rng.uniform(1.2, 1.7)
    back_z = rng.uniform(4.5, 7.0)
    half_width = rng.uniform(2.0, 3.2)
    ceiling_y = floor_y + rng.uniform(2.6, 3.2)
    colors = {cls: _random_color(rng) for cls in (FLOOR, WALL, CEILING)}
    pictures = []
    for _ in range(rng.integers(0, 3)):
        x0 = rng.uniform(-half_width + 0.2, half_width - 1.2)
        y0 = rng.uniform(floor_y + 1.0, ceiling_y - 1.0)
        pictures.append(np.array([x0, x0 + rng.uniform(0.4, 1.0), y0, y0 + rng.uniform(0.3, 0.7)]))
    light = np.array(
        [rng.uniform(-half_width, half_width) * 0.7, ceiling_y - 0.2, rng.uniform(1.0, back_z - 1)]
    )
    return Room(
        floor_y=floor_y,
        ceiling_y=ceiling_y,
        half_width=half_width,
        back_z=back_z,
        colors=colors,
        pitch=-rng.uniform(0.05, 0.35),
        yaw=rng.uniform(-0.3, 0.3),
        light=light,
        pictures=pictures,
    )


def sample_objects(rng: np.random.Generator, room: Room, min_objects: int, max_objects: int):
    """Spheres, yawed boxes and vertical cylinders standing on the floor inside the room."""
    objects: list[Primitive] = []
    for _ in range(rng.integers(min_objects, max_objects + 1)):
        cls = int(rng.choice([SPHERE, BOX, CYLINDER]))
        x = rng.uniform(-room.half_width + 0.5, room.half_width - 0.5)
        z = rng.uniform(1.8, room.back_z - 0.6)
        color = _random_color(rng)
        if cls == SPHERE:
            r = rng.uniform(0.2, 0.6)
            center = np.array([x, room.floor_y + r, z])
            objects.append(Primitive(cls, center, np.array([r]), 0.0, color))
        elif cls == BOX:
            ext = rng.uniform([0.15, 0.15, 0.15], [0.6, 0.7, 0.6])
            center = np.array([x, room.floor_y + ext[1], z])
            objects.append(Primitive(cls, center, ext, rng.uniform(0, np.pi / 2), color))
        else:
            r, h = rng.uniform(0.12, 0.4), rng.uniform(0.4, 1.6)
            center = np.array([x, room.floor_y, z])
            objects.append(Primitive(cls, center, np.array([r, h]), 0.0, color))
    return objects
