"""Vectorised ray casting of a scene into an image and five physically consistent label maps.

Every label comes from the same hit record (distance, surface normal, object id), so the tasks are
related the way they are in real RGB-D data: depth edges are object edges, normals change at
creases, keypoints sit on corners the depth map can see.

Camera frame of the outputs (as NYUv2 and Taskonomy): x right, y down, z forward.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from datasets.synthetic.scene import (
    BOX,
    CEILING,
    CYLINDER,
    FLOOR,
    PICTURE,
    SPHERE,
    WALL,
    Primitive,
    Room,
)

EPS = 1e-4
FAR = np.inf


@dataclass
class Hits:
    """Nearest intersection per ray: distance, world normal, class and object id."""

    t: np.ndarray
    normal: np.ndarray
    cls: np.ndarray
    obj: np.ndarray

    @classmethod
    def empty(cls, n: int) -> Hits:
        return cls(np.full(n, FAR), np.zeros((n, 3)), np.zeros(n, int), np.full(n, -1))

    def update(self, t: np.ndarray, normal: np.ndarray, cls_id: int, obj_id: int) -> None:
        closer = (t > EPS) & (t < self.t)
        self.t[closer] = t[closer]
        self.normal[closer] = normal[closer] if normal.ndim == 2 else normal
        self.cls[closer] = cls_id
        self.obj[closer] = obj_id


def _yaw_matrix(yaw: float) -> np.ndarray:
    c, s = np.cos(yaw), np.sin(yaw)
    return np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]])


def _sphere(o: np.ndarray, d: np.ndarray, p: Primitive):
    oc = o - p.center
    b = np.einsum("ij,ij->i", oc, d)
    c = np.einsum("ij,ij->i", oc, oc) - p.size[0] ** 2
    disc = b * b - c
    root = np.sqrt(np.maximum(disc, 0))
    t = np.where(disc >= 0, -b - root, FAR)
    t = np.where(t > EPS, t, np.where(disc >= 0, -b + root, FAR))
    t_safe = np.where(np.isfinite(t), t, 0.0)
    return t, (o + t_safe[:, None] * d - p.center) / p.size[0]


def _box(o: np.ndarray, d: np.ndarray, p: Primitive):
    rot = _yaw_matrix(p.yaw)
    center = p.center
    ol = (o - center) @ rot  # world -> local is rot.T, applied to row vectors as @ rot
    dl = d @ rot
    with np.errstate(divide="ignore", invalid="ignore"):
        t1 = (-p.size - ol) / dl
        t2 = (p.size - ol) / dl
    tnear = np.minimum(t1, t2)
    tfar = np.maximum(t1, t2)
    tnear = np.nan_to_num(tnear, nan=-FAR)
    tfar = np.nan_to_num(tfar, nan=FAR)
    t_enter = tnear.max(axis=1)
    t_exit = tfar.min(axis=1)
    hit = (t_exit >= t_enter) & (t_exit > EPS)
    t = np.where(hit, np.where(t_enter > EPS, t_enter, t_exit), FAR)
    axis = tnear.argmax(axis=1)
    local_n = np.zeros_like(ol)
    rows = np.arange(len(o))
    local_n[rows, axis] = -np.sign(dl[rows, axis])
    return t, local_n @ rot.T


def _cylinder(o: np.ndarray, d: np.ndarray, p: Primitive):
    radius, height = p.size
    oc = o - p.center
    a = d[:, 0] ** 2 + d[:, 2] ** 2
    b = oc[:, 0] * d[:, 0] + oc[:, 2] * d[:, 2]
    c = oc[:, 0] ** 2 + oc[:, 2] ** 2 - radius**2
    with np.errstate(divide="ignore", invalid="ignore"):
        disc = b * b - a * c
        t_side = np.where(disc >= 0, (-b - np.sqrt(np.maximum(disc, 0))) / a, FAR)
        y_side = oc[:, 1] + t_side * d[:, 1]
        t_side = np.where((y_side >= 0) & (y_side <= height) & (t_side > EPS), t_side, FAR)
        t_cap = (height - oc[:, 1]) / d[:, 1]
    cap_x = oc[:, 0] + t_cap * d[:, 0]
    cap_z = oc[:, 2] + t_cap * d[:, 2]
    t_cap = np.where((cap_x**2 + cap_z**2 <= radius**2) & (t_cap > EPS), t_cap, FAR)
    t_cap = np.nan_to_num(t_cap, nan=FAR)
    t_side = np.nan_to_num(t_side, nan=FAR)
    side_point = oc + np.where(np.isfinite(t_side), t_side, 0)[:, None] * d
    with np.errstate(over="ignore", invalid="ignore"):  # only misses overflow; they are masked
        side_n = np.stack([side_point[:, 0], np.zeros(len(o)), side_point[:, 2]], 1) / radius
    use_cap = t_cap < t_side
    normal = np.where(use_cap[:, None], np.array([0.0, 1.0, 0.0]), side_n)
    return np.minimum(t_cap, t_side), normal


INTERSECT = {SPHERE: _sphere, BOX: _box, CYLINDER: _cylinder}


def _plane(o: np.ndarray, d: np.ndarray, axis: int, value: float) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        t = (value - o[:, axis]) / d[:, axis]
    return np.where(np.isfinite(t) & (t > EPS), t, FAR)


def cast(o: np.ndarray, d: np.ndarray, room: Room, objects: list[Primitive], planes: bool) -> Hits:
    """Nearest hit of each ray among the objects (and the room's planes when ``planes``)."""
    hits = Hits.empty(len(d))
    if planes:
        room_planes = (
            (1, room.floor_y, (0, 1, 0), FLOOR),
            (1, room.ceiling_y, (0, -1, 0), CEILING),
            (0, -room.half_width, (1, 0, 0), WALL),
            (0, room.half_width, (-1, 0, 0), WALL),
            (2, room.back_z, (0, 0, -1), WALL),
        )
        for obj_id, (axis, value, normal, cls_id) in enumerate(room_planes):
            hits.update(_plane(o, d, axis, value), np.array(normal, float), cls_id, obj_id)
        _paint_pictures(o, d, room, hits)
    for index, primitive in enumerate(objects):
        t, normal = INTERSECT[primitive.cls](o, d, primitive)
        hits.update(t, normal, primitive.cls, 10 + index)
    return hits


def _paint_pictures(o: np.ndarray, d: np.ndarray, room: Room, hits: Hits) -> None:
    """Pictures are flat rectangles on the back wall: same geometry, their own class and id."""
    on_back = hits.obj == 4
    point = o + np.where(np.isfinite(hits.t), hits.t, 0)[:, None] * d
    for index, (x0, x1, y0, y1) in enumerate(room.pictures):
        x, y = point[:, 0], point[:, 1]
        inside = on_back & (x >= x0) & (x <= x1) & (y >= y0) & (y <= y1)
        hits.cls[inside] = PICTURE
        hits.obj[inside] = 5 + index


def camera_rays(height: int, width: int, fov_deg: float, room: Room):
    """Unit ray directions in the camera frame (x right, y down, z forward) and in the world."""
    focal = 0.5 * width / np.tan(np.deg2rad(fov_deg) / 2)
    v, u = np.meshgrid(np.arange(height) + 0.5, np.arange(width) + 0.5, indexing="ij")
    cam = np.stack([(u - width / 2) / focal, (v - height / 2) / focal, np.ones_like(u)], -1)
    cam = cam.reshape(-1, 3)
    cam /= np.linalg.norm(cam, axis=1, keepdims=True)
    cam_to_world = camera_to_world(room)
    return cam, cam @ cam_to_world.T, focal


def camera_to_world(room: Room) -> np.ndarray:
    """Rotation taking camera-frame vectors (y down) to world-frame vectors (y up)."""
    flip_y = np.diag([1.0, -1.0, 1.0])
    cp, sp = np.cos(room.pitch), np.sin(room.pitch)
    pitch = np.array([[1, 0, 0], [0, cp, sp], [0, -sp, cp]])  # negative pitch looks down
    return _yaw_matrix(room.yaw) @ pitch @ flip_y
